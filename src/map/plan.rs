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
use super::{raw_json, slot_start, Json, Mapper, Message};
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
                    Some(t) if t.len() <= self.field_max => {
                        w.field_bytes_without_nul(out, t).is_ok()
                    }
                    _ => false,
                }
            }
            Plan::Envelope { meta, max } => {
                let s = match meta {
                    Meta::Id => ev.id,
                    Meta::LogGroup => ev.envelope.map(|e| e.log_group),
                    Meta::LogStream => ev.envelope.map(|e| e.log_stream),
                    Meta::Owner => ev.envelope.map(|e| e.owner),
                    _ => None,
                };
                match s {
                    Some(s) => text(s, max.min(self.field_max), None, w, out),
                    None => false,
                }
            }
            Plan::Text { slot, max } => match node(doc, slot) {
                Some((_, Node::String(s))) => {
                    let max = max.min(self.field_max);
                    text(s, max, Some(msg.scanned), w, out)
                }
                _ => false,
            },
            // Written straight from the escaped source when it is compact
            // with no escape but `\"` (`raw_json`); `len` is its length
            // unescaped, shorter when it holds a `\"`.
            Plan::Json { slot, max } => {
                let Some((d, Node::Object { .. } | Node::Array { .. }, i)) =
                    node_at(doc, slot).filter(|_| msg.escaped)
                else {
                    return false;
                };
                match d
                    .lexemes
                    .start(i)
                    .and_then(|at| raw_json(msg.scanned, at))
                {
                    Some((raw, len)) if len <= max.min(self.field_max) => {
                        w.field_escaped(out, raw.as_bytes(), len < raw.len())
                    }
                    _ => false,
                }
            }
            Plan::Int { slot } => {
                let v = match node(doc, slot) {
                    Some((_, Node::Static(StaticNode::I64(v)))) => v,
                    Some((_, Node::Static(StaticNode::U64(v)))) => {
                        match i64::try_from(v) {
                            Ok(v) => v,
                            Err(_) => return false,
                        }
                    }
                    _ => return false,
                };
                let mut buf = itoa::Buffer::new();
                let digits = buf.format(v).as_bytes();
                digits.len() <= self.field_max
                    && w.field_bytes_without_nul(out, digits).is_ok()
            }
            Plan::Float { slot } => {
                let Some((d, Node::Static(StaticNode::F64(_)), i)) =
                    node_at(doc, slot)
                else {
                    return false;
                };
                match d.lexemes.ryu_number(i) {
                    Some(l) if l.len() <= self.field_max => {
                        w.field_bytes_without_nul(out, l.as_bytes()).is_ok()
                    }
                    _ => false,
                }
            }
            Plan::Message { max } => {
                msg.escaped
                    && msg.scanned.len() <= max.min(self.field_max)
                    && w.field_escaped(
                        out,
                        msg.scanned.as_bytes(),
                        msg.quotes_only,
                    )
            }
        }
    }
}

/// The value at the slot of trie node `slot` of an object message.
#[inline(always)]
fn node<'a>(doc: Option<Json<'a>>, slot: u32) -> Option<(Json<'a>, Node<'a>)> {
    node_at(doc, slot).map(|(d, n, _)| (d, n))
}

/// [`node`] and its tape index.
#[inline(always)]
fn node_at<'a>(
    doc: Option<Json<'a>>,
    slot: u32,
) -> Option<(Json<'a>, Node<'a>, usize)> {
    let d = doc.filter(|d| d.object)?;
    let i = slot_start(d, Some((slot, 0)))?;
    d.tape.0.get(i).map(|&n| (d, n, i))
}

/// Writes the text `s` when it is at most `max` bytes and holds no NUL:
/// a string borrowed from `json` (the message that parsed, which holds no
/// raw NUL) needs no look.
#[inline(always)]
fn text(
    s: &str,
    max: usize,
    json: Option<&str>,
    w: &mut RowWriter,
    out: &mut Vec<u8>,
) -> bool {
    if s.len() > max {
        return false;
    }
    let r = s.as_bytes().as_ptr_range();
    let within = json.is_some_and(|m| {
        let m = m.as_bytes().as_ptr_range();
        m.start <= r.start && r.end <= m.end
    });
    if !within && memchr::memchr(0, s.as_bytes()).is_some() {
        return false;
    }
    w.field_without_nul(out, s).is_ok()
}
