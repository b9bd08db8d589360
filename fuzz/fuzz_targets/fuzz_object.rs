//! Any bytes, every variant: no panic, every byte accounted for, every
//! error names the object, and the libdeflate and zlib-rs paths agree.
#![no_main]

use cwl_copy::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], variant: Variant, libdeflate: bool) -> (Vec<String>, Vec<String>) {
    let dec = DecoderBuilder::new()
        .variant(variant)
        .libdeflate(libdeflate)
        .max_member_bytes(1 << 20)
        .max_object_bytes(4 << 20)
        .build();
    let mut scratch = Scratch::new();
    let mut events = vec![];
    let mut errors = vec![];
    let stats = dec
        .decode(
            "fuzz",
            data,
            &mut scratch,
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    events.push(format!("{:?}", (e.member, e.id, e.timestamp, e.message)));
                    Ok(())
                },
                |e| {
                    assert_eq!(e.location().object, "fuzz");
                    errors.push(e.code().to_string());
                    Ok(())
                },
            ),
        )
        .unwrap();
    assert_eq!(stats.input_bytes, data.len() as u64);
    assert_eq!(stats.events, events.len() as u64);
    assert_eq!(stats.errors, errors.len() as u64);
    (events, errors)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else { return };
    let variant = [Variant::Auto, Variant::Gzip, Variant::GzipOverGzip, Variant::Json, Variant::Lines]
        [usize::from(pick) % 5];
    let fast = run(data, variant, true);
    let slow = run(data, variant, false);
    assert_eq!(fast, slow, "libdeflate and zlib-rs disagree");
});
