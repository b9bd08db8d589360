//! cwl-copy: CloudWatch Logs from Kinesis Data Firehose S3 objects to
//! warehouse rows.
//!
//! The library follows the data: **decode** (gzip members → CloudWatch Logs
//! envelopes → [`LogEvent`]s borrowing the inflated buffer), **map** (a
//! column spec picks fields from each event), **write** (CSV that
//! PostgreSQL and Redshift `COPY` accept) and, with the `loader` feature,
//! **load**.

mod decode;
mod error;

pub use crate::decode::{Envelope, EventSink, FnSink, LogEvent};
pub use crate::error::{Error, ErrorKind, Location};

#[cfg(feature = "loader")]
pub mod load;
