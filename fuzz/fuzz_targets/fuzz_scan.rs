//! Any bytes as a message: the mapper's scanner never panics, accepts it
//! iff `serde_json` and simd-json do, gives simd-json's tape when it keeps
//! everything, and pruned lookups (column paths and filter selectors)
//! agree with full-tape lookups and with `serde_json`'s `Value`, which
//! keeps the last of repeated keys (`cwl_copy::fuzzing::scan`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::scan(data));
