//! `cwl-copy convert`: CSV rows for the spec's table, objects in
//! parallel, output identical for any thread count.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use cwl_copy::ordered::{self, Piece};
use cwl_copy::{
    ConvertScratch, Converter, Counts, DecodeStats, Dialect, Error,
    ObjectOutput, RejectedEvent, Variant,
};

use crate::args::{self, DecodeOpts, Objects, SourceOpts, Usage};
use crate::decode::ErrorOut;
use crate::report::{self, count, AsLines, Problems};

/// The summary line: `14 objects, 58 events: 43 rows, 15 filtered out, 0
/// rejected; 14 decode errors; 0 control messages; 150 ms`.
fn summary_line(
    stats: &DecodeStats,
    counts: &Counts,
    errors: usize,
    elapsed: std::time::Duration,
) -> String {
    format!(
        "{}, {}: {}, {} filtered out, {} rejected; {}; {}; {}",
        count(stats.objects, "object"),
        count(counts.events, "event"),
        count(counts.rows, "row"),
        report::thousands(counts.filtered_out),
        report::thousands(counts.rejected),
        count(u64::try_from(errors).unwrap_or(u64::MAX), "decode error"),
        count(stats.control_messages, "control message"),
        report::duration(elapsed),
    )
}

/// Notes rejected events of an object for stderr.
fn note_rejects(p: &mut Problems, object: &str, rejects: &[RejectedEvent]) {
    for r in rejects {
        p.reject(
            object,
            r.member,
            r.id.as_deref(),
            r.code,
            r.column.as_deref(),
            &r.reason,
        );
    }
}

#[derive(clap::Args, Clone)]
pub(crate) struct ConvertArgs {
    #[command(flatten)]
    opts: DecodeOpts,
    #[command(flatten)]
    source: SourceOpts,
    #[arg(long, value_name = "SPEC", help = args::COLUMNS_HELP)]
    columns: PathBuf,
    /// A FILE (or `-`, stdout) for one CSV stream; an existing directory
    /// (or a path ending in `/`) for one CSV per object [default: -].
    #[arg(long, value_name = "FILE|DIR|-")]
    out: Option<PathBuf>,
    /// CSV dialect: postgres or redshift.
    #[arg(long, value_name = "DIALECT", default_value = "postgres", value_parser = args::parse_dialect)]
    dialect: Dialect,
    #[arg(long, value_name = "N", help = args::THREADS_HELP)]
    threads: Option<usize>,
    #[arg(long, value_name = "FILE", help = args::SUMMARY_HELP)]
    summary_json: Option<PathBuf>,
    /// Write every rejected event and undecodable range here, as NDJSON
    /// (stderr shows the first few) [default: none written].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Files, directories (walked recursively, in sorted order) or
    /// s3://bucket/prefix/ (listed in key order).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
}

/// One line of `--rejects`: a rejected event, or undecodable input.
#[derive(serde::Serialize)]
struct RejectLine<'a> {
    object: &'a str,
    member: Option<u64>,
    id: Option<&'a str>,
    timestamp: Option<i64>,
    kind: &'a str,
    /// A stable machine-readable code: the event's reject code, or the
    /// decode error's kind.
    code: &'a str,
    column: Option<&'a str>,
    reason: &'a str,
    message: Option<&'a str>,
    offset: Option<u64>,
}

/// Writes rejected events of an object as NDJSON.
fn write_rejects(
    w: &mut impl Write,
    object: &str,
    rejects: &[RejectedEvent],
) -> Result<()> {
    for r in rejects {
        let line = RejectLine {
            object,
            member: r.member,
            id: r.id.as_deref(),
            timestamp: r.timestamp,
            kind: "rejected_event",
            code: r.code,
            column: r.column.as_deref(),
            reason: &r.reason,
            message: Some(&r.message),
            offset: None,
        };
        serde_json::to_writer(&mut *w, &line)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes an object's decode errors as NDJSON (after its rejected events).
fn write_errors(w: &mut impl Write, o: &ObjectOutput) -> Result<()> {
    for e in &o.errors {
        let loc = e.location();
        let line = RejectLine {
            object: &loc.object,
            member: loc.member,
            id: None,
            timestamp: None,
            kind: e.code(),
            code: e.code(),
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

/// A piece of an object's output, handed over before its end: CSV
/// records and the events rejected among them.
struct Chunk {
    csv: Vec<u8>,
    rejects: Vec<RejectedEvent>,
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
    /// Rejected events by reject code (they sum to `rejected`).
    rejects_by_code: BTreeMap<&'static str, u64>,
    /// Decode errors by kind.
    errors_by_code: BTreeMap<&'static str, u64>,
    /// Values `overflow = "truncate"` cut, by column (in column order;
    /// only columns that cut any).
    truncated: ColumnCounts,
    whitespace_bytes: u64,
    input_bytes: u64,
    inflated_bytes: u64,
    threads: usize,
    elapsed_seconds: f64,
    peak_rss_bytes: Option<u64>,
    errors: Vec<ErrorOut<'a>>,
}

/// Counts by column name, serialized as a JSON object in column order.
struct ColumnCounts(Vec<(String, u64)>);

impl serde::Serialize for ColumnCounts {
    fn serialize<S: serde::Serializer>(
        &self,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(c, n)| (c, n)))
    }
}

fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    if !io::IsTerminal::is_terminal(&io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    // The bar and its rate count input bytes (objects as stored); the
    // message adds the inflated rate.
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} input ({bytes_per_sec})  {msg}  \
         [{elapsed}, eta {eta}]",
    )
    .ok()?;
    bar.set_style(style);
    Some(bar)
}

/// A recycled value from `spare`, or a new one.
fn take_spare<T: Default>(spare: &std::sync::Mutex<Vec<T>>) -> T {
    spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default()
}

pub(crate) fn run(args: &ConvertArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let spec = args::read_spec(&args.columns, None)?;
    let mapper = args::mapper(&args.columns, &spec, args.dialect)?;
    let table = cwl_copy::sql::TableName::new(None, spec.table())
        .map_err(|e| Usage(format!("{}: {e}", args.columns.display())))?;
    let converter = Converter::new(args.opts.decoder(), mapper);
    let objects = Objects::list(
        &args.inputs,
        &args.source,
        args.opts.max_object_bytes.0,
    )?;
    objects.warn_if_empty(&args.inputs);
    let indices: Vec<usize> = (0..objects.refs.len()).collect();
    let (pool, threads) = args::pool(args.threads)?;
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
    let bar = progress(objects.bytes());
    let mut counts = Counts::default();
    let mut rejects_by_code: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut errors_by_code: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut truncated: Vec<u64> = Vec::new();
    let mut stats = DecodeStats::default();
    let mut errors: Vec<Error> = Vec::new();
    let mut problems = Problems::default();
    let mut as_lines = AsLines::default();
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
        &indices,
        threads * 2,
        AHEAD,
        || (ConvertScratch::new(), Vec::new()),
        |(scratch, data), &i, emit| -> Result<ObjectOutput> {
            let mut o = take_spare(&spare_outputs);
            o.clear();
            let got = objects.read(i, data)?;
            let Some(data) = got.bytes(data) else {
                return Ok(o);
            };
            let name = objects.refs.get(i).map_or("", |r| r.name.as_str());
            // The bar counts input as it is converted, within an object too.
            let mut counted = 0u64;
            converter.convert_chunked_with_progress(
                name,
                data,
                scratch,
                &mut o,
                CHUNK,
                |o: &mut ObjectOutput| {
                    let mut fresh = take_spare(&spare_chunks);
                    fresh.clear();
                    fresh.reserve(CHUNK + CHUNK / 8);
                    std::mem::swap(&mut o.csv, &mut fresh);
                    // The rejects go with the CSV, so that an object of
                    // rejected events is not held whole either.
                    emit(Chunk {
                        csv: fresh,
                        rejects: std::mem::take(&mut o.rejects),
                    });
                },
                |consumed| {
                    if let Some(bar) = &bar {
                        bar.inc(consumed.saturating_sub(counted));
                    }
                    counted = counted.max(consumed);
                },
            );
            if let Some(bar) = &bar {
                bar.inc((data.len() as u64).saturating_sub(counted));
            }
            Ok(o)
        },
        |i, piece| -> Result<()> {
            let (name, rel) =
                objects.refs.get(i).map_or(("", Path::new("")), |r| {
                    (r.name.as_str(), r.relative.as_path())
                });
            let (csv, piece_rejects, end) = match piece {
                Piece::Chunk(c) => (c.csv, c.rejects, None),
                Piece::End(o) => {
                    let mut o = o?;
                    let csv = std::mem::take(&mut o.csv);
                    (csv, std::mem::take(&mut o.rejects), Some(o))
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
            // This piece's rejected events, in order, before the next
            // piece's; the object's decode errors after them all.
            if let Some(r) = &mut rejects {
                write_rejects(r, name, &piece_rejects)
                    .context("writing rejects")?;
            }
            note_rejects(&mut problems, name, &piece_rejects);
            for r in &piece_rejects {
                *rejects_by_code.entry(r.code).or_default() += 1;
            }
            let Some(mut o) = end else {
                if let Ok(mut s) = spare_chunks.lock() {
                    s.push(csv);
                }
                return Ok(());
            };
            o.csv = csv;
            o.rejects = piece_rejects;
            if let Some(r) = &mut rejects {
                write_errors(r, &o).context("writing rejects")?;
            }
            // Each decode error as a JSON line (as `decode` does: a
            // contract); the rejected events' first few as text, at the end.
            for e in &o.errors {
                let mut err = stderr.lock();
                serde_json::to_writer(&mut err, &ErrorOut::new(e))?;
                err.write_all(b"\n")?;
            }
            as_lines.note(name, o.decode.envelopes, o.decode.events);
            counts.add(&o.counts);
            for e in &o.errors {
                *errors_by_code.entry(e.code()).or_default() += 1;
            }
            if truncated.len() < o.truncated.len() {
                truncated.resize(o.truncated.len(), 0);
            }
            for (sum, n) in truncated.iter_mut().zip(&o.truncated) {
                *sum += n;
            }
            stats.add(&o.decode);
            errors.append(&mut o.errors);
            if let Ok(mut s) = spare_outputs.lock() {
                s.push(o);
            }
            if let Some(bar) = &bar {
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "{}/s inflated, {} events/s",
                    indicatif::HumanBytes(
                        (stats.inflated_bytes as f64 / secs) as u64
                    ),
                    report::thousands((counts.events as f64 / secs) as u64)
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
    problems.print(&match &args.rejects {
        Some(p) => format!("all of them are in {}", p.display()),
        None => "--rejects FILE writes all of them".to_owned(),
    });
    eprintln!(
        "cwl-copy: {}",
        summary_line(&stats, &counts, errors.len(), started.elapsed())
    );
    if args.opts.variant == Variant::Auto {
        if let Some(v) = as_lines.describe(stats.objects) {
            eprintln!("cwl-copy: {v}");
        }
    }
    let copy = match args.dialect {
        Dialect::Postgres => {
            cwl_copy::sql::copy_statement(converter.mapper(), &table, "STDIN")
        }
        _ => cwl_copy::sql::copy_statement(
            converter.mapper(),
            &table,
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
            rejects_by_code,
            errors_by_code,
            truncated: ColumnCounts(
                converter
                    .mapper()
                    .column_names()
                    .zip(&truncated)
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| (c.to_owned(), *n))
                    .collect(),
            ),
            whitespace_bytes: stats.whitespace_bytes,
            input_bytes: stats.input_bytes,
            inflated_bytes: stats.inflated_bytes,
            threads,
            elapsed_seconds: elapsed,
            peak_rss_bytes: args::peak_rss(),
            errors: errors.iter().map(ErrorOut::new).collect(),
        };
        args::write_summary(path, &summary)?;
    }
    Ok(if errors.is_empty() && counts.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
