//! One envelope document as a gzip member and as plain JSON: the same
//! events, envelopes and error codes always, and what serde_json's value
//! gives under the envelope rules (`cwl_copy::fuzzing::envelope`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::envelope(data));
