//! Integration tests: one binary, a module per topic.

// Test helpers outside `#[test]` functions fail loudly too
// (clippy.toml's allow-*-in-tests covers only the test functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alloc;
mod convert;
mod decode;
mod decode_prop;
mod fuzz_corpus;

// Tests that need PostgreSQL (the `loader` feature, and a server: see
// `./test.sh`, which provisions one).
#[cfg(feature = "loader")]
mod csv_pg;
#[cfg(feature = "loader")]
mod pgload;
