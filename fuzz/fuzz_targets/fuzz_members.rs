//! Structured input: the fuzzer's bytes cut into pieces, each gzipped as
//! one member. Decoding must inflate every member exactly (compared with
//! flate2's MultiGzDecoder) and emit events only from members that hold
//! envelopes.
#![no_main]

use std::io::{Read, Write};

use cwl_copy::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut object = Vec::new();
    let pieces: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    for p in &pieces {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(p).unwrap();
        object.extend(e.finish().unwrap());
    }
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(&object[..]).read_to_end(&mut inflated).unwrap();
    assert_eq!(inflated, pieces.concat());
    let dec = DecoderBuilder::new().variant(Variant::Gzip).build();
    let mut scratch = Scratch::new();
    let mut members_with_errors = std::collections::BTreeSet::new();
    let stats = dec
        .decode(
            "m",
            &object,
            &mut scratch,
            FnSink::new(
                |_: &LogEvent<'_>| -> Result<(), ()> { Ok(()) },
                |e| {
                    // gzip framing is always intact here: only JSON errors.
                    assert!(!e.code().starts_with("gzip") && e.code() != "unreadable", "{e}");
                    members_with_errors.insert(e.location().member);
                    Ok(())
                },
            ),
        )
        .unwrap();
    assert_eq!(stats.members, pieces.len() as u64);
    assert_eq!(stats.inflated_bytes, inflated.len() as u64);
});
