//! Redshift: one `COPY … MANIFEST` per batch from staged gzip CSV parts,
//! exactly once by a ledger lock and conditional inserts (see
//! [`crate::sql::redshift`]), over the PostgreSQL wire protocol (simple
//! queries only, as Redshift speaks an old subset of it) or the Redshift
//! Data API (HTTPS and IAM, from outside the cluster's VPC).
//!
//! A batch:
//! 1. its rows (Redshift CSV dialect, each row led by its object's ledger
//!    key) are split at row boundaries into a multiple of the slice count
//!    of parts, as even as the rows allow and each under 1 GiB before
//!    compression, gzipped (one member each) and uploaded under
//!    `<staging>/<batch id>/`, with a manifest listing every part
//!    `"mandatory": true` with its `meta.content_length`; the object list
//!    and the quarantine rows are staged the same way;
//! 2. the plan runs as one transaction (`BatchExecuteStatement`, or
//!    `BEGIN` … `COMMIT` on the wire);
//! 3. the staged objects are deleted after the commit (a crash leaves
//!    them: give the staging prefix a lifecycle rule).
//!
//! A COPY error is reported with its cause from `stl_load_errors`
//! (provisioned) or `sys_load_error_detail` (Serverless): the part, line,
//! column, reason, and the object the line came from.

use std::collections::HashSet;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_redshiftdata::types::{Field, StatusString};

use super::postgres::{first_of_each_key, new_batch_id};
use super::{BatchOutcome, Target, TargetInfo};
use crate::load::pgconn::PgSettings;
use crate::load::source::s3::S3;
use crate::load::{Csv, LoadError, ObjectRows};
use crate::sql::{self, quote_literal, LedgerTables, TableName};

/// A part's largest size before compression.
const PART_LIMIT: u64 = 1 << 30;
/// Staged files above this size go up as a multipart upload of parts
/// this size (S3's single PutObject takes up to 5 GiB, but a lost
/// connection then restarts the whole file).
const MULTIPART_BYTES: usize = 64 << 20;
/// Keys per ledger lookup (keeps the SQL well under 100 KB).
const LOOKUP_CHUNK: usize = 400;

/// A Redshift failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedshiftError {
    /// The target URL does not parse.
    #[error("--target {url}: {reason}")]
    Url {
        /// The URL, without any secret.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A statement failed on the wire.
    #[error("{op}: {message}")]
    Wire {
        /// What was being done.
        op: &'static str,
        /// The server's message.
        message: String,
    },
    /// The Data API failed, or a statement it ran.
    #[error("{op}: {message}")]
    DataApi {
        /// What was being done.
        op: &'static str,
        /// The service's or the statement's error.
        message: String,
    },
    /// Staging to S3 failed.
    #[error("staging {url}: {message}")]
    Staging {
        /// The object.
        url: String,
        /// The cause.
        message: String,
    },
    /// `COPY` rejected a line of a part.
    #[error("{0}")]
    Copy(Box<CopyFailure>),
}

/// Where and why `COPY` rejected a line, from the load-error table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "COPY failed at {part}, line {line}, column {column:?}: {reason} \
     (object {object}{})",
    event.as_ref().map(|e| format!(", event {e}")).unwrap_or_default()
)]
pub struct CopyFailure {
    /// The part (`s3://…`).
    pub part: String,
    /// The line in the part.
    pub line: i64,
    /// The column.
    pub column: String,
    /// Redshift's reason.
    pub reason: String,
    /// The object the line came from.
    pub object: String,
    /// The event id, if the spec has an `@id` column.
    pub event: Option<String>,
}

fn rs(e: RedshiftError) -> LoadError {
    LoadError::Target(Box::new(e))
}

/// Where the cluster is, and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `redshift://user@host:5439/db`: the PostgreSQL wire protocol.
    Wire(String),
    /// `redshift-data://cluster/ID/DB?db_user=U` (or `secret_arn=ARN`).
    Cluster {
        /// The cluster identifier.
        cluster: String,
        /// The database.
        database: String,
        /// Temporary credentials for this database user.
        db_user: Option<String>,
        /// Or a Secrets Manager secret.
        secret_arn: Option<String>,
    },
    /// `redshift-data://workgroup/NAME/DB[?secret_arn=ARN]`: Serverless.
    Workgroup {
        /// The workgroup.
        workgroup: String,
        /// The database.
        database: String,
        /// A Secrets Manager secret (else IAM).
        secret_arn: Option<String>,
    },
}

impl Endpoint {
    /// Parses a `redshift://` or `redshift-data://` target; `None` for
    /// another scheme.
    ///
    /// # Errors
    ///
    /// [`RedshiftError::Url`] for a malformed Redshift URL.
    pub fn parse(url: &str) -> Result<Option<Endpoint>, RedshiftError> {
        if let Some(rest) = url.strip_prefix("redshift://") {
            return Ok(Some(Endpoint::Wire(format!("postgres://{rest}"))));
        }
        let Some(rest) = url.strip_prefix("redshift-data://") else {
            return Ok(None);
        };
        let bad = |reason: &str| RedshiftError::Url {
            url: url.split('?').next().unwrap_or(url).to_owned(),
            reason: reason.to_owned(),
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut db_user = None;
        let mut secret_arn = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = crate::load::source::prefix::decode_event_key(v)
                .map_err(|e| bad(&format!("{k}: {e}")))?;
            match k {
                "db_user" => db_user = Some(v),
                "secret_arn" => secret_arn = Some(v),
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter {k:?} (db_user, secret_arn)"
                    )))
                }
            }
        }
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let [kind, name, database] = parts[..] else {
            return Err(bad(
                "expected redshift-data://cluster/ID/DB?db_user=USER or \
                 redshift-data://workgroup/NAME/DB",
            ));
        };
        if name.is_empty() || database.is_empty() {
            return Err(bad("empty cluster, workgroup or database name"));
        }
        match kind {
            "cluster" => {
                if db_user.is_none() && secret_arn.is_none() {
                    return Err(bad(
                        "a cluster needs ?db_user=USER or ?secret_arn=ARN",
                    ));
                }
                Ok(Some(Endpoint::Cluster {
                    cluster: name.to_owned(),
                    database: database.to_owned(),
                    db_user,
                    secret_arn,
                }))
            }
            "workgroup" => {
                if db_user.is_some() {
                    return Err(bad(
                        "db_user is for provisioned clusters; a workgroup \
                         takes secret_arn or IAM",
                    ));
                }
                Ok(Some(Endpoint::Workgroup {
                    workgroup: name.to_owned(),
                    database: database.to_owned(),
                    secret_arn,
                }))
            }
            _ => Err(bad("the host must be `cluster` or `workgroup`")),
        }
    }

    fn serverless(&self) -> bool {
        matches!(self, Endpoint::Workgroup { .. })
    }
}

/// One result: the rows (text values, `None` for NULL) and the rows
/// affected.
#[derive(Clone, Debug, Default)]
struct Answer {
    rows: Vec<Vec<Option<String>>>,
    affected: u64,
}

/// Runs SQL on the cluster.
enum Runner {
    Wire { settings: Box<PgSettings>, client: Option<tokio_postgres::Client> },
    Data { client: aws_sdk_redshiftdata::Client, endpoint: Endpoint },
}

fn wire_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> LoadError {
    move |e| {
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        rs(RedshiftError::Wire { op, message })
    }
}

fn simple_answers(
    msgs: Vec<tokio_postgres::SimpleQueryMessage>,
) -> Vec<Answer> {
    use tokio_postgres::SimpleQueryMessage as M;
    let mut out = Vec::new();
    let mut cur = Answer::default();
    for m in msgs {
        match m {
            M::Row(r) => cur.rows.push(
                (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect(),
            ),
            M::CommandComplete(n) => {
                cur.affected = n;
                out.push(std::mem::take(&mut cur));
            }
            _ => {}
        }
    }
    out
}

impl Runner {
    async fn wire(&mut self) -> Result<&tokio_postgres::Client, LoadError> {
        let Runner::Wire { settings, client } = self else {
            return Err(LoadError::Worker("not a wire runner".into()));
        };
        if client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            *client = Some(
                settings
                    .connect()
                    .await
                    .map_err(|e| LoadError::Target(Box::new(e)))?,
            );
        }
        client
            .as_ref()
            .ok_or_else(|| LoadError::Worker("no connection".into()))
    }

    /// One statement outside a transaction.
    async fn query(&mut self, sql: &str) -> Result<Answer, LoadError> {
        match self {
            Runner::Wire { .. } => {
                let c = self.wire().await?;
                let msgs =
                    c.simple_query(sql).await.map_err(wire_err("query"))?;
                Ok(simple_answers(msgs).pop().unwrap_or_default())
            }
            Runner::Data { .. } => {
                let mut a = self.transaction(&[sql.to_owned()], "").await?;
                Ok(a.pop().unwrap_or_default())
            }
        }
    }

    /// Statements as one transaction; the answer of each.
    async fn transaction(
        &mut self,
        stmts: &[String],
        token: &str,
    ) -> Result<Vec<Answer>, LoadError> {
        match self {
            Runner::Wire { .. } => {
                let c = self.wire().await?;
                c.simple_query("BEGIN").await.map_err(wire_err("BEGIN"))?;
                let mut out = Vec::with_capacity(stmts.len());
                for s in stmts {
                    match c.simple_query(s).await {
                        Ok(msgs) => out.push(
                            simple_answers(msgs).pop().unwrap_or_default(),
                        ),
                        Err(e) => {
                            let _ = c.simple_query("ROLLBACK").await;
                            return Err(wire_err("batch")(e));
                        }
                    }
                }
                c.simple_query("COMMIT").await.map_err(wire_err("COMMIT"))?;
                Ok(out)
            }
            Runner::Data { client, endpoint } => {
                data_api(client, endpoint, stmts, token).await
            }
        }
    }
}

fn data_err<E: std::error::Error + 'static>(
    op: &'static str,
) -> impl Fn(E) -> LoadError {
    move |e| {
        rs(RedshiftError::DataApi {
            op,
            message: aws_sdk_redshiftdata::error::DisplayErrorContext(&e)
                .to_string(),
        })
    }
}

/// Runs `stmts` through the Data API (`BatchExecuteStatement` for more
/// than one: one transaction), polls `DescribeStatement` with backoff
/// until it ends, and reads each sub-statement's result.
async fn data_api(
    client: &aws_sdk_redshiftdata::Client,
    endpoint: &Endpoint,
    stmts: &[String],
    token: &str,
) -> Result<Vec<Answer>, LoadError> {
    let mut req =
        client.batch_execute_statement().set_sqls(Some(stmts.to_vec()));
    match endpoint {
        Endpoint::Cluster { cluster, database, db_user, secret_arn } => {
            req = req
                .cluster_identifier(cluster)
                .database(database)
                .set_db_user(db_user.clone())
                .set_secret_arn(secret_arn.clone());
        }
        Endpoint::Workgroup { workgroup, database, secret_arn } => {
            req = req
                .workgroup_name(workgroup)
                .database(database)
                .set_secret_arn(secret_arn.clone());
        }
        Endpoint::Wire(_) => {
            return Err(LoadError::Worker("not a Data API endpoint".into()))
        }
    }
    if !token.is_empty() {
        req = req.client_token(token);
    }
    let id = req
        .send()
        .await
        .map_err(data_err("BatchExecuteStatement"))?
        .id()
        .unwrap_or_default()
        .to_owned();
    let mut wait = Duration::from_millis(50);
    let described = loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
        let d = client
            .describe_statement()
            .id(&id)
            .send()
            .await
            .map_err(data_err("DescribeStatement"))?;
        match d.status() {
            Some(StatusString::Finished) => break d,
            Some(StatusString::Failed | StatusString::Aborted) => {
                return Err(rs(RedshiftError::DataApi {
                    op: "statement",
                    message: d.error().unwrap_or("failed").to_owned(),
                }));
            }
            _ => {}
        }
    };
    let mut out = Vec::new();
    for sub in described.sub_statements() {
        let mut a = Answer {
            affected: u64::try_from(sub.result_rows()).unwrap_or(0),
            rows: Vec::new(),
        };
        if sub.has_result_set() == Some(true) {
            let mut next: Option<String> = None;
            loop {
                let r = client
                    .get_statement_result()
                    .id(sub.id())
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(data_err("GetStatementResult"))?;
                for rec in r.records() {
                    a.rows.push(rec.iter().map(field_text).collect());
                }
                match r.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        out.push(a);
    }
    Ok(out)
}

fn field_text(f: &Field) -> Option<String> {
    match f {
        Field::StringValue(s) => Some(s.clone()),
        Field::LongValue(n) => Some(n.to_string()),
        Field::DoubleValue(x) => Some(x.to_string()),
        Field::BooleanValue(b) => Some(b.to_string()),
        Field::IsNull(_) => None,
        _ => None,
    }
}

/// The Redshift target. See the module docs.
pub struct RedshiftTarget {
    runner: Runner,
    endpoint: Endpoint,
    s3: S3,
    staging_bucket: String,
    staging_prefix: String,
    iam_role: String,
    table: TableName,
    tables: LedgerTables,
    columns: Vec<(String, String)>,
    dedup: Option<String>,
    id_position: Option<usize>,
    create: Option<Vec<String>>,
    slices: Option<usize>,
    ledger_name: String,
    created: bool,
    retries: u64,
}

impl std::fmt::Debug for RedshiftTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedshiftTarget")
            .field("table", &self.table)
            .field("staging", &self.staging_prefix)
            .finish_non_exhaustive()
    }
}

/// How to build a [`RedshiftTarget`].
#[derive(Clone, Debug)]
pub struct RedshiftOptions {
    /// The cluster.
    pub endpoint: Endpoint,
    /// `--iam-role` (an ARN, or `default`).
    pub iam_role: String,
    /// `--staging s3://bucket/prefix/`.
    pub staging: (String, String),
    /// The target table.
    pub table: TableName,
    /// The ledger and quarantine.
    pub tables: LedgerTables,
    /// The target's columns and Redshift types, in CSV order (after the
    /// object column).
    pub columns: Vec<(String, String)>,
    /// `--dedup-events`: the id column.
    pub dedup: Option<String>,
    /// The position of the `@id` column among `columns`, for error
    /// reports.
    pub id_position: Option<usize>,
    /// `--create-table` statements.
    pub create: Option<Vec<String>>,
    /// `--slices` (`None`: read from `stv_slices`).
    pub slices: Option<usize>,
}

impl RedshiftTarget {
    /// A target; `settings` are the wire connection's (ignored for the
    /// Data API), `sdk` the AWS configuration for the Data API.
    #[must_use]
    pub fn new(
        options: RedshiftOptions,
        settings: Option<PgSettings>,
        sdk: &aws_config::SdkConfig,
        s3: S3,
    ) -> RedshiftTarget {
        let runner = match (&options.endpoint, settings) {
            (Endpoint::Wire(_), Some(settings)) => {
                Runner::Wire { settings: Box::new(settings), client: None }
            }
            (endpoint, _) => Runner::Data {
                client: aws_sdk_redshiftdata::Client::new(sdk),
                endpoint: endpoint.clone(),
            },
        };
        let ledger_name = match options.table.schema() {
            Some(s) => format!("{s}.{}", options.table.name()),
            None => options.table.name().to_owned(),
        };
        RedshiftTarget {
            runner,
            endpoint: options.endpoint,
            s3,
            staging_bucket: options.staging.0,
            staging_prefix: options.staging.1,
            iam_role: options.iam_role,
            table: options.table,
            tables: options.tables,
            columns: options.columns,
            dedup: options.dedup,
            id_position: options.id_position,
            create: options.create,
            slices: options.slices,
            ledger_name,
            created: false,
            retries: 0,
        }
    }

    /// The statement plan of a batch with placeholder locations, for
    /// `--dry-run`.
    #[must_use]
    pub fn dry_run_plan(&self) -> Vec<String> {
        let base = format!(
            "s3://{}/{}<batch id>/",
            self.staging_bucket, self.staging_prefix
        );
        let (objects, rows, quarantine) = (
            format!("{base}objects.manifest"),
            format!("{base}rows.manifest"),
            format!("{base}quarantine.manifest"),
        );
        let plan = sql::redshift::Plan {
            table: &self.table,
            target: &self.ledger_name,
            ledger: &self.tables.ledger,
            quarantine: &self.tables.quarantine,
            columns: &self.columns,
            dedup: self.dedup.as_deref(),
            objects_manifest: &objects,
            rows_manifest: Some(&rows),
            quarantine_manifest: Some(&quarantine),
            iam_role: &self.iam_role,
            batch_id: "<batch id>",
            now: "<now>",
        };
        let mut out = sql::redshift::ledger_ddl(
            &self.tables.ledger,
            &self.tables.quarantine,
        );
        if let Some(c) = &self.create {
            out.extend(c.iter().cloned());
        }
        out.extend(sql::redshift::batch(&plan).0);
        out
    }

    async fn slice_count(&mut self) -> Result<usize, LoadError> {
        if let Some(n) = self.slices {
            return Ok(n.max(1));
        }
        let a = self.runner.query("SELECT COUNT(*) FROM stv_slices").await;
        match a {
            Ok(a) => Ok(a
                .rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1)),
            Err(e) if self.endpoint.serverless() => {
                tracing::debug!(error = %e, "no stv_slices (Serverless): one part per batch unless --slices");
                Ok(1)
            }
            Err(e) => Err(e),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<u64, LoadError> {
        let len = u64::try_from(body.len()).unwrap_or(u64::MAX);
        self.s3
            .put(&self.staging_bucket, key, body.into(), MULTIPART_BYTES)
            .await
            .map_err(|message| {
                rs(RedshiftError::Staging {
                    url: format!("s3://{}/{key}", self.staging_bucket),
                    message,
                })
            })?;
        Ok(len)
    }

    /// Uploads `parts` (gzipped) and their manifest under `dir`; returns
    /// the manifest's URL and the keys written.
    async fn stage(
        &self,
        dir: &str,
        name: &str,
        parts: Vec<Vec<u8>>,
        keys: &mut Vec<String>,
    ) -> Result<String, LoadError> {
        let mut entries = Vec::with_capacity(parts.len());
        for (i, part) in parts.into_iter().enumerate() {
            let key = format!("{dir}{name}-{i:04}.csv.gz");
            let len = self.put(&key, part).await?;
            keys.push(key.clone());
            entries.push(serde_json::json!({
                "url": format!("s3://{}/{key}", self.staging_bucket),
                "mandatory": true,
                "meta": { "content_length": len },
            }));
        }
        let manifest = serde_json::json!({ "entries": entries }).to_string();
        let key = format!("{dir}{name}.manifest");
        self.put(&key, manifest.into_bytes()).await?;
        keys.push(key.clone());
        Ok(format!("s3://{}/{key}", self.staging_bucket))
    }

    async fn unstage(&self, keys: &[String]) {
        for chunk in keys.chunks(1000) {
            let objects: Vec<_> = chunk
                .iter()
                .filter_map(|k| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(k)
                        .build()
                        .ok()
                })
                .collect();
            let Ok(delete) = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
            else {
                continue;
            };
            if let Err(e) = self
                .s3
                .client()
                .delete_objects()
                .bucket(&self.staging_bucket)
                .delete(delete)
                .send()
                .await
            {
                tracing::warn!(
                    error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                    "staged files not deleted (a lifecycle rule on the staging prefix removes them)"
                );
            }
        }
    }

    /// Runs a `CREATE … IF NOT EXISTS`. Two loaders starting together
    /// can both pass the existence check; the one that loses the race
    /// fails with "already exists", or (PostgreSQL's catalog, which the
    /// wire path may be talking to) with a unique violation on a catalog
    /// index. Either means what it wanted is there; the statement is run
    /// once more to make sure, since `IF NOT EXISTS` then passes.
    async fn ddl(&mut self, stmt: &str) -> Result<(), LoadError> {
        let mut reran = false;
        loop {
            match self.runner.query(stmt).await {
                Err(e) if is_create_race(&e.to_string()) => {
                    tracing::debug!(error = %e, "created by a concurrent loader");
                    if reran {
                        return Ok(());
                    }
                    reran = true;
                }
                r => return r.map(|_| ()),
            }
        }
    }

    /// The CSV record holding line `line` (from 1) of a staged part.
    async fn part_line(&self, part: &str, line: i64) -> Option<String> {
        let key = part
            .strip_prefix(&format!("s3://{}/", self.staging_bucket))?
            .to_owned();
        let got = self
            .s3
            .get(&self.staging_bucket, &key, None, PART_LIMIT)
            .await
            .ok()?;
        let crate::load::source::Fetched::Data(gz) = got else {
            return None;
        };
        let csv = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut d = flate2::read::MultiGzDecoder::new(&gz[..]);
            std::io::Read::read_to_end(&mut d, &mut out).ok().map(|_| out)
        })
        .await
        .ok()??;
        let mut start = 0;
        let mut first_line = 1i64;
        for end in record_ends(&csv) {
            let record = csv.get(start..end)?;
            let lines =
                i64::try_from(memchr::memchr_iter(b'\n', record).count())
                    .ok()?;
            if line < first_line + lines {
                return Some(
                    String::from_utf8_lossy(record).trim_end().to_owned(),
                );
            }
            first_line += lines;
            start = end;
        }
        None
    }

    /// Reads the cause of a failed COPY from the load-error table.
    async fn copy_error(&mut self, dir: &str) -> Option<RedshiftError> {
        // This batch's parts only: other loads may fail at the same time.
        let like =
            quote_literal(&format!("s3://{}/{dir}%", self.staging_bucket));
        let sql = if self.endpoint.serverless() {
            format!(
                "SELECT TRIM(file_name), line_number, TRIM(column_name), \
                 TRIM(error_message), NULL FROM sys_load_error_detail WHERE \
                 TRIM(file_name) LIKE {like} ORDER BY log_time DESC LIMIT 1"
            )
        } else {
            format!(
                "SELECT TRIM(filename), line_number, TRIM(colname), \
                 TRIM(err_reason), raw_line FROM stl_load_errors WHERE \
                 TRIM(filename) LIKE {like} ORDER BY starttime DESC LIMIT 1"
            )
        };
        let a = self.runner.query(&sql).await.ok()?;
        let row = a.rows.into_iter().next()?;
        let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let part = get(0);
        let line: i64 = get(1).parse().unwrap_or(0);
        let mut raw = get(4);
        if raw.is_empty() {
            // Serverless keeps no raw line: read it from the part.
            raw = self.part_line(&part, line).await.unwrap_or_default();
        }
        let fields = csv_fields(&raw);
        Some(RedshiftError::Copy(Box::new(CopyFailure {
            part,
            line,
            column: get(2),
            reason: get(3),
            object: fields.first().cloned().unwrap_or_else(|| "?".into()),
            event: self.id_position.and_then(|p| fields.get(p + 1).cloned()),
        })))
    }
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Whether a failed `CREATE … IF NOT EXISTS` lost a race with another
/// loader: "already exists", or a unique violation on one of the catalog
/// indexes that concurrent creates collide on.
fn is_create_race(message: &str) -> bool {
    message.contains("already exists")
        || message.contains("duplicate key value violates unique constraint")
            && [
                "pg_type_typname_nsp_index",
                "pg_namespace_nspname_index",
                "pg_class_relname_nsp_index",
            ]
            .iter()
            .any(|index| message.contains(index))
}

/// Where each CSV record of `csv` ends (offsets after its newline).
fn record_ends(csv: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut quoted = false;
    for i in memchr::memchr2_iter(b'"', b'\n', csv) {
        match csv.get(i) {
            Some(b'"') => quoted = !quoted,
            _ if !quoted => out.push(i + 1),
            _ => {}
        }
    }
    out
}

/// Splits the objects' CSV into `n` gzip parts at record boundaries, as
/// even as the records allow.
fn split_parts(csvs: &[Csv], n: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let total: u64 = csvs.iter().map(Csv::len).sum();
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let n = n.max(1);
    let per = total.div_ceil(n).max(1);
    let mut parts = Vec::with_capacity(n);
    let new = || {
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
    };
    let mut gz = new();
    let mut in_part = 0usize;
    // Pieces hold whole records (a spilled object is read back piece by
    // piece here, on the blocking pool).
    let pieces =
        csvs.iter().flat_map(|c| (0..c.pieces()).map(move |i| c.piece(i)));
    for piece in pieces {
        let csv = piece?;
        let csv = &csv[..];
        let mut at = 0;
        for end in record_ends(csv) {
            if in_part >= per && parts.len() + 1 < n {
                gz.write_all(csv.get(at..end).unwrap_or_default())?;
                at = end;
                parts.push(std::mem::replace(&mut gz, new()).finish()?);
                in_part = 0;
                continue;
            }
            in_part += end - at;
            gz.write_all(csv.get(at..end).unwrap_or_default())?;
            at = end;
        }
        if at < csv.len() {
            gz.write_all(csv.get(at..).unwrap_or_default())?;
            in_part += csv.len() - at;
        }
    }
    parts.push(gz.finish()?);
    while parts.len() < n {
        parts.push(new().finish()?);
    }
    Ok(parts)
}

/// CSV of text fields (`None`: `\N`), one record.
fn csv_record(out: &mut Vec<u8>, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match f {
            None => out.extend_from_slice(b"\\N"),
            Some(s) => {
                // Redshift's VARCHAR holds 65,535 bytes.
                let s = crate::write::utf8_prefix(s, 65_535);
                out.push(b'"');
                for b in s.bytes() {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
        }
    }
    out.push(b'\n');
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data)?;
    gz.finish()
}

fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = crate::load::source::prefix::UtcTime::from_unix(
        i64::try_from(secs).unwrap_or(0),
        0,
    );
    t.map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), |t| t.to_string())
}

impl Target for RedshiftTarget {
    async fn prepare(&mut self) -> Result<(), LoadError> {
        for stmt in sql::redshift::ledger_ddl(
            &self.tables.ledger,
            &self.tables.quarantine,
        ) {
            self.ddl(&stmt).await?;
        }
        let schema = match self.table.schema() {
            Some(s) => s.to_owned(),
            None => self
                .runner
                .query("SELECT current_schema()")
                .await?
                .rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_else(|| "public".to_owned()),
        };
        let exists = format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE \
             table_schema = {} AND table_name = {}",
            quote_literal(&schema),
            quote_literal(self.table.name())
        );
        let count = |a: &Answer| {
            a.rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default()
        };
        let existed = count(&self.runner.query(&exists).await?) != "0";
        if !existed {
            let Some(create) = self.create.clone() else {
                return Err(LoadError::Config(format!(
                    "table {} does not exist; add --create-table to create it",
                    self.table
                )));
            };
            for stmt in create {
                self.ddl(&stmt).await?;
            }
            self.created = true;
        }
        self.ledger_name = format!("{schema}.{}", self.table.name());
        self.slices = Some(self.slice_count().await?);
        Ok(())
    }

    async fn already_loaded(
        &mut self,
        keys: &[String],
    ) -> Result<HashSet<String>, LoadError> {
        let mut out = HashSet::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let sql = sql::redshift::loaded(
                &self.tables.ledger,
                &self.ledger_name,
                chunk,
            );
            let a = self.runner.query(&sql).await?;
            out.extend(
                a.rows
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten()),
            );
        }
        Ok(out)
    }

    async fn load_batch(
        &mut self,
        batch: &[ObjectRows],
    ) -> Result<BatchOutcome, LoadError> {
        let batch_id = new_batch_id();
        let dir = format!("{}{batch_id}/", self.staging_prefix);
        let slices = self.slices.unwrap_or(1).max(1);
        let (objects, repeated) = first_of_each_key(batch);

        // Stage: objects, rows, quarantine.
        let mut list = Vec::new();
        let mut q = Vec::new();
        for o in &objects {
            let n = |v: u64| v.to_string();
            let (size, events, rows, filtered, rejected) = (
                n(o.size),
                n(o.events),
                n(o.rows),
                n(o.filtered),
                n(o.rejected),
            );
            csv_record(
                &mut list,
                &[
                    Some(&o.key),
                    Some(&size),
                    o.etag.as_deref(),
                    Some(&o.content_hash),
                    Some(&events),
                    Some(&rows),
                    Some(&filtered),
                    Some(&rejected),
                ],
            );
            for r in &o.rejects {
                let member = r.member.map(|m| m.to_string());
                csv_record(
                    &mut q,
                    &[
                        Some(&o.key),
                        member.as_deref(),
                        r.event_id.as_deref(),
                        None,
                        Some("rejected_event"),
                        Some(&r.reason),
                        Some(&r.message),
                    ],
                );
            }
            for e in &o.errors {
                let member = e.member.map(|m| m.to_string());
                let offset = e.offset.to_string();
                csv_record(
                    &mut q,
                    &[
                        Some(&o.key),
                        member.as_deref(),
                        None,
                        Some(&offset),
                        Some(&e.kind),
                        Some(e.reason.as_deref().unwrap_or("undecodable")),
                        Some(&e.message),
                    ],
                );
            }
        }
        let csvs: Vec<Csv> = objects
            .iter()
            .map(|o| o.csv.clone())
            .filter(|c| !c.is_empty())
            .collect();
        let raw: u64 = csvs.iter().map(Csv::len).sum();
        // A multiple of the slices, each part under PART_LIMIT raw bytes.
        let per_slice = raw.div_ceil(PART_LIMIT.saturating_mul(slices as u64));
        let n_parts = slices
            .saturating_mul(usize::try_from(per_slice).unwrap_or(1).max(1));
        let io = |e: std::io::Error| {
            rs(RedshiftError::Staging {
                url: dir.clone(),
                message: e.to_string(),
            })
        };
        let (parts, list_gz, q_gz) = tokio::task::spawn_blocking(move || {
            let parts = if csvs.is_empty() {
                Ok(Vec::new())
            } else {
                split_parts(&csvs, n_parts)
            };
            let q = if q.is_empty() { Ok(Vec::new()) } else { gzip(&q) };
            (parts, gzip(&list), q)
        })
        .await
        .map_err(|e| LoadError::Worker(format!("staging: {e}")))?;
        let (parts, list_gz, q_gz) =
            (parts.map_err(io)?, list_gz.map_err(io)?, q_gz.map_err(io)?);
        let mut staged = Vec::new();
        let objects_manifest =
            self.stage(&dir, "objects", vec![list_gz], &mut staged).await?;
        let rows_manifest = if parts.is_empty() {
            None
        } else {
            Some(self.stage(&dir, "rows", parts, &mut staged).await?)
        };
        let quarantine_manifest = if q_gz.is_empty() {
            None
        } else {
            Some(
                self.stage(&dir, "quarantine", vec![q_gz], &mut staged)
                    .await?,
            )
        };

        let now = rfc3339_now();
        let plan = sql::redshift::Plan {
            table: &self.table,
            target: &self.ledger_name,
            ledger: &self.tables.ledger,
            quarantine: &self.tables.quarantine,
            columns: &self.columns,
            dedup: self.dedup.as_deref(),
            objects_manifest: &objects_manifest,
            rows_manifest: rows_manifest.as_deref(),
            quarantine_manifest: quarantine_manifest.as_deref(),
            iam_role: &self.iam_role,
            batch_id: &batch_id,
            now: &now,
        };
        let (stmts, insert_at) = sql::redshift::batch(&plan);
        let answers = match self.runner.transaction(&stmts, &batch_id).await {
            Ok(a) => a,
            Err(e) => {
                let cause = if e.to_string().contains("load_error")
                    || e.to_string().contains("Load into table")
                {
                    self.copy_error(&dir).await
                } else {
                    None
                };
                self.unstage(&staged).await;
                return Err(cause.map_or(e, rs));
            }
        };
        self.unstage(&staged).await;
        let loaded: HashSet<String> = answers
            .last()
            .map(|a| {
                a.rows
                    .iter()
                    .filter_map(|r| r.first().cloned().flatten())
                    .collect()
            })
            .unwrap_or_default();
        let inserted =
            insert_at.and_then(|i| answers.get(i)).map_or(0, |a| a.affected);
        let mut out =
            BatchOutcome { batch_id, attempts: 1, ..Default::default() };
        let mut rows = 0u64;
        for o in &objects {
            if !loaded.contains(&o.key) {
                out.skipped_duplicate.push(o.key.clone());
                continue;
            }
            out.loaded.push(o.key.clone());
            out.events += o.events;
            out.filtered += o.filtered;
            out.rejected += o.rejected;
            out.errors += u64::try_from(o.errors.len()).unwrap_or(0);
            out.quarantined +=
                o.rejected + u64::try_from(o.errors.len()).unwrap_or(0);
            rows += o.rows;
        }
        out.skipped_duplicate.extend(repeated);
        out.rows_copied = rows;
        out.rows_inserted = inserted;
        out.duplicate_events = rows.saturating_sub(inserted);
        Ok(out)
    }

    fn retries(&self) -> u64 {
        self.retries
    }

    fn info(&self) -> TargetInfo {
        TargetInfo {
            table: self.ledger_name.clone(),
            created: self.created,
            ledger: self.tables.ledger.to_string(),
            quarantine: self.tables.quarantine.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// The messages concurrent creates fail with, on Redshift and on the
    /// PostgreSQL catalog, are races; other failures are not.
    #[test]
    fn create_races_are_recognised() {
        for m in [
            "query: relation \"events\" already exists (42P07)",
            "query: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\" (23505)",
            "query: duplicate key value violates unique constraint \"pg_namespace_nspname_index\"",
        ] {
            assert!(is_create_race(m), "{m}");
        }
        for m in [
            "query: duplicate key value violates unique constraint \"events_pkey\"",
            "query: permission denied for schema public",
            "connection refused",
        ] {
            assert!(!is_create_race(m), "{m}");
        }
    }

    /// Every statement of a batch's plan, with identifiers and literals
    /// that need escaping, parses with sqlparser's Redshift dialect.
    #[test]
    fn the_plan_parses_as_redshift_sql() {
        use sqlparser::dialect::RedshiftSqlDialect;
        use sqlparser::parser::Parser;
        let table = TableName::new(Some("Ops\"x"), "log's; DROP").unwrap();
        let tables = LedgerTables::new(Some("Ops\"x"), None, None).unwrap();
        let columns = vec![
            ("event time".to_owned(), "timestamptz".to_owned()),
            ("id\"".to_owned(), "varchar(256)".to_owned()),
            ("n".to_owned(), "bigint".to_owned()),
        ];
        for dedup in [None, Some("id\"")] {
            let plan = sql::redshift::Plan {
                table: &table,
                target: "Ops\"x.log's; DROP",
                ledger: &tables.ledger,
                quarantine: &tables.quarantine,
                columns: &columns,
                dedup,
                objects_manifest: "s3://b/p/it's/objects.manifest",
                rows_manifest: Some("s3://b/p/it's/rows.manifest"),
                quarantine_manifest: Some("s3://b/p/q.manifest"),
                iam_role: "arn:aws:iam::1:role/r'1",
                batch_id: "b'1",
                now: "2026-12-01T00:00:00Z",
            };
            let (stmts, insert) = sql::redshift::batch(&plan);
            assert!(insert.is_some());
            for s in &stmts {
                // sqlparser has no LOCK and no COPY … MANIFEST; those are
                // checked by shape below.
                if s.starts_with("LOCK ") || s.starts_with("COPY ") {
                    continue;
                }
                Parser::parse_sql(&RedshiftSqlDialect {}, s)
                    .unwrap_or_else(|e| panic!("{e}: {s}"));
            }
            let copies: Vec<&String> =
                stmts.iter().filter(|s| s.starts_with("COPY ")).collect();
            assert_eq!(copies.len(), 3);
            for c in copies {
                assert!(c.contains("IAM_ROLE 'arn:aws:iam::1:role/r''1' MANIFEST FORMAT AS CSV GZIP NULL AS '\\N'"), "{c}");
                assert!(c.ends_with(" MAXERROR 0"), "{c}");
                assert!(
                    c.contains("'s3://b/p/it''s/") || c.contains("q.manifest"),
                    "{c}"
                );
            }
            assert_eq!(stmts[0], "LOCK \"Ops\"\"x\".\"cwl_copy_ledger\"");
            assert!(stmts
                .iter()
                .all(|s| !s.contains("ON CONFLICT") && !s.contains("STDIN")));
            assert!(stmts.last().unwrap().starts_with("SELECT \"key\" FROM"));
        }
        for s in sql::redshift::ledger_ddl(&tables.ledger, &tables.quarantine)
        {
            Parser::parse_sql(&RedshiftSqlDialect {}, &s)
                .unwrap_or_else(|e| panic!("{e}: {s}"));
        }
        let keys = vec!["s3://b/it's".to_owned(), "k2".to_owned()];
        let q = sql::redshift::loaded(&tables.ledger, "t'", &keys);
        Parser::parse_sql(&RedshiftSqlDialect {}, &q).unwrap();
        assert!(q.contains("'s3://b/it''s', 'k2'"), "{q}");
    }

    #[test]
    fn urls() {
        assert_eq!(
            Endpoint::parse("redshift://u@h:5439/db").unwrap(),
            Some(Endpoint::Wire("postgres://u@h:5439/db".into()))
        );
        assert_eq!(
            Endpoint::parse("redshift-data://cluster/c1/dev?db_user=awsuser")
                .unwrap(),
            Some(Endpoint::Cluster {
                cluster: "c1".into(),
                database: "dev".into(),
                db_user: Some("awsuser".into()),
                secret_arn: None
            })
        );
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:x-AbC";
        assert_eq!(
            Endpoint::parse(&format!(
                "redshift-data://workgroup/wg/dev?secret_arn={arn}"
            ))
            .unwrap(),
            Some(Endpoint::Workgroup {
                workgroup: "wg".into(),
                database: "dev".into(),
                secret_arn: Some(arn.into())
            })
        );
        assert_eq!(Endpoint::parse("postgres://h/db").unwrap(), None);
        for bad in [
            "redshift-data://cluster/c1/dev",
            "redshift-data://cluster/c1",
            "redshift-data://nodes/c1/dev?db_user=u",
            "redshift-data://workgroup/wg/dev?db_user=u",
            "redshift-data://cluster/c1/dev?password=x",
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("password=x"), "{e}");
        }
    }

    #[test]
    fn parts_split_at_records_evenly() {
        let a = Bytes::from_static(
            b"\"k1\",\"a\nb\",1\n\"k1\",\"c\",2\n\"k1\",\"d\"\"\n\",3\n",
        );
        let b = Bytes::from_static(b"\"k2\",\"e\",4\n");
        // The second object spilled to a file, in two pieces.
        let budget = crate::load::CsvBudget::new(0, None);
        let mut w = crate::load::CsvWriter::new(&budget);
        w.push(&mut b"\"k3\",\"f\n\",5\n".to_vec());
        let spilled = w.finish(&mut b"\"k3\",\"g\",6\n".to_vec()).unwrap();
        assert!(spilled.is_spilled() && spilled.pieces() == 2);
        let c = spilled.to_vec().unwrap();
        for n in 1..=6 {
            let csvs =
                [Csv::from(a.clone()), spilled.clone(), Csv::from(b.clone())];
            let parts = split_parts(&csvs, n).unwrap();
            assert_eq!(parts.len(), n);
            let mut all = Vec::new();
            for p in &parts {
                let mut d = flate2::read::GzDecoder::new(&p[..]);
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut s).unwrap();
                // Every part is whole records.
                assert!(s.is_empty() || s.ends_with(b"\n"));
                assert_eq!(
                    record_ends(&s).last().copied().unwrap_or(0),
                    s.len()
                );
                all.extend(s);
            }
            assert_eq!(all, [&a[..], &c[..], &b[..]].concat(), "n = {n}");
        }
        assert_eq!(record_ends(b"\"a\nb\",\"\"\"\"\nx\n"), [11, 13]);
    }

    #[test]
    fn csv_records_and_fields() {
        let mut out = Vec::new();
        csv_record(&mut out, &[Some("a\"b"), None, Some("")]);
        assert_eq!(out, b"\"a\"\"b\",\\N,\"\"\n");
        assert_eq!(
            csv_fields("\"s3://b/k,1\",\"x\"\"y\",\\N"),
            ["s3://b/k,1", "x\"y", "\\N"]
        );
    }
}
