//! Criterion benches of the decode stage, on a deterministic generated
//! corpus (built at bench time, never committed): about 64 MB of inflated
//! envelope JSON in realistic ~58 KB members.
//!
//! `cargo bench --bench decode` (add `-- --quick` for a fast look).

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

criterion_group!(benches, decode);
criterion_main!(benches);
