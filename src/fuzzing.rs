//! The invariants the fuzz targets check, shared with the test that
//! replays their findings on stable (`tests/fuzz_corpus.rs`). Not a stable
//! API.

use crate::decode::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};

/// Every variant, in the order the fuzz input's first byte picks them.
pub const VARIANTS: [Variant; 5] = [
    Variant::Auto,
    Variant::Gzip,
    Variant::GzipOverGzip,
    Variant::Json,
    Variant::Lines,
];

/// Decodes `data` with small limits, checking that the counts match what
/// reached the sink and every error names the object; returns the events
/// and error codes for comparison.
#[must_use]
pub fn decode_checked(
    data: &[u8],
    variant: Variant,
    libdeflate: bool,
) -> (Vec<String>, Vec<&'static str>) {
    let dec = DecoderBuilder::new()
        .variant(variant)
        .libdeflate(libdeflate)
        .max_member_bytes(1 << 20)
        .max_object_bytes(4 << 20)
        .build();
    let mut scratch = Scratch::new();
    let (mut events, mut errors) = (vec![], vec![]);
    let sink = FnSink::new(
        |e: &LogEvent<'_>| -> Result<(), ()> {
            events.push(format!(
                "{:?}",
                (e.member, e.id, e.timestamp, e.message)
            ));
            Ok(())
        },
        |e| {
            assert_eq!(e.location().object, "fuzz");
            errors.push(e.code());
            Ok(())
        },
    );
    let stats = dec.decode("fuzz", data, &mut scratch, sink);
    assert!(stats.is_ok(), "the sink never fails");
    if let Ok(stats) = stats {
        assert_eq!(stats.input_bytes, data.len() as u64);
        assert_eq!(stats.events, events.len() as u64);
        assert_eq!(stats.errors, errors.len() as u64);
    }
    (events, errors)
}

/// The `fuzz_object` invariant: the first byte picks the variant; the
/// libdeflate and zlib-rs paths agree on everything else.
pub fn object(input: &[u8]) {
    let Some((&pick, data)) = input.split_first() else { return };
    let v = VARIANTS[usize::from(pick) % VARIANTS.len()];
    assert_eq!(
        decode_checked(data, v, true),
        decode_checked(data, v, false),
        "libdeflate and zlib-rs disagree ({v:?})"
    );
}
