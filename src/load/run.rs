//! [`run`]: the loader's driver, shared by every source and target.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::Digest as _;

use super::batch::{BatchLimits, Batcher};
use super::source::prefix::{HourRange, PrefixTemplate};
use super::source::s3::{self, S3};
use super::source::{files, Fetched, Input, Location, ObjectRef, Prefetcher};
use super::summary::LoadSummary;
use super::target::Target;
use super::{ObjectError, ObjectRows, RejectRecord, SourceError};
use crate::{ConvertScratch, Converter, ObjectOutput};

/// Why a load stopped. Nothing of a batch that failed is committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Listing or reading objects failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The target failed (after retrying what is transient).
    #[error(transparent)]
    Target(Box<dyn std::error::Error + Send + Sync>),
    /// The target or the flags are not usable as they are (a missing
    /// table, an old ledger layout).
    #[error("{0}")]
    Config(String),
    /// A worker thread could not start or stopped unexpectedly.
    #[error("{0}")]
    Worker(String),
}

/// Counters a progress display reads while a load runs (every field only
/// grows).
#[derive(Debug, Default)]
pub struct Progress {
    /// Objects listed.
    pub objects_listed: AtomicU64,
    /// Bytes of the objects listed, as stored.
    pub bytes_listed: AtomicU64,
    /// Objects skipped because the ledger holds them.
    pub objects_skipped: AtomicU64,
    /// Bytes of the objects skipped.
    pub bytes_skipped: AtomicU64,
    /// Objects read and converted.
    pub objects_converted: AtomicU64,
    /// Bytes of the objects read and converted, as stored.
    pub bytes_converted: AtomicU64,
    /// Bytes downloaded from S3.
    pub bytes_downloaded: AtomicU64,
    /// Objects committed by this run.
    pub objects_loaded: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// How a load runs.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Decodes and maps each object.
    pub converter: Arc<Converter>,
    /// Converter threads (at least 1).
    pub threads: usize,
    /// When a batch closes.
    pub limits: BatchLimits,
    /// S3 downloads at once (`--s3-concurrency`).
    pub s3_concurrency: usize,
    /// Largest object read, in bytes as stored (`--max-object-bytes`).
    pub max_object_bytes: u64,
    /// Counters for a progress display.
    pub progress: Arc<Progress>,
}

impl LoadConfig {
    /// A configuration with default limits: one thread per CPU, 8 S3
    /// downloads at once, objects up to 8 GiB.
    #[must_use]
    pub fn new(converter: Converter) -> LoadConfig {
        LoadConfig {
            converter: Arc::new(converter),
            threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get()),
            limits: BatchLimits::default(),
            s3_concurrency: default_s3_concurrency(),
            max_object_bytes: 8 << 30,
            progress: Arc::default(),
        }
    }
}

/// `--s3-concurrency`'s default: four downloads per CPU, at least 8 and at
/// most 32 (downloads wait on the network far more than on the CPU).
#[must_use]
pub fn default_s3_concurrency() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * 4).clamp(8, 32)
}

/// Where objects come from. A source yields groups of object references;
/// the loader skips what the ledger holds, loads the rest, and asks for
/// the next group until there is none.
pub trait Source {
    /// The next objects, in the order to load them; `None` at the end.
    fn next_objects(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<ObjectRef>>, LoadError>> + Send;

    /// The S3 client that reads this source's S3 objects, if it has any.
    fn s3(&self) -> Option<&S3>;
}

/// Which objects an S3 INPUT lists.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `--from` / `--to`: only the Firehose hour prefixes in `[from, to)`.
    pub hours: Option<HourRange>,
    /// `--prefix-template`: the Firehose prefix with `!{timestamp:…}`
    /// expressions (default: `<input prefix>YYYY/MM/dd/HH/`).
    pub template: Option<PrefixTemplate>,
}

/// A fixed list of objects (local paths and S3 listings): one group.
#[derive(Debug)]
pub struct Listing {
    refs: Option<Vec<ObjectRef>>,
    s3: Option<S3>,
}

impl Listing {
    /// Lists `inputs` (see [`list_inputs`]).
    ///
    /// # Errors
    ///
    /// As [`list_inputs`].
    pub async fn new(
        inputs: &[Input],
        options: &ListOptions,
        s3: Option<S3>,
    ) -> Result<Listing, LoadError> {
        let refs = list_inputs(inputs, options, s3.as_ref()).await?;
        Ok(Listing { refs: Some(refs), s3 })
    }

    /// A listing of objects already known.
    #[must_use]
    pub fn from_refs(refs: Vec<ObjectRef>, s3: Option<S3>) -> Listing {
        Listing { refs: Some(refs), s3 }
    }
}

impl Source for Listing {
    async fn next_objects(
        &mut self,
    ) -> Result<Option<Vec<ObjectRef>>, LoadError> {
        Ok(self.refs.take())
    }

    fn s3(&self) -> Option<&S3> {
        self.s3.as_ref()
    }
}

/// Every object of `inputs`, each input's in key (or sorted path) order,
/// inputs in the order given.
///
/// # Errors
///
/// [`SourceError`] for an input that cannot be listed, an S3 input with
/// no client, or a range given with a local path.
pub async fn list_inputs(
    inputs: &[Input],
    options: &ListOptions,
    s3: Option<&S3>,
) -> Result<Vec<ObjectRef>, SourceError> {
    let mut out = Vec::new();
    for input in inputs {
        match input {
            Input::Path(p) => {
                if options.hours.is_some() || options.template.is_some() {
                    return Err(SourceError::Usage(format!(
                        "--from, --to and --prefix-template select S3 hour \
                         prefixes; they do not apply to the local path {}",
                        p.display()
                    )));
                }
                let p = p.clone();
                let refs =
                    tokio::task::spawn_blocking(move || files::list(&p))
                        .await
                        .map_err(|e| SourceError::Usage(e.to_string()))??;
                out.extend(refs);
            }
            Input::S3 { bucket, prefix } => {
                let Some(s3) = s3 else {
                    return Err(SourceError::NoS3(input.to_string()));
                };
                let hours = match options.hours {
                    Some(range) => Some(s3::hour_prefixes(
                        prefix,
                        options.template.as_ref(),
                        range,
                    )?),
                    None => None,
                };
                out.extend(s3.list_refs(bucket, prefix, hours).await?);
            }
        }
    }
    Ok(out)
}

/// The converter's output as the loader takes it: counts, CSV, rejects
/// and errors, and the SHA-256 of the object's bytes.
#[must_use]
pub fn object_rows(r: &ObjectRef, data: &[u8], o: ObjectOutput) -> ObjectRows {
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
    let digest = sha2::Sha256::digest(data);
    let mut hash = String::with_capacity(7 + 64);
    hash.push_str("sha256:");
    for b in digest.iter() {
        use std::fmt::Write as _;
        let _ = write!(hash, "{b:02x}");
    }
    ObjectRows {
        key: r.ledger_key.clone(),
        size: u64::try_from(data.len()).unwrap_or(u64::MAX),
        etag: r.etag.clone(),
        content_hash: hash,
        csv: bytes::Bytes::from(o.csv),
        events: o.counts.events,
        rows: o.counts.rows,
        filtered: o.counts.filtered_out,
        rejected: o.counts.rejected,
        rejects,
        errors,
    }
}

/// What a worker made of one object.
enum Produced {
    Rows(ObjectRows),
    Vanished(String),
}

/// Loads everything `source` yields into `target`, exactly once. See the
/// module docs of [`crate::load`].
///
/// # Errors
///
/// [`LoadError`] when listing, reading, or a batch fails for good; the
/// batches committed before stay committed (and in the ledger), the
/// failed one is rolled back whole.
pub async fn run<S: Source, T: Target>(
    config: &LoadConfig,
    source: &mut S,
    target: &mut T,
) -> Result<LoadSummary, LoadError> {
    let threads = config.threads.max(1);
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cwl-copy-convert-{i}"))
            .build()
            .map_err(|e| {
                LoadError::Worker(format!("starting threads: {e}"))
            })?,
    );
    target.prepare().await?;
    let mut summary =
        LoadSummary { target: target.info(), ..Default::default() };
    while let Some(refs) = source.next_objects().await? {
        let s3 = source.s3().cloned();
        load_group(config, &pool, s3, refs, target, &mut summary).await?;
    }
    summary.retries = target.retries();
    Ok(summary)
}

async fn load_group<T: Target>(
    config: &LoadConfig,
    pool: &Arc<rayon::ThreadPool>,
    s3: Option<S3>,
    refs: Vec<ObjectRef>,
    target: &mut T,
    summary: &mut LoadSummary,
) -> Result<(), LoadError> {
    let progress = &config.progress;
    let n = u64::try_from(refs.len()).unwrap_or(u64::MAX);
    let bytes: u64 = refs.iter().filter_map(|r| r.size).sum();
    add(&progress.objects_listed, n);
    add(&progress.bytes_listed, bytes);
    summary.objects_seen += n;
    summary.objects_listed += n;

    let keys: Vec<String> =
        refs.iter().map(|r| r.ledger_key.clone()).collect();
    let done = target.already_loaded(&keys).await?;
    drop(keys);
    // A key twice in one listing (two inputs overlapping) is read once.
    let mut seen: HashSet<String> = HashSet::new();
    let mut todo = Vec::with_capacity(refs.len());
    for r in refs {
        if done.contains(&r.ledger_key) {
            summary.objects_skipped_already_loaded += 1;
            add(&progress.objects_skipped, 1);
            add(&progress.bytes_skipped, r.size.unwrap_or(0));
        } else if !seen.insert(r.ledger_key.clone()) {
            summary.objects_skipped_duplicate += 1;
            add(&progress.objects_skipped, 1);
        } else {
            todo.push(r);
        }
    }
    summary.objects_skipped_ledger = summary.objects_skipped_already_loaded;
    if todo.is_empty() {
        return Ok(());
    }
    let todo: Arc<[ObjectRef]> = todo.into();
    let prefetch =
        if todo.iter().any(|r| matches!(r.location, Location::S3 { .. })) {
            let Some(s3) = s3 else {
                return Err(SourceError::NoS3(todo[0].name.clone()).into());
            };
            let c = config.s3_concurrency.max(1);
            Some(Prefetcher::start(
                &tokio::runtime::Handle::current(),
                s3,
                Arc::clone(&todo),
                c,
                c.saturating_mul(2),
                config.max_object_bytes,
            ))
        } else {
            None
        };

    // Convert on rayon in a thread of its own, in input order; a closed
    // channel (the loader failed) stops the work.
    let window = threads_window(config);
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<Produced, LoadError>>(window);
    let converter = Arc::clone(&config.converter);
    let pool = Arc::clone(pool);
    let items = Arc::clone(&todo);
    let prog = Arc::clone(progress);
    let producer = std::thread::Builder::new()
        .name("cwl-copy-producer".into())
        .spawn(move || {
            let indices: Vec<usize> = (0..items.len()).collect();
            let _ = crate::ordered::ordered_map(
                &pool,
                &indices,
                window,
                || (ConvertScratch::new(), Vec::new()),
                |(scratch, buf), &i| {
                    produce(
                        &converter,
                        &items,
                        i,
                        prefetch.as_ref(),
                        scratch,
                        buf,
                        &prog,
                    )
                },
                |_, r| tx.blocking_send(r).map_err(|_| ()),
            );
            drop(prefetch);
        })
        .map_err(|e| {
            LoadError::Worker(format!("starting the producer: {e}"))
        })?;

    let mut batcher = Batcher::new(config.limits);
    loop {
        let next = match batcher.deadline() {
            Some(at) => tokio::select! {
                r = rx.recv() => Some(r),
                () = tokio::time::sleep_until(at.into()) => None,
            },
            None => Some(rx.recv().await),
        };
        let full = match next {
            Some(Some(Ok(Produced::Rows(obj)))) => batcher.push(obj),
            Some(Some(Ok(Produced::Vanished(name)))) => {
                tracing::warn!(object = %name, "deleted after it was listed; skipped");
                summary.objects_vanished += 1;
                summary.vanished.push(name);
                None
            }
            Some(Some(Err(e))) => return Err(e),
            Some(None) => break,
            None => batcher.take(),
        };
        if let Some(batch) = full {
            commit(target, &batch, summary, progress).await?;
        }
    }
    if let Some(batch) = batcher.take() {
        commit(target, &batch, summary, progress).await?;
    }
    let _ = tokio::task::spawn_blocking(move || producer.join()).await;
    summary.bytes_downloaded =
        progress.bytes_downloaded.load(Ordering::Relaxed);
    Ok(())
}

fn threads_window(config: &LoadConfig) -> usize {
    config.threads.max(1).saturating_mul(2)
}

async fn commit<T: Target>(
    target: &mut T,
    batch: &[ObjectRows],
    summary: &mut LoadSummary,
    progress: &Progress,
) -> Result<(), LoadError> {
    let outcome = target.load_batch(batch).await?;
    add(
        &progress.objects_loaded,
        u64::try_from(outcome.loaded.len()).unwrap_or(u64::MAX),
    );
    summary.add_batch(&outcome);
    tracing::info!(
        batch_id = %outcome.batch_id,
        objects = outcome.loaded.len(),
        events = outcome.events,
        rows = outcome.rows_inserted,
        rejected = outcome.rejected,
        "batch committed"
    );
    Ok(())
}

/// Reads and converts object `i` of `items` on a worker.
fn produce(
    converter: &Converter,
    items: &[ObjectRef],
    i: usize,
    prefetch: Option<&Prefetcher>,
    scratch: &mut ConvertScratch,
    buf: &mut Vec<u8>,
    progress: &Progress,
) -> Result<Produced, LoadError> {
    let Some(r) = items.get(i) else {
        return Err(LoadError::Worker(format!("no object {i}")));
    };
    let fetched;
    let data: &[u8] = match &r.location {
        Location::File(path) => {
            files::read_into(path, buf)?;
            buf
        }
        Location::S3 { .. } => {
            let Some(p) = prefetch else {
                return Err(SourceError::NoS3(r.name.clone()).into());
            };
            match p.take(i)? {
                Fetched::Data(b) => {
                    add(
                        &progress.bytes_downloaded,
                        u64::try_from(b.len()).unwrap_or(u64::MAX),
                    );
                    fetched = b;
                    &fetched
                }
                Fetched::Vanished => {
                    return Ok(Produced::Vanished(r.name.clone()))
                }
            }
        }
    };
    let mut out = ObjectOutput::default();
    converter.convert(&r.name, data, scratch, &mut out);
    add(&progress.objects_converted, 1);
    add(
        &progress.bytes_converted,
        u64::try_from(data.len()).unwrap_or(u64::MAX),
    );
    Ok(Produced::Rows(object_rows(r, data, out)))
}
