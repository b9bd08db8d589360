//! Redshift as a target (issue 11), end to end through both ways of
//! reaching a cluster: the PostgreSQL wire protocol
//! (`redshift://user@host:port/db`) and the Data API
//! (`redshift-data://cluster/…` and `redshift-data://workgroup/…`), against
//! `support::redshift`, a stand-in that executes on the test PostgreSQL
//! and reads the staged parts from moto. No Redshift is reachable here:
//! these tests prove what the stand-in reproduces (see its module docs for
//! what it does not).
//!
//! - a backfill from moto equals the PostgreSQL target's load of the same
//!   objects (rows, quarantine, ledger counts), every COPY a manifest of
//!   single-member gzip parts, nothing the stand-in refuses ever sent,
//!   the staging prefix empty afterwards; a rerun loads nothing;
//! - two loaders racing on the same objects commit each once;
//! - SIGKILL between upload and commit (a COPY held by the stand-in, and
//!   seeded random points) leaves only whole batches, and a rerun
//!   completes exactly;
//! - a COPY error (a target column narrower than the spec's) is reported
//!   with part, line, column, reason and object, and nothing committed;
//! - the manifests and parts of each batch, read from moto while the
//!   batch is held before its commit;
//! - `--staging` overlapping an input, `--dry-run`.
//!
//! `standin::*` tests the stand-in itself: what Redshift refuses, the
//! Redshift semantics it adds, `COPY … MANIFEST` from moto, and the Data
//! API through the SDK; each case runs through the wire and the Data API.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cwl_copy::corpus::Rng;
use serde_json::Value;
use tokio_postgres::Client;

use crate::decode::{bin, tempdir};
use crate::support::corpus_s3::{self, corpus, Obj, PREFIX};
use crate::support::redshift::{RedshiftStandIn, StandInOptions};
use crate::support::{self, fingerprint, Fingerprint};

/// The shipped spec; see [`spec`].
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/specs/integrated_user_log.toml"
);
const TABLE: &str = "integrated_user_log";
const LEDGER: &str = "cwl_copy_ledger";
const QUARANTINE: &str = "cwl_copy_quarantine";
/// The spec's columns (the data parts carry one more: the object key).
const SPEC_COLUMNS: usize = 9;
const ROLE: &str = "arn:aws:iam::123456789012:role/cwl-copy-o'test";
const SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:standin-AbCdEf";
/// No run or poll in these tests may take longer than this.
const DEADLINE: Duration = Duration::from_secs(180);

/// `SPEC` without its filter (as in `loader_s3`): the corpus's plain-text
/// messages reach the mapping, which rejects them, so the quarantine is
/// exercised by good objects as well as bad ones.
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
        let path = tempdir().join("redshift-unfiltered.toml");
        std::fs::write(&path, unfiltered).unwrap();
        path.to_string_lossy().into_owned()
    })
}

// ---------------------------------------------------------------------------
// The ways to a cluster
// ---------------------------------------------------------------------------

/// How the loader reaches the stand-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// `redshift://…`: the PostgreSQL wire protocol.
    Wire,
    /// `redshift-data://cluster/…?db_user=…`: a provisioned cluster.
    Cluster,
    /// `redshift-data://workgroup/…?secret_arn=…`: Serverless.
    Workgroup,
}

impl Way {
    fn target(self, stand: &RedshiftStandIn) -> String {
        match self {
            Way::Wire => stand.wire_target("tester", "dev"),
            Way::Cluster => {
                "redshift-data://cluster/standin-cluster/dev?db_user=tester"
                    .into()
            }
            Way::Workgroup => {
                format!("redshift-data://workgroup/standin-wg/dev?secret_arn={SECRET}")
            }
        }
    }
}

/// Runs each test body once per way, as `name::wire`, `name::cluster`, ….
macro_rules! each_way {
    ($name:ident: $($way:ident => $variant:ident),+) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $way() {
                    super::$name(super::Way::$variant).await;
                }
            )+
        }
    };
}

// ---------------------------------------------------------------------------
// Running the binary (small copies of loader_s3's helpers)
// ---------------------------------------------------------------------------

/// A finished run.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    summary: Value,
    stdout: String,
    stderr: String,
}

impl Run {
    fn n(&self, field: &str) -> u64 {
        self.summary[field].as_u64().unwrap_or_else(|| {
            panic!(
                "no {field} in the summary {}\n{}",
                self.summary, self.stderr
            )
        })
    }
}

/// A loader run: where, how, and its files at `out.*`.
struct Load<'a> {
    stand: &'a RedshiftStandIn,
    way: Way,
    schema: String,
    staging: String,
}

impl Load<'_> {
    /// `cwl-copy load` of `inputs` into the stand-in, with the summary at
    /// `<out>.json`, stdout at `<out>.out`, stderr at `<out>.log`.
    fn cmd(
        &self,
        create: bool,
        extra: &[&str],
        inputs: &[OsString],
        out: &Path,
    ) -> tokio::process::Command {
        let mut cmd = bin();
        cmd.args(["load", "--columns", spec(), "--target"])
            .arg(self.way.target(self.stand))
            .args(["--iam-role", ROLE, "--staging", &self.staging])
            .args(["--schema", &self.schema, "--threads", "2"])
            .arg("--summary-json")
            .arg(out.with_extension("json"));
        if create {
            cmd.arg("--create-table");
        }
        cmd.args(extra)
            .args(inputs)
            .env("AWS_ENDPOINT_URL_S3", support::aws_endpoint())
            .env(
                "AWS_ENDPOINT_URL_REDSHIFT_DATA",
                self.stand.data_api_endpoint(),
            )
            .env("PGPASSWORD", "any")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(out.with_extension("log")).unwrap());
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd
    }
}

/// Waits (up to [`DEADLINE`]) for `child` and reads what it left at `out`.
async fn finish(mut child: tokio::process::Child, out: &Path) -> Run {
    let read = |ext| {
        std::fs::read_to_string(out.with_extension(ext)).unwrap_or_default()
    };
    let status = match tokio::time::timeout(DEADLINE, child.wait()).await {
        Ok(s) => s.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "cwl-copy did not finish in {DEADLINE:?}:\n{}",
                read("log")
            );
        }
    };
    let summary = std::fs::read(out.with_extension("json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run {
        code: status.code(),
        signal: status.signal(),
        summary,
        stdout: read("out"),
        stderr: read("log"),
    }
}

async fn run(cmd: &mut tokio::process::Command, out: &Path) -> Run {
    finish(cmd.spawn().unwrap(), out).await
}

/// Exit 0, or 3 exactly when something was quarantined; reconciled.
fn assert_completed(run: &Run) {
    let want =
        if run.n("rejected") > 0 || run.n("errors") > 0 { 3 } else { 0 };
    assert_eq!(
        run.code,
        Some(want),
        "load did not complete; summary {}\n{}",
        run.summary,
        run.stderr
    );
    assert_eq!(run.summary["reconciled"], true, "{}", run.summary);
    assert_eq!(run.n("objects_failed"), 0, "{}", run.summary);
}

async fn run_to_completion(
    cmd: &mut tokio::process::Command,
    out: &Path,
) -> Run {
    let r = run(cmd, out).await;
    assert_completed(&r);
    r
}

// ---------------------------------------------------------------------------
// End states
// ---------------------------------------------------------------------------

/// The ledger of `schema`: bucket key (`s3://bucket/` cut) → (rows,
/// rejected), failing on a key listed twice.
async fn ledger(c: &Client, schema: &str) -> BTreeMap<String, (i64, i64)> {
    let rows = c
        .query(
            &format!(
                "SELECT key::text, \"rows\"::bigint, rejected::bigint \
                 FROM \"{schema}\".{LEDGER}"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for r in rows {
        let key: String = r.get(0);
        let short = key
            .strip_prefix("s3://")
            .and_then(|k| k.split_once('/'))
            .map_or(key.clone(), |(_, k)| k.to_owned());
        let prev = out.insert(short, (r.get(1), r.get(2)));
        assert!(prev.is_none(), "{key} twice in the ledger of {schema}");
    }
    out
}

/// Quarantined entries of `schema` by kind.
async fn quarantine(c: &Client, schema: &str) -> BTreeMap<String, i64> {
    c.query(
        &format!("SELECT kind::text, count(*) FROM \"{schema}\".{QUARANTINE} GROUP BY kind"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn has_table(c: &Client, schema: &str, name: &str) -> bool {
    c.query_one(
        &format!("SELECT to_regclass('\"{schema}\".{name}') IS NOT NULL"),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn count(c: &Client, schema: &str, table: &str) -> i64 {
    if !has_table(c, schema, table).await {
        return 0;
    }
    c.query_one(&format!("SELECT count(*) FROM \"{schema}\".{table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Checks, in one snapshot, that only whole batches are committed: the
/// target's rows and quarantined events are exactly those the ledger
/// records. Returns the number of objects in the ledger.
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
                 (SELECT coalesce(sum(\"rows\"), 0)::bigint FROM \"{schema}\".{LEDGER}), \
                 (SELECT count(*) FROM \"{schema}\".{TABLE}), \
                 (SELECT coalesce(sum(rejected), 0)::bigint FROM \"{schema}\".{LEDGER}), \
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

/// What the PostgreSQL target makes of the whole corpus.
#[derive(Debug)]
struct Reference {
    rows: Fingerprint,
    quarantine: BTreeMap<String, i64>,
    /// Bucket key → (rows, rejected).
    ledger: BTreeMap<String, (i64, i64)>,
    summary: Value,
}

/// `cwl-copy load --target postgres://…` of the corpus from moto, once
/// per process.
async fn reference() -> &'static Reference {
    static REFERENCE: tokio::sync::OnceCell<Reference> =
        tokio::sync::OnceCell::const_new();
    REFERENCE
        .get_or_init(|| async {
            let bucket = bucket_with("rs-ref", &all()).await;
            let (c, schema) = support::pg_schema("rs-ref").await;
            let out = tempdir().join("rs-reference");
            let mut cmd = bin();
            cmd.args(["load", "--columns", spec(), "--target"])
                .arg(support::pg_url())
                .args([
                    "--schema",
                    &schema,
                    "--create-table",
                    "--threads",
                    "2",
                ])
                .arg("--summary-json")
                .arg(out.with_extension("json"))
                .arg(s3_prefix(&bucket))
                .env("AWS_ENDPOINT_URL_S3", support::aws_endpoint())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(out.with_extension("log")).unwrap(),
                );
            let r = run(&mut tokio::process::Command::from(cmd), &out).await;
            assert_completed(&r);
            assert_eq!(r.code, Some(3), "the corpus has bad objects");
            assert_eq!(
                r.n("objects_loaded"),
                all().len() as u64,
                "{}",
                r.summary
            );
            let reference = Reference {
                rows: fingerprint(&c, &format!("\"{schema}\".{TABLE}")).await,
                quarantine: quarantine(&c, &schema).await,
                ledger: ledger(&c, &schema).await,
                summary: r.summary,
            };
            assert!(reference.rows.rows > 1000, "corpus too small");
            reference
        })
        .await
}

/// Checks that `schema` holds exactly the reference's rows, quarantine and
/// ledger counts.
async fn assert_reference_state(c: &Client, schema: &str, want: &Reference) {
    let got = fingerprint(c, &format!("\"{schema}\".{TABLE}")).await;
    assert_eq!(got, want.rows, "rows of {schema} vs the PostgreSQL target's");
    assert_eq!(
        quarantine(c, schema).await,
        want.quarantine,
        "quarantine of {schema} vs the PostgreSQL target's"
    );
    let got = ledger(c, schema).await;
    if got != want.ledger {
        let g: BTreeSet<_> = got.keys().collect();
        let w: BTreeSet<_> = want.ledger.keys().collect();
        panic!(
            "ledger of {schema}: missing {:?}, unexpected {:?}, counts differ for {:?}",
            w.difference(&g).collect::<Vec<_>>(),
            g.difference(&w).collect::<Vec<_>>(),
            got.iter()
                .filter(|(k, v)| want.ledger.get(*k).is_some_and(|w| w != *v))
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        );
    }
}

fn all() -> Vec<&'static Obj> {
    corpus().objects.iter().collect()
}

fn s3_prefix(bucket: &str) -> OsString {
    format!("s3://{bucket}/{PREFIX}").into()
}

async fn bucket_with(name: &str, objs: &[&Obj]) -> String {
    let s3 = support::s3_client().await;
    let bucket = support::fresh_bucket(&s3, name).await;
    corpus_s3::upload(&s3, &bucket, objs).await;
    bucket
}

/// Keys and sizes under `prefix` of `bucket`.
async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let r = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .unwrap();
        for o in r.contents() {
            out.push((
                o.key().unwrap().to_owned(),
                u64::try_from(o.size().unwrap_or(0)).unwrap(),
            ));
        }
        match r.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let o = s3.get_object().bucket(bucket).key(key).send().await.unwrap();
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

/// A test's world: the stand-in (slices by way, so each way sees another
/// count), a bucket with the corpus, a staging bucket, a schema.
struct World {
    stand: RedshiftStandIn,
    bucket: String,
    staging_bucket: String,
    pg: Client,
    schema: String,
    way: Way,
}

impl World {
    async fn new(name: &str, way: Way) -> World {
        let slices = match way {
            Way::Wire => 4,
            Way::Cluster => 2,
            Way::Workgroup => 3,
        };
        let stand = RedshiftStandIn::start_with(StandInOptions {
            slices,
            ..StandInOptions::default()
        })
        .await;
        let bucket = bucket_with(name, &all()).await;
        let s3 = support::s3_client().await;
        let staging_bucket =
            support::fresh_bucket(&s3, &format!("{name}-stage")).await;
        let (pg, schema) = support::pg_schema(name).await;
        World { stand, bucket, staging_bucket, pg, schema, way }
    }

    /// Slices the loader must split by: `--slices` for Serverless (no
    /// `stv_slices` there), else what the stand-in's `stv_slices` holds.
    fn slices(&self) -> u64 {
        match self.way {
            Way::Wire => 4,
            Way::Cluster => 2,
            Way::Workgroup => 3,
        }
    }

    fn flags(&self) -> Vec<&'static str> {
        match self.way {
            Way::Workgroup => vec!["--slices", "3"],
            _ => Vec::new(),
        }
    }

    fn load(&self) -> Load<'_> {
        self.load_into(&self.schema)
    }

    fn load_into(&self, schema: &str) -> Load<'_> {
        Load {
            stand: &self.stand,
            way: self.way,
            schema: schema.to_owned(),
            staging: format!("s3://{}/stage/", self.staging_bucket),
        }
    }

    fn input(&self) -> Vec<OsString> {
        vec![s3_prefix(&self.bucket)]
    }

    async fn staged(&self) -> Vec<(String, u64)> {
        list(&support::s3_client().await, &self.staging_bucket, "stage/").await
    }

    /// What every run against the stand-in must have respected.
    fn assert_redshift_only(&self) {
        assert_eq!(
            self.stand.rejections(),
            Vec::new(),
            "the loader sent what Redshift refuses"
        );
        for c in self.stand.copies() {
            assert!(c.manifest, "a COPY without MANIFEST: {c:?}");
            for p in &c.parts {
                assert_eq!(
                    p.gzip_members, 1,
                    "a part of {} members: {p:?}",
                    p.gzip_members
                );
            }
        }
        for call in self.stand.api_calls() {
            assert_eq!(call.status, 200, "a Data API call failed: {call:?}");
            if call.op == "BatchExecuteStatement"
                || call.op == "ExecuteStatement"
            {
                let b = &call.body;
                match self.way {
                    Way::Cluster => {
                        assert_eq!(
                            b["ClusterIdentifier"], "standin-cluster",
                            "{b}"
                        );
                        assert_eq!(b["DbUser"], "tester", "{b}");
                    }
                    Way::Workgroup => {
                        assert_eq!(b["WorkgroupName"], "standin-wg", "{b}");
                        assert_eq!(b["SecretArn"], SECRET, "{b}");
                        assert!(b["DbUser"].is_null(), "{b}");
                    }
                    Way::Wire => {
                        panic!("a Data API call on the wire path: {b}")
                    }
                }
                assert_eq!(b["Database"], "dev", "{b}");
            }
            if call.op == "BatchExecuteStatement" {
                let sqls = call.body["Sqls"].as_array().unwrap();
                let ddl_only = sqls.iter().all(|s| {
                    let s =
                        s.as_str().unwrap().trim_start().to_ascii_uppercase();
                    s.starts_with("SELECT") || s.starts_with("CREATE")
                });
                if !ddl_only {
                    assert!(
                        call.body["ClientToken"]
                            .as_str()
                            .is_some_and(|t| !t.is_empty()),
                        "a batch without ClientToken: {}",
                        call.body
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. A backfill equals the PostgreSQL target's; a rerun loads nothing
// ---------------------------------------------------------------------------

async fn backfill_equals_postgres_target(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let want = reference().await;
    let w = World::new("rs-backfill", way).await;
    let root = tempdir();
    let mut flags = w.flags();
    flags.extend(["--batch-objects", "16"]);
    // Staged parts built from CSV read back from temporary files: every
    // object's on the cluster path, those beyond 16 KiB on the workgroup's.
    let spill = match way {
        Way::Wire => None,
        Way::Cluster => Some("0"),
        Way::Workgroup => Some("16384"),
    };
    if let Some(n) = spill {
        flags.extend(["--csv-memory-bytes", n]);
    }
    let out = root.join("first");
    let r = run_to_completion(
        &mut w.load().cmd(true, &flags, &w.input(), &out),
        &out,
    )
    .await;
    println!("{way:?} backfill: {}", r.summary);
    let n = all().len() as u64;
    assert_eq!(r.n("objects_loaded"), n, "{}", r.summary);
    for field in ["events", "rows", "filtered", "rejected", "errors"] {
        assert_eq!(
            r.summary[field], want.summary[field],
            "{field}: redshift {} vs postgres {}",
            r.summary, want.summary
        );
    }
    assert!(r.n("batches") > 1, "{}", r.summary);
    assert_eq!(r.n("objects_spilled") > 0, spill.is_some(), "{}", r.summary);
    assert_reference_state(&w.pg, &w.schema, want).await;
    assert_eq!(
        w.staged().await,
        Vec::new(),
        "staged objects left after commit"
    );
    w.assert_redshift_only();
    let copies = w.stand.copies();
    assert!(!copies.is_empty(), "no COPY reached the stand-in");
    assert!(copies.iter().all(|c| c.error.is_none()), "{copies:?}");

    let out = root.join("again");
    let r = run_to_completion(
        &mut w.load().cmd(true, &flags, &w.input(), &out),
        &out,
    )
    .await;
    println!("{way:?} rerun: {}", r.summary);
    for field in ["objects_loaded", "rows", "batches"] {
        assert_eq!(r.n(field), 0, "{field}: {}", r.summary);
    }
    assert_eq!(r.code, Some(0), "a run that loads nothing: {}", r.stderr);
    assert_reference_state(&w.pg, &w.schema, want).await;
    assert_eq!(w.stand.copies().len(), copies.len(), "the rerun ran a COPY");
    w.assert_redshift_only();
}

each_way!(backfill_equals_postgres_target: wire => Wire, cluster => Cluster, workgroup => Workgroup);

// ---------------------------------------------------------------------------
// 2. Two loaders racing
// ---------------------------------------------------------------------------

async fn racing_loaders_commit_each_object_once(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let want = reference().await;
    let w = World::new("rs-race", way).await;
    let root = tempdir();
    let mut flags = w.flags();
    flags.extend(["--batch-objects", "4"]);
    let outs = [root.join("a"), root.join("b")];
    let children: Vec<_> = outs
        .iter()
        .map(|o| w.load().cmd(true, &flags, &w.input(), o).spawn().unwrap())
        .collect();
    let mut runs = Vec::new();
    for (child, out) in children.into_iter().zip(&outs) {
        let r = finish(child, out).await;
        assert_completed(&r);
        println!("{way:?} racer: {}", r.summary);
        runs.push(r);
    }
    let n = all().len() as u64;
    let loaded: u64 = runs.iter().map(|r| r.n("objects_loaded")).sum();
    assert_eq!(loaded, n, "each object committed by exactly one loader");
    assert_reference_state(&w.pg, &w.schema, want).await;
    w.assert_redshift_only();
}

each_way!(racing_loaders_commit_each_object_once: wire => Wire, cluster => Cluster);

// ---------------------------------------------------------------------------
// 3. SIGKILL between upload and commit
// ---------------------------------------------------------------------------

async fn sigkill_between_upload_and_commit(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let want = reference().await;
    let w = World::new("rs-kill", way).await;
    let root = tempdir();
    let mut flags = w.flags();
    flags.extend(["--batch-objects", "3"]);
    let input = w.input();

    // A batch caught between upload and commit: its first COPY held by the
    // stand-in, the loader killed, then the COPY let go.
    let mut hold = w.stand.hold_copies();
    let out = root.join("held");
    let mut child = w.load().cmd(true, &flags, &input, &out).spawn().unwrap();
    let held =
        hold.next(DEADLINE).await.expect("no COPY reached the stand-in");
    assert!(held.manifest, "{held:?}");
    let staged = w.staged().await;
    assert!(!staged.is_empty(), "nothing staged before the COPY");
    child.start_kill().unwrap();
    let r = finish(child, &out).await;
    assert_eq!(r.signal, Some(9), "{}", r.stderr);
    held.release();
    drop(hold);
    w.stand.settle(DEADLINE).await;
    let objects = assert_whole_batches(&w.pg, &w.schema).await;
    match way {
        // The session died with the loader: its transaction rolled back.
        Way::Wire => assert_eq!(objects, 0, "a killed wire batch committed"),
        // The whole batch was submitted: the Data API runs it to its
        // commit with nobody waiting, as Redshift would.
        _ => println!(
            "{way:?}: the submitted batch committed {objects} objects"
        ),
    }
    assert!(!w.staged().await.is_empty(), "a killed loader cannot unstage");

    // Seeded random kill points over half an uninterrupted run.
    let measured = support::fresh_schema(&w.pg, "rs-kill-measured").await;
    let started = Instant::now();
    let out = root.join("measure");
    let r = run_to_completion(
        &mut w.load_into(&measured).cmd(true, &flags, &input, &out),
        &out,
    )
    .await;
    let full = started.elapsed();
    println!("{way:?} uninterrupted: {full:?}, {} batches", r.n("batches"));
    assert_reference_state(&w.pg, &measured, want).await;
    // Within the first quarter of a full run: later runs have less left
    // to load (the ledger skips what committed) and end sooner.
    let span = u64::try_from(full.as_micros() / 4).unwrap().max(1);
    let mut rng = Rng::new(0x5253_4B11 + way as u64);
    let mut killed = 0;
    for i in 0..8 {
        let delay = if i % 3 == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.below(span))
        };
        let out = root.join(format!("kill-{i:02}"));
        let mut child =
            w.load().cmd(true, &flags, &input, &out).spawn().unwrap();
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        let r = finish(child, &out).await;
        w.stand.settle(DEADLINE).await;
        let objects = assert_whole_batches(&w.pg, &w.schema).await;
        if r.signal.is_some() {
            assert_eq!(r.signal, Some(9), "{}", r.stderr);
            killed += 1;
        } else {
            assert_completed(&r);
        }
        println!("{way:?} run {i}: after {delay:?}, {objects} objects in the ledger");
    }
    assert!(killed >= 5, "only {killed} runs were killed");

    let out = root.join("final");
    let r =
        run_to_completion(&mut w.load().cmd(true, &flags, &input, &out), &out)
            .await;
    assert_eq!(
        r.n("objects_loaded") + r.n("objects_skipped_ledger"),
        all().len() as u64,
        "{}",
        r.summary
    );
    assert_reference_state(&w.pg, &w.schema, want).await;
    w.assert_redshift_only();
}

each_way!(sigkill_between_upload_and_commit: wire => Wire, cluster => Cluster);

// ---------------------------------------------------------------------------
// 4. A COPY error
// ---------------------------------------------------------------------------

/// Runs SQL on the stand-in's wire port.
async fn wire_client(stand: &RedshiftStandIn) -> Client {
    let conf = format!(
        "host=127.0.0.1 port={} user=tester dbname=dev",
        stand.wire_port()
    );
    let (c, conn) =
        tokio_postgres::connect(&conf, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    c
}

async fn copy_error_names_part_line_object(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let w = World::new("rs-copy-error", way).await;
    // The target, made by hand (as Redshift types it), with `path`
    // narrower than any path in the corpus.
    let c = wire_client(&w.stand).await;
    c.simple_query(&format!(
        "CREATE TABLE \"{s}\".{TABLE} (event_time TIMESTAMPTZ, event_id VARCHAR(256), \
         log_stream VARCHAR(1024), user_id VARCHAR(1024), path VARCHAR(3), status BIGINT, \
         latency_ms FLOAT8, tags SUPER, message VARCHAR(65535))",
        s = w.schema
    ))
    .await
    .unwrap();
    let out = tempdir().join("copy-error");
    let r = run(&mut w.load().cmd(false, &w.flags(), &w.input(), &out), &out)
        .await;
    println!("{way:?} COPY error:\n{}", r.stderr);
    assert_eq!(
        r.code,
        Some(1),
        "expected exit 1; summary {}\n{}",
        r.summary,
        r.stderr
    );
    // The failure must be the COPY's: the staging table takes the
    // target's types, so the narrow column rejects a line of a part (a
    // staging table typed from the spec would load, and the INSERT into
    // the target fail, with no part or line to name).
    let failed: Vec<_> =
        w.stand.copies().into_iter().filter(|c| c.error.is_some()).collect();
    assert!(
        !failed.is_empty(),
        "no COPY failed: the load failed after its COPYs succeeded \
         (stderr: {})",
        r.stderr.trim()
    );
    // What the stand-in recorded, as Redshift's stl_load_errors would.
    let e = w
        .pg
        .query_one(
            "SELECT filename, line_number, colname, err_code, err_reason, raw_line \
             FROM public.stl_load_errors WHERE filename LIKE $1 ORDER BY starttime LIMIT 1",
            &[&format!("s3://{}/stage/%", w.staging_bucket)],
        )
        .await
        .unwrap();
    let (file, line, col, code, reason, raw): (
        String,
        i64,
        String,
        i32,
        String,
        String,
    ) = (e.get(0), e.get(1), e.get(2), e.get(3), e.get(4), e.get(5));
    assert_eq!((col.as_str(), code), ("path", 1204), "{reason}");
    let fields: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(raw.as_bytes())
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(fields.len(), SPEC_COLUMNS + 1, "raw line {raw:?}");
    let object = &fields[0];
    let event_id = &fields[2];
    assert!(
        object.starts_with(&format!("s3://{}/{PREFIX}", w.bucket)),
        "{object}"
    );
    for (what, s) in [
        ("the part", file.as_str()),
        ("the line", &format!("line {line}")),
        ("the column", "path"),
        ("the reason", reason.as_str()),
        ("the object", object.as_str()),
        ("the event id", event_id.as_str()),
    ] {
        assert!(
            r.stderr.contains(s),
            "stderr should name {what} ({s:?}):\n{}",
            r.stderr
        );
    }
    assert_eq!(count(&w.pg, &w.schema, TABLE).await, 0, "rows committed");
    assert_eq!(
        count(&w.pg, &w.schema, LEDGER).await,
        0,
        "ledger rows committed"
    );
    assert_eq!(
        count(&w.pg, &w.schema, QUARANTINE).await,
        0,
        "quarantine committed"
    );
    assert_eq!(w.stand.rejections(), Vec::new());
}

each_way!(copy_error_names_part_line_object: wire => Wire, cluster => Cluster, workgroup => Workgroup);

// ---------------------------------------------------------------------------
// 5. Manifests and parts, read from moto before the commit
// ---------------------------------------------------------------------------

/// Checks one batch's staging directory (`dir`, ending in `/`): every
/// object is a manifest or a part listed by one, every entry mandatory
/// with the right content length, every part one gzip member inflating to
/// CSV with one field count; the data's manifest (rows of the spec's
/// columns plus the object key) has a multiple of `slices` parts. Returns
/// the number of data parts.
async fn check_batch_dir(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    dir: &str,
    slices: u64,
) -> usize {
    let objects: BTreeMap<String, u64> =
        list(s3, bucket, dir).await.into_iter().collect();
    let mut listed = BTreeSet::new();
    let mut manifests = BTreeSet::new();
    let mut data_parts = None;
    for key in objects.keys() {
        let body = get(s3, bucket, key).await;
        let Ok(json) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        let Some(entries) = json["entries"].as_array() else { continue };
        manifests.insert(key.clone());
        let mut widths = BTreeSet::new();
        for e in entries {
            let url =
                e["url"].as_str().unwrap_or_else(|| panic!("{key}: {e}"));
            let part =
                url.strip_prefix(&format!("s3://{bucket}/")).unwrap_or_else(
                    || panic!("{key}: {url} is not in the staging bucket"),
                );
            assert!(
                part.starts_with(dir),
                "{key}: {url} outside the batch's prefix"
            );
            assert_eq!(e["mandatory"], true, "{key}: {e}");
            let size = objects
                .get(part)
                .unwrap_or_else(|| panic!("{key}: {url} missing"));
            assert_eq!(
                e["meta"]["content_length"].as_u64(),
                Some(*size),
                "{key}: {e}"
            );
            assert!(listed.insert(part.to_owned()), "{url} listed twice");
            let data = get(s3, bucket, part).await;
            let (csv, members) = support::redshift::inflate(&data).unwrap();
            assert_eq!(members, 1, "{url}: {members} gzip members");
            let text = std::str::from_utf8(&csv)
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(text.as_bytes());
            for rec in r.records() {
                let rec = rec.unwrap_or_else(|e| panic!("{url}: {e}"));
                widths.insert(rec.len());
            }
        }
        assert!(widths.len() <= 1, "{key}: records of {widths:?} fields");
        if widths.contains(&(SPEC_COLUMNS + 1)) {
            assert!(data_parts.is_none(), "two data manifests in {dir}");
            data_parts = Some(entries.len());
        }
    }
    assert!(!manifests.is_empty(), "no manifest in {dir}");
    let unlisted: Vec<_> = objects
        .keys()
        .filter(|k| !listed.contains(*k) && !manifests.contains(*k))
        .collect();
    assert_eq!(unlisted, Vec::<&String>::new(), "objects no manifest lists");
    let parts =
        data_parts.unwrap_or_else(|| panic!("no data manifest in {dir}"));
    assert_eq!(
        parts as u64 % slices,
        0,
        "{parts} data parts for {slices} slices in {dir}"
    );
    parts
}

async fn manifests_and_parts_checked_in_moto(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let want = reference().await;
    let w = World::new("rs-manifests", way).await;
    let s3 = support::s3_client().await;
    let mut flags = w.flags();
    flags.extend(["--batch-objects", "24"]);
    let mut hold = w.stand.hold_copies();
    let out = tempdir().join("manifests");
    let mut child =
        w.load().cmd(true, &flags, &w.input(), &out).spawn().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut dirs = BTreeSet::new();
    loop {
        assert!(Instant::now() < deadline, "the run did not end");
        if let Some(h) = hold.next(Duration::from_millis(200)).await {
            let key = h
                .source
                .strip_prefix(&format!("s3://{}/", w.staging_bucket))
                .unwrap_or_else(|| {
                    panic!("COPY from {} outside the staging bucket", h.source)
                });
            assert!(h.manifest, "{h:?}");
            let dir = format!("{}/", key.rsplit_once('/').unwrap().0);
            if dirs.insert(dir.clone()) {
                let parts =
                    check_batch_dir(&s3, &w.staging_bucket, &dir, w.slices())
                        .await;
                println!("{way:?}: batch {dir}: {parts} data parts");
            }
            h.release();
        } else if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    drop(hold);
    let r = finish(child, &out).await;
    assert_completed(&r);
    assert!(dirs.len() >= 2, "only {} batches seen", dirs.len());
    assert_eq!(dirs.len() as u64, r.n("batches"), "{}", r.summary);
    assert_eq!(
        w.staged().await,
        Vec::new(),
        "staged objects left after commit"
    );
    assert_reference_state(&w.pg, &w.schema, want).await;
    w.assert_redshift_only();
}

each_way!(manifests_and_parts_checked_in_moto: wire => Wire, cluster => Cluster);

// ---------------------------------------------------------------------------
// 6. Usage: --staging overlapping an input; --dry-run
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_overlapping_an_input_is_a_usage_error() {
    let _shared = support::SERVER_LOCK.read().await;
    let w = World::new("rs-overlap", Way::Wire).await;
    let input = w.input();
    for (i, staging) in [
        format!("s3://{}/{PREFIX}", w.bucket),
        format!("s3://{}/app-logs/", w.bucket),
        format!("s3://{}/{PREFIX}staging/", w.bucket),
    ]
    .into_iter()
    .enumerate()
    {
        let mut load = w.load();
        load.staging = staging.clone();
        let out = tempdir().join(format!("overlap-{i}"));
        let r = run(&mut load.cmd(true, &[], &input, &out), &out).await;
        assert_eq!(r.code, Some(2), "--staging {staging}: {}", r.stderr);
        assert!(
            r.stderr.contains("overlap"),
            "--staging {staging}: {}",
            r.stderr
        );
    }
    let s3 = support::s3_client().await;
    assert_eq!(
        list(&s3, &w.bucket, "").await.len(),
        all().len(),
        "something was staged"
    );
    assert!(w.stand.copies().is_empty());
    assert_eq!(count(&w.pg, &w.schema, LEDGER).await, 0);
}

async fn dry_run_prints_the_plan_and_changes_nothing(way: Way) {
    let _shared = support::SERVER_LOCK.read().await;
    let w = World::new("rs-dry-run", way).await;
    let out = tempdir().join("dry-run");
    let mut flags = w.flags();
    flags.push("--dry-run");
    let r = run(&mut w.load().cmd(true, &flags, &w.input(), &out), &out).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for s in [
        "LOCK",
        "COPY",
        "MANIFEST",
        "IAM_ROLE",
        "INSERT INTO",
        "cwl_copy_ledger",
    ] {
        assert!(
            r.stdout.contains(s),
            "the plan should contain {s}:\n{}",
            r.stdout
        );
    }
    let tables: i64 = w
        .pg
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&w.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "--dry-run created tables");
    assert_eq!(w.staged().await, Vec::new(), "--dry-run staged objects");
    assert!(w.stand.copies().is_empty(), "--dry-run ran a COPY");
    for e in w.stand.events() {
        if let support::redshift::Event::Query { sql, .. } = e {
            let s = sql.trim_start().to_ascii_uppercase();
            assert!(
                s.starts_with("SELECT") || s.starts_with("SHOW"),
                "--dry-run ran {sql}"
            );
        }
    }
}

each_way!(dry_run_prints_the_plan_and_changes_nothing: wire => Wire, cluster => Cluster);

// ---------------------------------------------------------------------------
// The stand-in itself
// ---------------------------------------------------------------------------

mod standin {
    use std::collections::HashMap;
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    use aws_sdk_redshiftdata::types::{Field, StatusString};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::wire_client;
    use crate::support;
    use crate::support::redshift::{
        lex, plan, statements, Context, Plan, RedshiftStandIn, StandInOptions,
        Tok,
    };

    // -- planning, without servers ------------------------------------------

    /// What a statement must become.
    enum Want {
        /// Passed to PostgreSQL as this text.
        Pass(&'static str),
        /// Refused with this SQLSTATE and a message containing this.
        Refused(&'static str, &'static str),
        /// A COPY from S3 streamed into this PostgreSQL statement.
        Copy(&'static str),
        /// A TRUNCATE (which commits first).
        Truncate,
    }

    /// One row per statement: how Redshift takes it.
    const PLANS: &[(&str, Want)] = &[
        ("SELECT 1", Want::Pass("SELECT 1")),
        (
            "INSERT INTO t (\"returning\") VALUES ('ON CONFLICT') -- ON CONFLICT",
            Want::Pass("INSERT INTO t (\"returning\") VALUES ('ON CONFLICT')"),
        ),
        ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", Want::Refused("42601", "near \"ON\"")),
        ("insert into t select 1 returning *", Want::Refused("42601", "near \"returning\"")),
        ("UPDATE t SET a = 1 RETURNING a", Want::Refused("42601", "RETURNING")),
        ("COPY t FROM STDIN", Want::Refused("42601", "near \"STDIN\"")),
        ("COPY t (a) FROM stdin WITH (FORMAT csv)", Want::Refused("42601", "stdin")),
        ("COPY t TO STDOUT", Want::Refused("42601", "near \"TO\"")),
        ("COPY t FROM '/tmp/rows.csv' CSV", Want::Refused("XX000", "LOAD source is not supported")),
        ("CREATE UNIQUE INDEX i ON t (a)", Want::Refused("0A000", "CREATE INDEX")),
        ("CREATE INDEX i ON t (a)", Want::Refused("0A000", "no indexes")),
        (
            "CREATE TEMP TABLE s ON COMMIT DROP AS SELECT 1",
            Want::Refused("42601", "near \"ON\""),
        ),
        ("LOCK t IN EXCLUSIVE MODE", Want::Refused("42601", "near \"IN\"")),
        ("SELECT $1::text[]", Want::Refused("42601", "near \"[\"")),
        ("LOCK \"s\".\"ledger\"", Want::Pass("LOCK \"s\".\"ledger\"")),
        (
            "COPY \"s\".\"t\" (\"a\", b) FROM 's3://b/k.manifest' IAM_ROLE default MANIFEST \
             FORMAT AS CSV GZIP NULL AS '\\N' TIMEFORMAT 'auto' MAXERROR 0 REGION 'us-east-1'",
            Want::Copy("COPY \"s\".\"t\" ( \"a\" , b ) FROM STDIN WITH (FORMAT csv, NULL '\\N')"),
        ),
        (
            "copy t from 's3://b/p/' gzip csv quote as '''' iam_role 'arn:aws:iam::1:role/o''k' \
             null 'NIL' compupdate off statupdate off",
            Want::Copy("COPY t FROM STDIN WITH (FORMAT csv, NULL 'NIL', QUOTE '''')"),
        ),
        (
            "COPY t FROM 's3://b/k' IAM_ROLE default FORMAT AS JSON 'auto'",
            Want::Refused("0A000", "FORMAT JSON"),
        ),
        ("COPY t FROM 's3://b/k' FORMAT CSV", Want::Refused("XX000", "IAM_ROLE")),
        ("COPY t FROM 's3://b/k' IAM_ROLE default CSV MAXERROR 10", Want::Refused("0A000", "MAXERROR")),
        ("COPY t FROM 's3://b/k' IAM_ROLE default CSV EMPTYASNULL", Want::Refused("0A000", "EMPTYASNULL")),
        ("COPY t FROM 's3://b/k' IAM_ROLE default CSV BOGUS", Want::Refused("42601", "near \"BOGUS\"")),
        (
            "CREATE TABLE IF NOT EXISTS \"s\".\"l\" (\"key\" VARCHAR(4096) NOT NULL, n BIGINT \
             ENCODE az64, t TEXT, v varchar, m VARCHAR(MAX), j SUPER, id VARCHAR(8) UNIQUE, \
             PRIMARY KEY (\"key\"), CONSTRAINT fk FOREIGN KEY (n) REFERENCES o (n)) \
             DISTSTYLE EVEN COMPOUND SORTKEY (n)",
            Want::Pass(
                "CREATE TABLE IF NOT EXISTS \"s\".\"l\" (\"key\" VARCHAR(4096) NOT NULL \
                 CONSTRAINT \"cwl_rs_bytes_4096_key\" CHECK (octet_length(\"key\") <= 4096), \
                 n BIGINT, t varchar(256) CONSTRAINT \"cwl_rs_bytes_256_t\" CHECK \
                 (octet_length(\"t\") <= 256), v varchar(256) CONSTRAINT \
                 \"cwl_rs_bytes_256_v\" CHECK (octet_length(\"v\") <= 256), m VARCHAR(65535) \
                 CONSTRAINT \"cwl_rs_bytes_65535_m\" CHECK (octet_length(\"m\") <= 65535), \
                 j SUPER, id VARCHAR(8) CONSTRAINT \"cwl_rs_bytes_8_id\" CHECK \
                 (octet_length(\"id\") <= 8))  ",
            ),
        ),
        ("CREATE TABLE t (v VARCHAR(70000))", Want::Refused("22023", "cannot exceed 65535")),
        (
            "SELECT pg_last_copy_id(), pg_last_copy_count()",
            Want::Pass("SELECT pg_last_copy_id(1234), pg_last_copy_count(5)"),
        ),
        ("TRUNCATE t", Want::Truncate),
    ];

    fn one(
        sql: &str,
        cx: &Context,
    ) -> Result<Plan, crate::support::redshift::Rejection> {
        let stmts = statements(sql).unwrap();
        assert_eq!(stmts.len(), 1, "{sql}");
        plan(&stmts[0].0, &stmts[0].1, cx)
    }

    #[test]
    fn plans_statements_as_redshift_takes_them() {
        let cx = Context { last_copy: (1234, 5), ..Context::default() };
        for (sql, want) in PLANS {
            let got = one(sql, &cx);
            match (want, &got) {
                (Want::Pass(text), Ok(Plan::Pass(t))) => {
                    let norm = |s: &str| {
                        s.split_whitespace().collect::<Vec<_>>().join(" ")
                    };
                    assert_eq!(norm(t), norm(text), "{sql}");
                }
                (Want::Refused(code, msg), Err(r)) => {
                    assert_eq!(r.code, *code, "{sql}: {r:?}");
                    assert!(r.message.contains(msg), "{sql}: {r:?}");
                }
                (Want::Copy(pg), Ok(Plan::Copy(c))) => {
                    assert_eq!(c.pg_copy(), *pg, "{sql}")
                }
                (Want::Truncate, Ok(Plan::Truncate(_))) => {}
                _ => panic!("{sql}: got {got:?}"),
            }
        }
    }

    #[test]
    fn lexes_strings_comments_and_parameters() {
        let toks = lex("SELECT 'a''b', \"x\"\"y\", $q$ ; $q$, :p::int /* ; /* */ */ ; -- ;\n1")
            .unwrap();
        let kinds: Vec<(Tok, &str)> =
            toks.iter().map(|t| (t.kind, t.text.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Tok::Word, "SELECT"),
                (Tok::Str, "a'b"),
                (Tok::Punct, ","),
                (Tok::QIdent, "x\"y"),
                (Tok::Punct, ","),
                (Tok::Str, " ; "),
                (Tok::Punct, ","),
                (Tok::Param, "p"),
                (Tok::Punct, "::"),
                (Tok::Word, "int"),
                (Tok::Punct, ";"),
                (Tok::Num, "1"),
            ]
        );
        assert_eq!(statements("SELECT 1;; SELECT ';'; ").unwrap().len(), 2);
        assert!(lex("SELECT 'open").is_err());
        let cx = Context {
            params: Some(HashMap::from([("a".into(), "x'y".into())])),
            ..Context::default()
        };
        match one("SELECT :a, ':a', a::text", &cx) {
            Ok(Plan::Pass(t)) => assert_eq!(t, "SELECT 'x''y', ':a', a::text"),
            other => panic!("{other:?}"),
        }
        assert!(one("SELECT :b", &cx).is_err(), "a missing parameter");
        let serverless = Context { serverless: true, ..Context::default() };
        for sql in [
            "SELECT count(*) FROM stv_slices",
            "SELECT * FROM STL_LOAD_ERRORS",
        ] {
            let r = one(sql, &serverless).unwrap_err();
            assert_eq!(r.code, "42P01", "{sql}");
        }
        assert!(
            one("SELECT * FROM sys_load_error_detail", &serverless).is_ok()
        );
    }

    // -- both paths: a small client for each -------------------------------

    #[derive(Clone, Copy, Debug)]
    enum Path {
        Wire,
        Cluster,
        Workgroup,
    }

    const PATHS: [Path; 3] = [Path::Wire, Path::Cluster, Path::Workgroup];

    type Rows = Vec<Vec<Option<String>>>;

    /// A failed transaction: SQLSTATE (wire only) and message.
    #[derive(Debug)]
    struct Failed {
        code: Option<String>,
        message: String,
        /// The failed sub-statement's RedshiftQueryId (Data API).
        query_id: Option<i64>,
    }

    async fn data_client(
        stand: &RedshiftStandIn,
    ) -> aws_sdk_redshiftdata::Client {
        let conf = aws_sdk_redshiftdata::config::Builder::from(
            &support::aws_config().await,
        )
        .endpoint_url(stand.data_api_endpoint())
        .build();
        aws_sdk_redshiftdata::Client::from_conf(conf)
    }

    async fn wait(
        c: &aws_sdk_redshiftdata::Client,
        id: &str,
    ) -> aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput{
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = c.describe_statement().id(id).send().await.unwrap();
            match d.status() {
                Some(
                    StatusString::Finished
                    | StatusString::Failed
                    | StatusString::Aborted,
                ) => return d,
                _ => {
                    assert!(
                        Instant::now() < deadline,
                        "{id} still {:?}",
                        d.status()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn text(f: &Field) -> Option<String> {
        match f {
            Field::StringValue(s) => Some(s.clone()),
            Field::LongValue(n) => Some(n.to_string()),
            Field::DoubleValue(x) => Some(x.to_string()),
            Field::BooleanValue(b) => Some(if *b { "t" } else { "f" }.into()),
            _ => None,
        }
    }

    /// Runs `sqls` as one transaction through `path`; the rows of each
    /// statement.
    async fn tx(
        stand: &RedshiftStandIn,
        path: Path,
        sqls: &[&str],
    ) -> Result<Vec<Rows>, Failed> {
        match path {
            Path::Wire => {
                let c = wire_client(stand).await;
                let err = |e: tokio_postgres::Error| Failed {
                    code: e.as_db_error().map(|d| d.code().code().to_owned()),
                    message: e
                        .as_db_error()
                        .map_or(e.to_string(), |d| d.message().to_owned()),
                    query_id: None,
                };
                c.simple_query("BEGIN").await.map_err(err)?;
                let mut out = Vec::new();
                for s in sqls {
                    match c.simple_query(s).await {
                        Ok(msgs) => out.push(
                            msgs.iter()
                                .filter_map(|m| match m {
                                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                                        (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect(),
                                    ),
                                    _ => None,
                                })
                                .collect(),
                        ),
                        Err(e) => {
                            let _ = c.simple_query("ROLLBACK").await;
                            return Err(err(e));
                        }
                    }
                }
                c.simple_query("COMMIT").await.map_err(err)?;
                Ok(out)
            }
            Path::Cluster | Path::Workgroup => {
                let c = data_client(stand).await;
                let mut req = c
                    .batch_execute_statement()
                    .set_sqls(Some(
                        sqls.iter().map(|s| (*s).to_owned()).collect(),
                    ))
                    .database("dev");
                req = match path {
                    Path::Cluster => {
                        req.cluster_identifier("c1").db_user("tester")
                    }
                    _ => req.workgroup_name("wg1"),
                };
                let id = req.send().await.unwrap().id().unwrap().to_owned();
                let d = wait(&c, &id).await;
                if d.status() != Some(&StatusString::Finished) {
                    let failed = d
                        .sub_statements()
                        .iter()
                        .find(|s| s.error().is_some());
                    return Err(Failed {
                        code: None,
                        message: d.error().unwrap_or_default().to_owned(),
                        query_id: failed.map(|s| s.redshift_query_id()),
                    });
                }
                let mut out = Vec::new();
                for sub in d.sub_statements() {
                    let mut rows = Vec::new();
                    if sub.has_result_set() == Some(true) {
                        let r = c
                            .get_statement_result()
                            .id(sub.id())
                            .send()
                            .await
                            .unwrap();
                        rows = r
                            .records()
                            .iter()
                            .map(|rec| rec.iter().map(text).collect())
                            .collect();
                    }
                    out.push(rows);
                }
                Ok(out)
            }
        }
    }

    fn cell(rows: &[Rows], stmt: usize) -> Option<String> {
        rows[stmt][0][0].clone()
    }

    // -- what Redshift refuses, on both paths -------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_what_redshift_refuses_on_every_path() {
        let _shared = support::SERVER_LOCK.read().await;
        let stand = RedshiftStandIn::start().await;
        let (pg, schema) = support::pg_schema("standin-refuse").await;
        pg.batch_execute("CREATE TABLE t (a int, b text)").await.unwrap();
        let t = format!("\"{schema}\".t");
        let cases = [
            (
                format!(
                    "INSERT INTO {t} VALUES (1, 'x') ON CONFLICT DO NOTHING"
                ),
                "42601",
                "\"ON\"",
            ),
            (
                format!("INSERT INTO {t} VALUES (1, 'x') RETURNING a"),
                "42601",
                "RETURNING",
            ),
            (format!("COPY {t} FROM STDIN"), "42601", "STDIN"),
            (
                format!("COPY {t} FROM STDIN WITH (FORMAT csv)"),
                "42601",
                "STDIN",
            ),
            (
                format!("CREATE UNIQUE INDEX ON {t} (a)"),
                "0A000",
                "CREATE INDEX",
            ),
            (format!("LOCK {t} IN ACCESS EXCLUSIVE MODE"), "42601", "\"IN\""),
        ];
        for path in super::standin::PATHS {
            for (sql, code, msg) in &cases {
                // The statement runs after a good one in the same
                // transaction: the whole transaction is rolled back.
                let good = format!("INSERT INTO {t} VALUES (7, 'kept?')");
                let e = tx(&stand, path, &[&good, sql]).await.unwrap_err();
                if let Some(c) = &e.code {
                    assert_eq!(c, code, "{path:?} {sql}: {e:?}");
                }
                assert!(e.message.contains(msg), "{path:?} {sql}: {e:?}");
            }
        }
        let n: i64 =
            pg.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "a refused statement's transaction committed");
        let refused = stand.rejections().len();
        assert_eq!(refused, cases.len() * 3, "{:?}", stand.rejections());

        // Prepared statements on the wire: refused, then simple queries
        // work again on the same connection.
        let c = wire_client(&stand).await;
        let e = c.query("SELECT 1", &[]).await.unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
        assert_eq!(db.code().code(), "0A000");
        assert!(
            db.message().contains("prepared statements are not supported"),
            "{db:?}"
        );
        let e = c
            .copy_in::<_, bytes::Bytes>(&format!("COPY {t} FROM STDIN"))
            .await
            .err()
            .expect("COPY FROM STDIN accepted");
        let db = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
        assert!(db.message().contains("prepared statements"), "{db:?}");
        let rows = c.simple_query("SELECT 41 + 1").await.unwrap();
        assert!(
            matches!(&rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("42"))
        );
        // In a transaction, a refused Parse aborts it, as an error does.
        c.simple_query("BEGIN").await.unwrap();
        c.query("SELECT 1", &[]).await.unwrap_err();
        let e = c.simple_query("SELECT 1").await.unwrap_err();
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("25P02"),
            "{e}"
        );
        c.simple_query("ROLLBACK").await.unwrap();
        assert!(c.simple_query("SELECT 1").await.is_ok());
    }

    // -- the wire protocol ---------------------------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wire_protocol_startup_results_and_transactions() {
        let _shared = support::SERVER_LOCK.read().await;
        let stand = RedshiftStandIn::start_with(StandInOptions {
            slices: 3,
            password: Some("s3cret".into()),
            ..StandInOptions::default()
        })
        .await;
        let port = stand.wire_port();
        // SSLRequest is answered N (no TLS), then startup goes on.
        let mut raw =
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        raw.write_all(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]).await.unwrap();
        assert_eq!(raw.read_u8().await.unwrap(), b'N');
        drop(raw);
        let conf = |pw: &str| {
            format!(
                "host=127.0.0.1 port={port} user=u dbname=dev password={pw}"
            )
        };
        let e = tokio_postgres::connect(&conf("wrong"), tokio_postgres::NoTls)
            .await
            .err()
            .expect("a wrong password accepted");
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("28P01"),
            "{e}"
        );
        let (c, conn) =
            tokio_postgres::connect(&conf("s3cret"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        // Several statements in one Query; rows, NULL, tags; stv_slices.
        let msgs = c
            .simple_query(
                "SELECT 1 AS one, 'x'::varchar AS s, NULL::int AS n; \
                 SELECT count(*) FROM stv_slices; SELECT 'a' WHERE false",
            )
            .await
            .unwrap();
        use tokio_postgres::SimpleQueryMessage as M;
        let rows: Vec<Vec<Option<String>>> = msgs
            .iter()
            .filter_map(|m| match m {
                M::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        assert_eq!(
            rows,
            [
                vec![Some("1".into()), Some("x".into()), None],
                vec![Some("3".into())]
            ]
        );
        let tags: Vec<u64> = msgs
            .iter()
            .filter_map(|m| match m {
                M::CommandComplete(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(tags, [1, 1, 0]);
        // Transaction status: an error leaves the transaction failed.
        c.simple_query("BEGIN").await.unwrap();
        assert!(c.simple_query("SELECT 1/0").await.is_err());
        let e = c.simple_query("SELECT 1").await.unwrap_err();
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("25P02"),
            "{e}"
        );
        c.simple_query("ROLLBACK").await.unwrap();
        // The session holds between queries: a temp table lives on.
        c.simple_query(
            "CREATE TEMP TABLE tmp (a int); INSERT INTO tmp VALUES (5)",
        )
        .await
        .unwrap();
        let rows = c.simple_query("SELECT a FROM tmp").await.unwrap();
        assert!(matches!(&rows[1], M::Row(r) if r.get(0) == Some("5")));
    }

    // -- Redshift semantics, on every path ---------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redshift_semantics_on_every_path() {
        let _shared = support::SERVER_LOCK.read().await;
        let stand = RedshiftStandIn::start().await;
        let (pg, schema) = support::pg_schema("standin-semantics").await;
        for path in PATHS {
            let t = format!("\"{schema}\".\"t_{path:?}\"");
            let o = format!("\"{schema}\".\"o_{path:?}\"");
            // PRIMARY KEY and UNIQUE are informational: duplicates load.
            tx(
                &stand,
                path,
                &[
                    &format!(
                        "CREATE TABLE {t} (k VARCHAR(4) NOT NULL, v BIGINT UNIQUE, j SUPER, \
                         PRIMARY KEY (k)) DISTSTYLE EVEN SORTKEY (k)"
                    ),
                    &format!("CREATE TABLE {o} (a int)"),
                ],
            )
            .await
            .unwrap();
            let r = tx(
                &stand,
                path,
                &[
                    &format!("INSERT INTO {t} VALUES ('a', 1, '{{\"x\": [1, 2]}}'), ('a', 1, NULL)"),
                    &format!("SELECT count(*), count(DISTINCT k) FROM {t}"),
                    &format!("SELECT j FROM {t} WHERE j IS NOT NULL"),
                ],
            )
            .await
            .unwrap();
            assert_eq!(
                r[1][0],
                [Some("2".into()), Some("1".into())],
                "{path:?}"
            );
            assert_eq!(
                cell(&r, 2).as_deref(),
                Some("{\"x\": [1, 2]}"),
                "{path:?}"
            );
            // VARCHAR counts bytes: 'éé' is 4 bytes and fits, 'ééé' not.
            tx(&stand, path, &[&format!("INSERT INTO {t} (k) VALUES ('éé')")])
                .await
                .unwrap();
            let e = tx(
                &stand,
                path,
                &[&format!("INSERT INTO {t} (k) VALUES ('ééé')")],
            )
            .await
            .unwrap_err();
            assert!(
                e.message
                    .contains("value too long for type character varying(4)"),
                "{path:?}: {e:?}"
            );
            if let Some(code) = &e.code {
                assert_eq!(code, "22001");
            }
            // TRUNCATE commits what came before it.
            let e = tx(
                &stand,
                path,
                &[
                    &format!("INSERT INTO {o} VALUES (1)"),
                    &format!("TRUNCATE {t}"),
                    "SELECT 1/0",
                ],
            )
            .await
            .unwrap_err();
            assert!(e.message.contains("division by zero"), "{e:?}");
            let r = tx(&stand, path, &[&format!("SELECT count(*) FROM {o}")])
                .await
                .unwrap();
            assert_eq!(
                cell(&r, 0).as_deref(),
                Some("1"),
                "{path:?}: TRUNCATE committed"
            );
            // Slices, and the system tables a Serverless session lacks.
            let r = tx(
                &stand,
                path,
                &["SELECT count(*) FROM sys_load_error_detail WHERE false"],
            )
            .await
            .unwrap();
            assert_eq!(cell(&r, 0).as_deref(), Some("0"));
            let slices =
                tx(&stand, path, &["SELECT count(*) FROM stv_slices"]).await;
            match path {
                Path::Workgroup => {
                    let e = slices.unwrap_err();
                    assert!(
                        e.message.contains("\"stv_slices\" does not exist"),
                        "{e:?}"
                    );
                }
                _ => {
                    assert_eq!(cell(&slices.unwrap(), 0).as_deref(), Some("4"))
                }
            }
        }
        drop(pg);
    }

    // -- COPY … MANIFEST from moto, on every path --------------------------

    fn gzip(members: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in members {
            let mut e = flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            );
            e.write_all(m).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn manifest(entries: &[(&str, bool, Option<usize>)]) -> Vec<u8> {
        let e: Vec<serde_json::Value> = entries
            .iter()
            .map(|(url, mandatory, len)| {
                let mut v =
                    serde_json::json!({"url": url, "mandatory": mandatory});
                if let Some(n) = len {
                    v["meta"] = serde_json::json!({"content_length": n});
                }
                v
            })
            .collect();
        serde_json::json!({ "entries": e }).to_string().into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copy_manifest_from_moto_on_every_path() {
        let _shared = support::SERVER_LOCK.read().await;
        let stand = RedshiftStandIn::start().await;
        let (pg, schema) = support::pg_schema("standin-copy").await;
        let s3 = support::s3_client().await;
        let bucket = support::fresh_bucket(&s3, "standin-copy").await;
        let put = |key: &str, body: Vec<u8>| {
            let s3 = s3.clone();
            let (bucket, key) = (bucket.clone(), key.to_owned());
            async move {
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(body.into())
                    .send()
                    .await
                    .unwrap();
            }
        };
        let url = |key: &str| format!("s3://{bucket}/{key}");
        // Part 0: one member; NULL, '', a quoted newline and quote, UTF-8.
        let p0 = gzip(&[
            b"1,\\N,\\N\n2,\"two\nlines \"\"q\"\"\",\"2024-05-01T00:00:01.5Z\"\n7,\"\",\\N\n",
        ]);
        // Part 1: two members, no final newline.
        let p1 = gzip(&[
            b"3,\"caf\xc3\xa9\",2024-05-01 00:00:03+00\n",
            b"4,\"x\",\\N",
        ]);
        // Part 2: a multi-line record, then a name of 9 characters and 18
        // bytes: it fits PostgreSQL's VARCHAR(16), not Redshift's.
        let p2 = gzip(&["5,\"a\nb\",\\N\n6,\"ééééééééé\",\\N\n".as_bytes()]);
        put("parts/p0.gz", p0.clone()).await;
        put("parts/p1.gz", p1.clone()).await;
        put("bad/p2.gz", p2.clone()).await;
        let good = manifest(&[
            (&url("parts/p0.gz"), true, Some(p0.len())),
            (&url("parts/p1.gz"), true, Some(p1.len())),
            (&url("parts/missing-but-optional.gz"), false, None),
        ]);
        put("good.manifest", good).await;
        put(
            "bad-length.manifest",
            manifest(&[(&url("parts/p0.gz"), true, Some(p0.len() + 1))]),
        )
        .await;
        put(
            "missing.manifest",
            manifest(&[(&url("parts/nope.gz"), true, None)]),
        )
        .await;
        put(
            "data-error.manifest",
            manifest(&[
                (&url("parts/p0.gz"), true, Some(p0.len())),
                (&url("bad/p2.gz"), true, Some(p2.len())),
            ]),
        )
        .await;
        let copy = |t: &str, from: &str, manifest: bool| {
            format!(
                "COPY {t} FROM '{}' IAM_ROLE 'arn:aws:iam::1:role/r' {}FORMAT AS CSV GZIP \
                 NULL AS '\\N' TIMEFORMAT 'auto' MAXERROR 0",
                url(from),
                if manifest { "MANIFEST " } else { "" }
            )
        };
        for path in PATHS {
            let t = format!("\"{schema}\".\"t_{path:?}\"");
            tx(
                &stand,
                path,
                &[&format!("CREATE TABLE {t} (id BIGINT, name VARCHAR(16), at TIMESTAMPTZ)")],
            )
            .await
            .unwrap();
            let count_sql = match path {
                Path::Wire => "SELECT pg_last_copy_count()",
                _ => "SELECT 5",
            };
            let r = tx(
                &stand,
                path,
                &[&copy(&t, "good.manifest", true), count_sql],
            )
            .await
            .unwrap();
            assert_eq!(cell(&r, 1).as_deref(), Some("5"), "{path:?}");
            let got: Vec<(i64, Option<String>, Option<String>)> = pg
                .query(
                    &format!(
                        "SELECT id, name::text, to_char(at AT TIME ZONE 'UTC', \
                         'YYYY-MM-DD HH24:MI:SS.MS') FROM {t} ORDER BY id"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let s = |x: &str| Some(x.to_owned());
            assert_eq!(
                got,
                [
                    (1, None, None),
                    (2, s("two\nlines \"q\""), s("2024-05-01 00:00:01.500")),
                    (3, s("café"), s("2024-05-01 00:00:03.000")),
                    (4, s("x"), None),
                    (7, s(""), None),
                ],
                "{path:?}: \\N is NULL, \"\" is ''"
            );
            // Without MANIFEST the URL is a key prefix: parts/ has p0, p1.
            let r = tx(
                &stand,
                path,
                &[
                    &copy(&t, "parts/", false),
                    &format!("SELECT count(*) FROM {t}"),
                ],
            )
            .await
            .unwrap();
            assert_eq!(cell(&r, 1).as_deref(), Some("10"), "{path:?}");
            // Manifest failures, each rolling back its transaction.
            for (m, msg) in [
                ("nothing-here.manifest", "Problem reading manifest file"),
                ("bad-length.manifest", "content_length"),
                ("missing.manifest", "mandatory"),
            ] {
                let e = tx(
                    &stand,
                    path,
                    &[&format!("DELETE FROM {t}"), &copy(&t, m, true)],
                )
                .await
                .unwrap_err();
                assert!(e.message.contains(msg), "{path:?} {m}: {e:?}");
            }
            // A rejected line: recorded in stl_load_errors with the part,
            // the line within it, the column, Redshift's code; the
            // transaction rolled back, the record kept.
            let e = tx(
                &stand,
                path,
                &[
                    &format!("DELETE FROM {t}"),
                    &copy(&t, "data-error.manifest", true),
                ],
            )
            .await
            .unwrap_err();
            let table = format!("t_{path:?}");
            assert!(
                e.message
                    .contains(&format!("Load into table '{table}' failed.")),
                "{path:?}: {e:?}"
            );
            assert_eq!(e.code.as_deref().unwrap_or("XX000"), "XX000");
            let row = pg
                .query_one(
                    "SELECT query, filename, line_number, colname, err_code, err_reason, \
                     raw_line, raw_field_value FROM public.stl_load_errors \
                     WHERE filename = $1 ORDER BY starttime DESC LIMIT 1",
                    &[&url("bad/p2.gz")],
                )
                .await
                .unwrap();
            let query: i64 = row.get(0);
            assert_eq!(
                row.get::<_, i64>(2),
                3,
                "{path:?}: the line within the part"
            );
            assert_eq!(row.get::<_, String>(3), "name");
            assert_eq!(row.get::<_, i32>(4), 1204);
            assert_eq!(
                row.get::<_, String>(5),
                "String length exceeds DDL length"
            );
            assert_eq!(row.get::<_, String>(6), "6,\"ééééééééé\",\\N");
            let field: String = row.get(7);
            assert!(field.is_empty() || field == "ééééééééé", "{field:?}");
            if let Some(id) = e.query_id {
                assert_eq!(
                    id, query,
                    "{path:?}: RedshiftQueryId of the failed COPY"
                );
            }
            let n: i64 = pg
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                n, 10,
                "{path:?}: the failed transaction's DELETE rolled back"
            );
            if let Path::Wire = path {
                // pg_last_copy_id() answers for the failed COPY, after the
                // rollback, on the same session.
                let c = wire_client(&stand).await;
                c.simple_query("BEGIN").await.unwrap();
                assert!(c
                    .simple_query(&copy(&t, "data-error.manifest", true))
                    .await
                    .is_err());
                c.simple_query("ROLLBACK").await.unwrap();
                let msgs =
                    c.simple_query("SELECT pg_last_copy_id()").await.unwrap();
                let id: i64 = match &msgs[1] {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        r.get(0).unwrap().parse().unwrap()
                    }
                    m => panic!("{m:?}"),
                };
                let n: i64 = pg
                    .query_one("SELECT count(*) FROM public.stl_load_errors WHERE query = $1", &[&id])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(
                    n, 1,
                    "stl_load_errors for pg_last_copy_id() = {id}"
                );
            }
        }
        let copies = stand.copies();
        let good: Vec<_> = copies
            .iter()
            .filter(|c| c.source.ends_with("good.manifest"))
            .collect();
        assert_eq!(good.len(), 3);
        assert_eq!(
            good[0].parts.iter().map(|p| p.gzip_members).collect::<Vec<_>>(),
            [1, 2]
        );
    }

    // -- the Data API through the SDK --------------------------------------

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_api_round_trip_with_the_sdk() {
        let _shared = support::SERVER_LOCK.read().await;
        let stand = RedshiftStandIn::start_with(StandInOptions {
            submit_delay: Duration::from_millis(200),
            ..StandInOptions::default()
        })
        .await;
        let (pg, schema) = support::pg_schema("standin-api").await;
        let c = data_client(&stand).await;
        let t = format!("\"{schema}\".t");
        // ExecuteStatement: asynchronous, SUBMITTED first.
        let out = c
            .execute_statement()
            .sql(format!("CREATE TABLE {t} (id BIGINT, s VARCHAR(10), b BOOLEAN, f FLOAT8)"))
            .cluster_identifier("c1")
            .database("dev")
            .db_user("tester")
            .send()
            .await
            .unwrap();
        let d =
            c.describe_statement().id(out.id().unwrap()).send().await.unwrap();
        assert_eq!(d.status(), Some(&StatusString::Submitted));
        assert_eq!(d.cluster_identifier(), Some("c1"));
        let d = wait(&c, out.id().unwrap()).await;
        assert_eq!(
            d.status(),
            Some(&StatusString::Finished),
            "{:?}",
            d.error()
        );
        assert_eq!(d.has_result_set(), Some(false));
        // A batch: one transaction, typed results per sub-statement.
        let sqls = vec![
            format!("INSERT INTO {t} VALUES (1, 'a', true, 1.5), (2, NULL, false, NULL)"),
            format!("SELECT id, s, b, f, now() AS ts FROM {t} ORDER BY id"),
        ];
        let b = c
            .batch_execute_statement()
            .set_sqls(Some(sqls.clone()))
            .workgroup_name("wg1")
            .database("dev")
            .client_token("token-1")
            .send()
            .await
            .unwrap();
        let d = wait(&c, b.id().unwrap()).await;
        assert_eq!(
            d.status(),
            Some(&StatusString::Finished),
            "{:?}",
            d.error()
        );
        let subs = d.sub_statements();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].id(), format!("{}:1", b.id().unwrap()));
        assert_eq!(subs[0].result_rows(), 2);
        assert_eq!(subs[1].has_result_set(), Some(true));
        let r =
            c.get_statement_result().id(subs[1].id()).send().await.unwrap();
        assert_eq!(r.total_num_rows(), 2);
        let types: Vec<_> = r
            .column_metadata()
            .iter()
            .map(|m| m.type_name().unwrap_or(""))
            .collect();
        assert_eq!(
            types,
            ["int8", "varchar", "bool", "float8", "timestamptz"]
        );
        let rec = &r.records()[0];
        assert_eq!(rec[0], Field::LongValue(1));
        assert_eq!(rec[1], Field::StringValue("a".into()));
        assert_eq!(rec[2], Field::BooleanValue(true));
        assert_eq!(rec[3], Field::DoubleValue(1.5));
        assert!(
            matches!(&rec[4], Field::StringValue(s) if s.ends_with("+00")),
            "{rec:?}"
        );
        assert_eq!(r.records()[1][1], Field::IsNull(true));
        // The same ClientToken and request: the same Id, nothing re-run.
        let again = c
            .batch_execute_statement()
            .set_sqls(Some(sqls.clone()))
            .workgroup_name("wg1")
            .database("dev")
            .client_token("token-1")
            .send()
            .await
            .unwrap();
        assert_eq!(again.id().unwrap(), b.id().unwrap());
        let n: i64 =
            pg.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
        assert_eq!(n, 2, "a retried submission ran again");
        let e = c
            .batch_execute_statement()
            .set_sqls(Some(vec!["SELECT 1".into()]))
            .workgroup_name("wg1")
            .database("dev")
            .client_token("token-1")
            .send()
            .await
            .unwrap_err();
        assert!(e.into_service_error().is_validation_exception());
        // A failing batch rolls back all, FAILED with the error text, the
        // rest ABORTED; the top-level Id has no single result.
        let b = c
            .batch_execute_statement()
            .set_sqls(Some(vec![
                format!("INSERT INTO {t} VALUES (3, 'c', true, 0)"),
                format!("INSERT INTO {t} VALUES (4, 'far too long', true, 0)"),
                format!("INSERT INTO {t} VALUES (5, 'e', true, 0)"),
            ]))
            .cluster_identifier("c1")
            .database("dev")
            .db_user("tester")
            .send()
            .await
            .unwrap();
        let d = wait(&c, b.id().unwrap()).await;
        assert_eq!(d.status(), Some(&StatusString::Failed));
        assert_eq!(
            d.error(),
            Some("ERROR: value too long for type character varying(10)"),
            "{d:?}"
        );
        let st: Vec<_> =
            d.sub_statements().iter().map(|s| s.status().cloned()).collect();
        use aws_sdk_redshiftdata::types::StatementStatusString as S;
        assert_eq!(st, [Some(S::Finished), Some(S::Failed), Some(S::Aborted)]);
        let n: i64 =
            pg.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
        assert_eq!(n, 2, "a failed batch committed");
        let e = c
            .get_statement_result()
            .id(b.id().unwrap())
            .send()
            .await
            .unwrap_err();
        assert!(e.into_service_error().is_validation_exception());
        // Parameters; errors the SDK maps.
        let out = c
            .execute_statement()
            .sql(format!("SELECT count(*) FROM {t} WHERE s = :s"))
            .parameters(
                aws_sdk_redshiftdata::types::SqlParameter::builder()
                    .name("s")
                    .value("a")
                    .build()
                    .unwrap(),
            )
            .cluster_identifier("c1")
            .database("dev")
            .db_user("tester")
            .send()
            .await
            .unwrap();
        wait(&c, out.id().unwrap()).await;
        let r = c
            .get_statement_result()
            .id(out.id().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.records()[0][0], Field::LongValue(1));
        let e =
            c.describe_statement().id("no-such-id").send().await.unwrap_err();
        assert!(e.into_service_error().is_resource_not_found_exception());
        let e = c
            .execute_statement()
            .sql(format!("SELECT '{}'", "x".repeat(101 * 1024)))
            .cluster_identifier("c1")
            .database("dev")
            .send()
            .await
            .unwrap_err();
        assert!(e.into_service_error().is_validation_exception());
        let e = c
            .execute_statement()
            .sql("SELECT 1")
            .database("dev")
            .send()
            .await
            .unwrap_err();
        assert!(
            e.into_service_error().is_validation_exception(),
            "neither cluster nor workgroup"
        );
        // An operation it does not serve: a JSON ValidationException.
        let (status, body) =
            raw_call(&stand, "RedshiftData.ListTables", "{}").await;
        assert_eq!(status, 400, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["__type"], "ValidationException", "{body}");
        assert!(
            v["message"].as_str().unwrap().contains("ListTables"),
            "{body}"
        );
        let calls = stand.api_calls();
        assert!(calls.iter().any(|c| c.op == "ListTables" && c.status == 400));
        stand.settle(Duration::from_secs(30)).await;
    }

    /// A hand-made Data API call: (HTTP status, body).
    async fn raw_call(
        stand: &RedshiftStandIn,
        target: &str,
        body: &str,
    ) -> (u16, String) {
        let addr =
            stand.data_api_endpoint().trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\n\
             Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
        let body = resp.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }
}
