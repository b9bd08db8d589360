//! Errors with the place in the input they come from.

use std::fmt;

/// Where in an object an error was found.
///
/// Offsets are byte offsets. `member_offset` is the offset of the gzip
/// member (or, for unframed variants, of the JSON document or line) in the
/// object as stored; `inflated_offset` is the offset inside that member's
/// inflated bytes, when the error is inside them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The object's name: an S3 key or a file path.
    pub object: String,
    /// Index of the gzip member (or JSON document, or line) from 0.
    pub member: Option<u64>,
    /// Offset of the member's first byte in the object (compressed bytes).
    pub member_offset: u64,
    /// Offset inside the member's inflated bytes, when known.
    pub inflated_offset: Option<u64>,
}

impl Location {
    /// A location at the start of a member.
    #[must_use]
    pub fn new(object: &str, member: Option<u64>, member_offset: u64) -> Self {
        Location {
            object: object.to_owned(),
            member,
            member_offset,
            inflated_offset: None,
        }
    }

    /// The same location, at `offset` inside the inflated member.
    #[must_use]
    pub fn at_inflated(mut self, offset: u64) -> Self {
        self.inflated_offset = Some(offset);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(m) = self.member {
            write!(f, ": member {m}")?;
        }
        write!(f, " at byte {}", self.member_offset)?;
        if let Some(i) = self.inflated_offset {
            write!(f, " (inflated byte {i})")?;
        }
        Ok(())
    }
}

/// What went wrong, without where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes do not start a gzip member: wrong magic, method or flags.
    #[error("bad gzip header: {0}")]
    GzipHeader(&'static str),
    /// The deflate data of a member is corrupt.
    #[error("corrupt deflate data")]
    Deflate,
    /// A member ends before its deflate stream or trailer is complete.
    #[error("truncated gzip member")]
    Truncated,
    /// The CRC-32 in a member's trailer does not match its data.
    #[error("gzip CRC mismatch: trailer says {expected:#010x}, data has {actual:#010x}")]
    Crc {
        /// CRC-32 stored in the trailer.
        expected: u32,
        /// CRC-32 of the inflated data.
        actual: u32,
    },
    /// The ISIZE in a member's trailer does not match its inflated size.
    #[error("gzip ISIZE mismatch: trailer says {expected}, inflated {actual} bytes (mod 2^32)")]
    Isize {
        /// ISIZE stored in the trailer.
        expected: u32,
        /// Inflated size modulo 2^32.
        actual: u32,
    },
    /// Bytes after the last member that are neither whitespace nor gzip.
    #[error("{len} bytes of trailing garbage after the last member")]
    TrailingGarbage {
        /// Number of bytes rejected.
        len: u64,
    },
    /// Gzip framing was lost; the rest of the object cannot be read.
    #[error("{len} unreadable bytes: gzip framing lost ({cause})")]
    Unreadable {
        /// Number of bytes from the error to the end of the object.
        len: u64,
        /// Why framing was lost.
        cause: Box<ErrorKind>,
    },
    /// A member inflates to more than the per-member limit.
    #[error("member inflates to more than the limit of {limit} bytes")]
    MemberTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An object inflates to more than the per-object limit.
    #[error("object inflates to more than the limit of {limit} bytes")]
    ObjectTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A JSON document does not parse.
    #[error("JSON syntax error: {0}")]
    Json(String),
    /// A JSON document ends before it is complete.
    #[error("truncated JSON document")]
    JsonTruncated,
    /// Bytes that are not valid UTF-8.
    #[error("invalid UTF-8")]
    Utf8,
    /// A `\u` escape that is a lone UTF-16 surrogate, or otherwise invalid.
    #[error("invalid \\u escape (lone surrogate?)")]
    UnicodeEscape,
    /// JSON nested deeper than the limit.
    #[error("JSON nested deeper than {limit}")]
    TooDeep {
        /// The depth limit.
        limit: usize,
    },
    /// The JSON parses but is not a CloudWatch Logs envelope.
    #[error("not a CloudWatch Logs envelope: {0}")]
    Envelope(String),
    /// A format Firehose can write that cwl-copy does not read.
    #[error("unsupported format: {0}")]
    Unsupported(&'static str),
}

/// An error with its location: what went wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(Box<(ErrorKind, Location)>);

impl Error {
    /// A new error.
    #[must_use]
    pub fn new(kind: ErrorKind, location: Location) -> Self {
        Error(Box::new((kind, location)))
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.0 .0
    }

    /// Where it went wrong.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.0 .1
    }

    /// A short, stable, machine-readable name of the kind, such as
    /// `"gzip_crc"`, for summaries and quarantine records.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl ErrorKind {
    /// A short, stable, machine-readable name of the kind.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::GzipHeader(_) => "gzip_header",
            ErrorKind::Deflate => "gzip_deflate",
            ErrorKind::Truncated => "gzip_truncated",
            ErrorKind::Crc { .. } => "gzip_crc",
            ErrorKind::Isize { .. } => "gzip_isize",
            ErrorKind::TrailingGarbage { .. } => "trailing_garbage",
            ErrorKind::Unreadable { .. } => "unreadable",
            ErrorKind::MemberTooLarge { .. } => "member_too_large",
            ErrorKind::ObjectTooLarge { .. } => "object_too_large",
            ErrorKind::Json(_) => "json_syntax",
            ErrorKind::JsonTruncated => "json_truncated",
            ErrorKind::Utf8 => "invalid_utf8",
            ErrorKind::UnicodeEscape => "invalid_unicode_escape",
            ErrorKind::TooDeep { .. } => "json_too_deep",
            ErrorKind::Envelope(_) => "not_an_envelope",
            ErrorKind::Unsupported(_) => "unsupported_format",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.kind())
    }
}

impl std::error::Error for Error {}
