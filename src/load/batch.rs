//! Grouping converted objects into load batches.

use std::time::{Duration, Instant};

use super::ObjectRows;

/// When a batch closes. Each limit closes the batch as soon as it is
/// reached, so a batch may exceed `max_bytes` by its last object (an
/// object bigger than `max_bytes` is a batch of its own).
///
/// An object's bytes are its CSV and its rejected events
/// ([`ObjectRows::reject_bytes`]): rejects wait in memory for their
/// batch's quarantine insert, so a batch of objects whose every event is
/// rejected closes by size like any other instead of holding up to
/// `max_objects` objects' messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Total bytes of CSV and rejected events (`--batch-bytes`). Default
    /// 64 MiB.
    pub max_bytes: u64,
    /// Object count (`--batch-objects`). Default 1000; 0 counts as 1.
    pub max_objects: usize,
    /// Age of the batch's first object (`--batch-seconds`). Default 30 s;
    /// `None`: no age limit.
    pub max_age: Option<Duration>,
}

impl BatchLimits {
    /// Default `max_bytes`: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// Default `max_objects`: 1000.
    pub const DEFAULT_MAX_OBJECTS: usize = 1000;
    /// Default `max_age`: 30 s.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30);
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_objects: Self::DEFAULT_MAX_OBJECTS,
            max_age: Some(Self::DEFAULT_MAX_AGE),
        }
    }
}

/// Groups [`ObjectRows`] into batches closed by bytes, count or age.
///
/// [`Batcher::push`] returns a batch when a size limit is reached. The age
/// limit needs a clock: wait until [`Batcher::deadline`] (e.g. with
/// `tokio::time::sleep_until` in a `select!`) and then [`Batcher::take`].
/// At the end of input, [`Batcher::take`] returns what is left.
///
/// # Example
///
/// ```
/// use cwl_copy::load::{BatchLimits, Batcher, ObjectRows};
///
/// let mut b = Batcher::new(BatchLimits {
///     max_objects: 2,
///     ..BatchLimits::default()
/// });
/// assert!(b.push(ObjectRows::default()).is_none());
/// assert_eq!(b.push(ObjectRows::default()).map(|v| v.len()), Some(2));
/// assert!(b.take().is_none());
/// ```
#[derive(Debug)]
pub struct Batcher {
    limits: BatchLimits,
    pending: Vec<ObjectRows>,
    bytes: u64,
    opened: Option<Instant>,
}

impl Batcher {
    /// An empty batcher.
    #[must_use]
    pub fn new(limits: BatchLimits) -> Batcher {
        Batcher { limits, pending: Vec::new(), bytes: 0, opened: None }
    }

    /// Adds `obj`; returns the batch if that closed it.
    #[must_use = "a returned batch must be loaded"]
    pub fn push(&mut self, obj: ObjectRows) -> Option<Vec<ObjectRows>> {
        if self.pending.is_empty() {
            self.opened = Some(Instant::now());
        }
        self.bytes = self
            .bytes
            .saturating_add(obj.csv.len())
            .saturating_add(obj.reject_bytes());
        self.pending.push(obj);
        if self.pending.len() >= self.limits.max_objects.max(1)
            || self.bytes >= self.limits.max_bytes
        {
            self.take()
        } else {
            None
        }
    }

    /// When the open batch reaches its age limit (`None` if it is empty
    /// or there is no age limit).
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        let opened = self.opened?;
        opened.checked_add(self.limits.max_age?)
    }

    /// Whether the open batch has reached its age limit at `now`.
    #[must_use]
    pub fn is_due(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// Closes and returns the open batch, if it has any object.
    #[must_use = "a returned batch must be loaded"]
    pub fn take(&mut self) -> Option<Vec<ObjectRows>> {
        self.opened = None;
        self.bytes = 0;
        if self.pending.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.pending))
        }
    }

    /// Objects in the open batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether the open batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes of CSV and rejected events in the open batch.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(n: usize) -> ObjectRows {
        ObjectRows { csv: vec![b'x'; n].into(), ..ObjectRows::default() }
    }

    #[test]
    fn closes_by_bytes() {
        let mut b = Batcher::new(BatchLimits {
            max_bytes: 10,
            max_objects: 100,
            max_age: None,
        });
        assert!(b.push(obj(4)).is_none());
        assert!(b.push(obj(5)).is_none());
        assert_eq!(b.bytes(), 9);
        assert_eq!(b.push(obj(1)).map(|v| v.len()), Some(3));
        assert!(b.is_empty());
        // An oversized object is a batch of its own.
        assert_eq!(b.push(obj(50)).map(|v| v.len()), Some(1));
        assert_eq!(b.deadline(), None);
    }

    /// Rejected events count toward `max_bytes`: objects with no CSV at
    /// all (every event rejected) still close a batch by size.
    #[test]
    fn rejected_events_count_toward_the_bytes() {
        let rejected = |message: &str| ObjectRows {
            rejected: 1,
            rejects: vec![super::super::RejectRecord {
                member: Some(0),
                event_id: Some("id".to_owned()),
                reason: "not_json: message is not JSON".to_owned(),
                message: message.to_owned(),
                code: "not_json".to_owned(),
            }],
            ..ObjectRows::default()
        };
        let one = rejected(&"m".repeat(40));
        let size = one.reject_bytes();
        assert_eq!(size, 40 + 2 + 29 + 8);
        let mut b = Batcher::new(BatchLimits {
            max_bytes: 3 * size,
            max_objects: 1000,
            max_age: None,
        });
        assert!(b.push(one).is_none());
        assert!(b.push(rejected(&"m".repeat(40))).is_none());
        assert_eq!(b.bytes(), 2 * size);
        assert_eq!(
            b.push(rejected(&"m".repeat(40))).map(|v| v.len()),
            Some(3)
        );
        // CSV and rejects add up.
        let mut mixed = obj(10);
        mixed.rejects = rejected("x").rejects;
        let mixed_size = 10 + mixed.reject_bytes();
        assert!(b.push(mixed).is_none());
        assert_eq!(b.bytes(), mixed_size);
    }

    #[test]
    fn closes_by_count_and_age() {
        let mut b = Batcher::new(BatchLimits {
            max_bytes: 1 << 30,
            max_objects: 3,
            max_age: Some(Duration::from_secs(5)),
        });
        assert!(b.deadline().is_none());
        assert!(b.push(obj(1)).is_none());
        let d = b.deadline().unwrap();
        assert!(!b.is_due(d - Duration::from_millis(1)));
        assert!(b.is_due(d));
        assert!(b.push(obj(1)).is_none());
        assert_eq!(b.deadline(), Some(d), "age counts from the first object");
        assert_eq!(b.push(obj(1)).map(|v| v.len()), Some(3));
        assert!(b.take().is_none());
        assert!(b.push(obj(1)).is_none());
        assert_eq!(b.len(), 1);
        assert_eq!(b.take().map(|v| v.len()), Some(1));
    }

    #[test]
    fn zero_objects_means_one() {
        let mut b = Batcher::new(BatchLimits {
            max_objects: 0,
            ..BatchLimits::default()
        });
        assert_eq!(b.push(obj(1)).map(|v| v.len()), Some(1));
    }
}
