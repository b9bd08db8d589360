//! Criterion benches of the decode stage, on a deterministic generated
//! corpus (built at bench time, never committed): about 64 MB of inflated
//! envelope JSON in realistic ~58 KB members.
//!
//! `cargo bench --bench decode` (add `-- --quick` for a fast look).

// Benches fail loudly: a panic is the right response to a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cwl_copy::corpus::{self, Rng};
use cwl_copy::{inflate_members, Decoder, FnSink, LogEvent, Scratch};

fn corpus() -> (Vec<u8>, u64) {
    let mut rng = Rng::new(42);
    let mut ts = 1_714_568_707_123;
    // One object of 1,100 members of ~58 KB inflated each (~64 MB).
    corpus::object(&mut rng, &mut ts, 1100, 58 * 1024, true)
}

fn count_events(
    dec: &Decoder,
    data: &[u8],
    scratch: &mut Scratch,
) -> (u64, usize) {
    let mut bytes = 0usize;
    let stats = dec
        .decode(
            "bench",
            data,
            scratch,
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    bytes += e.message.len();
                    Ok(())
                },
                |_| Err(()),
            ),
        )
        .unwrap();
    (stats.events, bytes)
}

fn decode(c: &mut Criterion) {
    let (data, inflated) = corpus();
    let mut scratch = Scratch::new();
    let dec = Decoder::new();
    let (events, _) = count_events(&dec, &data, &mut scratch);
    let mut g = c.benchmark_group("decode/corpus64");
    g.throughput(Throughput::Bytes(inflated));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("inflate/zlib-rs-multigz", |b| {
        let mut out = Vec::with_capacity(inflated as usize + 1024);
        b.iter(|| {
            out.clear();
            flate2::read::MultiGzDecoder::new(&data[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out.len() as u64, inflated);
        })
    });
    g.bench_function("inflate/zlib-rs-members", |b| {
        b.iter(|| {
            assert_eq!(
                inflate_members(&data, &mut scratch, false),
                Some(inflated)
            )
        })
    });
    g.bench_function("inflate/libdeflate-members", |b| {
        b.iter(|| {
            assert_eq!(
                inflate_members(&data, &mut scratch, true),
                Some(inflated)
            )
        })
    });
    g.bench_function("events/libdeflate", |b| {
        b.iter(|| {
            assert_eq!(count_events(&dec, &data, &mut scratch).0, events)
        })
    });
    let slow = cwl_copy::DecoderBuilder::new().libdeflate(false).build();
    g.bench_function("events/zlib-rs", |b| {
        b.iter(|| {
            assert_eq!(count_events(&slow, &data, &mut scratch).0, events)
        })
    });
    g.finish();
}

fn convert(c: &mut Criterion) {
    use cwl_copy::{
        ColumnSpec, ConvertScratch, Converter, Dialect, Mapper, ObjectOutput,
    };
    let (data, inflated) = corpus();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/specs/integrated_user_log.toml"
    ))
    .unwrap();
    let spec = ColumnSpec::from_toml(&text).unwrap();
    let mut g = c.benchmark_group("convert/corpus64");
    g.throughput(Throughput::Bytes(inflated));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    // `end_to_end/D` is the one-pass path (issue #13), `…_oracle` the
    // path before it (simd-json's envelope, the unescaped message's scan),
    // which stays as the oracle.
    for (dialect, onepass) in [
        (Dialect::Postgres, true),
        (Dialect::Postgres, false),
        (Dialect::Redshift, true),
        (Dialect::Redshift, false),
    ] {
        let mut conv = Converter::new(
            Decoder::new(),
            Mapper::new(&spec, dialect).unwrap(),
        );
        conv.set_onepass(onepass);
        let mut scratch = ConvertScratch::new();
        let mut out = ObjectOutput::default();
        conv.convert("bench", &data, &mut scratch, &mut out);
        let rows = out.counts.rows;
        assert!(rows > 0);
        if onepass {
            // The corpus takes the one-pass path throughout.
            assert_eq!(out.onepass.envelope_fallbacks, 0);
            // Only the plain-text lines (3%) fall back.
            assert!(out.onepass.message_fallbacks * 20 < out.onepass.messages);
            eprintln!("one-pass {dialect:?}: {:?}", out.onepass);
        }
        let name = if onepass {
            format!("end_to_end/{dialect:?}")
        } else {
            format!("end_to_end/{dialect:?}_oracle")
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                conv.convert("bench", &data, &mut scratch, &mut out);
                assert_eq!(out.counts.rows, rows);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, convert);
criterion_main!(benches);
