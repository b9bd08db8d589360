//! Object sources: where the loader's objects come from.
//!
//! An INPUT is a local path (a file, or a directory walked recursively in
//! sorted order) or an S3 URL (`s3://bucket/prefix/` or `s3://bucket/key`,
//! listed in key order). Listing turns inputs into [`ObjectRef`]s: a name
//! for messages, the ledger key that identifies the object, and where its
//! bytes are. Local files list without the `loader` feature; S3 needs it.

pub mod files;
pub mod notification;
#[cfg(feature = "loader")]
mod prefetch;
pub mod prefix;
#[cfg(feature = "loader")]
pub mod s3;
#[cfg(feature = "loader")]
pub mod sqs;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[cfg(feature = "loader")]
pub use self::prefetch::{Fetched, Prefetcher};

/// Where an object's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A local file, by the path it was found under (as given, not
    /// canonicalised, so messages name what the user typed).
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key, decoded.
        key: String,
        /// The version, when known (from a notification).
        version_id: Option<String>,
    },
    /// Not an object: input the source could not use (an SQS body that is
    /// no notification), quarantined as it is.
    Rejected {
        /// Machine-readable kind (`bad_message`).
        code: &'static str,
        /// Why it was rejected.
        reason: String,
        /// The input, verbatim.
        text: String,
    },
}

/// One object to read: what it is called, what the ledger knows it by,
/// and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// The object's name in messages, events and CSV (`@object`): the
    /// path as found, or `s3://bucket/key`.
    pub name: String,
    /// The object's identity in the ledger: the canonical path of a local
    /// file, `s3://bucket/key` for S3 (the same from a listing, a
    /// notification or `enqueue`; a notification's version id pins the
    /// bytes read, not the identity, since Firehose never overwrites a
    /// key).
    pub ledger_key: String,
    /// Where the bytes are.
    pub location: Location,
    /// Its path relative to the INPUT it was found under (for `convert
    /// --out DIR`).
    pub relative: PathBuf,
    /// Size in bytes as stored, when listed.
    pub size: Option<u64>,
    /// The S3 ETag, when listed.
    pub etag: Option<String>,
}

/// An INPUT argument: a local path or an S3 location.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A file or directory.
    Path(PathBuf),
    /// `s3://bucket/prefix`: every object under the prefix (which may be
    /// empty, or one whole key).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix (possibly empty).
        prefix: String,
    },
}

impl FromStr for Input {
    type Err = SourceError;

    /// `s3://bucket[/prefix]` is an S3 input; anything else a path.
    fn from_str(s: &str) -> Result<Input, SourceError> {
        let Some(rest) = s.strip_prefix("s3://") else {
            return Ok(Input::Path(PathBuf::from(s)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(SourceError::BadUrl {
                url: s.to_owned(),
                reason: "no bucket name (expected s3://bucket/prefix/)",
            });
        }
        Ok(Input::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Path(p) => write!(f, "{}", p.display()),
            Input::S3 { bucket, prefix } => {
                write!(f, "s3://{bucket}/{prefix}")
            }
        }
    }
}

impl Input {
    /// Whether this input is in S3.
    #[must_use]
    pub fn is_s3(&self) -> bool {
        matches!(self, Input::S3 { .. })
    }
}

/// The ledger key of an S3 object.
#[must_use]
pub fn s3_ledger_key(
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> String {
    match version {
        Some(v) => format!("s3://{bucket}/{key}?versionId={v}"),
        None => format!("s3://{bucket}/{key}"),
    }
}

/// Why objects could not be listed or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An `s3://` URL that does not parse.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A local file or directory could not be read.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `listing`).
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory walk found a symbolic-link loop.
    #[error(
        "{}: symbolic link loop (it leads back to {})",
        path.display(),
        ancestor.display()
    )]
    Loop {
        /// The link.
        path: PathBuf,
        /// The directory it leads back to.
        ancestor: PathBuf,
    },
    /// An S3 request failed (not retryable, or retries exhausted).
    #[error("{op} s3://{bucket}/{key}: {message}")]
    S3 {
        /// The request (`ListObjectsV2`, `GetObject`).
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
        /// The service's error code and message, or the transport's.
        message: String,
    },
    /// An SQS request failed.
    #[error("{op} {queue}: {message}")]
    Sqs {
        /// The request (`ReceiveMessage`, `GetQueueAttributes`, …).
        op: &'static str,
        /// The queue URL.
        queue: String,
        /// The service's error code and message, or the transport's.
        message: String,
    },
    /// An object is larger than the loader reads.
    #[error("{name}: {size} bytes is over the {limit}-byte object limit")]
    TooLarge {
        /// The object.
        name: String,
        /// Its size.
        size: u64,
        /// The limit (`--max-object-bytes`).
        limit: u64,
    },
    /// An S3 input in a build without the `loader` feature.
    #[error(
        "{0}: this build has no S3 support; build with the default \
         features: cargo install --path ."
    )]
    NoS3(String),
    /// A flag that does not apply, or a bad range or template.
    #[error("{0}")]
    Usage(String),
}
