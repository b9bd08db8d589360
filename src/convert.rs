//! Decode → map → write for one object: the unit of work that `convert`
//! and `load` run on rayon, one object per task.

use std::convert::Infallible;

use crate::decode::{
    DecodeStats, Decoder, EventSink, LogEvent, OnePassCounts, Scratch,
};
use crate::error::Error;
use crate::map::scan::{Prescanned, Scanned};
use crate::map::{MapOutcome, MapScratch, Mapper};

/// What became of the events: every event is a row, filtered out, or
/// rejected, and [`Counts::reconcile`] checks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[must_use = "the counts are how a run proves nothing was lost"]
pub struct Counts {
    /// Events decoded.
    pub events: u64,
    /// Rows written.
    pub rows: u64,
    /// Events the spec's filter pattern did not select.
    pub filtered_out: u64,
    /// Events that could not be mapped, each with a reason.
    pub rejected: u64,
}

impl Counts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Counts) {
        self.events += other.events;
        self.rows += other.rows;
        self.filtered_out += other.filtered_out;
        self.rejected += other.rejected;
    }

    /// True when `events = rows + filtered_out + rejected`.
    #[must_use]
    pub fn reconcile(&self) -> bool {
        self.rows
            .checked_add(self.filtered_out)
            .and_then(|n| n.checked_add(self.rejected))
            == Some(self.events)
    }
}

/// Buffers reused from object to object; keep one per thread.
#[derive(Default)]
pub struct ConvertScratch {
    decode: Scratch,
    map: MapScratch,
}

impl ConvertScratch {
    /// Empty buffers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// The output of one object.
#[derive(Debug, Default)]
pub struct ObjectOutput {
    /// CSV records, in event order.
    pub csv: Vec<u8>,
    /// Events the mapper rejected, with their reasons (undecodable input
    /// is in `errors`).
    pub rejects: Vec<RejectedEvent>,
    /// Event counts.
    pub counts: Counts,
    /// Values `overflow = "truncate"` cut in written rows, by column index
    /// (in [`Mapper::column_names`] order); empty when none was cut, and
    /// otherwise one entry per column.
    pub truncated: Vec<u64>,
    /// Decode counts.
    pub decode: DecodeStats,
    /// Input the decoder could not read.
    pub errors: Vec<Error>,
    /// Envelopes and messages on the one-pass path and fallbacks (for the
    /// benches).
    #[doc(hidden)]
    pub onepass: OnePassCounts,
}

impl ObjectOutput {
    /// Empties the output, keeping its buffers.
    pub fn clear(&mut self) {
        self.csv.clear();
        self.rejects.clear();
        self.counts = Counts::default();
        self.truncated.clear();
        self.decode = DecodeStats::default();
        self.errors.clear();
        self.onepass = OnePassCounts::default();
    }
}

/// An event the mapper rejected: where it came from, why (a stable code
/// and a reason), and the raw message, so nothing is dropped silently.
/// Allocated only on the reject path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedEvent {
    /// Gzip member (or JSON document) index.
    pub member: Option<u64>,
    /// The event id.
    pub id: Option<String>,
    /// Event time in epoch milliseconds.
    pub timestamp: Option<i64>,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// Why it was rejected, as a stable machine-readable code
    /// ([`Reject`](crate::Reject) lists them: `not_json`, `not_object`,
    /// `type_mismatch`, `too_long`, …).
    pub code: &'static str,
    /// Why it was rejected, in words.
    pub reason: String,
    /// The raw message.
    pub message: String,
}

/// Turns objects into CSV rows with a [`Decoder`] and a [`Mapper`].
#[derive(Debug)]
pub struct Converter {
    decoder: Decoder,
    mapper: Mapper,
    /// Take the one-pass path where the mapper can (the default).
    onepass: bool,
}

struct Sink<'m, F> {
    mapper: &'m Mapper,
    scratch: &'m mut MapScratch,
    out: &'m mut ObjectOutput,
    /// Called with `out` once its CSV, or the rejects kept since the last
    /// call, hold this many bytes.
    flush: Option<(usize, F)>,
    /// Bytes of the rejects pushed since `flush` was last called (their
    /// messages and reasons, and a record's worth for the rest), or
    /// `None` once a call left them in place: that caller keeps them to
    /// the end, and is called for its CSV alone.
    reject_bytes: Option<usize>,
    /// Messages come escaped (the one-pass path).
    onepass: bool,
    /// Told the input bytes consumed ([`EventSink::progress`]).
    progress: &'m mut dyn FnMut(u64),
}

impl<F: FnMut(&mut ObjectOutput)> Sink<'_, F> {
    /// Counts `outcome`; `message` gives the raw message of a reject.
    fn outcome(
        &mut self,
        ev: &LogEvent<'_>,
        outcome: MapOutcome,
        message: impl FnOnce() -> String,
    ) {
        let out = &mut *self.out;
        out.counts.events += 1;
        // Whether the rejects now hold a chunk's worth (only a reject can
        // make them: rows do not test it).
        let mut rejects_due = false;
        match outcome {
            MapOutcome::Row => out.counts.rows += 1,
            MapOutcome::Filtered => out.counts.filtered_out += 1,
            MapOutcome::Rejected(r) => {
                out.counts.rejected += 1;
                let reject = RejectedEvent {
                    member: ev.member,
                    id: ev.id.map(str::to_owned),
                    timestamp: ev.timestamp,
                    column: r.column,
                    code: r.code,
                    reason: r.reason,
                    message: message(),
                };
                if let (Some(n), Some((at, _))) =
                    (&mut self.reject_bytes, &self.flush)
                {
                    *n = n.saturating_add(
                        reject.message.len()
                            + reject.reason.len()
                            + std::mem::size_of::<RejectedEvent>(),
                    );
                    rejects_due = *n >= *at;
                }
                out.rejects.push(reject);
            }
        }
        if let Some((at, flush)) = &mut self.flush {
            if rejects_due || out.csv.len() >= *at {
                flush(out);
                self.reject_bytes = out.rejects.is_empty().then_some(0);
            }
        }
    }
}

/// The message of an escaped body, for a reject.
fn unescaped(escaped: &str) -> String {
    let mut buf = Vec::new();
    crate::decode::onepass::unescape(escaped.as_bytes(), &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

impl<F: FnMut(&mut ObjectOutput)> EventSink for Sink<'_, F> {
    type Error = Infallible;

    fn event(&mut self, ev: &LogEvent<'_>) -> Result<(), Infallible> {
        let outcome = self.mapper.map(ev, self.scratch, &mut self.out.csv);
        self.outcome(ev, outcome, || ev.message.to_owned());
        Ok(())
    }

    fn wants_escaped(&self) -> bool {
        self.onepass
    }

    fn escaped_event(
        &mut self,
        ev: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
    ) -> Result<(), Infallible> {
        let outcome = self.mapper.map_escaped(
            ev,
            escaped,
            quotes_only,
            self.scratch,
            &mut self.out.csv,
        );
        self.outcome(ev, outcome, || unescaped(escaped));
        Ok(())
    }

    fn prescan<'a>(
        &mut self,
        body: &'a str,
        pre: &mut Prescanned<'a>,
    ) -> Option<(usize, bool, u32)> {
        if !self.onepass {
            return None;
        }
        self.mapper.prescan(body, pre, self.scratch)
    }

    fn scanned_event(
        &mut self,
        ev: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
        scanned: Scanned<'_, '_>,
    ) -> Result<(), Infallible> {
        let outcome = self.mapper.map_scanned(
            ev,
            escaped,
            quotes_only,
            scanned,
            self.scratch,
            &mut self.out.csv,
        );
        self.outcome(ev, outcome, || unescaped(escaped));
        Ok(())
    }

    fn reject(&mut self, e: Error) -> Result<(), Infallible> {
        self.out.errors.push(e);
        Ok(())
    }

    fn progress(&mut self, consumed: u64) {
        (self.progress)(consumed);
    }
}

impl Converter {
    /// A converter from a decoder and a mapper.
    #[must_use]
    pub fn new(decoder: Decoder, mapper: Mapper) -> Self {
        let onepass = mapper.onepass();
        Converter { decoder, mapper, onepass }
    }

    /// Takes the one-pass path (the default wherever the spec allows it)
    /// or always today's: simd-json's envelope, the unescaped message's
    /// scan. For the benches and the differential tests.
    #[doc(hidden)]
    pub fn set_onepass(&mut self, on: bool) {
        self.onepass = on && self.mapper.onepass();
    }

    /// The mapper.
    #[must_use]
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    /// Converts one object held in memory, appending to `out`.
    pub fn convert(
        &self,
        object: &str,
        data: &[u8],
        scratch: &mut ConvertScratch,
        out: &mut ObjectOutput,
    ) {
        self.run::<fn(&mut ObjectOutput)>(
            object,
            data,
            scratch,
            out,
            None,
            &mut |_| {},
        );
    }

    /// Like [`Converter::convert`], but hands the output over in pieces:
    /// whenever `out.csv` holds `chunk_bytes` or more (whole records), or
    /// the rejects added since the last call hold that many bytes (their
    /// raw messages, mostly), `flush` is called with `out`. It must leave
    /// `out.csv` empty (or take it and put an empty buffer in its place),
    /// and may take `out.rejects` the same way, to write them as they come
    /// (once a call leaves them, the calls are for the CSV alone); the
    /// counts, errors and the rest stay in `out` until the end, and what is
    /// left of the CSV and the rejects at the end stays too. Memory for one
    /// object's CSV, and for its rejects where `flush` takes them, is then
    /// bounded by about `chunk_bytes` plus one record, however large the
    /// object.
    pub fn convert_chunked(
        &self,
        object: &str,
        data: &[u8],
        scratch: &mut ConvertScratch,
        out: &mut ObjectOutput,
        chunk_bytes: usize,
        flush: impl FnMut(&mut ObjectOutput),
    ) {
        self.convert_chunked_with_progress(
            object,
            data,
            scratch,
            out,
            chunk_bytes,
            flush,
            |_| {},
        );
    }

    /// Like [`Converter::convert_chunked`], and `progress` is called as the
    /// object is read with how many bytes of `data` are consumed so far
    /// (see [`EventSink::progress`]: once every
    /// [`PROGRESS_STEP`](crate::PROGRESS_STEP) bytes or more, not at the
    /// end), so that a progress display moves within a large object.
    #[allow(clippy::too_many_arguments)]
    pub fn convert_chunked_with_progress(
        &self,
        object: &str,
        data: &[u8],
        scratch: &mut ConvertScratch,
        out: &mut ObjectOutput,
        chunk_bytes: usize,
        flush: impl FnMut(&mut ObjectOutput),
        mut progress: impl FnMut(u64),
    ) {
        self.run(
            object,
            data,
            scratch,
            out,
            Some((chunk_bytes, flush)),
            &mut progress,
        );
    }

    fn run<F: FnMut(&mut ObjectOutput)>(
        &self,
        object: &str,
        data: &[u8],
        scratch: &mut ConvertScratch,
        out: &mut ObjectOutput,
        flush: Option<(usize, F)>,
        progress: &mut dyn FnMut(u64),
    ) {
        let ConvertScratch { decode, map } = scratch;
        map.clear_truncated();
        decode.onepass = OnePassCounts::default();
        (map.onepass_messages, map.onepass_fallbacks) = (0, 0);
        map.onepass_ahead = 0;
        map.scan.gave_up = 0;
        let sink = Sink {
            mapper: &self.mapper,
            scratch: map,
            out,
            flush,
            reject_bytes: Some(0),
            onepass: self.onepass,
            progress,
        };
        let stats = match self.decoder.decode(object, data, decode, sink) {
            Ok(s) => s,
            Err(never) => match never {},
        };
        out.decode.add(&stats);
        let mut counts = decode.onepass;
        counts.messages =
            map.onepass_messages.saturating_sub(map.onepass_fallbacks);
        counts.message_fallbacks = map.onepass_fallbacks;
        counts.ahead = map.onepass_ahead;
        // A message the state machine then refused was unescaped too.
        counts.state_machine =
            map.scan.gave_up.saturating_sub(map.onepass_fallbacks);
        out.onepass.add(&counts);
        if map.truncated.iter().any(|&n| n > 0) {
            let n = self.mapper.column_names().len();
            if out.truncated.len() < n {
                out.truncated.resize(n, 0);
            }
            for (sum, &k) in out.truncated.iter_mut().zip(&map.truncated) {
                *sum = sum.saturating_add(k);
            }
            map.clear_truncated();
        }
    }
}
