//! Structured input: the fuzzer's bytes cut at 0xff into the inflated
//! content of each gzip member (flate2 writes them); every member decoded
//! exactly as the same piece alone, counted, no framing error
//! (`cwl_copy::fuzzing::members`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::members(data));
