//! Column plans: the common cases of [`Mapper::column`] decided once per
//! spec, not once per field.
//!
//! The general path takes every field through the same layers: the
//! source to a [`Val`](super::Val), the value and kind to converted text
//! ([`Conv`](super::Conv)), then NUL, limit and marker checks, each a
//! `match` on what the spec fixed long before the event came. On a log
//! line those layers cost more instructions than the scan that found the
//! values. A plan is the column's source and kind matched once, at
//! [`Mapper::new`]: a path the scanner's slots resolve whole, an envelope
//! string, `@timestamp`, the escaped `@message`. For each event,
//! [`Mapper::planned`] writes the field when its value is of the kind's
//! plain case (a string within every limit and with no NUL, an integer,
//! a float whose lexeme is what `ryu` prints, a time in range, a compact
//! JSON container) and otherwise writes nothing and returns `false`, so
//! the general path decides, with its defaults, mismatches, truncation
//! and rejects. A plan therefore never has to be right about a value it
//! declines, only about one it writes, and there it writes exactly the
//! bytes the general path writes.
//!
//! The oracle ([`Mapper::keep_all`]) has no plans: every test and fuzz
//! input that compares the pruned mapper with it compares the two paths.

use simd_json::{Node, StaticNode};

use super::convert;
use super::spec::{Column, Kind, Meta, Source};
use super::{borrowed_from, envelope_str, slot_start, Json, Mapper, Message};
use crate::decode::LogEvent;
use crate::write::RowWriter;

/// What [`Mapper::planned`] does for one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Nothing: the general path.
    General,
    /// `@timestamp` as `timestamp`.
    Timestamp,
    /// An envelope string as `text` of at most `max` bytes (and the
    /// database's field limit).
    Envelope { meta: Meta, max: usize },
    /// A path resolved whole by the slot of trie node `slot`
    /// (`Want::locate` used every segment), as `text` of at most `max`
    /// bytes.
    Text { slot: u32, max: usize },
    /// Such a path as `json` of at most `max` bytes, on the one-pass path.
    Json { slot: u32, max: usize },
    /// Such a path as `int`.
    Int { slot: u32 },
    /// Such a path as `float`.
    Float { slot: u32 },
    /// `@message` as `text` of at most `max` bytes, on the one-pass path.
    Message { max: usize },
}

/// The plan of each column, for a mapper whose paths are at `located`.
pub(super) fn plans(
    columns: &[Column],
    located: &[Option<(u32, usize)>],
) -> Vec<Plan> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let slot = match (&c.source, located.get(i).copied().flatten()) {
                (Source::Path(p), Some((node, used)))
                    if node != 0 && used == p.segments.len() =>
                {
                    Some(node)
                }
                _ => None,
            };
            match (&c.source, c.kind, slot) {
                (_, Kind::Text { max_bytes, .. }, Some(slot)) => {
                    Plan::Text { slot, max: max_bytes }
                }
                (_, Kind::Json { max_bytes }, Some(slot)) => {
                    Plan::Json { slot, max: max_bytes }
                }
                (_, Kind::Int, Some(slot)) => Plan::Int { slot },
                (_, Kind::Float, Some(slot)) => Plan::Float { slot },
                (Source::Meta(Meta::Timestamp), Kind::Timestamp { .. }, _) => {
                    Plan::Timestamp
                }
                (
                    Source::Meta(
                        meta @ (Meta::Id
                        | Meta::LogGroup
                        | Meta::LogStream
                        | Meta::Owner),
                    ),
                    Kind::Text { max_bytes, .. },
                    _,
                ) => Plan::Envelope { meta: *meta, max: max_bytes },
                (
                    Source::Meta(Meta::Message),
                    Kind::Text { max_bytes, .. },
                    _,
                ) => Plan::Message { max: max_bytes },
                _ => Plan::General,
            }
        })
        .collect()
}

impl Mapper {
    /// Writes the field of a column planned `plan` when its value is the
    /// plan's plain case: exactly what [`Mapper::column`] writes for it,
    /// with no truncation. Otherwise writes nothing and returns `false`.
    #[inline(always)]
    pub(super) fn planned<'a>(
        &self,
        plan: Plan,
        ev: &LogEvent<'a>,
        msg: Message<'a>,
        doc: Option<Json<'a>>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> bool {
        match plan {
            Plan::General => false,
            Plan::Timestamp => {
                let mut buf = [0u8; 24];
                match ev
                    .timestamp
                    .and_then(|ms| convert::format_ms_bytes(ms, &mut buf))
                {
                    Some(t) => self.clean_field(t, w, out),
                    None => false,
                }
            }
            Plan::Envelope { meta, max } => match envelope_str(meta, ev) {
                Some(s) => self.text(s, max, None, w, out),
                None => false,
            },
            Plan::Text { slot, max } => match node_at(doc, slot) {
                Some((_, Node::String(s), _)) => {
                    self.text(s, max, Some(msg.scanned), w, out)
                }
                _ => false,
            },
            Plan::Json { slot, max } => match node_at(doc, slot) {
                Some((d, Node::Object { .. } | Node::Array { .. }, i)) => {
                    self.raw_json_field(d, i, msg, max, w, out)
                }
                _ => false,
            },
            Plan::Int { slot } => {
                let v = match node_at(doc, slot) {
                    Some((_, Node::Static(StaticNode::I64(v)), _)) => v,
                    Some((_, Node::Static(StaticNode::U64(v)), _)) => {
                        match i64::try_from(v) {
                            Ok(v) => v,
                            Err(_) => return false,
                        }
                    }
                    _ => return false,
                };
                self.clean_field(
                    itoa::Buffer::new().format(v).as_bytes(),
                    w,
                    out,
                )
            }
            Plan::Float { slot } => {
                let Some((d, Node::Static(StaticNode::F64(_)), i)) =
                    node_at(doc, slot)
                else {
                    return false;
                };
                match d.lexemes.ryu_number(i) {
                    Some(l) => self.clean_field(l.as_bytes(), w, out),
                    None => false,
                }
            }
            Plan::Message { max } => {
                msg.escaped
                    && self.escaped_text_field(
                        msg.scanned,
                        msg.quotes_only,
                        max,
                        w,
                        out,
                    )
            }
        }
    }

    /// Writes ASCII the plan made or took from the message (digits, a
    /// time, a number's lexeme: no NUL) within the field limit.
    #[inline(always)]
    fn clean_field(
        &self,
        bytes: &[u8],
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> bool {
        self.within_field_max(bytes.len()).is_ok()
            && w.field_bytes_without_nul(out, bytes).is_ok()
    }

    /// Writes the text `s` when it is within `max` bytes and the field
    /// limit and holds no NUL: a string borrowed from `json` (the message
    /// that parsed, which holds no raw NUL) needs no look.
    #[inline(always)]
    fn text(
        &self,
        s: &str,
        max: usize,
        json: Option<&str>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> bool {
        if s.len() > max || self.within_field_max(s.len()).is_err() {
            return false;
        }
        let within = json
            .is_some_and(|m| borrowed_from(s, &m.as_bytes().as_ptr_range()));
        if !within && memchr::memchr(0, s.as_bytes()).is_some() {
            return false;
        }
        w.field_without_nul(out, s).is_ok()
    }
}

/// The value at the slot of trie node `slot` of an object message, and
/// its tape index.
#[inline(always)]
fn node_at<'a>(
    doc: Option<Json<'a>>,
    slot: u32,
) -> Option<(Json<'a>, Node<'a>, usize)> {
    let d = doc.filter(|d| d.object)?;
    let i = slot_start(d, Some((slot, 0)))?;
    d.tape.get(i).map(|&n| (d, n, i))
}
