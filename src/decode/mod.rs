//! Decode: Firehose S3 objects → CloudWatch Logs events.

mod sink;

pub use self::sink::{Envelope, EventSink, FnSink, LogEvent};
