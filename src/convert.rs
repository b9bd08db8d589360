//! Decode → map → write for one object: the unit of work that `convert`
//! and `load` run on rayon, one object per task.

use std::convert::Infallible;

use crate::decode::{DecodeStats, Decoder, EventSink, LogEvent, Scratch};
use crate::error::Error;
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
    /// Rejected events and undecodable input, one JSON object per line:
    /// `object`, `member`, `id`, `timestamp`, `kind`, `column`, `reason`,
    /// `message`.
    pub rejects: Vec<u8>,
    /// Event counts.
    pub counts: Counts,
    /// Decode counts.
    pub decode: DecodeStats,
    /// Input the decoder could not read.
    pub errors: Vec<Error>,
}

impl ObjectOutput {
    /// Empties the output, keeping its buffers.
    pub fn clear(&mut self) {
        self.csv.clear();
        self.rejects.clear();
        self.counts = Counts::default();
        self.decode = DecodeStats::default();
        self.errors.clear();
    }
}

#[derive(serde::Serialize)]
struct RejectLine<'a> {
    object: &'a str,
    member: Option<u64>,
    id: Option<&'a str>,
    timestamp: Option<i64>,
    kind: &'a str,
    column: Option<&'a str>,
    reason: &'a str,
    message: Option<&'a str>,
    offset: Option<u64>,
}

/// Turns objects into CSV rows with a [`Decoder`] and a [`Mapper`].
#[derive(Debug)]
pub struct Converter {
    decoder: Decoder,
    mapper: Mapper,
}

struct Sink<'m> {
    mapper: &'m Mapper,
    scratch: &'m mut MapScratch,
    out: &'m mut ObjectOutput,
}

impl EventSink for Sink<'_> {
    type Error = Infallible;

    fn event(&mut self, ev: &LogEvent<'_>) -> Result<(), Infallible> {
        let out = &mut *self.out;
        out.counts.events += 1;
        match self.mapper.map(ev, self.scratch, &mut out.csv) {
            MapOutcome::Row => out.counts.rows += 1,
            MapOutcome::Filtered => out.counts.filtered_out += 1,
            MapOutcome::Rejected(r) => {
                out.counts.rejected += 1;
                let line = RejectLine {
                    object: ev.object,
                    member: ev.member,
                    id: ev.id,
                    timestamp: ev.timestamp,
                    kind: "rejected_event",
                    column: r.column.as_deref(),
                    reason: &r.reason,
                    message: Some(ev.message),
                    offset: None,
                };
                write_line(&mut out.rejects, &line);
            }
        }
        Ok(())
    }

    fn reject(&mut self, e: Error) -> Result<(), Infallible> {
        let loc = e.location();
        let reason = e.kind().to_string();
        let line = RejectLine {
            object: &loc.object,
            member: loc.member,
            id: None,
            timestamp: None,
            kind: e.code(),
            column: None,
            reason: &reason,
            message: None,
            offset: Some(loc.member_offset),
        };
        write_line(&mut self.out.rejects, &line);
        self.out.errors.push(e);
        Ok(())
    }
}

fn write_line(out: &mut Vec<u8>, line: &RejectLine<'_>) {
    // Writing JSON into a Vec cannot fail: every field serialises.
    if serde_json::to_writer(&mut *out, line).is_ok() {
        out.push(b'\n');
    }
}

impl Converter {
    /// A converter from a decoder and a mapper.
    #[must_use]
    pub fn new(decoder: Decoder, mapper: Mapper) -> Self {
        Converter { decoder, mapper }
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
        let ConvertScratch { decode, map } = scratch;
        let sink = Sink { mapper: &self.mapper, scratch: map, out };
        let stats = match self.decoder.decode(object, data, decode, sink) {
            Ok(s) => s,
            Err(never) => match never {},
        };
        out.decode.add(&stats);
    }
}
