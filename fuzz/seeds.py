#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/TARGET/
from the repository's fixtures (deterministic; run from anywhere).

The campaign reads them next to a scratch corpus that it writes:

    cargo fuzz run TARGET /tmp/corpus/TARGET fuzz/seeds/TARGET

and tests/fuzz_corpus.rs replays every seed through its target's
invariant on stable.
"""
import gzip
import hashlib
import io
import json
import os
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def members(path):
    """The inflated members of a multi-member gzip file."""
    raw = open(path, "rb").read()
    out = []
    while raw:
        d = __import__("zlib").decompressobj(31)
        out.append(d.decompress(raw))
        raw = d.unused_data
    return out


fixtures = os.path.join(ROOT, "testdata", "firehose")
docs = []
for name in ["multi-member", "control-then-data", "numeric-id"]:
    docs.extend(members(os.path.join(fixtures, name)))
for d in docs[:8]:
    put("fuzz_envelope", d)
put("fuzz_envelope", '{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g",'
    '"logStream":"s","subscriptionFilters":[],"policyLevel":null,'
    '"logEvents":[{"id":"1","timestamp":1,"message":"m"},{"id":2,'
    '"timestamp":-1,"message":"\\u00e9"},{"id":"x","timestamp":1.5}]}')
put("fuzz_members", b"\xff".join(docs[:3]))
put("fuzz_members", docs[0] + b"\xff\xff" + b'{"logEvents":7}')
for name in os.listdir(os.path.join(ROOT, "testdata", "bad")):
    data = open(os.path.join(ROOT, "testdata", "bad", name), "rb").read()
    if len(data) < 4096:
        put("fuzz_object", bytes([1]) + data)

# Filter patterns with a message from the conformance table.
conf = os.path.join(ROOT, "testdata", "filter", "conformance.txt")
for line in open(conf, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    parts = line.split("\t", 2)
    if len(parts) == 3 and parts[1] in ("match", "nomatch"):
        put("fuzz_filter", parts[0] + "\0" + parts[2])
    elif parts:
        put("fuzz_filter", parts[0])

specs = os.path.join(ROOT, "testdata", "specs")
for name in sorted(os.listdir(specs)):
    put("fuzz_spec", open(os.path.join(specs, name), encoding="utf-8").read())
put("fuzz_spec", 'table = "t"\n[[columns]]\nname = "a; DROP"\nsource = "x"\ntype = "int"\n')

for field in ["plain", "a,b", 'say "hi"', "line\nbreak", "", "\\N", "\\.",
              "é\u00fe" * 40, "x" * 70]:
    put("fuzz_csv", field)

key = "app-logs/2024/05/01/13/x:y z+ü%"
s3 = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                   "eventName": "ObjectCreated:Put",
                   "s3": {"bucket": {"name": "b"},
                          "object": {"key": urllib.parse.quote_plus(key, safe="/"),
                                     "size": 12, "eTag": "\"e\"",
                                     "versionId": "v1"}}},
                  {"eventName": "ObjectRemoved:Delete"}]}
put("fuzz_notification", json.dumps(s3))
put("fuzz_notification", json.dumps({"Type": "Notification",
                                     "Message": json.dumps(s3)}))
put("fuzz_notification", json.dumps({
    "detail-type": "Object Created", "source": "aws.s3",
    "detail": {"bucket": {"name": "b"}, "object": {"key": key}}}))
put("fuzz_notification", '{"Service":"Amazon S3","Event":"s3:TestEvent"}')
put("fuzz_notification", "x%3Ay+z%2B%C3%BC")

for c in ["postgres://loader:s3cretpw@db.example:6543/logs?sslmode=disable",
          "host=/tmp port=5432 user=u password='p w\\'x' dbname=d",
          "postgresql://[::1]:5432,h2:5433/db?connect_timeout=3",
          "u\0pa:ss@w/rd\0d b", "user\0s3cret-password\0logs"]:
    put("fuzz_conninfo", c)

# Messages for the scanner: the first byte picks the wanted paths.
for m in ['{"a":{"b":[1,2,{"c":"d"}]},"a":{"b":3}}', '[1,"x",null]',
          '{"context":{"log_name":"specific-log","user_id":7},"tags":["t"]}',
          '{"n":1e400,"s":"\\ud83d\\ude00"}', 'plain text']:
    put("fuzz_scan", "\x55" + m)
