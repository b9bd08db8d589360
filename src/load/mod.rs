//! Load: converted objects → PostgreSQL, exactly once (feature `loader`).
//!
//! The converter (S3 object or file → CSV rows) hands this module one
//! [`ObjectRows`] per object. A [`Batcher`] groups them by bytes, count or
//! age; [`PgLoader::load_batch`] loads each batch in one transaction that
//! claims the objects' keys in the ledger, streams their CSV through
//! `COPY … FROM STDIN`, records rejected events and undecodable ranges in
//! the quarantine, and commits. A [`LoadSummary`] adds up the batches and
//! checks that every event is accounted for.
//!
//! Connection settings come from a libpq-style conninfo string plus the
//! `PG*` environment variables and `~/.pgpass`: see [`PgSettings`].

mod batch;
mod ledger;
mod pgconn;
mod postgres;
mod summary;

pub use self::batch::{BatchLimits, Batcher};
pub use self::ledger::{
    quote_columns, quote_ident, IdentError, LedgerTables, TableName,
    DEFAULT_LEDGER_TABLE, DEFAULT_QUARANTINE_TABLE,
};
pub use self::pgconn::{
    ConnError, PassFile, PasswordSource, PgHost, PgSettings, SslMode,
};
pub use self::postgres::{
    BatchOutcome, CopyTarget, KeyList, LoaderOptions, PgLoadError, PgLoader,
    RetryPolicy,
};
pub use self::summary::{LoadSummary, ReconcileError};

/// One converted object, ready to load.
///
/// This is the seam between the converter and the loader: the converter
/// fills it from an object's bytes, the loader never looks inside `csv`
/// beyond streaming it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRows {
    /// S3 key or file path; the ledger's unique key.
    pub key: String,
    /// Object size in bytes, as stored.
    pub size: u64,
    /// S3 ETag, if known.
    pub etag: Option<String>,
    /// Hex digest of the object bytes (computed by the converter).
    pub content_hash: String,
    /// CSV records for this object, in the target table's column order,
    /// PostgreSQL CSV dialect, each record ending in a newline.
    pub csv: bytes::Bytes,
    /// Events decoded from the object.
    pub events: u64,
    /// Rows in `csv`.
    pub rows: u64,
    /// Events dropped by the filter.
    pub filtered: u64,
    /// Events rejected by the mapping (each has a [`RejectRecord`]).
    pub rejected: u64,
    /// Why each rejected event was rejected.
    pub rejects: Vec<RejectRecord>,
    /// Undecodable parts of the object.
    pub errors: Vec<ObjectError>,
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
}

/// An undecodable range of an object, for the quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectError {
    /// gzip member (or document) index, if known.
    pub member: Option<u64>,
    /// Byte offset in the object as stored.
    pub offset: u64,
    /// Machine-readable kind (e.g. `deflate`, `json`).
    pub kind: String,
    /// Human-readable detail.
    pub message: String,
}
