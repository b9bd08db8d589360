//! SQS as a source: S3 event notifications in, objects out; a message is
//! deleted only after every object it announced is committed (or was in
//! the ledger already, or vanished, or the body was quarantined).
//!
//! - Long polling: `WaitTimeSeconds` (20 by default), up to 10 messages a
//!   receive, while fewer than [`SqsOptions::max_in_flight`] messages are
//!   held.
//! - A heartbeat extends the visibility of every held message at about
//!   half the visibility timeout (`ChangeMessageVisibilityBatch`), for as
//!   long as its objects take: a slow batch is not redelivered to another
//!   consumer.
//! - Deletes (`DeleteMessageBatch`, 10 at a time) use the latest receipt
//!   handle of each message; a failed delete only means the message comes
//!   back, and its objects are then found in the ledger.
//! - When a batch fails, its messages are made visible again at once
//!   (visibility 0) for another consumer or a retry; a message that keeps
//!   failing for reasons outside the data is never deleted by us, and the
//!   queue's redrive policy moves it to a dead-letter queue.
//! - A body that is not a notification becomes an object of its own
//!   ([`Location::Rejected`]), which the target quarantines with its text
//!   in the same transaction as a batch; then the message is deleted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName,
};
use tokio::sync::Notify;

use super::notification::{self, Notice};
use super::s3::{describe, S3};
use super::{s3_ledger_key, Location, ObjectRef, SourceError};
use crate::load::run::{LoadError, Source};

/// How the queue is consumed.
#[derive(Clone, Debug)]
pub struct SqsOptions {
    /// The queue (`--sqs-queue-url`).
    pub queue_url: String,
    /// Long-poll wait per receive, seconds (`--wait-seconds`, 0–20).
    pub wait_seconds: i32,
    /// Stop after one receive that found the queue empty (`--once`).
    pub once: bool,
    /// The visibility timeout to assume and re-apply, seconds
    /// (`--visibility-timeout`); `None`: the queue's attribute.
    pub visibility_timeout: Option<i32>,
    /// Messages held at once (received, not yet deleted or returned).
    pub max_in_flight: usize,
}

impl SqsOptions {
    /// Long polling of 20 s, no `--once`, the queue's visibility timeout,
    /// 2,000 messages held at most.
    #[must_use]
    pub fn new(queue_url: &str) -> SqsOptions {
        SqsOptions {
            queue_url: queue_url.to_owned(),
            wait_seconds: 20,
            once: false,
            visibility_timeout: None,
            max_in_flight: 2000,
        }
    }
}

/// Message counts, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MessageStats {
    /// Messages received (a redelivery counts again).
    pub messages_received: u64,
    /// Messages deleted.
    pub messages_deleted: u64,
    /// `s3:TestEvent` messages (deleted).
    pub messages_test_events: u64,
    /// Messages of events that announce nothing to load (deleted).
    pub messages_ignored: u64,
    /// Bodies that are not notifications (quarantined, then deleted).
    pub messages_quarantined: u64,
    /// Messages made visible again after a failed batch.
    pub messages_returned: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    deleted: AtomicU64,
    test_events: AtomicU64,
    ignored: AtomicU64,
    quarantined: AtomicU64,
    returned: AtomicU64,
}

struct Held {
    receipt: String,
    /// When the message was first sent (SentTimestamp, ms since the
    /// epoch).
    sent_ms: Option<u64>,
    /// Ledger keys not yet settled.
    waiting: HashSet<String>,
}

#[derive(Default)]
struct Tracker {
    messages: HashMap<String, Held>,
    by_key: HashMap<String, HashSet<String>>,
}

/// Stops a [`SqsSource`] from receiving more (SIGTERM, SIGINT).
#[derive(Clone, Debug, Default)]
pub struct Stopper {
    stopped: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Stopper {
    /// No more receives; what was received is finished.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether [`Stopper::stop`] was called.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

struct Inner {
    sqs: aws_sdk_sqs::Client,
    options: SqsOptions,
    queue_name: String,
    visibility: i32,
    tracker: Mutex<Tracker>,
    counters: Counters,
    stopper: Stopper,
    room: Notify,
}

/// Consumes S3 event notifications from an SQS queue. See the module
/// docs.
pub struct SqsSource {
    inner: Arc<Inner>,
    s3: S3,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SqsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsSource")
            .field("queue_url", &self.inner.options.queue_url)
            .finish_non_exhaustive()
    }
}

impl Drop for SqsSource {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn sqs_error<E, R>(
    op: &'static str,
    queue: &str,
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    SourceError::Sqs { op, queue: queue.to_owned(), message: describe(e) }
}

impl SqsSource {
    /// A consumer of `options.queue_url` with `sqs`, reading objects with
    /// `s3`. Reads the queue's visibility timeout unless given.
    ///
    /// # Errors
    ///
    /// [`SourceError::Sqs`] if the queue's attributes cannot be read (no
    /// such queue, access denied).
    pub async fn connect(
        sqs: aws_sdk_sqs::Client,
        s3: S3,
        options: SqsOptions,
    ) -> Result<SqsSource, LoadError> {
        let url = options.queue_url.clone();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", &url, &e))?;
        let queue_vt = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(30);
        let visibility = options.visibility_timeout.unwrap_or(queue_vt).max(1);
        let queue_name = url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&url)
            .to_owned();
        let inner = Arc::new(Inner {
            sqs,
            options,
            queue_name,
            visibility,
            tracker: Mutex::new(Tracker::default()),
            counters: Counters::default(),
            stopper: Stopper::default(),
            room: Notify::new(),
        });
        let heartbeat = tokio::spawn(heartbeat(Arc::clone(&inner)));
        Ok(SqsSource { inner, s3, heartbeat })
    }

    /// A handle that stops receiving.
    #[must_use]
    pub fn stopper(&self) -> Stopper {
        self.inner.stopper.clone()
    }

    /// The message counts so far.
    #[must_use]
    pub fn message_stats(&self) -> MessageStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MessageStats {
            messages_received: get(&c.received),
            messages_deleted: get(&c.deleted),
            messages_test_events: get(&c.test_events),
            messages_ignored: get(&c.ignored),
            messages_quarantined: get(&c.quarantined),
            messages_returned: get(&c.returned),
        }
    }

    fn held(&self) -> usize {
        self.inner.tracker.lock().map_or(0, |t| t.messages.len())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn count(outcome: &'static str, n: u64) {
    metrics::counter!("cwl_copy_messages_total", "outcome" => outcome)
        .increment(n);
}

/// Extends every held message's visibility every half timeout.
async fn heartbeat(inner: Arc<Inner>) {
    let period = Duration::from_millis(
        u64::try_from(inner.visibility)
            .unwrap_or(30)
            .saturating_mul(500)
            .max(500),
    );
    loop {
        tokio::time::sleep(period).await;
        inner.gauges();
        let held: Vec<(String, String)> = match inner.tracker.lock() {
            Ok(t) => t
                .messages
                .iter()
                .map(|(id, h)| (id.clone(), h.receipt.clone()))
                .collect(),
            Err(_) => return,
        };
        inner.set_visibility(&held, inner.visibility).await;
    }
}

impl Inner {
    /// Deletes messages (id, receipt), 10 a call.
    async fn delete(&self, messages: &[(String, String)]) {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.options.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    let ok =
                        u64::try_from(out.successful().len()).unwrap_or(0);
                    self.counters.deleted.fetch_add(ok, Ordering::Relaxed);
                    count("deleted", ok);
                    for f in out.failed() {
                        tracing::warn!(
                            code = f.code(),
                            message = f.message(),
                            "a message was not deleted; it will come back and \
                             be found in the ledger"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    error = %DisplayErrorContext(&e),
                    "deleting messages failed; they will come back and be \
                     found in the ledger"
                ),
            }
        }
        self.room.notify_waiters();
        self.gauges();
    }

    /// Sets the visibility timeout of messages (id, receipt), 10 a call;
    /// returns how many were changed. A message that was deleted in the
    /// meantime fails quietly.
    async fn set_visibility(
        &self,
        messages: &[(String, String)],
        seconds: i32,
    ) -> u64 {
        let mut changed = 0;
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(seconds)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            match self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.options.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    changed +=
                        u64::try_from(out.successful().len()).unwrap_or(0);
                    for f in out.failed() {
                        tracing::debug!(
                            id = f.id(),
                            code = f.code(),
                            "visibility not changed (the message may have \
                             been deleted)"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    error = %DisplayErrorContext(&e),
                    seconds,
                    "changing message visibility failed (extensions are \
                     retried at the next heartbeat; returned messages come \
                     back after their timeout)"
                ),
            }
        }
        changed
    }

    /// Returns messages to the queue at once (visibility 0).
    async fn release(&self, messages: &[(String, String)]) {
        let n = self.set_visibility(messages, 0).await;
        self.counters.returned.fetch_add(n, Ordering::Relaxed);
        count("returned", n);
        self.room.notify_waiters();
        self.gauges();
    }

    /// Removes the settled `keys` from the messages waiting on them and
    /// returns the messages left waiting on nothing (id, receipt).
    fn settle(&self, keys: &[String]) -> Vec<(String, String)> {
        let Ok(mut t) = self.tracker.lock() else { return Vec::new() };
        let mut done = Vec::new();
        for key in keys {
            let Some(ids) = t.by_key.remove(key) else { continue };
            for id in ids {
                let empty = t.messages.get_mut(&id).is_some_and(|h| {
                    h.waiting.remove(key);
                    h.waiting.is_empty()
                });
                if empty {
                    if let Some(h) = t.messages.remove(&id) {
                        done.push((id, h.receipt));
                    }
                }
            }
        }
        done
    }

    /// Forgets every message waiting on any of `keys` (whole messages) and
    /// returns them (id, receipt).
    fn forget(&self, keys: &[String]) -> Vec<(String, String)> {
        let Ok(mut t) = self.tracker.lock() else { return Vec::new() };
        let mut ids: HashSet<String> = HashSet::new();
        for key in keys {
            if let Some(m) = t.by_key.get(key) {
                ids.extend(m.iter().cloned());
            }
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(h) = t.messages.remove(&id) {
                for k in &h.waiting {
                    if let Some(set) = t.by_key.get_mut(k) {
                        set.remove(&id);
                        if set.is_empty() {
                            t.by_key.remove(k);
                        }
                    }
                }
                out.push((id, h.receipt));
            }
        }
        out
    }

    /// The age of the oldest message held.
    fn lag(&self) -> Option<Duration> {
        let t = self.tracker.lock().ok()?;
        let oldest = t.messages.values().filter_map(|h| h.sent_ms).min()?;
        Some(Duration::from_millis(now_ms().saturating_sub(oldest)))
    }

    /// Updates the in-flight gauges.
    fn gauges(&self) {
        let held = self.tracker.lock().map_or(0, |t| t.messages.len());
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("cwl_copy_messages_in_flight").set(held as f64);
        metrics::gauge!("cwl_copy_oldest_message_age_seconds")
            .set(self.lag().map_or(0.0, |d| d.as_secs_f64()));
    }

    /// Holds message `id` until `keys` settle (a redelivery updates the
    /// receipt handle and adds its keys).
    fn hold(
        &self,
        id: &str,
        receipt: &str,
        sent_ms: Option<u64>,
        keys: &[String],
    ) {
        let Ok(mut t) = self.tracker.lock() else { return };
        let h = t.messages.entry(id.to_owned()).or_insert_with(|| Held {
            receipt: receipt.to_owned(),
            sent_ms,
            waiting: HashSet::new(),
        });
        h.receipt = receipt.to_owned();
        h.waiting.extend(keys.iter().cloned());
        for k in keys {
            t.by_key.entry(k.clone()).or_default().insert(id.to_owned());
        }
    }
}

impl Source for SqsSource {
    async fn next_objects(&self) -> Result<Option<Vec<ObjectRef>>, LoadError> {
        let inner = &self.inner;
        let url = &inner.options.queue_url;
        loop {
            if inner.stopper.is_stopped() {
                return Ok(None);
            }
            // Room for ten more messages, or wait for deletes.
            while self.held() + 10 > inner.options.max_in_flight.max(10) {
                let room = inner.room.notified();
                let stop = inner.stopper.notify.notified();
                if inner.stopper.is_stopped() {
                    return Ok(None);
                }
                tokio::select! {
                    () = room => {}
                    () = stop => return Ok(None),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            let receive = inner
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(inner.options.wait_seconds.clamp(0, 20))
                .message_system_attribute_names(
                    MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .message_system_attribute_names(
                    MessageSystemAttributeName::SentTimestamp,
                )
                .send();
            let stop = inner.stopper.notify.notified();
            if inner.stopper.is_stopped() {
                return Ok(None);
            }
            let out = tokio::select! {
                r = receive => r.map_err(|e| sqs_error("ReceiveMessage", url, &e))?,
                // A receive abandoned here returns its messages after
                // their visibility timeout: nothing is lost.
                () = stop => return Ok(None),
            };
            let messages = out.messages();
            if messages.is_empty() {
                if inner.options.once {
                    return Ok(None);
                }
                continue;
            }
            let mut refs = Vec::new();
            let mut settled_now = Vec::new();
            for m in messages {
                inner.counters.received.fetch_add(1, Ordering::Relaxed);
                let (Some(id), Some(receipt)) =
                    (m.message_id(), m.receipt_handle())
                else {
                    continue;
                };
                let receives = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(1);
                if receives > 1 {
                    tracing::warn!(
                        message_id = id,
                        receive_count = receives,
                        "message received again (an earlier attempt did not \
                         finish); the queue's redrive policy moves it to the \
                         dead-letter queue after maxReceiveCount"
                    );
                }
                let sent_ms = m
                    .attributes()
                    .and_then(|a| {
                        a.get(&MessageSystemAttributeName::SentTimestamp)
                    })
                    .and_then(|n| n.parse::<u64>().ok());
                count("received", 1);
                let body = m.body().unwrap_or("");
                match notification::parse(body) {
                    Notice::Objects { objects, .. } => {
                        let mut keys = Vec::with_capacity(objects.len());
                        for o in objects {
                            // The ledger knows an object by its key: the same as a
                            // listing or `enqueue` gives (ListObjectsV2 has no
                            // versions); the version only pins the bytes read.
                            let ledger_key =
                                s3_ledger_key(&o.bucket, &o.key, None);
                            keys.push(ledger_key.clone());
                            refs.push(ObjectRef {
                                name: s3_ledger_key(&o.bucket, &o.key, None),
                                ledger_key,
                                relative: o.key.clone().into(),
                                location: Location::S3 {
                                    bucket: o.bucket,
                                    key: o.key,
                                    version_id: o.version_id,
                                },
                                size: o.size,
                                etag: o.etag,
                            });
                        }
                        inner.hold(id, receipt, sent_ms, &keys);
                    }
                    Notice::TestEvent => {
                        inner
                            .counters
                            .test_events
                            .fetch_add(1, Ordering::Relaxed);
                        count("test_event", 1);
                        settled_now.push((id.to_owned(), receipt.to_owned()));
                    }
                    Notice::Ignored(event) => {
                        tracing::debug!(message_id = id, event, "ignored");
                        inner.counters.ignored.fetch_add(1, Ordering::Relaxed);
                        count("ignored", 1);
                        settled_now.push((id.to_owned(), receipt.to_owned()));
                    }
                    Notice::Bad(reason) => {
                        inner
                            .counters
                            .quarantined
                            .fetch_add(1, Ordering::Relaxed);
                        count("quarantined", 1);
                        let key = format!("sqs://{}/{id}", inner.queue_name);
                        inner.hold(
                            id,
                            receipt,
                            sent_ms,
                            std::slice::from_ref(&key),
                        );
                        refs.push(ObjectRef {
                            name: key.clone(),
                            ledger_key: key,
                            relative: id.into(),
                            location: Location::Rejected {
                                code: "bad_message",
                                reason: format!(
                                    "not an S3 event notification: {reason}"
                                ),
                                text: body.to_owned(),
                            },
                            size: u64::try_from(body.len()).ok(),
                            etag: None,
                        });
                    }
                }
            }
            if !settled_now.is_empty() {
                inner.delete(&settled_now).await;
            }
            inner.gauges();
            if !refs.is_empty() {
                return Ok(Some(refs));
            }
        }
    }

    fn s3(&self) -> Option<&S3> {
        Some(&self.s3)
    }

    async fn settled(&self, keys: &[String]) -> Result<(), LoadError> {
        let done = self.inner.settle(keys);
        if !done.is_empty() {
            self.inner.delete(&done).await;
        }
        Ok(())
    }

    async fn failed(&self, keys: &[String]) {
        let back = self.inner.forget(keys);
        if !back.is_empty() {
            self.inner.release(&back).await;
        }
    }

    async fn finish(&self) {
        // Every message should be settled or returned by now; one that is
        // not (a receive the loader stopped following) goes back to the
        // queue at once instead of after its visibility timeout.
        let left: Vec<(String, String)> = match self.inner.tracker.lock() {
            Ok(mut t) => {
                t.by_key.clear();
                t.messages.drain().map(|(id, h)| (id, h.receipt)).collect()
            }
            Err(_) => Vec::new(),
        };
        if !left.is_empty() {
            tracing::warn!(
                messages = left.len(),
                "returning messages whose objects were not settled"
            );
            self.inner.release(&left).await;
        }
    }

    fn messages(&self) -> Option<MessageStats> {
        Some(self.message_stats())
    }

    fn lag(&self) -> Option<Duration> {
        self.inner.lag()
    }
}
