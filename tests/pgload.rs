//! The PostgreSQL loader against a real server (`CWL_TEST_PG_URL`).
//!
//! Each test works in a schema of its own, so tests run in parallel and
//! leave nothing shared behind.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cwl_copy::load::{
    BatchOutcome, CopyTarget, LedgerTables, LoadSummary, LoaderOptions,
    ObjectError, ObjectRows, PgLoadError, PgLoader, PgSettings, RejectRecord,
    RetryPolicy, TableName,
};
use tokio_postgres::Client;

/// The server to test against; there is no skipping without one.
fn pg_url() -> String {
    match std::env::var("CWL_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "CWL_TEST_PG_URL is not set: run ./test.sh, which provisions \
             PostgreSQL (the PostgreSQL loader tests never skip)"
        ),
    }
}

fn settings(app: &str) -> PgSettings {
    let mut s = PgSettings::resolve(&pg_url()).expect("CWL_TEST_PG_URL");
    s.set_application_name(app);
    s
}

fn unique(name: &str) -> String {
    let nanos =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("pgl_{name}_{}_{nanos:x}", std::process::id())
}

async fn admin() -> Client {
    settings("cwl-copy-test-admin").connect().await.expect("connect")
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0)
}

const TARGET_DDL: &str = "CREATE TABLE IF NOT EXISTS {t} (
    object text NOT NULL,
    seq integer NOT NULL,
    event_id text,
    message text,
    loaded_at timestamptz NOT NULL DEFAULT now()
)";

const COLUMNS: [&str; 4] = ["object", "seq", "event_id", "message"];

/// A schema with the ledger, the quarantine and a target table.
struct Fixture {
    schema: String,
    admin: Client,
    target: CopyTarget,
    options: LoaderOptions,
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        Fixture::in_schema(&unique(name)).await
    }

    async fn in_schema(schema: &str) -> Fixture {
        let admin = admin().await;
        let options = LoaderOptions {
            tables: LedgerTables::new(Some(schema), None, None).unwrap(),
            retry: RetryPolicy {
                max_attempts: 8,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(500),
                max_elapsed: Duration::from_secs(60),
            },
        };
        let table = TableName::new(Some(schema), "events").unwrap();
        let columns: Vec<String> =
            COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        let target = CopyTarget::new(table, &columns).unwrap();
        let f = Fixture { schema: schema.to_owned(), admin, target, options };
        let mut l = f.loader("cwl-copy-test-setup").await;
        l.ensure_ledger().await.unwrap();
        l.create_table(&TARGET_DDL.replace("{t}", &f.target.table().quoted()))
            .await
            .unwrap();
        f
    }

    async fn loader(&self, app: &str) -> PgLoader {
        PgLoader::connect(settings(app), self.options.clone()).await.unwrap()
    }

    fn t(&self, table: &str) -> String {
        format!("\"{}\".\"{table}\"", self.schema)
    }

    /// Rows per object in the target table.
    async fn rows_by_object(&self) -> HashMap<String, i64> {
        let sql = format!(
            "SELECT object, count(*) FROM {} GROUP BY object",
            self.t("events")
        );
        self.admin
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    async fn count(&self, table: &str) -> i64 {
        count(&self.admin, &format!("SELECT count(*) FROM {}", self.t(table)))
            .await
    }
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// An object whose CSV has `rows` rows with event ids `first_id..`, plus
/// `filtered` filtered and `rejects` rejected events.
fn object(key: &str, rows: u64, first_id: u64) -> ObjectRows {
    let mut csv = String::new();
    for i in 0..rows {
        let id = first_id + i;
        csv.push_str(&format!(
            "{},{i},{},{}\n",
            csv_field(key),
            csv_field(&format!("ev{id}")),
            csv_field(&format!("message \"{id}\", with comma\nand newline"))
        ));
    }
    ObjectRows {
        key: key.to_owned(),
        size: 1000 + rows,
        etag: Some(format!("\"etag-{key}\"")),
        content_hash: format!("hash-{key}"),
        csv: Bytes::from(csv).into(),
        events: rows,
        rows,
        ..ObjectRows::default()
    }
}

/// Keys with spaces and characters that need care in SQL and CSV.
fn objects(n: u64) -> Vec<ObjectRows> {
    (0..n)
        .map(|i| {
            object(
                &format!("logs/2024/01/01/it's a \"key\", #{i:03}.gz"),
                1 + i % 4,
                i * 10,
            )
        })
        .collect()
}

fn summary_of(seen: usize, outcomes: &[&BatchOutcome]) -> LoadSummary {
    let mut s =
        LoadSummary { objects_seen: seen as u64, ..LoadSummary::default() };
    for o in outcomes {
        s.add_batch(o);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_loads_with_ledger() {
    let f = Fixture::new("batch").await;
    let mut loader = f.loader("cwl-copy-test-batch").await;

    let mut objs = objects(3);
    // An object with filtered and rejected events and an undecodable
    // range, and an object with no rows at all.
    objs[1].events += 3;
    objs[1].filtered = 1;
    objs[1].rejected = 2;
    objs[1].rejects = vec![
        RejectRecord {
            member: Some(0),
            event_id: Some("ev-bad-1".into()),
            reason: "type".into(),
            message: "seq: not an integer".into(),
            code: "type_mismatch".into(),
        },
        RejectRecord {
            member: None,
            event_id: None,
            reason: "too_long".into(),
            message: "message: 70000 bytes".into(),
            code: "too_long".into(),
        },
    ];
    objs[1].errors = vec![ObjectError {
        member: Some(2),
        offset: 4096,
        kind: "deflate".into(),
        message: "corrupt deflate data".into(),
        reason: None,
    }];
    let mut empty = object("empty.gz", 0, 0);
    empty.events = 5;
    empty.filtered = 5;
    objs.push(empty);

    let out = loader.load_batch(&objs, &f.target).await.unwrap();
    assert_eq!(out.loaded.len(), 4);
    assert!(out.skipped_duplicate.is_empty());
    assert_eq!(out.rows_copied, 1 + 2 + 3);
    assert_eq!(out.rows_inserted, 6);
    assert_eq!(out.duplicate_events, 0);
    assert_eq!((out.filtered, out.rejected, out.errors), (6, 2, 1));
    assert_eq!(out.quarantined, 3);
    assert_eq!(out.attempts, 1);

    let by_object = f.rows_by_object().await;
    for o in &objs {
        assert_eq!(
            by_object.get(&o.key).copied().unwrap_or(0),
            o.rows as i64,
            "{}",
            o.key
        );
    }
    // Embedded quotes, commas and newlines survived.
    let msg: String = f
        .admin
        .query_one(
            &format!(
                "SELECT message FROM {} WHERE event_id = 'ev0'",
                f.t("events")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(msg, "message \"0\", with comma\nand newline");

    // The ledger has every object with its counts and the batch id.
    assert_eq!(f.count("cwl_copy_ledger").await, 4);
    let row = f
        .admin
        .query_one(
            &format!(
                "SELECT size, etag, content_hash, events, rows, filtered, \
                 rejected, batch_id FROM {} WHERE key = $1",
                f.t("cwl_copy_ledger")
            ),
            &[&objs[1].key],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), objs[1].size as i64);
    assert_eq!(row.get::<_, Option<String>>(1), objs[1].etag);
    assert_eq!(row.get::<_, String>(2), objs[1].content_hash);
    assert_eq!(row.get::<_, i64>(3), 5);
    assert_eq!(row.get::<_, i64>(4), 2);
    assert_eq!(row.get::<_, i64>(5), 1);
    assert_eq!(row.get::<_, i64>(6), 2);
    assert_eq!(row.get::<_, String>(7), out.batch_id);

    // The quarantine has the two rejects and the undecodable range.
    let q = f
        .admin
        .query(
            &format!(
                "SELECT key, member, event_id, \"offset\", kind, reason, \
                 message, batch_id FROM {} ORDER BY kind, reason",
                f.t("cwl_copy_quarantine")
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(q.len(), 3);
    assert_eq!(q[0].get::<_, String>(4), "deflate");
    assert_eq!(q[0].get::<_, String>(5), "undecodable");
    assert_eq!(q[0].get::<_, Option<i64>>(3), Some(4096));
    assert_eq!(q[0].get::<_, Option<i64>>(1), Some(2));
    assert_eq!(q[1].get::<_, String>(4), "rejected_event");
    assert_eq!(q[1].get::<_, String>(5), "too_long");
    assert_eq!(q[2].get::<_, Option<String>>(2).as_deref(), Some("ev-bad-1"));
    assert!(q.iter().all(|r| r.get::<_, String>(0) == objs[1].key));
    assert!(q.iter().all(|r| r.get::<_, String>(7) == out.batch_id));

    // already_loaded sees them, and nothing else.
    let mut keys: Vec<String> = objs.iter().map(|o| o.key.clone()).collect();
    keys.push("not/loaded.gz".into());
    let done = loader.already_loaded(&f.target, &keys).await.unwrap();
    assert_eq!(done.len(), 4);
    assert!(!done.contains("not/loaded.gz"));

    let s = summary_of(objs.len(), &[&out]);
    s.reconcile().unwrap();
    assert_eq!((s.events, s.rows, s.errors, s.batches), (14, 6, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_loads_nothing_twice() {
    let f = Fixture::new("reload").await;
    let mut loader = f.loader("cwl-copy-test-reload").await;
    let objs = objects(5);
    let first = loader.load_batch(&objs, &f.target).await.unwrap();
    assert_eq!(first.loaded.len(), 5);

    // The same objects again, plus one new and one repeated in the batch.
    let mut again = objs.clone();
    again.push(object("new.gz", 2, 900));
    again.push(object("new.gz", 7, 950));
    let second = loader.load_batch(&again, &f.target).await.unwrap();
    assert_eq!(second.loaded, vec!["new.gz".to_owned()]);
    assert_eq!(second.skipped_duplicate.len(), 6);
    assert_eq!(second.rows_inserted, 2, "only new.gz's first copy");

    let by_object = f.rows_by_object().await;
    for o in &objs {
        assert_eq!(by_object[&o.key], o.rows as i64, "{}", o.key);
    }
    assert_eq!(by_object["new.gz"], 2);
    assert_eq!(f.count("cwl_copy_ledger").await, 6);

    // A batch of only loaded objects commits nothing new.
    let third = loader.load_batch(&objs, &f.target).await.unwrap();
    assert!(third.loaded.is_empty());
    assert_eq!(third.rows_copied, 0);
    assert_eq!(f.count("events").await, 11 + 2);

    let mut s = summary_of(5 + 7 + 5, &[&first, &second, &third]);
    s.reconcile().unwrap();
    assert_eq!(s.objects_loaded, 6);
    assert_eq!(s.objects_skipped_duplicate, 11);
    s.objects_seen += 1;
    assert!(s.reconcile().is_err());
}

/// Loads every object of `objs` in batches of `size`, in the given order.
async fn load_all(
    mut loader: PgLoader,
    target: CopyTarget,
    objs: Vec<ObjectRows>,
    size: usize,
) -> (u64, u64, u64) {
    let (mut loaded, mut skipped, mut rows) = (0, 0, 0);
    for batch in objs.chunks(size) {
        let out = loader.load_batch(batch, &target).await.unwrap();
        loaded += out.loaded.len() as u64;
        skipped += out.skipped_duplicate.len() as u64;
        rows += out.rows_inserted;
    }
    (loaded, skipped, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_never_both_commit_a_key() {
    let f = Fixture::new("race").await;
    let objs = objects(60);
    let total_rows: u64 = objs.iter().map(|o| o.rows).sum();
    for round in 0..3 {
        // Fresh keys each round, so the loaders race on every one.
        let objs: Vec<ObjectRows> = objs
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.key = format!("r{round}/{}", o.key);
                o.content_hash = format!("hash-{}", o.key);
                let csv = String::from_utf8(o.csv.to_vec().unwrap()).unwrap();
                o.csv = csv
                    .replace("\"logs/", &format!("\"r{round}/logs/"))
                    .into();
                o
            })
            .collect();
        let mut reversed = objs.clone();
        reversed.reverse();
        let a = tokio::spawn(load_all(
            f.loader("cwl-copy-test-race-a").await,
            f.target.clone(),
            objs.clone(),
            7,
        ));
        let b = tokio::spawn(load_all(
            f.loader("cwl-copy-test-race-b").await,
            f.target.clone(),
            reversed,
            5,
        ));
        let (la, sa, ra) = a.await.unwrap();
        let (lb, sb, rb) = b.await.unwrap();
        assert_eq!(la + lb, 60, "each key committed by exactly one loader");
        assert_eq!(sa + sb, 60, "and skipped by the other");
        assert_eq!(ra + rb, total_rows);
    }
    let by_object = f.rows_by_object().await;
    assert_eq!(by_object.len(), 180);
    for (key, n) in &by_object {
        let base = key.split_once('/').unwrap().1;
        let want = objs.iter().find(|o| o.key == base).unwrap().rows as i64;
        assert_eq!(*n, want, "{key}");
    }
    assert_eq!(f.count("cwl_copy_ledger").await, 180);
}

/// The child side of `concurrent_processes_never_both_commit_a_key`: with
/// `CWL_PGLOAD_CHILD_SCHEMA` set it loads into that schema and prints its
/// counts; run on its own it loads into a schema of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_loader() {
    let (f, child) = match std::env::var("CWL_PGLOAD_CHILD_SCHEMA") {
        Ok(schema) => (Fixture::in_schema(&schema).await, true),
        Err(_) => (Fixture::new("child").await, false),
    };
    let mut objs = objects(80);
    if std::env::var("CWL_PGLOAD_CHILD_REVERSE").is_ok() {
        objs.reverse();
    }
    let loader = f.loader("cwl-copy-test-child").await;
    let (loaded, skipped, rows) =
        load_all(loader, f.target.clone(), objs, 6).await;
    if child {
        println!("CHILD loaded={loaded} skipped={skipped} rows={rows}");
    } else {
        assert_eq!((loaded, skipped), (80, 0));
        assert_eq!(f.count("cwl_copy_ledger").await, 80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_never_both_commit_a_key() {
    let f = Fixture::new("procs").await;
    let exe = std::env::current_exe().unwrap();
    let spawn = |reverse: bool| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--exact", "pgload::child_loader", "--nocapture"])
            .env("CWL_PGLOAD_CHILD_SCHEMA", &f.schema)
            .stdout(std::process::Stdio::piped());
        if reverse {
            cmd.env("CWL_PGLOAD_CHILD_REVERSE", "1");
        }
        cmd.spawn().unwrap()
    };
    let children = [spawn(false), spawn(true)];
    let mut loaded = 0;
    let mut skipped = 0;
    for child in children {
        let out =
            tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed:\n{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("CHILD "))
            .unwrap_or_else(|| panic!("no CHILD line in:\n{stdout}"));
        let nums: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        println!("child: {line}");
        loaded += nums[0];
        skipped += nums[1];
    }
    assert_eq!(loaded, 80, "each key committed by exactly one process");
    assert_eq!(skipped, 80);
    assert_eq!(f.count("cwl_copy_ledger").await, 80);
    let by_object = f.rows_by_object().await;
    for o in objects(80) {
        assert_eq!(by_object[&o.key], o.rows as i64, "{}", o.key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_copy_rolls_back_the_claim() {
    let f = Fixture::new("badrow").await;
    let mut loader = f.loader("cwl-copy-test-badrow").await;
    let good = object("good.gz", 3, 0);
    let mut bad = object("bad.gz", 2, 100);
    bad.csv = (&b"bad.gz,0,x,ok\nbad.gz,NOT-A-NUMBER,y,no\n"[..]).into();
    bad.rejects.push(RejectRecord {
        reason: "type".into(),
        message: "would be quarantined".into(),
        ..RejectRecord::default()
    });

    let e = loader
        .load_batch(&[good.clone(), bad.clone()], &f.target)
        .await
        .unwrap_err();
    assert!(!e.is_transient());
    assert_eq!(e.sqlstate(), Some("22P02"), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("COPY") && msg.contains("bad.gz"), "{msg}");
    assert!(msg.contains("NOT-A-NUMBER"), "the server's detail: {msg}");
    assert!(matches!(e, PgLoadError::Sql { .. }), "fails fast: {e:?}");
    assert_eq!(f.count("cwl_copy_ledger").await, 0, "claim rolled back");
    assert_eq!(f.count("events").await, 0);
    assert_eq!(f.count("cwl_copy_quarantine").await, 0);

    // A row count that does not match rolls back too.
    let mut short = object("short.gz", 2, 200);
    short.rows = 3;
    let e = loader.load_batch(&[good.clone(), short], &f.target).await;
    assert!(
        matches!(e, Err(PgLoadError::RowCount { expected: 6, copied: 5, .. })),
        "{e:?}"
    );
    assert_eq!(f.count("cwl_copy_ledger").await, 0);
    assert_eq!(f.count("events").await, 0);

    // A missing table is not retried either.
    let missing = CopyTarget::new(
        TableName::new(Some(&f.schema), "nope").unwrap(),
        &["object".to_owned()],
    )
    .unwrap();
    let e = loader
        .load_batch(std::slice::from_ref(&good), &missing)
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("42P01"), "{e}");
    assert_eq!(loader.retries(), 0);

    // The keys are free: the fixed objects load.
    let fixed = object("bad.gz", 2, 100);
    let out = loader.load_batch(&[good, fixed], &f.target).await.unwrap();
    assert_eq!(out.loaded.len(), 2);
    assert_eq!(f.count("events").await, 5);
    assert_eq!(f.count("cwl_copy_ledger").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_events_skips_present_ids() {
    let f = Fixture::new("dedup").await;
    let target = f.target.clone().dedup_on("event_id").unwrap();
    let mut loader = f.loader("cwl-copy-test-dedup").await;
    loader.ensure_unique_index(&target).await.unwrap();
    loader.ensure_unique_index(&target).await.unwrap();

    let first =
        loader.load_batch(&[object("a.gz", 5, 1)], &target).await.unwrap();
    assert_eq!((first.rows_inserted, first.duplicate_events), (5, 0));

    // ev3..ev8 (ev3-ev5 present) and ev8..ev9 (ev8 twice in the batch).
    let mut c = object("c.gz", 2, 8);
    c.events += 1;
    c.rejected = 1;
    let batch = [object("b.gz", 6, 3), c];
    let second = loader.load_batch(&batch, &target).await.unwrap();
    assert_eq!(second.rows_copied, 8);
    assert_eq!(second.rows_inserted, 4, "ev6 ev7 ev8 ev9");
    assert_eq!(second.duplicate_events, 4, "ev3 ev4 ev5 and the second ev8");
    assert_eq!(second.loaded.len(), 2);

    assert_eq!(f.count("events").await, 9);
    let ids = count(
        &f.admin,
        &format!("SELECT count(DISTINCT event_id) FROM {}", f.t("events")),
    )
    .await;
    assert_eq!(ids, 9);
    // Defaults of columns the CSV leaves out still apply.
    let null_ts = count(
        &f.admin,
        &format!(
            "SELECT count(*) FROM {} WHERE loaded_at IS NULL",
            f.t("events")
        ),
    )
    .await;
    assert_eq!(null_ts, 0);

    let s = summary_of(3, &[&first, &second]);
    s.reconcile().unwrap();
    assert_eq!((s.events, s.rows, s.duplicate_events), (14, 9, 4));
}

/// Waits (polling, up to a deadline) for the backend of `app` to wait on
/// a lock, and returns its pid.
async fn backend_waiting_on_lock(admin: &Client, app: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
                 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            return r.get(0);
        }
        assert!(Instant::now() < deadline, "{app} never blocked on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_backend_is_terminated() {
    let f = Fixture::new("terminate").await;
    let app = unique("app");
    let mut loader = f.loader(&app).await;
    let objs = objects(10);

    // Hold a lock so the loader's COPY waits mid-batch (after its ledger
    // claim), then kill its backend and let go.
    let mut locker = admin().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        f.t("events")
    ))
    .await
    .unwrap();
    let target = f.target.clone();
    let batch = objs.clone();
    let task = tokio::spawn(async move {
        let out = loader.load_batch(&batch, &target).await;
        (loader, out)
    });
    let pid = backend_waiting_on_lock(&f.admin, &app).await;
    let killed: bool = f
        .admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    tx.rollback().await.unwrap();

    let (mut loader, out) = task.await.unwrap();
    let out = out.unwrap();
    assert!(out.attempts >= 2, "retried: {out:?}");
    assert!(loader.retries() >= 1);
    assert_eq!(out.loaded.len(), 10);
    let by_object = f.rows_by_object().await;
    for o in &objs {
        assert_eq!(by_object[&o.key], o.rows as i64, "{}", o.key);
    }
    assert_eq!(f.count("cwl_copy_ledger").await, 10);

    // An idle connection killed between batches is replaced too.
    let pid: i32 = f
        .admin
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    f.admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
    let more = [object("after-kill.gz", 3, 500)];
    let out = loader.load_batch(&more, &f.target).await.unwrap();
    assert_eq!(out.loaded.len(), 1);
    let rows: u64 = objs.iter().map(|o| o.rows).sum();
    assert_eq!(f.count("events").await, rows as i64 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_errors_and_debug() {
    let secret = "TopSecret-Pw-42";
    // Nothing listens on port 1: connection refused, a transient error
    // retried until the policy gives up.
    let s = PgSettings::resolve(&format!(
        "postgres://someone:{secret}@127.0.0.1:1/db?sslmode=disable"
    ))
    .unwrap();
    assert!(!format!("{s} {s:?}").contains(secret));
    let options = LoaderOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..LoaderOptions::default()
    };
    let e = PgLoader::connect(s, options.clone()).await.unwrap_err();
    assert!(matches!(e, PgLoadError::RetriesExhausted { attempts: 2, .. }));
    let shown = format!("{e} {e:?} {e:#?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("127.0.0.1"), "names the target: {shown}");

    // A live loader (trust authentication ignores the password).
    let mut url = pg_url();
    let at = url.find("://").unwrap() + 3;
    let userinfo_end = url[at..].find('@').map(|i| at + i);
    match userinfo_end {
        Some(end) if !url[at..end].contains(':') => {
            url.insert_str(end, &format!(":{secret}"))
        }
        None => url.insert_str(at, &format!("postgres:{secret}@")),
        Some(_) => {} // the URL has its own password
    }
    if url.contains(secret) {
        let loader = PgLoader::connect(
            PgSettings::resolve(&url).unwrap(),
            LoaderOptions::default(),
        )
        .await
        .unwrap();
        let shown = format!("{loader:?} {}", loader.settings());
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_batch_commits_nothing() {
    let f = Fixture::new("abandon").await;
    let app = unique("app");
    let mut loader = f.loader(&app).await;
    let objs = objects(4);

    let mut locker = admin().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        f.t("events")
    ))
    .await
    .unwrap();
    {
        // Drop the batch's future while its COPY waits (after the claim).
        let fut = loader.load_batch(&objs, &f.target);
        tokio::pin!(fut);
        tokio::select! {
            r = &mut fut => panic!("the COPY should wait: {r:?}"),
            _ = backend_waiting_on_lock(&f.admin, &app) => {}
        }
    }
    tx.rollback().await.unwrap();

    // Nothing of it committed: the same objects load in full, on a fresh
    // connection.
    let out = loader.load_batch(&objs, &f.target).await.unwrap();
    assert_eq!(out.loaded.len(), 4, "{out:?}");
    assert_eq!(out.attempts, 1);
    let by_object = f.rows_by_object().await;
    for o in &objs {
        assert_eq!(by_object[&o.key], o.rows as i64, "{}", o.key);
    }
    assert_eq!(f.count("cwl_copy_ledger").await, 4);
}
