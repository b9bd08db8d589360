//! A Redshift stand-in for the tests (issue 11): two small servers on
//! 127.0.0.1 that execute what they receive on the test PostgreSQL
//! (`CWL_TEST_PG_URL`) and read S3 from moto (`CWL_TEST_AWS_ENDPOINT`).
//!
//! - **The Data API** ([`RedshiftStandIn::data_api_endpoint`], for
//!   `AWS_ENDPOINT_URL_REDSHIFT_DATA`): AWS JSON 1.1 (`POST /`,
//!   `X-Amz-Target: RedshiftData.<Op>`; SigV4 headers are not checked).
//!   `ExecuteStatement` and `BatchExecuteStatement` answer an `Id` at once
//!   and run on a PostgreSQL session of their own (SUBMITTED → PICKED →
//!   STARTED → FINISHED | FAILED, sub-statements ABORTED after a failure);
//!   a batch is one transaction (`ExecutionMode` `TRANSACTION`, the
//!   default) or one per statement (`AUTO_COMMIT`). `DescribeStatement`
//!   and `GetStatementResult` take an `Id` or a sub-statement's `Id:N`. A
//!   repeated `ClientToken` with the same request answers the same `Id`
//!   and runs nothing. Named `Parameters` (`:name`) are substituted as
//!   literals. A SQL string over 100 KB is refused, as by the service. A
//!   submitted statement runs to its end whether or not anyone polls, as
//!   on Redshift (a loader killed after submitting may still commit).
//! - **The wire protocol** ([`RedshiftStandIn::wire_port`]): PostgreSQL v3,
//!   any user and database (trust, or a cleartext password with
//!   [`StandInOptions::password`]), `SSLRequest` answered `N`, one
//!   PostgreSQL backend per client connection (so `BEGIN` … `COMMIT`
//!   holds). Simple queries only: `Parse` (any extended-protocol message)
//!   gets an error until `Sync`. Results are relayed as PostgreSQL sends
//!   them (RowDescription with PostgreSQL's type OIDs, DataRow,
//!   CommandComplete tags, ErrorResponse with SQLSTATE, ReadyForQuery
//!   with PostgreSQL's transaction status); the startup parameters are
//!   Redshift's (`server_version` 8.0.2).
//!
//! **What is Redshift-like**, on both paths:
//! - `COPY t [(cols)] FROM 's3://…' {IAM_ROLE '…'|default | CREDENTIALS …}
//!   [MANIFEST] FORMAT [AS] CSV [QUOTE …] [DELIMITER …] [GZIP]
//!   [NULL AS '…'] [TIMEFORMAT 'auto'] [DATEFORMAT 'auto'] [MAXERROR 0]
//!   [REGION …] [COMPUPDATE …] [STATUPDATE …] [ENCODING UTF8]` (options in
//!   any order) reads the manifest (every entry's `url`, `mandatory`, and
//!   `meta.content_length` checked against the object) or every object
//!   under the URL as a key prefix, inflates each part (single- or
//!   multi-member gzip), and streams the parts into `COPY … FROM STDIN
//!   WITH (FORMAT csv, NULL '\N')` on the same PostgreSQL session, so in
//!   the client's transaction. NULL is `\N` unless `NULL AS` says
//!   otherwise. A rejected line is written to `public.stl_load_errors`
//!   (on a separate connection, so it survives the rollback) with the
//!   part's URL, the line within the part, the column, Redshift's error
//!   code and reason, the raw line (1024 bytes at most) and field; the
//!   statement fails with Redshift's text (`Load into table 't' failed.
//!   Check 'stl_load_errors' system table for details.`, SQLSTATE
//!   XX000). The line is the rejected record's first line within its
//!   part, a quoted newline counting as a line. `sys_load_error_detail` is
//!   a view over the same rows. Both are shared by every test on the
//!   server: filter by `filename` or `query`.
//!   `pg_last_copy_id()` and `pg_last_copy_count()` answer for the
//!   session's last COPY, failed or not.
//! - Rejected as Redshift rejects them (before anything of the query
//!   string runs; a transaction in progress is aborted): `ON CONFLICT`,
//!   `RETURNING`, `COPY … FROM STDIN`/`TO`/a local file, `CREATE INDEX`,
//!   `ON COMMIT`, `LOCK … IN … MODE`, array types (`[]`), and prepared
//!   statements on the wire.
//! - `CREATE TABLE`: `PRIMARY KEY`, `UNIQUE` and `REFERENCES` are dropped
//!   (Redshift never enforces them: exactly-once must not rest on them);
//!   `VARCHAR(n)` gets a byte-length check (Redshift counts bytes,
//!   PostgreSQL characters; an over-long value fails as `value too long
//!   for type character varying(n)`, or error 1204 in a COPY);
//!   `VARCHAR(MAX)` is 65535, a bare `VARCHAR` or `TEXT` is
//!   `VARCHAR(256)`; `DISTSTYLE`, `DISTKEY`, `SORTKEY`, `ENCODE`,
//!   `BACKUP` are accepted and dropped. `SUPER` is a domain over `jsonb`.
//! - `TRUNCATE` commits the transaction in progress first, as Redshift's
//!   does.
//! - `stv_slices` has [`StandInOptions::slices`] rows (`node`, `slice`);
//!   a Serverless session (`WorkgroupName`) has no `stl_*`/`stv_*` tables.
//! - Everything else passes through to PostgreSQL 15 as it is.
//!
//! **What is not**: the query planner, the catalog, types and functions
//! are PostgreSQL's (`information_schema` and `pg_*` answer as
//! PostgreSQL's); the database named by the client is ignored (all runs
//! in the test server's database); no TLS; isolation is READ COMMITTED,
//! not serializable (no error 1023); `stl_load_errors`, `stv_slices` and
//! the helpers live in `public` (a `search_path` without `public` hides
//! them, where Redshift's are in `pg_catalog`; their text columns are
//! `text`, where Redshift's are blank-padded `CHAR(n)`); the text of S3 and
//! manifest errors, and of some rejections, is Redshift-like but not
//! verified against a cluster; `content_length` is checked for every
//! format (Redshift needs it only for columnar loads); CSV details that
//! differ (PostgreSQL: a quoted `"\N"` is a string, an empty unquoted
//! field is an error for non-text types, a NUL byte fails the load;
//! Redshift: undocumented, NULL, silently ends the row); `MAXERROR` above
//! 0, `IGNOREHEADER`, `EMPTYASNULL`, `TRUNCATECOLUMNS`, other formats and
//! compressions are refused as unsupported (SQLSTATE 0A000) rather than
//! emulated; on the wire a COPY's CommandComplete tag is `COPY` without
//! a count (as Redshift's 8.0 lineage; VERIFY), its count is in the
//! INFO notice and in `ResultRows`; Data API sessions
//! (`SessionKeepAliveSeconds`, `SessionId`), `CancelStatement` and
//! result paging are not served.
//!
//! [`RedshiftStandIn::hold_copies`] stops every COPY before it reads S3
//! until the test releases it: a batch caught between upload and commit.
//! Dropping the stand-in aborts its servers, sessions and statements
//! (their PostgreSQL sessions end, rolling back what they had open).

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
    BufReader, BufWriter,
};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

/// Redshift's limit on one SQL string of the Data API.
pub const SQL_LIMIT: usize = 100 * 1024;
/// Largest PostgreSQL message accepted from either side.
const MAX_MESSAGE: usize = 1 << 30;
/// Prefix of the byte-length checks put on `VARCHAR(n)` columns.
const BYTES_CHECK: &str = "cwl_rs_bytes_";

// ---------------------------------------------------------------------------
// The public face
// ---------------------------------------------------------------------------

/// How a stand-in behaves.
#[derive(Clone, Debug)]
pub struct StandInOptions {
    /// Rows of `stv_slices`, the slice count a loader reads.
    pub slices: u32,
    /// How long a Data API statement stays SUBMITTED.
    pub submit_delay: Duration,
    /// Require this cleartext password on the wire (`None`: trust).
    pub password: Option<String>,
}

impl Default for StandInOptions {
    fn default() -> Self {
        StandInOptions {
            slices: 4,
            submit_delay: Duration::from_millis(20),
            password: None,
        }
    }
}

/// Which server received a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The PostgreSQL wire protocol.
    Wire,
    /// The Data API.
    DataApi,
}

/// Something the stand-in saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A query string (wire `Query`, or one Data API SQL string).
    Query {
        /// Where it came from.
        via: Via,
        /// The text.
        sql: String,
    },
    /// A statement (or wire message) refused as Redshift refuses it.
    Rejected {
        /// Where it came from.
        via: Via,
        /// The SQLSTATE answered.
        code: String,
        /// The message answered.
        message: String,
        /// The statement (or `<Parse>` for an extended-protocol message).
        sql: String,
    },
}

/// One `COPY … FROM 's3://…'` the stand-in ran.
#[derive(Clone, Debug)]
pub struct CopyLog {
    /// Its query id (`pg_last_copy_id()`, `stl_load_errors.query`).
    pub query_id: i64,
    /// Where it came from.
    pub via: Via,
    /// The table, as named (unquoted last component).
    pub table: String,
    /// The `FROM` URL.
    pub source: String,
    /// Whether the URL is a manifest.
    pub manifest: bool,
    /// The parts read, in load order.
    pub parts: Vec<PartLog>,
    /// Rows loaded, if it succeeded.
    pub rows: Option<u64>,
    /// Its error message, if it failed.
    pub error: Option<String>,
}

/// One part a COPY read.
#[derive(Clone, Debug)]
pub struct PartLog {
    /// `s3://bucket/key`.
    pub url: String,
    /// Its size in S3.
    pub size: u64,
    /// Its gzip members (0 without `GZIP`).
    pub gzip_members: usize,
    /// Its inflated size.
    pub inflated: u64,
}

/// One Data API call, as received.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// `ExecuteStatement`, …
    pub op: String,
    /// The JSON body.
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
}

/// A COPY stopped before it reads S3; dropping it (or
/// [`HeldCopy::release`]) lets it go on.
#[derive(Debug)]
pub struct HeldCopy {
    /// Where it came from.
    pub via: Via,
    /// The table (unquoted last component).
    pub table: String,
    /// The `FROM` URL.
    pub source: String,
    /// Whether the URL is a manifest.
    pub manifest: bool,
    release: Option<oneshot::Sender<()>>,
}

impl HeldCopy {
    /// Lets the COPY go on.
    pub fn release(mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
    }
}

/// Holds every COPY until released, while it lives
/// ([`RedshiftStandIn::hold_copies`]).
pub struct CopyHold {
    rx: mpsc::UnboundedReceiver<HeldCopy>,
    shared: Arc<Shared>,
}

impl CopyHold {
    /// The next COPY held, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<HeldCopy> {
        tokio::time::timeout(timeout, self.rx.recv()).await.ok().flatten()
    }
}

impl Drop for CopyHold {
    fn drop(&mut self) {
        *self.shared.hold.lock().unwrap() = None;
        // Queued copies are dropped with the channel, and so released.
    }
}

/// The stand-in; see the module docs. Stops when dropped.
pub struct RedshiftStandIn {
    data_addr: SocketAddr,
    wire_addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RedshiftStandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.tasks.lock().unwrap().abort_all();
    }
}

impl RedshiftStandIn {
    /// Starts a stand-in with the default options (4 slices).
    pub async fn start() -> RedshiftStandIn {
        RedshiftStandIn::start_with(StandInOptions::default()).await
    }

    /// Starts a stand-in on free ports of 127.0.0.1, on the current tokio
    /// runtime, after creating what it needs in the test server's
    /// `public` schema (idempotent, safe to race).
    pub async fn start_with(opts: StandInOptions) -> RedshiftStandIn {
        let url = super::pg_url();
        let pg = PgAddr::parse(&url);
        let (side, conn) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("stand-in: connect to {url}: {e}"));
        let side_task = tokio::spawn(async move {
            let _ = conn.await;
        });
        side.batch_execute(SETUP)
            .await
            .unwrap_or_else(|e| panic!("stand-in setup: {e:?}"));
        let s3 = super::s3_client().await;
        let shared = Arc::new(Shared {
            opts,
            pg,
            s3,
            side,
            log: Mutex::new(Log::default()),
            hold: Mutex::new(None),
            api: Mutex::new(Api::default()),
            tasks: Mutex::new(JoinSet::new()),
        });
        let wire = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wire_addr = wire.local_addr().unwrap();
        let data_addr = data.local_addr().unwrap();
        let wire_task = tokio::spawn(accept(wire, Arc::clone(&shared), true));
        let data_task = tokio::spawn(accept(data, Arc::clone(&shared), false));
        RedshiftStandIn {
            data_addr,
            wire_addr,
            shared,
            tasks: vec![side_task, wire_task, data_task],
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_REDSHIFT_DATA`.
    pub fn data_api_endpoint(&self) -> String {
        format!("http://{}", self.data_addr)
    }

    /// The wire protocol's port.
    pub fn wire_port(&self) -> u16 {
        self.wire_addr.port()
    }

    /// `redshift://user@127.0.0.1:PORT/db`, a `--target`.
    pub fn wire_target(&self, user: &str, db: &str) -> String {
        format!("redshift://{user}@{}/{db}", self.wire_addr)
    }

    /// Everything seen so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.shared.log.lock().unwrap().events.clone()
    }

    /// The statements refused so far.
    pub fn rejections(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| matches!(e, Event::Rejected { .. }))
            .collect()
    }

    /// Every S3 COPY so far, in the order they ended.
    pub fn copies(&self) -> Vec<CopyLog> {
        self.shared.log.lock().unwrap().copies.clone()
    }

    /// Every Data API call so far.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.shared.log.lock().unwrap().calls.clone()
    }

    /// Forgets the events, copies and calls recorded so far.
    pub fn clear_log(&self) {
        *self.shared.log.lock().unwrap() = Log::default();
    }

    /// From now until the returned hold is dropped, every COPY from S3
    /// waits, before it reads anything, until the test releases it.
    pub fn hold_copies(&self) -> CopyHold {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.shared.hold.lock().unwrap() = Some(tx);
        CopyHold { rx, shared: Arc::clone(&self.shared) }
    }

    /// Waits (up to `timeout`) until no Data API statement is pending or
    /// running; panics if one still is.
    pub async fn settle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let busy: Vec<String> = {
                let api = self.shared.api.lock().unwrap();
                api.stmts
                    .values()
                    .filter(|s| !matches!(s.status, "FINISHED" | "FAILED"))
                    .map(|s| format!("{} {}", s.id, s.status))
                    .collect()
            };
            if busy.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Data API statements still running after {timeout:?}: {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Shared state and setup
// ---------------------------------------------------------------------------

/// Created once in `public` (under an advisory lock, so stand-ins of
/// parallel tests may race on it).
const SETUP: &str = r"
DO $setup$
BEGIN
  PERFORM pg_advisory_xact_lock(7274, 11);
  CREATE TABLE IF NOT EXISTS public.stl_load_errors (
    query bigint, filename text, line_number bigint, colname text,
    err_code int, err_reason text, raw_line text, raw_field_value text,
    starttime timestamptz DEFAULT now());
  IF to_regclass('public.sys_load_error_detail') IS NULL THEN
    CREATE VIEW public.sys_load_error_detail AS
      SELECT query AS query_id, filename AS file_name, line_number,
             colname AS column_name, err_code AS error_code,
             err_reason AS error_message, starttime AS log_time
      FROM public.stl_load_errors;
  END IF;
  -- The slice count is the session's (each stand-in sets it at startup).
  IF to_regclass('public.stv_slices') IS NULL THEN
    CREATE VIEW public.stv_slices AS
      SELECT s / 2 AS node, s AS slice
      FROM generate_series(0, coalesce(nullif(
        current_setting('cwl_standin.slices', true), ''), '4')::int - 1) s;
  END IF;
  CREATE SEQUENCE IF NOT EXISTS public.cwl_standin_query_id START 1000;
  IF to_regtype('public.super') IS NULL THEN
    CREATE DOMAIN public.super AS jsonb;
  END IF;
  -- The stand-in rewrites pg_last_copy_id() to pg_last_copy_id(<id>).
  IF to_regprocedure('public.pg_last_copy_id(integer)') IS NULL THEN
    CREATE FUNCTION public.pg_last_copy_id(integer) RETURNS integer
      LANGUAGE sql IMMUTABLE AS 'SELECT $1';
  END IF;
  IF to_regprocedure('public.pg_last_copy_count(bigint)') IS NULL THEN
    CREATE FUNCTION public.pg_last_copy_count(bigint) RETURNS bigint
      LANGUAGE sql IMMUTABLE AS 'SELECT $1';
  END IF;
  IF to_regprocedure('public.getdate()') IS NULL THEN
    CREATE FUNCTION public.getdate() RETURNS timestamp
      LANGUAGE sql STABLE AS 'SELECT localtimestamp(0)';
  END IF;
  IF to_regprocedure('public.json_parse(text)') IS NULL THEN
    CREATE FUNCTION public.json_parse(text) RETURNS jsonb
      LANGUAGE sql IMMUTABLE AS 'SELECT $1::jsonb';
  END IF;
END
$setup$;
";

#[derive(Default)]
struct Log {
    events: Vec<Event>,
    copies: Vec<CopyLog>,
    calls: Vec<ApiCall>,
}

struct Shared {
    opts: StandInOptions,
    pg: PgAddr,
    s3: aws_sdk_s3::Client,
    /// For `stl_load_errors` (outside the client's transaction) and query
    /// ids.
    side: tokio_postgres::Client,
    log: Mutex<Log>,
    hold: Mutex<Option<mpsc::UnboundedSender<HeldCopy>>>,
    api: Mutex<Api>,
    /// Data API statements in flight (aborted with the stand-in).
    tasks: Mutex<JoinSet<()>>,
}

impl Shared {
    fn event(&self, e: Event) {
        self.log.lock().unwrap().events.push(e);
    }

    async fn next_query_id(&self) -> i64 {
        match self
            .side
            .query_one("SELECT nextval('public.cwl_standin_query_id')", &[])
            .await
        {
            Ok(r) => r.get(0),
            Err(e) => panic!("stand-in: next query id: {e}"),
        }
    }

    async fn hold(&self, via: Via, c: &CopySpec) {
        let tx = self.hold.lock().unwrap().clone();
        if let Some(tx) = tx {
            let (release, wait) = oneshot::channel();
            let held = HeldCopy {
                via,
                table: c.table_name.clone(),
                source: c.source.clone(),
                manifest: c.manifest,
                release: Some(release),
            };
            if tx.send(held).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

/// Where the test PostgreSQL listens.
#[derive(Clone, Debug)]
struct PgAddr {
    host: String,
    port: u16,
    user: String,
    db: String,
    password: Option<String>,
}

impl PgAddr {
    fn parse(url: &str) -> PgAddr {
        let cfg: tokio_postgres::Config = url
            .parse()
            .unwrap_or_else(|e| panic!("stand-in: bad CWL_TEST_PG_URL: {e}"));
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let user = cfg.get_user().unwrap_or("postgres").to_owned();
        PgAddr {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            db: cfg.get_dbname().unwrap_or(&user).to_owned(),
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            user,
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, wire: bool) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((stream, _)) = r else { continue };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                conns.spawn(async move {
                    let r = if wire {
                        wire_conn(shared, stream).await
                    } else {
                        http_conn(shared, stream).await
                    };
                    // A client that goes away is no failure of ours.
                    drop(r);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL v3 messages
// ---------------------------------------------------------------------------

/// One protocol message: its type byte and body (after the length).
#[derive(Clone, Debug)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

fn cstring(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().filter(|&b| b != 0).collect();
    v.push(0);
    v
}

/// The NUL-terminated string at `*at`, advancing past it.
fn take_cstr(body: &[u8], at: &mut usize) -> String {
    let rest = body.get(*at..).unwrap_or_default();
    let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    *at += n + 1;
    String::from_utf8_lossy(&rest[..n]).into_owned()
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    b.get(at..at + 2).map_or(0, |s| i16::from_be_bytes([s[0], s[1]]))
}

impl Msg {
    fn new(tag: u8, body: Vec<u8>) -> Msg {
        Msg { tag, body }
    }

    /// An ErrorResponse (`tag` `E`) or NoticeResponse (`N`).
    fn report(
        tag: u8,
        severity: &str,
        code: &str,
        message: &str,
        detail: Option<&str>,
    ) -> Msg {
        let mut b = Vec::new();
        for (f, v) in [(b'S', severity), (b'V', severity), (b'C', code)]
            .into_iter()
            .chain([(b'M', message)])
            .chain(detail.map(|d| (b'D', d)))
        {
            b.push(f);
            b.extend(cstring(v));
        }
        b.push(0);
        Msg::new(tag, b)
    }

    fn error(code: &str, message: &str, detail: Option<&str>) -> Msg {
        Msg::report(b'E', "ERROR", code, message, detail)
    }

    fn complete(tag: &str) -> Msg {
        Msg::new(b'C', cstring(tag))
    }

    fn ready(status: u8) -> Msg {
        Msg::new(b'Z', vec![status])
    }

    /// A field of an ErrorResponse or NoticeResponse.
    fn field(&self, f: u8) -> Option<String> {
        let mut at = 0;
        while let Some(&t) = self.body.get(at) {
            if t == 0 {
                break;
            }
            at += 1;
            let v = take_cstr(&self.body, &mut at);
            if t == f {
                return Some(v);
            }
        }
        None
    }

    /// Replaces (or adds) a field of an ErrorResponse.
    fn set_field(&mut self, f: u8, value: &str) {
        let mut fields = Vec::new();
        let mut at = 0;
        while let Some(&t) = self.body.get(at) {
            if t == 0 {
                break;
            }
            at += 1;
            let v = take_cstr(&self.body, &mut at);
            if t != f {
                fields.push((t, v));
            }
        }
        fields.push((f, value.to_owned()));
        let mut b = Vec::new();
        for (t, v) in fields {
            b.push(t);
            b.extend(cstring(&v));
        }
        b.push(0);
        self.body = b;
    }
}

async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Msg> {
    let tag = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if !(4..=MAX_MESSAGE).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message {:?} of length {len}", tag as char),
        ));
    }
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await?;
    Ok(Msg { tag, body })
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    tag: u8,
    body: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(body.len() + 4)
        .map_err(|_| io::Error::other("message too long"))?;
    w.write_u8(tag).await?;
    w.write_u32(len).await?;
    w.write_all(body).await
}

async fn write_msg<W: AsyncWrite + Unpin>(
    w: &mut W,
    m: &Msg,
) -> io::Result<()> {
    write_frame(w, m.tag, &m.body).await
}

/// The row count at the end of a CommandComplete tag (`INSERT 0 5` → 5).
fn tag_count(tag: &str) -> Option<u64> {
    let last = tag.rsplit(' ').next()?;
    if last == tag {
        return None;
    }
    last.parse().ok()
}

// ---------------------------------------------------------------------------
// A backend: one raw session on the test PostgreSQL
// ---------------------------------------------------------------------------

struct Backend {
    rd: BufReader<OwnedReadHalf>,
    wr: BufWriter<OwnedWriteHalf>,
    /// The transaction status of the last ReadyForQuery.
    status: u8,
    /// Its BackendKeyData.
    key: Option<Msg>,
    pid: i64,
}

impl Backend {
    async fn connect(pg: &PgAddr, slices: u32) -> io::Result<Backend> {
        let stream = TcpStream::connect((pg.host.as_str(), pg.port)).await?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut b = Backend {
            rd: BufReader::new(r),
            wr: BufWriter::new(w),
            status: b'I',
            key: None,
            pid: 0,
        };
        let mut body = 196_608u32.to_be_bytes().to_vec();
        let slices = slices.to_string();
        // Redshift's session defaults: UTC, ISO dates.
        for (k, v) in [
            ("user", pg.user.as_str()),
            ("database", pg.db.as_str()),
            ("application_name", "cwl-copy redshift stand-in"),
            ("client_encoding", "UTF8"),
            ("TimeZone", "UTC"),
            ("DateStyle", "ISO, MDY"),
            ("cwl_standin.slices", slices.as_str()),
        ] {
            body.extend(cstring(k));
            body.extend(cstring(v));
        }
        body.push(0);
        let len = u32::try_from(body.len() + 4).unwrap_or(0);
        b.wr.write_u32(len).await?;
        b.wr.write_all(&body).await?;
        b.wr.flush().await?;
        loop {
            let m = read_msg(&mut b.rd).await?;
            match m.tag {
                b'R' => match be_u32(&m.body, 0) {
                    0 => {}
                    3 => {
                        let pw = pg.password.clone().unwrap_or_default();
                        write_frame(&mut b.wr, b'p', &cstring(&pw)).await?;
                        b.wr.flush().await?;
                    }
                    n => {
                        return Err(io::Error::other(format!(
                            "the test server asks for authentication {n}; \
                             the stand-in speaks trust and cleartext only"
                        )))
                    }
                },
                b'K' => {
                    b.pid = i64::from(be_u32(&m.body, 0));
                    b.key = Some(m);
                }
                b'Z' => {
                    b.status = m.body.first().copied().unwrap_or(b'I');
                    return Ok(b);
                }
                b'E' => {
                    return Err(io::Error::other(format!(
                        "the test server refused the stand-in: {}",
                        m.field(b'M').unwrap_or_default()
                    )))
                }
                _ => {}
            }
        }
    }

    /// Reads messages up to ReadyForQuery (excluded), refusing a
    /// `COPY FROM STDIN` and dropping `COPY TO STDOUT` data (neither is
    /// ever forwarded: Redshift has no such thing).
    async fn collect(&mut self) -> io::Result<Vec<Msg>> {
        let mut out = Vec::new();
        loop {
            let m = read_msg(&mut self.rd).await?;
            match m.tag {
                b'Z' => {
                    self.status = m.body.first().copied().unwrap_or(b'I');
                    return Ok(out);
                }
                b'G' | b'W' => {
                    let fail = cstring("not through the Redshift stand-in");
                    write_frame(&mut self.wr, b'f', &fail).await?;
                    self.wr.flush().await?;
                }
                b'H' | b'd' | b'c' => {}
                _ => out.push(m),
            }
        }
    }

    /// Runs a simple query; its messages without ReadyForQuery.
    async fn simple(&mut self, sql: &str) -> io::Result<Vec<Msg>> {
        write_frame(&mut self.wr, b'Q', &cstring(sql)).await?;
        self.wr.flush().await?;
        self.collect().await
    }

    /// Sends a `COPY … FROM STDIN`: `Ok(None)` in copy-in mode, or the
    /// messages of its failure.
    async fn start_copy(&mut self, sql: &str) -> io::Result<Option<Vec<Msg>>> {
        write_frame(&mut self.wr, b'Q', &cstring(sql)).await?;
        self.wr.flush().await?;
        let mut out = Vec::new();
        loop {
            let m = read_msg(&mut self.rd).await?;
            match m.tag {
                b'G' => return Ok(None),
                b'Z' => {
                    self.status = m.body.first().copied().unwrap_or(b'I');
                    return Ok(Some(out));
                }
                _ => out.push(m),
            }
        }
    }

    /// CopyData. After an error PostgreSQL ignores the rest (and has
    /// already sent ReadyForQuery, read by [`Backend::finish_copy`]).
    async fn copy_data(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(1 << 20) {
            write_frame(&mut self.wr, b'd', chunk).await?;
        }
        Ok(())
    }

    async fn finish_copy(&mut self) -> io::Result<Vec<Msg>> {
        write_frame(&mut self.wr, b'c', &[]).await?;
        self.wr.flush().await?;
        self.collect().await
    }

    async fn terminate(mut self) {
        let _ = write_frame(&mut self.wr, b'X', &[]).await;
        let _ = self.wr.flush().await;
    }
}

// ---------------------------------------------------------------------------
// SQL: tokens, statements, and what Redshift makes of them
// ---------------------------------------------------------------------------

/// A token's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// An unquoted identifier or keyword (text as written).
    Word,
    /// A `"quoted identifier"` (text unescaped).
    QIdent,
    /// A `'string'` or `$$dollar-quoted$$` string (text unescaped).
    Str,
    /// A number.
    Num,
    /// A Data API named parameter `:name` (text without the colon).
    Param,
    /// Anything else: `;`, `(`, `::`, `$1`, …
    Punct,
}

/// A token, with its byte span in the statement.
#[derive(Clone, Debug)]
pub struct Token {
    /// Its kind.
    pub kind: Tok,
    /// Its text (see [`Tok`]).
    pub text: String,
    /// Where it starts.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

impl Token {
    /// Whether it is the keyword `kw` (case-insensitive).
    pub fn is(&self, kw: &str) -> bool {
        self.kind == Tok::Word && self.text.eq_ignore_ascii_case(kw)
    }

    fn punct(&self, p: &str) -> bool {
        self.kind == Tok::Punct && self.text == p
    }
}

fn is(t: Option<&Token>, kw: &str) -> bool {
    t.is_some_and(|t| t.is(kw))
}

fn punct(t: Option<&Token>, p: &str) -> bool {
    t.is_some_and(|t| t.punct(p))
}

/// Splits SQL into tokens (comments and whitespace dropped); an error for
/// an unterminated string, identifier or comment.
pub fn lex(sql: &str) -> Result<Vec<Token>, String> {
    let b = sql.as_bytes();
    let start_of_ident =
        |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    let in_ident = |c: u8| {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
    };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while b.get(i).is_some_and(|&c| c != b'\n') {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while depth > 0 {
                match (b.get(i), b.get(i + 1)) {
                    (None, _) => return Err("unterminated /* comment".into()),
                    (Some(b'*'), Some(b'/')) => {
                        depth -= 1;
                        i += 2;
                    }
                    (Some(b'/'), Some(b'*')) => {
                        depth += 1;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
            continue;
        }
        let start = i;
        let (kind, text) = match c {
            b'\'' | b'"' => {
                i += 1;
                let mut v = Vec::new();
                loop {
                    match b.get(i) {
                        None => {
                            return Err("unterminated quoted string".into())
                        }
                        Some(&x) if x == c && b.get(i + 1) == Some(&c) => {
                            v.push(c);
                            i += 2;
                        }
                        Some(&x) if x == c => {
                            i += 1;
                            break;
                        }
                        Some(&x) => {
                            v.push(x);
                            i += 1;
                        }
                    }
                }
                let kind = if c == b'\'' { Tok::Str } else { Tok::QIdent };
                (kind, String::from_utf8_lossy(&v).into_owned())
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                (Tok::Punct, sql[start..i].to_owned())
            }
            b'$' => {
                let mut j = i + 1;
                while b
                    .get(j)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    j += 1;
                }
                if b.get(j) == Some(&b'$') {
                    let tag = &sql[i..=j];
                    let body = j + 1;
                    let Some(k) = sql[body..].find(tag) else {
                        return Err("unterminated dollar-quoted string".into());
                    };
                    i = body + k + tag.len();
                    (Tok::Str, sql[body..body + k].to_owned())
                } else {
                    i += 1;
                    (Tok::Punct, "$".to_owned())
                }
            }
            b'0'..=b'9' => {
                while b
                    .get(i)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'.')
                {
                    i += 1;
                }
                (Tok::Num, sql[start..i].to_owned())
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 2;
                (Tok::Punct, "::".to_owned())
            }
            b':' if b.get(i + 1).is_some_and(|&c| start_of_ident(c)) => {
                i += 1;
                while b.get(i).is_some_and(|&c| in_ident(c)) {
                    i += 1;
                }
                (Tok::Param, sql[start + 1..i].to_owned())
            }
            c if start_of_ident(c) => {
                while b.get(i).is_some_and(|&c| in_ident(c)) {
                    i += 1;
                }
                (Tok::Word, sql[start..i].to_owned())
            }
            c => {
                i += 1;
                (Tok::Punct, (c as char).to_string())
            }
        };
        out.push(Token { kind, text, start, end: i });
    }
    Ok(out)
}

/// The statements of a query string: each one's text and tokens (spans
/// relative to the text), empty statements dropped.
pub fn statements(sql: &str) -> Result<Vec<(String, Vec<Token>)>, String> {
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut flush = |cur: &mut Vec<Token>| {
        if let (Some(first), Some(last)) = (cur.first(), cur.last()) {
            let (s, e) = (first.start, last.end);
            let toks = cur
                .drain(..)
                .map(|mut t| {
                    t.start -= s;
                    t.end -= s;
                    t
                })
                .collect();
            out.push((sql[s..e].to_owned(), toks));
        }
    };
    for t in lex(sql)? {
        if t.punct(";") {
            flush(&mut cur);
        } else {
            cur.push(t);
        }
    }
    flush(&mut cur);
    Ok(out)
}

/// A statement Redshift refuses: its SQLSTATE and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// SQLSTATE.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

impl Rejection {
    fn syntax(near: &Token) -> Rejection {
        let near = match near.kind {
            Tok::Str => format!("'{}'", near.text),
            Tok::QIdent => format!("\"{}\"", near.text),
            _ => near.text.clone(),
        };
        Rejection {
            code: "42601",
            message: format!("syntax error at or near \"{near}\""),
        }
    }

    fn unsupported(what: &str) -> Rejection {
        Rejection {
            code: "0A000",
            message: format!(
                "{what} is not supported by the Redshift stand-in"
            ),
        }
    }
}

/// A text edit: replace `start..end` by `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue;
        }
        out.push_str(&text[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&text[at..]);
    out
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace('\0', ""))
}

/// Index of the `)` matching the `(` at `open`.
fn matching(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// What a statement becomes.
#[derive(Debug)]
pub enum Plan {
    /// Run on PostgreSQL (rewritten).
    Pass(String),
    /// A COPY from S3.
    Copy(Box<CopySpec>),
    /// `TRUNCATE`: commits the transaction in progress first.
    Truncate(String),
}

/// What a session knows when it plans a statement.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// A Serverless session (no `stl_*`/`stv_*` tables).
    pub serverless: bool,
    /// The session's last COPY: its query id (-1: none) and rows.
    pub last_copy: (i64, i64),
    /// Data API named parameters.
    pub params: Option<HashMap<String, String>>,
}

/// Plans one statement (its text and tokens from [`statements`]) the way
/// Redshift would take it: refused, a COPY from S3, or SQL for PostgreSQL.
pub fn plan(
    text: &str,
    toks: &[Token],
    cx: &Context,
) -> Result<Plan, Rejection> {
    let Some(first) = toks.first() else {
        return Ok(Plan::Pass(text.to_owned()));
    };
    if cx.serverless {
        if let Some(t) = toks.iter().find(|t| {
            matches!(t.kind, Tok::Word | Tok::QIdent)
                && ["stl_", "stv_"].iter().any(|p| {
                    t.text.get(..4).is_some_and(|h| h.eq_ignore_ascii_case(p))
                })
        }) {
            return Err(Rejection {
                code: "42P01",
                message: format!(
                    "relation \"{}\" does not exist",
                    t.text.to_lowercase()
                ),
            });
        }
    }
    let dml =
        ["insert", "update", "delete", "with"].iter().any(|k| first.is(k));
    for (i, t) in toks.iter().enumerate() {
        let next = toks.get(i + 1);
        if t.is("on")
            && (is(next, "conflict")
                || (first.is("create") && is(next, "commit")))
        {
            return Err(Rejection::syntax(t));
        }
        if dml && t.is("returning") {
            return Err(Rejection::syntax(t));
        }
        if t.punct("[") && punct(next, "]") {
            return Err(Rejection::syntax(t));
        }
        if first.is("lock") && t.is("in") {
            return Err(Rejection::syntax(t));
        }
    }
    if first.is("create")
        && (is(toks.get(1), "index")
            || (is(toks.get(1), "unique") && is(toks.get(2), "index")))
    {
        return Err(Rejection::unsupported(
            "CREATE INDEX (Redshift has no indexes)",
        ));
    }
    if first.is("copy") {
        return parse_copy(toks).map(|c| Plan::Copy(Box::new(c)));
    }
    let mut edits = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let call = punct(toks.get(i + 1), "(") && punct(toks.get(i + 2), ")");
        if call && (t.is("pg_last_copy_id") || t.is("pg_last_copy_count")) {
            let v = if t.is("pg_last_copy_id") {
                cx.last_copy.0
            } else {
                cx.last_copy.1
            };
            edits.push(Edit {
                start: t.start,
                end: toks[i + 2].end,
                text: format!("{}({v})", t.text),
            });
        }
        if t.kind == Tok::Param {
            if let Some(params) = &cx.params {
                let Some(v) = params.get(&t.text) else {
                    return Err(Rejection {
                        code: "42601",
                        message: format!(
                            "no value given for parameter :{}",
                            t.text
                        ),
                    });
                };
                edits.push(Edit {
                    start: t.start,
                    end: t.end,
                    text: quote_literal(v),
                });
            }
        }
    }
    if first.is("create") {
        create_table_edits(text, toks, &mut edits)?;
    }
    let sql = apply(text, edits);
    if first.is("truncate") {
        Ok(Plan::Truncate(sql))
    } else {
        Ok(Plan::Pass(sql))
    }
}

/// `CREATE [LOCAL] [TEMP] TABLE [IF NOT EXISTS] name (…) [attributes]`:
/// constraints Redshift does not enforce dropped, VARCHAR in bytes,
/// distribution and sort attributes dropped.
fn create_table_edits(
    text: &str,
    toks: &[Token],
    edits: &mut Vec<Edit>,
) -> Result<(), Rejection> {
    let mut i = 1;
    while ["local", "temp", "temporary"].iter().any(|k| is(toks.get(i), k)) {
        i += 1;
    }
    if !is(toks.get(i), "table") {
        return Ok(());
    }
    i += 1;
    if is(toks.get(i), "if") {
        i += 3;
    }
    while toks.get(i).is_some_and(|t| !t.punct("(")) {
        if toks[i].is("as") {
            return Ok(()); // CREATE TABLE … AS SELECT
        }
        i += 1;
    }
    let open = i;
    let Some(close) = matching(toks, open) else { return Ok(()) };
    let mut elems = Vec::new();
    let (mut depth, mut from) = (0usize, open + 1);
    for (k, t) in toks.iter().enumerate().take(close).skip(open + 1) {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
        } else if t.punct(",") && depth == 0 {
            elems.push(&toks[from..k]);
            from = k + 1;
        }
    }
    elems.push(&toks[from..close]);
    let mut kept = Vec::new();
    for el in elems {
        let Some(head) = el.first() else { continue };
        let key = |t: Option<&Token>| {
            ["primary", "unique", "foreign"].iter().any(|k| is(t, k))
        };
        if key(Some(head)) || (head.is("constraint") && key(el.get(2))) {
            continue; // a table constraint Redshift does not enforce
        }
        let slice = &text[head.start..el[el.len() - 1].end];
        if head.is("constraint") || head.is("check") || head.is("like") {
            kept.push(slice.to_owned());
        } else {
            kept.push(column_def(slice, el)?);
        }
    }
    edits.push(Edit {
        start: toks[open].end,
        end: toks[close].start,
        text: kept.join(", "),
    });
    // Table attributes after the column list.
    let mut j = close + 1;
    while let Some(t) = toks.get(j) {
        let n = if t.is("compound") || t.is("interleaved") {
            1
        } else if (t.is("distkey") || t.is("sortkey"))
            && punct(toks.get(j + 1), "(")
        {
            matching(toks, j + 1).map_or(2, |c| c + 1 - j)
        } else if ["diststyle", "distkey", "sortkey", "backup", "encode"]
            .iter()
            .any(|k| t.is(k))
        {
            2
        } else {
            break;
        };
        let last = toks.get(j + n - 1).unwrap_or(t);
        edits.push(Edit {
            start: t.start,
            end: last.end,
            text: String::new(),
        });
        j += n;
    }
    Ok(())
}

/// One column definition, rewritten for Redshift's semantics.
fn column_def(slice: &str, el: &[Token]) -> Result<String, Rejection> {
    let base = el[0].start;
    let at = |t: &Token| (t.start - base, t.end - base);
    let mut edits = Vec::new();
    let name = match el[0].kind {
        Tok::QIdent => el[0].text.clone(),
        _ => el[0].text.to_lowercase(),
    };
    let attr = [
        "not",
        "null",
        "default",
        "primary",
        "unique",
        "references",
        "check",
        "constraint",
        "encode",
        "distkey",
        "sortkey",
        "identity",
        "generated",
        "collate",
    ];
    let ty_end = (1..el.len())
        .find(|&k| attr.iter().any(|a| el[k].is(a)))
        .unwrap_or(el.len());
    let ty = &el[1..ty_end];
    let mut bytes = None;
    let first =
        ty.first().map(|t| t.text.to_ascii_lowercase()).unwrap_or_default();
    let varying = matches!(first.as_str(), "varchar" | "nvarchar")
        || (matches!(first.as_str(), "character" | "char")
            && is(ty.get(1), "varying"));
    if varying {
        let word = if is(ty.get(1), "varying") { 1 } else { 0 };
        if punct(ty.get(word + 1), "(") {
            let n = ty
                .get(word + 2)
                .ok_or_else(|| Rejection::syntax(&ty[word]))?;
            let len = if n.is("max") {
                let (s, e) = at(n);
                edits.push(Edit { start: s, end: e, text: "65535".into() });
                65_535
            } else {
                n.text.parse::<u64>().map_err(|_| Rejection::syntax(n))?
            };
            if len > 65_535 {
                return Err(Rejection {
                    code: "22023",
                    message: "length for type varchar cannot exceed 65535"
                        .into(),
                });
            }
            bytes = Some(len);
        } else {
            let (_, e) = at(&ty[word]);
            edits.push(Edit { start: e, end: e, text: "(256)".into() });
            bytes = Some(256);
        }
    } else if first == "text" && ty.len() == 1 {
        let (s, e) = at(&ty[0]);
        edits.push(Edit { start: s, end: e, text: "varchar(256)".into() });
        bytes = Some(256);
    }
    // Column attributes Redshift accepts and PostgreSQL does not, or
    // does not enforce where PostgreSQL would.
    let mut k = ty_end;
    while let Some(t) = el.get(k) {
        let n = if t.is("primary") {
            2
        } else if t.is("unique") || t.is("distkey") || t.is("sortkey") {
            1
        } else if t.is("encode") {
            2
        } else if t.is("references") {
            let mut n = 2;
            while punct(el.get(k + n), ".") {
                n += 2;
            }
            if punct(el.get(k + n), "(") {
                n = matching(el, k + n).map_or(n, |c| c + 1 - k);
            }
            n
        } else {
            k += 1;
            continue;
        };
        let last = el.get(k + n - 1).unwrap_or(t);
        edits.push(Edit {
            start: at(t).0,
            end: at(last).1,
            text: String::new(),
        });
        k += n;
    }
    let mut out = apply(slice, edits).trim_end().to_owned();
    if let Some(n) = bytes {
        let mut cname = format!("{BYTES_CHECK}{n}_{name}");
        while cname.len() > 63 {
            cname.pop();
        }
        out.push_str(&format!(
            " CONSTRAINT {} CHECK (octet_length({}) <= {n})",
            quote_ident(&cname),
            quote_ident(&name)
        ));
    }
    Ok(out)
}

/// `(bytes, column)` of one of the stand-in's byte-length checks.
fn bytes_check(constraint: &str) -> Option<(u64, String)> {
    let rest = constraint.strip_prefix(BYTES_CHECK)?;
    let (n, col) = rest.split_once('_')?;
    Some((n.parse().ok()?, col.to_owned()))
}

/// An over-long VARCHAR (bytes) reads as Redshift's error.
fn translate_errors(msgs: &mut [Msg]) {
    for m in msgs.iter_mut().filter(|m| m.tag == b'E') {
        if m.field(b'C').as_deref() != Some("23514") {
            continue;
        }
        if let Some((n, _)) = m.field(b'n').as_deref().and_then(bytes_check) {
            m.set_field(b'C', "22001");
            m.set_field(
                b'M',
                &format!("value too long for type character varying({n})"),
            );
        }
    }
}

/// A parsed `COPY … FROM 's3://…'`.
#[derive(Clone, Debug, Default)]
pub struct CopySpec {
    /// The table as written (quoted as given).
    pub table: String,
    /// Its last component, unquoted (for messages).
    pub table_name: String,
    /// The column list as written, `(a, b)`, if any.
    pub columns: Option<String>,
    /// The `FROM` URL.
    pub source: String,
    /// `MANIFEST`.
    pub manifest: bool,
    /// `GZIP`.
    pub gzip: bool,
    /// `NULL AS` (default `\N`).
    pub null_as: String,
    /// `DELIMITER`.
    pub delimiter: Option<String>,
    /// `QUOTE`.
    pub quote: Option<String>,
}

impl CopySpec {
    /// The PostgreSQL statement the parts are streamed into.
    pub fn pg_copy(&self) -> String {
        let mut opts =
            format!("FORMAT csv, NULL {}", quote_literal(&self.null_as));
        if let Some(d) = &self.delimiter {
            opts.push_str(&format!(", DELIMITER {}", quote_literal(d)));
        }
        if let Some(q) = &self.quote {
            opts.push_str(&format!(", QUOTE {}", quote_literal(q)));
        }
        format!(
            "COPY {} {}FROM STDIN WITH ({opts})",
            self.table,
            self.columns.as_ref().map(|c| format!("{c} ")).unwrap_or_default()
        )
    }
}

/// Parses a Redshift COPY (the tokens of one statement).
pub fn parse_copy(toks: &[Token]) -> Result<CopySpec, Rejection> {
    let text_of = |a: usize, z: usize| -> String {
        toks[a..z]
            .iter()
            .map(|t| match t.kind {
                Tok::QIdent => quote_ident(&t.text),
                _ => t.text.clone(),
            })
            .collect::<Vec<_>>()
            .join(if a + 1 < z && toks[a].punct("(") { " " } else { "" })
    };
    let mut c = CopySpec { null_as: "\\N".into(), ..CopySpec::default() };
    let mut i = 1;
    let name_start = i;
    while toks
        .get(i)
        .is_some_and(|t| matches!(t.kind, Tok::Word | Tok::QIdent))
    {
        c.table_name = toks[i].text.clone();
        i += 1;
        if !punct(toks.get(i), ".") {
            break;
        }
        i += 1;
    }
    if i == name_start {
        return Err(toks
            .get(i)
            .map_or_else(|| Rejection::syntax(&toks[0]), Rejection::syntax));
    }
    c.table = text_of(name_start, i);
    if punct(toks.get(i), "(") {
        let close =
            matching(toks, i).ok_or_else(|| Rejection::syntax(&toks[i]))?;
        c.columns = Some(text_of(i, close + 1));
        i = close + 1;
    }
    let Some(from) = toks.get(i) else {
        return Err(Rejection::syntax(&toks[i - 1]));
    };
    if !from.is("from") {
        return Err(Rejection::syntax(from));
    }
    i += 1;
    let Some(src) = toks.get(i) else { return Err(Rejection::syntax(from)) };
    if src.kind != Tok::Str {
        return Err(Rejection::syntax(src)); // STDIN, STDOUT, PROGRAM, …
    }
    if src.text.starts_with("dynamodb://") || src.text.starts_with("emr://") {
        return Err(Rejection::unsupported("COPY from DynamoDB or EMR"));
    }
    if !src.text.starts_with("s3://") {
        return Err(Rejection {
            code: "XX000",
            message:
                "LOAD source is not supported. (Hint: only S3 or DynamoDB \
                      or EMR based load is allowed)"
                    .into(),
        });
    }
    c.source = src.text.clone();
    i += 1;
    let (mut auth, mut csv) = (false, false);
    // An option's argument, after an optional AS.
    let arg = |i: &mut usize, kind: Tok| -> Result<String, Rejection> {
        if is(toks.get(*i), "as") {
            *i += 1;
        }
        match toks.get(*i) {
            Some(t) if t.kind == kind => {
                *i += 1;
                Ok(t.text.clone())
            }
            Some(t) => Err(Rejection::syntax(t)),
            None => Err(Rejection::syntax(&toks[*i - 1])),
        }
    };
    while let Some(t) = toks.get(i) {
        let kw = t.text.to_ascii_lowercase();
        i += 1;
        match kw.as_str() {
            _ if t.kind != Tok::Word => return Err(Rejection::syntax(t)),
            "iam_role" => {
                if is(toks.get(i), "default") {
                    i += 1;
                } else {
                    arg(&mut i, Tok::Str)?;
                }
                auth = true;
            }
            "credentials" | "access_key_id" | "secret_access_key"
            | "session_token" => {
                arg(&mut i, Tok::Str)?;
                auth = true;
            }
            "with" => {}
            "manifest" => c.manifest = true,
            "format" => {
                if is(toks.get(i), "as") {
                    i += 1;
                }
                match toks.get(i) {
                    Some(f) if f.is("csv") => {
                        csv = true;
                        i += 1;
                    }
                    Some(f) if f.kind == Tok::Word => {
                        return Err(Rejection::unsupported(&format!(
                            "FORMAT {}",
                            f.text.to_uppercase()
                        )))
                    }
                    Some(f) => return Err(Rejection::syntax(f)),
                    None => return Err(Rejection::syntax(t)),
                }
            }
            "csv" => csv = true,
            "quote" => c.quote = Some(arg(&mut i, Tok::Str)?),
            "delimiter" => c.delimiter = Some(arg(&mut i, Tok::Str)?),
            "gzip" => c.gzip = true,
            "null" => c.null_as = arg(&mut i, Tok::Str)?,
            "timeformat" | "dateformat" => {
                let f = arg(&mut i, Tok::Str)?;
                if f != "auto" {
                    return Err(Rejection::unsupported(&format!(
                        "{} '{f}'",
                        kw.to_uppercase()
                    )));
                }
            }
            "maxerror" => {
                let n = arg(&mut i, Tok::Num)?;
                if n != "0" {
                    return Err(Rejection::unsupported("MAXERROR above 0"));
                }
            }
            "region" => {
                arg(&mut i, Tok::Str)?;
            }
            "compupdate" | "statupdate" => {
                if ["on", "off", "true", "false", "preset"]
                    .iter()
                    .any(|k| is(toks.get(i), k))
                {
                    i += 1;
                }
            }
            "encoding" => {
                let e = arg(&mut i, Tok::Word)?;
                if !e.eq_ignore_ascii_case("utf8") {
                    return Err(Rejection::unsupported(&format!(
                        "ENCODING {e}"
                    )));
                }
            }
            "bzip2" | "lzop" | "zstd" | "ignoreheader" | "acceptinvchars"
            | "truncatecolumns" | "emptyasnull" | "blanksasnull"
            | "fillrecord" | "trimblanks" | "acceptanydate" | "roundec"
            | "removequotes" | "escape" | "explicit_ids" | "json" | "avro"
            | "parquet" | "orc" | "fixedwidth" | "shapefile"
            | "delimiter_as" | "readratio" | "ssh" | "jobs" => {
                return Err(Rejection::unsupported(&format!(
                    "COPY option {}",
                    kw.to_uppercase()
                )))
            }
            _ => return Err(Rejection::syntax(t)),
        }
    }
    if !auth {
        return Err(Rejection {
            code: "XX000",
            message: "COPY from S3 needs IAM_ROLE or CREDENTIALS".into(),
        });
    }
    if !csv {
        return Err(Rejection::unsupported("COPY without FORMAT CSV"));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// Reading S3, and where a rejected line came from
// ---------------------------------------------------------------------------

/// One part, read and inflated.
struct Part {
    url: String,
    size: u64,
    members: usize,
    data: Vec<u8>,
}

/// A COPY that failed before PostgreSQL saw a row: Redshift's error code
/// and message.
struct LoadFail {
    code: i32,
    message: String,
}

fn fail<T>(code: i32, message: impl Into<String>) -> Result<T, LoadFail> {
    Err(LoadFail { code, message: message.into() })
}

fn split_s3(url: &str) -> Result<(String, String), LoadFail> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    match rest.split_once('/') {
        Some((b, k)) if !b.is_empty() => Ok((b.to_owned(), k.to_owned())),
        _ => fail(8001, format!("Invalid S3 URL: {url}")),
    }
}

/// Inflates every gzip member of `data`: the bytes and the member count.
pub fn inflate(data: &[u8]) -> io::Result<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut members = 0;
    while !rest.is_empty() {
        let mut d = flate2::bufread::GzDecoder::new(rest);
        d.read_to_end(&mut out)?;
        rest = d.into_inner();
        members += 1;
    }
    Ok((out, members))
}

impl Shared {
    /// An object's bytes, `None` if there is no such key.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o
                .body
                .collect()
                .await
                .map(|b| Some(b.into_bytes().to_vec()))
                .map_err(|e| e.to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_key()) =>
            {
                Ok(None)
            }
            Err(e) => {
                Err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
            }
        }
    }

    /// The files a COPY loads: `(url, mandatory, content_length)`.
    async fn files(
        &self,
        c: &CopySpec,
    ) -> Result<Vec<(String, bool, Option<u64>)>, LoadFail> {
        let (bucket, key) = split_s3(&c.source)?;
        if !c.manifest {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let r = self
                    .s3
                    .list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&key)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| LoadFail {
                        code: 8001,
                        message: format!(
                            "S3ServiceException: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        ),
                    })?;
                for o in r.contents() {
                    if let Some(k) = o.key() {
                        out.push((format!("s3://{bucket}/{k}"), true, None));
                    }
                }
                match r.next_continuation_token() {
                    Some(t) if r.is_truncated() == Some(true) => {
                        token = Some(t.to_owned())
                    }
                    _ => break,
                }
            }
            if out.is_empty() {
                return fail(
                    8001,
                    format!("The specified S3 prefix '{key}' does not exist"),
                );
            }
            return Ok(out);
        }
        let body =
            match self.get(&bucket, &key).await {
                Ok(Some(b)) => b,
                Ok(None) => return fail(
                    8001,
                    "Problem reading manifest file - S3ServiceException:The \
                     specified key does not exist.,Status 404,Error NoSuchKey",
                ),
                Err(e) => {
                    return fail(
                        8001,
                        format!("Problem reading manifest file - {e}"),
                    )
                }
            };
        let bad = |why: &str| LoadFail {
            code: 8001,
            message: format!(
                "Manifest file is not in correct json format: {why}"
            ),
        };
        let json: Value =
            serde_json::from_slice(&body).map_err(|e| bad(&e.to_string()))?;
        let entries = json["entries"]
            .as_array()
            .ok_or_else(|| bad("no \"entries\" array"))?;
        let mut out = Vec::new();
        for e in entries {
            let url = e["url"]
                .as_str()
                .ok_or_else(|| bad("an entry without \"url\""))?;
            if !url.starts_with("s3://") {
                return Err(bad(&format!("\"url\" {url:?} is not s3://")));
            }
            let mandatory = match &e["mandatory"] {
                Value::Null => false,
                Value::Bool(b) => *b,
                _ => return Err(bad("\"mandatory\" is not a boolean")),
            };
            let length = match &e["meta"]["content_length"] {
                Value::Null => None,
                v => Some(v.as_u64().ok_or_else(|| {
                    bad("\"content_length\" is not a count")
                })?),
            };
            out.push((url.to_owned(), mandatory, length));
        }
        Ok(out)
    }

    /// Reads and inflates every file of a COPY, checking the manifest.
    async fn read_source(&self, c: &CopySpec) -> Result<Vec<Part>, LoadFail> {
        let mut parts = Vec::new();
        for (url, mandatory, length) in self.files(c).await? {
            let (bucket, key) = split_s3(&url)?;
            let data = match self.get(&bucket, &key).await {
                Ok(Some(d)) => d,
                Ok(None) if mandatory => {
                    return fail(8001, format!("Manifest file entry is mandatory but not found: {url}"))
                }
                Ok(None) => continue,
                Err(e) => return fail(8001, format!("S3ServiceException reading {url}: {e}")),
            };
            let size = data.len() as u64;
            if let Some(len) = length {
                if len != size {
                    return fail(
                        8001,
                        format!(
                            "Manifest entry {url}: meta.content_length {len} differs \
                             from the object's size {size}"
                        ),
                    );
                }
            }
            let (data, members) = if c.gzip {
                inflate(&data).map_err(|e| LoadFail {
                    code: 1216,
                    message: format!("gzip: {url}: {e}"),
                })?
            } else {
                (data, 0)
            };
            parts.push(Part { url, size, members, data });
        }
        if parts.is_empty() {
            return fail(8001, "No files found to load");
        }
        Ok(parts)
    }
}

/// The records of CSV `data`: `(first line, last line, text)`, lines
/// counted from 1 (a quoted newline is a line, as PostgreSQL counts).
fn csv_records(data: &[u8], quote: u8) -> Vec<(u64, u64, &[u8])> {
    let mut out = Vec::new();
    let (mut line, mut first, mut start, mut quoted) =
        (1u64, 1u64, 0usize, false);
    for (i, &b) in data.iter().enumerate() {
        if b == quote {
            quoted = !quoted;
        } else if b == b'\n' {
            if !quoted {
                out.push((first, line, &data[start..i]));
                start = i + 1;
                first = line + 1;
            }
            line += 1;
        }
    }
    if start < data.len() {
        out.push((first, line, &data[start..]));
    }
    out
}

/// Physical lines of a part as streamed (a newline is added after a last
/// line without one).
fn line_count(data: &[u8]) -> u64 {
    let n = data.iter().filter(|&&b| b == b'\n').count() as u64;
    n + u64::from(!data.is_empty() && !data.ends_with(b"\n"))
}

/// PostgreSQL's line `n` of the stream: the part, the record's first line
/// within the part, and the record.
fn locate(parts: &[Part], n: u64, quote: u8) -> Option<(usize, u64, String)> {
    let mut before = 0;
    for (i, p) in parts.iter().enumerate() {
        let lines = line_count(&p.data);
        if n > before && n <= before + lines {
            let local = n - before;
            let rec = csv_records(&p.data, quote)
                .into_iter()
                .find(|(a, z, _)| *a <= local && local <= *z);
            let (line, raw) = rec.map_or((local, &[][..]), |(a, _, r)| (a, r));
            return Some((i, line, String::from_utf8_lossy(raw).into_owned()));
        }
        before += lines;
    }
    None
}

/// `COPY t, line 3, column c: "v"` → (3, column, value).
fn copy_context(w: &str) -> (Option<u64>, Option<String>, Option<String>) {
    let Some(line) = w.lines().find(|l| l.starts_with("COPY ")) else {
        return (None, None, None);
    };
    let Some((_, rest)) = line.split_once(", line ") else {
        return (None, None, None);
    };
    let digits: String =
        rest.chars().take_while(char::is_ascii_digit).collect();
    let rest = &rest[digits.len()..];
    // Without a column, what follows is the whole line, not a field.
    let (column, rest) = match rest.strip_prefix(", column ") {
        Some(r) => {
            let (c, r) = r.split_once(": ").unwrap_or((r, ""));
            (Some(c.to_owned()), r)
        }
        None => (None, ""),
    };
    let value = rest
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned);
    (digits.parse().ok(), column, value)
}

/// Redshift's `err_code` and `err_reason` for a PostgreSQL COPY error
/// (codes from Redshift's load error reference; reasons abridged).
fn redshift_reason(
    code: &str,
    message: &str,
    constraint: Option<&str>,
) -> (i32, String) {
    let has = |s: &str| message.contains(s);
    let (n, reason): (i32, &str) = match code {
        "22001" => (1204, "String length exceeds DDL length"),
        "23514" if constraint.and_then(bytes_check).is_some() => {
            (1204, "String length exceeds DDL length")
        }
        "22021" => {
            (1220, "String contains invalid or unsupported UTF8 codepoints")
        }
        "22P02" if has("bigint") || has("integer") || has("smallint") => {
            (1207, "Invalid digit")
        }
        "22P02" if has("double precision") || has("real") => {
            (1213, "Invalid float")
        }
        "22P02" if has("boolean") => (1219, "Invalid boolean"),
        "22007" | "22008" => {
            (1206, "Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]")
        }
        "22003" => (1216, "Overflow"),
        "23502" => (1203, "Missing data for not-null field"),
        "22P04" if has("extra data") => (1202, "Extra column(s) found"),
        "22P04" if has("missing data") => (1214, "Delimiter not found"),
        _ => (1200, "Unknown parse error"),
    };
    let mut reason = if n == 1200 || n == 1207 || n == 1213 || n == 1219 {
        format!("{reason}. {message}")
    } else {
        reason.to_owned()
    };
    // err_reason is CHAR(100).
    while reason.chars().count() > 100 {
        reason.pop();
    }
    (n, reason)
}

fn cut(s: &str, bytes: usize) -> String {
    let mut end = s.len().min(bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The DETAIL block Redshift adds to a load error.
fn detail(error: &str, code: i32, context: &str, query: i64) -> String {
    format!(
        "\n  -----------------------------------------------\n  \
         error:  {error}\n  code:      {code}\n  context:   {context}\n  \
         query:     {query}\n  location:  redshift stand-in\n  \
         process:   stand-in\n  -----------------------------------------------\n"
    )
}

// ---------------------------------------------------------------------------
// A session: a client's statements on one backend
// ---------------------------------------------------------------------------

struct Session {
    shared: Arc<Shared>,
    backend: Backend,
    via: Via,
    serverless: bool,
    last_copy: (i64, i64),
}

impl Session {
    async fn open(
        shared: Arc<Shared>,
        via: Via,
        serverless: bool,
    ) -> io::Result<Session> {
        let backend = Backend::connect(&shared.pg, shared.opts.slices).await?;
        Ok(Session { shared, backend, via, serverless, last_copy: (-1, 0) })
    }

    fn status(&self) -> u8 {
        self.backend.status
    }

    /// Runs a query string as Redshift would: its messages (without
    /// ReadyForQuery; the status is [`Session::status`]).
    async fn query(
        &mut self,
        sql: &str,
        params: Option<&HashMap<String, String>>,
    ) -> io::Result<Vec<Msg>> {
        self.shared.event(Event::Query { via: self.via, sql: sql.to_owned() });
        let stmts = match statements(sql) {
            Ok(s) if !s.is_empty() => s,
            // PostgreSQL reports what the lexer could not read.
            _ => return self.pass(sql).await,
        };
        let cx = Context {
            serverless: self.serverless,
            last_copy: self.last_copy,
            params: params.cloned(),
        };
        let mut plans = Vec::with_capacity(stmts.len());
        for (text, toks) in &stmts {
            match plan(text, toks, &cx) {
                Ok(p) => plans.push(p),
                Err(r) => {
                    self.shared.event(Event::Rejected {
                        via: self.via,
                        code: r.code.to_owned(),
                        message: r.message.clone(),
                        sql: text.clone(),
                    });
                    self.abort_transaction().await?;
                    return Ok(vec![Msg::error(r.code, &r.message, None)]);
                }
            }
        }
        let control = ["begin", "start", "commit", "end", "rollback", "abort"];
        let tx_control = stmts.iter().any(|(_, t)| {
            t.first().is_some_and(|w| control.iter().any(|k| w.is(k)))
        });
        // A query string of several statements is one implicit transaction.
        let wrap = plans.len() > 1
            && self.status() == b'I'
            && !tx_control
            && plans.iter().any(|p| !matches!(p, Plan::Pass(_)));
        if wrap {
            self.backend.simple("BEGIN").await?;
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i < plans.len() {
            let msgs = match &plans[i] {
                Plan::Pass(_) => {
                    let mut text = String::new();
                    while let Some(Plan::Pass(t)) = plans.get(i) {
                        if !text.is_empty() {
                            text.push_str(";\n");
                        }
                        text.push_str(t);
                        i += 1;
                    }
                    self.pass(&text).await?
                }
                Plan::Copy(c) => {
                    i += 1;
                    self.copy(c).await?
                }
                Plan::Truncate(t) => {
                    i += 1;
                    if self.status() == b'T' {
                        self.backend.simple("COMMIT").await?;
                    }
                    self.pass(t).await?
                }
            };
            let failed = msgs.iter().any(|m| m.tag == b'E');
            out.extend(msgs);
            if failed {
                break;
            }
        }
        if wrap {
            let failed = out.iter().any(|m| m.tag == b'E');
            let end = self
                .backend
                .simple(if failed { "ROLLBACK" } else { "COMMIT" })
                .await?;
            out.extend(end.into_iter().filter(|m| m.tag == b'E'));
        }
        Ok(out)
    }

    async fn pass(&mut self, sql: &str) -> io::Result<Vec<Msg>> {
        let mut msgs = self.backend.simple(sql).await?;
        translate_errors(&mut msgs);
        Ok(msgs)
    }

    /// Puts a transaction in progress into the failed state, as an error
    /// of ours does on Redshift.
    async fn abort_transaction(&mut self) -> io::Result<()> {
        if self.status() != b'I' {
            self.backend
                .simple(
                    "DO $cwl$BEGIN RAISE EXCEPTION 'refused by the Redshift \
                     stand-in' USING ERRCODE = 'XX000'; END$cwl$",
                )
                .await?;
        }
        Ok(())
    }

    async fn copy(&mut self, c: &CopySpec) -> io::Result<Vec<Msg>> {
        let query = self.shared.next_query_id().await;
        self.last_copy = (query, 0);
        self.shared.hold(self.via, c).await;
        let mut log = CopyLog {
            query_id: query,
            via: self.via,
            table: c.table_name.clone(),
            source: c.source.clone(),
            manifest: c.manifest,
            parts: Vec::new(),
            rows: None,
            error: None,
        };
        let parts = match self.shared.read_source(c).await {
            Ok(p) => p,
            Err(f) => {
                self.abort_transaction().await?;
                log.error = Some(f.message.clone());
                self.shared.log.lock().unwrap().copies.push(log);
                let d = detail(&f.message, f.code, &c.source, query);
                return Ok(vec![Msg::error("XX000", &f.message, Some(&d))]);
            }
        };
        log.parts = parts
            .iter()
            .map(|p| PartLog {
                url: p.url.clone(),
                size: p.size,
                gzip_members: p.members,
                inflated: p.data.len() as u64,
            })
            .collect();
        let msgs = match self.backend.start_copy(&c.pg_copy()).await? {
            Some(failed) => failed,
            None => {
                for p in &parts {
                    self.backend.copy_data(&p.data).await?;
                    if !p.data.is_empty() && !p.data.ends_with(b"\n") {
                        self.backend.copy_data(b"\n").await?;
                    }
                }
                self.backend.finish_copy().await?
            }
        };
        let out = match msgs.iter().find(|m| m.tag == b'E') {
            Some(e) => {
                let e = self.load_error(c, query, e, &parts).await;
                log.error = e.field(b'M');
                vec![e]
            }
            None => {
                let rows = msgs
                    .iter()
                    .find(|m| m.tag == b'C')
                    .and_then(|m| tag_count(&take_cstr(&m.body, &mut 0)))
                    .unwrap_or(0);
                self.last_copy =
                    (query, i64::try_from(rows).unwrap_or(i64::MAX));
                log.rows = Some(rows);
                let info = format!(
                    "Load into table '{}' completed, {rows} record(s) loaded successfully.",
                    c.table_name
                );
                vec![
                    Msg::report(b'N', "INFO", "00000", &info, None),
                    Msg::complete("COPY"),
                ]
            }
        };
        self.shared.log.lock().unwrap().copies.push(log);
        Ok(out)
    }

    /// Records a rejected line in `stl_load_errors` (committed at once,
    /// whatever becomes of the client's transaction) and answers
    /// Redshift's error; another failure is relayed as PostgreSQL's.
    async fn load_error(
        &self,
        c: &CopySpec,
        query: i64,
        e: &Msg,
        parts: &[Part],
    ) -> Msg {
        let code = e.field(b'C').unwrap_or_default();
        let message = e.field(b'M').unwrap_or_default();
        let constraint = e.field(b'n');
        let (line, column, value) =
            copy_context(&e.field(b'W').unwrap_or_default());
        let Some(line) = line else {
            let mut e = e.clone();
            translate_errors(std::slice::from_mut(&mut e));
            return e;
        };
        let column = column
            .or_else(|| {
                constraint.as_deref().and_then(bytes_check).map(|(_, c)| c)
            })
            .unwrap_or_default();
        let (rs_code, reason) =
            redshift_reason(&code, &message, constraint.as_deref());
        let quote =
            c.quote.as_ref().and_then(|q| q.bytes().next()).unwrap_or(b'"');
        let (file, line, raw) = match locate(parts, line, quote) {
            Some((p, l, raw)) => (parts[p].url.clone(), l, raw),
            None => (String::new(), line, String::new()),
        };
        let value = cut(&value.unwrap_or_default(), 1024);
        let insert = self
            .shared
            .side
            .execute(
                "INSERT INTO public.stl_load_errors (query, filename, line_number, \
                 colname, err_code, err_reason, raw_line, raw_field_value) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &query,
                    &file,
                    &i64::try_from(line).unwrap_or(-1),
                    &cut(&column, 127),
                    &rs_code,
                    &reason,
                    &cut(&raw, 1024),
                    &value,
                ],
            )
            .await;
        if let Err(err) = insert {
            eprintln!("stand-in: insert into stl_load_errors: {err}");
        }
        let table = if self.serverless {
            "sys_load_error_detail"
        } else {
            "stl_load_errors"
        };
        let m = format!(
            "Load into table '{}' failed.  Check '{table}' system table for details.",
            c.table_name
        );
        let context = format!("{column}: {value}");
        Msg::error(
            "XX000",
            &m,
            Some(&detail(&reason, rs_code, &context, query)),
        )
    }

    async fn close(self) {
        self.backend.terminate().await;
    }
}

// ---------------------------------------------------------------------------
// The wire server
// ---------------------------------------------------------------------------

async fn wire_conn(shared: Arc<Shared>, stream: TcpStream) -> io::Result<()> {
    let (r, w) = stream.into_split();
    let mut rd = BufReader::new(r);
    let mut wr = BufWriter::new(w);
    // Startup: SSLRequest/GSSENCRequest answered N, CancelRequest
    // forwarded to PostgreSQL (the key data we relay are its own).
    loop {
        let len = rd.read_u32().await? as usize;
        if !(8..=10_000).contains(&len) {
            return Ok(());
        }
        let mut body = vec![0; len - 4];
        rd.read_exact(&mut body).await?;
        match be_u32(&body, 0) {
            80_877_103 | 80_877_104 => {
                wr.write_all(b"N").await?;
                wr.flush().await?;
            }
            80_877_102 => {
                let mut pg = TcpStream::connect((
                    shared.pg.host.as_str(),
                    shared.pg.port,
                ))
                .await?;
                pg.write_u32(16).await?;
                pg.write_all(&body).await?;
                return Ok(());
            }
            196_608 => break,
            _ => return Ok(()),
        }
    }
    if let Some(pw) = shared.opts.password.clone() {
        write_frame(&mut wr, b'R', &3u32.to_be_bytes()).await?;
        wr.flush().await?;
        let m = read_msg(&mut rd).await?;
        if m.tag != b'p' || take_cstr(&m.body, &mut 0) != pw {
            let e = Msg::error(
                "28P01",
                "password authentication failed for user",
                None,
            );
            write_msg(&mut wr, &e).await?;
            wr.flush().await?;
            return Ok(());
        }
    }
    let mut session =
        match Session::open(Arc::clone(&shared), Via::Wire, false).await {
            Ok(s) => s,
            Err(e) => {
                let e = Msg::error("08006", &format!("stand-in: {e}"), None);
                write_msg(&mut wr, &e).await?;
                wr.flush().await?;
                return Ok(());
            }
        };
    write_frame(&mut wr, b'R', &0u32.to_be_bytes()).await?;
    for (k, v) in [
        ("server_version", "8.0.2"),
        ("client_encoding", "UNICODE"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", "on"),
    ] {
        let mut b = cstring(k);
        b.extend(cstring(v));
        write_frame(&mut wr, b'S', &b).await?;
    }
    if let Some(k) = &session.backend.key {
        write_msg(&mut wr, k).await?;
    }
    write_msg(&mut wr, &Msg::ready(b'I')).await?;
    wr.flush().await?;
    let mut extended_failed = false;
    let result = loop {
        let m = match read_msg(&mut rd).await {
            Ok(m) => m,
            Err(e) => break Err(e),
        };
        match m.tag {
            b'Q' => {
                let sql = take_cstr(&m.body, &mut 0);
                let msgs = match session.query(&sql, None).await {
                    Ok(m) => m,
                    Err(e) => {
                        // The backend is gone: say so, and hang up.
                        let m = format!(
                            "stand-in: lost its PostgreSQL session: {e}"
                        );
                        let _ =
                            write_msg(&mut wr, &Msg::error("08006", &m, None))
                                .await;
                        let _ = wr.flush().await;
                        break Err(e);
                    }
                };
                for m in &msgs {
                    write_msg(&mut wr, m).await?;
                }
                write_msg(&mut wr, &Msg::ready(session.status())).await?;
                wr.flush().await?;
            }
            b'X' => break Ok(()),
            b'S' => {
                extended_failed = false;
                write_msg(&mut wr, &Msg::ready(session.status())).await?;
                wr.flush().await?;
            }
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' | b'F' => {
                if !extended_failed {
                    extended_failed = true;
                    let message = "prepared statements are not supported: Redshift \
                                   speaks an old subset of the protocol; send simple \
                                   queries";
                    let sql = if m.tag == b'P' {
                        let mut at = 0;
                        take_cstr(&m.body, &mut at);
                        take_cstr(&m.body, &mut at)
                    } else {
                        format!("<{}>", m.tag as char)
                    };
                    shared.event(Event::Rejected {
                        via: Via::Wire,
                        code: "0A000".into(),
                        message: message.into(),
                        sql,
                    });
                    session.abort_transaction().await?;
                    write_msg(&mut wr, &Msg::error("0A000", message, None))
                        .await?;
                    wr.flush().await?;
                }
            }
            // CopyData/CopyDone/CopyFail after a refused COPY: ignored,
            // as PostgreSQL does.
            b'd' | b'c' | b'f' => {}
            other => {
                let e = Msg::error(
                    "08P01",
                    &format!("unexpected message {:?}", other as char),
                    None,
                );
                write_msg(&mut wr, &e).await?;
                wr.flush().await?;
                break Ok(());
            }
        }
    };
    session.close().await;
    result
}

// ---------------------------------------------------------------------------
// The Data API
// ---------------------------------------------------------------------------

async fn http_conn(shared: Arc<Shared>, stream: TcpStream) -> io::Result<()> {
    let (r, w) = stream.into_split();
    let mut rd = BufReader::new(r);
    let mut wr = BufWriter::new(w);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if rd.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(
                    k.trim().to_ascii_lowercase(),
                    v.trim().to_owned(),
                );
            }
        }
        if headers
            .get("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            wr.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            wr.flush().await?;
        }
        let mut body = Vec::new();
        if headers
            .get("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                rd.read_line(&mut size).await?;
                let n = usize::from_str_radix(
                    size.trim().split(';').next().unwrap_or(""),
                    16,
                )
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "chunk size")
                })?;
                let mut chunk = vec![0; n + 2];
                rd.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body.resize(n, 0);
            rd.read_exact(&mut body).await?;
        }
        let target = headers.get("x-amz-target").cloned().unwrap_or_default();
        let (status, answer) = data_api(&shared, &target, &body);
        let text = answer.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             Content-Length: {}\r\nx-amzn-RequestId: {}\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            text.len(),
            uuid()
        );
        if let Some(t) = answer["__type"].as_str() {
            head.push_str(&format!("x-amzn-ErrorType: {t}\r\n"));
        }
        head.push_str("\r\n");
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(text.as_bytes()).await?;
        wr.flush().await?;
        if headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return Ok(());
        }
    }
}

fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ N.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A result set: columns (name, type OID) and rows of text values.
#[derive(Clone, Debug, Default)]
struct ResultSet {
    columns: Vec<(String, u32)>,
    rows: Vec<Vec<Option<String>>>,
}

/// One SQL string of a statement.
#[derive(Clone, Debug)]
struct Sub {
    sql: String,
    status: &'static str,
    error: Option<String>,
    result: Option<ResultSet>,
    rows: i64,
    size: i64,
    query_id: i64,
    created: f64,
    updated: f64,
}

#[derive(Clone, Debug)]
struct Stmt {
    id: String,
    request: Value,
    batch: bool,
    status: &'static str,
    error: Option<String>,
    subs: Vec<Sub>,
    pid: i64,
    created: f64,
    updated: f64,
}

#[derive(Default)]
struct Api {
    stmts: HashMap<String, Stmt>,
    /// ClientToken → (the request, its statement id).
    tokens: HashMap<String, (Value, String)>,
}

struct ApiErr {
    kind: &'static str,
    message: String,
}

fn validation(message: impl Into<String>) -> ApiErr {
    ApiErr { kind: "ValidationException", message: message.into() }
}

fn not_found(message: impl Into<String>) -> ApiErr {
    ApiErr { kind: "ResourceNotFoundException", message: message.into() }
}

fn data_api(shared: &Arc<Shared>, target: &str, body: &[u8]) -> (u16, Value) {
    let op = target.strip_prefix("RedshiftData.").unwrap_or(target).to_owned();
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let r = if !req.is_object() {
        Err(ApiErr {
            kind: "SerializationException",
            message: "the body is not a JSON object".into(),
        })
    } else {
        match op.as_str() {
            "ExecuteStatement" => execute(shared, &req, false),
            "BatchExecuteStatement" => execute(shared, &req, true),
            "DescribeStatement" => describe(shared, &req),
            "GetStatementResult" => statement_result(shared, &req),
            _ => Err(validation(format!(
                "unknown operation {target:?}: the stand-in serves ExecuteStatement, \
                 BatchExecuteStatement, DescribeStatement and GetStatementResult"
            ))),
        }
    };
    let (status, answer) = match r {
        Ok(v) => (200, v),
        Err(e) => (
            400,
            json!({"__type": e.kind, "Message": e.message, "message": e.message}),
        ),
    };
    shared.log.lock().unwrap().calls.push(ApiCall { op, body: req, status });
    (status, answer)
}

fn execute(
    shared: &Arc<Shared>,
    req: &Value,
    batch: bool,
) -> Result<Value, ApiErr> {
    let cluster = req["ClusterIdentifier"].as_str();
    let workgroup = req["WorkgroupName"].as_str();
    if cluster.is_some() == workgroup.is_some() {
        return Err(validation(
            "Either ClusterIdentifier or WorkgroupName is required, not both",
        ));
    }
    if req["Database"].as_str().is_none_or(str::is_empty) {
        return Err(validation("Database is required"));
    }
    for k in ["SessionId", "SessionKeepAliveSeconds"] {
        if !req[k].is_null() {
            return Err(validation(format!(
                "{k}: sessions are not served by the stand-in"
            )));
        }
    }
    if req["ResultFormat"].as_str().is_some_and(|f| f != "JSON") {
        return Err(validation(
            "ResultFormat CSV is not served by the stand-in",
        ));
    }
    let sqls: Vec<String> = if batch {
        let list = req["Sqls"].as_array().filter(|l| !l.is_empty());
        let list = list.ok_or_else(|| {
            validation("Sqls must list at least one statement")
        })?;
        list.iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| validation("Sqls: not a string"))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![req["Sql"]
            .as_str()
            .ok_or_else(|| validation("Sql is required"))?
            .to_owned()]
    };
    if let Some(s) = sqls.iter().find(|s| s.len() > SQL_LIMIT) {
        return Err(validation(format!(
            "the SQL statement is {} bytes; the limit is 100 KB",
            s.len()
        )));
    }
    let autocommit = match req["ExecutionMode"].as_str() {
        None | Some("TRANSACTION") => false,
        Some("AUTO_COMMIT") => true,
        Some(m) => return Err(validation(format!("ExecutionMode {m:?}"))),
    };
    let params = match req["Parameters"].as_array() {
        None => None,
        Some(list) => {
            let mut p = HashMap::new();
            for x in list {
                match (x["name"].as_str(), x["value"].as_str()) {
                    (Some(n), Some(v)) => p.insert(n.to_owned(), v.to_owned()),
                    _ => {
                        return Err(validation(
                            "Parameters: each needs name and value",
                        ))
                    }
                };
            }
            Some(p)
        }
    };
    let mut api = shared.api.lock().unwrap();
    let token = req["ClientToken"].as_str().map(str::to_owned);
    if let Some(t) = &token {
        if let Some((prev, id)) = api.tokens.get(t) {
            if prev != req {
                return Err(validation(format!(
                    "ClientToken {t:?} was used with a different request"
                )));
            }
            return Ok(execute_answer(&api.stmts[id]));
        }
    }
    let t = now();
    let id = uuid();
    let subs = sqls
        .iter()
        .map(|sql| Sub {
            sql: sql.clone(),
            status: "SUBMITTED",
            error: None,
            result: None,
            rows: -1,
            size: 0,
            query_id: 0,
            created: t,
            updated: t,
        })
        .collect();
    let stmt = Stmt {
        id: id.clone(),
        request: req.clone(),
        batch,
        status: "SUBMITTED",
        error: None,
        subs,
        pid: 0,
        created: t,
        updated: t,
    };
    let answer = execute_answer(&stmt);
    api.stmts.insert(id.clone(), stmt);
    if let Some(t) = token {
        api.tokens.insert(t, (req.clone(), id.clone()));
    }
    drop(api);
    let run = run_statement(
        Arc::clone(shared),
        id,
        sqls,
        params,
        batch && !autocommit,
        workgroup.is_some(),
    );
    let mut tasks = shared.tasks.lock().unwrap();
    while tasks.try_join_next().is_some() {}
    tasks.spawn(run);
    Ok(answer)
}

fn execute_answer(s: &Stmt) -> Value {
    let mut v = json!({"Id": s.id, "CreatedAt": s.created});
    for k in [
        "ClusterIdentifier",
        "WorkgroupName",
        "Database",
        "DbUser",
        "SecretArn",
    ] {
        if !s.request[k].is_null() {
            v[k] = s.request[k].clone();
        }
    }
    v
}

impl Shared {
    fn update(&self, id: &str, f: impl FnOnce(&mut Stmt)) {
        if let Some(s) = self.api.lock().unwrap().stmts.get_mut(id) {
            f(s);
            s.updated = now();
        }
    }
}

/// What one SQL string's messages come to.
struct Outcome {
    error: Option<String>,
    result: Option<ResultSet>,
    rows: i64,
    size: i64,
}

fn outcome(msgs: &[Msg]) -> Outcome {
    let mut o = Outcome { error: None, result: None, rows: -1, size: 0 };
    let mut cur: Option<ResultSet> = None;
    let mut copied = None;
    for m in msgs {
        match m.tag {
            b'T' => {
                let n = usize::try_from(be_i16(&m.body, 0)).unwrap_or(0);
                let mut at = 2;
                let mut columns = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = take_cstr(&m.body, &mut at);
                    let oid = be_u32(&m.body, at + 6);
                    at += 18;
                    columns.push((name, oid));
                }
                cur = Some(ResultSet { columns, rows: Vec::new() });
            }
            b'D' => {
                let n = usize::try_from(be_i16(&m.body, 0)).unwrap_or(0);
                let mut at = 2;
                let mut row = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = be_u32(&m.body, at) as i32;
                    at += 4;
                    if len < 0 {
                        row.push(None);
                    } else {
                        let len = len as usize;
                        let v = m.body.get(at..at + len).unwrap_or_default();
                        o.size += len as i64;
                        row.push(Some(
                            String::from_utf8_lossy(v).into_owned(),
                        ));
                        at += len;
                    }
                }
                if let Some(c) = cur.as_mut() {
                    c.rows.push(row);
                }
            }
            b'N' => {
                let text = m.field(b'M').unwrap_or_default();
                copied = text
                    .split(" completed, ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|n| n.parse::<i64>().ok());
            }
            b'C' => {
                let tag = take_cstr(&m.body, &mut 0);
                match cur.take() {
                    Some(c) => {
                        o.rows = c.rows.len() as i64;
                        o.result = Some(c);
                    }
                    None => {
                        o.result = None;
                        o.rows = match tag_count(&tag) {
                            Some(n) => i64::try_from(n).unwrap_or(-1),
                            None if tag == "COPY" => {
                                copied.take().unwrap_or(-1)
                            }
                            None => -1,
                        };
                    }
                }
            }
            b'E' => {
                o.error = Some(format!(
                    "ERROR: {}",
                    m.field(b'M').unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    o
}

async fn run_statement(
    shared: Arc<Shared>,
    id: String,
    sqls: Vec<String>,
    params: Option<HashMap<String, String>>,
    transaction: bool,
    serverless: bool,
) {
    tokio::time::sleep(shared.opts.submit_delay).await;
    shared.update(&id, |s| s.status = "PICKED");
    let mut session =
        match Session::open(Arc::clone(&shared), Via::DataApi, serverless)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                shared.update(&id, |s| {
                    s.status = "FAILED";
                    s.error = Some(format!("ERROR: stand-in: {e}"));
                });
                return;
            }
        };
    let pid = session.backend.pid;
    shared.update(&id, |s| {
        s.status = "STARTED";
        s.pid = pid;
    });
    let mut failed: Option<String> = None;
    if transaction {
        if let Err(e) = session.backend.simple("BEGIN").await {
            failed = Some(format!("ERROR: stand-in: {e}"));
        }
    }
    for (n, sql) in sqls.iter().enumerate() {
        if failed.is_some() {
            break;
        }
        shared.update(&id, |s| {
            s.subs[n].status = "STARTED";
            s.subs[n].updated = now();
        });
        let before = session.last_copy.0;
        let o = match session.query(sql, params.as_ref()).await {
            Ok(msgs) => outcome(&msgs),
            Err(e) => Outcome {
                error: Some(format!("ERROR: stand-in: {e}")),
                result: None,
                rows: -1,
                size: 0,
            },
        };
        let query_id = if session.last_copy.0 == before {
            0
        } else {
            session.last_copy.0
        };
        let error = o.error.clone();
        shared.update(&id, |s| {
            let sub = &mut s.subs[n];
            sub.status = if error.is_some() { "FAILED" } else { "FINISHED" };
            sub.error = error.clone();
            sub.result = o.result;
            sub.rows = o.rows;
            sub.size = o.size;
            sub.query_id = query_id;
            sub.updated = now();
        });
        failed = error;
    }
    if transaction {
        let end = if failed.is_some() { "ROLLBACK" } else { "COMMIT" };
        match session.backend.simple(end).await {
            Ok(msgs) if failed.is_none() => failed = outcome(&msgs).error,
            Err(e) if failed.is_none() => {
                failed = Some(format!("ERROR: stand-in: {e}"))
            }
            _ => {}
        }
    }
    shared.update(&id, |s| {
        for sub in s
            .subs
            .iter_mut()
            .filter(|x| !matches!(x.status, "FINISHED" | "FAILED"))
        {
            sub.status = "ABORTED";
        }
        s.status = if failed.is_some() { "FAILED" } else { "FINISHED" };
        s.error = failed;
    });
    session.close().await;
}

/// `id` or `id:N` → (statement, sub-statement index if given).
fn find<'a>(
    api: &'a Api,
    id: &str,
) -> Result<(&'a Stmt, Option<usize>), ApiErr> {
    let missing = || not_found(format!("Query does not exist: {id}"));
    if let Some(s) = api.stmts.get(id) {
        return Ok((s, None));
    }
    let (base, n) = id.rsplit_once(':').ok_or_else(missing)?;
    let s = api.stmts.get(base).ok_or_else(missing)?;
    let n: usize = n.parse().map_err(|_| missing())?;
    if !s.batch || n == 0 || n > s.subs.len() {
        return Err(missing());
    }
    Ok((s, Some(n - 1)))
}

fn sub_json(s: &Stmt, n: usize) -> Value {
    let x = &s.subs[n];
    let mut v = json!({
        "Id": format!("{}:{}", s.id, n + 1),
        "Status": x.status,
        "HasResultSet": x.result.is_some(),
        "ResultRows": x.rows,
        "ResultSize": x.size,
        "QueryString": x.sql,
        "RedshiftQueryId": x.query_id,
        "CreatedAt": x.created,
        "UpdatedAt": x.updated,
        "Duration": ((x.updated - x.created) * 1e9) as i64,
    });
    if let Some(e) = &x.error {
        v["Error"] = json!(e);
    }
    v
}

fn describe(shared: &Arc<Shared>, req: &Value) -> Result<Value, ApiErr> {
    let id = req["Id"].as_str().ok_or_else(|| validation("Id is required"))?;
    let api = shared.api.lock().unwrap();
    let (s, sub) = find(&api, id)?;
    if let Some(n) = sub {
        return Ok(sub_json(s, n));
    }
    let mut v = json!({
        "Id": s.id,
        "Status": s.status,
        "CreatedAt": s.created,
        "UpdatedAt": s.updated,
        "Duration": ((s.updated - s.created) * 1e9) as i64,
        "RedshiftPid": s.pid,
        "HasResultSet": s.subs.iter().any(|x| x.result.is_some()),
        "QueryString": s.subs.iter().map(|x| x.sql.as_str()).collect::<Vec<_>>().join("; "),
    });
    if s.batch {
        v["ResultRows"] = json!(-1);
        v["RedshiftQueryId"] = json!(0);
        v["SubStatements"] =
            (0..s.subs.len()).map(|n| sub_json(s, n)).collect();
    } else {
        v["ResultRows"] = json!(s.subs[0].rows);
        v["ResultSize"] = json!(s.subs[0].size);
        v["RedshiftQueryId"] = json!(s.subs[0].query_id);
    }
    if let Some(e) = &s.error {
        v["Error"] = json!(e);
    }
    for k in [
        "ClusterIdentifier",
        "WorkgroupName",
        "Database",
        "DbUser",
        "SecretArn",
    ] {
        if !s.request[k].is_null() {
            v[k] = s.request[k].clone();
        }
    }
    if let Some(p) = s.request.get("Parameters") {
        v["QueryParameters"] = p.clone();
    }
    Ok(v)
}

fn type_name(oid: u32) -> String {
    let n = match oid {
        16 => "bool",
        18 => "char",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        26 => "oid",
        114 => "json",
        700 => "float4",
        701 => "float8",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1700 => "numeric",
        3802 => "super",
        _ => return format!("oid{oid}"),
    };
    n.to_owned()
}

/// A value as the Data API types it (by the column's PostgreSQL type).
fn field(v: Option<&String>, oid: u32) -> Value {
    let Some(s) = v else { return json!({"isNull": true}) };
    match oid {
        16 => json!({"booleanValue": s == "t"}),
        20 | 21 | 23 | 26 => match s.parse::<i64>() {
            Ok(n) => json!({"longValue": n}),
            Err(_) => json!({"stringValue": s}),
        },
        700 | 701 => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => json!({"doubleValue": f}),
            _ => json!({"stringValue": s}),
        },
        _ => json!({"stringValue": s}),
    }
}

fn statement_result(
    shared: &Arc<Shared>,
    req: &Value,
) -> Result<Value, ApiErr> {
    let id = req["Id"].as_str().ok_or_else(|| validation("Id is required"))?;
    let api = shared.api.lock().unwrap();
    let (s, sub) = find(&api, id)?;
    let n = match (sub, s.batch) {
        (Some(n), _) => n,
        (None, false) => 0,
        (None, true) => {
            return Err(validation(format!(
                "{id} is a batch: ask for a sub-statement's result ({id}:N)"
            )))
        }
    };
    let x = &s.subs[n];
    if x.status != "FINISHED" {
        return Err(validation(format!(
            "Query has not finished (status {}): check DescribeStatement",
            x.status
        )));
    }
    let Some(r) = &x.result else {
        return Err(not_found(
            "Query does not have result. Please check query status with DescribeStatement.",
        ));
    };
    let records: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            r.columns
                .iter()
                .enumerate()
                .map(|(i, (_, oid))| {
                    field(row.get(i).and_then(Option::as_ref), *oid)
                })
                .collect()
        })
        .collect();
    let columns: Vec<Value> = r
        .columns
        .iter()
        .map(|(name, oid)| json!({"name": name, "label": name, "typeName": type_name(*oid)}))
        .collect();
    Ok(
        json!({"Records": records, "ColumnMetadata": columns, "TotalNumRows": r.rows.len()}),
    )
}
