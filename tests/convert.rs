//! `cwl-copy convert`: spec, filter, CSV, parallel determinism, rejects
//! and the summary that reconciles.

use std::path::PathBuf;

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
    assert!(lines
        .iter()
        .all(|l| l["object"].as_str().unwrap().contains("testdata/bad/")));
    assert_eq!(s["reconciled"], true);
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
