//! `cwl-copy load`: flags → a [`LoadConfig`], a source and a target, then
//! the library's [`cwl_copy::load::run`]; a summary line, the JSON
//! summary, and the exit code.

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
    BatchLimits, CopyTarget, LedgerTables, Listing, LoadConfig, LoaderOptions,
    PgLoader, PgSettings, PgTarget, Progress, TableName,
};
use cwl_copy::load::{Input, ListOptions, LoadSummary, Target};
use cwl_copy::{Converter, Dialect};

use crate::args::{self, DecodeOpts, SourceOpts, Usage};

/// The flags of `cwl-copy load`.
#[derive(clap::Args, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) opts: DecodeOpts,
    #[command(flatten)]
    pub(crate) source: SourceOpts,
    /// The column spec (TOML).
    #[arg(long, value_name = "SPEC")]
    pub(crate) columns: PathBuf,
    /// The target: PostgreSQL, a `postgres://user@host:port/db` URL or
    /// `host=… port=…` keywords, merged with PGHOST, PGPORT, PGUSER,
    /// PGDATABASE, PGPASSWORD, PGPASSFILE/~/.pgpass and PGSSLMODE (keep
    /// passwords out of it: use PGPASSWORD or .pgpass); or Redshift,
    /// `redshift://user@host:5439/db` (the wire protocol, same
    /// credentials), `redshift-data://cluster/ID/DB?db_user=USER` (or
    /// `?secret_arn=ARN`), `redshift-data://workgroup/NAME/DB` (the Data
    /// API).
    #[arg(long, value_name = "CONNINFO", default_value = "")]
    pub(crate) target: String,
    /// Target table [default: the spec's `table`].
    #[arg(long, value_name = "NAME")]
    pub(crate) table: Option<String>,
    /// Schema of the target, ledger and quarantine tables [default: the
    /// server's search_path].
    #[arg(long, value_name = "NAME")]
    pub(crate) schema: Option<String>,
    /// Create the target table from the column spec if it is missing.
    #[arg(long)]
    pub(crate) create_table: bool,
    /// Close a batch at this many CSV bytes.
    #[arg(long, value_name = "N", default_value_t = BatchLimits::DEFAULT_MAX_BYTES)]
    pub(crate) batch_bytes: u64,
    /// CSV held in memory by the whole load, in bytes (objects converting,
    /// waiting and loading); an object's CSV beyond it goes to an unnamed
    /// temporary file in $TMPDIR (or /tmp), read back when its batch
    /// loads. 0 writes every object's CSV to a file.
    #[arg(long, value_name = "N", default_value_t = cwl_copy::load::DEFAULT_CSV_MEMORY_BYTES)]
    pub(crate) csv_memory_bytes: u64,
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
    /// Ledger table name.
    #[arg(long, value_name = "NAME", default_value = cwl_copy::load::DEFAULT_LEDGER_TABLE)]
    pub(crate) ledger_table: String,
    /// Quarantine table name (rejected events, undecodable input).
    #[arg(long, value_name = "NAME", default_value = cwl_copy::load::DEFAULT_QUARANTINE_TABLE)]
    pub(crate) quarantine_table: String,
    /// Worker threads for converting [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Write a JSON summary of the run to this file.
    #[arg(long, value_name = "FILE")]
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
    let redshift =
        Endpoint::parse(&args.target).map_err(|e| Usage(e.to_string()))?;
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
                PgSettings::resolve(&args.target).context("--target")?;
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
        max_bytes: args.batch_bytes.max(1),
        max_objects: args.batch_objects.max(1),
        max_age: Some(Duration::from_secs(args.batch_seconds)),
    };
    if let Some(c) = args.source.s3_concurrency {
        config.s3_concurrency = c.max(1);
    }
    config.max_object_bytes = args.opts.max_object_bytes;
    config.csv_memory_bytes = args.csv_memory_bytes;
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
    let result = rt.block_on(async {
        match plan {
            Plan::Pg(copy, settings) => {
                let loader = PgLoader::connect(
                    settings,
                    LoaderOptions {
                        tables: tables.clone(),
                        ..Default::default()
                    },
                )
                .await
                .context("connecting to PostgreSQL")?;
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
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            // The summary is written on failure too, with the error.
            if let Some(path) = &args.summary_json {
                let v = serde_json::json!({
                    "error": format!("{e:#}"),
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
    eprintln!(
        "cwl-copy: {} objects ({} already loaded, {} loaded, {} loaded by another run, {} vanished), {} events: {} rows, {} filtered out, {} rejected, {} duplicate events; {} decode errors; {} batches; {:.2}s",
        summary.objects_seen,
        summary.objects_skipped_already_loaded,
        summary.objects_loaded,
        summary.objects_skipped_duplicate,
        summary.objects_vanished,
        summary.events,
        summary.rows,
        summary.filtered,
        summary.rejected,
        summary.duplicate_events,
        summary.errors,
        summary.batches,
        elapsed
    );
    if args.sqs_queue_url.is_some() {
        let m = &summary.messages;
        eprintln!(
            "cwl-copy: {} messages received, {} deleted ({} test events, {} ignored events, {} quarantined bodies), {} returned",
            m.messages_received,
            m.messages_deleted,
            m.messages_test_events,
            m.messages_ignored,
            m.messages_quarantined,
            m.messages_returned,
        );
    }
    for name in summary.vanished.iter().take(5) {
        eprintln!("cwl-copy: vanished (deleted after listing): {name}");
    }
    let t = &summary.target;
    eprintln!(
        "cwl-copy: rows into {}{}; objects recorded in {}; {} quarantined in {}",
        t.table,
        if t.created { " (created)" } else { "" },
        t.ledger,
        summary.rejected + summary.errors,
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

/// Runs the load from the INPUTs or the queue into `target`.
async fn drive<T: Target>(
    args: &LoadArgs,
    config: &LoadConfig,
    inputs: &[Input],
    list: &ListOptions,
    any_s3: bool,
    target: &mut T,
) -> Result<LoadSummary> {
    Ok(match &args.sqs_queue_url {
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
            cwl_copy::load::run(config, source, target).await?
        }
        None => {
            let s3 = if any_s3 {
                Some(S3::connect(&args::s3_options(&args.source)).await)
            } else {
                None
            };
            let source = Listing::new(inputs, list, s3).await?;
            cwl_copy::load::run(config, source, target).await?
        }
    })
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
            "{bar:30} {bytes}/{total_bytes} read ({bytes_per_sec}, eta {eta})  {msg}",
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
                get(&p.objects_listed),
                get(&p.objects_skipped),
                indicatif::HumanBytes(get(&p.bytes_downloaded)),
                get(&p.objects_loaded),
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
