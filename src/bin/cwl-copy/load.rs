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
use cwl_copy::load::source::s3::S3;
use cwl_copy::load::source::sqs::{SqsOptions, SqsSource, Stopper};
use cwl_copy::load::{
    BatchLimits, CopyTarget, LedgerTables, Listing, LoadConfig, LoaderOptions,
    PgLoader, PgSettings, PgTarget, Progress, TableName,
};
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
    /// PostgreSQL connection: a `postgres://user@host:port/db` URL or
    /// `host=… port=…` keywords, merged with PGHOST, PGPORT, PGUSER,
    /// PGDATABASE, PGPASSWORD, PGPASSFILE/~/.pgpass and PGSSLMODE. Keep
    /// passwords out of it: use PGPASSWORD or .pgpass.
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

pub(crate) fn run(args: &LoadArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let spec = args::read_spec(&args.columns, args.table.as_deref())?;
    let mapper = args::mapper(&args.columns, &spec, Dialect::Postgres)?;
    let table = TableName::new(args.schema.as_deref(), spec.table())
        .map_err(|e| Usage(format!("--table: {e}")))?;
    let columns: Vec<String> =
        spec.column_names().map(str::to_owned).collect();
    let mut copy = CopyTarget::new(table.clone(), &columns)
        .map_err(|e| Usage(format!("{e}")))?;
    if args.dedup_events {
        let id = spec.id_column().ok_or_else(|| {
            Usage(
                "--dedup-events needs a column with source = \"@id\" in the \
                 spec"
                    .into(),
            )
        })?;
        copy = copy.dedup_on(id).map_err(|e| Usage(format!("{e}")))?;
    }
    let tables = LedgerTables::new(
        args.schema.as_deref(),
        Some(&args.ledger_table),
        Some(&args.quarantine_table),
    )
    .map_err(|e| Usage(format!("{e}")))?;
    let create = args
        .create_table
        .then(|| cwl_copy::sql::create_table(&mapper, &table));
    let inputs = args::parse_inputs(&args.inputs)?;
    let list = args::list_options(&args.source)?;
    let any_s3 = inputs.iter().any(cwl_copy::load::Input::is_s3);
    // Reads env and ~/.pgpass: done before the runtime starts.
    let settings = PgSettings::resolve(&args.target).context("--target")?;

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
    let bar = ProgressBar::start(&config.progress);

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

    // One structured line per batch for a long-running consumer.
    config.log_batches = args.sqs_queue_url.is_some();

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
        let loader = PgLoader::connect(
            settings,
            LoaderOptions { tables: tables.clone(), ..Default::default() },
        )
        .await
        .context("connecting to PostgreSQL")?;
        let mut target = PgTarget::new(loader, copy, tables, create);
        let summary = match &args.sqs_queue_url {
            Some(url) => {
                let sdk = cwl_copy::load::source::s3::sdk_config(
                    args.source.endpoint_url.as_deref(),
                )
                .await;
                let s3 = S3::connect(&args::s3_options(&args.source)).await;
                let mut opts = SqsOptions::new(url);
                opts.once = args.once;
                opts.wait_seconds = args.wait_seconds;
                opts.visibility_timeout = args.visibility_timeout;
                opts.max_in_flight =
                    args.batch_objects.saturating_mul(2).clamp(20, 100_000);
                let source = SqsSource::connect(
                    aws_sdk_sqs::Client::new(&sdk),
                    s3,
                    opts,
                )
                .await?;
                let stopper = source.stopper();
                let _signals = SignalGuard(tokio::spawn(on_signals(stopper)));
                cwl_copy::load::run(&config, source, &mut target).await?
            }
            None => {
                let s3 = if any_s3 {
                    Some(S3::connect(&args::s3_options(&args.source)).await)
                } else {
                    None
                };
                let source = Listing::new(&inputs, &list, s3).await?;
                cwl_copy::load::run(&config, source, &mut target).await?
            }
        };
        anyhow::Ok(summary)
    });
    drop(bar);
    let summary = result?;
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
