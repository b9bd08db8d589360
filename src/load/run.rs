//! [`run`]: the loader's driver, shared by every source and target.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::Digest as _;

use super::batch::{BatchLimits, Batcher};
use super::source::prefix::{HourRange, PrefixTemplate};
use super::source::s3::{self, S3};
use super::source::{files, Fetched, Input, Location, ObjectRef, Prefetcher};
use super::spill::{Csv, CsvBudget, CsvWriter, PIECE_BYTES};
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
    /// An object's CSV did not fit the memory budget and could not be
    /// written to a temporary file either.
    #[error(
        "{object}: writing its CSV to a temporary file in {dir} (beyond \
         --csv-memory-bytes; set TMPDIR for another place): {source}"
    )]
    Spill {
        /// The object.
        object: String,
        /// The directory of temporary files.
        dir: String,
        /// Why writing failed.
        source: std::io::Error,
    },
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
    /// S3 objects downloading or downloaded ahead of the converters, in
    /// bytes as stored (default 64 MiB; at least one object).
    pub prefetch_bytes: u64,
    /// Counters for a progress display.
    pub progress: Arc<Progress>,
    /// Log one structured line per committed batch (target
    /// `cwl_copy::batch`, level INFO): objects, events, rows, rejected,
    /// seconds, queue lag.
    pub log_batches: bool,
    /// Name each object by its ledger key while converting (its `@object`
    /// value), for a target that matches rows to the ledger by that
    /// column (Redshift's staging table).
    pub name_by_ledger_key: bool,
    /// CSV held in memory by the whole load (objects converting, waiting
    /// and loading), in bytes (`--csv-memory-bytes`, default 32 MiB): an
    /// object's CSV beyond it goes to an unnamed temporary file in
    /// `spill_dir`. See [`CsvBudget`].
    pub csv_memory_bytes: u64,
    /// Where CSV beyond `csv_memory_bytes` goes (`None`: `$TMPDIR`, else
    /// `/tmp`).
    pub spill_dir: Option<std::path::PathBuf>,
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
            prefetch_bytes: DEFAULT_PREFETCH_BYTES,
            progress: Arc::default(),
            log_batches: false,
            name_by_ledger_key: false,
            csv_memory_bytes: DEFAULT_CSV_MEMORY_BYTES,
            spill_dir: None,
        }
    }
}

/// [`LoadConfig::prefetch_bytes`]'s default: 32 MiB of objects as stored.
pub const DEFAULT_PREFETCH_BYTES: u64 = 32 << 20;

/// [`LoadConfig::csv_memory_bytes`]'s default: 32 MiB.
pub const DEFAULT_CSV_MEMORY_BYTES: u64 = 32 << 20;

/// `--s3-concurrency`'s default: four downloads per CPU, at least 8 and at
/// most 32 (downloads wait on the network far more than on the CPU).
#[must_use]
pub fn default_s3_concurrency() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * 4).clamp(8, 32)
}

/// Where objects come from. A source yields groups of object references
/// (a listing, or the objects of one receive); the loader skips what the
/// ledger holds, loads the rest, and tells the source which objects are
/// settled (committed, already loaded, vanished) or failed, so that a
/// queue can delete or return its messages.
///
/// [`run`] calls [`Source::next_objects`] from a task of its own while it
/// loads, so the methods take `&self`.
pub trait Source: Send + Sync + 'static {
    /// The next objects, in the order to load them; `None` at the end.
    fn next_objects(
        &self,
    ) -> impl Future<Output = Result<Option<Vec<ObjectRef>>, LoadError>> + Send;

    /// The S3 client that reads this source's S3 objects, if it has any.
    fn s3(&self) -> Option<&S3>;

    /// The objects with these ledger keys are settled: committed by this
    /// run, found in the ledger, or vanished.
    fn settled(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<(), LoadError>> + Send {
        let _ = keys;
        async { Ok(()) }
    }

    /// A batch holding these objects failed and was rolled back.
    fn failed(&self, keys: &[String]) -> impl Future<Output = ()> + Send {
        let _ = keys;
        async {}
    }

    /// The load is over (done, stopped or failed): give back whatever is
    /// still held, so that it is not lost until a timeout.
    fn finish(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Message counts, for a source of messages.
    fn messages(&self) -> Option<super::source::sqs::MessageStats> {
        None
    }

    /// How long the oldest object still held has waited since it was
    /// announced (a queue's lag), if the source knows.
    fn lag(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Describes the loader's metrics (counters and gauges through the
/// `metrics` facade; free unless an exporter is installed).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(
        "cwl_copy_objects_total",
        "Objects by outcome: loaded, skipped_ledger, duplicate, vanished."
    );
    describe_counter!(
        "cwl_copy_events_total",
        "Events decoded from loaded objects."
    );
    describe_counter!("cwl_copy_rows_total", "Rows inserted into the target.");
    describe_counter!(
        "cwl_copy_rejects_total",
        "Quarantined input by kind: event (rejected by the mapping), input \
         (undecodable ranges, bad message bodies)."
    );
    describe_counter!("cwl_copy_batches_total", "Batches committed.");
    describe_counter!(
        "cwl_copy_errors_total",
        "Batches that failed for good."
    );
    describe_counter!(
        "cwl_copy_messages_total",
        "SQS messages by outcome: received, deleted, test_event, ignored, \
         quarantined, returned."
    );
    describe_gauge!(
        "cwl_copy_messages_in_flight",
        "SQS messages held (received, not yet deleted)."
    );
    describe_gauge!(
        "cwl_copy_oldest_message_age_seconds",
        Unit::Seconds,
        "Age of the oldest SQS message held, from its SentTimestamp."
    );
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
    refs: std::sync::Mutex<Option<Vec<ObjectRef>>>,
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
        Ok(Listing::from_refs(refs, s3))
    }

    /// A listing of objects already known.
    #[must_use]
    pub fn from_refs(refs: Vec<ObjectRef>, s3: Option<S3>) -> Listing {
        Listing { refs: std::sync::Mutex::new(Some(refs)), s3 }
    }
}

impl Source for Listing {
    async fn next_objects(&self) -> Result<Option<Vec<ObjectRef>>, LoadError> {
        Ok(self.refs.lock().ok().and_then(|mut r| r.take()))
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

/// `s` as the quarantine's `text` columns can hold it: PostgreSQL (and
/// Redshift) text has no U+0000, so each is written `\u0000` (a message
/// rejected for holding one, `nul_char`, would otherwise fail its whole
/// batch).
fn quarantine_text(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\\u0000")
    } else {
        s
    }
}

/// The converter's output as the loader takes it: counts, CSV, rejects
/// and errors, and the SHA-256 of the object's bytes.
#[must_use]
pub fn object_rows(
    r: &ObjectRef,
    data: &[u8],
    mut o: ObjectOutput,
) -> ObjectRows {
    let csv = Csv::from(std::mem::take(&mut o.csv));
    rows_of(r, data, o, csv)
}

/// [`object_rows`] with the CSV built apart (see [`CsvWriter`]).
fn rows_of(
    r: &ObjectRef,
    data: &[u8],
    o: ObjectOutput,
    csv: Csv,
) -> ObjectRows {
    let rejects = o
        .rejects
        .into_iter()
        .map(|r| RejectRecord {
            member: r.member,
            event_id: r.id.map(quarantine_text),
            reason: quarantine_text(match r.column {
                Some(c) => format!("{}: column {c:?}: {}", r.code, r.reason),
                None => format!("{}: {}", r.code, r.reason),
            }),
            message: quarantine_text(r.message),
            code: r.code.to_owned(),
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
            reason: None,
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
        csv,
        events: o.counts.events,
        envelopes: o.decode.envelopes,
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
    /// Deleted after listing: (name, ledger key).
    Vanished(String, String),
}

/// Loads everything `source` yields into `target`, exactly once. See the
/// module docs of [`crate::load`].
///
/// One pipeline serves every group the source yields, so the objects of
/// many small groups (SQS receives) merge into the same batches: an
/// intake task asks the source for groups; each group's keys are checked
/// against the ledger in bulk (and against the objects already on their
/// way); the rest go to the converter thread, which reads and converts
/// each group on the rayon pool in order; converted objects fill batches
/// that the target loads one transaction at a time; and after each commit
/// the source hears which objects are settled.
///
/// # Errors
///
/// [`LoadError`] when listing, reading, or a batch fails for good; the
/// batches committed before stay committed (and in the ledger), the
/// failed one is rolled back whole and its objects are reported to
/// [`Source::failed`].
pub async fn run<S: Source, T: Target>(
    config: &LoadConfig,
    source: S,
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
    let source = Arc::new(source);
    let budget =
        CsvBudget::new(config.csv_memory_bytes, config.spill_dir.clone());
    let result =
        pipeline(config, &pool, &budget, &source, target, &mut summary).await;
    summary.objects_spilled = budget.spilled_objects();
    summary.bytes_spilled = budget.spilled_bytes();
    source.finish().await;
    if let Some(m) = source.messages() {
        summary.messages = m;
    }
    summary.retries = target.retries();
    summary.bytes_downloaded =
        config.progress.bytes_downloaded.load(Ordering::Relaxed);
    result.map(|()| summary)
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn pipeline<S: Source, T: Target>(
    config: &LoadConfig,
    pool: &Arc<rayon::ThreadPool>,
    budget: &Arc<CsvBudget>,
    source: &Arc<S>,
    target: &mut T,
    summary: &mut LoadSummary,
) -> Result<(), LoadError> {
    let progress = &config.progress;
    // Intake: groups from the source, one ahead.
    let (group_tx, mut group_rx) =
        tokio::sync::mpsc::channel::<Result<Vec<ObjectRef>, LoadError>>(1);
    let intake_source = Arc::clone(source);
    let _intake = AbortOnDrop(tokio::spawn(async move {
        loop {
            let next = intake_source.next_objects().await;
            let end = !matches!(next, Ok(Some(_)));
            let sent = match next {
                Ok(Some(g)) => group_tx.send(Ok(g)).await,
                Ok(None) => break,
                Err(e) => group_tx.send(Err(e)).await,
            };
            if end || sent.is_err() {
                break;
            }
        }
    }));

    // The converter thread: each group on the pool, in order.
    let window = threads_window(config);
    let (work_tx, work_rx) = std::sync::mpsc::channel::<Arc<[ObjectRef]>>();
    let (res_tx, mut res_rx) =
        tokio::sync::mpsc::channel::<Result<Produced, LoadError>>(window);
    let work = Arc::new(Work {
        converter: Arc::clone(&config.converter),
        progress: Arc::clone(progress),
        by_key: config.name_by_ledger_key,
        budget: Arc::clone(budget),
    });
    let pool = Arc::clone(pool);
    let s3 = source.s3().cloned();
    let runtime = tokio::runtime::Handle::current();
    let (concurrency, limit, ahead_bytes) = (
        config.s3_concurrency.max(1),
        config.max_object_bytes,
        config.prefetch_bytes,
    );
    std::thread::Builder::new()
        .name("cwl-copy-producer".into())
        .spawn(move || {
            for items in work_rx {
                let any_s3 = items
                    .iter()
                    .any(|r| matches!(r.location, Location::S3 { .. }));
                let prefetch = match (&s3, any_s3) {
                    (Some(s3), true) => Some(Prefetcher::start(
                        &runtime,
                        s3.clone(),
                        Arc::clone(&items),
                        concurrency,
                        ahead_bytes,
                        limit,
                    )),
                    _ => None,
                };
                let indices: Vec<usize> = (0..items.len()).collect();
                let r = crate::ordered::ordered_map(
                    &pool,
                    &indices,
                    window,
                    || (ConvertScratch::new(), Vec::new()),
                    |(scratch, buf), &i| {
                        work.produce(
                            &items,
                            i,
                            prefetch.as_ref(),
                            scratch,
                            buf,
                        )
                    },
                    |_, r| res_tx.blocking_send(r).map_err(|_| ()),
                );
                if r.is_err() {
                    return;
                }
            }
        })
        .map_err(|e| {
            LoadError::Worker(format!("starting the producer: {e}"))
        })?;
    let mut work_tx = Some(work_tx);

    // Keys sent to the converter and not yet settled, each with whether
    // it is a message body rather than an object (not counted as one).
    let mut in_flight: InFlight = HashMap::new();
    let mut batcher = Batcher::new(config.limits);
    loop {
        let deadline = batcher.deadline();
        tokio::select! {
            g = group_rx.recv(), if work_tx.is_some() => match g {
                Some(Ok(refs)) => {
                    let todo = admit(
                        refs, source.as_ref(), target, summary, progress,
                        &mut in_flight,
                    )
                    .await?;
                    if !todo.is_empty() {
                        let sent = work_tx.as_ref().map(|w| w.send(todo.into()));
                        if !matches!(sent, Some(Ok(()))) {
                            return Err(LoadError::Worker(
                                "the converter thread stopped".into(),
                            ));
                        }
                    }
                }
                Some(Err(e)) => return Err(e),
                // No more groups: the converter finishes what it has.
                None => work_tx = None,
            },
            r = res_rx.recv() => match r {
                Some(Ok(Produced::Rows(obj))) => {
                    if obj.envelopes == 0 && obj.events > 0 {
                        summary.objects_read_as_lines += 1;
                        if summary.first_read_as_lines.is_none() {
                            summary.first_read_as_lines = Some(obj.key.clone());
                        }
                    }
                    if let Some(batch) = batcher.push(obj) {
                        commit(target, source.as_ref(), &batch, summary,
                               config, &mut in_flight).await?;
                    }
                }
                Some(Ok(Produced::Vanished(name, key))) => {
                    tracing::warn!(object = %name,
                        "deleted after it was listed; skipped");
                    summary.objects_vanished += 1;
                    summary.vanished.push(name);
                    metrics::counter!("cwl_copy_objects_total",
                        "outcome" => "vanished").increment(1);
                    in_flight.remove(&key);
                    source.settled(&[key]).await?;
                }
                Some(Err(e)) => return Err(e),
                None => break,
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                if let Some(batch) = batcher.take() {
                    commit(target, source.as_ref(), &batch, summary,
                           config, &mut in_flight).await?;
                }
            }
        }
    }
    if let Some(batch) = batcher.take() {
        commit(
            target,
            source.as_ref(),
            &batch,
            summary,
            config,
            &mut in_flight,
        )
        .await?;
    }
    Ok(())
}

/// Ledger keys on their way → whether the key is a message body (an SQS
/// body that is no notification), which is quarantined like an object but
/// not counted as one.
type InFlight = HashMap<String, bool>;

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Counts a group, skips what the ledger holds (settling it at once) and
/// what is already on its way, and returns the rest.
async fn admit<S: Source, T: Target>(
    refs: Vec<ObjectRef>,
    source: &S,
    target: &mut T,
    summary: &mut LoadSummary,
    progress: &Progress,
    in_flight: &mut InFlight,
) -> Result<Vec<ObjectRef>, LoadError> {
    let is_message =
        |r: &ObjectRef| matches!(r.location, Location::Rejected { .. });
    let objects = refs.iter().filter(|r| !is_message(r)).count();
    let n = u64::try_from(objects).unwrap_or(u64::MAX);
    let bytes: u64 = refs.iter().filter_map(|r| r.size).sum();
    add(&progress.objects_listed, n);
    add(&progress.bytes_listed, bytes);
    summary.objects_seen += n;
    summary.objects_listed += n;

    let keys: Vec<String> =
        refs.iter().map(|r| r.ledger_key.clone()).collect();
    let done = target.already_loaded(&keys).await?;
    drop(keys);
    let mut settled = Vec::new();
    let mut todo = Vec::with_capacity(refs.len());
    for r in refs {
        let message = is_message(&r);
        if done.contains(&r.ledger_key) {
            if !message {
                summary.objects_skipped_already_loaded += 1;
                add(&progress.objects_skipped, 1);
                add(&progress.bytes_skipped, r.size.unwrap_or(0));
            }
            settled.push(r.ledger_key);
        } else if in_flight.contains_key(&r.ledger_key) {
            // On its way already (twice in a listing, or notified again):
            // settled when that one commits.
            if !message {
                summary.objects_skipped_duplicate += 1;
                add(&progress.objects_skipped, 1);
            }
        } else {
            in_flight.insert(r.ledger_key.clone(), message);
            todo.push(r);
        }
    }
    summary.objects_skipped_ledger = summary.objects_skipped_already_loaded;
    metrics::counter!("cwl_copy_objects_total", "outcome" => "skipped_ledger")
        .increment(u64::try_from(settled.len()).unwrap_or(u64::MAX));
    if !settled.is_empty() {
        source.settled(&settled).await?;
    }
    Ok(todo)
}

fn threads_window(config: &LoadConfig) -> usize {
    config.threads.max(1).saturating_mul(2)
}

async fn commit<S: Source, T: Target>(
    target: &mut T,
    source: &S,
    batch: &[ObjectRows],
    summary: &mut LoadSummary,
    config: &LoadConfig,
    in_flight: &mut InFlight,
) -> Result<(), LoadError> {
    let started = std::time::Instant::now();
    let outcome = match target.load_batch(batch).await {
        Ok(o) => o,
        Err(e) => {
            metrics::counter!("cwl_copy_errors_total").increment(1);
            let keys: Vec<String> =
                batch.iter().map(|o| o.key.clone()).collect();
            source.failed(&keys).await;
            return Err(e);
        }
    };
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    add(&config.progress.objects_loaded, n(outcome.loaded.len()));
    summary.add_batch(&outcome);
    // Message bodies were quarantined through the batch, but are no
    // objects (they count in `messages_quarantined`).
    let messages = |keys: &[String]| {
        n(keys.iter().filter(|k| in_flight.get(*k) == Some(&true)).count())
    };
    let (loaded_msgs, dup_msgs) =
        (messages(&outcome.loaded), messages(&outcome.skipped_duplicate));
    summary.objects_loaded -= loaded_msgs;
    summary.objects_skipped_duplicate -= dup_msgs;
    summary.errors -= loaded_msgs;
    metrics::counter!("cwl_copy_batches_total").increment(1);
    metrics::counter!("cwl_copy_objects_total", "outcome" => "loaded")
        .increment(n(outcome.loaded.len()));
    metrics::counter!("cwl_copy_objects_total", "outcome" => "duplicate")
        .increment(n(outcome.skipped_duplicate.len()));
    metrics::counter!("cwl_copy_events_total").increment(outcome.events);
    metrics::counter!("cwl_copy_rows_total").increment(outcome.rows_inserted);
    metrics::counter!("cwl_copy_rejects_total", "kind" => "event")
        .increment(outcome.rejected);
    metrics::counter!("cwl_copy_rejects_total", "kind" => "input")
        .increment(outcome.errors);
    if config.log_batches {
        let lag = source.lag().map(|d| d.as_secs_f64());
        tracing::info!(
            target: "cwl_copy::batch",
            batch_id = %outcome.batch_id,
            objects = outcome.loaded.len(),
            duplicates = outcome.skipped_duplicate.len(),
            events = outcome.events,
            rows = outcome.rows_inserted,
            rejected = outcome.rejected + outcome.errors,
            seconds = started.elapsed().as_secs_f64(),
            queue_lag_seconds = lag,
            "batch committed"
        );
    } else {
        tracing::debug!(
            batch_id = %outcome.batch_id,
            objects = outcome.loaded.len(),
            rows = outcome.rows_inserted,
            "batch committed"
        );
    }
    let mut settled: Vec<String> = Vec::with_capacity(
        outcome.loaded.len() + outcome.skipped_duplicate.len(),
    );
    settled.extend(outcome.loaded.iter().cloned());
    settled.extend(outcome.skipped_duplicate.iter().cloned());
    for k in &settled {
        in_flight.remove(k);
    }
    source.settled(&settled).await
}

/// The quarantine's rows for input that is no object.
fn rejected_rows(
    r: &ObjectRef,
    code: &str,
    reason: &str,
    text: &str,
) -> ObjectRows {
    let mut rows = object_rows(r, text.as_bytes(), ObjectOutput::default());
    rows.errors.push(ObjectError {
        member: None,
        offset: 0,
        kind: code.to_owned(),
        message: text.to_owned(),
        reason: Some(reason.to_owned()),
    });
    rows
}

/// What every worker shares.
struct Work {
    converter: Arc<Converter>,
    progress: Arc<Progress>,
    /// Name objects by their ledger key ([`LoadConfig::name_by_ledger_key`]).
    by_key: bool,
    budget: Arc<CsvBudget>,
}

impl Work {
    /// Reads and converts object `i` of `items` on a worker.
    fn produce(
        &self,
        items: &[ObjectRef],
        i: usize,
        prefetch: Option<&Prefetcher>,
        scratch: &mut ConvertScratch,
        buf: &mut Vec<u8>,
    ) -> Result<Produced, LoadError> {
        let progress = &self.progress;
        let Some(r) = items.get(i) else {
            return Err(LoadError::Worker(format!("no object {i}")));
        };
        let fetched;
        let data: &[u8] = match &r.location {
            Location::Rejected { code, reason, text } => {
                return Ok(Produced::Rows(rejected_rows(
                    r, code, reason, text,
                )));
            }
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
                        return Ok(Produced::Vanished(
                            r.name.clone(),
                            r.ledger_key.clone(),
                        ))
                    }
                }
            }
        };
        let mut out = ObjectOutput::default();
        let name = if self.by_key { &r.ledger_key } else { &r.name };
        // The CSV in pieces, kept in memory while the load's budget has
        // room and written to a temporary file beyond it.
        let mut csv = CsvWriter::new(&self.budget);
        // The progress display moves within an object, not only after it.
        let mut counted = 0u64;
        self.converter.convert_chunked_with_progress(
            name,
            data,
            scratch,
            &mut out,
            PIECE_BYTES,
            |o: &mut ObjectOutput| csv.push(&mut o.csv),
            |consumed| {
                add(
                    &progress.bytes_converted,
                    consumed.saturating_sub(counted),
                );
                counted = counted.max(consumed);
            },
        );
        let csv =
            csv.finish(&mut out.csv).map_err(|source| LoadError::Spill {
                object: r.name.clone(),
                dir: self.budget.dir().display().to_string(),
                source,
            })?;
        add(&progress.objects_converted, 1);
        add(
            &progress.bytes_converted,
            u64::try_from(data.len())
                .unwrap_or(u64::MAX)
                .saturating_sub(counted),
        );
        Ok(Produced::Rows(rows_of(r, data, out, csv)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{corpus, ColumnSpec, Decoder, Dialect, Mapper};

    /// The progress counters count each object's bytes once, moving
    /// within the object (`bytes_converted` rises while it converts) and
    /// ending at its size.
    #[test]
    fn bytes_converted_moves_within_an_object_and_counts_it_once() {
        let mut rng = corpus::Rng::new(3);
        let mut ts = 1_714_570_800_000;
        let (data, _) = corpus::object(&mut rng, &mut ts, 48, 200_000, false);
        let dir = std::env::temp_dir()
            .join(format!("cwl-copy-run-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("object");
        std::fs::write(&path, &data).unwrap();
        let spec = ColumnSpec::from_toml(
            "table = 't'\n[[columns]]\nname = 'm'\nsource = '@message'\n\
             type = 'text'\n",
        )
        .unwrap();
        let converter = Arc::new(Converter::new(
            Decoder::new(),
            Mapper::new(&spec, Dialect::Postgres).unwrap(),
        ));
        let progress = Arc::new(Progress::default());
        let work = Work {
            converter,
            progress: Arc::clone(&progress),
            by_key: false,
            budget: CsvBudget::new(64 << 20, None),
        };
        let items = files::list(&path).unwrap();
        // Watch the counter from another thread while the object converts.
        let seen = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut seen = std::collections::BTreeSet::new();
                while progress.objects_converted.load(Ordering::Relaxed) == 0 {
                    seen.insert(
                        progress.bytes_converted.load(Ordering::Relaxed),
                    );
                    std::thread::yield_now();
                }
                seen
            });
            let mut scratch = ConvertScratch::new();
            let mut buf = Vec::new();
            let got =
                work.produce(&items, 0, None, &mut scratch, &mut buf).unwrap();
            assert!(matches!(got, Produced::Rows(_)));
            watcher.join().unwrap()
        });
        let len = data.len() as u64;
        assert_eq!(progress.bytes_converted.load(Ordering::Relaxed), len);
        assert!(
            seen.iter().any(|&n| n > 0 && n < len),
            "no figure between 0 and {len}: {seen:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
