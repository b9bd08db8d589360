//! Decode: Firehose S3 objects → CloudWatch Logs events.
//!
//! [`Decoder::decode`] is the push driver: it sniffs the object's variant,
//! walks its gzip members (or JSON documents, or lines), parses each
//! envelope with simd-json into a tape that borrows the inflated buffer,
//! and hands every [`LogEvent`] to an [`EventSink`]. Input that cannot be
//! decoded goes to [`EventSink::reject`] as an [`Error`] naming the object,
//! member and offsets; decoding goes on wherever framing allows.

mod envelope;
mod frame;
mod gzip;
mod libdeflate;
pub(crate) mod onepass;
mod sink;
mod source;

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::str::FromStr;

use simd_json::{Buffers, ErrorType, Tape};

pub use self::sink::{Envelope, EventSink, FnSink, LogEvent, PROGRESS_STEP};

use self::envelope::{Id, MessageType};
use self::frame::{doc_end, whitespace, DocEnd};
use self::gzip::{Inflate, PAD};
use self::source::{ReadSource, SliceSource, Source};
use crate::error::{Error, ErrorKind, Location};
use crate::map::scan::Prescanned;

/// The layout of an object's bytes, one per Firehose configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// Sniff it from the first bytes (and the first member's content).
    #[default]
    Auto,
    /// Concatenated gzip members, one envelope each (Firehose default).
    Gzip,
    /// Firehose's "S3 compression: GZIP" on top of [`Variant::Gzip`].
    GzipOverGzip,
    /// Plain envelopes, concatenated or newline-delimited (Firehose's
    /// "decompression of CloudWatch Logs").
    Json,
    /// One message per line, no envelope (Firehose's "message
    /// extraction").
    Lines,
}

impl Variant {
    /// The variant's name as the CLI spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Variant::Auto => "auto",
            Variant::Gzip => "gzip",
            Variant::GzipOverGzip => "gzip-over-gzip",
            Variant::Json => "json",
            Variant::Lines => "lines",
        }
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Variant::Auto,
            "gzip" => Variant::Gzip,
            "gzip-over-gzip" => Variant::GzipOverGzip,
            "json" => Variant::Json,
            "lines" => Variant::Lines,
            _ => {
                return Err(format!(
                    "unknown variant {s:?} (auto, gzip, gzip-over-gzip, json, lines)"
                ))
            }
        })
    }
}

/// Counts from decoding: every input byte ends up in events, control
/// messages, whitespace, or a reported error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[must_use = "the counts are how a run proves nothing was lost"]
pub struct DecodeStats {
    /// Objects decoded.
    pub objects: u64,
    /// Gzip members (or JSON documents) read, good or bad.
    pub members: u64,
    /// Envelopes parsed, control messages included.
    pub envelopes: u64,
    /// `CONTROL_MESSAGE` envelopes skipped.
    pub control_messages: u64,
    /// Events handed to the sink.
    pub events: u64,
    /// Errors handed to the sink.
    pub errors: u64,
    /// Whitespace bytes skipped between members, documents or lines.
    pub whitespace_bytes: u64,
    /// Bytes of input.
    pub input_bytes: u64,
    /// Bytes after inflating (equal to the input for unframed variants).
    pub inflated_bytes: u64,
}

impl DecodeStats {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &DecodeStats) {
        self.objects += other.objects;
        self.members += other.members;
        self.envelopes += other.envelopes;
        self.control_messages += other.control_messages;
        self.events += other.events;
        self.errors += other.errors;
        self.whitespace_bytes += other.whitespace_bytes;
        self.input_bytes += other.input_bytes;
        self.inflated_bytes += other.inflated_bytes;
    }
}

/// Builds a [`Decoder`]; every setting has a documented default.
#[derive(Clone, Debug)]
pub struct DecoderBuilder {
    variant: Variant,
    max_member_bytes: u64,
    max_object_bytes: u64,
    max_depth: usize,
    libdeflate: bool,
}

impl Default for DecoderBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DecoderBuilder {
    /// Defaults: auto-detect the variant; 64 MiB per inflated member (or
    /// JSON document, or line: a CloudWatch Logs record inflates to about
    /// 1 MB, so this is far above real input and keeps a decompression
    /// bomb's memory small); 8 GiB per inflated object; JSON nesting up
    /// to 128; libdeflate for members held in memory.
    #[must_use]
    pub fn new() -> Self {
        DecoderBuilder {
            variant: Variant::Auto,
            max_member_bytes: 64 << 20,
            max_object_bytes: 8 << 30,
            max_depth: 128,
            libdeflate: true,
        }
    }

    /// Forces a variant instead of sniffing one.
    pub fn variant(&mut self, variant: Variant) -> &mut Self {
        self.variant = variant;
        self
    }

    /// Largest inflated member, JSON document or line, in bytes. A member
    /// over it is rejected with [`ErrorKind::MemberTooLarge`] (the next one
    /// is still read). Memory use is about this much per decoding thread.
    pub fn max_member_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_member_bytes = bytes.max(1);
        self
    }

    /// Largest inflated object, in bytes. Past it, the rest of the object
    /// is rejected with [`ErrorKind::ObjectTooLarge`].
    pub fn max_object_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_object_bytes = bytes.max(1);
        self
    }

    /// Deepest JSON nesting accepted in an envelope.
    pub fn max_depth(&mut self, depth: usize) -> &mut Self {
        self.max_depth = depth.max(2);
        self
    }

    /// Use libdeflate (the default) or only zlib-rs for members.
    pub fn libdeflate(&mut self, yes: bool) -> &mut Self {
        self.libdeflate = yes;
        self
    }

    /// The decoder.
    #[must_use]
    pub fn build(&self) -> Decoder {
        Decoder { cfg: self.clone() }
    }
}

/// Decodes objects; cheap to share between threads. Build with
/// [`DecoderBuilder`].
#[derive(Clone, Debug)]
pub struct Decoder {
    cfg: DecoderBuilder,
}

impl Default for Decoder {
    fn default() -> Self {
        DecoderBuilder::new().build()
    }
}

/// Buffers reused from object to object: keep one per thread.
pub struct Scratch {
    inflate: Inflate,
    doc: Vec<u8>,
    simd: Buffers,
    depth: usize,
    tape: Option<Tape<'static>>,
    /// The events of an envelope on the one-pass path.
    fast: Vec<onepass::FastEvent>,
    /// Their messages as the sink scanned them ahead
    /// ([`EventSink::prescan`]).
    ahead: Option<Prescanned<'static>>,
    /// Envelopes that took the one-pass path, and those that fell back
    /// to simd-json (for a sink that [wants escaped
    /// messages](EventSink::wants_escaped)).
    pub(crate) onepass: OnePassCounts,
}

/// How many envelopes and messages took the one-pass path of `convert`,
/// and how many fell back to the oracle path (simd-json's envelope, the
/// unescaped message's scan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[doc(hidden)]
pub struct OnePassCounts {
    /// Envelopes read by the one-pass reader.
    pub envelopes: u64,
    /// Envelopes parsed with simd-json instead.
    pub envelope_fallbacks: u64,
    /// Messages mapped in their escaped form.
    pub messages: u64,
    /// Messages unescaped and mapped by the oracle path instead.
    pub message_fallbacks: u64,
    /// Of the messages mapped in their escaped form, those the scanner's
    /// fast path gave up on and its state machine read.
    pub state_machine: u64,
    /// Of the messages mapped in their escaped form, those scanned as the
    /// envelope reader met them, which found their end too
    /// ([`EventSink::prescan`]).
    pub ahead: u64,
}

impl OnePassCounts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &OnePassCounts) {
        self.envelopes += other.envelopes;
        self.envelope_fallbacks += other.envelope_fallbacks;
        self.messages += other.messages;
        self.message_fallbacks += other.message_fallbacks;
        self.state_machine += other.state_machine;
        self.ahead += other.ahead;
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// Empty buffers; they grow to the largest member seen.
    #[must_use]
    pub fn new() -> Self {
        Scratch {
            inflate: Inflate::new(),
            doc: Vec::new(),
            simd: Buffers::default(),
            depth: 0,
            tape: None,
            fast: Vec::new(),
            ahead: None,
            onepass: OnePassCounts::default(),
        }
    }
}

/// How to read an object, from sniffing or `--variant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Members,
    Docs,
    Lines,
}

/// The state of one `decode` call.
struct Run<'o, S> {
    object: &'o str,
    sink: S,
    stats: DecodeStats,
    max_member: usize,
    max_object: u64,
    max_depth: usize,
    libdeflate: bool,
    /// Input bytes consumed, where the framing reads an inflated stream
    /// (gzip over gzip); `None`: the source's offset is the input's.
    consumed: Option<&'o Cell<u64>>,
    /// The last figure given to [`EventSink::progress`].
    reported: u64,
}

impl<S: EventSink> Run<'_, S> {
    fn reject(
        &mut self,
        kind: ErrorKind,
        member: Option<u64>,
        offset: u64,
        inflated: Option<u64>,
    ) -> Result<(), S::Error> {
        self.stats.errors += 1;
        let mut loc = Location::new(self.object, member, offset);
        loc.inflated_offset = inflated;
        self.sink.reject(Error::new(kind, loc))
    }

    /// Tells the sink how much input has been read, once every
    /// [`PROGRESS_STEP`] bytes; `offset` is the source's.
    fn progress(&mut self, offset: u64) {
        let at = self.consumed.map_or(offset, Cell::get);
        if at >= self.reported.saturating_add(PROGRESS_STEP) {
            self.reported = at;
            self.sink.progress(at);
        }
    }
}

/// The object's bytes as a [`BufRead`] that counts what it has given out,
/// for the progress of an outer gzip stream.
struct Counted<'d, 'c> {
    data: &'d [u8],
    pos: usize,
    consumed: &'c Cell<u64>,
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.read(out)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Counted<'_, '_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.data.get(self.pos..).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.data.len());
        self.consumed.set(self.pos as u64);
    }
}

fn json_error(e: &simd_json::Error) -> ErrorKind {
    match e.error() {
        ErrorType::Eof => ErrorKind::JsonTruncated,
        ErrorType::InvalidUtf8 => ErrorKind::Utf8,
        ErrorType::InvalidUnicodeCodepoint
        | ErrorType::InvalidUnicodeEscape => ErrorKind::UnicodeEscape,
        ErrorType::DepthLimitExceeded => ErrorKind::TooDeep { limit: 0 },
        other => ErrorKind::Json(format!("{other:?}")),
    }
}

/// Parses `buf[..len]` (followed by at least [`PAD`] bytes) as one
/// envelope and emits its events.
#[allow(clippy::too_many_arguments)]
fn emit_envelope<S: EventSink>(
    run: &mut Run<'_, S>,
    buf: &mut [u8],
    len: usize,
    simd: &mut Buffers,
    tape_slot: &mut Option<Tape<'static>>,
    fast: &mut Vec<onepass::FastEvent>,
    ahead: &mut Option<Prescanned<'static>>,
    counts: &mut OnePassCounts,
    member: u64,
    offset: u64,
) -> Result<(), S::Error> {
    if run.sink.wants_escaped() {
        // Each message is scanned as the reader meets it, which finds its
        // end too (`EventSink::prescan`).
        let doc = buf.get(..len).unwrap_or_default();
        let mut pre = ahead.take().unwrap_or_default().reset();
        let sink = &mut run.sink;
        let mut scan = onepass::ahead_hook(|text, at| {
            sink.prescan(text.get(at..)?, &mut pre)
        });
        let read = onepass::parse_ahead(doc, fast, Some(&mut scan));
        let emitted = read.map(|env| {
            counts.envelopes += 1;
            emit_fast(run, &env, fast, &pre, member)
        });
        *ahead = Some(pre.reset());
        if let Some(result) = emitted {
            return result;
        }
        counts.envelope_fallbacks += 1;
    }
    // Looked at before simd-json rewrites strings in place: a document
    // whose last non-blank byte is not `}` was cut short.
    let truncated = !ends_with_brace(buf.get(..len));
    let mut tape: Tape<'_> =
        tape_slot.take().unwrap_or_else(Tape::null).reset();
    let parsed = simd_json::fill_tape_padded(buf, len, simd, &mut tape);
    let result = match parsed {
        Err(e) => {
            let kind = match json_error(&e) {
                ErrorKind::TooDeep { .. } => {
                    ErrorKind::TooDeep { limit: run.max_depth }
                }
                // simd-json reports an unclosed document as a syntax error.
                ErrorKind::Json(_) if truncated => ErrorKind::JsonTruncated,
                k => k,
            };
            run.reject(kind, Some(member), offset, Some(e.index() as u64))
        }
        Ok(()) => emit_tape(run, &tape.0, member, offset),
    };
    *tape_slot = Some(tape.reset());
    result
}

/// Emits the events of an envelope the one-pass reader read.
fn emit_fast<'a, S: EventSink>(
    run: &mut Run<'_, S>,
    env: &onepass::FastEnvelope<'a>,
    events: &[onepass::FastEvent],
    pre: &Prescanned<'a>,
    member: u64,
) -> Result<(), S::Error> {
    run.stats.envelopes += 1;
    if env.kind == MessageType::Control {
        run.stats.control_messages += 1;
        return Ok(());
    }
    for ev in events {
        let (id, timestamp, escaped, quotes_only) = env.event(ev);
        run.stats.events += 1;
        let event = LogEvent {
            object: run.object,
            member: Some(member),
            envelope: Some(&env.envelope),
            id: Some(id),
            timestamp: Some(timestamp),
            message: "",
        };
        match pre.get(ev.ahead) {
            Some(scanned) => run.sink.scanned_event(
                &event,
                escaped,
                quotes_only,
                scanned,
            )?,
            None => run.sink.escaped_event(&event, escaped, quotes_only)?,
        }
    }
    Ok(())
}

fn ends_with_brace(doc: Option<&[u8]>) -> bool {
    let doc = doc.unwrap_or_default();
    let end =
        doc.iter().rposition(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'));
    end.and_then(|i| doc.get(i)) == Some(&b'}')
}

fn emit_tape<S: EventSink>(
    run: &mut Run<'_, S>,
    tape: &[simd_json::Node<'_>],
    member: u64,
    offset: u64,
) -> Result<(), S::Error> {
    let parsed = match envelope::parse(tape) {
        Ok(p) => p,
        Err(why) => {
            return run.reject(
                ErrorKind::Envelope(why),
                Some(member),
                offset,
                None,
            )
        }
    };
    run.stats.envelopes += 1;
    if parsed.kind == MessageType::Control {
        run.stats.control_messages += 1;
        return Ok(());
    }
    let env = parsed.envelope;
    for ev in envelope::events(tape, parsed.events_at) {
        match ev {
            Ok(raw) => {
                let mut digits = itoa::Buffer::new();
                let id = match raw.id {
                    Id::Str(s) => s,
                    Id::Int(n) => digits.format(n),
                };
                run.stats.events += 1;
                run.sink.event(&LogEvent {
                    object: run.object,
                    member: Some(member),
                    envelope: Some(&env),
                    id: Some(id),
                    timestamp: Some(raw.timestamp),
                    message: raw.message,
                })?;
            }
            Err(why) => run.reject(
                ErrorKind::Envelope(why),
                Some(member),
                offset,
                None,
            )?,
        }
    }
    Ok(())
}

/// Skips whitespace at the front of `src`, counting it; false at the end.
fn skip_whitespace<S: Source>(
    src: &mut S,
    stats: &mut DecodeStats,
) -> Result<bool, ErrorKind> {
    loop {
        let n = whitespace(src.avail());
        stats.whitespace_bytes += n as u64;
        src.consume(n);
        if !src.avail().is_empty() {
            return Ok(true);
        }
        if !src.fill()? {
            return Ok(false);
        }
    }
}

/// Consumes everything left in `src`, returning how many bytes it was.
fn drain<S: Source>(src: &mut S) -> u64 {
    let mut n = 0u64;
    loop {
        let k = src.avail().len();
        n += k as u64;
        src.consume(k);
        if !matches!(src.fill(), Ok(true)) {
            return n;
        }
    }
}

impl Decoder {
    /// A decoder with the default settings of [`DecoderBuilder::new`].
    #[must_use]
    pub fn new() -> Self {
        DecoderBuilder::new().build()
    }

    /// Decodes one object held in memory, calling `sink` for every event
    /// and every rejected piece of input, in input order.
    ///
    /// `object` names the object in errors and events (an S3 key or a
    /// path). Memory use is bounded by `data` plus about one inflated
    /// member, whatever the object's size.
    ///
    /// # Errors
    ///
    /// Only the sink's own errors: bad input is reported to the sink.
    pub fn decode<S: EventSink>(
        &self,
        object: &str,
        data: &[u8],
        scratch: &mut Scratch,
        sink: S,
    ) -> Result<DecodeStats, S::Error> {
        let consumed = Cell::new(0u64);
        let mut run = Run {
            object,
            sink,
            stats: DecodeStats {
                objects: 1,
                input_bytes: data.len() as u64,
                ..DecodeStats::default()
            },
            max_member: usize::try_from(self.cfg.max_member_bytes)
                .unwrap_or(usize::MAX),
            max_object: self.cfg.max_object_bytes,
            max_depth: self.cfg.max_depth,
            libdeflate: self.cfg.libdeflate,
            consumed: None,
            reported: 0,
        };
        if scratch.depth != self.cfg.max_depth {
            scratch.simd =
                Buffers::with_max_depth(64 * 1024, self.cfg.max_depth);
            scratch.depth = self.cfg.max_depth;
        }
        let plan = match self.cfg.variant {
            Variant::Auto => self.sniff(data, scratch),
            Variant::Gzip => Ok((Framing::Members, false)),
            Variant::GzipOverGzip => Ok((Framing::Members, true)),
            Variant::Json => Ok((Framing::Docs, false)),
            Variant::Lines => Ok((Framing::Lines, false)),
        };
        let (framing, outer) = match plan {
            Ok(p) => p,
            Err(what) => {
                run.reject(ErrorKind::Unsupported(what), None, 0, None)?;
                return Ok(run.stats);
            }
        };
        if outer {
            run.consumed = Some(&consumed);
            let gz = flate2::bufread::MultiGzDecoder::new(Counted {
                data,
                pos: 0,
                consumed: &consumed,
            });
            let window = run.max_member.saturating_add(PAD);
            let mut src = ReadSource::new(gz, window, run.max_object);
            self.frame(&mut run, &mut src, framing, scratch)?;
        } else {
            let mut src = SliceSource::new(data);
            self.frame(&mut run, &mut src, framing, scratch)?;
            if framing != Framing::Members {
                run.stats.inflated_bytes = data.len() as u64;
            }
        }
        Ok(run.stats)
    }

    fn frame<S: EventSink, Src: Source>(
        &self,
        run: &mut Run<'_, S>,
        src: &mut Src,
        framing: Framing,
        scratch: &mut Scratch,
    ) -> Result<(), S::Error> {
        let result = match framing {
            Framing::Members => self.members(run, src, scratch),
            Framing::Docs => self.docs(run, src, scratch),
            Framing::Lines => self.lines(run, src),
        };
        match result {
            Ok(()) => Ok(()),
            Err(Stop::Sink(e)) => Err(e),
            Err(Stop::Input(kind, member)) => {
                let at = src.offset();
                let len = drain(src);
                run.reject(
                    ErrorKind::Unreadable { len, cause: Box::new(kind) },
                    member,
                    at,
                    None,
                )
            }
        }
    }

    fn members<S: EventSink, Src: Source>(
        &self,
        run: &mut Run<'_, S>,
        src: &mut Src,
        scratch: &mut Scratch,
    ) -> Result<(), Stop<S::Error>> {
        let mut member = 0u64;
        let mut inflated_total = 0u64;
        while skip_whitespace(src, &mut run.stats)
            .map_err(|k| Stop::Input(k, Some(member)))?
        {
            let offset = src.offset();
            run.progress(offset);
            if src.avail().first() != Some(&0x1f) {
                let len = drain(src);
                run.reject(
                    ErrorKind::TrailingGarbage { len },
                    Some(member),
                    offset,
                    None,
                )
                .map_err(Stop::Sink)?;
                return Ok(());
            }
            run.stats.members += 1;
            let limit = run.max_member.min(
                usize::try_from(run.max_object.saturating_sub(inflated_total))
                    .unwrap_or(usize::MAX),
            );
            match scratch.inflate.member(src, limit, run.libdeflate) {
                Ok(n) => {
                    inflated_total += n as u64;
                    run.stats.inflated_bytes += n as u64;
                    let Scratch {
                        inflate,
                        simd,
                        tape,
                        fast,
                        ahead,
                        onepass,
                        ..
                    } = scratch;
                    let content = inflate.buf.get(..n).unwrap_or_default();
                    if whitespace(content) == n {
                        // An empty (or blank) member holds no envelope.
                        run.stats.whitespace_bytes += n as u64;
                        member += 1;
                        continue;
                    }
                    emit_envelope(
                        run,
                        &mut inflate.buf,
                        n,
                        simd,
                        tape,
                        fast,
                        ahead,
                        onepass,
                        member,
                        offset,
                    )
                    .map_err(Stop::Sink)?;
                }
                Err(e) => {
                    let kind = match e.kind {
                        ErrorKind::MemberTooLarge { .. }
                            if limit < run.max_member =>
                        {
                            ErrorKind::ObjectTooLarge { limit: run.max_object }
                        }
                        k => k,
                    };
                    if !e.framing_ok {
                        // Report from the member's start: nothing after it can be framed.
                        let len =
                            drain(src) + src.offset().saturating_sub(offset);
                        run.reject(
                            ErrorKind::Unreadable {
                                len,
                                cause: Box::new(kind),
                            },
                            Some(member),
                            offset,
                            e.inflated_offset,
                        )
                        .map_err(Stop::Sink)?;
                        return Ok(());
                    }
                    if matches!(kind, ErrorKind::ObjectTooLarge { .. }) {
                        run.reject(
                            kind,
                            Some(member),
                            offset,
                            e.inflated_offset,
                        )
                        .map_err(Stop::Sink)?;
                        let at = src.offset();
                        let len = drain(src);
                        if len > 0 {
                            run.reject(
                                ErrorKind::Unreadable {
                                    len,
                                    cause: Box::new(
                                        ErrorKind::ObjectTooLarge {
                                            limit: run.max_object,
                                        },
                                    ),
                                },
                                Some(member + 1),
                                at,
                                None,
                            )
                            .map_err(Stop::Sink)?;
                        }
                        return Ok(());
                    }
                    run.reject(kind, Some(member), offset, e.inflated_offset)
                        .map_err(Stop::Sink)?;
                }
            }
            member += 1;
        }
        Ok(())
    }

    fn docs<S: EventSink, Src: Source>(
        &self,
        run: &mut Run<'_, S>,
        src: &mut Src,
        scratch: &mut Scratch,
    ) -> Result<(), Stop<S::Error>> {
        let mut doc = 0u64;
        while skip_whitespace(src, &mut run.stats)
            .map_err(|k| Stop::Input(k, Some(doc)))?
        {
            let offset = src.offset();
            run.progress(offset);
            let end = loop {
                match doc_end(src.avail()) {
                    DocEnd::At(n) => break Some(n),
                    DocEnd::NotObject => break None,
                    DocEnd::NeedMore => {
                        let more = src
                            .fill()
                            .map_err(|k| Stop::Input(k, Some(doc)))?;
                        if !more {
                            let len = drain(src);
                            run.reject(
                                ErrorKind::Unreadable {
                                    len,
                                    cause: Box::new(ErrorKind::JsonTruncated),
                                },
                                Some(doc),
                                offset,
                                None,
                            )
                            .map_err(Stop::Sink)?;
                            return Ok(());
                        }
                    }
                }
            };
            run.stats.members += 1;
            let Some(end) = end else {
                // Not JSON here: reject up to the next line or object.
                let rest = src.avail();
                let skip = rest
                    .iter()
                    .skip(1)
                    .position(|&c| c == b'\n' || c == b'{')
                    .map_or(rest.len(), |p| p + 1);
                src.consume(skip);
                run.reject(
                    ErrorKind::Json(format!(
                        "{skip} bytes that do not start a JSON object"
                    )),
                    Some(doc),
                    offset,
                    None,
                )
                .map_err(Stop::Sink)?;
                doc += 1;
                continue;
            };
            if end > run.max_member {
                src.consume(end);
                run.reject(
                    ErrorKind::MemberTooLarge { limit: run.max_member as u64 },
                    Some(doc),
                    offset,
                    None,
                )
                .map_err(Stop::Sink)?;
                doc += 1;
                continue;
            }
            let Scratch {
                doc: copy, simd, tape, fast, ahead, onepass, ..
            } = scratch;
            copy.clear();
            copy.extend_from_slice(src.avail().get(..end).unwrap_or_default());
            copy.resize(end + PAD, 0);
            src.consume(end);
            emit_envelope(
                run, copy, end, simd, tape, fast, ahead, onepass, doc, offset,
            )
            .map_err(Stop::Sink)?;
            doc += 1;
        }
        Ok(())
    }

    fn lines<S: EventSink, Src: Source>(
        &self,
        run: &mut Run<'_, S>,
        src: &mut Src,
    ) -> Result<(), Stop<S::Error>> {
        let mut line = 0u64;
        loop {
            let offset = src.offset();
            run.progress(offset);
            let avail = src.avail();
            let (end, next) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i, i + 1),
                None => {
                    let more =
                        src.fill().map_err(|k| Stop::Input(k, Some(line)))?;
                    if more {
                        continue;
                    }
                    if src.avail().is_empty() {
                        return Ok(());
                    }
                    (src.avail().len(), src.avail().len())
                }
            };
            let avail = src.avail();
            let mut text = avail.get(..end).unwrap_or_default();
            if let Some(t) = text.strip_suffix(b"\r") {
                text = t;
            }
            if whitespace(text) == text.len() {
                run.stats.whitespace_bytes += next as u64;
            } else {
                run.stats.members += 1;
                match std::str::from_utf8(text) {
                    Ok(message) => {
                        run.stats.events += 1;
                        run.sink
                            .event(&LogEvent {
                                object: run.object,
                                member: None,
                                envelope: None,
                                id: None,
                                timestamp: None,
                                message,
                            })
                            .map_err(Stop::Sink)?;
                    }
                    Err(e) => {
                        run.reject(
                            ErrorKind::Utf8,
                            Some(line),
                            offset,
                            Some(e.valid_up_to() as u64),
                        )
                        .map_err(Stop::Sink)?;
                    }
                }
            }
            src.consume(next);
            line += 1;
        }
    }

    /// Picks the framing from the first bytes; `Err` names an unsupported
    /// format.
    fn sniff(
        &self,
        data: &[u8],
        scratch: &mut Scratch,
    ) -> Result<(Framing, bool), &'static str> {
        let start = whitespace(data);
        let head = data.get(start..).unwrap_or_default();
        const MAGICS: [(&[u8], &str); 6] = [
            (b"PK\x03\x04", "ZIP (Firehose S3 compression ZIP)"),
            (
                b"\xff\x06\x00\x00sNaPpY",
                "Snappy framing (Firehose S3 compression Snappy)",
            ),
            (b"PAR1", "Parquet (Firehose record format conversion)"),
            (b"ORC", "ORC (Firehose record format conversion)"),
            (b"BZh", "bzip2"),
            (b"\x28\xb5\x2f\xfd", "zstd"),
        ];
        if let Some((_, what)) =
            MAGICS.iter().find(|(m, _)| head.starts_with(m))
        {
            return Err(what);
        }
        if !head.starts_with(&[0x1f, 0x8b]) {
            let Scratch { doc, simd, tape, .. } = scratch;
            return Ok(if is_envelope(head, doc, simd, tape) {
                (Framing::Docs, false)
            } else {
                (Framing::Lines, false)
            });
        }
        let mut src = SliceSource::new(head);
        let limit =
            usize::try_from(self.cfg.max_member_bytes).unwrap_or(usize::MAX);
        let Ok(n) =
            scratch.inflate.member(&mut src, limit, self.cfg.libdeflate)
        else {
            return Ok((Framing::Members, false));
        };
        let Scratch { inflate, doc, simd, tape, .. } = scratch;
        let content = inflate.buf.get(..n).unwrap_or_default();
        let ws = whitespace(content);
        let body = content.get(ws..).unwrap_or_default();
        if body.starts_with(&[0x1f, 0x8b]) {
            return Ok((Framing::Members, true));
        }
        match doc_end(body) {
            DocEnd::At(end) => {
                let rest = body.get(end..).unwrap_or_default();
                let single = whitespace(rest) == rest.len();
                if !is_envelope(body, doc, simd, tape) {
                    Ok((Framing::Lines, true))
                } else if single {
                    Ok((Framing::Members, false))
                } else {
                    Ok((Framing::Docs, true))
                }
            }
            // A broken first envelope: let the member loop report it. Text
            // that merely starts with `{` is extracted lines.
            DocEnd::NeedMore if names_envelope_keys(body) => {
                Ok((Framing::Members, false))
            }
            DocEnd::NeedMore => Ok((Framing::Lines, true)),
            DocEnd::NotObject if body.is_empty() => {
                Ok((Framing::Members, false))
            }
            DocEnd::NotObject => Ok((Framing::Lines, true)),
        }
    }
}

/// Whether the JSON document at the start of `b` is an envelope (an
/// object with `logEvents` or `messageType`). Reuses the scratch buffers.
fn is_envelope(
    b: &[u8],
    doc: &mut Vec<u8>,
    simd: &mut Buffers,
    tape_slot: &mut Option<Tape<'static>>,
) -> bool {
    let end = match doc_end(b) {
        DocEnd::At(end) => end,
        // An unclosed object: an envelope cut short (to be reported as
        // such) if it names envelope keys early on, else a line of text.
        DocEnd::NeedMore => return names_envelope_keys(b),
        DocEnd::NotObject => return false,
    };
    doc.clear();
    doc.extend_from_slice(b.get(..end).unwrap_or_default());
    doc.resize(end + PAD, 0);
    let mut tape: Tape<'_> =
        tape_slot.take().unwrap_or_else(Tape::null).reset();
    let found = simd_json::fill_tape_padded(doc, end, simd, &mut tape).is_ok()
        && has_envelope_key(&tape.0);
    *tape_slot = Some(tape.reset());
    found
}

/// Whether the first 4 KiB of an unclosed JSON object name an envelope
/// key (`"logEvents"` or `"messageType"`).
fn names_envelope_keys(b: &[u8]) -> bool {
    let head = b.get(..b.len().min(4096)).unwrap_or_default();
    memchr::memmem::find(head, b"\"logEvents\"").is_some()
        || memchr::memmem::find(head, b"\"messageType\"").is_some()
}

fn has_envelope_key(tape: &[simd_json::Node<'_>]) -> bool {
    let Some(simd_json::Node::Object { len, .. }) = tape.first() else {
        return false;
    };
    let mut i = 1;
    for _ in 0..*len {
        if let Some(simd_json::Node::String("logEvents" | "messageType")) =
            tape.get(i)
        {
            return true;
        }
        i += 1 + envelope::node_len(tape, i + 1);
    }
    false
}

/// Why a framing loop stopped early.
enum Stop<E> {
    Sink(E),
    Input(ErrorKind, Option<u64>),
}

/// Inflates every gzip member of `data` and nothing else: the floor the
/// benchmarks compare decoding with. Returns the inflated byte count, or
/// `None` at the first bad member.
#[doc(hidden)]
#[must_use]
pub fn inflate_members(
    data: &[u8],
    scratch: &mut Scratch,
    libdeflate: bool,
) -> Option<u64> {
    let mut src = SliceSource::new(data);
    let mut total = 0u64;
    while !src.avail().is_empty() {
        let n =
            scratch.inflate.member(&mut src, 256 << 20, libdeflate).ok()?;
        total += n as u64;
    }
    Some(total)
}
