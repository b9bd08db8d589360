//! Replays what the fuzzers found (fuzz/regressions/) and the fixtures
//! through the fuzz targets' invariants, on stable, in every test run.

use std::path::PathBuf;

use cwl_copy::fuzzing::{self, decode_checked, VARIANTS};

#[test]
fn regressions_and_fixtures_hold_the_fuzz_invariants() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["fuzz/regressions", "testdata/firehose", "testdata/bad"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            fuzzing::object(&data);
            for v in VARIANTS {
                assert_eq!(
                    decode_checked(&data, v, true),
                    decode_checked(&data, v, false)
                );
            }
            n += 1;
        }
    }
    assert!(n > 20);
}
