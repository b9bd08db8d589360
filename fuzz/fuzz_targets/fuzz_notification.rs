//! An SQS body and S3 event key: no panic, created objects survive a
//! round trip through the body `enqueue` sends, key decoding equals the
//! obvious form decoder and inverts the encoder
//! (`cwl_copy::fuzzing::notification`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cwl_copy::fuzzing::notification(data));
