//! CSV fields written with `RowWriter` in both dialects: plain CSV
//! quoting, read back by csv-core as the same fields
//! (`cwl_copy::fuzzing::csv`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::csv(data));
