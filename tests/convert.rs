//! `cwl-copy convert`: spec, filter, CSV, parallel determinism, rejects
//! and the summary that reconciles.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::decode::{bin, tempdir};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec() -> PathBuf {
    root().join("testdata/specs/integrated_user_log.toml")
}

fn convert(args: &[&str]) -> (i32, Vec<u8>, Value, String) {
    let dir = tempdir();
    let summary = dir.join("s.json");
    let out = bin()
        .arg("convert")
        .arg("--columns")
        .arg(spec())
        .arg("--summary-json")
        .arg(&summary)
        .args(args)
        .output()
        .unwrap();
    let s = std::fs::read(&summary)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        out.stdout,
        s,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `DATA_MESSAGE` envelope of `events` (JSON objects, joined).
fn envelope(events: &[String]) -> String {
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
        events.join(",")
    )
}

/// A spec of one text column from `path`, with non-JSON messages
/// rejected (`not_json`).
const REJECTING_SPEC: &str =
    "table = \"t\"\nnon_json = \"reject\"\n[[columns]]\n\
    name = \"p\"\nsource = \"path\"\ntype = \"text\"\n";

#[test]
fn output_is_identical_for_any_thread_count() {
    let input = root().join("testdata/firehose");
    let input = input.to_str().unwrap();
    let (c1, one, s1, e1) = convert(&["--threads", "1", input]);
    assert_eq!(c1, 0, "{e1}");
    for t in ["2", "3", "8"] {
        let (c, many, s, _) = convert(&["--threads", t, input]);
        assert_eq!(c, 0);
        assert_eq!(one, many, "threads={t}");
        assert_eq!(s1["rows"], s["rows"]);
    }
    assert!(!one.is_empty());
    // The summary reconciles and matches the decode counts.
    assert_eq!(s1["reconciled"], true);
    let ev = s1["events"].as_u64().unwrap();
    let sum = s1["rows"].as_u64().unwrap()
        + s1["filtered_out"].as_u64().unwrap()
        + s1["rejected"].as_u64().unwrap();
    assert_eq!(ev, sum);
    assert_eq!(s1["objects"], 10);
    // Every row read back with the csv crate has the spec's 9 columns.
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(false).from_reader(&one[..]);
    let rows: Vec<csv::StringRecord> =
        rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, s1["rows"].as_u64().unwrap());
    assert!(rows.iter().all(|r| r.len() == 9));
    // The filter selected only specific-log messages.
    assert!(rows.iter().all(|r| r[8].contains("specific-log")));
}

/// `CWL_COPY_NO_AVX2=1` keeps the SSE2 steps (the envelope's message
/// end, the `@message` writer) on a CPU with AVX2: the same CSV, exit
/// code and summary, byte for byte, on the fixtures and on plain-text
/// messages with a special byte or an escape at every position of a
/// 140-byte message, in both dialects. A 64-byte step that misses a byte
/// it should have seen writes something else; one that stops early falls
/// back to the byte loop and writes the same, so this does not see
/// steps that stop too often (the criterion benches do). Where the CPU
/// has no AVX2 both runs take SSE2.
#[test]
fn the_sse2_steps_write_what_the_avx2_ones_write() {
    let run = |no_avx2: bool, spec: &Path, dialect: &str, input: &Path| {
        let mut cmd = bin();
        cmd.arg("convert").arg("--columns").arg(spec);
        cmd.args(["--dialect", dialect, "--threads", "1"]).arg(input);
        if no_avx2 {
            cmd.env("CWL_COPY_NO_AVX2", "1");
        } else {
            cmd.env_remove("CWL_COPY_NO_AVX2");
        }
        let out = cmd.output().unwrap();
        (out.status.code(), out.stdout, out.stderr)
    };
    // The summary line but for its elapsed time.
    let summary = |e: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(e)
            .lines()
            .map(|l| l.rsplit_once("; ").map_or(l, |(a, _)| a).to_owned())
            .collect()
    };
    let dir = tempdir();
    let raw = dir.join("raw.toml");
    std::fs::write(
        &raw,
        "table = \"t\"\nnon_json = \"raw\"\n[[columns]]\nname = \"m\"\n\
         source = \"@message\"\ntype = \"text\"\n",
    )
    .unwrap();
    let mut events = Vec::new();
    for at in 0..140 {
        for special in [",", r#"\""#, r"\\", r"\n", r"\t", r"\u00e9", "é"] {
            let mut m: String =
                (0..140u8).map(|i| char::from(b'a' + i % 26)).collect();
            m.replace_range(at..=at, special);
            events.push(format!(
                r#"{{"id":"{}","timestamp":1,"message":"{m}"}}"#,
                events.len()
            ));
        }
    }
    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(
        objects.join("specials.json"),
        format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[{}]}}"#,
            events.join(",")
        ),
    )
    .unwrap();
    let cases = [
        (root().join("testdata/firehose"), spec(), true),
        (root().join("testdata/mapping"), spec(), false),
        (root().join("testdata/bad"), spec(), false),
        (objects, raw, true),
    ];
    for (input, spec, rows) in &cases {
        for dialect in ["postgres", "redshift"] {
            let (c1, avx2, e1) = run(false, spec, dialect, input);
            let (c2, sse2, e2) = run(true, spec, dialect, input);
            let what = format!("{} {dialect}", input.display());
            if *rows {
                assert!(!avx2.is_empty(), "{what}: {:?}", summary(&e1));
            }
            assert_eq!((c1, &avx2), (c2, &sse2), "{what}");
            assert_eq!(summary(&e1), summary(&e2), "{what}");
        }
    }
}

#[test]
fn out_dir_writes_one_csv_per_object_and_rejects_are_reported() {
    let dir = tempdir();
    let out = dir.join("csv/");
    let rejects = dir.join("rejects.ndjson");
    let (code, stdout, s, stderr) = convert(&[
        "--out",
        out.to_str().unwrap(),
        "--rejects",
        rejects.to_str().unwrap(),
        root().join("testdata/bad").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.is_empty());
    assert!(out.join("crc-mismatch.csv").exists());
    assert!(out.join("zip-object.csv").exists());
    let lines: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors = s["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    let decode_rejects =
        lines.iter().filter(|l| l["kind"] != "rejected_event").count();
    assert_eq!(decode_rejects, errors.len());
    // Every line carries a machine-readable code: a decode error's is its
    // kind. The summary counts them by code.
    for l in &lines {
        let code = l["code"].as_str().unwrap();
        assert!(!code.is_empty());
        if l["kind"] != "rejected_event" {
            assert_eq!(l["kind"], code);
        }
    }
    let by_code = |key: &str| -> u64 {
        s[key].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum()
    };
    assert_eq!(by_code("errors_by_code"), errors.len() as u64);
    assert_eq!(by_code("rejects_by_code"), s["rejected"].as_u64().unwrap());
    assert!(lines
        .iter()
        .all(|l| l["object"].as_str().unwrap().contains("testdata/bad/")));
    assert_eq!(s["reconciled"], true);
}

/// The mapping fixture (issue #12) in each dialect gives the rows,
/// rejects (with their codes), per-code counts and truncations that
/// `testdata/generate.py` computed with Python's `json`, which keeps the
/// last of repeated keys: non-object messages rejected, the last value
/// of a repeated key everywhere, a 90 KB value kept whole for PostgreSQL
/// and rejected for Redshift, truncations counted per column.
#[test]
fn edge_cases_fixture_matches_the_python_oracle() {
    for dialect in ["postgres", "redshift"] {
        let dir = tempdir();
        let summary = dir.join("s.json");
        let rejects = dir.join("r.ndjson");
        let out = bin()
            .arg("convert")
            .arg("--columns")
            .arg(root().join("testdata/specs/edge_cases.toml"))
            .args(["--dialect", dialect, "--summary-json"])
            .arg(&summary)
            .arg("--rejects")
            .arg(&rejects)
            .arg(root().join("testdata/mapping/edge-cases"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{dialect}: {stderr}");
        let want: Value =
            serde_json::from_slice(
                &std::fs::read(root().join(format!(
                    "testdata/expected/edge-cases.{dialect}.json"
                )))
                .unwrap(),
            )
            .unwrap();
        let null = if dialect == "redshift" { "\\N" } else { "" };
        let rows: Vec<Value> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&out.stdout[..])
            .records()
            .map(|r| {
                r.unwrap()
                    .iter()
                    .map(|f| match f {
                        f if f == null => Value::Null,
                        f => Value::String(f.to_owned()),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            Value::Array(rows.clone()),
            want["rows"],
            "{dialect}: rows"
        );
        let big = rows.iter().find(|r| r[1] == "big");
        match dialect {
            "postgres" => {
                let note = big.unwrap()[4].as_str().unwrap();
                assert_eq!(note.len(), 90_000, "kept whole, not cut to 64 KB");
            }
            _ => assert!(big.is_none()),
        }
        let lines: Vec<Value> = std::fs::read_to_string(&rejects)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<Value> = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l["id"], "code": l["code"], "column": l["column"],
                })
            })
            .collect();
        assert_eq!(Value::Array(got), want["rejects"], "{dialect}: rejects");
        for l in &lines {
            assert_eq!(l["kind"], "rejected_event");
            assert!(!l["reason"].as_str().unwrap().is_empty());
            assert!(l["message"].is_string(), "the raw message is kept");
        }
        let s: Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        assert_eq!(s["rejects_by_code"], want["rejects_by_code"], "{dialect}");
        assert_eq!(s["truncated"], want["truncated"], "{dialect}");
        assert_eq!(s["errors_by_code"], serde_json::json!({}));
        assert_eq!(s["rejected"], lines.len());
        assert_eq!(s["rows"], rows.len());
        assert_eq!(s["reconciled"], true);
    }
}

#[test]
fn spec_errors_exit_2_with_line_and_column() {
    let dir = tempdir();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "table = \"t\"\n[[columns]]\nname = \"a\"\nsource = \"x\"\ntype = \"integer\"\n").unwrap();
    let out = bin()
        .args([
            "convert",
            "--columns",
            bad.to_str().unwrap(),
            "testdata/firehose",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5"), "{err}");
}

/// The library's converter for the spec the CLI tests use.
fn integrated_converter() -> cwl_copy::Converter {
    use cwl_copy::{ColumnSpec, Converter, Decoder, Dialect, Mapper};
    let text = std::fs::read_to_string(spec()).unwrap();
    let spec = ColumnSpec::from_toml(&text).unwrap();
    Converter::new(
        Decoder::new(),
        Mapper::new(&spec, Dialect::Postgres).unwrap(),
    )
}

/// Objects whose CSV is several times the CLI's 1 MiB streaming chunk:
/// the output is the same for any thread count, for `--out DIR` (one file
/// per object) and for the library's one-shot [`Converter::convert`].
#[test]
fn large_objects_stream_in_chunks_with_identical_output() {
    use cwl_copy::{corpus, ConvertScratch, ObjectOutput};
    let dir = tempdir();
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut rng = corpus::Rng::new(7);
    let mut ts = 1_714_570_800_000;
    let mut objects = Vec::new();
    for i in 0..5 {
        // 0.4 MB to ~4 MB of CSV: below, at and well over one chunk.
        let members = [8, 25, 60, 3, 45][i];
        let (obj, _) =
            corpus::object(&mut rng, &mut ts, members, 60_000, i == 1);
        let name = format!("obj-{i}");
        std::fs::write(input.join(&name), &obj).unwrap();
        objects.push((name, obj));
    }
    let conv = integrated_converter();
    let mut scratch = ConvertScratch::new();
    let mut want = Vec::new();
    let mut per_object = Vec::new();
    for (name, obj) in &objects {
        let mut o = ObjectOutput::default();
        let key = input.join(name);
        conv.convert(&key.to_string_lossy(), obj, &mut scratch, &mut o);
        assert!(o.errors.is_empty());
        want.extend_from_slice(&o.csv);
        per_object.push(o.csv);
    }
    assert!(want.len() > 8 << 20, "{} bytes of CSV", want.len());
    let input_s = input.to_str().unwrap();
    for t in ["1", "2", "3"] {
        let (code, got, s, stderr) = convert(&["--threads", t, input_s]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            got == want,
            "threads={t}: CSV differs from Converter::convert"
        );
        assert_eq!(s["reconciled"], true);
    }
    let out = dir.join("out/");
    let (code, _, _, stderr) =
        convert(&["--threads", "2", "--out", out.to_str().unwrap(), input_s]);
    assert_eq!(code, 0, "{stderr}");
    for ((name, _), csv) in objects.iter().zip(&per_object) {
        let got = std::fs::read(out.join(format!("{name}.csv"))).unwrap();
        assert!(&got == csv, "{name}.csv differs");
    }
}

/// An object whose events are mostly rejected hands its rejects over in
/// pieces as well, in order, each about `chunk` bytes at most (so that a
/// caller that writes them as they come holds no more than that), and
/// what the pieces and the rest add up to is the one-shot output; a
/// caller that leaves them gets them all at the end.
#[test]
fn chunked_conversion_hands_over_rejects_in_pieces() {
    use cwl_copy::{
        ColumnSpec, ConvertScratch, Converter, Decoder, Dialect, Mapper,
        ObjectOutput,
    };
    let spec = ColumnSpec::from_toml(REJECTING_SPEC).unwrap();
    let conv = Converter::new(
        Decoder::new(),
        Mapper::new(&spec, Dialect::Postgres).unwrap(),
    );
    // Three plain-text events of ~300 bytes to every JSON one.
    let events: Vec<String> = (0..4000)
        .map(|i| {
            let message = if i % 4 == 0 {
                format!("{{\"path\":\"/p/{i}\"}}")
            } else {
                format!("plain text line {i} {}", "x".repeat(280))
            };
            serde_json::json!({"id": i.to_string(), "timestamp": i, "message": message})
                .to_string()
        })
        .collect();
    let obj = envelope(&events);
    let mut scratch = ConvertScratch::new();
    let mut whole = ObjectOutput::default();
    conv.convert("o", obj.as_bytes(), &mut scratch, &mut whole);
    assert_eq!((whole.counts.rows, whole.counts.rejected), (1000, 3000));
    let size = |r: &cwl_copy::RejectedEvent| r.message.len() + r.reason.len();
    let one = whole.rejects.iter().map(size).max().unwrap();
    for chunk in [1, 4096, 1 << 16, 1 << 20] {
        let (mut csv, mut rejects, mut flushes) = (Vec::new(), Vec::new(), 0);
        let mut o = ObjectOutput::default();
        conv.convert_chunked(
            "o",
            obj.as_bytes(),
            &mut scratch,
            &mut o,
            chunk,
            |o| {
                flushes += 1;
                let bytes: usize = o.rejects.iter().map(size).sum();
                assert!(
                    o.csv.len() >= chunk || bytes >= chunk.min(one),
                    "chunk {chunk}"
                );
                assert!(
                    bytes < chunk + 2 * one,
                    "chunk {chunk}: {bytes} bytes of rejects"
                );
                csv.append(&mut o.csv);
                rejects.append(&mut o.rejects);
            },
        );
        if chunk == 1 {
            // One flush per row and per reject.
            assert_eq!(flushes, 4000);
        }
        csv.append(&mut o.csv);
        rejects.append(&mut o.rejects);
        assert!(csv == whole.csv, "chunk {chunk}: the CSV differs");
        assert!(rejects == whole.rejects, "chunk {chunk}: the rejects differ");
        assert_eq!(o.counts, whole.counts);
        // Left in place, they all arrive at the end, and once a call has
        // left them the calls are for the CSV alone.
        let (mut o, mut short) = (ObjectOutput::default(), 0);
        conv.convert_chunked(
            "o",
            obj.as_bytes(),
            &mut scratch,
            &mut o,
            chunk,
            |o| {
                short += usize::from(o.csv.len() < chunk);
                o.csv.clear();
            },
        );
        assert!(short <= 1, "chunk {chunk}: {short} calls for kept rejects");
        assert!(o.rejects == whole.rejects, "chunk {chunk}: kept");
    }
}

#[test]
fn chunked_conversion_equals_one_shot() {
    use cwl_copy::{corpus, ConvertScratch, ObjectOutput};
    let mut rng = corpus::Rng::new(11);
    let mut ts = 1_714_570_800_000;
    let (obj, _) = corpus::object(&mut rng, &mut ts, 6, 20_000, true);
    let conv = integrated_converter();
    let mut scratch = ConvertScratch::new();
    let mut whole = ObjectOutput::default();
    conv.convert("o", &obj, &mut scratch, &mut whole);
    for chunk in [1, 100, 4096, 1 << 20] {
        let mut pieces = Vec::new();
        let mut o = ObjectOutput::default();
        conv.convert_chunked("o", &obj, &mut scratch, &mut o, chunk, |o| {
            // (The corpus object has no rejects: only the CSV flushes.)
            assert!(o.csv.len() >= chunk && o.csv.ends_with(b"\n"));
            pieces.push(std::mem::take(&mut o.csv));
        });
        if chunk == 1 {
            // One flush per row.
            assert_eq!(pieces.len() as u64, whole.counts.rows);
        }
        let mut all: Vec<u8> = pieces.concat();
        all.extend_from_slice(&o.csv);
        assert!(all == whole.csv, "chunk {chunk}");
        assert_eq!(o.counts, whole.counts);
    }
}

/// Progress moves within an object: `convert_chunked_with_progress` is
/// told the input consumed about every `PROGRESS_STEP` bytes, in every
/// framing (gzip members, gzip over gzip, JSON documents, lines), rising,
/// within the object, up to about its last piece; and the rows are those
/// of a plain conversion.
#[test]
fn progress_moves_within_an_object_in_every_framing() {
    use std::io::{Read, Write};

    use cwl_copy::{corpus, ConvertScratch, ObjectOutput, PROGRESS_STEP};
    let mut rng = corpus::Rng::new(23);
    let mut ts = 1_714_570_800_000;
    let (members, _) = corpus::object(&mut rng, &mut ts, 64, 200_000, false);
    let mut outer =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    outer.write_all(&members).unwrap();
    let outer = outer.finish().unwrap();
    let mut docs = Vec::new();
    flate2::read::MultiGzDecoder::new(&members[..])
        .read_to_end(&mut docs)
        .unwrap();
    let mut lines = String::new();
    while lines.len() < 4 << 20 {
        corpus::message(&mut rng, ts, &mut lines);
        lines.push('\n');
        ts += 7;
    }
    let conv = integrated_converter();
    let mut scratch = ConvertScratch::new();
    for (what, data) in [
        ("gzip members", &members[..]),
        ("gzip over gzip", &outer[..]),
        ("JSON documents", &docs[..]),
        ("lines", lines.as_bytes()),
    ] {
        let mut plain = ObjectOutput::default();
        conv.convert("o", data, &mut scratch, &mut plain);
        assert!(plain.counts.rows > 1000, "{what}: {:?}", plain.counts);
        let mut calls: Vec<u64> = Vec::new();
        let mut o = ObjectOutput::default();
        let mut csv = Vec::new();
        conv.convert_chunked_with_progress(
            "o",
            data,
            &mut scratch,
            &mut o,
            1 << 20,
            |o| csv.append(&mut o.csv),
            |n| calls.push(n),
        );
        csv.append(&mut o.csv);
        assert!(csv == plain.csv, "{what}: the CSV differs");
        assert_eq!(o.counts, plain.counts, "{what}");
        let len = data.len() as u64;
        assert!(
            calls.len() as u64 >= len / PROGRESS_STEP / 2,
            "{what}: {} calls for {len} bytes",
            calls.len()
        );
        let mut last = 0;
        for &n in &calls {
            assert!(n >= last + PROGRESS_STEP, "{what}: {calls:?}");
            assert!(n <= len, "{what}: {n} of {len}");
            last = n;
        }
        assert!(
            len - last <= PROGRESS_STEP + (512 << 10),
            "{what}: the last call at {last} of {len}"
        );
    }
}

/// The one-pass counts: a message its scanner's fast path reads, one it
/// gives up on (a kept string with an escape: the state machine reads
/// it) and one that is not JSON (unescaped, the oracle path): each
/// counted where it went, and the CSV the oracle path's.
#[test]
fn onepass_counts_say_which_scan_read_each_message() {
    use std::io::Write as _;

    use cwl_copy::{ConvertScratch, ObjectOutput};
    let messages = [
        r#"{"context":{"log_name":"specific-log","user_id":"u-1"},"path":"/a","status":200}"#,
        r#"{"context":{"log_name":"specific-log","user_id":"u-2"},"path":"/a\"b","status":201}"#,
        "plain text, not JSON",
    ];
    let events: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                r#"{{"id":"{i}","timestamp":1714570800000,"message":{}}}"#,
                serde_json::Value::String((*m).to_owned())
            )
        })
        .collect();
    let doc = envelope(&events);
    let mut gz =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc.as_bytes()).unwrap();
    let obj = gz.finish().unwrap();
    let mut conv = integrated_converter();
    let mut scratch = ConvertScratch::new();
    let (mut fast, mut oracle) =
        (ObjectOutput::default(), ObjectOutput::default());
    conv.convert("o", &obj, &mut scratch, &mut fast);
    conv.set_onepass(false);
    conv.convert("o", &obj, &mut scratch, &mut oracle);
    assert_eq!(fast.onepass.envelopes, 1, "{:?}", fast.onepass);
    // Three messages mapped in their escaped form, less the one unescaped.
    assert_eq!(fast.onepass.messages, 2, "{:?}", fast.onepass);
    assert_eq!(fast.onepass.message_fallbacks, 1, "{:?}", fast.onepass);
    assert_eq!(fast.onepass.state_machine, 1, "{:?}", fast.onepass);
    assert_eq!(fast.counts.rows, 2, "{:?}", fast.counts);
    assert!(fast.csv == oracle.csv);
    assert!(String::from_utf8_lossy(&fast.csv).contains(r#""/a""b""#));
}

/// An object of rejected events is written out as it is converted, not
/// held until its end: 80 gzip members of 1,000 plain-text events of
/// ~1 KB (≈ 85 MB inflated), every one rejected (`not_json`), convert with
/// `--rejects` in a peak RSS under 48 MB (before the rejects went out with
/// the CSV chunks, a 213 MB object of them peaked at 260 MB), and the
/// rejects file holds each of them, in order.
#[test]
fn an_object_of_rejected_events_is_not_held_in_memory() {
    use std::io::Write;
    let dir = tempdir();
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, REJECTING_SPEC).unwrap();
    let line = "plain text, not JSON ".repeat(48);
    let mut obj = Vec::new();
    let mut id = 0u64;
    for _ in 0..80 {
        let events: Vec<String> = (0..1000)
            .map(|_| {
                id += 1;
                format!(
                    r#"{{"id":"{id}","timestamp":{id},"message":"{line}"}}"#
                )
            })
            .collect();
        let env = envelope(&events);
        let mut e = flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        );
        e.write_all(env.as_bytes()).unwrap();
        obj.extend_from_slice(&e.finish().unwrap());
    }
    let input = dir.join("obj.gz");
    std::fs::write(&input, &obj).unwrap();
    let (rejects, summary) = (dir.join("r.jsonl"), dir.join("s.json"));
    let out = bin()
        .args(["convert", "--threads", "1", "--columns"])
        .arg(&spec)
        .arg("--out")
        .arg(dir.join("o.csv"))
        .arg("--rejects")
        .arg(&rejects)
        .arg("--summary-json")
        .arg(&summary)
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["rejected"], 80_000, "{s}");
    let text = std::fs::read_to_string(&rejects).unwrap();
    let ids: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["code"], "not_json", "{l}");
            assert_eq!(v["message"].as_str().map(str::len), Some(line.len()));
            v["id"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert!(
        ids.iter().copied().eq(1..=80_000),
        "rejects out of order or missing"
    );
    let rss = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(
        rss < 48 << 20,
        "peak RSS {rss} for {} MB of rejected events",
        text.len() >> 20
    );
    std::fs::remove_dir_all(dir).unwrap();
}
