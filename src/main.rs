//! The `cwl-copy` command line.
//!
//! Exit codes (a contract; scripts and tests rely on them):
//! - 0: all input decoded (and loaded);
//! - 1: a failure other than bad input (I/O, database, configuration);
//! - 2: a usage error (bad flags or arguments);
//! - 3: some input was rejected (reported on stderr and in the summary).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cwl_copy::{
    DecodeStats, Decoder, DecoderBuilder, Error, LogEvent, Scratch, Variant,
};

// mimalloc: many short-lived per-object buffers across rayon threads;
// glibc malloc's per-thread arenas grow RSS there. Binary only: the
// library never picks an allocator for its users.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
struct DecodeOpts {
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
    fn decoder(&self) -> Decoder {
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

#[derive(Subcommand)]
enum Command {
    /// Decode objects to one JSON object per event on stdout.
    Decode {
        #[command(flatten)]
        opts: DecodeOpts,
        /// Write a JSON summary of the run to this file.
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
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
        Command::Decode { opts, summary_json, paths } => {
            decode(&opts, summary_json.as_deref(), &paths)
        }
    }
}

/// Every file under `paths`, directories walked recursively, each
/// directory's entries in sorted order.
fn walk(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
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
    let mut out = Vec::new();
    for p in paths {
        visit(p, &mut out)?;
    }
    Ok(out)
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

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn decode(
    opts: &DecodeOpts,
    summary: Option<&Path>,
    paths: &[PathBuf],
) -> Result<ExitCode> {
    let files = walk(paths)?;
    let decoder = opts.decoder();
    let mut scratch = Scratch::new();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut stats = DecodeStats::default();
    let mut errors: Vec<Error> = Vec::new();
    for file in &files {
        let data = std::fs::read(file)
            .with_context(|| format!("reading {}", file.display()))?;
        let name = file.to_string_lossy();
        let mut on_event = |ev: &LogEvent<'_>| -> io::Result<()> {
            let env = ev.envelope;
            serde_json::to_writer(
                &mut out,
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
            out.write_all(b"\n")
        };
        let mut on_reject = |e: Error| -> io::Result<()> {
            let mut err = stderr.lock();
            serde_json::to_writer(&mut err, &ErrorOut::new(&e))?;
            err.write_all(b"\n")?;
            errors.push(e);
            Ok(())
        };
        let s = decoder
            .decode(
                &name,
                &data,
                &mut scratch,
                cwl_copy::FnSink::new(&mut on_event, &mut on_reject),
            )
            .context("writing events")?;
        stats.add(&s);
    }
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
        let f = File::create(path)
            .with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(f), &summary)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
