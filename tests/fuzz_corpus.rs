//! Replays what the fuzzers found (fuzz/regressions/) and the fixtures
//! through the fuzz targets' invariants, on stable, in every test run.

use std::path::PathBuf;

use cwl_copy::{DecoderBuilder, FnSink, LogEvent, Scratch, Variant};

const VARIANTS: [Variant; 5] = [
    Variant::Auto,
    Variant::Gzip,
    Variant::GzipOverGzip,
    Variant::Json,
    Variant::Lines,
];

fn run(
    data: &[u8],
    variant: Variant,
    libdeflate: bool,
) -> (Vec<String>, Vec<String>) {
    let dec = DecoderBuilder::new()
        .variant(variant)
        .libdeflate(libdeflate)
        .max_member_bytes(1 << 20)
        .max_object_bytes(4 << 20)
        .build();
    let mut scratch = Scratch::new();
    let (mut events, mut errors) = (vec![], vec![]);
    let stats = dec
        .decode(
            "fuzz",
            data,
            &mut scratch,
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    events.push(format!(
                        "{:?}",
                        (e.member, e.id, e.timestamp, e.message)
                    ));
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
    (events, errors)
}

/// The `fuzz_object` invariant: the first byte picks the variant, and the
/// libdeflate and zlib-rs paths agree.
fn fuzz_object(input: &[u8]) {
    let Some((&pick, data)) = input.split_first() else { return };
    let v = VARIANTS[usize::from(pick) % 5];
    assert_eq!(run(data, v, true), run(data, v, false), "variant {v:?}");
}

#[test]
fn regressions_and_fixtures_hold_the_fuzz_invariants() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["fuzz/regressions", "testdata/firehose", "testdata/bad"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            fuzz_object(&data);
            for v in VARIANTS {
                assert_eq!(run(&data, v, true), run(&data, v, false));
            }
            n += 1;
        }
    }
    assert!(n > 20);
}
