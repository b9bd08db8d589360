//! Integration tests: one binary, a module per topic.

mod alloc;
mod convert;
mod decode;
mod decode_prop;
mod fuzz_corpus;

// PostgreSQL round trip of the CSV writer and mapper (needs the `loader`
// feature for tokio-postgres, and a server: see `./test.sh`).
#[cfg(feature = "loader")]
mod csv_pg;
