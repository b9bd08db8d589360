//! A connection string (no panic), then user, password and database as
//! a URL and as keywords: both resolve alike, the password never printed
//! (`cwl_copy::fuzzing::conninfo`; needs `--features loader`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::conninfo(data));
