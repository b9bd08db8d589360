//! S3 as a source (issue 9, section 3): the real binary against moto
//! (and PostgreSQL), through the command-line contract of the issue:
//! `s3://bucket/prefix/` and `s3://bucket/key` inputs, `--from`/`--to`
//! (hour prefixes, `--to` exclusive), endpoints from `--endpoint-url`,
//! `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`, the summary's
//! `objects_listed`, `objects_skipped_ledger`, `objects_vanished` and
//! `bytes_downloaded`, and `s3://bucket/key` ledger keys.
//!
//! The corpus (`support::corpus_s3`) is three days of hourly Firehose
//! prefixes in every layout, with bad objects and awkward keys, written
//! once to a temp dir and uploaded to a fresh bucket by each test. The
//! reference for every load is `cwl-copy load` of the local copies
//! (computed once per process, in a schema of its own): same rows (an md5
//! over the sorted rows; the spec has no `@object` column, so rows do not
//! depend on how an object is named), same quarantine, same per-object
//! ledger counts.
//!
//! Server-side facts (which GetObject calls were made, deleting an object
//! between listing and download, a canned 403) come from
//! `support::s3proxy`, a small HTTP proxy in front of moto. Wrong
//! credentials are checked against a private moto server that really
//! enforces auth (moto's `/moto-api/reset-auth`, set after the bucket is
//! filled), not a made-up answer.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::ProvideErrorMetadata;
use cwl_copy::corpus::Rng;
use serde_json::Value;
use tokio_postgres::Client;

use crate::decode::{bin, tempdir};
use crate::support::cli::{
    assert_completed, finish, run, run_to_completion, Run,
};
use crate::support::corpus_s3::{self, corpus, Corpus, Obj, PREFIX};
use crate::support::s3proxy::{self, Rule, S3Proxy};
use crate::support::{self, fingerprint, Fingerprint};

/// The shipped spec; see [`spec`].
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/specs/integrated_user_log.toml"
);
/// The spec's table, and the loader's default ledger and quarantine.
const TABLE: &str = "integrated_user_log";
const LEDGER: &str = "cwl_copy_ledger";
const QUARANTINE: &str = "cwl_copy_quarantine";

/// `SPEC` without its filter (as in `load_faults`): the corpus's
/// plain-text messages reach the mapping, which rejects them, so the
/// quarantine is exercised by good objects as well as bad ones.
fn spec() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let text = std::fs::read_to_string(SPEC).unwrap();
        let unfiltered: String = text
            .lines()
            .filter(|l| !l.starts_with("filter ="))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(unfiltered.len() < text.len(), "no filter line in {SPEC}");
        let path = tempdir().join("s3-unfiltered.toml");
        std::fs::write(&path, unfiltered).unwrap();
        path.to_string_lossy().into_owned()
    })
}

/// `s3://bucket/rest` as a command-line input.
fn s3(bucket: &str, rest: &str) -> OsString {
    format!("s3://{bucket}/{rest}").into()
}

/// The input naming the whole Firehose prefix of `bucket`.
fn s3_prefix(bucket: &str) -> OsString {
    s3(bucket, PREFIX)
}

// ---------------------------------------------------------------------------
// Running the binary (small copies of load_faults' helpers)
// ---------------------------------------------------------------------------

/// `cwl-copy load` of `inputs` into `schema` of the test server, with the
/// summary at `<out>.json` and stderr in `<out>.log`. Endpoints and
/// credentials: the caller's `extra` flags and `.env()`, else the
/// environment `./test.sh` exports.
fn load_cmd(
    schema: &str,
    extra: &[&str],
    inputs: &[OsString],
    out: &Path,
) -> tokio::process::Command {
    let mut cmd = bin();
    cmd.args(["load", "--columns", spec(), "--target"])
        .arg(support::pg_url())
        .args(["--schema", schema, "--create-table", "--threads", "2"])
        .arg("--summary-json")
        .arg(out.with_extension("json"))
        .args(extra)
        .args(inputs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd
}

/// A run that must fail (exit 1) with a message naming `names`.
fn assert_fails_naming(run: &Run, names: &[&str]) {
    assert_eq!(
        run.code,
        Some(1),
        "expected exit 1; summary {}\n{}",
        run.summary,
        run.stderr
    );
    for name in names {
        assert!(
            run.stderr.contains(name),
            "the error should name {name:?}:\n{}",
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// End states
// ---------------------------------------------------------------------------

/// The ledger of `schema`: key → (rows, rejected), failing on a key
/// listed twice.
async fn ledger(c: &Client, schema: &str) -> BTreeMap<String, (i64, i64)> {
    let rows = c
        .query(
            &format!(
                "SELECT key, \"rows\"::bigint, rejected::bigint \
                 FROM \"{schema}\".{LEDGER}"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for r in rows {
        let key: String = r.get(0);
        let prev = out.insert(key.clone(), (r.get(1), r.get(2)));
        assert!(prev.is_none(), "{key} twice in the ledger of {schema}");
    }
    out
}

/// Quarantined entries of `schema` by kind.
async fn quarantine(c: &Client, schema: &str) -> BTreeMap<String, i64> {
    c.query(
        &format!(
            "SELECT kind, count(*) FROM \"{schema}\".{QUARANTINE} \
             GROUP BY kind"
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Whether `schema` has a table `name`.
async fn has_table(c: &Client, schema: &str, name: &str) -> bool {
    c.query_one(
        &format!("SELECT to_regclass('\"{schema}\".{name}') IS NOT NULL"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Checks, in one snapshot, that only whole batches are committed in
/// `schema`: the target's rows and quarantined events are exactly those
/// the ledger records. Returns the number of objects in the ledger.
async fn assert_whole_batches(c: &Client, schema: &str) -> i64 {
    for t in [TABLE, LEDGER, QUARANTINE] {
        if !has_table(c, schema, t).await {
            return 0;
        }
    }
    let r = c
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM \"{schema}\".{LEDGER}), \
                 (SELECT coalesce(sum(\"rows\"), 0)::bigint \
                  FROM \"{schema}\".{LEDGER}), \
                 (SELECT count(*) FROM \"{schema}\".{TABLE}), \
                 (SELECT coalesce(sum(rejected), 0)::bigint \
                  FROM \"{schema}\".{LEDGER}), \
                 (SELECT count(*) FROM \"{schema}\".{QUARANTINE} \
                  WHERE kind = 'rejected_event')"
            ),
            &[],
        )
        .await
        .unwrap();
    let (objects, ledger_rows, rows, ledger_rej, rej): (
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!(rows, ledger_rows, "target rows vs the ledger's");
    assert_eq!(rej, ledger_rej, "quarantined events vs the ledger's");
    objects
}

/// After a failed run: nothing in `schema`'s target, ledger or
/// quarantine (the loader may have created them, empty).
async fn assert_nothing_loaded(c: &Client, schema: &str) {
    for t in [TABLE, LEDGER, QUARANTINE] {
        if has_table(c, schema, t).await {
            let n: i64 = c
                .query_one(
                    &format!("SELECT count(*) FROM \"{schema}\".{t}"),
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 0, "{schema}.{t} has rows after a failed run");
        }
    }
}

/// What the local load of the whole corpus gives.
#[derive(Debug)]
struct Reference {
    rows: Fingerprint,
    quarantine: BTreeMap<String, i64>,
    /// Bucket key → (rows, rejected).
    ledger: BTreeMap<String, (i64, i64)>,
    summary: Value,
}

impl Reference {
    /// The ledger an S3 load of the whole corpus into `bucket` must have.
    fn s3_ledger(&self, bucket: &str) -> BTreeMap<String, (i64, i64)> {
        self.ledger
            .iter()
            .map(|(k, v)| (format!("s3://{bucket}/{k}"), *v))
            .collect()
    }

    fn rejected(&self) -> i64 {
        self.ledger.values().map(|v| v.1).sum()
    }
}

/// `cwl-copy load` of local `inputs` into a fresh schema: the run, the
/// rows, the quarantine, and the ledger by bucket key (a local object's
/// ledger key is its canonical path, which ends in `/<bucket key>`).
async fn local_load(
    name: &str,
    inputs: &[OsString],
    objs: &[&Obj],
) -> (Run, Reference) {
    let (c, schema) = support::pg_schema(name).await;
    let out = tempdir().join(name);
    let run =
        run_to_completion(&mut load_cmd(&schema, &[], inputs, &out), &out)
            .await;
    assert_eq!(run.n("objects_loaded"), objs.len() as u64, "{}", run.summary);
    let mut by_key = BTreeMap::new();
    for (local, counts) in ledger(&c, &schema).await {
        let o = objs
            .iter()
            .find(|o| local.ends_with(&format!("/{}", o.key)))
            .unwrap_or_else(|| {
                panic!("local ledger key {local:?} is no corpus object")
            });
        by_key.insert(o.key.clone(), counts);
    }
    assert_eq!(by_key.len(), objs.len(), "local ledger");
    let r = Reference {
        rows: fingerprint(&c, &format!("\"{schema}\".{TABLE}")).await,
        quarantine: quarantine(&c, &schema).await,
        ledger: by_key,
        summary: run.summary.clone(),
    };
    (run, r)
}

/// The local load of the whole corpus, once per process.
async fn reference() -> &'static Reference {
    static REFERENCE: tokio::sync::OnceCell<Reference> =
        tokio::sync::OnceCell::const_new();
    REFERENCE
        .get_or_init(|| async {
            let c = corpus();
            let all: Vec<&Obj> = c.objects.iter().collect();
            let (run, r) =
                local_load("s3-ref-local", &[c.local_prefix().into()], &all)
                    .await;
            assert_eq!(run.code, Some(3), "the corpus has bad objects");
            assert!(r.rows.rows > 1000, "corpus too small: {}", run.summary);
            assert!(run.n("rejected") > 0, "{}", run.summary);
            assert!(run.n("errors") > 0, "{}", run.summary);
            r
        })
        .await
}

/// Checks that `schema` holds exactly the reference's rows, quarantine
/// and ledger (with `bucket`'s keys).
async fn assert_reference_state(
    c: &Client,
    schema: &str,
    bucket: &str,
    want: &Reference,
) {
    let got = fingerprint(c, &format!("\"{schema}\".{TABLE}")).await;
    assert_eq!(got, want.rows, "rows of {schema} vs the local load");
    assert_eq!(
        quarantine(c, schema).await,
        want.quarantine,
        "quarantine of {schema} vs the local load"
    );
    let got = ledger(c, schema).await;
    let want = want.s3_ledger(bucket);
    if got != want {
        let g: BTreeSet<_> = got.keys().collect();
        let w: BTreeSet<_> = want.keys().collect();
        panic!(
            "ledger of {schema}: missing {:?}, unexpected {:?}, \
             counts differ for {:?}",
            w.difference(&g).collect::<Vec<_>>(),
            g.difference(&w).collect::<Vec<_>>(),
            got.iter()
                .filter(|(k, v)| want.get(*k).is_some_and(|w| w != *v))
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        );
    }
}

/// The bucket keys in `schema`'s ledger (S3 keys, `s3://bucket/` cut).
async fn ledger_keys(c: &Client, schema: &str, bucket: &str) -> Vec<String> {
    let head = format!("s3://{bucket}/");
    ledger(c, schema)
        .await
        .into_keys()
        .map(|k| {
            k.strip_prefix(&head)
                .unwrap_or_else(|| panic!("ledger key {k:?} is not {head}…"))
                .to_owned()
        })
        .collect()
}

fn keys(objs: &[&Obj]) -> Vec<String> {
    let mut k: Vec<String> = objs.iter().map(|o| o.key.clone()).collect();
    k.sort();
    k
}

/// A fresh bucket holding `objs`.
async fn bucket_with(name: &str, objs: &[&Obj]) -> String {
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, name).await;
    corpus_s3::upload(&s3, &bucket, objs).await;
    bucket
}

fn all() -> Vec<&'static Obj> {
    corpus().objects.iter().collect()
}

// ---------------------------------------------------------------------------
// 0. The proxy itself
// ---------------------------------------------------------------------------

/// An SDK client for an endpoint (path-style, test.sh's credentials).
async fn s3_client_at(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&support::aws_config().await)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The proxy forwards the SDK's calls (and a chunked PUT) to moto and
/// back, counts them by method and key, runs its hooks deterministically,
/// and stops when dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_counts_and_forwards() {
    let proxy = S3Proxy::start(&support::aws_endpoint()).await;
    let s3 = s3_client_at(&proxy.endpoint()).await;
    let bucket = support::fresh_bucket(&s3, "proxy").await;
    let keys = [
        "a/with space+plus%25pct ü.gz",
        "a/日本/x=1&y=2",
        "a/plain-ascii-key",
    ];
    for (i, k) in keys.iter().enumerate() {
        let body = format!("body {i} \u{1f}\u{8b}").repeat(1000 * (i + 1));
        s3.put_object()
            .bucket(&bucket)
            .key(*k)
            .body(body.into_bytes().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {k}: {e:?}"));
    }
    let puts: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.key.is_some())
        .map(|r| r.key.unwrap())
        .collect();
    assert_eq!(puts, keys, "PUTs seen with their decoded keys");

    // A chunked upload passes through byte for byte.
    let chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    let path =
        format!("/{bucket}/{}", s3proxy::percent_encode("a/chunked é", true));
    let (status, body) = s3proxy::raw_request(
        &proxy.endpoint(),
        "PUT",
        &path,
        &[("Transfer-Encoding", "chunked")],
        chunked,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    let listed: Vec<&str> =
        listed.contents().iter().filter_map(|o| o.key()).collect();
    let mut want = vec!["a/chunked é"];
    want.extend(keys);
    want.sort_unstable();
    assert_eq!(listed, want);
    assert_eq!(proxy.listings(&bucket).len(), 1);

    for (i, k) in keys.iter().enumerate() {
        let got =
            s3.get_object().bucket(&bucket).key(*k).send().await.unwrap();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        let body = format!("body {i} \u{1f}\u{8b}").repeat(1000 * (i + 1));
        assert_eq!(&bytes[..], body.as_bytes(), "{k}");
    }
    let got = s3.get_object().bucket(&bucket).key("a/chunked é").send().await;
    let bytes = got.unwrap().body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], b"hello, world");
    let head = s3.head_object().bucket(&bucket).key(keys[2]).send().await;
    let len = "body 2 \u{1f}\u{8b}".repeat(3000).len();
    assert_eq!(head.unwrap().content_length(), Some(len as i64));
    let mut gets = keys.to_vec();
    gets.push("a/chunked é");
    assert_eq!(proxy.object_gets(&bucket), gets, "GetObject calls by key");

    // A canned 403, never reaching moto.
    proxy.add_rule(Rule::Fail {
        bucket: bucket.clone(),
        status: 403,
        code: "AccessDenied".into(),
        message: "Access Denied".into(),
    });
    let e = s3.get_object().bucket(&bucket).key(keys[0]).send().await;
    let e = e.expect_err("denied").into_service_error();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    let e = s3.list_objects_v2().bucket(&bucket).send().await;
    let e = e.expect_err("denied").into_service_error();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    let last = proxy.requests().pop().unwrap();
    assert!(last.is_listing() && last.status == 403, "{last:?}");
    proxy.clear_rules();

    // Deleted after the listing that names it, before the client sees
    // that listing: listed, then gone.
    proxy.add_rule(Rule::DeleteAfterListing {
        bucket: bucket.clone(),
        key: keys[2].into(),
    });
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(listed.contents().iter().any(|o| o.key() == Some(keys[2])));
    assert_eq!(proxy.deleted(), [keys[2]]);
    let e = s3.get_object().bucket(&bucket).key(keys[2]).send().await;
    let e = e.expect_err("deleted").into_service_error();
    assert!(e.is_no_such_key(), "{e:?}");
    assert_eq!(proxy.requests().pop().unwrap().status, 404);
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.contents().len(), 3, "fires once");
    assert_eq!(proxy.deleted(), [keys[2]]);
    assert_eq!(proxy.errors(), Vec::<String>::new());

    // Dropped: the port stops answering (poll until a deadline).
    let addr = proxy.endpoint().trim_start_matches("http://").to_owned();
    drop(proxy);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "proxy still accepting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// 1. S3 load == local load
// ---------------------------------------------------------------------------

/// `load s3://bucket/app-logs/from_CloudWatchLogs/` (endpoint from
/// `AWS_ENDPOINT_URL_S3`) gives exactly what `load` of the local copies
/// gives: rows, quarantine, per-object ledger counts; the summary counts
/// every listed object and byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_load_equals_local_load() {
    let c = corpus();
    let want = reference().await;
    let bucket = bucket_with("s3-vs-local", &all()).await;
    let (pg, schema) = support::pg_schema("s3-vs-local").await;
    let out = tempdir().join("s3-load");
    // A small CSV budget: objects beyond it load from temporary files
    // (the reference holds all of its CSV in memory).
    let mut cmd = load_cmd(
        &schema,
        &["--s3-concurrency", "3", "--csv-memory-bytes", "16384"],
        &[s3_prefix(&bucket)],
        &out,
    );
    cmd.env("AWS_ENDPOINT_URL_S3", support::aws_endpoint());
    let r = run_to_completion(&mut cmd, &out).await;
    println!("s3 load: {}", r.summary);
    assert_eq!(r.code, Some(3), "the corpus has bad objects");
    let n = c.objects.len() as u64;
    let all = all();
    for (field, value) in [
        ("objects_listed", n),
        ("objects_loaded", n),
        ("objects_skipped_ledger", 0),
        ("objects_skipped_already_loaded", 0),
        ("bytes_downloaded", Corpus::bytes(&all)),
    ] {
        assert_eq!(r.n(field), value, "{field}: {}", r.summary);
    }
    assert!(r.n("objects_spilled") > 0, "nothing spilled: {}", r.summary);
    assert!(r.n("bytes_spilled") > 0, "{}", r.summary);
    assert_eq!(want.summary["objects_spilled"], 0, "{}", want.summary);
    for field in ["events", "rows", "filtered", "rejected", "errors"] {
        assert_eq!(
            r.summary[field], want.summary[field],
            "{field}: s3 {} vs local {}",
            r.summary, want.summary
        );
    }
    assert_reference_state(&pg, &schema, &bucket, want).await;
}

// ---------------------------------------------------------------------------
// 2. Adjacent ranges tile the whole range
// ---------------------------------------------------------------------------

/// Four adjacent `--from`/`--to` ranges (endpoint from `AWS_ENDPOINT_URL`;
/// every accepted time form) load exactly the objects of their hour
/// prefixes: a range cutting day 2 at 13:00 takes hours 00–12 of it and
/// none after, `--to` is exclusive at both ends of the corpus, and
/// together they equal the whole load: no row missing, none twice. A
/// range over everything then loads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjacent_ranges_tile_the_whole_range() {
    let c = corpus();
    let want = reference().await;
    let bucket = bucket_with("s3-ranges", &all()).await;
    let (pg, schema) = support::pg_schema("s3-ranges").await;
    let root = tempdir();
    // (from, to, the hours they select), hours counted from 2024-05-01T00.
    let ranges = [
        ("2024-05-01", "2024-05-02T13", 0..37),
        ("2024-05-02T13:00:00Z", "2024-05-04", 37..72),
        ("2024-04-30T23", "2024-05-01T00:00:00Z", -1..0),
        ("2024-05-04T00:00:00+00:00", "2024-05-04T01", 72..73),
    ];
    let mut loaded: Vec<&Obj> = Vec::new();
    for (i, (from, to, hours)) in ranges.iter().enumerate() {
        let objs = c.in_hours(hours.start, hours.end);
        assert!(!objs.is_empty(), "no objects in hours {hours:?}");
        let out = root.join(format!("range-{i}"));
        let mut cmd = load_cmd(
            &schema,
            &["--from", from, "--to", to],
            &[s3_prefix(&bucket)],
            &out,
        );
        cmd.env("AWS_ENDPOINT_URL", support::aws_endpoint());
        let r = run_to_completion(&mut cmd, &out).await;
        println!("--from {from} --to {to}: {}", r.summary);
        let n = objs.len() as u64;
        assert_eq!(r.n("objects_listed"), n, "{from}..{to}: {}", r.summary);
        assert_eq!(r.n("objects_loaded"), n, "{from}..{to}: {}", r.summary);
        assert_eq!(r.n("objects_skipped_ledger"), 0, "{}", r.summary);
        assert_eq!(r.n("bytes_downloaded"), Corpus::bytes(&objs));
        loaded.extend(objs);
        assert_eq!(
            ledger_keys(&pg, &schema, &bucket).await,
            keys(&loaded),
            "ledger after --from {from} --to {to}"
        );
        assert_whole_batches(&pg, &schema).await;
    }
    assert_reference_state(&pg, &schema, &bucket, want).await;

    let out = root.join("everything-again");
    let mut cmd = load_cmd(
        &schema,
        &["--from", "2024-04-30", "--to", "2024-05-05"],
        &[s3_prefix(&bucket)],
        &out,
    );
    cmd.env("AWS_ENDPOINT_URL", support::aws_endpoint());
    let r = run_to_completion(&mut cmd, &out).await;
    let n = c.objects.len() as u64;
    assert_eq!(r.n("objects_listed"), n, "{}", r.summary);
    assert_eq!(r.n("objects_skipped_ledger"), n, "{}", r.summary);
    assert_eq!((r.n("objects_loaded"), r.n("rows")), (0, 0), "{}", r.summary);
    assert_reference_state(&pg, &schema, &bucket, want).await;
}

// ---------------------------------------------------------------------------
// 3. A re-run downloads nothing already in the ledger
// ---------------------------------------------------------------------------

/// A load through the proxy fetches each object; the same load again
/// loads nothing and makes no GetObject at all (the ledger is asked
/// before any download); after three more objects arrive, a re-run
/// fetches exactly those three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_makes_no_get_object_for_ledger_keys() {
    let c = corpus();
    let want = reference().await;
    let proxy = S3Proxy::start(&support::aws_endpoint()).await;
    let endpoint = proxy.endpoint();
    let flags = ["--endpoint-url", endpoint.as_str()];
    // Held back: one in each day, one of them with a non-ASCII key.
    let late: Vec<&Obj> = vec![
        c.find("a 日本 key on day 1", |o| {
            o.key.contains("日本") && (0..24).contains(&o.hour)
        }),
        c.find("an object on day 2", |o| o.hour == 30),
        c.find("a bad object on day 3", |o| o.bad && o.hour >= 48),
    ];
    let early: Vec<&Obj> = c
        .objects
        .iter()
        .filter(|o| !late.iter().any(|l| l.key == o.key))
        .collect();
    let bucket = bucket_with("s3-rerun", &early).await;
    let (pg, schema) = support::pg_schema("s3-rerun").await;
    let root = tempdir();

    let out = root.join("first");
    let r = run_to_completion(
        &mut load_cmd(&schema, &flags, &[s3_prefix(&bucket)], &out),
        &out,
    )
    .await;
    assert_eq!(r.n("objects_loaded"), early.len() as u64, "{}", r.summary);
    let fetched: BTreeSet<String> =
        proxy.object_gets(&bucket).into_iter().collect();
    assert_eq!(fetched, keys(&early).into_iter().collect(), "first run GETs");
    assert!(!proxy.listings(&bucket).is_empty(), "no listing seen");

    proxy.clear_requests();
    let out = root.join("again");
    let r = run_to_completion(
        &mut load_cmd(&schema, &flags, &[s3_prefix(&bucket)], &out),
        &out,
    )
    .await;
    println!("re-run: {}", r.summary);
    let n = early.len() as u64;
    assert_eq!(r.n("objects_listed"), n, "{}", r.summary);
    assert_eq!(r.n("objects_skipped_ledger"), n, "{}", r.summary);
    for field in ["objects_loaded", "rows", "batches", "bytes_downloaded"] {
        assert_eq!(r.n(field), 0, "{field}: {}", r.summary);
    }
    assert_eq!(
        r.code,
        Some(0),
        "nothing rejected in a run that loads nothing"
    );
    assert!(!proxy.listings(&bucket).is_empty(), "the re-run lists");
    assert_eq!(
        proxy.object_gets(&bucket),
        Vec::<String>::new(),
        "GetObject for keys already in the ledger"
    );

    let s3 = support::s3_client().await;
    corpus_s3::upload(&s3, &bucket, &late).await;
    proxy.clear_requests();
    let out = root.join("late");
    let r = run_to_completion(
        &mut load_cmd(&schema, &flags, &[s3_prefix(&bucket)], &out),
        &out,
    )
    .await;
    println!("late objects: {}", r.summary);
    assert_eq!(r.n("objects_loaded"), 3, "{}", r.summary);
    assert_eq!(r.n("objects_skipped_ledger"), n, "{}", r.summary);
    assert_eq!(r.n("bytes_downloaded"), Corpus::bytes(&late));
    let fetched: BTreeSet<String> =
        proxy.object_gets(&bucket).into_iter().collect();
    assert_eq!(fetched, keys(&late).into_iter().collect(), "late GETs");
    assert_reference_state(&pg, &schema, &bucket, want).await;
    assert_eq!(proxy.errors(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 4. SIGKILL during a backfill
// ---------------------------------------------------------------------------

/// Kills an S3 backfill with SIGKILL 12 times at seeded random points
/// (every fourth right after spawn), checking after each that only whole
/// batches were committed, then runs it to completion: every row once,
/// every object once in the ledger, the quarantine as the local load's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_s3_backfill_loses_and_doubles_nothing() {
    let want = reference().await;
    let all = all();
    let bucket = bucket_with("s3-kill", &all).await;
    let (pg, schema) = support::pg_schema("s3-kill").await;
    let measured = support::fresh_schema(&pg, "s3-kill-measured").await;
    let endpoint = support::aws_endpoint();
    let flags = ["--endpoint-url", endpoint.as_str(), "--batch-objects", "3"];
    let input = [s3_prefix(&bucket)];
    let root = tempdir();

    // An uninterrupted run, into a schema of its own, for the timing.
    let started = Instant::now();
    let out = root.join("measure");
    let r = run_to_completion(
        &mut load_cmd(&measured, &flags, &input, &out),
        &out,
    )
    .await;
    let full = started.elapsed();
    println!("uninterrupted: {full:?}, {} batches", r.n("batches"));
    assert!(r.n("batches") >= 10, "too few batches to kill between");
    assert_reference_state(&pg, &measured, &bucket, want).await;

    // Kill points over [0, full/2]: each run resumes where the last was
    // killed, so kills land in start-up, listing, the ledger lookup,
    // downloads, COPY and commit. A run may finish before its kill
    // point once little is left; it must then have completed.
    let span = u64::try_from(full.as_micros() / 2).unwrap().max(1);
    let mut rng = Rng::new(0x534B_1100);
    let mut killed = 0;
    for i in 0..12 {
        let delay = if i % 4 == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.below(span))
        };
        let out = root.join(format!("kill-{i:02}"));
        let mut child =
            load_cmd(&schema, &flags, &input, &out).spawn().unwrap();
        tokio::time::sleep(delay).await;
        // SIGKILL; a child that already exited is reaped by `finish`.
        let _ = child.start_kill();
        let r = finish(child, &out).await;
        let objects = assert_whole_batches(&pg, &schema).await;
        let how = if r.signal.is_some() {
            assert_eq!(r.signal, Some(9), "{}", r.stderr);
            killed += 1;
            "killed"
        } else {
            assert_completed(&r);
            "finished"
        };
        println!("run {i:2}: {how} after {delay:?}; {objects} objects in the ledger");
    }
    assert!(killed >= 3, "the runs killed at 0 ms were killed");

    let out = root.join("final");
    let r =
        run_to_completion(&mut load_cmd(&schema, &flags, &input, &out), &out)
            .await;
    assert_eq!(
        r.n("objects_skipped_ledger") + r.n("objects_loaded"),
        all.len() as u64,
        "{}",
        r.summary
    );
    assert_reference_state(&pg, &schema, &bucket, want).await;
    let rejected =
        quarantine(&pg, &schema).await.get("rejected_event").copied();
    assert_eq!(rejected.unwrap_or(0), want.rejected(), "quarantined events");
}

// ---------------------------------------------------------------------------
// 5. Failures: vanished object, missing bucket, wrong credentials, denied
// ---------------------------------------------------------------------------

/// An object deleted after the listing that named it and before its
/// GetObject (the proxy deletes it through moto before relaying the
/// listing) is counted as vanished and named on stderr; the run does not
/// fail, and everything else loads exactly as the local load of the
/// remaining objects. The vanished object is not in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_deleted_after_listing_is_vanished_not_fatal() {
    let c = corpus();
    let objs = c.in_hours(0, 8);
    let gone = *objs
        .iter()
        .skip(2)
        .find(|o| {
            !o.bad
                && o.key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
        })
        .expect("a plain ASCII key in hours 0..8");
    let rest: Vec<&Obj> =
        objs.iter().copied().filter(|o| o.key != gone.key).collect();
    let local: Vec<OsString> =
        rest.iter().map(|o| o.path.clone().into_os_string()).collect();
    let (_, want) = local_load("s3-vanish-local", &local, &rest).await;

    let bucket = bucket_with("s3-vanish", &objs).await;
    let proxy = S3Proxy::start(&support::aws_endpoint()).await;
    proxy.add_rule(Rule::DeleteAfterListing {
        bucket: bucket.clone(),
        key: gone.key.clone(),
    });
    let (pg, schema) = support::pg_schema("s3-vanish").await;
    let out = tempdir().join("vanish");
    let endpoint = proxy.endpoint();
    let r = run(
        &mut load_cmd(
            &schema,
            &["--endpoint-url", &endpoint],
            &[s3_prefix(&bucket)],
            &out,
        ),
        &out,
    )
    .await;
    println!("vanished: {}\n{}", r.summary, r.stderr);
    assert_eq!(proxy.deleted(), [gone.key.as_str()], "the hook fired");
    // It was listed, then asked for (GetObject, or HeadObject first)
    // and found missing.
    let asked: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|q| q.key.as_deref() == Some(gone.key.as_str()))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|q| q.status == 404),
        "the loader should have asked for the vanished object: {asked:?}"
    );
    assert!(
        matches!(r.code, Some(0 | 3)),
        "a vanished object is not fatal; exit {:?}\n{}",
        r.code,
        r.stderr
    );
    assert_eq!(r.n("objects_vanished"), 1, "{}", r.summary);
    assert_eq!(r.n("objects_listed"), objs.len() as u64, "{}", r.summary);
    assert_eq!(r.n("objects_loaded"), rest.len() as u64, "{}", r.summary);
    assert_eq!(r.summary["reconciled"], true, "{}", r.summary);
    assert!(r.stderr.contains(&gone.key), "not reported:\n{}", r.stderr);
    assert_reference_state(&pg, &schema, &bucket, &want).await;
    assert_eq!(proxy.errors(), Vec::<String>::new());
}

/// A bucket that does not exist: exit 1, an error naming the bucket and
/// the prefix, with and without a range; nothing in the tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_fails_naming_it() {
    let bucket = support::unique("s3-missing");
    let (pg, schema) = support::pg_schema("s3-missing").await;
    let endpoint = support::aws_endpoint();
    for (i, range) in
        [&[][..], &["--from", "2024-05-01", "--to", "2024-05-01T03"][..]]
            .iter()
            .enumerate()
    {
        let mut flags = vec!["--endpoint-url", endpoint.as_str()];
        flags.extend_from_slice(range);
        let out = tempdir().join(format!("missing-{i}"));
        let r = run(
            &mut load_cmd(&schema, &flags, &[s3_prefix(&bucket)], &out),
            &out,
        )
        .await;
        println!("missing bucket {range:?}: {}", r.stderr);
        assert_fails_naming(&r, &[&bucket, PREFIX.trim_end_matches('/')]);
        assert_nothing_loaded(&pg, &schema).await;
    }
}

/// A moto server of this test's own that enforces auth (moto checks
/// credentials only when told to, which would break the other tests on
/// the shared server). Killed on drop.
struct AuthMoto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AuthMoto {
    /// Starts `python -m moto.server` (the interpreter `./test.sh` found,
    /// `CWL_TEST_MOTO_PYTHON`) on a free port and waits until it answers.
    async fn start() -> AuthMoto {
        let python = support::env("CWL_TEST_MOTO_PYTHON");
        let log_path = tempdir().join("moto.log");
        for attempt in 1..=3 {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            let log = std::fs::File::create(&log_path).unwrap();
            let child = std::process::Command::new(&python)
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("spawn {python} -m moto.server: {e}")
                });
            let mut moto = AuthMoto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if moto.child.try_wait().unwrap().is_some() {
                    println!("private moto exited (attempt {attempt})");
                    break;
                }
                let r = s3proxy::raw_request(
                    &moto.endpoint,
                    "GET",
                    "/moto-api/",
                    &[],
                    b"",
                )
                .await;
                if r.is_ok() {
                    return moto;
                }
                assert!(
                    Instant::now() < deadline,
                    "private moto did not answer:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!(
            "private moto did not start:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// From now on, every request must carry credentials moto knows.
    async fn enforce_auth(&self) {
        let (status, body) = s3proxy::raw_request(
            &self.endpoint,
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "application/json")],
            b"0",
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

/// Wrong credentials (a moto that enforces auth, which knows no access
/// key): exit 1, a clear error naming the bucket, the secret never
/// printed, nothing in the tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_clearly() {
    let c = corpus();
    let moto = AuthMoto::start().await;
    let s3 = s3_client_at(&moto.endpoint).await;
    let bucket = support::fresh_bucket(&s3, "s3-creds").await;
    corpus_s3::upload(&s3, &bucket, &c.in_hours(0, 3)).await;
    moto.enforce_auth().await;
    let e = s3.list_objects_v2().bucket(&bucket).send().await;
    let e = e.expect_err("moto enforces auth").into_service_error();
    assert_eq!(e.code(), Some("InvalidAccessKeyId"), "{e:?}");

    let (pg, schema) = support::pg_schema("s3-creds").await;
    let secret = "wJalrXUtnFEMI-not-a-real-secret-7d3f";
    let out = tempdir().join("creds");
    let mut cmd = load_cmd(
        &schema,
        &["--endpoint-url", &moto.endpoint],
        &[s3_prefix(&bucket)],
        &out,
    );
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        .env("AWS_SECRET_ACCESS_KEY", secret);
    let r = run(&mut cmd, &out).await;
    println!("wrong credentials: {}", r.stderr);
    assert_fails_naming(&r, &[&bucket]);
    let lower = r.stderr.to_lowercase();
    assert!(
        ["invalidaccesskeyid", "access key", "credential"]
            .iter()
            .any(|w| lower.contains(w)),
        "the error should say the credentials are wrong:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains(secret), "the secret was printed");
    assert_nothing_loaded(&pg, &schema).await;
}

/// Access denied (the proxy answers every request for the bucket with
/// moto's 403 `AccessDenied` document): exit 1, an error naming the
/// bucket and prefix, nothing in the tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_fails_naming_bucket_and_prefix() {
    let c = corpus();
    let bucket = bucket_with("s3-denied", &c.in_hours(0, 3)).await;
    let proxy = S3Proxy::start(&support::aws_endpoint()).await;
    proxy.add_rule(Rule::Fail {
        bucket: bucket.clone(),
        status: 403,
        code: "AccessDenied".into(),
        message: "Access Denied".into(),
    });
    let (pg, schema) = support::pg_schema("s3-denied").await;
    let out = tempdir().join("denied");
    let endpoint = proxy.endpoint();
    let r = run(
        &mut load_cmd(
            &schema,
            &["--endpoint-url", &endpoint],
            &[s3_prefix(&bucket)],
            &out,
        ),
        &out,
    )
    .await;
    println!("access denied: {}", r.stderr);
    assert_fails_naming(&r, &[&bucket, PREFIX.trim_end_matches('/')]);
    assert!(r.stderr.to_lowercase().contains("denied"), "{}", r.stderr);
    let seen: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|q| q.bucket.as_deref() == Some(bucket.as_str()))
        .collect();
    assert!(!seen.is_empty(), "no request reached the proxy");
    assert!(seen.iter().all(|q| q.status == 403), "{seen:?}");
    assert_nothing_loaded(&pg, &schema).await;
}

/// `--prefix-template` with an expression other than `!{timestamp:…}`,
/// and a `--from` that is no date: usage errors (exit 2) naming them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_range_and_template_are_usage_errors() {
    let (_pg, schema) = support::pg_schema("s3-usage").await;
    let endpoint = support::aws_endpoint();
    let bucket = support::unique("s3-usage");
    let template = "app-logs/!{firehose:random-string}/!{timestamp:yyyy}/";
    for (i, (flags, named)) in [
        (
            vec![
                "--prefix-template",
                template,
                "--from",
                "2024-05-01",
                "--to",
                "2024-05-02",
            ],
            "firehose:random-string",
        ),
        (vec!["--from", "2024-13-01", "--to", "2024-05-02"], "2024-13-01"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut flags = flags;
        flags.extend(["--endpoint-url", endpoint.as_str()]);
        let out = tempdir().join(format!("usage-{i}"));
        let r = run(
            &mut load_cmd(&schema, &flags, &[s3(&bucket, "")], &out),
            &out,
        )
        .await;
        assert_eq!(r.code, Some(2), "{flags:?}:\n{}", r.stderr);
        assert!(r.stderr.contains(named), "{flags:?}:\n{}", r.stderr);
    }
}

// ---------------------------------------------------------------------------
// 6. convert and decode from S3
// ---------------------------------------------------------------------------

/// A run of `cwl-copy decode` or `convert`.
struct Output {
    code: Option<i32>,
    stdout: String,
    /// The JSON lines of stderr (log lines left out).
    stderr_json: Vec<String>,
    stderr: String,
    summary: Value,
    /// `--out` and `--rejects` (convert).
    csv: Vec<u8>,
    rejects: String,
}

/// Runs `cwl-copy <sub> <args…> --summary-json … inputs` (and for
/// convert `--out`, `--rejects`), endpoint from `AWS_ENDPOINT_URL_S3`.
fn run_tool(sub: &str, inputs: &[OsString], dir: &Path) -> Output {
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = bin();
    cmd.arg(sub).args(["--threads", "2", "--summary-json"]);
    cmd.arg(dir.join("summary.json"));
    if sub == "convert" {
        cmd.args(["--columns", spec(), "--out"]).arg(dir.join("out.csv"));
        cmd.arg("--rejects").arg(dir.join("rejects.ndjson"));
    }
    cmd.args(inputs).env("AWS_ENDPOINT_URL_S3", support::aws_endpoint());
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8(o.stderr).unwrap();
    Output {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr_json: stderr
            .lines()
            .filter(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object())
            })
            .map(str::to_owned)
            .collect(),
        stderr,
        summary: std::fs::read(dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null),
        csv: std::fs::read(dir.join("out.csv")).unwrap_or_default(),
        rejects: std::fs::read_to_string(dir.join("rejects.ndjson"))
            .unwrap_or_default(),
    }
}

/// `local`'s output with object names rewritten by `names` (local path
/// prefix → `s3://` prefix) equals `remote`'s: exit code, stdout, JSON
/// stderr lines, `--out`, `--rejects`, and every summary field of the
/// local run but timings and peak RSS.
fn assert_same_output(
    what: &str,
    local: &Output,
    remote: &Output,
    names: &[(String, String)],
) {
    let rename = |s: &str| {
        names.iter().fold(s.to_owned(), |s, (from, to)| s.replace(from, to))
    };
    assert_eq!(
        local.code, remote.code,
        "{what}: exit\n{}\n{}",
        local.stderr, remote.stderr
    );
    assert!(matches!(local.code, Some(0 | 3)), "{what}: {}", local.stderr);
    let want = rename(&local.stdout);
    if want != remote.stdout {
        let line = want
            .lines()
            .zip(remote.stdout.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(
                want.lines().count().min(remote.stdout.lines().count()),
            );
        panic!(
            "{what}: stdout differs at line {line} ({} vs {} bytes):\nlocal: {:?}\ns3:    {:?}",
            want.len(),
            remote.stdout.len(),
            want.lines().nth(line),
            remote.stdout.lines().nth(line)
        );
    }
    let want: Vec<String> =
        local.stderr_json.iter().map(|l| rename(l)).collect();
    assert_eq!(want, remote.stderr_json, "{what}: errors on stderr");
    assert!(local.csv == remote.csv, "{what}: CSV differs");
    assert_eq!(rename(&local.rejects), remote.rejects, "{what}: rejects");
    let want: Value =
        serde_json::from_str(&rename(&local.summary.to_string())).unwrap();
    let fields =
        want.as_object().unwrap_or_else(|| panic!("{what}: no summary"));
    for (k, v) in fields {
        if matches!(k.as_str(), "elapsed_seconds" | "peak_rss_bytes") {
            continue;
        }
        assert_eq!(&remote.summary[k], v, "{what}: summary field {k}");
    }
}

/// `decode s3://…` and `convert s3://…` give the bytes the same commands
/// give on the local copies (object names aside: `s3://bucket/key` vs the
/// path), for the whole prefix; and `convert` of local and S3 inputs
/// mixed (a directory, a prefix, one awkward key) equals the all-local
/// run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_and_decode_from_s3_equal_local_runs() {
    let c = corpus();
    let bucket = bucket_with("s3-convert", &all()).await;
    let root = tempdir();
    let local_root = format!("{}/", c.root.display());
    let names = [(local_root.clone(), format!("s3://{bucket}/"))];
    for sub in ["decode", "convert"] {
        let (local, remote) = tokio::task::spawn_blocking({
            let (bucket, root, prefix) =
                (bucket.clone(), root.clone(), c.local_prefix());
            move || {
                (
                    run_tool(
                        sub,
                        &[prefix.into()],
                        &root.join(format!("{sub}-local")),
                    ),
                    run_tool(
                        sub,
                        &[s3_prefix(&bucket)],
                        &root.join(format!("{sub}-s3")),
                    ),
                )
            }
        })
        .await
        .unwrap();
        assert_eq!(
            local.code,
            Some(3),
            "the corpus has bad objects: {}",
            local.stderr
        );
        assert!(!local.stderr_json.is_empty(), "{sub}: no errors reported");
        if sub == "decode" {
            assert!(local.stdout.lines().count() > 1000);
        } else {
            assert!(
                local.csv.len() > 100_000,
                "{sub}: {} CSV bytes",
                local.csv.len()
            );
        }
        assert_same_output(sub, &local, &remote, &names);
    }

    // Mixed: day 1 from disk, day 2 as an S3 prefix, one key of day 3.
    let one = c.find("a key with spaces on day 3", |o| {
        o.hour >= 48 && o.key.contains(' ') && !o.key.contains('%')
    });
    let day2 = format!("{PREFIX}2024/05/02/");
    let day1 = c.root.join(format!("{PREFIX}2024/05/01"));
    let (local, mixed) = tokio::task::spawn_blocking({
        let (bucket, root, day1, day2) =
            (bucket.clone(), root.clone(), day1.clone(), day2.clone());
        let (path, key) = (one.path.clone(), one.key.clone());
        move || {
            let local: Vec<OsString> = vec![
                day1.clone().into(),
                c.root.join(&day2).into(),
                path.into(),
            ];
            let mixed =
                vec![day1.into(), s3(&bucket, &day2), s3(&bucket, &key)];
            (
                run_tool("convert", &local, &root.join("mixed-local")),
                run_tool("convert", &mixed, &root.join("mixed-s3")),
            )
        }
    })
    .await
    .unwrap();
    let names = [
        (format!("{local_root}{day2}"), format!("s3://{bucket}/{day2}")),
        (
            format!("{local_root}{}", one.key),
            format!("s3://{bucket}/{}", one.key),
        ),
    ];
    assert!(local.csv.len() > 10_000);
    assert_same_output("mixed convert", &local, &mixed, &names);
}

// ---------------------------------------------------------------------------
// Writing to S3 (Redshift's staged parts)
// ---------------------------------------------------------------------------

/// `S3::put` writes a small body with one PutObject and a body above the
/// part size as a multipart upload (moto enforces S3's 5 MiB minimum for
/// every part but the last, and gives a multipart object an ETag ending
/// in `-<parts>`); both read back byte for byte, and no upload is left
/// open. A missing bucket is an error naming the service's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_is_multipart_above_the_part_size() {
    let client = support::s3_client().await;
    let bucket = support::fresh_bucket(&client, "put-multipart").await;
    let s3 = cwl_copy::load::source::s3::S3::from_client(client.clone());
    let mut rng = Rng::new(7);
    let big: Vec<u8> =
        (0..(12 << 20) + 123).map(|_| rng.below(256) as u8).collect();
    let small = b"a,b\n".repeat(100);
    for (key, body, parts) in
        [("big.csv.gz", big, Some(3)), ("small.csv.gz", small, None)]
    {
        s3.put(&bucket, key, body.clone().into(), 5 << 20).await.unwrap();
        let got =
            client.get_object().bucket(&bucket).key(key).send().await.unwrap();
        let etag = got.e_tag().unwrap_or_default().to_owned();
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert!(
            bytes[..] == body[..],
            "{key}: {} bytes back of {}",
            bytes.len(),
            body.len()
        );
        match parts {
            Some(n) => assert!(
                etag.ends_with(&format!("-{n}\"")),
                "{key}: ETag {etag}"
            ),
            None => assert!(!etag.contains('-'), "{key}: ETag {etag}"),
        }
    }
    let open =
        client.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let e = s3
        .put("no-such-bucket-cwl", "k", vec![0u8; 6 << 20].into(), 5 << 20)
        .await
        .unwrap_err();
    assert!(e.contains("NoSuchBucket"), "{e}");
}
