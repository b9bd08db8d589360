//! Totals of a load run, and the check that they add up.

use super::target::{BatchOutcome, TargetInfo};

/// Totals of a load run. Serialize it for `--summary json`.
///
/// Events and rows count only objects this run loaded; objects skipped
/// (already in the ledger, or claimed by a concurrent loader) add to the
/// object counts only.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[must_use = "a summary should be reconciled and reported"]
pub struct LoadSummary {
    /// Where the rows, ledger rows and quarantined input went.
    pub target: TargetInfo,
    /// Objects offered to the loader (listed, notified or given).
    pub objects_seen: u64,
    /// Objects listed (local files found, S3 objects listed); equals
    /// `objects_seen` for a listing.
    pub objects_listed: u64,
    /// Objects skipped before download because the ledger had them (the
    /// same count as `objects_skipped_already_loaded`).
    pub objects_skipped_ledger: u64,
    /// Objects deleted between listing and download.
    pub objects_vanished: u64,
    /// Their names.
    pub vanished: Vec<String>,
    /// Bytes downloaded from S3 (objects as stored).
    pub bytes_downloaded: u64,
    /// Objects whose CSV went to a temporary file (beyond the load's CSV
    /// memory budget, `--csv-memory-bytes`).
    pub objects_spilled: u64,
    /// CSV bytes written to temporary files.
    pub bytes_spilled: u64,
    /// Objects read as extracted messages (events, no Firehose envelope:
    /// the `lines` variant, or a path that holds no Firehose objects).
    pub objects_read_as_lines: u64,
    /// The first of them (its ledger key).
    pub first_read_as_lines: Option<String>,
    /// Objects skipped before download because the ledger had them.
    pub objects_skipped_already_loaded: u64,
    /// Objects this run committed.
    pub objects_loaded: u64,
    /// Objects in a batch whose key another loader (or an earlier run)
    /// committed first, or that appeared twice in one batch.
    pub objects_skipped_duplicate: u64,
    /// Objects that failed (not loaded, not in the ledger).
    pub objects_failed: u64,
    /// Events decoded from loaded objects.
    pub events: u64,
    /// Rows inserted into the target table.
    pub rows: u64,
    /// Events dropped by the filter.
    pub filtered: u64,
    /// Events rejected by the mapping (quarantined).
    pub rejected: u64,
    /// Rows not inserted because their id was already in the target
    /// (`--dedup-events`).
    pub duplicate_events: u64,
    /// Undecodable ranges quarantined.
    pub errors: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batch attempts repeated after a transient failure.
    pub retries: u64,
    /// Message counts of a queue source (all 0 otherwise).
    #[serde(flatten)]
    pub messages: crate::load::source::sqs::MessageStats,
}

/// Totals that do not add up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// `events != rows + filtered + rejected + duplicate_events`.
    #[error(
        "events do not reconcile: {events} events != {rows} rows + \
         {filtered} filtered + {rejected} rejected + {duplicate_events} \
         duplicate"
    )]
    Events {
        /// Events decoded.
        events: u64,
        /// Rows inserted.
        rows: u64,
        /// Events filtered.
        filtered: u64,
        /// Events rejected.
        rejected: u64,
        /// Duplicate events skipped.
        duplicate_events: u64,
    },
    /// `objects_seen != already loaded + loaded + duplicate + failed +
    /// vanished`.
    #[error(
        "objects do not reconcile: {seen} seen != {already} already loaded \
         + {loaded} loaded + {duplicate} duplicate + {failed} failed + \
         {vanished} vanished"
    )]
    Objects {
        /// Objects seen.
        seen: u64,
        /// Objects skipped as already loaded.
        already: u64,
        /// Objects loaded.
        loaded: u64,
        /// Objects skipped as duplicates.
        duplicate: u64,
        /// Objects failed.
        failed: u64,
        /// Objects deleted after listing.
        vanished: u64,
    },
}

impl LoadSummary {
    /// Adds a committed batch's outcome. (`objects_seen` is the caller's:
    /// it counts objects before the ledger check.)
    pub fn add_batch(&mut self, b: &BatchOutcome) {
        let len = |v: &[String]| u64::try_from(v.len()).unwrap_or(u64::MAX);
        self.objects_loaded =
            self.objects_loaded.saturating_add(len(&b.loaded));
        self.objects_skipped_duplicate = self
            .objects_skipped_duplicate
            .saturating_add(len(&b.skipped_duplicate));
        self.events = self.events.saturating_add(b.events);
        self.rows = self.rows.saturating_add(b.rows_inserted);
        self.filtered = self.filtered.saturating_add(b.filtered);
        self.rejected = self.rejected.saturating_add(b.rejected);
        self.duplicate_events =
            self.duplicate_events.saturating_add(b.duplicate_events);
        self.errors = self.errors.saturating_add(b.errors);
        self.batches = self.batches.saturating_add(1);
        self.retries = self
            .retries
            .saturating_add(u64::from(b.attempts.saturating_sub(1)));
    }

    /// Checks that every event of the loaded objects was inserted,
    /// filtered, rejected or skipped as a duplicate, and that every object
    /// seen was loaded, skipped or failed.
    ///
    /// # Errors
    ///
    /// [`ReconcileError`] naming the totals that disagree.
    pub fn reconcile(&self) -> Result<(), ReconcileError> {
        let accounted =
            [self.rows, self.filtered, self.rejected, self.duplicate_events]
                .iter()
                .try_fold(0u64, |a, b| a.checked_add(*b));
        if accounted != Some(self.events) {
            return Err(ReconcileError::Events {
                events: self.events,
                rows: self.rows,
                filtered: self.filtered,
                rejected: self.rejected,
                duplicate_events: self.duplicate_events,
            });
        }
        let objects = [
            self.objects_skipped_already_loaded,
            self.objects_loaded,
            self.objects_skipped_duplicate,
            self.objects_failed,
            self.objects_vanished,
        ]
        .iter()
        .try_fold(0u64, |a, b| a.checked_add(*b));
        if objects != Some(self.objects_seen) {
            return Err(ReconcileError::Objects {
                seen: self.objects_seen,
                already: self.objects_skipped_already_loaded,
                loaded: self.objects_loaded,
                duplicate: self.objects_skipped_duplicate,
                failed: self.objects_failed,
                vanished: self.objects_vanished,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile() {
        let mut s = LoadSummary {
            objects_seen: 3,
            objects_skipped_already_loaded: 1,
            objects_loaded: 2,
            events: 10,
            rows: 6,
            filtered: 2,
            rejected: 1,
            duplicate_events: 1,
            ..LoadSummary::default()
        };
        assert_eq!(s.reconcile(), Ok(()));
        s.rows = 5;
        assert!(matches!(s.reconcile(), Err(ReconcileError::Events { .. })));
        s.rows = 6;
        s.objects_seen = 4;
        let e = s.reconcile().unwrap_err();
        assert!(e.to_string().contains("4 seen"), "{e}");
        s.objects_failed = 1;
        assert_eq!(s.reconcile(), Ok(()));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"duplicate_events\":1"), "{json}");
    }
}
