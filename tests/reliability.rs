//! The bad-input matrix of RELIABILITY.md (issue #14): one test per row,
//! each driving the real binary and checking what it reports (error code,
//! object, member, offset), its exit code, what it quarantines and what
//! still loads.
//!
//! A decoder row decodes the bad object alone (`cwl-copy decode`: the
//! errors of `--summary-json` and the JSON lines on stderr), then loads it
//! next to a good object (`testdata/firehose/multi-member`, 12 events)
//! into a fresh schema of the test PostgreSQL (`cwl-copy load`): the
//! quarantine must hold exactly the reported errors (key, member, offset,
//! kind), the table the events that survive, the ledger both objects.
//! Bombs are built at test time from one compressed block repeated, and
//! the child's peak RSS is read with `/usr/bin/time -v`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tokio_postgres::Client;

use crate::decode::{bin, tempdir};
use crate::support;
use crate::support::cli::{run, Run};

const TABLE: &str = "rel";
const QUARANTINE: &str = "cwl_copy_quarantine";
const LEDGER: &str = "cwl_copy_ledger";
/// Events of [`good`], all of them rows.
const GOOD_EVENTS: i64 = 6;

/// The matrix's column spec: every event is a row unless its message is
/// not a JSON object (`not_json`, `not_object`) or a `path` holds U+0000
/// (`nul_char`); a `status` that is not an integer is NULL
/// (`on_mismatch = "null"`, the default).
const SPEC: &str = r#"table = "rel"
non_json = "reject"

[[columns]]
name = "event_id"
source = "@id"
type = "text"

[[columns]]
name = "ts"
source = "@timestamp"
type = "timestamp"

[[columns]]
name = "status"
source = "status"
type = "int"

[[columns]]
name = "path"
source = "path"
type = "text"

[[columns]]
name = "message"
source = "@message"
type = "text"
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec_path() -> &'static str {
    static P: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    P.get_or_init(|| write_spec("matrix.toml", SPEC))
}

fn write_spec(name: &str, text: &str) -> String {
    let p = tempdir().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The good object loaded next to every bad one: three members of two
/// events each, every message a JSON object the spec maps to a row.
fn good() -> Vec<u8> {
    good_tagged("g")
}

/// [`good`] with event ids starting with `tag` (distinct bytes, so the
/// ledger's content hash tells copies apart).
fn good_tagged(tag: &str) -> Vec<u8> {
    (0..3)
        .flat_map(|m| {
            let ids = [format!("{tag}{m}a"), format!("{tag}{m}b")];
            let msg = js(&format!(r#"{{"status":{m},"path":"/p"}}"#));
            gz(&envelope(&[
                (&ids[0], "1714568707123", &msg),
                (&ids[1], "1714568708123", &msg),
            ]))
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("testdata/bad").join(name)).unwrap()
}

/// One gzip member of `data`.
fn gz(data: &[u8]) -> Vec<u8> {
    let mut e =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An envelope of `events` (`(id, timestamp JSON, message JSON)`).
fn envelope(events: &[(&str, &str, &str)]) -> Vec<u8> {
    let evs: Vec<String> = events
        .iter()
        .map(|(id, ts, m)| {
            format!(r#"{{"id":"{id}","timestamp":{ts},"message":{m}}}"#)
        })
        .collect();
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{}]}}"#,
        evs.join(",")
    )
    .into_bytes()
}

/// A JSON string of `s`.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What `cwl-copy decode` said about one object.
struct Decoded {
    code: Option<i32>,
    /// `(kind, member, offset)` of each error in the summary.
    errors: Vec<(String, Option<u64>, u64)>,
    events: usize,
    stderr: String,
}

fn decode(path: &Path, extra: &[&str]) -> Decoded {
    // Not next to the object: a load of its directory would read it.
    let summary = tempdir().join("decode.json");
    let out = bin()
        .arg("decode")
        .args(extra)
        .arg("--summary-json")
        .arg(&summary)
        .arg(path)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let errors = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["member"].as_u64(),
                e["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Every error is a JSON line on stderr naming the object.
    let name = path.to_string_lossy();
    for l in stderr.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["object"], *name, "stderr line names the object: {l}");
    }
    Decoded {
        code: out.status.code(),
        errors,
        events: out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        stderr,
    }
}

/// A load into a fresh schema, and what it left.
struct Loaded {
    run: Run,
    client: Client,
    schema: String,
    dir: PathBuf,
}

impl Loaded {
    async fn count(&self, sql_from: &str) -> i64 {
        self.client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\".{sql_from}",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Rows in the target table.
    async fn rows(&self) -> i64 {
        self.count(TABLE).await
    }

    /// The quarantine: `(key, member, offset, kind, reason)`, in order.
    async fn quarantine(
        &self,
    ) -> Vec<(String, Option<i64>, Option<i64>, String, String)> {
        self.client
            .query(
                &format!(
                    "SELECT key, member, \"offset\", kind, reason \
                     FROM \"{}\".{QUARANTINE} ORDER BY key, member, \"offset\", event_id",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }

    /// Ledger keys.
    async fn ledger(&self) -> Vec<String> {
        self.client
            .query(
                &format!(
                    "SELECT key FROM \"{}\".{LEDGER} ORDER BY key",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The ledger key of file `name` in the input directory.
    fn key(&self, name: &str) -> String {
        std::fs::canonicalize(self.dir.join(name))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

/// `cwl-copy load` of the files `files` (written into a fresh directory)
/// into a fresh schema, with `spec` and `extra` flags.
async fn load_files(
    name: &str,
    files: &[(&str, &[u8])],
    spec: &str,
    extra: &[&str],
) -> Loaded {
    let dir = tempdir().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    let (client, schema) = support::pg_schema(name).await;
    let out = dir.with_file_name("load");
    let mut cmd = load_cmd(spec, &schema, &out);
    cmd.args(extra).arg(&dir);
    let run = run(&mut tokio::process::Command::from(cmd), &out).await;
    Loaded { run, client, schema, dir }
}

/// `cwl-copy load --columns spec --target <test server> --schema schema
/// --create-table`, summary at `<out>.json`, stderr to `<out>.log`.
fn load_cmd(spec: &str, schema: &str, out: &Path) -> Command {
    let mut cmd = bin();
    cmd.args(["load", "--columns", spec, "--target"])
        .arg(support::pg_url())
        .args(["--schema", schema, "--create-table", "--threads", "2"])
        .arg("--summary-json")
        .arg(out.with_extension("json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap());
    cmd
}

/// A bad object's row: decoded alone it reports exactly `want` (kind,
/// member, offset) and `events` events, exit 3 (0 when `want` is empty);
/// loaded next to the good object (exit 0 only when nothing is rejected),
/// exactly `want` is quarantined under its key as undecodable input, the
/// table holds the good object's rows plus `rows` of its own, and both
/// objects are in the ledger. Returns the load for more checks.
async fn bad_object(
    name: &str,
    data: &[u8],
    want: &[(&str, Option<u64>, u64)],
    events: usize,
    rows: i64,
) -> Loaded {
    let dir = tempdir();
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    let d = decode(&path, &[]);
    let got: Vec<(&str, Option<u64>, u64)> =
        d.errors.iter().map(|(k, m, o)| (k.as_str(), *m, *o)).collect();
    let want_d = want.to_vec();
    assert_eq!(got, want_d, "{name}: decode errors\n{}", d.stderr);
    assert_eq!(d.events, events, "{name}: events\n{}", d.stderr);
    assert_eq!(
        d.code,
        Some(if want.is_empty() { 0 } else { 3 }),
        "{name}: decode exit\n{}",
        d.stderr
    );

    let good = good();
    let l =
        load_files(name, &[("a-good", &good), (name, data)], spec_path(), &[])
            .await;
    let r = &l.run;
    let exit = if want.is_empty() && rows == events as i64 { 0 } else { 3 };
    assert_eq!(r.code, Some(exit), "{name}: load exit\n{}", r.stderr);
    assert_eq!(r.summary["reconciled"], true, "{}", r.summary);
    assert_eq!(r.n("errors"), want.len() as u64, "{}", r.summary);
    let key = l.key(name);
    let q: Vec<(String, Option<i64>, Option<i64>, String)> = l
        .quarantine()
        .await
        .into_iter()
        .filter(|q| q.3 != "rejected_event")
        .map(|(k, m, o, kind, _)| (k, m, o, kind))
        .collect();
    let want_q: Vec<(String, Option<i64>, Option<i64>, String)> = want
        .iter()
        .map(|&(k, m, o)| {
            (key.clone(), m.map(|m| m as i64), Some(o as i64), k.to_owned())
        })
        .collect();
    assert_eq!(q, want_q, "{name}: quarantine\n{}", r.stderr);
    assert_eq!(l.rows().await, GOOD_EVENTS + rows, "{name}: rows");
    assert_eq!(l.ledger().await, vec![l.key("a-good"), key], "{name}: ledger");
    l
}

// ---------------------------------------------------------------------------
// Objects: framing and gzip
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_empty_object() {
    bad_object("empty", b"", &[], 0, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_bytes_that_are_not_gzip() {
    // Binary that is neither gzip nor JSON: read as extracted lines (one
    // per `\n`), each rejected as invalid UTF-8 with its offset.
    let data: Vec<u8> = (0u8..=255).rev().cycle().take(4096).collect();
    let d = decode_bytes("not-gzip", &data);
    // Lines of bytes >= 0x80 are invalid UTF-8; the last one (bytes 9 to
    // 0) is text, an event whose message is not JSON (`not_json`).
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let bad = lines.iter().filter(|l| l.iter().any(|&b| b >= 0x80)).count();
    assert_eq!((lines.len(), bad), (17, 16));
    assert_eq!(d.errors.len(), bad, "{}", d.stderr);
    assert_eq!(d.events, 1, "{}", d.stderr);
    let want: Vec<(&str, Option<u64>, u64)> = d
        .errors
        .iter()
        .enumerate()
        .map(|(i, (k, m, o))| {
            assert_eq!((k.as_str(), *m), ("invalid_utf8", Some(i as u64)));
            (k.as_str(), *m, *o)
        })
        .collect();
    assert_eq!(want[1].2, 246, "line 1 starts after the first newline");
    let l = bad_object("not-gzip", &data, &want, 1, 0).await;
    let q = l.quarantine().await;
    let (events, ranges): (Vec<_>, Vec<_>) =
        q.iter().partition(|q| q.3 == "rejected_event");
    assert!(ranges.iter().all(|q| q.4 == "undecodable"), "{q:?}");
    assert_eq!(events.len(), 1);
    assert!(events[0].4.starts_with("not_json: "), "{q:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_bad_gzip_header() {
    bad_object(
        "bad-header",
        &fixture("bad-header"),
        &[("unreadable", Some(1), 628)],
        4,
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_crc_mismatch() {
    bad_object(
        "crc",
        &fixture("crc-mismatch"),
        &[("gzip_crc", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_isize_mismatch() {
    bad_object(
        "isize",
        &fixture("isize-mismatch"),
        &[("gzip_isize", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_corrupt_deflate() {
    let data = fixture("corrupt-deflate");
    let d = decode_bytes("corrupt-deflate", &data);
    assert_eq!(d.errors.len(), 1, "{}", d.stderr);
    let (kind, member, offset) = d.errors[0].clone();
    let member = member.unwrap();
    bad_object(
        "corrupt",
        &data,
        &[(&kind, Some(member), offset)],
        d.events,
        d.events as i64,
    )
    .await;
}

/// Decodes `data` written to a temp file named `name`.
fn decode_bytes(name: &str, data: &[u8]) -> Decoded {
    let path = tempdir().join(name);
    std::fs::write(&path, data).unwrap();
    decode(&path, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_member_truncated_at_several_points() {
    // A good member, then a second one cut inside its magic, its header,
    // its deflate data and its trailer.
    let first = gz(&envelope(&[("1", "1", r#""{\"status\":1}""#)]));
    let second = gz(&envelope(&[("2", "2", r#""{\"status\":2}""#)]));
    let at = first.len() as u64;
    for cut in [1, 5, 10, second.len() / 2, second.len() - 4, second.len() - 1]
    {
        let mut data = first.clone();
        data.extend_from_slice(&second[..cut]);
        let name = format!("cut-{cut}");
        let d = decode_bytes(&name, &data);
        assert_eq!(d.errors.len(), 1, "{name}: {}", d.stderr);
        let (kind, member, offset) = &d.errors[0];
        // Framing is lost at the cut: the rest of the object, from the
        // member's first byte, is one unreadable range.
        assert_eq!(kind, "unreadable", "{name}: {}", d.stderr);
        assert_eq!((*member, *offset), (Some(1), at), "{name}");
        bad_object(&name, &data, &[(kind, Some(1), at)], 1, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_trailing_garbage() {
    bad_object(
        "trailing",
        &fixture("trailing-garbage"),
        &[("trailing_garbage", Some(1), 628)],
        4,
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_gzip_over_gzip_with_a_corrupt_inner_member() {
    let a = gz(&envelope(&[("1", "1", r#""{\"status\":1}""#)]));
    let mut b = gz(&envelope(&[("2", "2", r#""{\"status\":2}""#)]));
    // Flip the inner member's CRC.
    let n = b.len();
    b[n - 8] ^= 0xff;
    let c = gz(&envelope(&[("3", "3", r#""{\"status\":3}""#)]));
    let inner = [a.clone(), b, c].concat();
    let outer = gz(&inner);
    // Inner members are numbered and placed in the inflated outer stream.
    bad_object(
        "gzip2",
        &outer,
        &[("gzip_crc", Some(1), a.len() as u64)],
        2,
        2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_zip_object_is_unsupported() {
    bad_object(
        "zip",
        &fixture("zip-object"),
        &[("unsupported_format", None, 0)],
        0,
        0,
    )
    .await;
}

// ---------------------------------------------------------------------------
// Bombs
// ---------------------------------------------------------------------------

/// One gzip member of `n` zero bytes (`n` a multiple of 1 MiB), built
/// from one full-flushed deflate block of 1 MiB of zeros repeated (each
/// copy is byte-aligned and needs no history), a final empty block and
/// the real trailer (CRC-32 combined per MiB, ISIZE mod 2^32).
fn zeros_member(n: u64) -> Vec<u8> {
    const MIB: usize = 1 << 20;
    assert_eq!(n % MIB as u64, 0);
    let zeros = vec![0u8; MIB];
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(MIB);
    c.compress_vec(&zeros, &mut block, flate2::FlushCompress::Full).unwrap();
    assert_eq!(c.total_in(), MIB as u64);
    let mut one = crc32fast::Hasher::new();
    one.update(&zeros);
    let mut crc = crc32fast::Hasher::new();
    let copies = n / MIB as u64;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.reserve(block.len() * copies as usize + 20);
    for _ in 0..copies {
        out.extend_from_slice(&block);
        crc.combine(&one);
    }
    // BFINAL=1, BTYPE=01 (fixed), end of block: 0x03 0x00.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out
}

/// Runs `cmd` under `/usr/bin/time -v`: (exit code, peak RSS in bytes).
fn with_peak_rss(cmd: &Command) -> (Option<i32>, u64, String) {
    let mut t = Command::new("/usr/bin/time");
    t.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    let out = t
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time (GNU time) is needed for the RSS checks");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let kb: u64 = err
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("Maximum resident set size (kbytes): ")
        })
        .unwrap_or_else(|| panic!("no RSS from /usr/bin/time:\n{err}"))
        .parse()
        .unwrap();
    (out.status.code(), kb * 1024, err)
}

/// A bomb member followed by the good object, loaded with a member limit
/// of 64 MiB: stopped at the limit, the good members after it loaded,
/// peak RSS under 200 MB. Returns the peak RSS.
async fn bomb(name: &str, zeros: u64) -> u64 {
    let mut data = zeros_member(zeros);
    data.extend_from_slice(&good());
    let bomb_len = data.len() - good().len();
    let dir = tempdir().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &data).unwrap();
    drop(data);
    let (client, schema) = support::pg_schema(name).await;
    let out = dir.with_file_name("load");
    let mut cmd = load_cmd(spec_path(), &schema, &out);
    // The default limits (64 MiB per member).
    cmd.arg(&dir);
    let (code, rss, err) =
        tokio::task::spawn_blocking(move || with_peak_rss(&cmd))
            .await
            .unwrap();
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert_eq!(code, Some(3), "{log}\n{err}");
    let summary: Value = serde_json::from_slice(
        &std::fs::read(out.with_extension("json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["reconciled"], true);
    assert!(rss < 200_000_000, "{name}: peak RSS {rss} bytes");
    let q = client
        .query(
            &format!(
                "SELECT member, \"offset\", kind, reason FROM \"{schema}\".{QUARANTINE}"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(q.len(), 1, "{log}");
    let (m, o, k): (Option<i64>, Option<i64>, String) =
        (q[0].get(0), q[0].get(1), q[0].get(2));
    assert_eq!((m, o, k.as_str()), (Some(0), Some(0), "member_too_large"));
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{TABLE}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, GOOD_EVENTS, "the members after the bomb load");
    eprintln!(
        "{name}: {zeros} zero bytes in {bomb_len} bytes of gzip: peak RSS {rss}"
    );
    rss
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_bomb_1_gib_of_zeros() {
    bomb("bomb-1g", 1 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_bomb_20_gib_of_zeros() {
    bomb("bomb-20g", 20 << 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_object_over_the_object_limit() {
    // Four envelopes of one 30 MiB message each: the fourth takes the
    // object past --max-object-bytes 100 MiB and stops it there; the
    // three before it load.
    let members: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let msg = js(&format!(
                r#"{{"status":{i},"pad":"{}"}}"#,
                "x".repeat(30 << 20)
            ));
            gz(&envelope(&[(&format!("big{i}"), "1", &msg)]))
        })
        .collect();
    let at: usize = members[..3].iter().map(Vec::len).sum();
    let data = members.concat();
    let dir = tempdir().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big"), &data).unwrap();
    let limit = ["--max-object-bytes", "104857600"];
    let d = decode(&dir.join("big"), &limit);
    let got: Vec<(&str, Option<u64>, u64)> =
        d.errors.iter().map(|(k, m, o)| (k.as_str(), *m, *o)).collect();
    assert_eq!(
        got,
        [("object_too_large", Some(3), at as u64)],
        "{}",
        d.stderr
    );
    assert_eq!(d.events, 3);
    assert_eq!(d.code, Some(3));
    let (client, schema) = support::pg_schema("object-limit").await;
    let out = dir.with_file_name("load");
    let mut cmd = load_cmd(spec_path(), &schema, &out);
    cmd.args(limit).arg(&dir);
    let (code, rss, _) =
        tokio::task::spawn_blocking(move || with_peak_rss(&cmd))
            .await
            .unwrap();
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert_eq!(code, Some(3), "{log}");
    let q = client
        .query(
            &format!(
                "SELECT member, \"offset\", kind, reason, left(message, 200) FROM \"{schema}\".{QUARANTINE}"
            ),
            &[],
        )
        .await
        .unwrap();
    let reasons: Vec<(String, String)> =
        q.iter().map(|r| (r.get(3), r.get(4))).collect();
    let q: Vec<(Option<i64>, Option<i64>, String)> =
        q.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        q,
        [(Some(3), Some(at as i64), "object_too_large".to_owned())],
        "{reasons:?}\n{log}"
    );
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{TABLE}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 3, "the members before the limit load");
    eprintln!("object limit: load peak RSS {rss}");
    assert!(rss < 1_000_000_000, "peak RSS {rss}");
}

#[test]
fn matrix_bomb_of_zero_members_in_the_lines_layout() {
    // Four members of 64 MiB of zeros: no JSON, no newline, so one line
    // of the extracted-lines layout, inflated as one stream. The line at
    // byte 0 passes the member limit (64 MiB) before the object limit
    // (200 MiB): the rest of the object is unreadable from there.
    let mut data = Vec::new();
    for _ in 0..4 {
        data.extend(zeros_member(64 << 20));
    }
    data.extend(good());
    let path = tempdir().join("object-bomb");
    std::fs::write(&path, &data).unwrap();
    let mut cmd = bin();
    cmd.args(["decode", "--max-member-bytes", "67108864"])
        .args(["--max-object-bytes", "209715200", "--summary-json"])
        .arg(path.with_extension("json"))
        .arg(&path);
    let (code, rss, _) = with_peak_rss(&cmd);
    assert_eq!(code, Some(3));
    let d = decode(
        &path,
        &["--max-member-bytes", "67108864", "--max-object-bytes", "209715200"],
    );
    let got: Vec<(&str, Option<u64>, u64)> =
        d.errors.iter().map(|(k, m, o)| (k.as_str(), *m, *o)).collect();
    assert_eq!(got, [("unreadable", Some(0), 0)], "{}", d.stderr);
    assert!(
        d.stderr.contains("member inflates to more than the limit of"),
        "{}",
        d.stderr
    );
    assert_eq!(d.events, 0, "nothing after the limit is read");
    eprintln!("zero members: decode peak RSS {rss}");
    assert!(rss < 200_000_000, "peak RSS {rss}");
}

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_json_truncated() {
    bad_object(
        "json-cut",
        &fixture("truncated-json"),
        &[("json_truncated", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_json_syntax_error() {
    bad_object(
        "json-syntax",
        &fixture("json-syntax"),
        &[("json_syntax", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_log_events_not_an_array() {
    let first = gz(&envelope(&[("1", "1", r#""{\"status\":1}""#)]));
    let bad = gz(br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","logEvents":{"id":"2"}}"#);
    let data = [first.clone(), bad].concat();
    let l = bad_object(
        "events-object",
        &data,
        &[("not_an_envelope", Some(1), first.len() as u64)],
        1,
        1,
    )
    .await;
    let reason = &l.run.stderr;
    assert!(!reason.is_empty());
    let d = decode_bytes("events-object", &data);
    assert!(
        d.stderr.contains("`logEvents` is an object, not an array"),
        "{}",
        d.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_missing_log_events() {
    bad_object(
        "no-events",
        &fixture("missing-logevents"),
        &[("not_an_envelope", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_timestamp_a_string() {
    bad_object(
        "ts-string",
        &fixture("timestamp-string"),
        &[("not_an_envelope", Some(1), 628)],
        5,
        // One of the events that decode is plain text: `not_json`.
        4,
    )
    .await;
    let d = decode_bytes("ts-string", &fixture("timestamp-string"));
    assert!(
        d.stderr.contains("`timestamp` is a string, not an integer"),
        "{}",
        d.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_invalid_utf8_in_an_envelope() {
    bad_object(
        "utf8",
        &fixture("invalid-utf8"),
        &[("invalid_utf8", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_invalid_utf8_in_extracted_lines() {
    let data = fixture("lines-invalid-utf8");
    let d = decode_bytes("lines-utf8", &data);
    assert_eq!(d.errors.len(), 1, "{}", d.stderr);
    let (k, m, o) = d.errors[0].clone();
    assert_eq!(k, "invalid_utf8");
    // Extracted lines are not JSON envelopes: the spec rejects them
    // (`not_json`), so none of the object's events load.
    let l = bad_object("lines-utf8", &data, &[(&k, m, o)], d.events, 0).await;
    let rejected = l
        .quarantine()
        .await
        .into_iter()
        .filter(|q| q.3 == "rejected_event")
        .count();
    assert_eq!(rejected, d.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_lone_surrogate_escape() {
    bad_object(
        "surrogate",
        &fixture("lone-surrogate"),
        &[("invalid_unicode_escape", Some(1), 628)],
        5,
        5,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_envelope_nested_100000_deep() {
    let first = gz(&envelope(&[("1", "1", r#""{\"status\":1}""#)]));
    let deep = format!(
        r#"{{"messageType":"DATA_MESSAGE","logEvents":[],"x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let data = [first.clone(), gz(deep.as_bytes())].concat();
    bad_object(
        "deep-envelope",
        &data,
        &[("json_too_deep", Some(1), first.len() as u64)],
        1,
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_raw_nul_byte_in_an_envelope() {
    let first = gz(&envelope(&[("1", "1", r#""{\"status\":1}""#)]));
    let mut nul = envelope(&[("2", "2", "\"a\0b\"")]);
    assert!(nul.contains(&0));
    nul.push(b'\n');
    let data = [first.clone(), gz(&nul)].concat();
    bad_object(
        "nul-raw",
        &data,
        &[("json_syntax", Some(1), first.len() as u64)],
        1,
        1,
    )
    .await;
}

// ---------------------------------------------------------------------------
// Messages (the mapping)
// ---------------------------------------------------------------------------

/// An object of one member whose events have these messages (JSON
/// strings): loaded next to the good object, the events whose code is
/// `Some` are quarantined with it and the rest load.
async fn messages(name: &str, msgs: &[(&str, Option<&str>)]) -> Loaded {
    let ids: Vec<String> = (0..msgs.len()).map(|i| format!("{i}")).collect();
    let evs: Vec<(&str, &str, &str)> = msgs
        .iter()
        .zip(&ids)
        .map(|((m, _), id)| (id.as_str(), "1714568707123", *m))
        .collect();
    let data = gz(&envelope(&evs));
    let want_rows = msgs.iter().filter(|m| m.1.is_none()).count() as i64;
    let l = bad_object(name, &data, &[], msgs.len(), want_rows).await;
    let key = l.key(name);
    let q = l.quarantine().await;
    let got: Vec<(String, String)> = q
        .iter()
        .filter(|q| q.3 == "rejected_event")
        .map(|q| (q.0.clone(), q.4.split(':').next().unwrap().to_owned()))
        .collect();
    let want: Vec<(String, String)> = msgs
        .iter()
        .filter_map(|m| m.1.map(|c| (key.clone(), c.to_owned())))
        .collect();
    assert_eq!(got, want, "{name}: rejected events\n{}", l.run.stderr);
    assert_eq!(l.run.n("rejected"), want.len() as u64);
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_non_json_message() {
    messages(
        "non-json",
        &[
            (&js("plain text, not JSON"), Some("not_json")),
            (&js(r#"{"status":7}"#), None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_json_message_that_is_not_an_object() {
    messages(
        "not-object",
        &[
            (&js("[1,2]"), Some("not_object")),
            (&js("42"), Some("not_object")),
            (&js("null"), Some("not_object")),
            (&js(r#"{"status":7}"#), None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_nul_escape_in_a_message() {
    // `\u0000` in the message's JSON: a value holding U+0000, rejected
    // (`nul = "reject"`, the default), quarantined as written.
    let l = messages(
        "nul-escape",
        &[
            (&js(r#"{"status":1,"path":"a\u0000b"}"#), Some("nul_char")),
            (&js(r#"{"status":7}"#), None),
        ],
    )
    .await;
    assert_eq!(
        quarantined_message(&l).await,
        r#"{"status":1,"path":"a\u0000b"}"#
    );
}

/// The message of the (one) rejected event in `l`'s quarantine.
async fn quarantined_message(l: &Loaded) -> String {
    l.client
        .query_one(
            &format!(
                "SELECT message FROM \"{}\".{QUARANTINE} \
                 WHERE kind = 'rejected_event'",
                l.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_raw_nul_in_a_message() {
    // A message holding U+0000 itself (escaped in the envelope): not
    // JSON; PostgreSQL text holds no U+0000, so the quarantine writes it
    // `\u0000` (it used to fail the whole batch).
    let l = messages(
        "nul-raw-message",
        &[
            (&js("{\"status\":1,\"x\":\"a\u{0}b\"}"), Some("not_json")),
            (&js(r#"{"status":7}"#), None),
        ],
    )
    .await;
    assert_eq!(
        quarantined_message(&l).await,
        r#"{"status":1,"x":"a\u0000b"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_lone_surrogate_in_a_message() {
    // Valid in the envelope (the message is a string holding `\ud800`
    // as six characters); the message's own JSON has a lone surrogate.
    messages(
        "msg-surrogate",
        &[
            (&js(r#"{"status":1,"x":"\ud800"}"#), Some("not_json")),
            (&js(r#"{"status":7}"#), None),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_message_nested_100000_deep() {
    let deep = format!(
        r#"{{"status":1,"x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    messages(
        "deep-message",
        &[(&js(&deep), Some("not_json")), (&js(r#"{"status":7}"#), None)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_one_100_mb_message() {
    // At the default limits (64 MiB per inflated member) its member is
    // rejected, named and quarantined; the other object loads.
    let pad = "x".repeat(100_000_000);
    let msg = js(&format!(r#"{{"status":1,"pad":"{pad}"}}"#));
    let data = gz(&envelope(&[("big", "1", &msg)]));
    let d = bad_object(
        "big-message",
        &data,
        &[("member_too_large", Some(0), 0)],
        0,
        0,
    )
    .await;
    assert_eq!(d.count(QUARANTINE).await, 1);
    // PostgreSQL, with room for the member: loads (no limit below the
    // 1 GB field limit), in bounded memory (a few copies of the message).
    let room = ["--max-member-bytes", "256MiB"];
    let l = load_files(
        "big-message-room",
        &[("big-message", &data)],
        spec_path(),
        &room,
    )
    .await;
    assert_eq!(l.run.code, Some(0), "{}", l.run.stderr);
    let len: i64 = l
        .client
        .query_one(
            &format!(
                "SELECT max(length(message))::bigint FROM \"{}\".{TABLE}",
                l.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(len, 100_000_000 + r#"{"status":1,"pad":""}"#.len() as i64);
    let rss = l.run.n("peak_rss_bytes");
    eprintln!("100 MB message: load peak RSS {rss}");
    assert!(rss < 1_000_000_000, "peak RSS {rss}");
    // Redshift: over the VARCHAR limit of 65535 bytes, rejected.
    let path = l.dir.join("big-message");
    let out = tempdir().join("rs");
    let o = bin()
        .args(["convert", "--columns", spec_path(), "--dialect", "redshift"])
        .args(room)
        .arg("--out")
        .arg(out.with_extension("csv"))
        .arg("--summary-json")
        .arg(out.with_extension("json"))
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(
        &std::fs::read(out.with_extension("json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["rejects_by_code"]["too_long"], 1, "{s}");
    assert_eq!(s["rows"], 0, "{s}");
}

// ---------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------

/// `cwl-copy load` with the spec `text`: exit 2 and a message naming
/// the spec file, line and column, and `what`; nothing is created.
async fn bad_spec(name: &str, text: &str, line: usize, what: &str) {
    let spec = write_spec(&format!("{name}.toml"), text);
    let l = load_files(name, &[("a-good", &good())], &spec, &[]).await;
    assert_eq!(l.run.code, Some(2), "{}", l.run.stderr);
    assert!(
        l.run
            .stderr
            .contains(&format!("{spec}: column spec, line {line}, column ")),
        "{}",
        l.run.stderr
    );
    assert!(l.run.stderr.contains(what), "{what:?} in {}", l.run.stderr);
    let tables: i64 = l
        .client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&l.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a bad spec creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_spec_with_bad_toml() {
    bad_spec("spec-toml", "table = \"t\"\n[[columns]\nname = \"a\"\n", 2, "")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_spec_with_an_unknown_type() {
    let text = SPEC.replace("type = \"int\"", "type = \"integer\"");
    let line = text.lines().position(|l| l.contains("integer")).unwrap() + 1;
    bad_spec("spec-type", &text, line, "integer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_spec_with_an_invalid_filter_pattern() {
    let text = SPEC.replace("non_json", "filter = '{ $.status = }'\nnon_json");
    bad_spec("spec-filter", &text, 2, "bad filter pattern: at column").await;
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_directory_with_a_symlink_loop() {
    let dir = tempdir().join("loop");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a-good"), good()).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/back")).unwrap();
    let (client, schema) = support::pg_schema("symlink-loop").await;
    let out = dir.with_file_name("loop-load");
    let mut cmd = load_cmd(spec_path(), &schema, &out);
    cmd.arg(&dir);
    let r = run(&mut tokio::process::Command::from(cmd), &out).await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("loop"), "{}", r.stderr);
    assert!(r.stderr.contains("sub/back"), "names the link: {}", r.stderr);
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "listing fails before anything is loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_s3_keys_with_spaces_plus_percent_and_non_ascii() {
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, "rel-keys").await;
    let keys = [
        "logs/a key with spaces",
        "logs/plus+sign",
        "logs/100%25 and %zz",
        "logs/ünïcødé/日本",
    ];
    for (i, k) in keys.iter().enumerate() {
        s3.put_object()
            .bucket(&bucket)
            .key(*k)
            .body(good_tagged(&format!("k{i}")).into())
            .send()
            .await
            .unwrap();
    }
    let (client, schema) = support::pg_schema("s3-keys").await;
    let out = tempdir().join("s3-keys");
    let mut cmd = load_cmd(spec_path(), &schema, &out);
    cmd.args(["--endpoint-url", &support::aws_endpoint()])
        .arg(format!("s3://{bucket}/logs/"));
    let r = run(&mut tokio::process::Command::from(cmd), &out).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let mut got: Vec<String> = client
        .query(&format!("SELECT key FROM \"{schema}\".{LEDGER}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    got.sort();
    let mut want: Vec<String> =
        keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    want.sort();
    assert_eq!(got, want, "keys exactly as stored");
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{TABLE}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, GOOD_EVENTS * keys.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_sqs_body_that_is_not_an_s3_event() {
    let sqs = support::sqs_client().await;
    let queue = support::fresh_queue(&sqs, "rel-bodies").await;
    // The last: an S3 event whose key decodes to U+0000, which no ledger
    // can record (it would fail its batch on every retry).
    let bodies = [
        "hello, not JSON",
        r#"{"greeting":"hi"}"#,
        "[1,2,3]",
        r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%00b","size":1}}}]}"#,
    ];
    for b in bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let (client, schema) = support::pg_schema("sqs-bodies").await;
    let out = tempdir().join("sqs-bodies");
    let mut cmd = load_cmd(spec_path(), &schema, &out);
    cmd.args(["--endpoint-url", &support::aws_endpoint()]).args([
        "--sqs-queue-url",
        &queue,
        "--once",
        "--wait-seconds",
        "1",
    ]);
    let r = run(&mut tokio::process::Command::from(cmd), &out).await;
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert_eq!(r.n("messages_quarantined"), 4, "{}", r.summary);
    assert_eq!(r.n("messages_deleted"), 4, "{}", r.summary);
    let q = client
        .query(
            &format!("SELECT kind, key, message, reason FROM \"{schema}\".{QUARANTINE} ORDER BY message"),
            &[],
        )
        .await
        .unwrap();
    let mut got: Vec<String> =
        q.iter().map(|r| r.get::<_, String>(2)).collect();
    got.sort();
    let mut want: Vec<String> =
        bodies.iter().map(|b| (*b).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "the bodies, verbatim");
    for r in &q {
        assert_eq!(r.get::<_, String>(0), "bad_message");
        assert!(r.get::<_, String>(1).starts_with("sqs://"));
    }
    let reasons: Vec<String> = q.iter().map(|r| r.get(3)).collect();
    assert!(
        reasons.iter().any(|r| r.contains("key holds U+0000 (at byte 1)")),
        "{reasons:?}"
    );
    // Deleted: the queue is empty.
    let left = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty(), "quarantined bodies are deleted");
}

// ---------------------------------------------------------------------------
// Identifiers and secrets
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_names_with_quotes_and_semicolons_are_quoted() {
    let table = r#"t"; DROP TABLE canary; --"#;
    let column = r#"c"; DROP TABLE canary; --"#;
    let text = SPEC
        .replace(r#"table = "rel""#, &format!("table = '{table}'"))
        .replace(r#"name = "status""#, &format!("name = '{column}'"));
    let spec = write_spec("quotes.toml", &text);
    let (client, base) = support::pg_schema("quotes").await;
    client
        .batch_execute(&format!("CREATE TABLE \"{base}\".canary (x int)"))
        .await
        .unwrap();
    let schema = format!("{base}\"; DROP TABLE \"{base}\".canary; --");
    let dir = tempdir().join("quoted");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a-good"), good()).unwrap();
    let out = dir.with_file_name("quoted-load");
    let mut cmd = load_cmd(&spec, &schema, &out);
    cmd.arg(&dir);
    let r = run(&mut tokio::process::Command::from(cmd), &out).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let rows: i64 = client
        .query_one(
            &format!(
                "SELECT count({}) FROM {}.{}",
                q(column),
                q(&schema),
                q(table)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, GOOD_EVENTS, "the names are the table's, exactly");
    let canary: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{base}\".canary"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(canary, 0, "the canary table is still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_password_in_the_connection_string_is_never_printed() {
    const SECRET: &str = "Sup3rSecretPassw0rd";
    let url = support::pg_url();
    let with_pw = url.replacen("postgres@", &format!("postgres:{SECRET}@"), 1);
    assert_ne!(with_pw, url, "{url}");
    let dir = tempdir().join("secret");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a-good"), good()).unwrap();
    let (_client, schema) = support::pg_schema("secret").await;
    // A load that works, one whose server is not there, one with a bad
    // flag after the target: all at the most verbose logging.
    let dead =
        with_pw.replacen(&format!(":{}/", support::env("PGPORT")), ":1/", 1);
    assert_ne!(dead, with_pw);
    for (target, want) in [(&with_pw, 0), (&dead, 1)] {
        let out = dir.with_file_name(format!("secret-{want}"));
        let mut cmd = bin();
        cmd.args(["load", "--columns", spec_path(), "--target", target])
            .args(["--schema", &schema, "--create-table", "--summary-json"])
            .arg(out.with_extension("json"))
            .arg(&dir)
            .env("RUST_LOG", "trace")
            .env("CWL_COPY_LOG", "trace")
            .env("RUST_BACKTRACE", "full");
        let o = cmd.output().unwrap();
        let all = format!(
            "{}{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(out.with_extension("json"))
                .unwrap_or_default()
        );
        assert_eq!(o.status.code(), Some(want), "{all}");
        assert!(all.contains("TRACE") || want == 1, "trace logging is on");
        assert!(!all.contains(SECRET), "the password is printed:\n{all}");
    }
}

// ---------------------------------------------------------------------------
// Limits of the loader: batches, S3 downloads at once
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_batch_objects_and_batch_bytes_close_batches() {
    let objs: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("o{i}"), good_tagged(&format!("b{i}"))))
        .collect();
    let files: Vec<(&str, &[u8])> =
        objs.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    for (flags, batches) in [
        (&["--batch-objects", "2"][..], 3),
        (&["--batch-bytes", "1"][..], 5),
        (&[][..], 1),
    ] {
        let l = load_files("batches", &files, spec_path(), flags).await;
        assert_eq!(l.run.code, Some(0), "{}", l.run.stderr);
        assert_eq!(
            l.run.n("batches"),
            batches,
            "{flags:?}: {}",
            l.run.summary
        );
        assert_eq!(l.rows().await, 5 * GOOD_EVENTS);
        assert_eq!(l.ledger().await.len(), 5);
    }
}

/// An HTTP/1.1 proxy in front of `upstream` that counts the requests in
/// flight at once (the most seen): a request is in flight from its first
/// byte until its response's last (by `Content-Length`, or the end of a
/// chunked body), whatever connection it uses.
async fn counting_proxy(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else { return };
            let Ok(out) = tokio::net::TcpStream::connect(&upstream).await
            else {
                continue;
            };
            let (mut cr, mut cw) = inbound.into_split();
            let (mut ur, mut uw) = out.into_split();
            let busy = Arc::new(AtomicBool::new(false));
            let (b1, f1, m1) =
                (Arc::clone(&busy), Arc::clone(&in_flight), Arc::clone(&most));
            // Client to upstream: a request starts when bytes come in
            // while none is in flight on this connection.
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n @ 1..) = cr.read(&mut buf).await {
                    if !b1.swap(true, Ordering::SeqCst) {
                        let now = f1.fetch_add(1, Ordering::SeqCst) + 1;
                        m1.fetch_max(now, Ordering::SeqCst);
                    }
                    if uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = uw.shutdown().await;
            });
            let (b2, f2) = (busy, Arc::clone(&in_flight));
            // Upstream to client: it ends with its response's body.
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                let mut head = Vec::new();
                let mut body_left: Option<usize> = None;
                let mut chunked = false;
                let mut tail = Vec::new();
                while let Ok(n @ 1..) = ur.read(&mut buf).await {
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let mut data = &buf[..n];
                    while !data.is_empty() {
                        if let Some(left) = body_left.as_mut() {
                            let k = (*left).min(data.len());
                            *left -= k;
                            data = &data[k..];
                        } else if chunked {
                            tail.extend_from_slice(data);
                            data = &[];
                        } else {
                            head.extend_from_slice(data);
                            data = &[];
                            let Some(end) =
                                head.windows(4).position(|w| w == b"\r\n\r\n")
                            else {
                                continue;
                            };
                            let text = String::from_utf8_lossy(&head[..end])
                                .to_ascii_lowercase();
                            let rest = head[end + 4..].to_vec();
                            head.clear();
                            let len = text.lines().find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse().ok())
                            });
                            chunked =
                                text.contains("transfer-encoding: chunked");
                            body_left = if chunked {
                                None
                            } else {
                                Some(len.unwrap_or(0))
                            };
                            if chunked {
                                tail = rest;
                            } else {
                                // Re-run the loop on what came with the head.
                                let mut left = body_left.unwrap_or(0);
                                let k = left.min(rest.len());
                                left -= k;
                                body_left = Some(left);
                            }
                        }
                        let done = match body_left {
                            Some(0) => true,
                            _ => chunked && tail.ends_with(b"0\r\n\r\n"),
                        };
                        if done {
                            body_left = None;
                            chunked = false;
                            tail.clear();
                            if b2.swap(false, Ordering::SeqCst) {
                                f2.fetch_sub(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
                if b2.swap(false, Ordering::SeqCst) {
                    f2.fetch_sub(1, Ordering::SeqCst);
                }
                let _ = cw.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_s3_concurrency_bounds_the_requests_in_flight() {
    use std::sync::atomic::Ordering;
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, "rel-conc").await;
    for i in 0..16 {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("logs/o{i:02}"))
            .body(good_tagged(&format!("c{i}")).into())
            .send()
            .await
            .unwrap();
    }
    for c in [1usize, 2] {
        let (endpoint, most) = counting_proxy(support::aws_endpoint()).await;
        let (client, schema) = support::pg_schema("s3-conc").await;
        let out = tempdir().join("s3-conc");
        let mut cmd = load_cmd(spec_path(), &schema, &out);
        cmd.args(["--endpoint-url", &endpoint])
            .args(["--s3-concurrency", &c.to_string()])
            .arg(format!("s3://{bucket}/logs/"));
        let r = run(&mut tokio::process::Command::from(cmd), &out).await;
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_eq!(r.n("objects_loaded"), 16);
        let rows: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM \"{schema}\".{TABLE}"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 16 * GOOD_EVENTS);
        // The downloads; the listing is over before they start.
        let most = most.load(Ordering::SeqCst);
        eprintln!("--s3-concurrency {c}: {most} requests in flight at most");
        assert!((1..=c).contains(&most), "--s3-concurrency {c}: {most}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_sqs_messages_held_at_once() {
    use crate::support::sqs;
    // 40 notifications, one object each; `--batch-objects 1` holds at
    // most 2 x 1, at least 20, messages at once (`max_in_flight`).
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, "rel-held").await;
    let mut bodies = Vec::new();
    for i in 0..40 {
        let key = format!("logs/o{i:02}");
        let data = good_tagged(&format!("h{i}"));
        bodies.push(sqs::created(&bucket, &key, data.len() as u64));
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .body(data.into())
            .send()
            .await
            .unwrap();
    }
    let sqs_c = support::sqs_client().await;
    let q = sqs::queue(&sqs_c, "rel-held", Some(120)).await;
    sqs::send(&sqs_c, &q, &bodies).await;
    let (client, schema) = support::pg_schema("sqs-held").await;
    let out = tempdir().join("sqs-held");
    let flags = ["--once", "--wait-seconds", "1", "--batch-objects", "1"];
    let mut cmd = sqs::sqs_load_cmd(
        spec_path(),
        &schema,
        &q,
        &support::aws_endpoint(),
        &flags,
        &out,
    );
    let mut child = cmd.spawn().unwrap();
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        let (_, in_flight) = sqs::counts(&sqs_c, &q).await;
        most = most.max(in_flight);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = crate::support::cli::finish(child, &out).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.n("objects_loaded"), 40, "{}", r.summary);
    assert_eq!(r.n("messages_deleted"), 40, "{}", r.summary);
    eprintln!("--batch-objects 1: {most} messages in flight at most");
    assert!((1..=20).contains(&most), "{most} messages held at once");
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM \"{schema}\".{TABLE}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 40 * GOOD_EVENTS);
    sqs::assert_queue_empty(&sqs_c, &q).await;
}
