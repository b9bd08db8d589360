//! Any bytes, every variant: no panic, every byte accounted for, every
//! error names the object, and the libdeflate and zlib-rs paths agree
//! (`cwl_copy::fuzzing::object`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::object(data));
