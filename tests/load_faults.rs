//! Fault tests for `cwl-copy load`: the real binary against a real
//! PostgreSQL server, killed with SIGKILL at random points, across server
//! restarts, fed the same objects twice, with event-level dedup, and with
//! several loaders racing on the same inputs.
//!
//! Every test checks the end state strictly against a reference: the rows
//! `cwl-copy convert` writes for the same inputs and spec, loaded with a
//! plain `COPY` into a table of the same shape. The target must hold the
//! same multiset of rows (count, distinct event ids, and an md5 over all
//! rows in text order), the ledger must list every object exactly once, and
//! the quarantine must hold each rejected event exactly once.
//!
//! Each test has its own schema and its own generated corpus (a few dozen
//! objects of 1–3 gzip members of 8–20 KB, some with a control message;
//! about 3% of the messages are plain text, which the spec rejects, so the
//! quarantine is exercised too).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cwl_copy::corpus::{self, Rng};
use cwl_copy::{ColumnSpec, Dialect, Mapper};
use futures_util::SinkExt;
use serde_json::Value;
use tokio_postgres::Client;

use crate::decode::{bin, tempdir};
use crate::support::cli::{
    assert_completed, finish, run_to_completion, Run, DEADLINE,
};
use crate::support::{self, fingerprint};

/// The shipped spec (its `event_id` column comes from `@id`).
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/specs/integrated_user_log.toml"
);

/// `SPEC` without its filter, written once to a temp file: the corpus's
/// plain-text messages then reach the mapping, which rejects them
/// (`non_json = "reject"`), so every test exercises the quarantine too.
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
        let path = tempdir().join("unfiltered.toml");
        std::fs::write(&path, unfiltered).unwrap();
        path.to_string_lossy().into_owned()
    })
}
/// The spec's table.
const TABLE: &str = "integrated_user_log";
const LEDGER: &str = "cwl_copy_ledger";
const QUARANTINE: &str = "cwl_copy_quarantine";
/// The reference table, in each test's schema.
const REF: &str = "fault_ref";

// ---------------------------------------------------------------------------
// Corpus and reference
// ---------------------------------------------------------------------------

/// Writes objects `obj-<first>.gz` … `obj-<first+n-1>.gz` into `dir`,
/// deterministic in `seed`, and returns their paths.
fn write_objects(
    dir: &Path,
    seed: u64,
    first: usize,
    n: usize,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng::new(seed);
    let mut ts = 1_700_000_000_000 + (seed % 1000) as i64 * 86_400_000;
    (first..first + n)
        .map(|i| {
            let members = 1 + rng.below(3) as usize;
            let member_bytes = 8_000 + rng.below(12_000) as usize;
            let control = i % 4 == 0;
            let (obj, _) = corpus::object(
                &mut rng,
                &mut ts,
                members,
                member_bytes,
                control,
            );
            let path = dir.join(format!("obj-{i:03}.gz"));
            std::fs::write(&path, obj).unwrap();
            path
        })
        .collect()
}

/// What `cwl-copy convert` makes of some inputs.
struct Expected {
    /// The CSV rows (PostgreSQL dialect).
    csv: PathBuf,
    rows: i64,
    rejected: i64,
}

/// Runs `cwl-copy convert` with the spec over `inputs`, writing
/// `<out>.csv` and `<out>.json`.
fn convert(inputs: &[&Path], out: &Path) -> Expected {
    let csv = out.with_extension("csv");
    let summary = out.with_extension("json");
    let o = bin()
        .args(["convert", "--columns", spec(), "--out"])
        .arg(&csv)
        .arg("--summary-json")
        .arg(&summary)
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 3)),
        "convert failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let e = Expected {
        csv,
        rows: s["rows"].as_i64().unwrap(),
        rejected: s["rejected"].as_i64().unwrap(),
    };
    assert!(e.rows > 500, "corpus too small: {s}");
    assert!(e.rejected > 0, "the corpus should exercise the quarantine: {s}");
    e
}

/// Creates `table` (the spec's columns) on `c`'s search path and loads
/// the convert output into it with a plain `COPY`.
async fn load_reference(c: &Client, table: &str, e: &Expected) {
    let mut spec =
        ColumnSpec::from_toml(&std::fs::read_to_string(spec()).unwrap())
            .unwrap();
    spec.set_table(table);
    let mapper = Mapper::new(&spec, Dialect::Postgres).unwrap();
    let t = cwl_copy::sql::TableName::new(None, table).unwrap();
    c.batch_execute(&cwl_copy::sql::create_table(&mapper, &t).join(";"))
        .await
        .unwrap();
    let sink = c
        .copy_in::<_, bytes::Bytes>(&cwl_copy::sql::copy_statement(
            &mapper, &t, "STDIN",
        ))
        .await
        .unwrap();
    let mut sink = std::pin::pin!(sink);
    sink.send(std::fs::read(&e.csv).unwrap().into()).await.unwrap();
    let n = sink.as_mut().finish().await.unwrap();
    assert_eq!(n as i64, e.rows, "reference COPY");
}

/// Writes the events of the object `from` to `to` as another object, the
/// way a redelivery does: same events, different bytes (here the gzip
/// header's MTIME of the first member, which no decoder reads), so the
/// ledger's content hash does not take it for a copy.
fn redeliver(from: &Path, to: &Path) {
    let mut bytes = std::fs::read(from).unwrap();
    assert_eq!(&bytes[..3], b"\x1f\x8b\x08", "{} is not gzip", from.display());
    bytes[4] ^= 0x5a;
    std::fs::write(to, bytes).unwrap();
}

/// The ledger key of a local file: its canonical path.
fn key(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().to_string_lossy().into_owned()
}

/// The end state every test wants: the target equals the reference `from`,
/// the ledger lists exactly `files`, once each, with row counts adding up
/// to the target's (plus `duplicate_events` skipped by `--dedup-events`),
/// and the quarantine holds `rejected` rejected events,
/// each once.
async fn assert_end_state(
    c: &Client,
    reference: &str,
    files: &[PathBuf],
    rejected: i64,
    duplicate_events: i64,
) {
    let want = fingerprint(c, reference).await;
    let got = fingerprint(c, TABLE).await;
    assert_eq!(got, want, "target vs reference {reference}");

    let keys: Vec<String> = c
        .query(&format!("SELECT key FROM {LEDGER}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let distinct: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), distinct.len(), "a key twice in the ledger");
    let expected: BTreeSet<String> = files.iter().map(|p| key(p)).collect();
    assert_eq!(distinct, expected, "ledger keys");

    let (ledger_rows, ledger_rejected) = ledger_totals(c).await;
    assert_eq!(
        ledger_rows,
        got.rows + duplicate_events,
        "ledger rows vs target rows + duplicate events"
    );
    assert_eq!(ledger_rejected, rejected, "ledger rejected");
    let q = c
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT key || ' ' || \
                 coalesce(event_id, '')) FROM {QUARANTINE} \
                 WHERE kind = 'rejected_event'"
            ),
            &[],
        )
        .await
        .unwrap();
    let (n, distinct): (i64, i64) = (q.get(0), q.get(1));
    assert_eq!((n, distinct), (rejected, rejected), "quarantined events");
}

/// Sum of the ledger's `rows` and `rejected`.
async fn ledger_totals(c: &Client) -> (i64, i64) {
    let r = c
        .query_one(
            &format!(
                "SELECT coalesce(sum(\"rows\"), 0)::bigint, \
                 coalesce(sum(rejected), 0)::bigint FROM {LEDGER}"
            ),
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// Checks, in one snapshot, that the committed state is whole batches:
/// the target's rows and quarantined events are exactly those the ledger
/// records. Returns the number of objects in the ledger (0 before the
/// loader created its tables).
async fn assert_whole_batches(c: &Client) -> i64 {
    let exists: bool = c
        .query_one(
            &format!(
                "SELECT to_regclass('{TABLE}') IS NOT NULL \
                 AND to_regclass('{LEDGER}') IS NOT NULL \
                 AND to_regclass('{QUARANTINE}') IS NOT NULL"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    if !exists {
        return 0;
    }
    let r = c
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {LEDGER}), \
                 (SELECT coalesce(sum(\"rows\"), 0)::bigint FROM {LEDGER}), \
                 (SELECT count(*) FROM {TABLE}), \
                 (SELECT coalesce(sum(rejected), 0)::bigint FROM {LEDGER}), \
                 (SELECT count(*) FROM {QUARANTINE} \
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

// ---------------------------------------------------------------------------
// Running the loader
// ---------------------------------------------------------------------------

/// `cwl-copy load` into `schema` on `target`, with the summary at
/// `<out>.json` and stderr in `<out>.log`.
fn load_cmd(
    target: &str,
    schema: &str,
    extra: &[&str],
    inputs: &[&Path],
    out: &Path,
) -> tokio::process::Command {
    let mut cmd = bin();
    cmd.args(["load", "--columns", spec(), "--target", target, "--schema"])
        .arg(schema)
        .args(["--create-table", "--threads", "2", "--summary-json"])
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

// ---------------------------------------------------------------------------
// 1. SIGKILL at random points
// ---------------------------------------------------------------------------

/// Kills `cwl-copy load` with SIGKILL 20 times at seeded random points
/// (some right after spawn), checking after each kill that only whole
/// batches were committed, then runs it to completion: every row exactly
/// once, every object in the ledger once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_doubles_nothing() {
    let (c, schema) = support::pg_schema("fault-kill").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let files = write_objects(&input, 0x5EED_0001, 0, 48);
    let expected = convert(&[&input], &root.join("expected"));
    load_reference(&c, REF, &expected).await;
    let batch = ["--batch-objects", "3"];

    // How long an uninterrupted load takes, into tables of its own.
    let started = Instant::now();
    let measure: Vec<&str> = [
        "--table",
        "measured",
        "--ledger-table",
        "measured_ledger",
        "--quarantine-table",
        "measured_quarantine",
    ]
    .into_iter()
    .chain(batch)
    .collect();
    let out = root.join("measure");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &measure, &[&input], &out),
        &out,
    )
    .await;
    let full = started.elapsed();
    assert_eq!(run.n("objects_loaded"), files.len() as u64);
    assert_eq!(fingerprint(&c, "measured").await, fingerprint(&c, REF).await);
    println!("uninterrupted load: {full:?}, {} batches", run.n("batches"));

    // Kill points spread over [0, full/2] (every fifth at 0): each run
    // resumes where the last one was killed, so the kills land in every
    // phase (start-up, DDL, ledger lookup, COPY, commit) and across the
    // corpus. Once little is left, a run may finish before its kill point:
    // it must then have completed normally, and the kills go on hitting
    // start-up and the ledger lookup.
    let span = u64::try_from(full.as_micros() / 2).unwrap().max(1);
    let mut rng = Rng::new(0xDEAD_BEEF);
    let mut killed = 0;
    for i in 0..20 {
        let delay = if i % 5 == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.below(span))
        };
        let out = root.join(format!("kill-{i:02}"));
        let mut child =
            load_cmd(&url, &schema, &batch, &[&input], &out).spawn().unwrap();
        tokio::time::sleep(delay).await;
        // SIGKILL; a child that already exited is reaped by `finish`.
        let _ = child.start_kill();
        let run = finish(child, &out).await;
        let objects = assert_whole_batches(&c).await;
        let how = if run.signal.is_some() {
            assert_eq!(run.signal, Some(9), "{}", run.stderr);
            killed += 1;
            "killed"
        } else {
            assert_completed(&run);
            "finished"
        };
        println!("run {i:2}: {how} after {delay:?}; {objects} objects in the ledger");
    }
    assert!(killed >= 4, "the runs killed at 0 ms were killed");

    let out = root.join("final");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &batch, &[&input], &out),
        &out,
    )
    .await;
    assert_eq!(
        run.n("objects_skipped_already_loaded") + run.n("objects_loaded"),
        files.len() as u64,
        "{}",
        run.summary
    );
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;
    let r = fingerprint(&c, REF).await;
    assert_eq!(r.rows, r.distinct_ids, "the corpus has no duplicate events");
}

// ---------------------------------------------------------------------------
// 2. PostgreSQL restart mid-load
// ---------------------------------------------------------------------------

/// A PostgreSQL cluster of this test's own, so that restarting it does not
/// break the other tests running in parallel against the shared server.
/// Uses the binaries `./test.sh` found (`CWL_TEST_PG_BIN`), run as
/// `CWL_TEST_PG_RUNAS` if set. Stopped and removed on drop.
struct Server {
    root: PathBuf,
    port: u16,
}

impl Server {
    fn command(&self, program: &str) -> std::process::Command {
        let exe = format!("{}/{program}", support::env("CWL_TEST_PG_BIN"));
        let runas = std::env::var("CWL_TEST_PG_RUNAS").unwrap_or_default();
        let mut cmd = if runas.is_empty() {
            std::process::Command::new(exe)
        } else {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", &runas, "--", &exe]);
            c
        };
        cmd.current_dir(&self.root);
        cmd
    }

    fn start() -> Server {
        let root = tempdir();
        let runas = std::env::var("CWL_TEST_PG_RUNAS").unwrap_or_default();
        if !runas.is_empty() {
            let mut chown = std::process::Command::new("chown");
            chown.arg("-R").arg(format!("{runas}:")).arg(&root);
            crate::support::run_ok(chown);
        }
        let mut server = Server { root, port: 0 };
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(server.root.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"]);
        crate::support::run_ok(initdb);
        // A free port, as test.sh picks them; another process may take it
        // between the probe and the start, hence the attempts.
        for attempt in 1..=3 {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            server.port = probe.local_addr().unwrap().port();
            drop(probe);
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
                 -c full_page_writes=off",
                server.port,
                server.root.display()
            );
            let mut start = server.pg_ctl();
            start
                .arg("-l")
                .arg(server.root.join("log"))
                .args(["-t", "60", "-o", &opts, "start"]);
            let out = start.output().unwrap();
            if out.status.success() {
                return server;
            }
            println!(
                "private postgres did not start (attempt {attempt}):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!(
            "private postgres did not start:\n{}",
            std::fs::read_to_string(server.root.join("log"))
                .unwrap_or_default()
        );
    }

    fn pg_ctl(&self) -> std::process::Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(self.root.join("data")).arg("-w");
        cmd
    }

    /// `pg_ctl restart -m <mode>`.
    fn restart(&self, mode: &str) {
        let mut cmd = self.pg_ctl();
        // `-l` again: without it the new postmaster writes to pg_ctl's
        // stdout and stderr, and `output()` never sees them close.
        cmd.arg("-l").arg(self.root.join("log"));
        cmd.args(["-t", "60", "-m", mode, "restart"]);
        crate::support::run_ok(cmd);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn connect(&self, search_path: &str) -> Client {
        let (client, conn) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{search_path}\"; \
                 SET search_path TO \"{search_path}\""
            ))
            .await
            .unwrap();
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "immediate", "stop"]);
        if cmd.output().is_ok_and(|o| o.status.success()) {
            // The data directory is tens of MB: don't leave it in /tmp.
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// Holds an uncommitted ledger row for `key` on a connection of its own,
/// so the loader's claim of the batch holding `key` waits on it.
async fn block_key(server: &Server, schema: &str, key: &str) -> Client {
    let c = server.connect(schema).await;
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(
        &format!(
            "INSERT INTO {LEDGER} (target, key, size, content_hash, events, \
             \"rows\", filtered, rejected, batch_id) \
             VALUES ($2, $1, 0, 'blocker', 0, 0, 0, 0, 'blocker')"
        ),
        &[&key, &format!("{schema}.{TABLE}")],
    )
    .await
    .unwrap();
    c
}

/// Starts a load of `inputs` that will block on `blocked` (a key after
/// the first few batches), waits until at least `committed` objects are in
/// the ledger and the loader waits on the lock, restarts the server with
/// `mode`, and returns the completed run.
async fn load_across_restart(
    server: &Server,
    schema: &str,
    inputs: &[&Path],
    blocked: &Path,
    committed: i64,
    mode: &str,
    out: &Path,
) -> Run {
    let admin = server.connect(schema).await;
    let blocker = block_key(server, schema, &key(blocked)).await;
    let url = server.url();
    let mut child =
        load_cmd(&url, schema, &["--batch-objects", "2"], inputs, out)
            .env("PGPORT", server.port.to_string())
            .spawn()
            .unwrap();
    // Poll until the state is reached, the loader exits, or the deadline.
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "load exited ({status}) before the restart:\n{}",
                std::fs::read_to_string(out.with_extension("log"))
                    .unwrap_or_default()
            );
        }
        let r = admin
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {LEDGER}), \
                     (SELECT count(*) FROM pg_stat_activity \
                      WHERE wait_event_type = 'Lock' \
                      AND datname = current_database())"
                ),
                &[],
            )
            .await
            .unwrap();
        let (objects, waiting): (i64, i64) = (r.get(0), r.get(1));
        if objects >= committed && waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {committed} objects committed and the \
             loader blocked ({objects} committed, {waiting} waiting)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart(mode);
    drop((admin, blocker));
    finish(child, out).await
}

/// Restarts the server twice while `cwl-copy load` runs (`-m fast`, then
/// `-m immediate` in a second run over more objects), each time with a
/// batch in flight: the loader retries, completes, and nothing is lost or
/// doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_load_is_retried() {
    let server = Server::start();
    let schema = support::unique("fault-restart").replace('-', "_");
    let c = server.connect(&schema).await;
    let root = tempdir();
    let a = root.join("a");
    let b = root.join("b");
    let files_a = write_objects(&a, 0x5EED_0002, 0, 30);
    let files_b = write_objects(&b, 0x5EED_0003, 30, 20);

    // The loader's tables, made by the loader itself from no input, so the
    // test can hold a ledger row before the load starts.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = root.join("setup");
    let run = run_to_completion(
        &mut load_cmd(&server.url(), &schema, &[], &[&empty], &out),
        &out,
    )
    .await;
    assert_eq!(run.n("objects_seen"), 0);

    // Batches of 2 in key order: 4 batches commit, the 5th waits on the
    // blocker's row for obj-009 until the restart kills both.
    let out = root.join("fast");
    let run = load_across_restart(
        &server,
        &schema,
        &[&a],
        &files_a[9],
        8,
        "fast",
        &out,
    )
    .await;
    assert_completed(&run);
    println!("restart -m fast: {}", run.summary);
    assert!(run.n("retries") >= 1, "{}", run.summary);
    assert_eq!(run.n("objects_loaded"), files_a.len() as u64);

    let c = {
        drop(c);
        server.connect(&schema).await
    };
    let expected_a = convert(&[&a], &root.join("expected-a"));
    load_reference(&c, REF, &expected_a).await;
    assert_end_state(&c, REF, &files_a, expected_a.rejected, 0).await;

    // Again over a and b: a is skipped before reading, b loads across a
    // crash-like restart.
    let out = root.join("immediate");
    let run = load_across_restart(
        &server,
        &schema,
        &[&a, &b],
        &files_b[7],
        files_a.len() as i64 + 6,
        "immediate",
        &out,
    )
    .await;
    assert_completed(&run);
    println!("restart -m immediate: {}", run.summary);
    assert!(run.n("retries") >= 1, "{}", run.summary);
    assert_eq!(run.n("objects_skipped_already_loaded"), files_a.len() as u64);
    assert_eq!(run.n("objects_loaded"), files_b.len() as u64);

    let c = server.connect(&schema).await;
    let expected = convert(&[&a, &b], &root.join("expected-ab"));
    load_reference(&c, "fault_ref_ab", &expected).await;
    let all: Vec<PathBuf> = files_a.iter().chain(&files_b).cloned().collect();
    assert_end_state(&c, "fault_ref_ab", &all, expected.rejected, 0).await;
    let blockers: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM {LEDGER} WHERE batch_id = 'blocker'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(blockers, 0, "the blockers' rows died with their sessions");
}

// ---------------------------------------------------------------------------
// 3. Redelivery
// ---------------------------------------------------------------------------

/// The same objects twice in one run (the directory twice, some files
/// again by name), the same run again, then a run with new objects: each
/// object loads once and the summaries say why the others were skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_objects_load_once() {
    let (c, schema) = support::pg_schema("fault-redeliver").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let mut files = write_objects(&input, 0x5EED_0004, 0, 24);
    let expected = convert(&[&input], &root.join("expected"));
    load_reference(&c, REF, &expected).await;
    let n = files.len() as u64;
    let inputs: Vec<&Path> =
        vec![&input, &input, &files[0], &files[1], &files[0]];
    let batch = ["--batch-objects", "3"];

    let out = root.join("first");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &batch, &inputs, &out),
        &out,
    )
    .await;
    let counts = |r: &Run| {
        [
            "objects_seen",
            "objects_skipped_already_loaded",
            "objects_loaded",
            "objects_skipped_duplicate",
        ]
        .map(|f| r.n(f))
    };
    assert_eq!(counts(&run), [2 * n + 3, 0, n, n + 3], "{}", run.summary);
    assert_eq!(run.n("rows") as i64, expected.rows);
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;

    // The same delivery again: everything is in the ledger.
    let out = root.join("again");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &batch, &inputs, &out),
        &out,
    )
    .await;
    assert_eq!(counts(&run), [2 * n + 3, 2 * n + 3, 0, 0], "{}", run.summary);
    assert_eq!((run.n("rows"), run.n("batches")), (0, 0), "{}", run.summary);
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;

    // New objects arrive next to the loaded ones.
    files.extend(write_objects(&input, 0x5EED_0005, 24, 6));
    let expected = convert(&[&input], &root.join("expected-more"));
    load_reference(&c, "fault_ref_more", &expected).await;
    let out = root.join("more");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &batch, &[&input], &out),
        &out,
    )
    .await;
    assert_eq!(counts(&run), [n + 6, n, 6, 0], "{}", run.summary);
    assert_end_state(&c, "fault_ref_more", &files, expected.rejected, 0).await;
}

// ---------------------------------------------------------------------------
// 4. Event-level dedup
// ---------------------------------------------------------------------------

/// Objects that repeat other objects' events under other names (in the
/// same batch, and batches apart): without `--dedup-events` both copies
/// load; with it each event id loads once and `duplicate_events` counts
/// the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_events_across_objects() {
    let (c, plain) = support::pg_schema("fault-dedup-plain").await;
    let dedup = support::fresh_schema(&c, "fault-dedup").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let mut files = write_objects(&input, 0x5EED_0006, 0, 24);
    // Sorted, obj-003-copy.gz comes just before obj-003.gz (same batch);
    // again-010.gz comes first, ten batches before obj-010.gz; the
    // subdirectory comes last.
    std::fs::create_dir_all(input.join("redelivered")).unwrap();
    for (from, to) in [
        ("obj-003.gz", "obj-003-copy.gz"),
        ("obj-010.gz", "again-010.gz"),
        ("obj-020.gz", "redelivered/obj-020.gz"),
    ] {
        redeliver(&input.join(from), &input.join(to));
        files.push(input.join(to));
    }
    let expected = convert(&[&input], &root.join("expected"));
    load_reference(&c, REF, &expected).await;
    let reference = fingerprint(&c, REF).await;
    let dups = reference.rows - reference.distinct_ids;
    assert!(dups > 0, "the copies repeat events: {reference:?}");
    let batch = ["--batch-objects", "3"];

    // Without --dedup-events: every copy loads.
    let out = root.join("plain");
    let run = run_to_completion(
        &mut load_cmd(&url, &plain, &batch, &[&input], &out),
        &out,
    )
    .await;
    assert_eq!(run.n("duplicate_events"), 0);
    assert_eq!(run.n("rows") as i64, expected.rows);
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;

    // With it: each event id once.
    let out = root.join("dedup");
    let mut cmd = load_cmd(&url, &dedup, &batch, &[&input], &out);
    cmd.arg("--dedup-events");
    let run = run_to_completion(&mut cmd, &out).await;
    println!("dedup: {}", run.summary);
    assert_eq!(run.n("duplicate_events") as i64, dups, "{}", run.summary);
    assert_eq!(run.n("rows") as i64, reference.distinct_ids);
    assert_eq!(run.n("objects_loaded"), files.len() as u64);
    let d = support::pg_client().await;
    d.batch_execute(&format!("SET search_path TO \"{dedup}\"")).await.unwrap();
    let distinct = format!(
        "(SELECT DISTINCT ON (event_id) * FROM \"{plain}\".{REF} \
         ORDER BY event_id)"
    );
    let got = fingerprint(&d, TABLE).await;
    assert_eq!(got.rows, got.distinct_ids, "an event id twice: {got:?}");
    // Copies are byte-identical, so whichever copy won, the rows match.
    assert_end_state(&d, &distinct, &files, expected.rejected, dups).await;
}

// ---------------------------------------------------------------------------
// 5. Concurrent loaders
// ---------------------------------------------------------------------------

/// Three `cwl-copy load` processes started together on the same objects
/// (two in the same order, one in reverse), racing on the DDL as well as
/// on the ledger: together they load each object exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_loaders_load_each_object_once() {
    let (c, schema) = support::pg_schema("fault-concurrent").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let files = write_objects(&input, 0x5EED_0007, 0, 48);
    let expected = convert(&[&input], &root.join("expected"));
    load_reference(&c, REF, &expected).await;
    let batch = ["--batch-objects", "3"];
    let reversed: Vec<&Path> =
        files.iter().rev().map(PathBuf::as_path).collect();

    let outs: Vec<PathBuf> =
        (0..3).map(|i| root.join(format!("loader-{i}"))).collect();
    let children = vec![
        load_cmd(&url, &schema, &batch, &[&input], &outs[0]).spawn().unwrap(),
        load_cmd(&url, &schema, &batch, &[&input], &outs[1]).spawn().unwrap(),
        load_cmd(&url, &schema, &batch, &reversed, &outs[2]).spawn().unwrap(),
    ];
    let mut runs = Vec::new();
    for (child, out) in children.into_iter().zip(&outs) {
        let run = finish(child, out).await;
        assert_completed(&run);
        println!("loader: {}", run.summary);
        runs.push(run);
    }
    let n = files.len() as u64;
    let total = |f: &str| runs.iter().map(|r| r.n(f)).sum::<u64>();
    for r in &runs {
        assert_eq!(
            r.n("objects_skipped_already_loaded")
                + r.n("objects_loaded")
                + r.n("objects_skipped_duplicate"),
            n,
            "{}",
            r.summary
        );
    }
    assert_eq!(total("objects_loaded"), n, "each object loaded by one loader");
    assert_eq!(total("rows") as i64, expected.rows);
    assert_eq!(total("rejected") as i64, expected.rejected);
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;
}

// ---------------------------------------------------------------------------
// The ledger's identity of an object (issue #9)
// ---------------------------------------------------------------------------

/// Loading the same folder into a second table loads it there too: the
/// ledger answers "is this object in *this* table?" (it once said "10
/// already loaded" and left the second table empty, with exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_table_gets_every_object() {
    let (c, schema) = support::pg_schema("ledger-two-tables").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let files = write_objects(&input, 0x5EED_0009, 0, 16);
    let expected = convert(&[&input], &root.join("expected"));

    let out = root.join("first");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &[], &[&input], &out),
        &out,
    )
    .await;
    assert_eq!(run.n("objects_loaded"), files.len() as u64);
    for table in ["second", "third"] {
        let out = root.join(table);
        let run = run_to_completion(
            &mut load_cmd(&url, &schema, &["--table", table], &[&input], &out),
            &out,
        )
        .await;
        assert_eq!(
            (run.n("objects_loaded"), run.n("objects_skipped_already_loaded")),
            (files.len() as u64, 0),
            "{}",
            run.summary
        );
        assert_eq!(run.n("rows") as i64, expected.rows);
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, expected.rows, "rows in {table}");
        assert!(
            run.stderr
                .contains(&format!("rows into {schema}.{table} (created)")),
            "{}",
            run.stderr
        );
    }
    // Each table has its own ledger rows, under its canonical name.
    let targets: Vec<(String, i64)> = c
        .query(
            &format!(
                "SELECT target, count(*) FROM {LEDGER} GROUP BY target \
                 ORDER BY target"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let n = files.len() as i64;
    assert_eq!(
        targets,
        [
            (format!("{schema}.{TABLE}"), n),
            (format!("{schema}.second"), n),
            (format!("{schema}.third"), n),
        ]
    );
}

/// The same folder loaded by its absolute path, then as `./in` from its
/// parent, then with a byte-for-byte copy of one object elsewhere, loads
/// each object once (the ledger keyed objects by the path as typed, and
/// the rows went from 49 to 147).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_files_by_another_path_or_copied_load_once() {
    let (c, schema) = support::pg_schema("ledger-paths").await;
    let url = support::pg_url();
    let root = tempdir();
    let input = root.join("in");
    let files = write_objects(&input, 0x5EED_000A, 0, 16);
    let expected = convert(&[&input], &root.join("expected"));
    load_reference(&c, REF, &expected).await;

    let absolute = std::fs::canonicalize(&input).unwrap();
    let out = root.join("absolute");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &[], &[&absolute], &out),
        &out,
    )
    .await;
    assert_eq!(run.n("objects_loaded"), files.len() as u64);

    // `./in` from the parent, and `in/../in/.` on top.
    let out = root.join("relative");
    let mut cmd = load_cmd(
        &url,
        &schema,
        &[],
        &[Path::new("./in"), Path::new("in/../in/.")],
        &out,
    );
    cmd.current_dir(&root);
    let run = run_to_completion(&mut cmd, &out).await;
    assert_eq!(
        (run.n("objects_loaded"), run.n("objects_skipped_already_loaded")),
        (0, 2 * files.len() as u64),
        "{}",
        run.summary
    );

    // A copy under another name in another folder: recognised by its
    // content hash, skipped as a duplicate, nothing loaded.
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(&files[3], elsewhere.join("renamed.gz")).unwrap();
    let out = root.join("copied");
    let run = run_to_completion(
        &mut load_cmd(&url, &schema, &[], &[&elsewhere], &out),
        &out,
    )
    .await;
    assert_eq!(
        (run.n("objects_loaded"), run.n("objects_skipped_duplicate")),
        (0, 1),
        "{}",
        run.summary
    );
    assert_eq!(run.n("rows"), 0);
    assert_end_state(&c, REF, &files, expected.rejected, 0).await;
    // The ledger records the canonical path and the hash.
    let r = c
        .query_one(
            &format!("SELECT content_hash FROM {LEDGER} WHERE key = $1"),
            &[&key(&files[0])],
        )
        .await
        .unwrap();
    let hash: String = r.get(0);
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
}
