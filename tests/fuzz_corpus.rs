//! Replays what the fuzzers found (fuzz/regressions/TARGET-*), their seed
//! corpora (fuzz/seeds/TARGET/) and the fixtures through the fuzz targets'
//! invariants (`cwl_copy::fuzzing`), on stable, in every test run.

use std::path::{Path, PathBuf};

use cwl_copy::fuzzing::{self, decode_checked, VARIANTS};

/// A fuzz target's invariant.
type Invariant = fn(&[u8]);

/// Every fuzz target and its invariant.
const TARGETS: &[(&str, Invariant)] = &[
    ("fuzz_object", fuzzing::object),
    ("fuzz_members", fuzzing::members),
    ("fuzz_envelope", fuzzing::envelope),
    ("fuzz_scan", fuzzing::scan),
    ("fuzz_csv", fuzzing::csv),
    ("fuzz_filter", fuzzing::filter),
    ("fuzz_spec", fuzzing::spec),
    ("fuzz_onepass", fuzzing::onepass),
    ("fuzz_notification", fuzzing::notification),
    #[cfg(feature = "loader")]
    ("fuzz_conninfo", fuzzing::conninfo),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
    let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Every committed regression input and seed holds its target's
/// invariant, and every target has seeds; a regression names a target.
#[test]
fn every_target_holds_on_its_regressions_and_seeds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let regressions = files(&root.join("regressions"));
    for r in &regressions {
        let name = r.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| name.starts_with(&format!("{t}-"))),
            "{name}: a regression is named TARGET-what"
        );
    }
    for (target, check) in TARGETS {
        let seeds = files(&root.join("seeds").join(target));
        assert!(!seeds.is_empty(), "{target}: no seeds in fuzz/seeds");
        let mine = regressions.iter().filter(|r| {
            r.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{target}-"))
        });
        for path in seeds.iter().chain(mine) {
            let data = std::fs::read(path).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target} fails on {}", path.display());
        }
    }
}

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
            fuzzing::csv(&data);
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

/// `fuzz_onepass`'s seeds (fuzz/seeds/fuzz_onepass/) and findings
/// (fuzz/regressions/fuzz_onepass-*), each with every first byte (the
/// spec, dialect and escaping it picks),
/// every fixture object and every fixture message hold the one-pass
/// invariant (the one-pass path gives the oracle's rows, rejects,
/// filter decisions and errors) for every spec, dialect and escaping.
#[test]
fn onepass_regressions_and_fixtures_hold_the_onepass_invariant() {
    use cwl_copy::{Decoder, FnSink, LogEvent, Scratch};

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = 0;
    let found = files(&root.join("fuzz/regressions"));
    let seeded = files(&root.join("fuzz/seeds/fuzz_onepass"));
    for path in found.iter().chain(&seeded) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("fuzz_onepass") || seeded.contains(path) {
            let data = std::fs::read(path).unwrap();
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
