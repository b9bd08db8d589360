//! Map: a [`ColumnSpec`] applied to each [`LogEvent`] gives one CSV row,
//! or says why not. The spec format and the conversion rules are
//! documented on [`ColumnSpec`].
//!
//! # Parsing
//!
//! A message is parsed only as far as the spec reads it: `scan` validates
//! the whole message in one pass but puts on its simd-json tape only the
//! members the columns' paths and the filter's selectors name (all of it
//! for `@message` as `json`).
//!
//! # Number lexemes
//!
//! A tape keeps numbers only as `i64`/`u64`/`f64`. The source text of a
//! number (`1.50`, `1e3`, `-0`, 30 digits) is read back from the offset
//! where the scanner found its node (see `convert::Lexemes`), so `text`
//! and `json` columns keep it. Where that fails, the number is written
//! canonically with `itoa`/`ryu` instead.

pub(crate) mod convert;
pub(crate) mod filter;
pub(crate) mod path;
pub(crate) mod scan;
pub(crate) mod spec;

use memchr::memchr;
use simd_json::{Node, StaticNode, Tape};

use self::convert::{Lexemes, NulPolicy};
use self::filter::FilterPattern;
use self::scan::{ScanError, ScanScratch, Want};
use self::spec::{Column, Kind, Meta, NonJson, OnMismatch, Source};
pub use self::spec::{ColumnSpec, SpecError};
use crate::decode::LogEvent;
use crate::write::{utf8_prefix, Dialect, FieldError, RowWriter};

/// Identifier length limits: PostgreSQL's NAMEDATALEN - 1 (longer names
/// are silently truncated by the server) and Redshift's 127 bytes.
const PG_IDENT_MAX: usize = 63;
const RS_IDENT_MAX: usize = 127;

/// Turns events into CSV rows for one table, following a [`ColumnSpec`].
///
/// Build it once; call [`Mapper::map`] for every event with a
/// [`MapScratch`] per thread.
///
/// # Example
///
/// ```
/// use cwl_copy::{ColumnSpec, Dialect, LogEvent, MapOutcome, MapScratch, Mapper};
///
/// let spec = ColumnSpec::from_toml(r#"
/// table = "logs"
/// [[columns]]
/// name = "user"
/// source = "context.user_id"
/// type = "text"
/// "#)?;
/// let mapper = Mapper::new(&spec, Dialect::Postgres)?;
/// // Events normally come from the decoder.
/// let ev = LogEvent::from_message("key", r#"{"context":{"user_id":"u1"}}"#);
/// let mut scratch = MapScratch::new();
/// let mut out = Vec::new();
/// assert!(matches!(mapper.map(&ev, &mut scratch, &mut out), MapOutcome::Row));
/// assert_eq!(out, b"u1\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Mapper {
    dialect: Dialect,
    table: String,
    filter: Option<FilterPattern>,
    non_json: NonJson,
    nul: NulPolicy,
    columns: Vec<Column>,
    /// The message must be parsed (for the filter or a column).
    parse: bool,
    /// Some column reads the message JSON.
    columns_need_json: bool,
    /// What the columns and the filter read from the message.
    want: Want,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("dialect", &self.dialect)
            .field("table", &self.table)
            .field("filter", &self.filter.is_some())
            .field("columns", &self.columns.len())
            .finish_non_exhaustive()
    }
}

/// Buffers [`Mapper::map`] reuses from event to event: once they have
/// grown to the largest message, mapping does not allocate.
pub struct MapScratch {
    scan: ScanScratch,
    tape: Tape<'static>,
    text: Vec<u8>,
    writer: RowWriter,
}

impl MapScratch {
    /// Empty buffers.
    #[must_use = "scratch space is only useful when passed to Mapper::map"]
    pub fn new() -> MapScratch {
        MapScratch {
            scan: ScanScratch::default(),
            tape: Tape(Vec::new()),
            text: Vec::new(),
            writer: RowWriter::new(Dialect::Postgres),
        }
    }
}

impl Default for MapScratch {
    fn default() -> Self {
        MapScratch::new()
    }
}

impl std::fmt::Debug for MapScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapScratch").finish_non_exhaustive()
    }
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "every event must be counted as loaded, filtered or rejected"]
pub enum MapOutcome {
    /// One CSV record, terminator included, was appended to `out`.
    Row,
    /// The spec's filter pattern did not match.
    Filtered,
    /// The event cannot be loaded; `out` is unchanged.
    Rejected(Reject),
}

/// Why an event was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reject {
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "column {c:?}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for Reject {}

impl<'a> LogEvent<'a> {
    /// An event with just an object name and a message, every other field
    /// `None`: for tests, examples and callers with their own framing.
    /// The public fields can be set afterwards.
    #[must_use = "this only builds a value"]
    pub fn from_message(object: &'a str, message: &'a str) -> LogEvent<'a> {
        LogEvent {
            object,
            member: None,
            envelope: None,
            id: None,
            timestamp: None,
            message,
        }
    }
}

/// A value taken from an event, before conversion.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Missing,
    Bool(bool),
    /// A number and, from the message, its tape node.
    Num(StaticNode, Option<usize>),
    Str(&'a str),
    /// An object or array at this tape node.
    Tree(usize),
    /// `@timestamp`.
    EpochMs(i64),
    /// `@message` as `json`, but the message is not JSON.
    NotJson,
}

/// Why a value was not written.
#[derive(Clone, Copy, Debug)]
enum Fail {
    Mismatch(&'static str),
    Nul,
    TooLong { len: usize, max: usize },
    Marker,
}

/// Converted field text: borrowed from the event, or in `text`.
#[derive(Clone, Copy)]
enum Conv<'a> {
    Borrowed(&'a str),
    InText,
}

/// The parsed message, when there is one.
#[derive(Clone, Copy)]
struct Json<'a> {
    tape: &'a Tape<'a>,
    lexemes: Lexemes<'a>,
}

impl Mapper {
    /// Compiles `spec` for `dialect`.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] for what the dialect cannot hold: a `text`
    /// `max_bytes` over 65535 (Redshift VARCHAR), an identifier longer
    /// than the database keeps (63 bytes for PostgreSQL, 127 for
    /// Redshift), a Redshift `default` equal to the NULL marker `\N`.
    pub fn new(
        spec: &ColumnSpec,
        dialect: Dialect,
    ) -> Result<Mapper, SpecError> {
        let ident_max = match dialect {
            Dialect::Postgres => PG_IDENT_MAX,
            Dialect::Redshift => RS_IDENT_MAX,
        };
        let too_long = |name: &str, pos| {
            (name.len() > ident_max).then(|| {
                SpecError::at(
                    pos,
                    format!(
                        "identifier {name:?} is {} bytes; {dialect:?} keeps \
                         at most {ident_max}",
                        name.len()
                    ),
                )
            })
        };
        if let Some(e) = too_long(&spec.table, spec.table_pos) {
            return Err(e);
        }
        for c in &spec.columns {
            if let Some(e) = too_long(&c.name, c.name_pos) {
                return Err(e);
            }
            if dialect == Dialect::Redshift {
                if let (Kind::Text { max_bytes, .. }, Some(pos)) =
                    (c.kind, c.max_bytes_pos)
                {
                    if max_bytes as u64 > spec::VARCHAR_MAX {
                        return Err(SpecError::at(
                            pos,
                            format!(
                                "max_bytes = {max_bytes} is more than \
                                 Redshift's VARCHAR limit of {}",
                                spec::VARCHAR_MAX
                            ),
                        ));
                    }
                }
                if let Some((d, pos)) = &c.default {
                    if d == Dialect::Redshift.null_marker() {
                        return Err(SpecError::at(
                            *pos,
                            r"default equals the Redshift NULL marker \N",
                        ));
                    }
                }
            }
        }
        let filter = match &spec.filter {
            Some((pattern, pos)) => {
                Some(FilterPattern::parse(pattern).map_err(|e| {
                    SpecError::at(*pos, format!("bad filter pattern: {e}"))
                })?)
            }
            None => None,
        };
        let columns_need_json = spec.columns.iter().any(Column::needs_json);
        let parse = columns_need_json
            || filter.as_ref().is_some_and(FilterPattern::needs_json);
        let want = want(spec, filter.as_ref());
        Ok(Mapper {
            dialect,
            table: spec.table.clone(),
            filter,
            non_json: spec.non_json,
            nul: spec.nul,
            columns: spec.columns.clone(),
            parse,
            columns_need_json,
            want,
        })
    }

    /// The dialect rows are written in.
    #[must_use = "this getter has no side effect"]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The table name, unquoted.
    #[must_use = "this getter has no side effect"]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column names in row order, unquoted.
    pub fn column_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// The validated columns, in row order.
    pub(crate) fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Maps one event, appending a CSV record to `out` on
    /// [`MapOutcome::Row`] and leaving `out` as it was otherwise.
    ///
    /// The message is parsed as JSON only when the filter or a column
    /// needs it; the filter runs before any field is written.
    pub fn map(
        &self,
        ev: &LogEvent<'_>,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        let MapScratch { scan, tape, text, writer } = scratch;
        let ScanScratch { arena, stack, starts } = scan;
        if writer.dialect() != self.dialect {
            *writer = RowWriter::new(self.dialect);
        }
        writer.discard_row();
        let mut t: Tape<'_> =
            std::mem::replace(tape, Tape(Vec::new())).reset();
        let parsed = if self.parse {
            Some(scan::scan(
                ev.message, &self.want, arena, stack, &mut t.0, starts,
            ))
        } else {
            None
        };
        let outcome = {
            let doc = match &parsed {
                Some(Ok(())) => Some(Json {
                    tape: &t,
                    lexemes: Lexemes::new(starts, ev.message.as_bytes()),
                }),
                _ => None,
            };
            let error = match &parsed {
                Some(Err(e)) => Some(e),
                _ => None,
            };
            self.map_parsed(ev, doc, error, text, writer, out)
        };
        *tape = t.reset();
        outcome
    }

    /// The parse step of [`Mapper::map`] alone (for benches): the
    /// number of tape nodes, or `None` when the message is not JSON.
    pub(crate) fn scan_only(
        &self,
        message: &str,
        scratch: &mut MapScratch,
    ) -> Option<usize> {
        let MapScratch { scan, tape, .. } = scratch;
        let ScanScratch { arena, stack, starts } = scan;
        let mut t: Tape<'_> =
            std::mem::replace(tape, Tape(Vec::new())).reset();
        let res =
            scan::scan(message, &self.want, arena, stack, &mut t.0, starts);
        let n = res.ok().map(|()| t.0.len());
        *tape = t.reset();
        n
    }

    fn map_parsed<'a>(
        &self,
        ev: &LogEvent<'a>,
        doc: Option<Json<'a>>,
        parse_error: Option<&ScanError>,
        text: &mut Vec<u8>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        if let Some(f) = &self.filter {
            if f.needs_json() && doc.is_none() {
                return MapOutcome::Filtered;
            }
            if !f.matches(ev.message, doc.map(|d| d.tape.as_value())) {
                return MapOutcome::Filtered;
            }
        }
        if self.columns_need_json
            && doc.is_none()
            && self.non_json == NonJson::Reject
        {
            let reason = match parse_error {
                Some(e) => format!("message is not JSON: {e}"),
                None => "message is not JSON".to_owned(),
            };
            return MapOutcome::Rejected(Reject { column: None, reason });
        }
        let start = out.len();
        for col in &self.columns {
            if let Err(reason) = self.column(col, ev, doc, text, w, out) {
                out.truncate(start);
                w.discard_row();
                return MapOutcome::Rejected(Reject {
                    column: Some(col.name.clone()),
                    reason,
                });
            }
        }
        w.end_row(out);
        MapOutcome::Row
    }

    /// Writes one column's field; `Err` is the reject reason.
    fn column<'a>(
        &self,
        col: &Column,
        ev: &LogEvent<'a>,
        doc: Option<Json<'a>>,
        text: &mut Vec<u8>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let val = value(col, ev, doc);
        if let Val::Missing = val {
            return match &col.default {
                Some((d, _)) => w.field(out, d).map_err(|e| e.to_string()),
                None if col.required => {
                    Err("required value is missing".to_owned())
                }
                None => {
                    w.null(out);
                    Ok(())
                }
            };
        }
        // A valid JSON text holds no raw NUL (control characters are not
        // allowed in its strings, nor anywhere else), and unescaped
        // strings live in scratch, not in the message: so text borrowed
        // from a message that parsed needs no NUL check.
        let json_text = doc.map(|_| ev.message.as_bytes().as_ptr_range());
        match self.write_value(col, val, doc, json_text, text, w, out) {
            Ok(()) => Ok(()),
            Err(Fail::Mismatch(m)) => match col.on_mismatch {
                OnMismatch::Null => {
                    w.null(out);
                    Ok(())
                }
                OnMismatch::Reject => Err(m.to_owned()),
            },
            Err(Fail::Nul) => {
                Err("value contains a NUL character (U+0000)".to_owned())
            }
            Err(Fail::TooLong { len, max }) => Err(format!(
                "value is {len} bytes, more than max_bytes = {max}"
            )),
            Err(Fail::Marker) => Err(FieldError::NullMarker.to_string()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_value<'a>(
        &self,
        col: &Column,
        val: Val<'a>,
        doc: Option<Json<'a>>,
        json_text: Option<std::ops::Range<*const u8>>,
        text: &mut Vec<u8>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> Result<(), Fail> {
        text.clear();
        let conv = self.convert(col.kind, val, doc, text)?;
        let mut s = match conv {
            Conv::Borrowed(s) => s,
            Conv::InText => std::str::from_utf8(text)
                .map_err(|_| Fail::Mismatch("not valid UTF-8"))?,
        };
        let in_json = |s: &str| {
            let r = s.as_bytes().as_ptr_range();
            json_text.as_ref().is_some_and(|m| {
                matches!(conv, Conv::Borrowed(_))
                    && m.start <= r.start
                    && r.end <= m.end
            })
        };
        if !in_json(s) && memchr(0, s.as_bytes()).is_some() {
            if self.nul == NulPolicy::Reject {
                return Err(Fail::Nul);
            }
            let mut stripped = std::mem::take(text);
            if let Conv::Borrowed(b) = conv {
                stripped.clear();
                stripped.extend_from_slice(b.as_bytes());
            }
            stripped.retain(|&b| b != 0);
            *text = stripped;
            s = std::str::from_utf8(text)
                .map_err(|_| Fail::Mismatch("not valid UTF-8"))?;
        }
        match col.kind {
            Kind::Text { max_bytes, overflow } if s.len() > max_bytes => {
                if overflow == spec::Overflow::Reject {
                    return Err(Fail::TooLong {
                        len: s.len(),
                        max: max_bytes,
                    });
                }
                s = utf8_prefix(s, max_bytes);
            }
            Kind::Json { max_bytes } if s.len() > max_bytes => {
                return Err(Fail::TooLong { len: s.len(), max: max_bytes });
            }
            _ => {}
        }
        // `s` holds no NUL now: checked, stripped or known.
        w.field_without_nul(out, s).map_err(|e| match e {
            FieldError::Nul { .. } => Fail::Nul,
            _ => Fail::Marker,
        })
    }

    /// Converts `val` to the field text of `kind`.
    fn convert<'a>(
        &self,
        kind: Kind,
        val: Val<'a>,
        doc: Option<Json<'a>>,
        text: &mut Vec<u8>,
    ) -> Result<Conv<'a>, Fail> {
        use Fail::Mismatch;
        let lexeme = |node: Option<usize>| {
            doc.zip(node).and_then(|(d, n)| d.lexemes.number(n))
        };
        let tree = |i: usize, text: &mut Vec<u8>| match doc {
            Some(d) => convert::write_json(
                &d.tape.0,
                i,
                Some(d.lexemes),
                self.nul,
                text,
            )
            .map(|()| Conv::InText)
            .map_err(|_| Fail::Nul),
            None => Err(Mismatch("message is not JSON")),
        };
        let int = |v: i64, text: &mut Vec<u8>| {
            text.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(Conv::InText)
        };
        let float = |v: f64, text: &mut Vec<u8>| {
            if !v.is_finite() {
                return Err(Mismatch("not a finite number"));
            }
            text.extend_from_slice(
                ryu::Buffer::new().format_finite(v).as_bytes(),
            );
            Ok(Conv::InText)
        };
        let ts = |ms: Option<i64>, text: &mut Vec<u8>| {
            let mut buf = [0u8; 24];
            match ms.and_then(|ms| convert::format_ms(ms, &mut buf)) {
                Some(s) => {
                    text.extend_from_slice(s.as_bytes());
                    Ok(Conv::InText)
                }
                None => {
                    Err(Mismatch("not a timestamp between years 1 and 9999"))
                }
            }
        };
        if let Val::NotJson = val {
            return Err(Mismatch("message is not JSON"));
        }
        match kind {
            // Text and JSON differ only in how a string is written.
            Kind::Text { .. } | Kind::Json { .. } => match val {
                Val::Str(s) if matches!(kind, Kind::Text { .. }) => {
                    Ok(Conv::Borrowed(s))
                }
                Val::Str(s) => convert::write_json_string(s, self.nul, text)
                    .map(|()| Conv::InText)
                    .map_err(|_| Fail::Nul),
                Val::Bool(b) => Ok(Conv::Borrowed(bool_text(b))),
                Val::Num(n, node) => match lexeme(node) {
                    Some(l) => Ok(Conv::Borrowed(l)),
                    None if convert::write_number(n, text) => Ok(Conv::InText),
                    None => Err(Mismatch("not a finite number")),
                },
                Val::EpochMs(v) => int(v, text),
                Val::Tree(i) => tree(i, text),
                Val::Missing | Val::NotJson => Err(Mismatch("missing")),
            },
            Kind::Int => {
                let v = match val {
                    Val::Num(StaticNode::I64(v), _) | Val::EpochMs(v) => {
                        Some(v)
                    }
                    Val::Num(StaticNode::U64(v), _) => i64::try_from(v).ok(),
                    // An integer lexeme is parsed exactly: an f64 (which is
                    // how simd-json holds integers beyond u64) would round
                    // -9223372036854775809 into range. Only f64 nodes need
                    // the lexeme, so the common case skips the lookup.
                    Val::Num(StaticNode::F64(f), node) => {
                        match lexeme(node).filter(|l| {
                            l.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                        }) {
                            Some(l) => l.parse::<i64>().ok(),
                            None => convert::f64_to_i64(f),
                        }
                    }
                    Val::Str(s) => s.parse::<i64>().ok(),
                    _ => None,
                };
                match v {
                    Some(v) => int(v, text),
                    None => Err(Mismatch("not an integer in i64 range")),
                }
            }
            Kind::Float => {
                #[allow(clippy::cast_precision_loss)]
                let v = match val {
                    Val::Num(StaticNode::I64(v), _) | Val::EpochMs(v) => {
                        Some(v as f64)
                    }
                    Val::Num(StaticNode::U64(v), _) => Some(v as f64),
                    Val::Num(StaticNode::F64(f), _) => Some(f),
                    Val::Str(s) => s.parse::<f64>().ok(),
                    _ => None,
                };
                match v {
                    Some(v) => float(v, text),
                    None => Err(Mismatch("not a number")),
                }
            }
            Kind::Bool => match val {
                Val::Bool(b) => Ok(Conv::Borrowed(bool_text(b))),
                Val::Str("true") => Ok(Conv::Borrowed("true")),
                Val::Str("false") => Ok(Conv::Borrowed("false")),
                _ => Err(Mismatch("not a boolean")),
            },
            Kind::Timestamp { unit } => {
                let ms = match val {
                    Val::EpochMs(v) => Some(v),
                    Val::Num(StaticNode::I64(v), _) => unit.int_to_ms(v),
                    Val::Num(StaticNode::U64(v), _) => {
                        i64::try_from(v).ok().and_then(|v| unit.int_to_ms(v))
                    }
                    Val::Num(StaticNode::F64(f), _) => unit.float_to_ms(f),
                    Val::Str(s) => convert::parse_rfc3339(s),
                    _ => {
                        return Err(Mismatch(
                            "not an epoch number or RFC 3339 string",
                        ))
                    }
                };
                ts(ms, text)
            }
        }
    }
}

/// The trie of what `spec` and `filter` read from a message.
fn want(spec: &ColumnSpec, filter: Option<&FilterPattern>) -> Want {
    let mut want = Want::nothing();
    for c in &spec.columns {
        match &c.source {
            Source::Path(p) => want.add(p.segments.iter().map(|s| match s {
                path::Segment::Key(k) => scan::Step::Key(k),
                path::Segment::Index(_) => scan::Step::Index,
            })),
            Source::Meta(Meta::Message) if c.needs_json() => {
                want.add(std::iter::empty());
            }
            Source::Meta(_) => {}
        }
    }
    for sel in filter.map(FilterPattern::json_selectors).unwrap_or_default() {
        want.add(sel.iter().map(|s| match s {
            filter::Step::Key(k) => scan::Step::Key(k),
            filter::Step::Index(_) => scan::Step::Index,
        }));
    }
    want
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The value of `col` in `ev`.
fn value<'a>(
    col: &Column,
    ev: &LogEvent<'a>,
    doc: Option<Json<'a>>,
) -> Val<'a> {
    let opt = |s: Option<&'a str>| s.map_or(Val::Missing, Val::Str);
    match &col.source {
        Source::Path(p) => match doc {
            Some(d) => p
                .lookup(&d.tape.0)
                .map_or(Val::Missing, |i| node_val(&d.tape.0, i)),
            None => Val::Missing,
        },
        Source::Meta(m) => match m {
            Meta::Timestamp => ev.timestamp.map_or(Val::Missing, Val::EpochMs),
            Meta::Id => opt(ev.id),
            Meta::LogGroup => opt(ev.envelope.map(|e| e.log_group)),
            Meta::LogStream => opt(ev.envelope.map(|e| e.log_stream)),
            Meta::Owner => opt(ev.envelope.map(|e| e.owner)),
            Meta::PolicyLevel => opt(ev.envelope.and_then(|e| e.policy_level)),
            Meta::Object => Val::Str(ev.object),
            Meta::Member => ev
                .member
                .map_or(Val::Missing, |m| Val::Num(StaticNode::U64(m), None)),
            Meta::Message => match (col.kind, doc) {
                (Kind::Json { .. }, Some(d)) => node_val(&d.tape.0, 0),
                (Kind::Json { .. }, None) => Val::NotJson,
                _ => Val::Str(ev.message),
            },
        },
    }
}

fn node_val<'a>(nodes: &[Node<'a>], i: usize) -> Val<'a> {
    match nodes.get(i) {
        Some(Node::String(s)) => Val::Str(s),
        Some(Node::Static(StaticNode::Null)) | None => Val::Missing,
        Some(Node::Static(StaticNode::Bool(b))) => Val::Bool(*b),
        Some(Node::Static(n)) => Val::Num(*n, Some(i)),
        Some(Node::Object { .. } | Node::Array { .. }) => Val::Tree(i),
    }
}

#[cfg(test)]
mod tests;
