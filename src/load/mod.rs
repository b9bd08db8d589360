//! Load: objects from a source → converted on rayon → merged batches into
//! a target, exactly once.
//!
//! [`run`] is the loader: a [`Source`] yields [`ObjectRef`]s (local files,
//! S3 listings; later SQS notifications); the ledger is asked in bulk
//! which of them the target already holds, and those are skipped before a
//! byte is read; the rest are read (S3 objects downloaded ahead with
//! bounded concurrency, see [`Prefetcher`]) and converted on a rayon pool
//! in input order; a [`Batcher`] merges the converted objects into batches
//! by bytes, count or age; and the [`Target`] loads each batch in one
//! transaction with its ledger rows. A [`LoadSummary`] adds it all up and
//! [reconciles](LoadSummary::reconcile).
//!
//! The listing half ([`source`]: inputs, local files) builds without the
//! `loader` feature, for `decode` and `convert`; the rest needs it.

// Without the `loader` feature the items these docs link to are not
// built, so their links cannot resolve; with it (the default, and docs.rs)
// they do, and a broken one is still reported there.
#![cfg_attr(not(feature = "loader"), allow(rustdoc::broken_intra_doc_links))]

pub mod source;

#[cfg(feature = "loader")]
mod batch;
#[cfg(feature = "loader")]
mod pgconn;
#[cfg(feature = "loader")]
mod run;
#[cfg(feature = "loader")]
mod spill;
#[cfg(feature = "loader")]
mod summary;
#[cfg(feature = "loader")]
pub mod target;

#[cfg(feature = "loader")]
pub use self::batch::{BatchLimits, Batcher};
#[cfg(feature = "loader")]
pub use self::pgconn::{
    ConnError, PassFile, PasswordSource, PgHost, PgSettings, SslMode,
};
#[cfg(feature = "loader")]
pub use self::run::{
    default_s3_concurrency, describe_metrics, list_inputs, object_rows, run,
    ListOptions, Listing, LoadConfig, LoadError, Progress, Source,
    DEFAULT_CSV_MEMORY_BYTES, DEFAULT_PREFETCH_BYTES,
};
#[cfg(feature = "loader")]
pub use self::source::{Fetched, Prefetcher};
pub use self::source::{Input, Location, ObjectRef, SourceError};
#[cfg(feature = "loader")]
pub use self::spill::{Csv, CsvBudget, CsvWriter, PIECE_BYTES};
#[cfg(feature = "loader")]
pub use self::summary::{LoadSummary, ReconcileError};
#[cfg(feature = "loader")]
pub use self::target::{
    BatchOutcome, CopyTarget, KeyList, LoaderOptions, PgLoadError, PgLoader,
    PgTarget, RetryPolicy, Target, TargetInfo,
};
pub use crate::sql::{
    quote_columns, quote_ident, IdentError, LedgerTables, TableName,
    DEFAULT_LEDGER_TABLE, DEFAULT_QUARANTINE_TABLE,
};

/// One converted object, ready to load.
///
/// This is the seam between the converter and the loader: the converter
/// fills it from an object's bytes, the loader never looks inside `csv`
/// beyond streaming it.
#[cfg(feature = "loader")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRows {
    /// The object's ledger key ([`ObjectRef::ledger_key`]).
    pub key: String,
    /// Object size in bytes, as stored.
    pub size: u64,
    /// S3 ETag, if known.
    pub etag: Option<String>,
    /// `sha256:` and the hex SHA-256 of the object's bytes as stored: the
    /// ledger recognises a copied or moved object by it.
    pub content_hash: String,
    /// CSV records for this object, in the target table's column order,
    /// PostgreSQL CSV dialect, each record ending in a newline: in memory
    /// or, beyond the load's [`CsvBudget`], in a temporary file.
    pub csv: Csv,
    /// Events decoded from the object.
    pub events: u64,
    /// Rows in `csv`.
    pub rows: u64,
    /// Events dropped by the filter.
    pub filtered: u64,
    /// CloudWatch Logs envelopes decoded: none with events means the
    /// object was read as extracted messages (the `lines` variant), which
    /// a wrong path gives too.
    pub envelopes: u64,
    /// Events rejected by the mapping (each has a [`RejectRecord`]).
    pub rejected: u64,
    /// Why each rejected event was rejected.
    pub rejects: Vec<RejectRecord>,
    /// Undecodable parts of the object.
    pub errors: Vec<ObjectError>,
}

#[cfg(feature = "loader")]
impl ObjectRows {
    /// The bytes its rejected events hold until their batch commits (the
    /// text of each: event id, reason, message, code), which count
    /// toward a batch's size like its CSV ([`BatchLimits::max_bytes`]).
    #[must_use]
    pub fn reject_bytes(&self) -> u64 {
        self.rejects
            .iter()
            .map(|r| {
                let n = r.event_id.as_ref().map_or(0, String::len)
                    + r.reason.len()
                    + r.message.len()
                    + r.code.len();
                u64::try_from(n).unwrap_or(u64::MAX)
            })
            .fold(0, u64::saturating_add)
    }
}

/// A rejected event, for the quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectRecord {
    /// gzip member (or document) index, if known.
    pub member: Option<u64>,
    /// CloudWatch Logs event id, if known.
    pub event_id: Option<String>,
    /// Machine-readable reason (e.g. `type`, `too_long`).
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// The reject code (`RejectedEvent::code`: `not_json`, `not_object`,
    /// `type_mismatch`, `too_long`, …). [`object_rows`] also starts
    /// `reason` with it (`too_long: column "m": …`), so the quarantine's
    /// `reason` column carries it.
    pub code: String,
}

/// An undecodable range of an object, for the quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectError {
    /// gzip member (or document) index, if known.
    pub member: Option<u64>,
    /// Byte offset in the object as stored.
    pub offset: u64,
    /// Machine-readable kind (e.g. `deflate`, `json`, `bad_message`).
    pub kind: String,
    /// Human-readable detail (for `bad_message`, the body itself).
    pub message: String,
    /// Why, when it is not that the bytes are undecodable (the
    /// quarantine's `reason`; `None`: `undecodable`).
    pub reason: Option<String>,
}
