//! Criterion benches of the map stage's parts, one event at a time, on
//! the messages of the generated corpus (see `benches/decode.rs`) with
//! `testdata/specs/integrated_user_log.toml`:
//!
//! * `stages/envelope_parse/plain_envelopes`: the decoder on the same
//!   envelopes already inflated and concatenated (`Variant::Json`): no
//!   inflate, but finding each document's end (the gzip path gets it from
//!   the member boundary), simd-json tape of each envelope, unescaping
//!   its messages, events out;
//! * `stages/message_parse/simd_json_full_tape`: what the mapper did
//!   before issue #5 (copy, pad, full simd-json tape), the baseline for
//! * `stages/message_parse/scan_pruned`: the mapper's validating scan
//!   into a pruned tape;
//! * `stages/filter`: the spec's JSON filter pattern on parsed messages;
//! * `stages/map`: all of `Mapper::map`;
//! * `stages/write_csv`: `RowWriter` writing each message as a field.
//!
//! The one-pass path (issue #13), each next to the stage it replaces:
//!
//! * `stages/envelope_parse/plain_envelopes_onepass`: the decoder for a
//!   sink that takes escaped messages (the one-pass envelope reader: one
//!   validating pass, messages not unescaped);
//! * `stages/message_parse/scan_escaped`: the scan of each message in its
//!   escaped form;
//! * `stages/map/integrated_user_log_escaped`: all of
//!   `Mapper::map_escaped` on the escaped messages;
//! * `stages/write_csv/message_field_escaped`: each message written as a
//!   field straight from its escaped form.
//!
//! `cargo bench --no-default-features --bench stages` (add `-- --quick`
//! for a fast look).

// Benches fail loudly: a panic is the right response to a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cwl_copy::corpus::{self, Rng};
use cwl_copy::{
    ColumnSpec, Decoder, DecoderBuilder, Dialect, EventSink, FilterPattern,
    FnSink, LogEvent, MapOutcome, MapScratch, Mapper, RowWriter, Scratch,
    Variant,
};

/// One owned event: id, timestamp, message.
type Event = (String, Option<i64>, String);

fn events() -> Vec<Event> {
    let mut rng = Rng::new(42);
    let mut ts = 1_714_568_707_123;
    // 100 members of ~58 KB inflated each (~6 MB of envelopes).
    let (data, _) = corpus::object(&mut rng, &mut ts, 100, 58 * 1024, true);
    let mut out = Vec::new();
    let _stats = Decoder::new()
        .decode(
            "bench",
            &data,
            &mut Scratch::new(),
            FnSink::new(
                |e: &LogEvent<'_>| -> Result<(), ()> {
                    out.push((
                        e.id.unwrap_or_default().to_owned(),
                        e.timestamp,
                        e.message.to_owned(),
                    ));
                    Ok(())
                },
                |_| Err(()),
            ),
        )
        .unwrap();
    out
}

/// The same 100 envelopes, inflated and concatenated.
fn envelopes() -> Vec<u8> {
    let mut rng = Rng::new(42);
    let mut ts = 1_714_568_707_123;
    (0..100)
        .flat_map(|_| corpus::envelope(&mut rng, &mut ts, 58 * 1024))
        .collect()
}

fn spec() -> (ColumnSpec, String) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/specs/integrated_user_log.toml"
    ))
    .unwrap();
    (ColumnSpec::from_toml(&text).unwrap(), text)
}

/// Envelope parse alone: plain envelopes, events counted.
fn envelope_parse(c: &mut Criterion) {
    let docs = envelopes();
    let mut e = c.benchmark_group("stages/envelope_parse");
    e.throughput(Throughput::Bytes(docs.len() as u64));
    e.sample_size(20).measurement_time(Duration::from_secs(6));
    let dec = DecoderBuilder::new().variant(Variant::Json).build();
    let mut scratch = Scratch::new();
    let count = |scratch: &mut Scratch| {
        let mut n = 0u64;
        let _stats = dec
            .decode(
                "bench",
                &docs,
                scratch,
                FnSink::new(
                    |_: &LogEvent<'_>| -> Result<(), ()> {
                        n += 1;
                        Ok(())
                    },
                    |_| Err(()),
                ),
            )
            .unwrap();
        n
    };
    let want = count(&mut scratch);
    assert!(want > 10_000);
    e.bench_function("plain_envelopes", |b| {
        b.iter(|| assert_eq!(count(&mut scratch), want));
    });
    // With the SSE2 steps on a CPU with AVX2 too, right after the AVX2
    // run (`cwl_copy::fuzzing::use_sse2`): the two compared in one
    // process, so that the machine's drift between binaries is not.
    for (name, sse2) in [
        ("plain_envelopes_onepass", false),
        ("plain_envelopes_onepass_sse2", true),
    ] {
        e.bench_function(name, |b| {
            cwl_copy::fuzzing::use_sse2(sse2);
            b.iter(|| {
                let mut sink = Escaped::new(None);
                let _stats =
                    dec.decode("bench", &docs, &mut scratch, &mut sink);
                assert_eq!(sink.events, want);
            });
            cwl_copy::fuzzing::use_sse2(false);
        });
    }
    // The envelope read with each message scanned as it is met (the
    // scan finds the message's end: `EventSink::prescan`), the one-pass
    // path's first stage since the ninth pass: against
    // `plain_envelopes_onepass` (the envelope alone) plus
    // `message_parse/scan_escaped` (the scan alone), what merging them
    // saves.
    let (spec, _) = spec();
    let mapper = Mapper::new(&spec, Dialect::Postgres).unwrap();
    let mut map_scratch = MapScratch::new();
    e.bench_function("plain_envelopes_scanned_ahead", |b| {
        b.iter(|| {
            let mut sink = Escaped::new(Some((&mapper, &mut map_scratch)));
            let _stats = dec.decode("bench", &docs, &mut scratch, &mut sink);
            assert_eq!(sink.events, want);
            assert!(sink.ahead * 100 > want * 95, "{} of {want}", sink.ahead);
        });
    });
    e.finish();
}

/// Counts escaped events (with a message); the one-pass path's sink.
/// With a mapper, it scans each message as the envelope reader meets it
/// (`EventSink::prescan`) and counts those it read in `ahead`.
struct Escaped<'m> {
    events: u64,
    ahead: u64,
    scan: Option<(&'m Mapper, &'m mut MapScratch)>,
}

impl<'m> Escaped<'m> {
    fn new(scan: Option<(&'m Mapper, &'m mut MapScratch)>) -> Self {
        Escaped { events: 0, ahead: 0, scan }
    }
}

impl EventSink for Escaped<'_> {
    type Error = ();
    fn event(&mut self, _: &LogEvent<'_>) -> Result<(), ()> {
        Err(())
    }
    fn reject(&mut self, _: cwl_copy::Error) -> Result<(), ()> {
        Err(())
    }
    fn wants_escaped(&self) -> bool {
        true
    }
    fn escaped_event(
        &mut self,
        _: &LogEvent<'_>,
        m: &str,
        _: bool,
    ) -> Result<(), ()> {
        self.events += u64::from(!m.is_empty());
        Ok(())
    }
    fn prescan<'a>(
        &mut self,
        body: &'a str,
        pre: &mut cwl_copy::Prescanned<'a>,
    ) -> Option<(usize, bool, u32)> {
        let (mapper, scratch) = self.scan.as_mut()?;
        mapper.prescan(body, pre, scratch)
    }
    fn scanned_event(
        &mut self,
        ev: &LogEvent<'_>,
        m: &str,
        quotes_only: bool,
        _: cwl_copy::Scanned<'_, '_>,
    ) -> Result<(), ()> {
        self.ahead += 1;
        self.escaped_event(ev, m, quotes_only)
    }
}

fn stages(c: &mut Criterion) {
    let events = events();
    let bytes: u64 = events.iter().map(|e| e.2.len() as u64).sum();
    let (spec, text) = spec();
    let mapper = Mapper::new(&spec, Dialect::Postgres).unwrap();
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20).measurement_time(Duration::from_secs(6));

    // The messages that are JSON, as both parsers see them.
    let mut scratch = MapScratch::new();
    let json = events
        .iter()
        .filter(|e| {
            cwl_copy::fuzzing::mapper_scan(&mapper, &e.2, &mut scratch)
                .is_some()
        })
        .count();
    assert!(json > events.len() * 9 / 10, "{json} of {}", events.len());

    g.bench_function("message_parse/simd_json_full_tape", |b| {
        let mut copy = Vec::new();
        let mut buffers = simd_json::Buffers::new(0);
        let mut tape = simd_json::Tape::null();
        b.iter(|| {
            let mut ok = 0;
            for (_, _, m) in &events {
                copy.clear();
                copy.extend_from_slice(m.as_bytes());
                let len = copy.len();
                copy.resize(len + simd_json::INPUT_PADDING, b' ');
                let mut t =
                    std::mem::replace(&mut tape, simd_json::Tape::null())
                        .reset();
                if simd_json::fill_tape_padded(
                    &mut copy,
                    len,
                    &mut buffers,
                    &mut t,
                )
                .is_ok()
                {
                    ok += 1;
                }
                tape = t.reset();
            }
            assert_eq!(ok, json);
        })
    });
    g.bench_function("message_parse/scan_pruned", |b| {
        b.iter(|| {
            let mut ok = 0;
            for (_, _, m) in &events {
                let n =
                    cwl_copy::fuzzing::mapper_scan(&mapper, m, &mut scratch);
                ok += usize::from(n.is_some());
            }
            assert_eq!(ok, json);
        })
    });

    // The same messages as the envelope holds them.
    let escaped: Vec<String> =
        events.iter().map(|e| cwl_copy::fuzzing::escape(&e.2, 0)).collect();
    for (name, fast, guess) in [
        ("message_parse/scan_escaped_state_machine", false, true),
        ("message_parse/scan_escaped_unguessed", true, false),
        ("message_parse/scan_escaped", true, true),
    ] {
        cwl_copy::fuzzing::guess_keys(&mut scratch, guess);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ok = 0;
                for m in &escaped {
                    let n = cwl_copy::fuzzing::mapper_scan_escaped(
                        &mapper,
                        m,
                        fast,
                        &mut scratch,
                    );
                    ok += usize::from(n.is_some());
                }
                assert_eq!(ok, json);
            })
        });
    }

    // The filter alone, on tapes parsed beforehand.
    let pattern = text
        .lines()
        .find_map(|l| l.strip_prefix("filter = '"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap();
    let filter = FilterPattern::parse(pattern).unwrap();
    let mut copies: Vec<Vec<u8>> =
        events.iter().map(|e| e.2.as_bytes().to_vec()).collect();
    let tapes: Vec<(&str, Option<simd_json::Tape<'_>>)> = copies
        .iter_mut()
        .zip(&events)
        .map(|(c, e)| (e.2.as_str(), simd_json::to_tape(c).ok()))
        .collect();
    let matching = tapes
        .iter()
        .filter(|(m, t)| filter.matches(m, t.as_ref().map(|t| t.as_value())))
        .count();
    assert!(matching > 0 && matching < events.len());
    g.bench_function("filter/json_pattern", |b| {
        b.iter(|| {
            let n = tapes
                .iter()
                .filter(|(m, t)| {
                    filter.matches(m, t.as_ref().map(|t| t.as_value()))
                })
                .count();
            assert_eq!(n, matching);
        })
    });

    let mut out = Vec::new();
    let rows = events
        .iter()
        .filter(|e| {
            let mut ev = LogEvent::from_message("bench", &e.2);
            ev.id = Some(&e.0);
            ev.timestamp = e.1;
            matches!(mapper.map(&ev, &mut scratch, &mut out), MapOutcome::Row)
        })
        .count();
    assert_eq!(rows, matching);
    g.bench_function("map/integrated_user_log", |b| {
        b.iter(|| {
            out.clear();
            let mut n = 0;
            for (id, ts, m) in &events {
                let mut ev = LogEvent::from_message("bench", m);
                ev.id = Some(id);
                ev.timestamp = *ts;
                if let MapOutcome::Row =
                    mapper.map(&ev, &mut scratch, &mut out)
                {
                    n += 1;
                }
            }
            assert_eq!(n, rows);
        })
    });

    // As the envelope reader tells each message's escapes (`quotes_only`,
    // found before the timing), and as if it did not (the writer then
    // classifies every `@message` byte, as before the flag).
    let told: Vec<bool> =
        escaped.iter().map(|m| cwl_copy::fuzzing::quotes_only(m)).collect();
    for (name, tell) in [
        ("map/integrated_user_log_escaped", true),
        ("map/integrated_user_log_escaped_untold", false),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut n = 0;
                for (((id, ts, _), m), &q) in
                    events.iter().zip(&escaped).zip(&told)
                {
                    let mut ev = LogEvent::from_message("bench", "");
                    ev.id = Some(id);
                    ev.timestamp = *ts;
                    if let MapOutcome::Row = mapper.map_escaped(
                        &ev,
                        m,
                        q && tell,
                        &mut scratch,
                        &mut out,
                    ) {
                        n += 1;
                    }
                }
                assert_eq!(n, rows);
            })
        });
    }

    // Every message (with the AVX2 steps and with SSE2 alone), and the
    // messages whose every escape is `\"`, written as the envelope
    // reader's word lets `field_quotes_only` write them (with AVX2's
    // 32-byte turn and SSE2's 16) and as
    // `field_escaped`'s blocks do without it.
    let all: Vec<&String> = escaped.iter().collect();
    let quoted: Vec<&String> =
        escaped.iter().filter(|m| cwl_copy::fuzzing::quotes_only(m)).collect();
    // (Unescaped, the quoted ones keep their length: `\"` → `""`.)
    let quoted_bytes: u64 = quoted.iter().map(|m| m.len() as u64).sum();
    for (name, msgs, min, sse2, told) in [
        ("write_csv/message_field_escaped", &all, bytes, false, false),
        ("write_csv/message_field_escaped_sse2", &all, bytes, true, false),
        (
            "write_csv/message_field_quotes_only",
            &quoted,
            quoted_bytes,
            false,
            true,
        ),
        (
            "write_csv/message_field_quotes_only_sse2",
            &quoted,
            quoted_bytes,
            true,
            true,
        ),
        (
            "write_csv/message_field_escaped_quotes_only",
            &quoted,
            quoted_bytes,
            false,
            false,
        ),
    ] {
        g.bench_function(name, |b| {
            cwl_copy::fuzzing::use_sse2(sse2);
            let mut w = RowWriter::new(Dialect::Postgres);
            b.iter(|| {
                out.clear();
                for m in msgs {
                    assert!(cwl_copy::fuzzing::write_escaped_field(
                        &mut w, &mut out, m, told
                    ));
                    w.end_row(&mut out);
                }
                assert!(out.len() as u64 > min);
            });
            cwl_copy::fuzzing::use_sse2(false);
        });
    }

    g.bench_function("write_csv/message_field", |b| {
        let mut w = RowWriter::new(Dialect::Postgres);
        b.iter(|| {
            out.clear();
            for (_, _, m) in &events {
                w.field(&mut out, m).unwrap();
                w.end_row(&mut out);
            }
            assert!(out.len() as u64 > bytes);
        })
    });
    g.finish();
}

criterion_group!(benches, envelope_parse, stages);
criterion_main!(benches);
