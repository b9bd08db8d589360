//! Replays what the fuzzers found (fuzz/regressions/) and the fixtures
//! through the fuzz targets' invariants, on stable, in every test run.

use std::path::PathBuf;

use cwl_copy::fuzzing::{self, decode_checked, VARIANTS};

#[test]
fn regressions_and_fixtures_hold_the_fuzz_invariants() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        "fuzz/regressions",
        "testdata/firehose",
        "testdata/bad",
        "testdata/mapping",
    ] {
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

/// `fuzz_scan`'s findings (fuzz/regressions/fuzz_scan-*) and every message
/// of the fixtures hold the scanner's invariant.
#[test]
fn scan_regressions_and_fixture_messages_hold_the_scan_invariant() {
    use cwl_copy::{Decoder, FnSink, LogEvent, Scratch};

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("fuzz/regressions")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("fuzz_scan") {
            fuzzing::scan(&std::fs::read(&path).unwrap());
        }
    }
    let mut messages = 0;
    let dirs = ["testdata/firehose", "testdata/mapping"];
    for entry in dirs.iter().flat_map(|d| {
        std::fs::read_dir(root.join(d)).unwrap().map(Result::unwrap)
    }) {
        let data = std::fs::read(entry.path()).unwrap();
        let _ = Decoder::new().decode(
            "fixture",
            &data,
            &mut Scratch::new(),
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    let _ =
                        fuzzing::scan_checked(e.message, &mut |i| i % 2 == 0);
                    messages += 1;
                    Ok(())
                },
                |_| Ok(()),
            ),
        );
    }
    assert!(messages > 50, "{messages}");
}

/// `fuzz_onepass`'s seeds and findings (fuzz/regressions/fuzz_onepass-*),
/// every fixture object and every fixture message hold the one-pass
/// invariant (the one-pass path gives the oracle's rows, rejects,
/// filter decisions and errors) for every spec, dialect and escaping.
#[test]
fn onepass_regressions_and_fixtures_hold_the_onepass_invariant() {
    use cwl_copy::{Decoder, FnSink, LogEvent, Scratch};

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = 0;
    for entry in std::fs::read_dir(root.join("fuzz/regressions")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("fuzz_onepass") {
            let data = std::fs::read(&path).unwrap();
            for pick in 0..=u8::MAX {
                let mut input = vec![pick];
                input.extend_from_slice(data.get(1..).unwrap_or_default());
                fuzzing::onepass(&input);
            }
            seeds += 1;
        }
    }
    assert!(seeds >= 5, "{seeds}");
    let mut messages = Vec::new();
    for dir in ["testdata/firehose", "testdata/bad", "testdata/mapping"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            for pick in 0..8u8 {
                let mut input = vec![pick];
                input.extend_from_slice(&data);
                fuzzing::onepass(&input);
            }
            let _ = Decoder::new().decode(
                "fixture",
                &data,
                &mut Scratch::new(),
                FnSink::new(
                    |e: &LogEvent<'_>| -> Result<(), ()> {
                        messages.push(e.message.to_owned());
                        Ok(())
                    },
                    |_| Ok(()),
                ),
            );
        }
    }
    assert!(messages.len() > 50, "{}", messages.len());
    for m in &messages {
        for pick in [0u8, 9, 21, 46, 63] {
            let mut input = vec![pick];
            input.extend_from_slice(m.as_bytes());
            fuzzing::onepass(&input);
        }
    }
}
