//! Any bytes as an object and, when UTF-8, as a message escaped four
//! ways: the one-pass path (escaped envelope reader, escaped message
//! scan, CSV written straight from the escaped bytes) gives the oracle's
//! rows, rejects, filter decisions and errors, byte for byte
//! (`cwl_copy::fuzzing::onepass`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::onepass(data));
