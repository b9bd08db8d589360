//! Downloads that run ahead of the converter: S3 objects are fetched in
//! input order with bounded concurrency on the async runtime, and the
//! rayon workers that convert them take each one, blocking only if it has
//! not arrived yet.
//!
//! The objects downloading or downloaded and not yet taken add up to at
//! most `ahead_bytes` as stored (compressed; sizes from the listing or
//! the notification, 1 MiB when unknown), so memory is bounded by that
//! window, whatever the number or size of the objects: an object larger
//! than the whole window waits until it is the only one in it.

use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::s3::S3;
use super::{Location, ObjectRef, SourceError};

/// A downloaded object.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Fetched {
    /// Its bytes, as stored.
    Data(Bytes),
    /// It was deleted between listing and download.
    Vanished,
}

enum Slot {
    /// Not downloaded yet (or not an S3 object).
    Pending,
    /// Downloaded; the permit frees a place ahead when taken.
    Ready(Result<Fetched, SourceError>, OwnedSemaphorePermit),
    /// Taken by a worker.
    Taken,
}

struct Slots {
    slots: Mutex<Vec<Slot>>,
    ready: Condvar,
}

/// Downloads the S3 objects of a list ahead of the workers. See the
/// module docs. Dropping it stops the downloads.
pub struct Prefetcher {
    shared: Arc<Slots>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Prefetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetcher").finish_non_exhaustive()
    }
}

impl Prefetcher {
    /// Starts downloading the S3 objects of `refs` on `runtime`,
    /// `concurrency` at once and at most `ahead_bytes` downloading or not
    /// yet taken; objects over `limit` bytes are errors.
    #[must_use]
    pub fn start(
        runtime: &tokio::runtime::Handle,
        s3: S3,
        refs: Arc<[ObjectRef]>,
        concurrency: usize,
        ahead_bytes: u64,
        limit: u64,
    ) -> Prefetcher {
        let shared = Arc::new(Slots {
            slots: Mutex::new(
                std::iter::repeat_with(|| Slot::Pending)
                    .take(refs.len())
                    .collect(),
            ),
            ready: Condvar::new(),
        });
        // Permits are KiB of the window.
        let window =
            u32::try_from((ahead_bytes / 1024).max(1)).unwrap_or(u32::MAX);
        let permits = Arc::new(Semaphore::new(window as usize));
        let fill = Arc::clone(&shared);
        let jobs: Vec<Job> = refs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.location {
                Location::S3 { bucket, key, version_id } => {
                    let kib = r.size.unwrap_or(1 << 20).div_ceil(1024);
                    let need = u32::try_from(kib).unwrap_or(u32::MAX);
                    Some(Job {
                        i,
                        bucket: bucket.clone(),
                        key: key.clone(),
                        version: version_id.clone(),
                        permits: need.clamp(1, window),
                    })
                }
                Location::File(_) | Location::Rejected { .. } => None,
            })
            .collect();
        let task = runtime.spawn(async move {
            let mut downloads = futures_util::stream::iter(jobs)
                .map(move |job| {
                    download(s3.clone(), Arc::clone(&permits), job, limit)
                })
                .buffered(concurrency.max(1));
            while let Some((i, got, permit)) = downloads.next().await {
                let Ok(permit) = permit else { break };
                if let Ok(mut slots) = fill.slots.lock() {
                    if let Some(s) = slots.get_mut(i) {
                        *s = Slot::Ready(got, permit);
                    }
                }
                fill.ready.notify_all();
            }
        });
        Prefetcher { shared, task }
    }

    /// The object at index `i` of the list, waiting for its download.
    ///
    /// # Errors
    ///
    /// The download's error; an error too if `i` is not an S3 object of
    /// the list, was taken before, or the downloads stopped.
    pub fn take(&self, i: usize) -> Result<Fetched, SourceError> {
        let stopped = || {
            SourceError::Usage(format!(
                "internal error: object {i} was not downloaded"
            ))
        };
        let Ok(mut slots) = self.shared.slots.lock() else {
            return Err(stopped());
        };
        loop {
            match slots.get_mut(i) {
                Some(slot @ Slot::Ready(..)) => {
                    let Slot::Ready(got, permit) =
                        std::mem::replace(slot, Slot::Taken)
                    else {
                        return Err(stopped());
                    };
                    drop(permit);
                    return got;
                }
                Some(Slot::Pending) if !self.task.is_finished() => {}
                _ => return Err(stopped()),
            }
            // Wake up now and then to notice a task that ended.
            slots = match self
                .shared
                .ready
                .wait_timeout(slots, std::time::Duration::from_millis(200))
            {
                Ok((s, _)) => s,
                Err(_) => return Err(stopped()),
            };
        }
    }
}

type Download = (
    usize,
    Result<Fetched, SourceError>,
    Result<OwnedSemaphorePermit, tokio::sync::AcquireError>,
);

/// One S3 object to download: its index in the list, where it is, and
/// its share of the window (KiB).
struct Job {
    i: usize,
    bucket: String,
    key: String,
    version: Option<String>,
    permits: u32,
}

async fn download(
    s3: S3,
    window: Arc<Semaphore>,
    job: Job,
    limit: u64,
) -> Download {
    let permit = window.acquire_many_owned(job.permits).await;
    let got =
        s3.get(&job.bucket, &job.key, job.version.as_deref(), limit).await;
    (job.i, got, permit)
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
