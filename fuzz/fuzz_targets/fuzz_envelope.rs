//! Envelope JSON from the fuzzer, as one gzip member and as plain JSON:
//! both framings must yield the same events and the same error kinds.
#![no_main]

use std::io::Write;

use cwl_copy::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], variant: Variant) -> (Vec<String>, Vec<String>) {
    let dec = DecoderBuilder::new().variant(variant).build();
    let mut scratch = Scratch::new();
    let (mut events, mut errors) = (vec![], vec![]);
    let _ = dec.decode(
        "e",
        data,
        &mut scratch,
        FnSink::new(
            |e: &LogEvent<'_>| -> Result<(), ()> {
                let env = e.envelope.unwrap();
                events.push(format!("{:?}", (env, e.id, e.timestamp, e.message)));
                Ok(())
            },
            |e| {
                errors.push(e.code().to_string());
                Ok(())
            },
        ),
    );
    (events, errors)
}

fuzz_target!(|data: &[u8]| {
    // One document only: the plain-JSON framer would split several.
    if data.first() != Some(&b'{') || data.iter().filter(|&&b| b == b'}').count() == 0 {
        return;
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    let member = e.finish().unwrap();
    let (events, errors) = run(&member, Variant::Gzip);
    if errors.is_empty() {
        let (plain_events, plain_errors) = run(data, Variant::Json);
        if plain_errors.is_empty() {
            assert_eq!(events, plain_events);
        }
    }
});
