//! The one integration test binary: a module per topic. Run it with
//! `./test.sh`, which provisions the services the tests need.

// Test helpers outside `#[test]` functions fail loudly too
// (clippy.toml's allow-*-in-tests covers only the test functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alloc;
mod convert;
mod decode;
mod decode_prop;
mod fuzz_corpus;

// Tests that need PostgreSQL or moto (the `loader` feature, and the
// servers `./test.sh` provisions).
#[cfg(feature = "loader")]
mod cli_messages;
#[cfg(feature = "loader")]
mod csv_pg;
#[cfg(feature = "loader")]
mod load_faults;
#[cfg(feature = "loader")]
mod loader_s3;
#[cfg(feature = "loader")]
mod loader_sqs;
#[cfg(feature = "loader")]
mod pgload;
#[cfg(feature = "loader")]
mod redshift;
#[cfg(feature = "loader")]
mod reliability;
#[cfg(feature = "loader")]
mod services;
#[cfg(feature = "loader")]
mod support;
#[cfg(feature = "loader")]
mod tls;
