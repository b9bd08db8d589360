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
mod plan;
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

/// The largest CSV record (terminator included) of the Redshift dialect:
/// COPY refuses any input row over 4 MB and fails the whole load, so a
/// longer row is rejected (`row_too_large`) instead. (Many text columns of
/// 65,535 bytes each, or `@message` split over several, pass 4 MB.)
pub const REDSHIFT_ROW_MAX: usize = 4 * 1024 * 1024;

/// The reject codes ([`Reject::code`]).
pub(crate) mod code {
    /// The message is not JSON (`non_json = "reject"`).
    pub(crate) const NOT_JSON: &str = "not_json";
    /// The message is JSON but not an object (`non_json = "reject"`).
    pub(crate) const NOT_OBJECT: &str = "not_object";
    /// A value of the wrong type (`on_mismatch = "reject"`).
    pub(crate) const TYPE_MISMATCH: &str = "type_mismatch";
    /// Longer than `max_bytes` or the database's field limit.
    pub(crate) const TOO_LONG: &str = "too_long";
    /// A NUL character (`nul = "reject"`).
    pub(crate) const NUL_CHAR: &str = "nul_char";
    /// A `required` value is missing.
    pub(crate) const MISSING_REQUIRED: &str = "missing_required";
    /// A Redshift value equal to the NULL marker `\N`.
    pub(crate) const NULL_MARKER: &str = "null_marker";
    /// A Redshift row over COPY's 4 MB limit for one input row.
    pub(crate) const ROW_TOO_LARGE: &str = "row_too_large";
    /// Every code, in the order above.
    #[cfg(test)]
    pub(crate) const ALL: [&str; 8] = [
        NOT_JSON,
        NOT_OBJECT,
        TYPE_MISMATCH,
        TOO_LONG,
        NUL_CHAR,
        MISSING_REQUIRED,
        NULL_MARKER,
        ROW_TOO_LARGE,
    ];
}

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
#[derive(Clone)]
pub struct Mapper {
    dialect: Dialect,
    table: String,
    filter: Option<FilterPattern>,
    non_json: NonJson,
    nul: NulPolicy,
    columns: Vec<Column>,
    /// The longest field the database stores, in bytes.
    field_max: usize,
    /// The message must be parsed (for the filter or a column).
    parse: bool,
    /// Some column reads the message JSON.
    columns_need_json: bool,
    /// Some column reads a path of the message (so it must be an object).
    columns_read_paths: bool,
    /// What the columns and the filter read from the message.
    want: Want,
    /// For each column with a path source, where its path is in `want`
    /// (`Want::locate`): the node whose slot it starts from and how many
    /// of its segments that takes.
    located: Vec<Option<(u32, usize)>>,
    /// For a JSON filter, where each selector is in `want`, as `located`
    /// (by its place in `FilterPattern::json_selectors`); `None` for the
    /// oracle ([`Mapper::keep_all`]), which resolves selectors from the
    /// root with simd-json's tape API.
    filter_located: Option<Vec<(u32, usize)>>,
    /// The filter's plan when it is one string equality whose selector a
    /// slot holds whole ([`FilterPattern::string_equality`]): the [`Want`]
    /// node, the string, and whether it is `!=`. `None` in the oracle.
    filter_eq: Option<(u32, Box<str>, bool)>,
    /// Messages can be mapped in their escaped form
    /// ([`Mapper::map_escaped`]): the filter (if any) is a JSON pattern,
    /// and `@message` is read only as `text` or `json`.
    onepass: bool,
    /// Each column's plan (`plan::plans`); all general in the oracle.
    plans: Vec<plan::Plan>,
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
/// grown to the largest message, mapping does not allocate. It also
/// counts the values `overflow = "truncate"` cut, per column.
pub struct MapScratch {
    pub(crate) scan: ScanScratch,
    tape: Tape<'static>,
    text: Vec<u8>,
    writer: RowWriter,
    /// Values truncated in written rows, by column index.
    pub(crate) truncated: Vec<u64>,
    /// Columns truncated in the row being written.
    row_truncated: Vec<usize>,
    /// An escaped message unescaped, for the fallback of
    /// [`Mapper::map_escaped`].
    unescaped: Vec<u8>,
    /// Messages given to [`Mapper::map_escaped`].
    pub(crate) onepass_messages: u64,
    /// Messages it unescaped and mapped with [`Mapper::map`] instead.
    pub(crate) onepass_fallbacks: u64,
    /// Messages given to [`Mapper::map_scanned`].
    pub(crate) onepass_ahead: u64,
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
            truncated: Vec::new(),
            row_truncated: Vec::new(),
            unescaped: Vec::new(),
            onepass_messages: 0,
            onepass_fallbacks: 0,
            onepass_ahead: 0,
        }
    }

    /// How many values `overflow = "truncate"` cut in the rows mapped
    /// since this scratch was made or [`MapScratch::clear_truncated`]
    /// last ran, by column index (in [`Mapper::column_names`] order;
    /// shorter than the columns when the last ones cut nothing). A
    /// rejected event counts nothing.
    #[must_use = "this getter has no side effect"]
    pub fn truncated(&self) -> &[u64] {
        &self.truncated
    }

    /// Resets the counts of [`MapScratch::truncated`] to zero.
    pub fn clear_truncated(&mut self) {
        self.truncated.iter_mut().for_each(|n| *n = 0);
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

/// Why an event was rejected: a stable code for machines, a reason for
/// people.
///
/// | code               | when |
/// |--------------------|------|
/// | `not_json`         | the message is not JSON and a column reads it (`non_json = "reject"`; or a `@message` `json` column with `on_mismatch = "reject"`) |
/// | `not_object`       | the message is JSON but not an object and a column reads a path (`non_json = "reject"`) |
/// | `type_mismatch`    | a value of the wrong type (`on_mismatch = "reject"`) |
/// | `too_long`         | a value over `max_bytes` (`overflow = "reject"`, the default; always for `json`) or over PostgreSQL's 1 GB field limit |
/// | `nul_char`         | a value holds U+0000 (`nul = "reject"`) |
/// | `missing_required` | a `required` value is missing |
/// | `null_marker`      | a Redshift value is exactly the NULL marker `\N` |
/// | `row_too_large`    | a Redshift row (its CSV record) over COPY's limit of 4 MB for one input row ([`REDSHIFT_ROW_MAX`]) |
///
/// Undecodable input is not a `Reject` but an [`Error`](crate::Error),
/// whose [`code`](crate::Error::code) names its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reject {
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong, as one of the codes above.
    pub code: &'static str,
    /// What is wrong, in words.
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
    /// `@message` as `text`, still escaped ([`Mapper::map_escaped`]),
    /// and whether its every escape is `\"` (and there is one).
    Escaped(&'a str, bool),
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
    /// `@message` as `json`, and the message is not JSON.
    NotJson,
    Nul,
    /// Longer than `max` bytes: `max_bytes`, or the database's limit.
    TooLong {
        len: usize,
        max: usize,
        database: bool,
    },
    Marker,
}

/// A rejected column's code and reason.
type ColumnReject = (&'static str, String);

/// Converted field text: borrowed from the event, or in `text`.
#[derive(Clone, Copy)]
enum Conv<'a> {
    Borrowed(&'a str),
    InText,
    /// In the text buffer, written by the converter itself (digits, a
    /// timestamp, JSON from `write_json`, which drops or refuses NULs):
    /// no NUL to look for.
    Clean,
}

/// The message as the scanner read it.
#[derive(Clone, Copy)]
struct Message<'a> {
    /// The text scanned: the message, or its escaped form.
    scanned: &'a str,
    /// `scanned` is the escaped form.
    escaped: bool,
    /// The escaped form's every escape is `\"` (and there is one).
    quotes_only: bool,
}

/// The parsed message, when there is one.
#[derive(Clone, Copy)]
struct Json<'a> {
    tape: &'a [Node<'a>],
    /// `tape` as the [`Tape`] it is, for a filter that reads it as a
    /// value; `None` for a message scanned ahead ([`Mapper::prescan`],
    /// whose filter reads only slots).
    whole: Option<&'a Tape<'a>>,
    /// Where each [`Want`] node's value is on the tape
    /// (`scan::scan_slots`).
    slots: &'a [u32],
    lexemes: Lexemes<'a>,
    /// The message is an object: only then do paths resolve.
    object: bool,
}

impl Mapper {
    /// Compiles `spec` for `dialect`. A `text` column without
    /// `max_bytes` gets the dialect's limit: 65535 bytes for Redshift
    /// (VARCHAR), none for PostgreSQL (whose 1 GB field limit rejects
    /// the event).
    ///
    /// # Errors
    ///
    /// A [`SpecError`] for what the dialect cannot hold: a `text`
    /// `max_bytes` over 65535 (Redshift VARCHAR), a `default` longer than
    /// that, an identifier longer than the database keeps (63 bytes for
    /// PostgreSQL, 127 for Redshift), a Redshift `default` equal to the
    /// NULL marker `\N`.
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
                    if matches!(c.kind, Kind::Text { .. })
                        && d.len() as u64 > spec::VARCHAR_MAX
                    {
                        return Err(SpecError::at(
                            *pos,
                            format!(
                                "default is {} bytes, more than Redshift's \
                                 VARCHAR limit of {}",
                                d.len(),
                                spec::VARCHAR_MAX
                            ),
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
        let (text_default, field_max) = match dialect {
            Dialect::Postgres => (spec::PG_FIELD_MAX, spec::PG_FIELD_MAX),
            Dialect::Redshift => {
                let varchar =
                    usize::try_from(spec::VARCHAR_MAX).unwrap_or(usize::MAX);
                (varchar, usize::MAX)
            }
        };
        let mut columns = spec.columns.clone();
        for c in &mut columns {
            if let Kind::Text { max_bytes, .. } = &mut c.kind {
                if *max_bytes == spec::TEXT_MAX_DIALECT {
                    *max_bytes = text_default;
                }
            }
        }
        let columns_need_json = spec.columns.iter().any(Column::needs_json);
        let columns_read_paths =
            spec.columns.iter().any(|c| matches!(c.source, Source::Path(_)));
        let parse = columns_need_json
            || filter.as_ref().is_some_and(FilterPattern::needs_json);
        let want = want(spec, filter.as_ref());
        let located = locate(&columns, &want);
        let plans = plan::plans(&columns, &located);
        let filter_located = filter.as_ref().map(|f| locate_filter(f, &want));
        let filter_eq = filter.as_ref().and_then(|f| {
            let (steps, s, negate) = f.string_equality()?;
            let &(node, used) = filter_located.as_ref()?.first()?;
            (node != 0 && used == steps.len())
                .then(|| (node, s.into(), negate))
        });
        let onepass = filter.as_ref().is_none_or(FilterPattern::needs_json)
            && spec.columns.iter().all(|c| {
                !matches!(c.source, Source::Meta(Meta::Message))
                    || matches!(c.kind, Kind::Text { .. } | Kind::Json { .. })
            });
        Ok(Mapper {
            dialect,
            table: spec.table.clone(),
            filter,
            non_json: spec.non_json,
            nul: spec.nul,
            columns,
            field_max,
            parse,
            columns_need_json,
            columns_read_paths,
            want,
            located,
            filter_located,
            filter_eq,
            onepass,
            plans,
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
    /// needs it; the filter runs before any field is written. Values that
    /// `overflow = "truncate"` cut in a written row are counted in
    /// `scratch` ([`MapScratch::truncated`]).
    pub fn map(
        &self,
        ev: &LogEvent<'_>,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        self.map_inner(ev, None, false, None, scratch, out)
    }

    /// Whether [`Mapper::map_escaped`] can take the one-pass path for
    /// this spec (otherwise it always falls back).
    pub(crate) fn onepass(&self) -> bool {
        self.onepass
    }

    /// Whether messages are parsed at all (for the filter or a column).
    pub(crate) fn parses(&self) -> bool {
        self.parse
    }

    /// [`Mapper::map`] of the event whose message is `escaped`, the body
    /// of its JSON string in the envelope, not yet unescaped
    /// (`ev.message` is not read). The one-pass path: the message is
    /// scanned in escaped form (`scan::scan_escaped`), only the values
    /// that end in a column are unescaped, and `@message` as `text` is
    /// unescaped straight into the CSV field with its quoting
    /// (`RowWriter::field_escaped`). What that path does not read (an
    /// escape it leaves to the oracle, a message that is not JSON, a
    /// filter on the message text) is unescaped and mapped by
    /// [`Mapper::map`]: the outcome and bytes are always those of `map`
    /// on the unescaped message.
    ///
    /// `quotes_only` tells that every escape of `escaped` is `\"` and
    /// that it has one (the envelope reader knows it for nothing; see
    /// `onepass::quotes_only`): `@message` is then written by turning
    /// each `\` into a quote. Given true for another message, the
    /// field is wrong.
    #[doc(hidden)]
    pub fn map_escaped(
        &self,
        ev: &LogEvent<'_>,
        escaped: &str,
        quotes_only: bool,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        scratch.onepass_messages += 1;
        if self.onepass {
            self.map_inner(ev, Some(escaped), quotes_only, None, scratch, out)
        } else {
            self.map_unescaped(ev, escaped, scratch, out)
        }
    }

    /// Scans the message whose escaped body starts `body` (and runs on to
    /// the envelope's end) ahead of its event, into `pre`, where the
    /// one-pass path would scan it: its length in `body`, whether its
    /// every escape is `\"`, and its number in `pre`; `None` where the
    /// fast scan does not read it (or this spec does not scan messages).
    /// The event then goes to [`Mapper::map_scanned`] with
    /// [`Prescanned::get`] of that number.
    #[doc(hidden)]
    pub fn prescan<'a>(
        &self,
        body: &'a str,
        pre: &mut scan::Prescanned<'a>,
        scratch: &mut MapScratch,
    ) -> Option<(usize, bool, u32)> {
        // (A filter whose selectors have no slots reads the whole tape.)
        if !(self.onepass && self.parse)
            || (self.filter.is_some() && self.filter_located.is_none())
        {
            return None;
        }
        scan::prescan(body, &self.want, pre, &mut scratch.scan.predict)
    }

    /// [`Mapper::map_escaped`] of a message [`Mapper::prescan`] read,
    /// with `scanned`, what it read: the same outcome and bytes, without
    /// scanning the message again.
    #[doc(hidden)]
    pub fn map_scanned<'a>(
        &self,
        ev: &LogEvent<'_>,
        escaped: &'a str,
        quotes_only: bool,
        scanned: scan::Scanned<'_, 'a>,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        scratch.onepass_messages += 1;
        scratch.onepass_ahead += 1;
        self.map_inner(
            ev,
            Some(escaped),
            quotes_only,
            Some(scanned),
            scratch,
            out,
        )
    }

    /// The fallback of [`Mapper::map_escaped`]: unescapes the message
    /// and maps it with [`Mapper::map`].
    fn map_unescaped(
        &self,
        ev: &LogEvent<'_>,
        escaped: &str,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        scratch.onepass_fallbacks += 1;
        let mut buf = std::mem::take(&mut scratch.unescaped);
        buf.clear();
        crate::decode::onepass::unescape(escaped.as_bytes(), &mut buf);
        let outcome = match std::str::from_utf8(&buf) {
            Ok(message) => {
                self.map(&LogEvent { message, ..*ev }, scratch, out)
            }
            // Unescaping UTF-8 gives UTF-8.
            Err(_) => MapOutcome::Rejected(Reject {
                column: None,
                code: code::NOT_JSON,
                reason: "message is not UTF-8".to_owned(),
            }),
        };
        scratch.unescaped = buf;
        outcome
    }

    /// [`Mapper::map`], or with `escaped` the one-pass path, which falls
    /// back to [`Mapper::map_unescaped`] for a message its scan does not
    /// read.
    fn map_inner<'e>(
        &self,
        ev: &LogEvent<'e>,
        escaped: Option<&'e str>,
        quotes_only: bool,
        scanned: Option<scan::Scanned<'_, 'e>>,
        scratch: &mut MapScratch,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        let MapScratch {
            scan,
            tape,
            text,
            writer,
            truncated,
            row_truncated,
            ..
        } = scratch;
        let ScanScratch { arena, stack, starts, slots, gave_up, predict } =
            scan;
        if writer.dialect() != self.dialect {
            *writer = RowWriter::new(self.dialect);
        }
        writer.discard_row();
        row_truncated.clear();
        let mut t: Tape<'_> =
            std::mem::replace(tape, Tape(Vec::new())).reset();
        let ahead = scanned;
        let scanned = escaped.unwrap_or(ev.message);
        let parsed = if ahead.is_some() {
            // Scanned as the envelope was read (`Mapper::prescan`).
            Some(Ok(()))
        } else if self.parse {
            let res = scan::scan_slots(
                scanned,
                escaped.is_some(),
                &self.want,
                arena,
                stack,
                &mut t.0,
                starts,
                slots,
                gave_up,
                predict,
            );
            if let (Err(_), Some(e)) = (&res, escaped) {
                *tape = t.reset();
                return self.map_unescaped(ev, e, scratch, out);
            }
            Some(res)
        } else {
            None
        };
        let outcome = {
            let doc = match (&parsed, ahead) {
                (Some(Ok(())), Some(a)) => Some(Json {
                    tape: a.tape,
                    whole: None,
                    slots: a.slots,
                    lexemes: Lexemes::new(a.starts, scanned),
                    object: matches!(
                        a.tape.first(),
                        Some(Node::Object { .. })
                    ),
                }),
                (Some(Ok(())), None) => Some(Json {
                    tape: &t.0,
                    whole: Some(&t),
                    slots: slots.as_slice(),
                    lexemes: Lexemes::new(starts, scanned),
                    object: matches!(t.0.first(), Some(Node::Object { .. })),
                }),
                _ => None,
            };
            let error = match &parsed {
                Some(Err(e)) => Some(e),
                _ => None,
            };
            let msg = Message {
                scanned,
                escaped: escaped.is_some(),
                quotes_only: escaped.is_some() && quotes_only,
            };
            self.map_parsed(
                ev,
                msg,
                doc,
                error,
                text,
                writer,
                row_truncated,
                out,
            )
        };
        *tape = t.reset();
        if outcome == MapOutcome::Row && !row_truncated.is_empty() {
            if truncated.len() < self.columns.len() {
                truncated.resize(self.columns.len(), 0);
            }
            for &i in row_truncated.iter() {
                if let Some(n) = truncated.get_mut(i) {
                    *n = n.saturating_add(1);
                }
            }
        }
        outcome
    }

    /// This mapper reading the whole message: the keep-all tape, where
    /// every path is looked up from the root (no slots). The oracle of the
    /// pruned scan and its slots, for the fuzz targets and tests.
    pub(crate) fn keep_all(&self) -> Mapper {
        let want = Want::everything();
        let located = locate(&self.columns, &want);
        let plans = vec![plan::Plan::General; self.columns.len()];
        Mapper {
            want,
            located,
            filter_located: None,
            filter_eq: None,
            plans,
            ..self.clone()
        }
    }

    /// [`scan::fast_agrees_after`] on this mapper's wants (for the fuzz
    /// targets), after the messages this thread checked before: their
    /// guesses of the keys, while the mapper's wants are the same.
    pub(crate) fn fast_agrees(&self, escaped: &str) -> bool {
        thread_local! {
            static PREDICT: std::cell::RefCell<scan::fast::Predict> =
                std::cell::RefCell::default();
        }
        PREDICT.with_borrow_mut(|p| {
            scan::fast_agrees_after(escaped, &self.want, p)
        })
    }

    /// The parse step of [`Mapper::map`] alone (for benches): the
    /// number of tape nodes, or `None` when the message is not JSON.
    pub(crate) fn scan_only(
        &self,
        message: &str,
        scratch: &mut MapScratch,
    ) -> Option<usize> {
        self.scan_tape(message, None, scratch)
    }

    /// [`Mapper::scan_only`] of an escaped message: the fast path first,
    /// or without `fast` the state machine alone.
    pub(crate) fn scan_escaped_only(
        &self,
        escaped: &str,
        fast: bool,
        scratch: &mut MapScratch,
    ) -> Option<usize> {
        self.scan_tape(escaped, Some(fast), scratch)
    }

    /// The scan of `text`, plain (`fast` `None`) or escaped, with or
    /// without the fast path.
    fn scan_tape(
        &self,
        text: &str,
        fast: Option<bool>,
        scratch: &mut MapScratch,
    ) -> Option<usize> {
        let MapScratch { scan, tape, .. } = scratch;
        let ScanScratch { arena, stack, starts, predict, .. } = scan;
        let mut t: Tape<'_> =
            std::mem::replace(tape, Tape(Vec::new())).reset();
        let (want, t0) = (&self.want, &mut t.0);
        let res = match fast {
            None => scan::scan(text, want, arena, stack, t0, starts),
            Some(fast) => scan::scan_escaped(
                text, fast, want, arena, stack, t0, starts, predict,
            ),
        };
        let n = res.ok().map(|()| t.0.len());
        *tape = t.reset();
        n
    }

    /// The filter by its plan ([`Mapper::filter_eq`]) on a message that
    /// is an object: whether it matches, or `None` where the value is not
    /// a string (the general path decides).
    #[inline(always)]
    fn planned_filter(&self, d: Json<'_>) -> Option<bool> {
        let (node, s, negate) = self.filter_eq.as_ref()?;
        let slot = *d.slots.get(*node as usize)?;
        if slot == scan::NO_SLOT {
            // No value: a string test does not match, `!=` neither.
            return Some(false);
        }
        match d.tape.get(slot as usize)? {
            Node::String(v) => Some((*v == &**s) != *negate),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn map_parsed<'a>(
        &self,
        ev: &LogEvent<'a>,
        msg: Message<'a>,
        doc: Option<Json<'a>>,
        parse_error: Option<&ScanError>,
        text: &mut Vec<u8>,
        w: &mut RowWriter,
        row_truncated: &mut Vec<usize>,
        out: &mut Vec<u8>,
    ) -> MapOutcome {
        if let Some(f) = &self.filter {
            if f.needs_json() && doc.is_none() {
                return MapOutcome::Filtered;
            }
            // A JSON pattern reads only the tape (the one-pass path has
            // no unescaped message and takes only those), each selector
            // from its slot.
            let hit = match (&self.filter_located, doc) {
                (Some(at), Some(d)) if f.needs_json() => {
                    d.object
                        && self.planned_filter(d).unwrap_or_else(|| {
                            f.matches_json_with(&mut |id, steps| {
                                selected(d, at.get(id).copied(), steps)
                            })
                        })
                }
                _ => f.matches(
                    ev.message,
                    doc.and_then(|d| d.whole).map(Tape::as_value),
                ),
            };
            if !hit {
                return MapOutcome::Filtered;
            }
        }
        if self.non_json == NonJson::Reject {
            if self.columns_need_json && doc.is_none() {
                let reason = match parse_error {
                    Some(e) => format!("message is not JSON: {e}"),
                    None => "message is not JSON".to_owned(),
                };
                return MapOutcome::Rejected(Reject {
                    column: None,
                    code: code::NOT_JSON,
                    reason,
                });
            }
            if let Some(d) =
                doc.filter(|d| self.columns_read_paths && !d.object)
            {
                let what = match d.tape.first() {
                    Some(Node::Array { .. }) => "an array",
                    Some(Node::String(_)) => "a string",
                    Some(Node::Static(StaticNode::Null)) => "null",
                    Some(Node::Static(StaticNode::Bool(_))) => "a boolean",
                    _ => "a number",
                };
                return MapOutcome::Rejected(Reject {
                    column: None,
                    code: code::NOT_OBJECT,
                    reason: format!(
                        "message is JSON but not an object ({what}): no \
                         path selects from it"
                    ),
                });
            }
        }
        let start = out.len();
        for (i, col) in self.columns.iter().enumerate() {
            let plan = self.plans.get(i).copied();
            if plan.is_some_and(|p| self.planned(p, ev, msg, doc, w, out)) {
                continue;
            }
            let at = self.located.get(i).copied().flatten();
            match self.column(col, at, ev, msg, doc, text, w, out) {
                Ok(false) => {}
                Ok(true) => row_truncated.push(i),
                Err((code, reason)) => {
                    out.truncate(start);
                    w.discard_row();
                    return MapOutcome::Rejected(Reject {
                        column: Some(col.name.clone()),
                        code,
                        reason,
                    });
                }
            }
        }
        w.end_row(out);
        let row = out.len() - start;
        if self.dialect == Dialect::Redshift && row > REDSHIFT_ROW_MAX {
            out.truncate(start);
            return MapOutcome::Rejected(Reject {
                column: None,
                code: code::ROW_TOO_LARGE,
                reason: format!(
                    "row is {row} bytes as CSV, more than Redshift's COPY \
                     limit of {REDSHIFT_ROW_MAX} bytes (4 MB) for one row"
                ),
            });
        }
        MapOutcome::Row
    }

    /// Writes one column's field: `Ok(true)` when it was truncated, `Err`
    /// the reject code and reason.
    #[allow(clippy::too_many_arguments)]
    fn column<'a>(
        &self,
        col: &Column,
        at: Option<(u32, usize)>,
        ev: &LogEvent<'a>,
        msg: Message<'a>,
        doc: Option<Json<'a>>,
        text: &mut Vec<u8>,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> Result<bool, ColumnReject> {
        let val = value(col, at, ev, msg, doc);
        if let Val::Missing = val {
            return match &col.default {
                Some((d, _)) => w
                    .field(out, d)
                    .map(|()| false)
                    .map_err(|e| (e.code(), e.to_string())),
                None if col.required => Err((
                    code::MISSING_REQUIRED,
                    "required value is missing".to_owned(),
                )),
                None => {
                    w.null(out);
                    Ok(false)
                }
            };
        }
        if let (Val::Tree(i), Kind::Json { max_bytes }, Some(d)) =
            (val, col.kind, doc)
        {
            if self.raw_json_field(d, i, msg, max_bytes, w, out) {
                return Ok(false);
            }
        }
        // A valid JSON text holds no raw NUL (control characters are not
        // allowed in its strings, nor anywhere else), and unescaped
        // strings live in scratch, not in the message: so text borrowed
        // from a message that parsed needs no NUL check.
        let json_text = doc.map(|_| msg.scanned.as_bytes().as_ptr_range());
        match self.write_value(col, val, doc, json_text, text, w, out) {
            Ok(truncated) => Ok(truncated),
            Err(f @ (Fail::Mismatch(_) | Fail::NotJson)) => {
                match col.on_mismatch {
                    OnMismatch::Null => {
                        w.null(out);
                        Ok(false)
                    }
                    OnMismatch::Reject => Err(match f {
                        Fail::Mismatch(m) => {
                            (code::TYPE_MISMATCH, m.to_owned())
                        }
                        _ => {
                            (code::NOT_JSON, "message is not JSON".to_owned())
                        }
                    }),
                }
            }
            Err(Fail::Nul) => Err((
                code::NUL_CHAR,
                "value contains a NUL character (U+0000)".to_owned(),
            )),
            Err(Fail::TooLong { len, max, database: false }) => Err((
                code::TOO_LONG,
                format!("value is {len} bytes, more than max_bytes = {max}"),
            )),
            Err(Fail::TooLong { len, max, database: true }) => Err((
                code::TOO_LONG,
                format!(
                    "value is {len} bytes, more than PostgreSQL's 1 GB \
                     field limit ({max} bytes)"
                ),
            )),
            Err(Fail::Marker) => {
                Err((code::NULL_MARKER, FieldError::NullMarker.to_string()))
            }
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
    ) -> Result<bool, Fail> {
        text.clear();
        if let (Val::Escaped(e, quotes_only), Kind::Text { max_bytes, .. }) =
            (val, col.kind)
        {
            if self.escaped_text_field(e, quotes_only, max_bytes, w, out) {
                return Ok(false);
            }
            crate::decode::onepass::unescape(e.as_bytes(), text);
        }
        let conv = match val {
            Val::Escaped(..) => Conv::InText,
            _ => self.convert(col.kind, val, doc, text)?,
        };
        // Digits and times the converter wrote (itoa, ryu, the RFC 3339
        // formatter): ASCII, so valid UTF-8 without a check, no NUL, and
        // no limit of their kind's to apply.
        if let (
            Conv::Clean,
            Kind::Int | Kind::Float | Kind::Timestamp { .. },
        ) = (conv, col.kind)
        {
            self.within_field_max(text.len())?;
            debug_assert!(text.is_ascii());
            return w
                .field_bytes_without_nul(out, text)
                .map(|()| false)
                .map_err(|_| Fail::Marker);
        }
        let mut s = match conv {
            Conv::Borrowed(s) => s,
            Conv::InText | Conv::Clean => std::str::from_utf8(text)
                .map_err(|_| Fail::Mismatch("not valid UTF-8"))?,
        };
        let in_json = |s: &str| {
            matches!(conv, Conv::Borrowed(_))
                && json_text.as_ref().is_some_and(|m| borrowed_from(s, m))
        };
        if !in_json(s)
            && !matches!(conv, Conv::Clean)
            && memchr(0, s.as_bytes()).is_some()
        {
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
        let mut truncated = false;
        match col.kind {
            Kind::Text { max_bytes, overflow } if s.len() > max_bytes => {
                if overflow == spec::Overflow::Reject {
                    return Err(Fail::TooLong {
                        len: s.len(),
                        max: max_bytes,
                        database: false,
                    });
                }
                s = utf8_prefix(s, max_bytes);
                truncated = true;
            }
            Kind::Json { max_bytes } if s.len() > max_bytes => {
                return Err(Fail::TooLong {
                    len: s.len(),
                    max: max_bytes,
                    database: false,
                });
            }
            _ => {}
        }
        self.within_field_max(s.len())?;
        // `s` holds no NUL now: checked, stripped or known.
        w.field_without_nul(out, s).map(|()| truncated).map_err(|e| match e {
            FieldError::Nul { .. } => Fail::Nul,
            _ => Fail::Marker,
        })
    }

    /// A field of `len` bytes fits the database's field limit.
    #[inline(always)]
    fn within_field_max(&self, len: usize) -> Result<(), Fail> {
        if len > self.field_max {
            return Err(Fail::TooLong {
                len,
                max: self.field_max,
                database: true,
            });
        }
        Ok(())
    }

    /// Writes the object or array at tape node `i` of a message on the
    /// one-pass path straight from its escaped source, when that is
    /// compact with no escape but `\"` (`raw_json`: unescaped, it is what
    /// `convert::write_json` gives) and within `max_bytes` and the field
    /// limit; otherwise writes nothing and returns `false`.
    #[inline(always)]
    fn raw_json_field(
        &self,
        d: Json<'_>,
        i: usize,
        msg: Message<'_>,
        max_bytes: usize,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> bool {
        if !msg.escaped {
            return false;
        }
        match d.lexemes.start(i).and_then(|at| raw_json(msg.scanned, at)) {
            // `raw_json` takes no escape but `\"`: it has one when the
            // unescaped length is shorter.
            Some((raw, len)) if len <= max_bytes && len <= self.field_max => {
                w.field_escaped(out, raw.as_bytes(), len < raw.len())
            }
            _ => false,
        }
    }

    /// Writes the text whose escaped form is `e` straight from it when it
    /// is within `max_bytes` and the field limit (unescaping never
    /// lengthens) and `RowWriter::field_escaped` takes it; otherwise
    /// writes nothing and returns `false`.
    #[inline(always)]
    fn escaped_text_field(
        &self,
        e: &str,
        quotes_only: bool,
        max_bytes: usize,
        w: &mut RowWriter,
        out: &mut Vec<u8>,
    ) -> bool {
        e.len() <= max_bytes
            && e.len() <= self.field_max
            && w.field_escaped(out, e.as_bytes(), quotes_only)
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
            Some(d) => {
                convert::write_json(d.tape, i, Some(d.lexemes), self.nul, text)
                    .map(|()| Conv::Clean)
                    .map_err(|_| Fail::Nul)
            }
            None => Err(Fail::NotJson),
        };
        let int = |v: i64, text: &mut Vec<u8>| {
            text.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(Conv::Clean)
        };
        let float = |v: f64, text: &mut Vec<u8>| {
            if !v.is_finite() {
                return Err(Mismatch("not a finite number"));
            }
            text.extend_from_slice(
                ryu::Buffer::new().format_finite(v).as_bytes(),
            );
            Ok(Conv::Clean)
        };
        let ts = |ms: Option<i64>, text: &mut Vec<u8>| {
            let mut buf = [0u8; 24];
            match ms.and_then(|ms| convert::format_ms_bytes(ms, &mut buf)) {
                Some(s) => {
                    text.extend_from_slice(s);
                    Ok(Conv::Clean)
                }
                None => {
                    Err(Mismatch("not a timestamp between years 1 and 9999"))
                }
            }
        };
        if let Val::NotJson = val {
            return Err(Fail::NotJson);
        }
        match kind {
            // Text and JSON differ only in how a string is written.
            Kind::Text { .. } | Kind::Json { .. } => match val {
                Val::Str(s) if matches!(kind, Kind::Text { .. }) => {
                    Ok(Conv::Borrowed(s))
                }
                Val::Str(s) => convert::write_json_string(s, self.nul, text)
                    .map(|()| Conv::Clean)
                    .map_err(|_| Fail::Nul),
                Val::Bool(b) => Ok(Conv::Borrowed(bool_text(b))),
                Val::Num(n, node) => match lexeme(node) {
                    Some(l) => Ok(Conv::Borrowed(l)),
                    None if convert::write_number(n, text) => Ok(Conv::Clean),
                    None => Err(Mismatch("not a finite number")),
                },
                Val::EpochMs(v) => int(v, text),
                Val::Tree(i) => tree(i, text),
                Val::Missing | Val::NotJson | Val::Escaped(..) => {
                    Err(Mismatch("missing"))
                }
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
                    // A lexeme that is already what ryu would print for
                    // it is copied through.
                    Val::Num(StaticNode::F64(f), node) => {
                        match lexeme(node)
                            .filter(|l| convert::ryu_canonical(l))
                        {
                            Some(l) => return Ok(Conv::Borrowed(l)),
                            None => Some(f),
                        }
                    }
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

/// Where each column's path is in `want` ([`Mapper::located`]).
fn locate(columns: &[Column], want: &Want) -> Vec<Option<(u32, usize)>> {
    columns
        .iter()
        .map(|c| match &c.source {
            Source::Path(p) => {
                Some(want.locate(p.segments.iter().map_while(|s| match s {
                    path::Segment::Key(k) => Some(k.as_str()),
                    path::Segment::Index(_) => None,
                })))
            }
            Source::Meta(_) => None,
        })
        .collect()
}

/// Where each selector of `filter` is in `want` ([`Mapper::filter_located`]).
fn locate_filter(filter: &FilterPattern, want: &Want) -> Vec<(u32, usize)> {
    filter
        .json_selectors()
        .iter()
        .map(|steps| {
            want.locate(steps.iter().map_while(|s| match s {
                filter::Step::Key(k) => Some(&**k),
                filter::Step::Index(_) => None,
            }))
        })
        .collect()
}

/// The value a filter selector `steps` finds in `d`, from the slot of the
/// deepest node of its leading keys in the trie (`at`, from
/// [`locate_filter`]; the root when `None`), the rest looked up on the
/// tape: what `filter::resolve` finds from the root.
fn selected<'a>(
    d: Json<'a>,
    at: Option<(u32, usize)>,
    steps: &[filter::Step],
) -> Option<filter::Scalar<'a>> {
    let nodes: &[Node<'a>] = d.tape;
    let mut i = slot_start(d, at)?;
    for step in steps.get(at.map_or(0, |(_, used)| used)..)? {
        i = match step {
            filter::Step::Key(k) => path::member(nodes, i, k)?,
            filter::Step::Index(n) => path::element(nodes, i, *n)?,
        };
    }
    nodes.get(i).map(filter::Scalar::of_node)
}

/// The tape index a located path starts from: the slot of its deepest
/// node in the trie (`at`, from `Want::locate`), the root (tape node 0)
/// for the root or `None`; `None` when that node has no value in `d`.
fn slot_start(d: Json<'_>, at: Option<(u32, usize)>) -> Option<usize> {
    match at {
        Some((0, _)) | None => Some(0),
        Some((node, _)) => d
            .slots
            .get(node as usize)
            .filter(|&&s| s != scan::NO_SLOT)
            .map(|&s| s as usize),
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

/// The object or array whose `{` or `[` is at `start` of the escaped
/// message `escaped`, when it has no whitespace outside its strings and
/// no escape in them (every backslash of the escaped form is then a
/// string's `\"`): its escaped text and its length once unescaped.
/// Unescaped, that text is what `convert::write_json` writes for it
/// (compact, members in order, numbers as their lexemes, strings as
/// they are).
fn raw_json(escaped: &str, start: usize) -> Option<(&str, usize)> {
    let b = escaped.as_bytes();
    if !matches!(b.get(start), Some(b'[' | b'{')) {
        return None;
    }
    let (mut depth, mut in_string, mut quotes) = (0usize, false, 0usize);
    let mut i = start;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if b.get(i + 1) == Some(&b'"') => {
                in_string = !in_string;
                quotes += 1;
                i += 2;
                continue;
            }
            b'\\' => return None,
            _ if in_string => {}
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    let raw = escaped.get(start..=i)?;
                    return Some((raw, raw.len() - quotes));
                }
            }
            b' ' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The envelope string `meta` (`@id`, `@log_group`, `@log_stream`,
/// `@owner`, `@policy_level`) of `ev`, when it has one.
#[inline(always)]
fn envelope_str<'a>(meta: Meta, ev: &LogEvent<'a>) -> Option<&'a str> {
    match meta {
        Meta::Id => ev.id,
        Meta::LogGroup => ev.envelope.map(|e| e.log_group),
        Meta::LogStream => ev.envelope.map(|e| e.log_stream),
        Meta::Owner => ev.envelope.map(|e| e.owner),
        Meta::PolicyLevel => ev.envelope.and_then(|e| e.policy_level),
        _ => None,
    }
}

/// Whether `s` lies within the bytes `text` (a string borrowed from the
/// message, not one unescaped into scratch).
#[inline(always)]
fn borrowed_from(s: &str, text: &std::ops::Range<*const u8>) -> bool {
    let r = s.as_bytes().as_ptr_range();
    text.start <= r.start && r.end <= text.end
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
    at: Option<(u32, usize)>,
    ev: &LogEvent<'a>,
    msg: Message<'a>,
    doc: Option<Json<'a>>,
) -> Val<'a> {
    let opt = |s: Option<&'a str>| s.map_or(Val::Missing, Val::Str);
    match &col.source {
        Source::Path(p) => match doc {
            Some(d) if d.object => {
                // From the slot of the deepest node of the path in the
                // trie: the rest of the path is looked up on the tape.
                let used = at.map_or(0, |(_, used)| used);
                slot_start(d, at)
                    .and_then(|i| p.lookup_from(d.tape, i, used))
                    .map_or(Val::Missing, |i| node_val(d.tape, i))
            }
            _ => Val::Missing,
        },
        Source::Meta(m) => match m {
            Meta::Timestamp => ev.timestamp.map_or(Val::Missing, Val::EpochMs),
            Meta::Id
            | Meta::LogGroup
            | Meta::LogStream
            | Meta::Owner
            | Meta::PolicyLevel => opt(envelope_str(*m, ev)),
            Meta::Object => Val::Str(ev.object),
            Meta::Member => ev
                .member
                .map_or(Val::Missing, |m| Val::Num(StaticNode::U64(m), None)),
            Meta::Message => match (col.kind, doc) {
                (Kind::Json { .. }, Some(d)) => node_val(d.tape, 0),
                (Kind::Json { .. }, None) => Val::NotJson,
                _ if msg.escaped => Val::Escaped(msg.scanned, msg.quotes_only),
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
