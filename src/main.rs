//! The `cwl-copy` command line.
//!
//! Exit codes (a contract; scripts and tests rely on them):
//! - 0: all input decoded (and loaded);
//! - 1: a failure other than bad input (I/O, database, configuration);
//! - 2: a usage error (bad flags or arguments);
//! - 3: some input was rejected (reported on stderr and in the summary).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cwl_copy::{
    ColumnSpec, ConvertScratch, Converter, Counts, DecodeStats, Decoder,
    DecoderBuilder, Dialect, Error, LogEvent, Mapper, ObjectOutput, Scratch,
    Variant,
};

#[cfg(feature = "loader")]
mod load_cmd;
mod ordered;
use ordered::Piece;

// No custom global allocator: with buffers recycled per object (see
// `convert`), mimalloc bought no speed and tripled peak RSS (BENCHMARKS.md,
// "Convert streams CSV in chunks, recycles buffers, system allocator").

#[derive(Parser)]
#[command(
    name = "cwl-copy",
    version,
    about = "CloudWatch Logs from Firehose S3 objects into warehouse tables"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
pub(crate) struct DecodeOpts {
    /// Input layout: auto, gzip, gzip-over-gzip, json, lines.
    #[arg(long, default_value = "auto", value_parser = parse_variant)]
    variant: Variant,
    /// Largest inflated gzip member (or JSON document, or line), in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    max_member_bytes: u64,
    /// Largest inflated object, in bytes.
    #[arg(long, default_value_t = 8 << 30)]
    max_object_bytes: u64,
}

impl DecodeOpts {
    pub(crate) fn decoder(&self) -> Decoder {
        DecoderBuilder::new()
            .variant(self.variant)
            .max_member_bytes(self.max_member_bytes)
            .max_object_bytes(self.max_object_bytes)
            .build()
    }
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    s.parse()
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    match s {
        "postgres" => Ok(Dialect::Postgres),
        "redshift" => Ok(Dialect::Redshift),
        _ => Err(format!("unknown dialect {s:?} (postgres, redshift)")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Load objects into PostgreSQL exactly once: merged COPY batches, a
    /// ledger row per object in the same transaction.
    #[cfg(feature = "loader")]
    Load(Box<load_cmd::LoadArgs>),
    /// Convert objects to CSV rows for COPY, with a column spec.
    Convert(Box<ConvertArgs>),
    /// Decode objects to one JSON object per event on stdout.
    Decode {
        #[command(flatten)]
        opts: DecodeOpts,
        /// Write a JSON summary of the run to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
        /// Worker threads (default: one per CPU); the output is the same
        /// for any number.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Files or directories (walked recursively, in sorted order).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    init_tracing();
    match run() {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cwl-copy: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CWL_COPY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        #[cfg(feature = "loader")]
        Command::Load(args) => match load_cmd::run(&args) {
            Err(e) if e.is::<Usage>() => {
                eprintln!("cwl-copy: error: {e:#}");
                Ok(ExitCode::from(2))
            }
            r => r,
        },
        Command::Decode { opts, summary_json, threads, paths } => {
            decode(&opts, summary_json.as_deref(), threads, &paths)
        }
        Command::Convert(args) => convert(&args),
    }
}

/// Every file under `paths`, directories walked recursively, each
/// directory's entries in sorted order.
pub(crate) fn walk(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    Ok(walk_rooted(paths)?.into_iter().map(|(p, _)| p).collect())
}

/// Like [`walk`], with each file's path relative to the argument it was
/// found under (for `--out DIR`).
fn walk_rooted(paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    fn visit(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            let mut entries = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<Vec<_>>>()
                .with_context(|| format!("listing {}", p.display()))?;
            entries.sort();
            for e in entries {
                visit(&e, out)?;
            }
        } else {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut all = Vec::new();
    for p in paths {
        let mut out = Vec::new();
        visit(p, &mut out)?;
        for f in out {
            let rel = match f.strip_prefix(p) {
                Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
                _ => PathBuf::from(f.file_name().unwrap_or(f.as_os_str())),
            };
            all.push((f, rel));
        }
    }
    Ok(all)
}

#[derive(serde::Serialize)]
struct EventOut<'a> {
    object: &'a str,
    member: Option<u64>,
    log_group: Option<&'a str>,
    log_stream: Option<&'a str>,
    owner: Option<&'a str>,
    id: Option<&'a str>,
    timestamp: Option<i64>,
    message: &'a str,
}

#[derive(serde::Serialize)]
struct ErrorOut<'a> {
    object: &'a str,
    member: Option<u64>,
    offset: u64,
    inflated_offset: Option<u64>,
    kind: &'static str,
    message: String,
}

impl<'a> ErrorOut<'a> {
    fn new(e: &'a Error) -> Self {
        let loc = e.location();
        ErrorOut {
            object: &loc.object,
            member: loc.member,
            offset: loc.member_offset,
            inflated_offset: loc.inflated_offset,
            kind: e.code(),
            message: e.to_string(),
        }
    }
}

#[derive(serde::Serialize)]
struct DecodeSummary<'a> {
    objects: u64,
    members: u64,
    envelopes: u64,
    control_messages: u64,
    events: u64,
    whitespace_bytes: u64,
    input_bytes: u64,
    inflated_bytes: u64,
    peak_rss_bytes: Option<u64>,
    errors: Vec<ErrorOut<'a>>,
}

/// Writes a run summary as pretty JSON to `path`.
fn write_summary(path: &Path, summary: &impl serde::Serialize) -> Result<()> {
    let f = File::create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    serde_json::to_writer_pretty(BufWriter::new(f), summary)
        .with_context(|| format!("writing {}", path.display()))
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Worker threads: `threads`, or one per CPU.
fn pool(threads: Option<usize>) -> Result<(rayon::ThreadPool, usize)> {
    let threads = threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        })
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    Ok((pool, threads))
}

fn decode(
    opts: &DecodeOpts,
    summary: Option<&Path>,
    threads: Option<usize>,
    paths: &[PathBuf],
) -> Result<ExitCode> {
    const CHUNK: usize = 1 << 20;
    const AHEAD: usize = 8;
    let files = walk(paths)?;
    let decoder = opts.decoder();
    let (pool, threads) = pool(threads)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut stats = DecodeStats::default();
    let mut errors: Vec<Error> = Vec::new();
    // As in `convert`: objects decode on the pool, their JSON lines stream
    // out in input order in chunks, so the output is the same for any
    // thread count. An object's errors go to stderr after its events.
    ordered::ordered_stream(
        &pool,
        &files,
        threads * 2,
        AHEAD,
        || (Scratch::new(), Vec::new()),
        |(scratch, data), file, emit| -> Result<(DecodeStats, Vec<Error>)> {
            read_into(file, data)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.to_string_lossy();
            let mut lines = Vec::with_capacity(CHUNK + CHUNK / 8);
            let mut errs = Vec::new();
            let on_event = |ev: &LogEvent<'_>| -> io::Result<()> {
                let env = ev.envelope;
                serde_json::to_writer(
                    &mut lines,
                    &EventOut {
                        object: ev.object,
                        member: ev.member,
                        log_group: env.map(|e| e.log_group),
                        log_stream: env.map(|e| e.log_stream),
                        owner: env.map(|e| e.owner),
                        id: ev.id,
                        timestamp: ev.timestamp,
                        message: ev.message,
                    },
                )?;
                lines.push(b'\n');
                if lines.len() >= CHUNK {
                    emit(std::mem::replace(
                        &mut lines,
                        Vec::with_capacity(CHUNK + CHUNK / 8),
                    ));
                }
                Ok(())
            };
            let on_reject = |e: Error| -> io::Result<()> {
                errs.push(e);
                Ok(())
            };
            let s = decoder
                .decode(
                    &name,
                    data,
                    scratch,
                    cwl_copy::FnSink::new(on_event, on_reject),
                )
                .context("formatting events")?;
            emit(lines);
            Ok((s, errs))
        },
        |_, piece| -> Result<()> {
            match piece {
                Piece::Chunk(lines) => {
                    out.write_all(&lines).context("writing events")?;
                }
                Piece::End(r) => {
                    let (s, errs) = r?;
                    for e in &errs {
                        let mut err = stderr.lock();
                        serde_json::to_writer(&mut err, &ErrorOut::new(e))?;
                        err.write_all(b"\n")?;
                    }
                    stats.add(&s);
                    errors.extend(errs);
                }
            }
            Ok(())
        },
    )?;
    out.flush().context("writing events")?;
    if let Some(path) = summary {
        let summary = DecodeSummary {
            objects: stats.objects,
            members: stats.members,
            envelopes: stats.envelopes,
            control_messages: stats.control_messages,
            events: stats.events,
            whitespace_bytes: stats.whitespace_bytes,
            input_bytes: stats.input_bytes,
            inflated_bytes: stats.inflated_bytes,
            peak_rss_bytes: peak_rss(),
            errors: errors.iter().map(ErrorOut::new).collect(),
        };
        write_summary(path, &summary)?;
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

#[derive(clap::Args, Clone)]
struct ConvertArgs {
    #[command(flatten)]
    opts: DecodeOpts,
    /// The column spec (TOML).
    #[arg(long, value_name = "SPEC")]
    columns: PathBuf,
    /// `-` (the default) or a FILE for one CSV stream; an existing
    /// directory (or a path ending in `/`) for one CSV per object.
    #[arg(long, value_name = "FILE|DIR|-")]
    out: Option<PathBuf>,
    /// CSV dialect: postgres or redshift.
    #[arg(long, default_value = "postgres", value_parser = parse_dialect)]
    dialect: Dialect,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Write a JSON summary of the run to this file.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Write rejected events and undecodable input here, as NDJSON.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Files or directories (walked recursively, in sorted order).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

/// One line of `--rejects`: a rejected event, or undecodable input.
#[derive(serde::Serialize)]
struct RejectLine<'a> {
    object: &'a str,
    member: Option<u64>,
    id: Option<&'a str>,
    timestamp: Option<i64>,
    kind: &'a str,
    column: Option<&'a str>,
    reason: &'a str,
    message: Option<&'a str>,
    offset: Option<u64>,
}

/// Writes an object's rejected events and decode errors as NDJSON.
fn write_rejects(
    w: &mut impl Write,
    object: &str,
    o: &ObjectOutput,
) -> Result<()> {
    for r in &o.rejects {
        let line = RejectLine {
            object,
            member: r.member,
            id: r.id.as_deref(),
            timestamp: r.timestamp,
            kind: "rejected_event",
            column: r.column.as_deref(),
            reason: &r.reason,
            message: Some(&r.message),
            offset: None,
        };
        serde_json::to_writer(&mut *w, &line)?;
        w.write_all(b"\n")?;
    }
    for e in &o.errors {
        let loc = e.location();
        let line = RejectLine {
            object: &loc.object,
            member: loc.member,
            id: None,
            timestamp: None,
            kind: e.code(),
            column: None,
            reason: &e.kind().to_string(),
            message: None,
            offset: Some(loc.member_offset),
        };
        serde_json::to_writer(&mut *w, &line)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// A usage error: exit code 2.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn load_mapper(path: &Path, dialect: Dialect) -> Result<Mapper> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let spec = ColumnSpec::from_toml(&text)
        .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    let mapper = Mapper::new(&spec, dialect)
        .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    Ok(mapper)
}

enum Out {
    Stream(Box<dyn Write>),
    Dir(PathBuf),
}

#[derive(serde::Serialize)]
struct ConvertSummary<'a> {
    objects: u64,
    members: u64,
    envelopes: u64,
    control_messages: u64,
    #[serde(flatten)]
    counts: Counts,
    reconciled: bool,
    whitespace_bytes: u64,
    input_bytes: u64,
    inflated_bytes: u64,
    threads: usize,
    elapsed_seconds: f64,
    peak_rss_bytes: Option<u64>,
    errors: Vec<ErrorOut<'a>>,
}

fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    if !io::IsTerminal::is_terminal(&io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} objects  {msg}  [{elapsed}, eta {eta}]",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}

/// A recycled value from `spare`, or a new one.
fn take_spare<T: Default>(spare: &std::sync::Mutex<Vec<T>>) -> T {
    spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default()
}

/// Reads the whole of `path` into `buf`, reusing its capacity.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut f = File::open(path)?;
    if let Ok(m) = f.metadata() {
        buf.reserve(usize::try_from(m.len()).unwrap_or(0));
    }
    f.read_to_end(buf)?;
    Ok(())
}

fn convert(args: &ConvertArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let mapper = match load_mapper(&args.columns, args.dialect) {
        Ok(m) => m,
        Err(e) if e.is::<Usage>() => {
            eprintln!("cwl-copy: error: {e:#}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e),
    };
    let converter = Converter::new(args.opts.decoder(), mapper);
    let files = walk_rooted(&args.inputs)?;
    let (pool, threads) = pool(args.threads)?;
    let mut out = match &args.out {
        None => Out::Stream(Box::new(BufWriter::with_capacity(
            1 << 20,
            io::stdout(),
        ))),
        Some(p) if p.as_os_str() == "-" => Out::Stream(Box::new(
            BufWriter::with_capacity(1 << 20, io::stdout()),
        )),
        Some(p) if p.is_dir() || p.to_string_lossy().ends_with('/') => {
            std::fs::create_dir_all(p)
                .with_context(|| format!("creating {}", p.display()))?;
            Out::Dir(p.clone())
        }
        Some(p) => Out::Stream(Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p)
                .with_context(|| format!("creating {}", p.display()))?,
        ))),
    };
    let mut rejects: Option<BufWriter<File>> = match &args.rejects {
        Some(p) => Some(BufWriter::new(
            File::create(p)
                .with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let bar = progress(files.len() as u64);
    let mut counts = Counts::default();
    let mut stats = DecodeStats::default();
    let mut errors: Vec<Error> = Vec::new();
    let stderr = io::stderr();
    // Objects are converted on the pool and written in input order, so the
    // output is the same for any thread count. Each object's CSV streams
    // out in chunks of CHUNK bytes; an object ahead of the one being
    // written may queue AHEAD chunks (a typical Firehose object's CSV, so
    // workers rarely wait) and then waits, so memory is bounded by
    // `2 × threads × AHEAD` chunks, not by the size of an object.
    //
    // Buffers are recycled: each worker reads into its own input buffer,
    // and written chunks and outputs go back to `spare_*` for the next
    // ones, so a run reaches its peak memory early and stays there.
    const CHUNK: usize = 1 << 20;
    const AHEAD: usize = 8;
    let spare_chunks: std::sync::Mutex<Vec<Vec<u8>>> =
        std::sync::Mutex::new(Vec::new());
    let spare_outputs: std::sync::Mutex<Vec<ObjectOutput>> =
        std::sync::Mutex::new(Vec::new());
    let mut dir_file: Option<(usize, BufWriter<File>)> = None;
    ordered::ordered_stream(
        &pool,
        &files,
        threads * 2,
        AHEAD,
        || (ConvertScratch::new(), Vec::new()),
        |(scratch, data), (path, _), emit| -> Result<ObjectOutput> {
            read_into(path, data)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut o = take_spare(&spare_outputs);
            o.clear();
            converter.convert_chunked(
                &path.to_string_lossy(),
                data,
                scratch,
                &mut o,
                CHUNK,
                |csv: &mut Vec<u8>| {
                    let mut fresh = take_spare(&spare_chunks);
                    fresh.clear();
                    fresh.reserve(CHUNK + CHUNK / 8);
                    std::mem::swap(csv, &mut fresh);
                    emit(fresh);
                },
            );
            Ok(o)
        },
        |i, piece| -> Result<()> {
            let (path, rel) = files
                .get(i)
                .map_or((Path::new(""), Path::new("")), |(p, r)| {
                    (p.as_path(), r.as_path())
                });
            let (csv, end) = match piece {
                Piece::Chunk(c) => (c, None),
                Piece::End(o) => {
                    let mut o = o?;
                    (std::mem::take(&mut o.csv), Some(o))
                }
            };
            match &mut out {
                Out::Stream(w) => w.write_all(&csv).context("writing CSV")?,
                Out::Dir(dir) => {
                    if dir_file.as_ref().is_none_or(|(j, _)| *j != i) {
                        let mut target = dir.join(rel).into_os_string();
                        target.push(".csv");
                        let target = PathBuf::from(target);
                        if let Some(parent) = target.parent() {
                            std::fs::create_dir_all(parent).with_context(
                                || format!("creating {}", parent.display()),
                            )?;
                        }
                        let f = File::create(&target).with_context(|| {
                            format!("creating {}", target.display())
                        })?;
                        dir_file = Some((i, BufWriter::new(f)));
                    }
                    if let Some((_, f)) = &mut dir_file {
                        f.write_all(&csv).context("writing CSV")?;
                        if end.is_some() {
                            f.flush().context("writing CSV")?;
                        }
                    }
                }
            }
            let Some(mut o) = end else {
                if let Ok(mut s) = spare_chunks.lock() {
                    s.push(csv);
                }
                return Ok(());
            };
            o.csv = csv;
            if let Some(r) = &mut rejects {
                write_rejects(r, &path.to_string_lossy(), &o)
                    .context("writing rejects")?;
            }
            for e in &o.errors {
                let mut err = stderr.lock();
                serde_json::to_writer(&mut err, &ErrorOut::new(e))?;
                err.write_all(b"\n")?;
            }
            counts.add(&o.counts);
            stats.add(&o.decode);
            errors.append(&mut o.errors);
            if let Ok(mut s) = spare_outputs.lock() {
                s.push(o);
            }
            if let Some(bar) = &bar {
                bar.inc(1);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "{:.1} MB/s  {:.0} events/s",
                    stats.inflated_bytes as f64 / secs / 1e6,
                    counts.events as f64 / secs
                ));
            }
            Ok(())
        },
    )?;
    if let Out::Stream(w) = &mut out {
        w.flush().context("writing CSV")?;
    }
    if let Some(r) = &mut rejects {
        r.flush().context("writing rejects")?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "cwl-copy: {} objects, {} events: {} rows, {} filtered out, {} rejected; {} decode errors; {} control messages; {:.2}s",
        stats.objects, counts.events, counts.rows, counts.filtered_out, counts.rejected, errors.len(), stats.control_messages, elapsed
    );
    let copy = match args.dialect {
        Dialect::Postgres => converter.mapper().copy_statement("STDIN"),
        _ => converter.mapper().copy_statement(
            "'s3://BUCKET/PREFIX' IAM_ROLE 'arn:aws:iam::ACCOUNT:role/ROLE'",
        ),
    };
    eprintln!("cwl-copy: load it with: {copy}");
    if !counts.reconcile() {
        anyhow::bail!("internal error: counts do not reconcile: {counts:?}");
    }
    if let Some(path) = &args.summary_json {
        let summary = ConvertSummary {
            objects: stats.objects,
            members: stats.members,
            envelopes: stats.envelopes,
            control_messages: stats.control_messages,
            counts,
            reconciled: counts.reconcile(),
            whitespace_bytes: stats.whitespace_bytes,
            input_bytes: stats.input_bytes,
            inflated_bytes: stats.inflated_bytes,
            threads,
            elapsed_seconds: elapsed,
            peak_rss_bytes: peak_rss(),
            errors: errors.iter().map(ErrorOut::new).collect(),
        };
        write_summary(path, &summary)?;
    }
    Ok(if errors.is_empty() && counts.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
