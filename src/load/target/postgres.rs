//! Loading batches into PostgreSQL: ledger claim, `COPY … FROM STDIN`,
//! quarantine, commit, all in one transaction, retried as a whole.
//!
//! # One batch, one transaction
//!
//! ```sql
//! BEGIN;
//! -- 1. claim: keys sorted, so concurrent loaders lock in the same order
//! INSERT INTO "ledger" AS l (…) SELECT … FROM unnest($1::text[], …)
//!     ON CONFLICT ("key") DO NOTHING RETURNING l."key";
//! -- 2. rows of the claimed objects only, one Bytes per object (no copy)
//! COPY "schema"."table" ("c1", …) FROM STDIN WITH (FORMAT csv);
//! -- 3. rejected events and undecodable ranges
//! INSERT INTO "quarantine" (…) SELECT … FROM unnest($1::text[], …);
//! COMMIT;
//! ```
//!
//! A concurrent loader inserting the same key waits on the first one's
//! uncommitted ledger row; when that commits, its `INSERT` returns no row
//! for the key and it skips the object (`skipped_duplicate`). If the first
//! one rolls back, the second claims the key. The row count `COPY` reports
//! must equal the sum of the claimed objects' `rows`, or the batch rolls
//! back.
//!
//! With [`CopyTarget::dedup_on`] (`--dedup-events`), step 2 copies into a
//! temporary staging table and inserts from it:
//!
//! ```sql
//! CREATE TEMP TABLE "cwl_copy_stage" ON COMMIT DROP AS
//!     SELECT "c1", … FROM "schema"."table" WITH NO DATA;
//! COPY "cwl_copy_stage" ("c1", …) FROM STDIN WITH (FORMAT csv);
//! INSERT INTO "schema"."table" ("c1", …) SELECT "c1", … FROM "cwl_copy_stage"
//!     ON CONFLICT ("id") DO NOTHING;
//! ```
//!
//! (`CREATE … AS … WITH NO DATA` rather than `LIKE`: it copies the listed
//! columns' types and no `NOT NULL`, so target columns that the CSV leaves
//! to their defaults do not fail in the staging table.) Duplicates are
//! `staged − inserted`; `ON CONFLICT ("id")` needs a unique index on the id
//! column, which [`PgLoader::ensure_unique_index`] creates.
//!
//! # Retries
//!
//! Transient failures (connection refused, reset or closed; SQLSTATE class
//! `08`; `57P01`–`57P03` server shutdown; `53300` too many connections;
//! `40001` serialization failure; `40P01` deadlock) roll the transaction
//! back; the loader reconnects, waits with exponential backoff
//! and retries the whole batch, within [`RetryPolicy`]. The transaction
//! guarantees no partial batch. If a `COMMIT`'s reply is lost, the retry
//! finds the keys already in the ledger under the same batch id and counts
//! them as loaded, not as duplicates. Other errors fail at once, naming the
//! batch's keys.
//!
//! Nothing is committed in `Drop`: a dropped [`PgLoader`] or an abandoned
//! `load_batch` future rolls back.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::load::pgconn::{driver_detail, ConnError, PgSettings};
use crate::load::ObjectRows;
use crate::sql::{
    self, dedup, quote_columns, quote_ident, IdentError, LedgerTables,
    TableName,
};

/// Largest `CopyData` message sent: big objects go out as zero-copy
/// slices of this size.
const COPY_CHUNK: usize = 4 << 20;

/// A retry whose wait before the next attempt is this long is logged as
/// a warning; shorter ones at debug level.
const LONG_RETRY: Duration = Duration::from_secs(5);

/// How many keys an error message lists before "and N more".
const KEYS_SHOWN: usize = 5;

/// The keys of a failed batch, for error messages (lists the first five).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyList(Vec<String>);

impl KeyList {
    /// All the keys.
    #[must_use]
    pub fn keys(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for KeyList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.0.iter().take(KEYS_SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k:?}")?;
        }
        if self.0.len() > KEYS_SHOWN {
            write!(f, " and {} more", self.0.len() - KEYS_SHOWN)?;
        }
        Ok(())
    }
}

/// An error of the PostgreSQL loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgLoadError {
    /// Connecting failed (the message names the target, never the
    /// password).
    #[error(transparent)]
    Connect(#[from] ConnError),
    /// A table or column name cannot be quoted.
    #[error(transparent)]
    Ident(#[from] IdentError),
    /// A statement failed. `op` names it; `keys` are the batch's objects.
    #[error("{op} failed for object(s) {keys}: {}", driver_detail(.source))]
    Sql {
        /// What was being done (`claim`, `COPY`, `COMMIT`, …).
        op: &'static str,
        /// The keys of the batch (empty outside a batch).
        keys: KeyList,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// `COPY` loaded a different number of rows than the converter wrote;
    /// the batch was rolled back.
    #[error(
        "COPY loaded {copied} rows but the objects have {expected}; batch \
         rolled back: {keys}"
    )]
    RowCount {
        /// Sum of the claimed objects' `rows`.
        expected: u64,
        /// Rows `COPY` reported.
        copied: u64,
        /// The claimed keys.
        keys: KeyList,
    },
    /// A count does not fit PostgreSQL's `bigint`.
    #[error("{what} of {key:?} is too large for bigint: {value}")]
    OutOfRange {
        /// The object.
        key: String,
        /// The field.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A transient failure persisted through every attempt.
    #[error(
        "gave up after {attempts} attempts in {:.1}s: {last}",
        elapsed.as_secs_f64()
    )]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Time spent, backoff included.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        last: Box<PgLoadError>,
    },
    /// An object's CSV could not be read back from its temporary file.
    #[error(
        "reading the CSV of {key:?} back from its temporary file: {source}"
    )]
    Spill {
        /// The object.
        key: String,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
}

impl PgLoadError {
    /// Whether retrying (after reconnecting if needed) may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            PgLoadError::Connect(ConnError::Connect { source, .. }) => {
                is_transient_pg(source)
            }
            PgLoadError::Sql { source, .. } => is_transient_pg(source),
            _ => false,
        }
    }

    /// The SQLSTATE, if the server reported an error.
    #[must_use]
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgLoadError::Connect(ConnError::Connect { source, .. })
            | PgLoadError::Sql { source, .. } => {
                source.code().map(SqlState::code)
            }
            PgLoadError::RetriesExhausted { last, .. } => last.sqlstate(),
            _ => None,
        }
    }
}

/// Transient: the connection broke, the server is going away, or the
/// transaction lost a race that a retry can win.
fn is_transient_pg(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let c = code.code();
        return c.starts_with("08") && c != "08P01"
            || matches!(
                c,
                "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "53300"
            );
    }
    if e.is_closed() {
        return true;
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::UnexpectedEof
                    | K::TimedOut
                    | K::NotConnected
                    | K::AddrNotAvailable
                    | K::HostUnreachable
                    | K::NetworkUnreachable
            );
        }
        cause = c.source();
    }
    // A connect timeout has no cause.
    e.to_string().starts_with("timeout")
}

/// How transient failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 6; 0 counts as 1.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time. Default 200 ms.
    pub initial_backoff: Duration,
    /// Longest wait between attempts. Default 10 s.
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt
    /// (backoff included). Default 120 s.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// Loader settings.
#[derive(Clone, Debug, Default)]
pub struct LoaderOptions {
    /// Ledger and quarantine tables.
    pub tables: LedgerTables,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
}

/// The table a batch is copied into, with SQL prepared once.
#[derive(Clone, Debug)]
pub struct CopyTarget {
    table: TableName,
    columns: Vec<String>,
    dedup_on: Option<String>,
    column_list: String,
    ledger_name: String,
}

impl CopyTarget {
    /// Rows go to `columns` of `table`, in the CSV's order.
    ///
    /// # Errors
    ///
    /// [`IdentError`] for an empty column name or one holding NUL, or
    /// [`IdentError::Empty`] for no columns.
    pub fn new(
        table: TableName,
        columns: &[String],
    ) -> Result<CopyTarget, IdentError> {
        if columns.is_empty() {
            return Err(IdentError::Empty);
        }
        let column_list = quote_columns(columns)?;
        let ledger_name = match table.schema() {
            Some(s) => format!("{s}.{}", table.name()),
            None => table.name().to_owned(),
        };
        Ok(CopyTarget {
            table,
            columns: columns.to_vec(),
            dedup_on: None,
            column_list,
            ledger_name,
        })
    }

    /// `--dedup-events`: skip rows whose `id_column` value is already in
    /// the table (needs a unique index on it; see
    /// [`PgLoader::ensure_unique_index`]).
    ///
    /// # Errors
    ///
    /// [`IdentError`] for an empty name or one holding NUL.
    pub fn dedup_on(mut self, id_column: &str) -> Result<Self, IdentError> {
        quote_ident(id_column)?;
        self.dedup_on = Some(id_column.to_owned());
        Ok(self)
    }

    /// The name the ledger records this target's objects under:
    /// `schema.table` as given, until [`CopyTarget::set_ledger_name`] sets
    /// the name the server resolved (see [`PgLoader::resolve_table`]), so
    /// that `events` and `public.events` share one ledger.
    #[must_use]
    pub fn ledger_name(&self) -> &str {
        &self.ledger_name
    }

    /// Sets [`CopyTarget::ledger_name`].
    pub fn set_ledger_name(&mut self, name: String) {
        self.ledger_name = name;
    }

    /// The quoted column list, `"a", "b"`.
    #[must_use]
    pub fn column_list(&self) -> &str {
        &self.column_list
    }

    /// The table.
    #[must_use]
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The columns, in CSV order.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The `--dedup-events` id column, if set.
    #[must_use]
    pub fn dedup_column(&self) -> Option<&str> {
        self.dedup_on.as_deref()
    }

    fn copy_sql(&self, into: &str) -> String {
        format!(
            "COPY {into} ({}) FROM STDIN WITH (FORMAT csv)",
            self.column_list
        )
    }
}

/// What [`PgLoader::load_batch`] committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "add the outcome to the LoadSummary, and act only on `loaded` keys"]
pub struct BatchOutcome {
    /// The batch id recorded in the ledger and quarantine.
    pub batch_id: String,
    /// Keys committed by this batch (safe to acknowledge, e.g. delete the
    /// SQS message).
    pub loaded: Vec<String>,
    /// Keys skipped: already in the ledger (committed by another loader
    /// first), or repeated within the batch. Also safe to acknowledge.
    pub skipped_duplicate: Vec<String>,
    /// Events of the loaded objects.
    pub events: u64,
    /// Rows `COPY` loaded (into the staging table with dedup).
    pub rows_copied: u64,
    /// Rows inserted into the target table.
    pub rows_inserted: u64,
    /// Rows skipped because their id was already present (dedup only).
    pub duplicate_events: u64,
    /// Filtered events of the loaded objects.
    pub filtered: u64,
    /// Rejected events of the loaded objects.
    pub rejected: u64,
    /// Undecodable ranges of the loaded objects.
    pub errors: u64,
    /// Quarantine rows written.
    pub quarantined: u64,
    /// Attempts it took (1 if no retry).
    pub attempts: u32,
}

/// A connection that reopens itself.
///
/// A connection is used again only after an operation on it succeeded.
/// After any failure, or if an operation's future was dropped midway
/// (`busy` still set), it is replaced: a failed or abandoned `COPY` can
/// leave the protocol out of step (tokio-postgres answers a `COPY` that
/// failed to start with `CopyFail` + `Sync`, whose extra `ReadyForQuery`
/// the next query would receive).
struct Conn {
    settings: PgSettings,
    client: Option<Client>,
    busy: bool,
}

impl Conn {
    /// The client for the next operation, reconnecting if needed; marks
    /// the connection busy until [`Conn::done`].
    async fn client(&mut self) -> Result<&mut Client, PgLoadError> {
        let reuse = !self.busy;
        let client = match self.client.take() {
            Some(c) if reuse && !c.is_closed() => c,
            _ => self.settings.connect().await?,
        };
        self.busy = true;
        Ok(self.client.insert(client))
    }

    /// The operation succeeded: the connection may be reused.
    fn done(&mut self) {
        self.busy = false;
    }

    /// The operation failed: the next one reconnects.
    fn discard(&mut self) {
        self.client = None;
        self.busy = false;
    }
}

/// Loads batches into PostgreSQL exactly once. See the module docs.
pub struct PgLoader {
    conn: Conn,
    options: LoaderOptions,
    retries: u64,
}

impl fmt::Debug for PgLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLoader")
            .field("target", &self.conn.settings.to_string())
            .field("connected", &self.conn.client.is_some())
            .field("options", &self.options)
            .field("retries", &self.retries)
            .finish()
    }
}

static BATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// A batch id unique across processes and time: nanoseconds since the
/// epoch, process id and a per-process counter, in hex.
pub(crate) fn new_batch_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = BATCH_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{seq:x}", std::process::id())
}

fn to_i64(key: &str, what: &'static str, v: u64) -> Result<i64, PgLoadError> {
    i64::try_from(v).map_err(|_| PgLoadError::OutOfRange {
        key: key.to_owned(),
        what,
        value: v,
    })
}

fn sql_err<'k>(
    op: &'static str,
    keys: &'k [String],
) -> impl FnOnce(tokio_postgres::Error) -> PgLoadError + 'k {
    move |source| PgLoadError::Sql { op, keys: KeyList(keys.to_vec()), source }
}

/// How concurrent `CREATE … IF NOT EXISTS` statements collide: on a
/// catalog unique index, or, when the winner commits between the loser's
/// `IF NOT EXISTS` check and its catalog insert, with "relation (or
/// schema) already exists". Either way the object exists.
fn is_create_race(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let code = db.code();
        code == &SqlState::DUPLICATE_TABLE
            || code == &SqlState::DUPLICATE_SCHEMA
            || code == &SqlState::DUPLICATE_OBJECT
            || code == &SqlState::UNIQUE_VIOLATION
                && matches!(
                    db.constraint(),
                    Some(
                        "pg_type_typname_nsp_index"
                            | "pg_namespace_nspname_index"
                            | "pg_class_relname_nsp_index"
                    )
                )
    })
}

/// Retry bookkeeping for one operation.
struct Retry {
    policy: RetryPolicy,
    start: Instant,
    backoff: Duration,
    attempt: u32,
}

impl Retry {
    fn new(policy: &RetryPolicy) -> Retry {
        Retry {
            policy: *policy,
            start: Instant::now(),
            backoff: policy.initial_backoff,
            attempt: 0,
        }
    }

    fn next_attempt(&mut self) -> u32 {
        self.attempt = self.attempt.saturating_add(1);
        self.attempt
    }

    /// After a failed attempt: `Err` to give up with, or `Ok` once the
    /// backoff has passed and the next attempt may start.
    async fn failed(
        &mut self,
        conn: &mut Conn,
        retries: &mut u64,
        what: &str,
        err: PgLoadError,
    ) -> Result<(), PgLoadError> {
        conn.discard();
        if !err.is_transient() {
            return Err(err);
        }
        let elapsed = self.start.elapsed();
        if self.attempt >= self.policy.max_attempts.max(1)
            || elapsed.saturating_add(self.backoff) > self.policy.max_elapsed
        {
            return Err(PgLoadError::RetriesExhausted {
                attempts: self.attempt,
                elapsed,
                last: Box::new(err),
            });
        }
        // A short wait is not worth a line of its own (a failure for good
        // says how often and how long it was tried); a long one is, or
        // the run looks stuck.
        let backoff_ms =
            u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX);
        if self.backoff >= LONG_RETRY {
            tracing::warn!(
                attempt = self.attempt,
                backoff_ms,
                error = %err,
                "{what}: transient failure, retrying"
            );
        } else {
            tracing::debug!(
                attempt = self.attempt,
                backoff_ms,
                error = %err,
                "{what}: transient failure, retrying"
            );
        }
        *retries = retries.saturating_add(1);
        tokio::time::sleep(self.backoff).await;
        self.backoff =
            self.backoff.saturating_mul(2).min(self.policy.max_backoff);
        Ok(())
    }
}

/// Runs `$op` (an expression using the client `$c` and the attempt
/// number `$n`, giving a future of `Result<T, PgLoadError>`) until it
/// succeeds, fails for good, or the policy runs out. Evaluates to
/// `Result<(T, attempts), PgLoadError>`.
///
/// A macro rather than a function taking an async closure: that keeps
/// the caller's future `Send` (higher-ranked closure lifetimes defeat the
/// auto-trait inference).
macro_rules! retrying {
    ($conn:expr, $policy:expr, $retries:expr, $what:expr,
     |$c:ident, $n:ident| $op:expr) => {{
        let mut retry = Retry::new($policy);
        loop {
            let $n = retry.next_attempt();
            let result = match $conn.client().await {
                Ok($c) => $op.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => {
                    $conn.done();
                    break Ok((v, $n));
                }
                Err(e) => {
                    if let Err(e) =
                        retry.failed(&mut $conn, $retries, $what, e).await
                    {
                        break Err(e);
                    }
                }
            }
        }
    }};
}

/// Runs `CREATE … IF NOT EXISTS` statements. A concurrent loader's
/// identical statement can commit between this one's existence check and
/// its catalog insert; the statement (and the rest of its implicit
/// transaction) then fails with a [create race](is_create_race), and runs
/// again, now finding the objects.
/// The advisory lock key that serialises cwl-copy's DDL ("cwlcopy").
const DDL_LOCK_KEY: i64 = 0x0063_776c_636f_7079;

async fn run_ddl(c: &mut Client, stmts: &[String]) -> Result<(), PgLoadError> {
    /// Reruns after a lost race; each one means another loader committed.
    const RACE_RERUNS: u32 = 3;
    for stmt in stmts {
        // One simple query is one implicit transaction: the advisory lock
        // makes concurrent loaders run their DDL one after the other, so
        // `IF NOT EXISTS` sees the other's committed catalog rows instead
        // of racing into 42P07 / 42710 / 23505. The reruns stay as a
        // fallback for DDL run by other tools.
        let locked =
            format!("SELECT pg_advisory_xact_lock({DDL_LOCK_KEY});\n{stmt}");
        let mut reruns = 0;
        loop {
            match c.batch_execute(&locked).await {
                Ok(()) => break,
                Err(e) if is_create_race(&e) && reruns < RACE_RERUNS => {
                    reruns += 1;
                }
                Err(e) => return Err(sql_err("DDL", &[])(e)),
            }
        }
    }
    Ok(())
}

async fn resolve(
    c: &mut Client,
    quoted: &str,
) -> Result<Option<String>, PgLoadError> {
    let row = c
        .query_one(sql::RESOLVE_TABLE_SQL, &[&quoted])
        .await
        .map_err(sql_err("table lookup", &[]))?;
    row.try_get::<_, Option<String>>(0).map_err(sql_err("table lookup", &[]))
}

async fn query_bool(c: &mut Client, q: &str) -> Result<bool, PgLoadError> {
    let row = c.query_one(q, &[]).await.map_err(sql_err("query", &[]))?;
    row.try_get::<_, bool>(0).map_err(sql_err("query", &[]))
}

async fn lookup_keys(
    c: &mut Client,
    sql: &str,
    keys: &[String],
    target: &str,
) -> Result<HashSet<String>, PgLoadError> {
    let rows = c
        .query(sql, &[&keys, &target])
        .await
        .map_err(sql_err("ledger lookup", &[]))?;
    rows.iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<HashSet<String>, _>>()
        .map_err(sql_err("ledger lookup", &[]))
}

impl PgLoader {
    /// Connects (retrying transient failures per `options.retry`).
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Connect`] for a permanent failure (e.g.
    /// authentication), [`PgLoadError::RetriesExhausted`] if the server
    /// stayed unreachable.
    pub async fn connect(
        settings: PgSettings,
        options: LoaderOptions,
    ) -> Result<PgLoader, PgLoadError> {
        let mut loader = PgLoader {
            conn: Conn { settings, client: None, busy: false },
            options,
            retries: 0,
        };
        let PgLoader { conn, options, retries } = &mut loader;
        let _: ((), u32) =
            retrying!(*conn, &options.retry, retries, "connect", |_c, _n| {
                std::future::ready(Ok(()))
            })?;
        Ok(loader)
    }

    /// The connection settings (their `Display` has no password).
    #[must_use]
    pub fn settings(&self) -> &PgSettings {
        &self.conn.settings
    }

    /// The ledger and quarantine tables.
    #[must_use]
    pub fn tables(&self) -> &LedgerTables {
        &self.options.tables
    }

    /// Attempts repeated after transient failures, over this loader's
    /// life (batches, `already_loaded` and the rest).
    #[must_use]
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Creates the ledger and quarantine tables (and their schema) if
    /// missing. Safe to run from concurrent loaders.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if the DDL fails (e.g. no privilege).
    pub async fn ensure_ledger(&mut self) -> Result<(), PgLoadError> {
        let ddl = self.options.tables.ddl();
        let PgLoader { conn, options, retries } = self;
        let _: ((), u32) = retrying!(
            *conn,
            &options.retry,
            retries,
            "ledger DDL",
            |c, _n| run_ddl(c, &ddl)
        )?;
        Ok(())
    }

    /// Executes DDL given by the caller (e.g. the target table's
    /// `CREATE TABLE IF NOT EXISTS`), as a simple query: several
    /// statements may be separated by `;`. A concurrent loader's identical
    /// `IF NOT EXISTS` statement winning the race is not an error.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if it fails.
    pub async fn create_table(
        &mut self,
        sql: &str,
    ) -> Result<(), PgLoadError> {
        let stmts = [sql.to_owned()];
        let PgLoader { conn, options, retries } = self;
        let _: ((), u32) = retrying!(
            *conn,
            &options.retry,
            retries,
            "create table",
            |c, _n| run_ddl(c, &stmts)
        )?;
        Ok(())
    }

    /// For a target with [`CopyTarget::dedup_on`], creates the unique
    /// index `ON CONFLICT` needs, if missing:
    /// `CREATE UNIQUE INDEX IF NOT EXISTS "<table>_<column>_cwl_key" ON
    /// "schema"."table" ("column")` (the name cut to 63 bytes). Does
    /// nothing for other targets.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if it fails, e.g. because existing rows hold
    /// duplicate ids.
    pub async fn ensure_unique_index(
        &mut self,
        target: &CopyTarget,
    ) -> Result<(), PgLoadError> {
        let Some(col) = target.dedup_column() else { return Ok(()) };
        quote_ident(col)?;
        let sql = dedup::unique_index(target.table(), col);
        self.create_table(&sql).await
    }

    /// Which of `keys` the ledger already has (committed), to skip them
    /// before download and decode.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if the query fails (e.g. no ledger table).
    pub async fn already_loaded(
        &mut self,
        target: &CopyTarget,
        keys: &[String],
    ) -> Result<HashSet<String>, PgLoadError> {
        /// Keys asked about in one query.
        const CHUNK: usize = 10_000;
        let sql = self.options.tables.loaded_sql();
        let name = target.ledger_name();
        let mut set = HashSet::new();
        for keys in keys.chunks(CHUNK) {
            let PgLoader { conn, options, retries } = &mut *self;
            let (found, _) = retrying!(
                *conn,
                &options.retry,
                retries,
                "ledger lookup",
                |c, _n| lookup_keys(c, &sql, keys, name)
            )?;
            set.extend(found);
        }
        Ok(set)
    }

    /// The canonical `schema.table` that `table` resolves to on the
    /// server (through `search_path` when unqualified), or `None` when
    /// there is no such table.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if the query fails.
    pub async fn resolve_table(
        &mut self,
        table: &TableName,
    ) -> Result<Option<String>, PgLoadError> {
        let quoted = table.to_string();
        let PgLoader { conn, options, retries } = self;
        let (name, _) = retrying!(
            *conn,
            &options.retry,
            retries,
            "table lookup",
            |c, _n| resolve(c, &quoted)
        )?;
        Ok(name)
    }

    /// Whether the ledger table has the per-target layout (a ledger made
    /// by an older cwl-copy has no `target` column).
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] if the query fails.
    pub async fn ledger_is_current(&mut self) -> Result<bool, PgLoadError> {
        let sql = self.options.tables.has_target_column_sql();
        let PgLoader { conn, options, retries } = self;
        let (yes, _) = retrying!(
            *conn,
            &options.retry,
            retries,
            "ledger check",
            |c, _n| query_bool(c, &sql)
        )?;
        Ok(yes)
    }

    /// Loads `batch` into `target` in one transaction, exactly once per
    /// key. See the module docs for the SQL, concurrency and retries.
    ///
    /// Objects whose key another loader committed first are skipped and
    /// reported in [`BatchOutcome::skipped_duplicate`]; so is a key's
    /// second occurrence within `batch`.
    ///
    /// # Errors
    ///
    /// [`PgLoadError::Sql`] naming the batch's keys for a non-transient
    /// failure (bad data, missing table, type error…);
    /// [`PgLoadError::RowCount`] if `COPY` loaded a different number of
    /// rows than the objects declare; [`PgLoadError::RetriesExhausted`].
    /// In every case nothing of the batch is committed.
    pub async fn load_batch(
        &mut self,
        batch: &[ObjectRows],
        target: &CopyTarget,
    ) -> Result<BatchOutcome, PgLoadError> {
        // First occurrence of each key, sorted by key so that concurrent
        // loaders take ledger row locks in the same order (no deadlock).
        let (mut objects, repeated) = first_of_each_key(batch);
        objects.sort_by(|a, b| a.key.cmp(&b.key));

        let batch_id = new_batch_id();
        let PgLoader { conn, options, retries } = self;
        let tables = &options.tables;
        let (mut outcome, attempts) = retrying!(
            *conn,
            &options.retry,
            retries,
            "load batch",
            |c, n| try_load(c, tables, target, &objects, &batch_id, n)
        )?;
        outcome.skipped_duplicate.extend(repeated);
        outcome.attempts = attempts;
        Ok(outcome)
    }
}

/// The first occurrence of each key of `batch`, in order, and the keys of
/// the repeats (a key twice in one batch is loaded once).
pub(crate) fn first_of_each_key(
    batch: &[ObjectRows],
) -> (Vec<&ObjectRows>, Vec<String>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut repeated = Vec::new();
    let mut objects = Vec::with_capacity(batch.len());
    for o in batch {
        if seen.insert(o.key.as_str()) {
            objects.push(o);
        } else {
            repeated.push(o.key.clone());
        }
    }
    (objects, repeated)
}

/// Column arrays for the ledger claim.
struct ClaimArrays<'a> {
    keys: Vec<String>,
    sizes: Vec<i64>,
    etags: Vec<Option<&'a str>>,
    hashes: Vec<&'a str>,
    events: Vec<i64>,
    rows: Vec<i64>,
    filtered: Vec<i64>,
    rejected: Vec<i64>,
}

impl<'a> ClaimArrays<'a> {
    fn new(objects: &[&'a ObjectRows]) -> Result<Self, PgLoadError> {
        let n = objects.len();
        let mut a = ClaimArrays {
            keys: Vec::with_capacity(n),
            sizes: Vec::with_capacity(n),
            etags: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            filtered: Vec::with_capacity(n),
            rejected: Vec::with_capacity(n),
        };
        for o in objects {
            let k = o.key.as_str();
            a.keys.push(o.key.clone());
            a.sizes.push(to_i64(k, "size", o.size)?);
            a.etags.push(o.etag.as_deref());
            a.hashes.push(o.content_hash.as_str());
            a.events.push(to_i64(k, "events", o.events)?);
            a.rows.push(to_i64(k, "rows", o.rows)?);
            a.filtered.push(to_i64(k, "filtered", o.filtered)?);
            a.rejected.push(to_i64(k, "rejected", o.rejected)?);
        }
        Ok(a)
    }
}

/// Column arrays for the quarantine insert.
#[derive(Default)]
struct QuarantineArrays<'a> {
    keys: Vec<&'a str>,
    members: Vec<Option<i64>>,
    event_ids: Vec<Option<&'a str>>,
    offsets: Vec<Option<i64>>,
    kinds: Vec<&'a str>,
    reasons: Vec<&'a str>,
    messages: Vec<&'a str>,
}

impl<'a> QuarantineArrays<'a> {
    fn push_object(&mut self, o: &'a ObjectRows) -> Result<(), PgLoadError> {
        let k = o.key.as_str();
        let opt =
            |what, v: Option<u64>| v.map(|v| to_i64(k, what, v)).transpose();
        for r in &o.rejects {
            self.keys.push(k);
            self.members.push(opt("member", r.member)?);
            self.event_ids.push(r.event_id.as_deref());
            self.offsets.push(None);
            self.kinds.push("rejected_event");
            self.reasons.push(&r.reason);
            self.messages.push(&r.message);
        }
        for e in &o.errors {
            self.keys.push(k);
            self.members.push(opt("member", e.member)?);
            self.event_ids.push(None);
            self.offsets.push(Some(to_i64(k, "offset", e.offset)?));
            self.kinds.push(&e.kind);
            self.reasons.push(e.reason.as_deref().unwrap_or("undecodable"));
            self.messages.push(&e.message);
        }
        Ok(())
    }
}

/// One attempt at a batch: BEGIN, claim, COPY, quarantine, COMMIT.
async fn try_load(
    client: &mut Client,
    tables: &LedgerTables,
    target: &CopyTarget,
    objects: &[&ObjectRows],
    batch_id: &str,
    attempt: u32,
) -> Result<BatchOutcome, PgLoadError> {
    let all_keys: Vec<String> =
        objects.iter().map(|o| o.key.clone()).collect();
    let err = |op| sql_err(op, &all_keys);
    let arrays = ClaimArrays::new(objects)?;

    let tx = client.transaction().await.map_err(err("BEGIN"))?;

    // 1. Claim.
    let claimed: HashSet<String> = tx
        .query(
            &tables.claim_sql(),
            &[
                &arrays.keys,
                &arrays.sizes,
                &arrays.etags,
                &arrays.hashes,
                &arrays.events,
                &arrays.rows,
                &arrays.filtered,
                &arrays.rejected,
                &batch_id,
                &target.ledger_name(),
            ],
        )
        .await
        .map_err(err("ledger claim"))?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(err("ledger claim"))?;

    // A retry after a COMMIT whose reply was lost finds its own keys.
    let mut earlier: HashSet<String> = HashSet::new();
    if attempt > 1 && claimed.len() < objects.len() {
        let unclaimed: Vec<&str> = objects
            .iter()
            .map(|o| o.key.as_str())
            .filter(|k| !claimed.contains(*k))
            .collect();
        earlier = tx
            .query(
                &tables.committed_by_batch_sql(),
                &[&unclaimed, &batch_id, &target.ledger_name()],
            )
            .await
            .map_err(err("ledger check"))?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(err("ledger check"))?;
        if !earlier.is_empty() {
            tracing::warn!(
                batch_id,
                objects = earlier.len(),
                "an earlier attempt of this batch committed; not loading \
                 its objects again"
            );
        }
    }

    let to_copy: Vec<&ObjectRows> =
        objects.iter().copied().filter(|o| claimed.contains(&o.key)).collect();
    let claimed_keys: Vec<String> =
        to_copy.iter().map(|o| o.key.clone()).collect();
    let expected = to_copy.iter().fold(0u64, |a, o| a.saturating_add(o.rows));

    // 2. COPY.
    let stage = target.dedup_column().map(|_| dedup::stage());
    let has_data = to_copy.iter().any(|o| !o.csv.is_empty());
    let mut copied = 0u64;
    let mut inserted = 0u64;
    if has_data {
        if stage.is_some() {
            let create =
                dedup::create_stage(&target.table, &target.column_list);
            tx.batch_execute(&create).await.map_err(err("create staging"))?;
        }
        let into = match &stage {
            Some(s) => s.clone(),
            None => target.table.to_string(),
        };
        let sink = tx
            .copy_in::<_, Bytes>(&target.copy_sql(&into))
            .await
            .map_err(err("COPY"))?;
        let mut sink = std::pin::pin!(sink);
        for o in &to_copy {
            for i in 0..o.csv.pieces() {
                let piece = o.csv.read_piece(i).await.map_err(|e| {
                    PgLoadError::Spill { key: o.key.clone(), source: e }
                })?;
                let mut at = 0;
                while at < piece.len() {
                    let end = at.saturating_add(COPY_CHUNK).min(piece.len());
                    sink.send(piece.slice(at..end))
                        .await
                        .map_err(err("COPY"))?;
                    at = end;
                }
            }
            if o.csv.last_byte().is_some_and(|b| b != b'\n') {
                sink.send(Bytes::from_static(b"\n"))
                    .await
                    .map_err(err("COPY"))?;
            }
        }
        copied = sink.as_mut().finish().await.map_err(err("COPY"))?;
        inserted = copied;
    }
    if copied != expected {
        return Err(PgLoadError::RowCount {
            expected,
            copied,
            keys: KeyList(claimed_keys),
        });
    }
    if has_data {
        if let (Some(_), Some(id)) = (&stage, target.dedup_column()) {
            let insert =
                dedup::insert_new(&target.table, &target.column_list, id);
            inserted =
                tx.execute(&insert, &[]).await.map_err(err("dedup insert"))?;
        }
    }

    // 3. Quarantine.
    let mut q = QuarantineArrays::default();
    for o in &to_copy {
        q.push_object(o)?;
    }
    let quarantined = if q.keys.is_empty() {
        0
    } else {
        tx.execute(
            &tables.quarantine_sql(),
            &[
                &q.keys,
                &q.members,
                &q.event_ids,
                &q.offsets,
                &q.kinds,
                &q.reasons,
                &q.messages,
                &batch_id,
                &target.ledger_name(),
            ],
        )
        .await
        .map_err(err("quarantine"))?
    };

    tx.commit().await.map_err(err("COMMIT"))?;

    // Count what committed: this attempt's claims and an earlier one's.
    let mut out = BatchOutcome {
        batch_id: batch_id.to_owned(),
        rows_copied: copied,
        rows_inserted: inserted,
        duplicate_events: copied.saturating_sub(inserted),
        quarantined,
        ..BatchOutcome::default()
    };
    for o in objects {
        let mine = claimed.contains(&o.key);
        let before = earlier.contains(&o.key);
        if !mine && !before {
            out.skipped_duplicate.push(o.key.clone());
            continue;
        }
        if before {
            // Its rows committed earlier; the split into inserted and
            // duplicate is not recorded, so all count as inserted.
            out.rows_copied = out.rows_copied.saturating_add(o.rows);
            out.rows_inserted = out.rows_inserted.saturating_add(o.rows);
        }
        out.loaded.push(o.key.clone());
        out.events = out.events.saturating_add(o.events);
        out.filtered = out.filtered.saturating_add(o.filtered);
        out.rejected = out.rejected.saturating_add(o.rejected);
        let errors = u64::try_from(o.errors.len()).unwrap_or(u64::MAX);
        out.errors = out.errors.saturating_add(errors);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_list_is_short() {
        let k = KeyList((0..8).map(|i| format!("k{i}")).collect());
        assert_eq!(
            k.to_string(),
            "\"k0\", \"k1\", \"k2\", \"k3\", \"k4\" and 3 more"
        );
        assert_eq!(KeyList(vec!["a b".into()]).to_string(), "\"a b\"");
    }

    #[test]
    fn batch_ids_are_unique() {
        let a = new_batch_id();
        let b = new_batch_id();
        assert_ne!(a, b);
    }

    #[test]
    fn copy_sql_is_quoted() {
        let t = TableName::new(Some("s"), "T").unwrap();
        let c = CopyTarget::new(t, &["a".into(), "b\"c".into()]).unwrap();
        assert_eq!(
            c.copy_sql(&c.table.to_string()),
            "COPY \"s\".\"T\" (\"a\", \"b\"\"c\") FROM STDIN WITH (FORMAT csv)"
        );
        assert!(
            CopyTarget::new(TableName::new(None, "t").unwrap(), &[]).is_err()
        );
    }
}
