//! A filter pattern, NUL, a message: parse errors inside the pattern,
//! the mapper's pruned evaluation equal to the full simd-json tape's,
//! whitespace-insensitive, bare words are substrings
//! (`cwl_copy::fuzzing::filter`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::filter(data));
