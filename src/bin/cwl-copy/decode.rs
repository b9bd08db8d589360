//! `cwl-copy decode`: one JSON object per event on stdout, objects in
//! parallel, output identical for any thread count.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cwl_copy::ordered::{self, Piece};
use cwl_copy::{DecodeStats, Error, LogEvent, Scratch, Variant};

use crate::args::{self, DecodeOpts, Objects, SourceOpts};
use crate::report::AsLines;

/// The flags of `cwl-copy decode`.
#[derive(clap::Args, Clone)]
pub(crate) struct DecodeArgs {
    #[command(flatten)]
    pub(crate) opts: DecodeOpts,
    #[command(flatten)]
    pub(crate) source: SourceOpts,
    #[arg(long, value_name = "FILE", help = args::SUMMARY_HELP)]
    pub(crate) summary_json: Option<PathBuf>,
    #[arg(long, value_name = "N", help = args::THREADS_HELP)]
    pub(crate) threads: Option<usize>,
    /// Files, directories (walked recursively, in sorted order) or
    /// s3://bucket/prefix/ (listed in key order).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<String>,
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
pub(crate) struct ErrorOut<'a> {
    object: &'a str,
    member: Option<u64>,
    offset: u64,
    inflated_offset: Option<u64>,
    kind: &'static str,
    message: String,
}

impl<'a> ErrorOut<'a> {
    pub(crate) fn new(e: &'a Error) -> Self {
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

pub(crate) fn run(a: &DecodeArgs) -> Result<ExitCode> {
    let (opts, summary, threads) =
        (&a.opts, a.summary_json.as_deref(), a.threads);
    const CHUNK: usize = 1 << 20;
    const AHEAD: usize = 8;
    let objects = Objects::list(&a.paths, &a.source, opts.max_object_bytes.0)?;
    objects.warn_if_empty(&a.paths);
    let decoder = opts.decoder();
    let (pool, threads) = args::pool(threads)?;
    let indices: Vec<usize> = (0..objects.refs.len()).collect();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut stats = DecodeStats::default();
    let mut errors: Vec<Error> = Vec::new();
    let mut as_lines = AsLines::default();
    // As in `convert`: objects decode on the pool, their JSON lines stream
    // out in input order in chunks, so the output is the same for any
    // thread count. An object's errors go to stderr after its events.
    ordered::ordered_stream(
        &pool,
        &indices,
        threads * 2,
        AHEAD,
        || (Scratch::new(), Vec::new()),
        |(scratch, data), &i, emit| -> Result<(DecodeStats, Vec<Error>)> {
            let got = objects.read(i, data)?;
            let Some(data) = got.bytes(data) else {
                return Ok((DecodeStats::default(), Vec::new()));
            };
            let name = objects.refs.get(i).map_or("", |r| r.name.as_str());
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
                    name,
                    data,
                    scratch,
                    cwl_copy::FnSink::new(on_event, on_reject),
                )
                .context("formatting events")?;
            emit(lines);
            Ok((s, errs))
        },
        |i, piece| -> Result<()> {
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
                    let name =
                        objects.refs.get(i).map_or("", |r| r.name.as_str());
                    as_lines.note(name, s.envelopes, s.events);
                    stats.add(&s);
                    errors.extend(errs);
                }
            }
            Ok(())
        },
    )?;
    out.flush().context("writing events")?;
    if opts.variant == Variant::Auto {
        if let Some(v) = as_lines.describe(stats.objects) {
            eprintln!("cwl-copy: {v}");
        }
    }
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
            peak_rss_bytes: args::peak_rss(),
            errors: errors.iter().map(ErrorOut::new).collect(),
        };
        args::write_summary(path, &summary)?;
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}
