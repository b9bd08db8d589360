//! The bench harness's helper (`benches/harness/run.sh`): writes the
//! deterministic corpus and measures the floors the harness compares with.
//!
//! ```text
//! gen_corpus gen DIR [--mb N] [--objects K] [--seed S]   objects → DIR/objects/
//! gen_corpus small DIR [--objects K] [--seed S]          K small objects
//! gen_corpus inflate libdeflate|zlib-rs DIR...           inflate only
//! gen_corpus memcpy [--mb N] [--passes P]                memory bandwidth
//! gen_corpus onepass SPEC DIR...                         path counts
//! ```
//!
//! `onepass` converts every object (one thread, CSV discarded) on the
//! one-pass path and on the oracle path, checks that both give the same
//! CSV and counts, and prints how many envelopes and messages took the
//! one-pass path and how many fell back.
//!
//! `gen` is deterministic: the same arguments give the same bytes on every
//! machine and for any thread count (object `i` is seeded from the seed
//! and `i` alone). It writes `DIR/manifest` last, and skips the work when a
//! manifest with the same arguments is already there.
//!
//! `inflate` reads each object into memory (as `cwl-copy convert` does)
//! and inflates every gzip member with `cwl_copy::inflate_members`, on one
//! thread, and prints `inflated_bytes=N objects=K seconds=S`.

// A bench helper fails loudly: a panic is the right response to a broken
// setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use cwl_copy::corpus::{self, Rng};
use cwl_copy::{inflate_members, Scratch};
use rayon::prelude::*;

fn usage() -> ! {
    eprintln!(
        "usage: gen_corpus gen DIR [--mb N] [--objects K] [--seed S]\n\
         \x20      gen_corpus small DIR [--objects K] [--seed S]\n\
         \x20      gen_corpus inflate libdeflate|zlib-rs DIR...\n\
         \x20      gen_corpus memcpy [--mb N] [--passes P]\n\
         \x20      gen_corpus onepass SPEC DIR..."
    );
    std::process::exit(2)
}

/// `--name VALUE` flags after the positional arguments.
fn flag(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage()),
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let dir = PathBuf::from(args.get(1).unwrap_or_else(|| usage()));
            let mb = flag(&args, "--mb", 1024);
            let objects = flag(&args, "--objects", 200).max(1);
            let seed = flag(&args, "--seed", 42);
            generate(&dir, mb << 20, objects, seed, false);
        }
        Some("small") => {
            let dir = PathBuf::from(args.get(1).unwrap_or_else(|| usage()));
            let objects = flag(&args, "--objects", 1000).max(1);
            let seed = flag(&args, "--seed", 7);
            // Small Firehose objects: ~200 KB inflated each, the size a
            // quiet log group's 60 s buffer delivers.
            generate(&dir, objects * (200 << 10), objects, seed, true);
        }
        Some("inflate") => {
            let libdeflate = match args.get(1).map(String::as_str) {
                Some("libdeflate") => true,
                Some("zlib-rs") => false,
                _ => usage(),
            };
            if args.len() < 3 {
                usage();
            }
            inflate(&args[2..], libdeflate);
        }
        Some("memcpy") => {
            memcpy(
                flag(&args, "--mb", 256) << 20,
                flag(&args, "--passes", 16),
            );
        }
        Some("onepass") => {
            if args.len() < 3 {
                usage();
            }
            onepass(&args[1], &args[2..]);
        }
        _ => usage(),
    }
}

fn onepass(spec: &str, dirs: &[String]) {
    use cwl_copy::{
        ColumnSpec, ConvertScratch, Converter, Decoder, Dialect, Mapper,
        ObjectOutput, OnePassCounts,
    };
    let text = std::fs::read_to_string(spec).expect("reading the spec");
    let spec = ColumnSpec::from_toml(&text).expect("parsing the spec");
    let mapper = Mapper::new(&spec, Dialect::Postgres).expect("the mapper");
    let fast = Converter::new(Decoder::new(), mapper.clone());
    let mut oracle = Converter::new(Decoder::new(), mapper);
    oracle.set_onepass(false);
    let (mut s1, mut s2) = (ConvertScratch::new(), ConvertScratch::new());
    let (mut o1, mut o2) = (ObjectOutput::default(), ObjectOutput::default());
    let mut counts = OnePassCounts::default();
    let (mut t1, mut t2) = (0f64, 0f64);
    let mut rows = 0u64;
    let mut files = Vec::new();
    for p in dirs {
        walk(Path::new(p), &mut files);
    }
    for path in files {
        let data = std::fs::read(&path).expect("reading an object");
        let name = path.to_string_lossy();
        o1.clear();
        o2.clear();
        let t = Instant::now();
        fast.convert(&name, &data, &mut s1, &mut o1);
        t1 += t.elapsed().as_secs_f64();
        let t = Instant::now();
        oracle.convert(&name, &data, &mut s2, &mut o2);
        t2 += t.elapsed().as_secs_f64();
        assert!(o1.csv == o2.csv, "{name}: the two paths' CSV differ");
        assert_eq!(o1.counts, o2.counts, "{name}");
        assert_eq!(o1.rejects, o2.rejects, "{name}");
        counts.add(&o1.onepass);
        rows += o1.counts.rows;
    }
    println!(
        "onepass_envelopes={} envelope_fallbacks={} onepass_messages={} \
         message_fallbacks={} state_machine={} ahead={} rows={rows} \
         onepass_seconds={t1:.3} oracle_seconds={t2:.3}",
        counts.envelopes,
        counts.envelope_fallbacks,
        counts.messages,
        counts.message_fallbacks,
        counts.state_machine,
        counts.ahead,
    );
}

fn generate(dir: &Path, bytes: u64, objects: u64, seed: u64, small: bool) {
    let manifest = dir.join("manifest");
    let want = format!(
        "version=1\nseed={seed}\nbytes={bytes}\nobjects={objects}\nsmall={small}\n"
    );
    if let Ok(have) = std::fs::read_to_string(&manifest) {
        if have.starts_with(&want) {
            eprintln!("gen_corpus: {} is up to date", dir.display());
            print!("{have}");
            return;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let objdir = dir.join("objects");
    std::fs::create_dir_all(&objdir).expect("creating the corpus directory");
    let per_object = bytes / objects;
    let started = Instant::now();
    let sizes: Vec<(u64, u64, u64)> = (0..objects)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::new(seed ^ (i.wrapping_mul(0x0100_0000_01B3) + 1));
            let mut ts = 1_714_568_707_123 + i64::try_from(i).unwrap() * 60_000;
            // Members of 16–112 KB inflated: CloudWatch batches events into
            // records of up to ~1 MB, most far smaller.
            let member = if small {
                16 << 10
            } else {
                (16 << 10) + rng.below(96 << 10)
            };
            let members = usize::try_from((per_object / member).max(1)).unwrap();
            let control = i % 50 == 0;
            let (data, inflated) = corpus::object(
                &mut rng,
                &mut ts,
                members,
                usize::try_from(member).unwrap(),
                control,
            );
            // Firehose-like keys, no `.gz` extension (raw CWL objects).
            let hour = 13 + i / 100;
            let path = objdir.join(format!(
                "2024/05/01/{hour:02}/cwl-stream-1-2024-05-01-{hour:02}-{:02}-{:02}-{i:08x}",
                (i / 60) % 60,
                i % 60
            ));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).expect("writing an object");
            (inflated, data.len() as u64, members as u64)
        })
        .collect();
    let inflated: u64 = sizes.iter().map(|s| s.0).sum();
    let compressed: u64 = sizes.iter().map(|s| s.1).sum();
    let members: u64 = sizes.iter().map(|s| s.2).sum();
    let text = format!(
        "{want}inflated_bytes={inflated}\ncompressed_bytes={compressed}\nmembers={members}\n"
    );
    std::fs::write(&manifest, &text).expect("writing the manifest");
    eprintln!(
        "gen_corpus: {objects} objects, {:.1} MB inflated, {:.1} MB gzip, in {:.1} s",
        inflated as f64 / 1e6,
        compressed as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    print!("{text}");
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .expect("reading a directory")
            .map(|e| e.expect("reading a directory").path())
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out);
        }
    } else {
        out.push(p.to_path_buf());
    }
}

fn inflate(paths: &[String], libdeflate: bool) {
    let mut files = Vec::new();
    for p in paths {
        walk(Path::new(p), &mut files);
    }
    let started = Instant::now();
    let mut scratch = Scratch::new();
    let mut total = 0u64;
    for f in &files {
        let data = std::fs::read(f).expect("reading an object");
        total += inflate_members(&data, &mut scratch, libdeflate)
            .unwrap_or_else(|| panic!("{}: a bad gzip member", f.display()));
    }
    println!(
        "inflated_bytes={total} objects={} seconds={:.3}",
        files.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Copies a buffer of `bytes` into another `passes` times: a rough
/// single-thread memory-bandwidth ceiling (read + write of each byte).
fn memcpy(bytes: u64, passes: u64) {
    let n = usize::try_from(bytes).unwrap();
    let src: Vec<u8> = (0..n).map(|i| i as u8).collect();
    let mut dst = vec![0u8; n];
    dst.copy_from_slice(&src);
    let started = Instant::now();
    for p in 0..passes {
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        dst[usize::try_from(p).unwrap() % n] ^= 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "copied_bytes={} seconds={secs:.3} gb_per_s={:.2}",
        bytes * passes,
        (bytes * passes) as f64 / secs / 1e9
    );
}
