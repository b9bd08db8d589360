#!/usr/bin/env python3
"""Regenerates the decoder fixtures in testdata/ and their expected output.

    python3 testdata/generate.py

Deterministic (fixed seed, gzip mtime 0). Objects have no extension, as
Firehose writes them. For each fixture NAME under firehose/, bad/ or
mapping/ it
writes expected/NAME.events.ndjson (one JSON event per line, the fields of
`cwl-copy decode` minus `object`) and expected/NAME.errors.json (the list
of errors `cwl-copy decode --summary-json` must report: kind, member,
offset). Decompression bombs are not stored: tests build them. For the
mapping fixture it also writes expected/edge-cases.DIALECT.json: the rows,
rejects and counts `cwl-copy convert --columns specs/edge_cases.toml` must
give.
"""
import gzip
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20240501)

MESSAGES = [
    {"context": {"log_name": "specific-log", "user_id": "u-1001"}, "path": "/api/v1/items",
     "status": 200, "latency_ms": 12.5, "note": "plain ascii"},
    {"context": {"log_name": "specific-log", "user_id": "u-1002"}, "path": "/api/v1/検索",
     "status": 404, "note": "日本語のログ 🚀 emoji and 𝄞 (surrogate pair when escaped)"},
    {"context": {"log_name": "other-log", "user_id": None}, "note": 'quotes " and \\ backslash',
     "status": 500},
    {"context": {"log_name": "specific-log", "user_id": 42}, "note": "line1\nline2\r\nline3\ttab",
     "tags": ["a", "b,c"], "status": 201},
]
RAW_MESSAGES = [
    "not json at all: GET /health 200",
    "multi\nline\nplain text with \u0007 bell and \\u escapes kept literally: \\u0041",
    "",
]


def event_id(n):
    # 56 decimal digits, like CloudWatch's.
    return "".join(str(rng.randrange(10)) for _ in range(56))


def make_events(n, start_ts):
    out = []
    for i in range(n):
        if i % 5 == 4:
            msg = RAW_MESSAGES[i % len(RAW_MESSAGES)]
        else:
            msg = json.dumps(MESSAGES[i % len(MESSAGES)], ensure_ascii=(i % 2 == 0),
                             separators=(",", ":"))
        out.append({"id": event_id(i), "timestamp": start_ts + i * 1000, "message": msg})
    return out


def envelope(events, group="/ecs/api-server", stream="ecs/api/abc123", extra=None,
             order=None):
    env = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["specific-log-filter"],
        "logEvents": events,
    }
    if extra:
        env.update(extra)
    if order:
        env = {k: env[k] for k in order}
    return env


CONTROL = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
           "logStream": "", "subscriptionFilters": [],
           "logEvents": [{"id": "", "timestamp": 1680683189085,
                          "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}


def dumps(env, ascii_=False):
    return json.dumps(env, ensure_ascii=ascii_, separators=(",", ":")).encode()


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


def expected_events(envs, members=True, lines=None):
    rows = []
    if lines is not None:
        for m in lines:
            rows.append({"member": None, "log_group": None, "log_stream": None, "owner": None,
                         "id": None, "timestamp": None, "message": m})
        return rows
    for idx, env in envs:
        if env["messageType"] == "CONTROL_MESSAGE":
            continue
        for e in env["logEvents"]:
            rows.append({"member": idx, "log_group": env["logGroup"],
                         "log_stream": env["logStream"], "owner": env["owner"],
                         "id": str(e["id"]), "timestamp": e["timestamp"], "message": e["message"]})
    return rows


def write(kind, name, data, events, errors=()):
    os.makedirs(os.path.join(HERE, kind), exist_ok=True)
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)
    with open(os.path.join(HERE, kind, name), "wb") as f:
        f.write(data)
    with open(os.path.join(HERE, "expected", name + ".events.ndjson"), "w", encoding="utf-8") as f:
        for r in events:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(HERE, "expected", name + ".errors.json"), "w") as f:
        json.dump([dict(zip(("kind", "member", "offset"), e)) for e in errors], f, indent=1)
        f.write("\n")


def members(envs, sep=b""):
    blobs = [gz(dumps(e, ascii_=(i % 2 == 1))) for i, e in enumerate(envs)]
    offsets, pos = [], 0
    for b in blobs:
        offsets.append(pos)
        pos += len(b) + len(sep)
    return sep.join(blobs), blobs, offsets


def main():
    ts = 1714568707123  # 2024-05-01T13:05:07.123Z
    envs = [envelope(make_events(4, ts)), envelope(make_events(7, ts + 10_000), stream="s2"),
            envelope(make_events(1, ts + 20_000), extra={"policyLevel": "ACCOUNT_LEVEL_POLICY"},
                     order=["logEvents", "policyLevel", "owner", "logStream", "subscriptionFilters",
                            "messageType", "logGroup"])]
    indexed = list(enumerate(envs))

    # 1. Firehose default: concatenated members, no delimiter, no extension.
    data, blobs, offs = members(envs)
    write("firehose", "multi-member", data, expected_events(indexed))
    # Control message first, as Firehose delivers it when a subscription is created.
    data2, _, _ = members([CONTROL] + envs[:1])
    write("firehose", "control-then-data", data2, expected_events([(1, envs[0])]))
    # Newline record delimiter between members.
    data3, _, _ = members(envs, sep=b"\n")
    write("firehose", "members-newline-delimited", data3 + b"\n", expected_events(indexed))
    # 2. gzip over gzip (.gz added by Firehose).
    write("firehose", "gzip-over-gzip.gz", gz(data), expected_events(indexed))
    # 3. Decompressed envelopes, concatenated and newline-delimited.
    plain = b"".join(dumps(e) for e in envs)
    write("firehose", "decompressed-concatenated", plain, expected_events(indexed))
    nd = b"\n".join(dumps(e, ascii_=True) for e in envs) + b"\n"
    write("firehose", "decompressed-ndjson", nd, expected_events(indexed))
    # 4. Extracted messages, one per line; and the same gzipped by Firehose.
    msgs = [json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in MESSAGES] + [RAW_MESSAGES[0]]
    lines = ("\n".join(msgs) + "\n").encode()
    write("firehose", "extracted-lines", lines, expected_events(None, lines=msgs))
    write("firehose", "extracted-lines-gzip.gz", gz(lines), expected_events(None, lines=msgs))
    # Numeric ids (an emulator), and an empty object.
    num = envelope([{"id": 12345678901234567890, "timestamp": ts, "message": "numeric id"}])
    write("firehose", "numeric-id", gz(json.dumps(num).encode()),
          [dict(expected_events([(0, num)])[0], id="12345678901234567890")])
    write("firehose", "empty", b"", [])

    # Bad input. Each keeps the good members around the bad one.
    good0, good2 = blobs[0], blobs[2]
    ev0, ev2 = expected_events([(0, envs[0])]), expected_events([(2, envs[2])])
    bad = bytearray(blobs[1]); bad[-8] ^= 0xFF
    write("bad", "crc-mismatch", good0 + bytes(bad) + good2, ev0 + ev2,
          [("gzip_crc", 1, len(good0))])
    bad = bytearray(blobs[1]); bad[-1] ^= 0x01
    write("bad", "isize-mismatch", good0 + bytes(bad) + good2, ev0 + ev2,
          [("gzip_isize", 1, len(good0))])
    write("bad", "truncated-member", good0 + blobs[1][: len(blobs[1]) // 2], ev0,
          [("unreadable", 1, len(good0))])
    write("bad", "bad-header", good0 + b"\x1f\x8b\x07" + blobs[1][3:], ev0,
          [("unreadable", 1, len(good0))])
    corrupt = bytearray(blobs[1]); corrupt[12:20] = b"\xff" * 8
    write("bad", "corrupt-deflate", good0 + bytes(corrupt), ev0, [("unreadable", 1, len(good0))])
    write("bad", "trailing-garbage", good0 + b"GARBAGE\x00\x01", ev0,
          [("trailing_garbage", 1, len(good0))])
    js = gz(dumps(envs[1])[:-20])
    write("bad", "truncated-json", good0 + js + good2, expected_events([(0, envs[0]), (2, envs[2])]),
          [("json_truncated", 1, len(good0))])
    syn = gz(b'{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"x"},]}')
    write("bad", "json-syntax", good0 + syn + good2, ev0 + ev2, [("json_syntax", 1, len(good0))])
    nolog = gz(b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s"}')
    write("bad", "missing-logevents", good0 + nolog + good2, ev0 + ev2,
          [("not_an_envelope", 1, len(good0))])
    tstr = gz(b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",'
              b'"logEvents":[{"id":"1","timestamp":"1714568707123","message":"x"},'
              b'{"id":"2","timestamp":1714568707124,"message":"kept"}]}')
    write("bad", "timestamp-string", good0 + tstr, ev0 + [
        {"member": 1, "log_group": "g", "log_stream": "s", "owner": "1", "id": "2",
         "timestamp": 1714568707124, "message": "kept"}], [("not_an_envelope", 1, len(good0))])
    utf = gz(b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",'
             b'"logEvents":[{"id":"1","timestamp":1,"message":"bad \xff\xfe byte"}]}')
    write("bad", "invalid-utf8", good0 + utf + good2, ev0 + ev2, [("invalid_utf8", 1, len(good0))])
    sur = gz(b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s",'
             b'"logEvents":[{"id":"1","timestamp":1,"message":"lone \\ud800 surrogate"}]}')
    write("bad", "lone-surrogate", good0 + sur + good2, ev0 + ev2,
          [("invalid_unicode_escape", 1, len(good0))])
    write("bad", "zip-object", b"PK\x03\x04" + b"\x00" * 40, [], [("unsupported_format", None, 0)])
    write("bad", "lines-invalid-utf8", b"good line\nbad \xc3\x28 line\nlast\n",
          expected_events(None, lines=["good line", "last"]), [("invalid_utf8", 1, 10)])

    mapping()


# ---------------------------------------------------------------------------
# Mapping fixture (issue #12): messages that are JSON but not objects,
# repeated keys, over-long text, and a reject of every kind, converted with
# specs/edge_cases.toml. Python's json keeps the *last* of repeated keys
# (like jq and PostgreSQL's jsonb), so it is the oracle of what each path
# selects; the expected rows, rejects and counts per dialect are computed
# here, independently of cwl-copy.

EDGE_MESSAGES = [
    # Repeated keys: the last wins, twice and three times, nested, in arrays.
    '{"level":"INFO","ctx":{"user":"u1"},"level":"WARN"}',
    '{"level":"INFO","level":"WARN","level":"ERROR","ctx":{"user":"u2"}}',
    '{"level":"n","ctx":{"user":"a","user":"b"},"ctx":{"user":"c","user":"d"}}',
    '{"level":"n2","ctx":{"user":"a"},"ctx":{"id":1}}',
    '{"level":"arr","items":[{"k":"x","k":"y"},{"k":"z"}],"items":[{"k":"p","k":"q","k":"r"}]}',
    '{"level":"esc","\\u006cevel":"escaped-key-last"}',
    # JSON, but not an object: rejected with not_object.
    '42',
    '"text"',
    '[1,2]',
    'null',
    'true',
    ' [ {"level":"INFO"} ] ',
    # Not JSON.
    'plain text, not JSON',
    # A 90 KB value: PostgreSQL keeps it whole; Redshift rejects it (65,535).
    '{"level":"big","note":"' + 'x' * 90000 + '"}',
    # Truncated on purpose (max_bytes = 8, overflow = "truncate").
    '{"level":"cut","short":"abcdefghijkl"}',
    '{"level":"cut-utf8","short":"\u65e5\u672c\u8a9e\u65e5\u672c"}',
    # A row rejected after a truncation: the truncation does not count.
    '{"level":"cut-then-reject","short":"123456789","n":"not a number"}',
    # Other rejects.
    '{"level":"mismatch","n":"nope"}',
    '{"ctx":{"user":"no level"}}',
    '{"level":"nul \\u0000 inside"}',
    '{"level":null,"level":"null-then-value"}',
    '{"level":"value-then-null","level":null}',
    '{"level":"num","n":7,"n":8}',
    # Redshift would load the text \N as NULL: rejected there, kept here.
    '{"level":"\\\\N"}',
]

EDGE_COLUMNS = [
    # (name, source, type, options)
    ("event_id", "@id", "text", {}),
    ("level", "level", "text", {"required": True}),
    ("user", "ctx.user", "text", {}),
    ("first_k", "items[0].k", "text", {}),
    ("note", "note", "text", {}),
    ("short", "short", "text", {"max_bytes": 8, "overflow": "truncate"}),
    ("n", "n", "int", {"on_mismatch": "reject"}),
]

MISSING = object()


def select(doc, source):
    cur = doc
    for part in source.replace("[", ".[").split("."):
        if part.startswith("["):
            i = int(part[1:-1])
            if not isinstance(cur, list) or i >= len(cur):
                return MISSING
            cur = cur[i]
        else:
            if not isinstance(cur, dict) or part not in cur:
                return MISSING
            cur = cur[part]
    return cur


def utf8_prefix(s, n):
    b = s.encode()[:n]
    while True:
        try:
            return b.decode()
        except UnicodeDecodeError:
            b = b[:-1]


def edge_expected(events, dialect):
    rows, rejects, by_code, truncated = [], [], {}, {}

    def reject(ev, code, column):
        rejects.append({"id": ev["id"], "code": code, "column": column})
        by_code[code] = by_code.get(code, 0) + 1

    for ev in events:
        try:
            doc = json.loads(ev["message"])
        except ValueError:
            reject(ev, "not_json", None)
            continue
        if not isinstance(doc, dict):
            reject(ev, "not_object", None)
            continue
        row, cut, failed = [], [], None
        for name, source, ty, opt in EDGE_COLUMNS:
            v = ev["id"] if source == "@id" else select(doc, source)
            if v is MISSING or v is None:
                if opt.get("required"):
                    failed = ("missing_required", name)
                    break
                row.append(None)
                continue
            if ty == "int":
                if isinstance(v, int) and not isinstance(v, bool):
                    row.append(str(v))
                elif opt.get("on_mismatch") == "reject":
                    failed = ("type_mismatch", name)
                    break
                else:
                    row.append(None)
                continue
            if "\0" in v:
                failed = ("nul_char", name)
                break
            limit = opt.get("max_bytes", 65535 if dialect == "redshift" else None)
            if limit is not None and len(v.encode()) > limit:
                if opt.get("overflow") != "truncate":
                    failed = ("too_long", name)
                    break
                v = utf8_prefix(v, limit)
                cut.append(name)
            if dialect == "redshift" and v == "\\N":
                failed = ("null_marker", name)
                break
            row.append(v)
        if failed:
            reject(ev, *failed)
            continue
        rows.append(row)
        for name in cut:
            truncated[name] = truncated.get(name, 0) + 1
    return {"rows": rows, "rejects": rejects, "rejects_by_code": by_code,
            "truncated": truncated}


def mapping():
    ts = 1714572000000
    events = [{"id": "edge-%02d" % i, "timestamp": ts + i, "message": m}
              for i, m in enumerate(EDGE_MESSAGES)]
    half = len(events) // 2
    envs = [envelope(events[:half], group="/edge/cases"),
            envelope(events[half:], group="/edge/cases", stream="s2")]
    data, _, _ = members(envs)
    write("mapping", "edge-cases", data, expected_events(list(enumerate(envs))))
    for dialect in ("postgres", "redshift"):
        path = os.path.join(HERE, "expected", "edge-cases.%s.json" % dialect)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(edge_expected(events, dialect), f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
