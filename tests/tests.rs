//! The integration tests: one binary, a module per topic.

// Test helpers outside `#[test]` functions fail loudly too
// (clippy.toml's allow-*-in-tests covers only the test functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pgload;
