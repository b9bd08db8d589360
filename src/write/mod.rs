//! Write: mapped rows → CSV that `COPY` reads.

mod csv;

pub use self::csv::{utf8_prefix, Dialect, FieldError, RowWriter};
