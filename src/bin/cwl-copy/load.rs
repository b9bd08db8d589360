//! `cwl-copy load`: flags → a [`LoadConfig`], a source and a target, then
//! the library's [`cwl_copy::load::run`]; a summary line, the JSON
//! summary, and the exit code.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cwl_copy::load::source::s3::{sdk_config, S3};
use cwl_copy::load::source::sqs::{SqsOptions, SqsSource, Stopper};
use cwl_copy::load::target::redshift::{
    Endpoint, RedshiftOptions, RedshiftTarget,
};
use cwl_copy::load::{
    BatchLimits, BatchOutcome, ConnError, CopyTarget, LedgerTables, Listing,
    LoadConfig, LoadError, LoaderOptions, ObjectRows, PgHost, PgLoadError,
    PgLoader, PgSettings, PgTarget, Progress, TableName, TargetInfo,
};
use cwl_copy::load::{Input, ListOptions, LoadSummary, Target};
use cwl_copy::{Converter, Dialect};

use crate::args::{self, DecodeOpts, SourceOpts, Usage};
use crate::report::{self, count, thousands, ByteSize, Problems};

/// The flags of `cwl-copy load`.
#[derive(clap::Args, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) opts: DecodeOpts,
    #[command(flatten)]
    pub(crate) source: SourceOpts,
    #[arg(long, value_name = "SPEC", help = args::COLUMNS_HELP)]
    pub(crate) columns: PathBuf,
    /// The target: PostgreSQL, a `postgres://user@host:port/db` URL or
    /// `host=… port=…` keywords, merged with PGHOST, PGPORT, PGUSER,
    /// PGDATABASE, PGPASSWORD, PGPASSFILE/~/.pgpass and PGSSLMODE (keep
    /// passwords out of it: use PGPASSWORD or .pgpass); or Redshift,
    /// `redshift://user@host:5439/db` (the wire protocol, same
    /// credentials), `redshift-data://cluster/ID/DB?db_user=USER` (or
    /// `?secret_arn=ARN`), `redshift-data://workgroup/NAME/DB` (the Data
    /// API) [default: PostgreSQL as the libpq environment says, as for
    /// psql].
    #[arg(long, value_name = "CONNINFO")]
    pub(crate) target: Option<String>,
    #[arg(long, value_name = "NAME", help = args::TABLE_HELP)]
    pub(crate) table: Option<String>,
    #[arg(long, value_name = "NAME", help = args::SCHEMA_HELP)]
    pub(crate) schema: Option<String>,
    /// Create the target table from the column spec if it is missing.
    #[arg(long)]
    pub(crate) create_table: bool,
    /// Close a batch at this many bytes of CSV and rejected events (their
    /// messages and reasons, held for the quarantine): bytes, or a size
    /// such as 64MiB [default: 64 MiB].
    // In the text: clap would quote it (a test checks it is the const).
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(BatchLimits::DEFAULT_MAX_BYTES), hide_default_value = true)]
    pub(crate) batch_bytes: ByteSize,
    /// CSV held in memory by the whole load (objects converting, waiting
    /// and loading): bytes, or a size such as 32MiB; an object's CSV
    /// beyond it goes to an unnamed temporary file in $TMPDIR (or /tmp),
    /// read back when its batch loads; 0 sends every object's CSV there
    /// [default: 32 MiB].
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(cwl_copy::load::DEFAULT_CSV_MEMORY_BYTES), hide_default_value = true)]
    pub(crate) csv_memory_bytes: ByteSize,
    /// Close a batch at this many objects.
    #[arg(long, value_name = "N", default_value_t = BatchLimits::DEFAULT_MAX_OBJECTS)]
    pub(crate) batch_objects: usize,
    /// Close a batch this many seconds after its first object.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) batch_seconds: u64,
    /// Load only event ids not already in the table (through a staging
    /// table and a unique index on the spec's `@id` column).
    #[arg(long)]
    pub(crate) dedup_events: bool,
    #[arg(long, value_name = "NAME", help = args::LEDGER_HELP, default_value = cwl_copy::load::DEFAULT_LEDGER_TABLE)]
    pub(crate) ledger_table: String,
    /// Quarantine table: rejected events and undecodable input.
    #[arg(long, value_name = "NAME", default_value = cwl_copy::load::DEFAULT_QUARANTINE_TABLE)]
    pub(crate) quarantine_table: String,
    #[arg(long, value_name = "N", help = args::THREADS_HELP)]
    pub(crate) threads: Option<usize>,
    #[arg(long, value_name = "FILE", help = args::SUMMARY_HELP)]
    pub(crate) summary_json: Option<PathBuf>,
    /// Consume S3 event notifications from this SQS queue instead of
    /// listing INPUTs; messages are deleted only after their objects'
    /// batch commits.
    #[arg(long, value_name = "URL", conflicts_with = "inputs")]
    pub(crate) sqs_queue_url: Option<String>,
    /// With --sqs-queue-url: stop once a long poll finds the queue empty,
    /// after loading what was received (otherwise: run until SIGTERM or
    /// SIGINT).
    #[arg(long, requires = "sqs_queue_url")]
    pub(crate) once: bool,
    /// With --sqs-queue-url: long-poll wait of each receive, 0 to 20 s.
    #[arg(long, value_name = "SECS", default_value_t = 20, requires = "sqs_queue_url",
          value_parser = clap::value_parser!(i32).range(0..=20))]
    pub(crate) wait_seconds: i32,
    /// With --sqs-queue-url: the visibility timeout to assume and
    /// re-apply while objects load (a heartbeat at half of it)
    /// [default: the queue's VisibilityTimeout].
    #[arg(long, value_name = "SECS", requires = "sqs_queue_url",
          value_parser = clap::value_parser!(i32).range(1..=43_200))]
    pub(crate) visibility_timeout: Option<i32>,
    /// Redshift: the IAM role COPY reads the staged parts with (an ARN, or
    /// `default` for the cluster's default role).
    #[arg(long, value_name = "ARN|default")]
    pub(crate) iam_role: Option<String>,
    /// Redshift: where each batch's gzip CSV parts and manifest are
    /// staged (deleted after the commit; give the prefix a lifecycle rule
    /// for what a crash leaves). Must not overlap an input or the Firehose
    /// prefix.
    #[arg(long, value_name = "s3://BUCKET/PREFIX/")]
    pub(crate) staging: Option<String>,
    /// Redshift: parts per batch are a multiple of this [default: the
    /// cluster's slice count, from stv_slices; 1 on Serverless].
    #[arg(long, value_name = "N")]
    pub(crate) slices: Option<usize>,
    /// Redshift: print the statement plan of a batch and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Serve Prometheus text metrics on this address (e.g.
    /// 127.0.0.1:9898): counters of messages, objects, events, rows,
    /// rejects, batches and errors; gauges of messages in flight and the
    /// age of the oldest.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Files, directories (walked recursively, in sorted order) or
    /// s3://bucket/prefix/ (listed in key order), mixed.
    #[arg(required_unless_present = "sqs_queue_url", value_name = "INPUT")]
    pub(crate) inputs: Vec<String>,
}

/// `--staging s3://bucket/prefix/` as (bucket, prefix ending in `/`).
fn staging(args: &LoadArgs, inputs: &[Input]) -> Result<(String, String)> {
    let Some(url) = &args.staging else {
        return Err(Usage(
            "a Redshift target needs --staging s3://bucket/prefix/ (where \
             the batches' parts and manifests are staged) and --iam-role"
                .into(),
        )
        .into());
    };
    let Ok(Input::S3 { bucket, prefix }) = url.parse::<Input>() else {
        return Err(Usage(format!(
            "--staging {url}: expected s3://bucket/prefix/"
        ))
        .into());
    };
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix
    } else {
        format!("{prefix}/")
    };
    for input in inputs {
        if let Input::S3 { bucket: b, prefix: p } = input {
            if *b == bucket
                && (prefix.starts_with(p.as_str()) || p.starts_with(&prefix))
            {
                return Err(Usage(format!(
                    "--staging s3://{bucket}/{prefix} overlaps the input \
                     {input}: staged parts would raise S3 events into the \
                     same notifications and be read as logs; stage \
                     elsewhere"
                ))
                .into());
            }
        }
    }
    if prefix.contains("from_CloudWatchLogs") {
        return Err(Usage(format!(
            "--staging s3://{bucket}/{prefix} is under a Firehose prefix; \
             stage elsewhere"
        ))
        .into());
    }
    Ok((bucket, prefix))
}

pub(crate) fn run(args: &LoadArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let spec = args::read_spec(&args.columns, args.table.as_deref())?;
    let conninfo = args.target.as_deref().unwrap_or("");
    let redshift =
        Endpoint::parse(conninfo).map_err(|e| Usage(e.to_string()))?;
    let table = TableName::new(args.schema.as_deref(), spec.table())
        .map_err(|e| Usage(format!("--table: {e}")))?;
    let tables = LedgerTables::new(
        args.schema.as_deref(),
        Some(&args.ledger_table),
        Some(&args.quarantine_table),
    )
    .map_err(|e| Usage(format!("{e}")))?;
    let inputs = args::parse_inputs(&args.inputs)?;
    let list = args::list_options(&args.source)?;
    let any_s3 = inputs.iter().any(Input::is_s3);
    if args.sqs_queue_url.is_some()
        && (args.source.from.is_some()
            || args.source.prefix_template.is_some())
    {
        return Err(Usage(
            "--from, --to and --prefix-template list S3 prefixes; with \
             --sqs-queue-url the queue names the objects (use `cwl-copy \
             enqueue` to queue a backfill)"
                .into(),
        )
        .into());
    }
    let id = spec.id_column().map(str::to_owned);
    if args.dedup_events && id.is_none() {
        return Err(Usage(
            "--dedup-events needs a column with source = \"@id\" in the spec"
                .into(),
        )
        .into());
    }
    let dialect =
        if redshift.is_some() { Dialect::Redshift } else { Dialect::Postgres };
    let plain = args::mapper(&args.columns, &spec, dialect)?;
    let create =
        args.create_table.then(|| cwl_copy::sql::create_table(&plain, &table));

    // The target: PostgreSQL, or Redshift (wire or Data API).
    enum Plan {
        Pg(CopyTarget, PgSettings),
        Rs(Box<RedshiftOptions>, Option<PgSettings>),
    }
    let (mapper, plan) = match &redshift {
        None => {
            let columns: Vec<String> =
                spec.column_names().map(str::to_owned).collect();
            let mut copy = CopyTarget::new(table.clone(), &columns)
                .map_err(|e| Usage(format!("{e}")))?;
            if args.dedup_events {
                if let Some(id) = &id {
                    copy = copy
                        .dedup_on(id)
                        .map_err(|e| Usage(format!("{e}")))?;
                }
            }
            // Reads env and ~/.pgpass: done before the runtime starts.
            let settings =
                PgSettings::resolve(conninfo).context("--target")?;
            (plain, Plan::Pg(copy, settings))
        }
        Some(endpoint) => {
            let staging = staging(args, &inputs)?;
            let Some(iam_role) = args.iam_role.clone() else {
                return Err(Usage(
                    "a Redshift target needs --iam-role ARN (or `default`), \
                     the role COPY reads the staged parts with"
                        .into(),
                )
                .into());
            };
            let settings = match endpoint {
                Endpoint::Wire(url) => {
                    Some(PgSettings::resolve(url).context("--target")?)
                }
                _ => None,
            };
            let columns = cwl_copy::sql::column_types(&plain, 0);
            let id_position = id.as_ref().and_then(|id| {
                spec.column_names().position(|c| c == id.as_str())
            });
            let with_object = spec
                .with_object_column(cwl_copy::sql::redshift::OBJECT_COLUMN);
            let mapper =
                args::mapper(&args.columns, &with_object, Dialect::Redshift)?;
            let options = RedshiftOptions {
                endpoint: endpoint.clone(),
                iam_role,
                staging,
                table: table.clone(),
                tables: tables.clone(),
                columns,
                dedup: if args.dedup_events { id.clone() } else { None },
                id_position,
                create: create.clone(),
                slices: args.slices,
            };
            (mapper, Plan::Rs(Box::new(options), settings))
        }
    };

    let mut config =
        LoadConfig::new(Converter::new(args.opts.decoder(), mapper));
    config.threads = args::threads(args.threads);
    config.limits = BatchLimits {
        max_bytes: args.batch_bytes.0.max(1),
        max_objects: args.batch_objects.max(1),
        max_age: Some(Duration::from_secs(args.batch_seconds)),
    };
    if let Some(c) = args.source.s3_concurrency {
        config.s3_concurrency = c.max(1);
    }
    config.max_object_bytes = args.opts.max_object_bytes.0;
    config.csv_memory_bytes = args.csv_memory_bytes.0;
    config.name_by_ledger_key = redshift.is_some();
    // One structured line per batch for a long-running consumer.
    config.log_batches = args.sqs_queue_url.is_some();

    if args.dry_run {
        let Plan::Rs(options, settings) = plan else {
            return Err(Usage(
                "--dry-run prints a Redshift target's statement plan".into(),
            )
            .into());
        };
        let rt = args::runtime()?;
        let lines = rt.block_on(async {
            let sdk = sdk_config(args.source.endpoint_url.as_deref()).await;
            let s3 = S3::connect(&args::s3_options(&args.source)).await;
            RedshiftTarget::new(*options, settings, &sdk, s3).dry_run_plan()
        });
        for l in lines {
            println!("{l};");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = ProgressBar::start(&config.progress);

    let rt = args::runtime()?;
    if let Some(addr) = args.metrics_addr {
        let _guard = rt.enter();
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("serving metrics on {addr}"))?;
        cwl_copy::load::describe_metrics();
    }
    let result: Result<(LoadSummary, Problems)> = rt.block_on(async {
        match plan {
            Plan::Pg(copy, settings) => {
                let loader = connect(
                    settings,
                    LoaderOptions {
                        tables: tables.clone(),
                        ..Default::default()
                    },
                )
                .await?;
                let mut target = PgTarget::new(loader, copy, tables, create);
                drive(args, &config, &inputs, &list, any_s3, &mut target).await
            }
            Plan::Rs(options, settings) => {
                let sdk =
                    sdk_config(args.source.endpoint_url.as_deref()).await;
                let s3 = S3::connect(&args::s3_options(&args.source)).await;
                let mut target =
                    RedshiftTarget::new(*options, settings, &sdk, s3);
                drive(args, &config, &inputs, &list, any_s3, &mut target).await
            }
        }
    });
    drop(bar);
    let (summary, problems) = match result {
        Ok(s) => s,
        Err(e) => {
            // The summary is written on failure too, with the error.
            if let Some(path) = &args.summary_json {
                let v = serde_json::json!({
                    "error": crate::render(&e),
                    "reconciled": false,
                    "elapsed_seconds": started.elapsed().as_secs_f64(),
                });
                let _ = args::write_summary(path, &v);
            }
            return Err(e);
        }
    };
    if summary.objects_seen == 0 && args.sqs_queue_url.is_none() {
        eprintln!(
            "cwl-copy: warning: no objects found in {}",
            args.inputs.join(" ")
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let t = &summary.target;
    problems.print(&format!("all of them are in {}", t.quarantine));
    eprintln!(
        "cwl-copy: {}",
        summary_line(&summary, args.dedup_events, started.elapsed())
    );
    if args.sqs_queue_url.is_some() {
        let m = &summary.messages;
        eprintln!(
            "cwl-copy: {} received, {} deleted ({}, {}, {}), {} returned",
            count(m.messages_received, "message"),
            thousands(m.messages_deleted),
            count(m.messages_test_events, "test event"),
            count(m.messages_ignored, "ignored event"),
            count(m.messages_quarantined, "quarantined body"),
            thousands(m.messages_returned),
        );
    }
    let as_lines = report::AsLines {
        objects: summary.objects_read_as_lines,
        first: summary.first_read_as_lines.clone(),
    };
    if args.opts.variant == cwl_copy::Variant::Auto {
        if let Some(words) = as_lines.describe(summary.objects_seen) {
            eprintln!("cwl-copy: {words}");
        }
    }
    for name in summary.vanished.iter().take(5) {
        eprintln!("cwl-copy: vanished (deleted after listing): {name}");
    }
    eprintln!(
        "cwl-copy: rows into {}{}; objects recorded in {}; {} quarantined in {}",
        t.table,
        if t.created { " (created)" } else { "" },
        t.ledger,
        thousands(summary.rejected + summary.errors),
        t.quarantine
    );
    let reconciled = summary.reconcile();
    if let Some(path) = &args.summary_json {
        let mut v = serde_json::to_value(&summary)?;
        v["reconciled"] = serde_json::Value::Bool(reconciled.is_ok());
        v["elapsed_seconds"] = elapsed.into();
        v["peak_rss_bytes"] = args::peak_rss().into();
        args::write_summary(path, &v)?;
    }
    reconciled.map_err(|e| {
        anyhow::anyhow!("internal error: counts do not reconcile: {e}")
    })?;
    let quarantined_bodies = summary.messages.messages_quarantined > 0;
    Ok(if summary.rejected > 0 || summary.errors > 0 || quarantined_bodies {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary line: `12 objects (2 already loaded, 10 loaded), 2,880
/// events: 2,800 rows, 80 filtered out, 0 rejected; 0 decode errors; 1
/// batch; 3.4 s`. What is 0 in the parentheses is left out.
fn summary_line(
    s: &LoadSummary,
    dedup: bool,
    elapsed: std::time::Duration,
) -> String {
    let mut objects = vec![];
    for (n, what) in [
        (s.objects_skipped_already_loaded, "already loaded"),
        (s.objects_loaded, "loaded"),
        (s.objects_skipped_duplicate, "loaded by another run"),
        (s.objects_failed, "failed"),
        (s.objects_vanished, "vanished"),
    ] {
        if n > 0 || what == "loaded" {
            objects.push(format!("{} {what}", thousands(n)));
        }
    }
    let duplicates = if dedup || s.duplicate_events > 0 {
        format!(", {}", count(s.duplicate_events, "duplicate event"))
    } else {
        String::new()
    };
    format!(
        "{} ({}), {}: {}, {} filtered out, {} rejected{duplicates}; {}; {}; \
         {}",
        count(s.objects_seen, "object"),
        objects.join(", "),
        count(s.events, "event"),
        count(s.rows, "row"),
        thousands(s.filtered),
        thousands(s.rejected),
        count(s.errors, "decode error"),
        count(s.batches, "batch"),
        report::duration(elapsed),
    )
}

/// Runs the load from the INPUTs or the queue into `target`.
async fn drive<T: Target + Send>(
    args: &LoadArgs,
    config: &LoadConfig,
    inputs: &[Input],
    list: &ListOptions,
    any_s3: bool,
    target: &mut T,
) -> Result<(LoadSummary, Problems)> {
    let mut target = Noting { inner: target, problems: Problems::default() };
    let summary = match &args.sqs_queue_url {
        Some(url) => {
            let sdk = sdk_config(args.source.endpoint_url.as_deref()).await;
            let s3 = S3::connect(&args::s3_options(&args.source)).await;
            let mut opts = SqsOptions::new(url);
            opts.once = args.once;
            opts.wait_seconds = args.wait_seconds;
            opts.visibility_timeout = args.visibility_timeout;
            opts.max_in_flight =
                args.batch_objects.saturating_mul(2).clamp(20, 100_000);
            let source =
                SqsSource::connect(aws_sdk_sqs::Client::new(&sdk), s3, opts)
                    .await?;
            let stopper = source.stopper();
            let _signals = SignalGuard(tokio::spawn(on_signals(stopper)));
            cwl_copy::load::run(config, source, &mut target).await?
        }
        None => {
            let s3 = if any_s3 {
                Some(S3::connect(&args::s3_options(&args.source)).await)
            } else {
                None
            };
            let source = Listing::new(inputs, list, s3).await?;
            cwl_copy::load::run(config, source, &mut target).await?
        }
    };
    Ok((summary, target.problems))
}

/// A target that notes the rejected events and decode errors of the
/// objects each batch committed (what went into the quarantine), for
/// stderr.
struct Noting<'t, T> {
    inner: &'t mut T,
    problems: Problems,
}

impl<T: Target + Send> Target for Noting<'_, T> {
    async fn prepare(&mut self) -> Result<(), LoadError> {
        self.inner.prepare().await
    }

    async fn already_loaded(
        &mut self,
        keys: &[String],
    ) -> Result<HashSet<String>, LoadError> {
        self.inner.already_loaded(keys).await
    }

    async fn load_batch(
        &mut self,
        batch: &[ObjectRows],
    ) -> Result<BatchOutcome, LoadError> {
        let outcome = self.inner.load_batch(batch).await?;
        let mut loaded: HashSet<&str> =
            outcome.loaded.iter().map(String::as_str).collect();
        for o in batch {
            // Each committed object once (a key repeated in a batch is
            // loaded once).
            if !loaded.remove(o.key.as_str()) {
                continue;
            }
            for r in &o.rejects {
                // The quarantine's reason starts with the code.
                let reason = r
                    .reason
                    .strip_prefix(r.code.as_str())
                    .and_then(|s| s.strip_prefix(": "))
                    .unwrap_or(&r.reason);
                self.problems.reject(
                    &o.key,
                    r.member,
                    r.event_id.as_deref(),
                    &r.code,
                    None,
                    reason,
                );
            }
            for e in &o.errors {
                match &e.reason {
                    // The decoder's error: it names the object, member and
                    // offset.
                    None => self.problems.error(&e.kind, &e.message),
                    // Input that is no object (an SQS message body): the
                    // message is the text itself.
                    Some(reason) => self.problems.error(
                        &e.kind,
                        &format!("{}: {reason}: {}", o.key, e.message),
                    ),
                }
            }
        }
        Ok(outcome)
    }

    fn retries(&self) -> u64 {
        self.inner.retries()
    }

    fn info(&self) -> TargetInfo {
        self.inner.info()
    }
}

/// Where `settings` connect: `host:port` for each host (a Unix socket's
/// path), then the database and user.
pub(crate) fn connect_target(settings: &PgSettings) -> String {
    let ports = settings.ports();
    let at: Vec<String> = settings
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or_else(|| ports.first()).copied();
            let port = port.map_or_else(String::new, |p| p.to_string());
            match h {
                PgHost::Unix(dir) => {
                    format!(
                        "{}",
                        dir.join(format!(".s.PGSQL.{port}")).display()
                    )
                }
                PgHost::Tcp(name) if name.contains(':') => {
                    format!("[{name}]:{port}")
                }
                PgHost::Tcp(name) => format!("{name}:{port}"),
            }
        })
        .collect();
    format!(
        "{} (database \"{}\", user \"{}\")",
        at.join(", "),
        settings.dbname(),
        settings.user()
    )
}

/// Connects to PostgreSQL; a server that stayed unreachable is one
/// sentence: where, what was tried, and the cause once.
pub(crate) async fn connect(
    settings: PgSettings,
    options: LoaderOptions,
) -> Result<PgLoader> {
    let target = connect_target(&settings);
    PgLoader::connect(settings, options).await.map_err(|e| match &e {
        PgLoadError::RetriesExhausted { attempts, elapsed, last } => {
            let cause = match last.as_ref() {
                PgLoadError::Connect(ConnError::Connect {
                    source, ..
                }) => root_cause(source),
                other => other.to_string(),
            };
            anyhow::anyhow!(
                "cannot connect to PostgreSQL at {target}: {cause}; {} in \
                 {}",
                count(u64::from(*attempts), "attempt"),
                report::duration(*elapsed)
            )
        }
        _ => anyhow::Error::new(e).context("connecting to PostgreSQL"),
    })
}

/// The innermost cause of `e` (`Connection refused (os error 111)`), or
/// `e` itself.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Aborts the signal task when the load is over.
struct SignalGuard(tokio::task::JoinHandle<()>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGTERM or SIGINT: stop receiving, finish what was received, exit 0.
/// A second one: exit at once (the batch in progress rolls back; its
/// messages come back after their visibility timeout).
async fn on_signals(stopper: Stopper) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT");
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if n == 0 {
            eprintln!(
                "cwl-copy: stopping: no more receives; finishing what was \
                 received (signal again to abandon it)"
            );
            stopper.stop();
        } else {
            eprintln!("cwl-copy: abandoned; nothing of the batch in progress was committed");
            std::process::exit(130);
        }
    }
}

/// A progress bar on a terminal (nothing otherwise), redrawn from the
/// loader's counters until dropped.
struct ProgressBar {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    fn start(progress: &Arc<Progress>) -> ProgressBar {
        let none = ProgressBar { stop: None, thread: None };
        if !io::IsTerminal::is_terminal(&io::stderr()) {
            return none;
        }
        let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} input converted ({bytes_per_sec}, \
             eta {eta})  {msg}",
        ) else {
            return none;
        };
        let bar = indicatif::ProgressBar::new(0).with_style(style);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p = Arc::clone(progress);
        let thread = std::thread::spawn(move || loop {
            let get =
                |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let todo =
                get(&p.bytes_listed).saturating_sub(get(&p.bytes_skipped));
            bar.set_length(todo);
            bar.set_position(get(&p.bytes_converted));
            bar.set_message(format!(
                "{} listed, {} skipped (ledger), {} downloaded, {} loaded",
                count(get(&p.objects_listed), "object"),
                thousands(get(&p.objects_skipped)),
                indicatif::HumanBytes(get(&p.bytes_downloaded)),
                thousands(get(&p.objects_loaded)),
            ));
            match rx.recv_timeout(Duration::from_millis(200)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => {
                    bar.finish_and_clear();
                    return;
                }
            }
        });
        ProgressBar { stop: Some(tx), thread: Some(thread) }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_says_the_batch_size_default() {
        let cmd =
            <LoadArgs as clap::Args>::augment_args(clap::Command::new("load"));
        let arg =
            cmd.get_arguments().find(|a| a.get_id() == "batch_bytes").unwrap();
        let text = arg.get_help().unwrap().to_string();
        let default = ByteSize(BatchLimits::DEFAULT_MAX_BYTES).to_string();
        assert!(text.ends_with(&format!("[default: {default}]")), "{text}");
    }
}
