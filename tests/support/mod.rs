//! Shared helpers for the integration tests: the services `./test.sh`
//! provisions (PostgreSQL 15, moto for S3/SQS), reached through the
//! environment variables it exports.
//!
//! Nothing here skips a test: a missing variable panics and says how to run
//! the suite. Every test gets its own schema, bucket and queue, so tests run
//! in parallel against the same servers.

// Each test module uses a different subset of these helpers, and a helper
// fails the test calling it by panicking with a message saying why.
#![allow(dead_code, clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub mod cli;
pub mod corpus_s3;
pub mod redshift;
pub mod s3proxy;
pub mod sqs;

const HOW: &str = "run ./test.sh, which provisions PostgreSQL/moto and \
                   exports the CWL_TEST_* variables";

/// An environment variable `./test.sh` exports; panics if it is missing.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("\n\n*** {name} is not set: {HOW} ***\n\n"),
    }
}

/// `postgres://` URL of the test server (`CWL_TEST_PG_URL`).
pub fn pg_url() -> String {
    env("CWL_TEST_PG_URL")
}

/// `http://host:port` of the moto server (`CWL_TEST_AWS_ENDPOINT`).
pub fn aws_endpoint() -> String {
    env("CWL_TEST_AWS_ENDPOINT")
}

/// A name unique across tests and test processes: lowercase letters,
/// digits and `-`, at most 63 bytes, so valid as an S3 bucket, an SQS
/// queue and (with `-` → `_`) a PostgreSQL identifier.
pub fn unique(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut base: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect();
    base.truncate(base.trim_end_matches('-').len());
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert(0, 't');
    }
    format!("{base}-{}-{n}-{nanos:x}", std::process::id())
}

/// A new connection to the test server; the connection task runs on the
/// current tokio runtime.
pub async fn pg_client() -> tokio_postgres::Client {
    let url = pg_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e} ({HOW})"));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("postgres connection closed: {e}");
        }
    });
    client
}

/// Creates a fresh schema named after `name` and returns its name
/// (unquoted; it only contains `[a-z0-9_]`).
pub async fn fresh_schema(
    client: &tokio_postgres::Client,
    name: &str,
) -> String {
    let schema = unique(name).replace('-', "_");
    client
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
    schema
}

/// A connection whose `search_path` is a fresh schema of its own, and that
/// schema's name. Unqualified table names then never collide between tests.
pub async fn pg_schema(name: &str) -> (tokio_postgres::Client, String) {
    let client = pg_client().await;
    let schema = fresh_schema(&client, name).await;
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .unwrap_or_else(|e| panic!("set search_path {schema}: {e}"));
    (client, schema)
}

/// Serializes tests that stop or restart the shared PostgreSQL server
/// (hold `.write().await`) against the tests that use it (hold
/// `.read().await` for as long as they need their connections).
pub static SERVER_LOCK: tokio::sync::RwLock<()> =
    tokio::sync::RwLock::const_new(());

/// Runs `pg_ctl <args>` against the test cluster, as the user that owns it
/// (`runuser -u postgres` when the suite runs as root), e.g.
/// `pg_ctl(&["restart", "-m", "immediate"])` for a fault test. Panics if
/// it fails.
///
/// The server is shared by every test in the binary: a test that stops or
/// restarts it breaks the connections of tests running alongside. Run such
/// tests one at a time (e.g. hold [`SERVER_LOCK`] for writing, and have
/// the other PostgreSQL tests hold it for reading).
pub fn pg_ctl(args: &[&str]) {
    let pg_ctl = format!("{}/pg_ctl", env("CWL_TEST_PG_BIN"));
    let data = env("CWL_TEST_PG_DATA");
    let runas = std::env::var("CWL_TEST_PG_RUNAS").unwrap_or_default();
    let mut cmd = if runas.is_empty() {
        Command::new(&pg_ctl)
    } else {
        let mut c = Command::new("runuser");
        c.args(["-u", &runas, "--", &pg_ctl]);
        c
    };
    // The data dir's parent is the socket dir and readable by its owner;
    // the caller's working directory may not be.
    if let Some(dir) = std::path::Path::new(&data).parent() {
        cmd.current_dir(dir);
    }
    // `-l`: a (re)started server must not inherit our stdout/stderr pipes,
    // or `output()` waits for it to exit.
    let log = env("CWL_TEST_PG_LOG");
    cmd.args(["-D", &data, "-l", &log, "-w"]).args(args);
    cmd.stdin(Stdio::null());
    run_ok(cmd);
}

/// Runs `cmd` to completion and panics, with its output, unless it
/// succeeds.
pub fn run_ok(mut cmd: Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// AWS config for moto: the endpoint from `CWL_TEST_AWS_ENDPOINT`, region
/// us-east-1, and credentials from the default chain (`./test.sh` exports
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(Region::new("us-east-1"))
        .load()
        .await
}

/// An S3 client for moto, with path-style addressing.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&aws_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// An SQS client for moto.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws_config().await)
}

/// Creates a fresh bucket named after `name` and returns its name.
pub async fn fresh_bucket(s3: &aws_sdk_s3::Client, name: &str) -> String {
    let bucket = unique(name);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
    bucket
}

/// Creates a fresh queue named after `name` and returns its URL.
pub async fn fresh_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let queue = unique(name);
    let out = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue {queue}: {e:?}"));
    out.queue_url().unwrap_or_else(|| panic!("no URL for {queue}")).to_owned()
}

/// A table's rows, order-independently: count, distinct event ids, and an
/// md5 of every row's text in sorted order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: i64,
    pub distinct_ids: i64,
    pub md5: String,
}

/// The fingerprint of `from` (a table name or a parenthesized query).
pub async fn fingerprint(
    c: &tokio_postgres::Client,
    from: &str,
) -> Fingerprint {
    let r = c
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT t.event_id), \
                 md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) \
                 FROM {from} t"
            ),
            &[],
        )
        .await
        .unwrap();
    Fingerprint { rows: r.get(0), distinct_ids: r.get(1), md5: r.get(2) }
}
