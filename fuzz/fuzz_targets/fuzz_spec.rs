//! A column spec as TOML: rejected when the toml crate rejects it,
//! errors inside the text, the table and columns the toml crate reads,
//! every identifier quoted in CREATE TABLE (`cwl_copy::fuzzing::spec`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::spec(data));
