//! cwl-copy: CloudWatch Logs from Kinesis Data Firehose S3 objects to
//! warehouse rows.
//!
//! The library follows the data: **decode** (gzip members → CloudWatch Logs
//! envelopes → [`LogEvent`]s borrowing the inflated buffer), **map** (a
//! [`ColumnSpec`] compiled into a [`Mapper`] picks fields from each event),
//! **write** (a [`RowWriter`] appends CSV that PostgreSQL and Redshift
//! `COPY` accept) and, with the `loader` feature, **load**.

mod convert;
pub mod corpus;
mod decode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod map;
mod write;

pub use crate::convert::{
    ConvertScratch, Converter, Counts, ObjectOutput, RejectedEvent,
};
#[doc(hidden)]
pub use crate::decode::OnePassCounts;
pub use crate::decode::{
    inflate_members, DecodeStats, Decoder, DecoderBuilder, Scratch, Variant,
};
pub use crate::decode::{
    Envelope, EventSink, FnSink, LogEvent, PROGRESS_STEP,
};
pub use crate::error::{Error, ErrorKind, Location};
pub use crate::map::filter::{FilterError, FilterPattern};
#[doc(hidden)]
pub use crate::map::scan::{Prescanned, Scanned};
pub use crate::map::{
    ColumnSpec, MapOutcome, MapScratch, Mapper, Reject, SpecError,
    REDSHIFT_ROW_MAX,
};
pub use crate::write::{utf8_prefix, Dialect, FieldError, RowWriter};

pub mod load;
pub mod ordered;
pub mod sql;
