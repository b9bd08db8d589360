//! What the subcommands share: decoder flags, input flags and how INPUTs
//! become objects to read, the column spec, worker threads, summaries.
//! Flags become configuration here, in one place.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use cwl_copy::load::source::files;
use cwl_copy::load::{Input, Location, ObjectRef};
use cwl_copy::{
    ColumnSpec, Decoder, DecoderBuilder, Dialect, Mapper, Variant,
};

use crate::report::ByteSize;

/// A usage error: exit code 2.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The decoder's flags.
#[derive(clap::Args, Clone)]
pub(crate) struct DecodeOpts {
    /// Input layout: auto (sniffed from the bytes of each object), gzip,
    /// gzip-over-gzip, json, lines.
    #[arg(long, value_name = "VARIANT", default_value = "auto", value_parser = parse_variant)]
    pub(crate) variant: Variant,
    /// Largest inflated gzip member (or JSON document, or line): bytes, or
    /// a size such as 64MiB [default: 64 MiB].
    // clap would quote a default with a space: it is in the text instead.
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(64 << 20), hide_default_value = true)]
    pub(crate) max_member_bytes: ByteSize,
    /// Largest inflated object (also the largest object read): bytes, or
    /// a size such as 8GiB [default: 8 GiB].
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(8 << 30), hide_default_value = true)]
    pub(crate) max_object_bytes: ByteSize,
}

impl DecodeOpts {
    pub(crate) fn decoder(&self) -> Decoder {
        DecoderBuilder::new()
            .variant(self.variant)
            .max_member_bytes(self.max_member_bytes.0)
            .max_object_bytes(self.max_object_bytes.0)
            .build()
    }
}

/// The help of `--threads`, the same for every subcommand.
pub(crate) const THREADS_HELP: &str = "Worker threads [default: one per CPU]";

/// The help of `--summary-json`, the same for every subcommand.
pub(crate) const SUMMARY_HELP: &str =
    "Write a JSON summary of the run to this file";

/// The help of `--columns`, the same for every subcommand.
pub(crate) const COLUMNS_HELP: &str = "The column spec (TOML)";

/// The help of `--table`, the same for every subcommand.
#[cfg_attr(not(feature = "loader"), allow(dead_code))]
pub(crate) const TABLE_HELP: &str =
    "The target table [default: the column spec's `table`]";

/// The help of `--schema`, the same for every subcommand.
#[cfg_attr(not(feature = "loader"), allow(dead_code))]
pub(crate) const SCHEMA_HELP: &str = "Schema of the target, ledger and \
     quarantine tables [default: the first schema of the server's \
     search_path]";

/// The help of `--ledger-table`, the same for every subcommand.
#[cfg_attr(not(feature = "loader"), allow(dead_code))]
pub(crate) const LEDGER_HELP: &str =
    "Ledger table: the objects loaded, per target table";

fn parse_variant(s: &str) -> Result<Variant, String> {
    s.parse()
}

pub(crate) fn parse_dialect(s: &str) -> Result<Dialect, String> {
    match s {
        "postgres" => Ok(Dialect::Postgres),
        "redshift" => Ok(Dialect::Redshift),
        _ => Err(format!("unknown dialect {s:?} (postgres, redshift)")),
    }
}

/// Which objects the INPUTs name, and how S3 is reached.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct SourceOpts {
    /// Only S3 objects under Firehose hour prefixes from this UTC time on:
    /// YYYY-MM-DD, YYYY-MM-DDTHH or RFC 3339. The hour is Firehose's
    /// arrival hour, not the event time [default: no hour range, every
    /// object under the input].
    #[arg(long, value_name = "TIME")]
    pub(crate) from: Option<String>,
    /// Only hour prefixes before this UTC time (exclusive); same forms as
    /// --from.
    #[arg(long, value_name = "TIME")]
    pub(crate) to: Option<String>,
    /// The Firehose S3 prefix setting, for streams with a custom prefix,
    /// e.g. logs/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/
    /// [default: <input prefix>YYYY/MM/dd/HH/]
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) prefix_template: Option<String>,
    /// S3 downloads at once [default: 4 per CPU, 8 to 32].
    #[arg(long, value_name = "N")]
    pub(crate) s3_concurrency: Option<usize>,
    /// Endpoint for every AWS service, e.g. an emulator (path-style S3
    /// addressing) [default: the SDK's, or AWS_ENDPOINT_URL,
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS].
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
}

/// The INPUT arguments, parsed.
pub(crate) fn parse_inputs(inputs: &[String]) -> Result<Vec<Input>> {
    inputs
        .iter()
        .map(|s| s.parse::<Input>().map_err(|e| Usage(e.to_string()).into()))
        .collect()
}

/// Worker threads: `threads`, or one per CPU.
pub(crate) fn threads(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        })
        .max(1)
}

/// A rayon pool of `threads` workers, or one per CPU.
pub(crate) fn pool(
    threads: Option<usize>,
) -> Result<(rayon::ThreadPool, usize)> {
    let threads = self::threads(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    Ok((pool, threads))
}

/// The column spec at `path`, with `--table` applied; a spec that does
/// not parse is a usage error naming the file, line and column.
pub(crate) fn read_spec(
    path: &Path,
    table: Option<&str>,
) -> Result<ColumnSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut spec = ColumnSpec::from_toml(&text)
        .map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    if let Some(t) = table {
        spec.set_table(t);
    }
    Ok(spec)
}

/// The spec's mapper for `dialect`.
pub(crate) fn mapper(
    path: &Path,
    spec: &ColumnSpec,
    dialect: Dialect,
) -> Result<Mapper> {
    Mapper::new(spec, dialect)
        .map_err(|e| Usage(format!("{}: {e}", path.display())).into())
}

/// Writes a run summary as pretty JSON to `path`.
pub(crate) fn write_summary(
    path: &Path,
    summary: &impl serde::Serialize,
) -> Result<()> {
    let f = File::create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    serde_json::to_writer_pretty(BufWriter::new(f), summary)
        .with_context(|| format!("writing {}", path.display()))
}

/// Peak resident set size of this process, from /proc (Linux).
pub(crate) fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What [`Objects::read`] got.
#[cfg_attr(not(feature = "loader"), allow(dead_code))] // S3 needs the loader
pub(crate) enum Read {
    /// The bytes are in the caller's buffer.
    InBuf,
    /// The downloaded bytes.
    Bytes(bytes::Bytes),
    /// Deleted after it was listed.
    Vanished,
}

impl Read {
    /// The object's bytes: `buf`'s, or the downloaded ones; `None` if it
    /// vanished.
    pub(crate) fn bytes<'a>(&'a self, buf: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Read::InBuf => Some(buf),
            Read::Bytes(b) => Some(b),
            Read::Vanished => None,
        }
    }
}

/// The objects of `decode` and `convert`: listed once, then read by the
/// workers (S3 objects downloaded ahead of them).
pub(crate) struct Objects {
    pub(crate) refs: Arc<[ObjectRef]>,
    #[cfg(feature = "loader")]
    prefetch: Option<cwl_copy::load::Prefetcher>,
    // Declared last: dropped after the prefetcher's task is aborted.
    #[cfg(feature = "loader")]
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Objects {
    /// Lists `inputs` (local paths without a runtime; S3 through one).
    pub(crate) fn list(
        inputs: &[String],
        opts: &SourceOpts,
        max_object_bytes: u64,
    ) -> Result<Objects> {
        let inputs = parse_inputs(inputs)?;
        if inputs.iter().any(Input::is_s3) {
            return Self::list_remote(&inputs, opts, max_object_bytes);
        }
        if opts.from.is_some()
            || opts.to.is_some()
            || opts.prefix_template.is_some()
        {
            return Err(Usage(
                "--from, --to and --prefix-template select S3 hour \
                 prefixes; the inputs are all local"
                    .into(),
            )
            .into());
        }
        let mut refs = Vec::new();
        for input in &inputs {
            if let Input::Path(p) = input {
                refs.extend(files::list(p)?);
            }
        }
        Ok(Objects {
            refs: refs.into(),
            #[cfg(feature = "loader")]
            prefetch: None,
            #[cfg(feature = "loader")]
            _runtime: None,
        })
    }

    #[cfg(not(feature = "loader"))]
    fn list_remote(
        inputs: &[Input],
        _opts: &SourceOpts,
        _max_object_bytes: u64,
    ) -> Result<Objects> {
        let s3 = inputs.iter().find(|i| i.is_s3()).map(ToString::to_string);
        Err(cwl_copy::load::SourceError::NoS3(s3.unwrap_or_default()).into())
    }

    #[cfg(feature = "loader")]
    fn list_remote(
        inputs: &[Input],
        opts: &SourceOpts,
        max_object_bytes: u64,
    ) -> Result<Objects> {
        use cwl_copy::load::source::s3::S3;
        let runtime = runtime()?;
        let list = list_options(opts)?;
        let (s3, refs) = runtime.block_on(async {
            let s3 = S3::connect(&s3_options(opts)).await;
            let refs =
                cwl_copy::load::list_inputs(inputs, &list, Some(&s3)).await?;
            anyhow::Ok((s3, refs))
        })?;
        let refs: Arc<[ObjectRef]> = refs.into();
        let c = opts
            .s3_concurrency
            .unwrap_or_else(cwl_copy::load::default_s3_concurrency)
            .max(1);
        let prefetch = cwl_copy::load::Prefetcher::start(
            runtime.handle(),
            s3,
            Arc::clone(&refs),
            c,
            cwl_copy::load::DEFAULT_PREFETCH_BYTES,
            max_object_bytes,
        );
        Ok(Objects { refs, prefetch: Some(prefetch), _runtime: Some(runtime) })
    }

    /// Reads object `i`: a local file into `buf`, an S3 object as the
    /// downloaded bytes (no copy).
    pub(crate) fn read(&self, i: usize, buf: &mut Vec<u8>) -> Result<Read> {
        let Some(r) = self.refs.get(i) else {
            anyhow::bail!("internal error: no object {i}");
        };
        match &r.location {
            Location::File(p) => {
                files::read_into(p, buf)?;
                Ok(Read::InBuf)
            }
            #[cfg(feature = "loader")]
            Location::S3 { .. } => {
                let Some(p) = &self.prefetch else {
                    anyhow::bail!(
                        "internal error: no downloads for {}",
                        r.name
                    );
                };
                match p.take(i)? {
                    cwl_copy::load::Fetched::Data(b) => Ok(Read::Bytes(b)),
                    _ => {
                        tracing::warn!(object = %r.name, "deleted after it was listed; skipped");
                        Ok(Read::Vanished)
                    }
                }
            }
            #[allow(unreachable_patterns)]
            _ => Err(cwl_copy::load::SourceError::NoS3(r.name.clone()).into()),
        }
    }

    /// Warns on stderr when the inputs hold no object (a wrong path or
    /// prefix is then noticed); the exit code stays 0.
    pub(crate) fn warn_if_empty(&self, inputs: &[String]) {
        if self.refs.is_empty() {
            eprintln!(
                "cwl-copy: warning: no objects found in {}",
                inputs.join(" ")
            );
        }
    }

    /// Bytes of all objects, as listed.
    pub(crate) fn bytes(&self) -> u64 {
        self.refs.iter().filter_map(|r| r.size).sum()
    }
}

/// The async runtime of the commands that do I/O: one worker thread (the
/// CPU work runs on rayon).
#[cfg(feature = "loader")]
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// How S3 is reached.
#[cfg(feature = "loader")]
pub(crate) fn s3_options(
    opts: &SourceOpts,
) -> cwl_copy::load::source::s3::S3Options {
    cwl_copy::load::source::s3::S3Options {
        endpoint_url: opts.endpoint_url.clone(),
    }
}

/// `--from`, `--to` and `--prefix-template` as listing options.
#[cfg(feature = "loader")]
pub(crate) fn list_options(
    opts: &SourceOpts,
) -> Result<cwl_copy::load::ListOptions> {
    use cwl_copy::load::source::prefix;
    let usage = |flag: &str, e: &dyn std::fmt::Display| {
        anyhow::Error::from(Usage(format!("{flag}: {e}")))
    };
    let hours = match (&opts.from, &opts.to) {
        (None, None) => None,
        (Some(from), Some(to)) => Some(
            prefix::HourRange::parse(from, to)
                .map_err(|e| usage("--from/--to", &e))?,
        ),
        (Some(_), None) => {
            return Err(Usage("--from needs --to".into()).into())
        }
        (None, Some(_)) => {
            return Err(Usage("--to needs --from".into()).into())
        }
    };
    let template = match &opts.prefix_template {
        Some(t) => Some(
            prefix::PrefixTemplate::parse(t)
                .map_err(|e| usage("--prefix-template", &e))?,
        ),
        None => None,
    };
    Ok(cwl_copy::load::ListOptions { hours, template })
}
