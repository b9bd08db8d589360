//! `cwl-copy load`: files → convert on rayon → merged COPY batches into
//! PostgreSQL, each batch one transaction with its ledger rows.
//!
//! The CPU work (read, inflate, parse, map, CSV) runs on a rayon pool in
//! its own thread; the tokio side only moves bytes to the server. Objects
//! already in the ledger are skipped before they are read.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use cwl_copy::load::{
    BatchLimits, Batcher, CopyTarget, LedgerTables, LoadSummary,
    LoaderOptions, ObjectError, ObjectRows, PgLoader, PgSettings,
    RejectRecord, TableName,
};
use cwl_copy::{
    ColumnSpec, ConvertScratch, Converter, Dialect, Mapper, ObjectOutput,
};

use crate::{walk, DecodeOpts, Usage};

/// The flags of `cwl-copy load`.
#[derive(clap::Args, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) opts: DecodeOpts,
    /// The column spec (TOML).
    #[arg(long, value_name = "SPEC")]
    pub(crate) columns: PathBuf,
    /// PostgreSQL connection: a `postgres://user@host:port/db` URL or
    /// `host=… port=…` keywords, merged with PGHOST, PGPORT, PGUSER,
    /// PGDATABASE, PGPASSWORD, PGPASSFILE/~/.pgpass and PGSSLMODE. Keep
    /// passwords out of it: use PGPASSWORD or .pgpass.
    #[arg(long, value_name = "CONNINFO", default_value = "")]
    pub(crate) target: String,
    /// Target table (default: the spec's `table`).
    #[arg(long, value_name = "NAME")]
    pub(crate) table: Option<String>,
    /// Schema of the target, ledger and quarantine tables.
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
    #[arg(long, value_name = "NAME")]
    pub(crate) ledger_table: Option<String>,
    /// Quarantine table name (rejected events, undecodable input).
    #[arg(long, value_name = "NAME")]
    pub(crate) quarantine_table: Option<String>,
    /// Worker threads for converting (default: one per core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Write a JSON summary of the run to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary_json: Option<PathBuf>,
    /// Files or directories (walked recursively, in sorted order).
    #[arg(required = true, value_name = "INPUT")]
    pub(crate) inputs: Vec<PathBuf>,
}

/// The converter's output as the loader takes it.
fn object_rows(key: String, data: &[u8], o: ObjectOutput) -> ObjectRows {
    let rejects = o
        .rejects
        .into_iter()
        .map(|r| RejectRecord {
            member: r.member,
            event_id: r.id,
            reason: match r.column {
                Some(c) => format!("column {c:?}: {}", r.reason),
                None => r.reason,
            },
            message: r.message,
        })
        .collect();
    let errors = o
        .errors
        .iter()
        .map(|e| ObjectError {
            member: e.location().member,
            offset: e.location().member_offset,
            kind: e.code().to_owned(),
            message: e.to_string(),
        })
        .collect();
    ObjectRows {
        key,
        size: data.len() as u64,
        etag: None,
        content_hash: format!("crc32:{:08x}", crc32fast::hash(data)),
        csv: bytes::Bytes::from(o.csv),
        events: o.counts.events,
        rows: o.counts.rows,
        filtered: o.counts.filtered_out,
        rejected: o.counts.rejected,
        rejects,
        errors,
    }
}

pub(crate) fn run(args: &LoadArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.columns)
        .with_context(|| format!("reading {}", args.columns.display()))?;
    let mut spec = ColumnSpec::from_toml(&text)
        .map_err(|e| Usage(format!("{}: {e}", args.columns.display())))?;
    if let Some(t) = &args.table {
        spec.set_table(t);
    }
    let mapper = Mapper::new(&spec, Dialect::Postgres)
        .map_err(|e| Usage(format!("{}: {e}", args.columns.display())))?;
    let table = TableName::new(args.schema.as_deref(), spec.table())
        .map_err(|e| Usage(format!("--table: {e}")))?;
    let columns: Vec<String> =
        spec.column_names().map(str::to_owned).collect();
    let mut target =
        CopyTarget::new(table, &columns).map_err(|e| Usage(format!("{e}")))?;
    if args.dedup_events {
        let id = spec.id_column().ok_or_else(|| {
            Usage("--dedup-events needs a column with source = \"@id\" in the spec".into())
        })?;
        target = target.dedup_on(id).map_err(|e| Usage(format!("{e}")))?;
    }
    let tables = LedgerTables::new(
        args.schema.as_deref(),
        args.ledger_table.as_deref(),
        args.quarantine_table.as_deref(),
    )
    .map_err(|e| Usage(format!("{e}")))?;
    // Reads env and ~/.pgpass: done before the runtime starts.
    let settings = PgSettings::resolve(&args.target).context("--target")?;
    let create_sql = if args.create_table {
        let mut sql = mapper.create_table_sql();
        if let Some(schema) = &args.schema {
            let q = cwl_copy::load::quote_ident(schema)
                .map_err(|e| Usage(format!("{e}")))?;
            sql = sql.replacen(
                "CREATE TABLE IF NOT EXISTS ",
                &format!("CREATE SCHEMA IF NOT EXISTS {q};\nCREATE TABLE IF NOT EXISTS {q}."),
                1,
            );
        }
        Some(sql)
    } else {
        None
    };
    let converter = Converter::new(args.opts.decoder(), mapper);
    let files = walk(&args.inputs)?;
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        })
        .max(1);
    let limits = BatchLimits {
        max_bytes: args.batch_bytes.max(1),
        max_objects: args.batch_objects.max(1),
        max_age: Some(std::time::Duration::from_secs(args.batch_seconds)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = rt.block_on(async move {
        let mut loader = PgLoader::connect(
            settings,
            LoaderOptions { tables, ..Default::default() },
        )
        .await
        .context("connecting to PostgreSQL")?;
        loader.ensure_ledger().await.context("creating the ledger")?;
        if let Some(sql) = &create_sql {
            loader
                .create_table(sql)
                .await
                .context("creating the target table")?;
        }
        if target.dedup_column().is_some() {
            loader
                .ensure_unique_index(&target)
                .await
                .context("creating the dedup index")?;
        }
        let keys: Vec<String> =
            files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let done = loader
            .already_loaded(&keys)
            .await
            .context("reading the ledger")?;
        let mut summary = LoadSummary {
            objects_seen: keys.len() as u64,
            ..Default::default()
        };
        let todo: Vec<PathBuf> = files
            .iter()
            .zip(&keys)
            .filter(|(_, k)| !done.contains(*k))
            .map(|(p, _)| p.clone())
            .collect();
        summary.objects_skipped_already_loaded =
            (keys.len() - todo.len()) as u64;

        // Convert on rayon in a thread of its own, in input order.
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<ObjectRows>>(threads * 2);
        let producer = std::thread::spawn(move || {
            let pool = match rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.into()));
                    return;
                }
            };
            // Objects convert on the pool and reach the loader in input
            // order; a closed channel (the loader failed) stops the work.
            let _ = crate::ordered::ordered_map(
                &pool,
                &todo,
                threads * 2,
                ConvertScratch::new,
                |scratch, path| -> Result<ObjectRows> {
                    let data = std::fs::read(path).with_context(|| {
                        format!("reading {}", path.display())
                    })?;
                    let key = path.to_string_lossy().into_owned();
                    let mut o = ObjectOutput::default();
                    converter.convert(&key, &data, scratch, &mut o);
                    Ok(object_rows(key, &data, o))
                },
                |_, r| tx.blocking_send(r).map_err(|_| ()),
            );
        });

        let mut batcher = Batcher::new(limits);
        loop {
            let next = match batcher.deadline() {
                Some(at) => tokio::select! {
                    r = rx.recv() => Some(r),
                    () = tokio::time::sleep_until(at.into()) => None,
                },
                None => Some(rx.recv().await),
            };
            let full = match next {
                Some(Some(obj)) => batcher.push(obj?),
                Some(None) => break,
                None => batcher.take(),
            };
            if let Some(batch) = full {
                let outcome = loader
                    .load_batch(&batch, &target)
                    .await
                    .context("loading a batch")?;
                summary.add_batch(&outcome);
            }
        }
        if let Some(batch) = batcher.take() {
            let outcome = loader
                .load_batch(&batch, &target)
                .await
                .context("loading a batch")?;
            summary.add_batch(&outcome);
        }
        let _ = producer.join();
        summary.retries = loader.retries();
        anyhow::Ok(summary)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "cwl-copy: {} objects ({} already loaded, {} loaded, {} loaded by another run), {} events: {} rows, {} filtered out, {} rejected, {} duplicate events; {} decode errors; {} batches; {:.2}s",
        summary.objects_seen,
        summary.objects_skipped_already_loaded,
        summary.objects_loaded,
        summary.objects_skipped_duplicate,
        summary.events,
        summary.rows,
        summary.filtered,
        summary.rejected,
        summary.duplicate_events,
        summary.errors,
        summary.batches,
        elapsed
    );
    let reconciled = summary.reconcile();
    if let Some(path) = &args.summary_json {
        let mut v = serde_json::to_value(&summary)?;
        v["reconciled"] = serde_json::Value::Bool(reconciled.is_ok());
        v["elapsed_seconds"] = elapsed.into();
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    reconciled.map_err(|e| {
        anyhow::anyhow!("internal error: counts do not reconcile: {e}")
    })?;
    Ok(if summary.rejected > 0 || summary.errors > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
