//! The column spec: which table, which events, and which columns from
//! which fields, read from TOML.
//!
//! ```toml
//! table = "integrated_user_log"
//! filter = '{ $.context.log_name = "specific-log" }'  # optional
//! non_json = "reject"      # or "raw"; default "reject"
//! nul = "reject"           # or "strip"; default "reject"
//!
//! [[columns]]
//! name = "event_time"
//! source = "@timestamp"    # "@…" metadata, anything else a JSON path
//! type = "timestamp"
//!
//! [[columns]]
//! name = "user_id"
//! source = "context.user_id"
//! type = "text"
//! on_mismatch = "null"     # or "reject"; default "null"
//! ```
//!
//! Column keys: `name`, `source`, `type` (required); `required`
//! (bool), `default`, `on_mismatch`; `max_bytes` and `overflow` (`text`,
//! `json`); `unit` (`timestamp`).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::convert::{self, NulPolicy, TimeUnit};
use super::filter::FilterPattern;
use super::path::Path;

/// Redshift's VARCHAR limit, and the default `max_bytes` of `text`
/// columns for Redshift.
pub(crate) const VARCHAR_MAX: u64 = 65_535;
/// The `max_bytes` of a `text` column that does not set it: the mapper
/// puts its dialect's default in its place ([`VARCHAR_MAX`] for
/// Redshift; none for PostgreSQL, whose field limit is
/// [`PG_FIELD_MAX`]).
pub(crate) const TEXT_MAX_DIALECT: usize = usize::MAX;
/// The longest field value PostgreSQL stores, in bytes: a varlena datum
/// is at most 1 GiB - 1 byte, its 4-byte header included. A longer value
/// is always rejected, whatever `max_bytes` and `overflow` say.
pub(crate) const PG_FIELD_MAX: usize = (1 << 30) - 1 - 4;
/// The default `max_bytes` of `json` columns: 1 MiB, the historical limit
/// of a Redshift SUPER value.
pub(crate) const JSON_MAX_DEFAULT: u64 = 1 << 20;

/// A checked column spec: which table, which events, and which columns
/// from which fields. Read it with [`ColumnSpec::from_toml`], compile it
/// with [`Mapper::new`](crate::Mapper::new).
///
/// # Format
///
/// ```toml
/// table = "integrated_user_log"   # one identifier, quoted in SQL
/// filter = '{ $.context.log_name = "specific-log" }'  # optional
/// non_json = "reject"   # or "raw"           (default "reject")
/// nul = "reject"        # or "strip"         (default "reject")
///
/// [[columns]]
/// name = "event_time"
/// source = "@timestamp"
/// type = "timestamp"
///
/// [[columns]]
/// name = "user_id"
/// source = "context.user_id"
/// type = "text"
/// on_mismatch = "null"  # or "reject"        (default "null")
/// ```
///
/// Unknown keys are errors. Column keys:
///
/// | key           | meaning |
/// |---------------|---------|
/// | `name`        | column name (required) |
/// | `source`      | `@…` metadata or a JSON path (required) |
/// | `type`        | `text`, `int`, `float`, `bool`, `timestamp`, `json` (required) |
/// | `required`    | `true`: a missing value rejects the event |
/// | `default`     | value used when missing (converted like the type; a TOML datetime or RFC 3339 string or epoch number for `timestamp`, a JSON text string for `json`) |
/// | `on_mismatch` | `"null"` or `"reject"` for a value of the wrong type |
/// | `max_bytes`   | `text`: the dialect's limit by default (Redshift: 65535, the VARCHAR maximum; PostgreSQL: none); `json`: default 1 MiB |
/// | `overflow`    | `text` only: `"reject"` (default, as Redshift's `COPY` without `TRUNCATECOLUMNS`) or `"truncate"` (cut on a UTF-8 boundary, counted per column in the summary); a `json` value over `max_bytes` is always rejected |
/// | `unit`        | `timestamp` only: epoch numbers are `"s"`, `"ms"` (default), `"us"` or `"ns"` |
///
/// **Sources.** Metadata: `@timestamp` (epoch ms), `@id`, `@log_group`,
/// `@log_stream`, `@owner`, `@policy_level`, `@message` (the raw message;
/// with `type = "json"`, the parsed message), `@object` (S3 key or file),
/// `@member` (gzip member index). Anything else is a path into the message
/// JSON:
///
/// ```text
/// path    := ['$'] first rest*          context.user_id   $.a.b
/// first   := key | '[' quoted ']'       tags[0]           m[0][1]
/// rest    := '.' key | bracket          "a.b"."c d"       ["a.b"].x
/// key     := bare | quoted
/// bare    := one or more characters other than . [ ] " and whitespace
/// quoted  := '"' (any char but " and \ | '\"' | '\\')* '"'
/// bracket := '[' digits ']' | '[' quoted ']'
/// ```
///
/// A key starting with `@` or `$` must be quoted (`"@timestamp"`), and a
/// path starts with a key (the message is an object). When an object
/// repeats a key, the **last** one counts, at every depth, as in jq,
/// PostgreSQL's `jsonb`, JavaScript and Python (a `json` column still
/// writes the object as it came, repeats included).
///
/// **Missing** means: the key is absent, the value is JSON `null`, the
/// metadata is absent (`@id` of line-framed input), or, with
/// `non_json = "raw"`, any path of a message that is not JSON. A missing
/// value gives `default`, else rejects the event if `required`, else NULL.
///
/// **Types.**
///
/// | type        | accepts | writes |
/// |-------------|---------|--------|
/// | `text`      | strings as is; numbers as their source lexeme; `true`/`false`; objects and arrays as compact JSON | the text |
/// | `int`       | integers in i64 range (exactly, from the lexeme); floats without fraction (`1e3`); strings of an integer (`"42"`) | decimal |
/// | `float`     | finite numbers; strings that parse as finite numbers | shortest round-trip text (`ryu`) |
/// | `bool`      | `true`, `false`, `"true"`, `"false"` | `true` / `false` |
/// | `timestamp` | epoch numbers in `unit`; RFC 3339 strings with `Z` or an offset (fraction truncated to ms; no leap second) | `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, years 1 to 9999 only |
/// | `json`      | anything; a string becomes a JSON string | compact JSON, numbers as their lexeme |
///
/// A value the type does not accept is a mismatch: NULL, or a rejected
/// event with `on_mismatch = "reject"`.
///
/// **Non-JSON messages.** When a column reads the message JSON and the
/// message does not parse: `non_json = "reject"` rejects the event (code
/// `not_json`); `"raw"` keeps it, paths missing, metadata and `@message`
/// kept. A message that is JSON but not an object (`42`, `"text"`,
/// `[1,2]`, `null`, `true`) has no paths: when a column reads a path,
/// `"reject"` rejects it (code `not_object`) and `"raw"` keeps it, paths
/// missing, `@message` intact (as `json` too). A JSON filter never
/// matches a message that is not a JSON object (the event is filtered).
///
/// **Over-long text.** Without `max_bytes`, a `text` column's limit is
/// the dialect's: 65,535 bytes for Redshift (VARCHAR), none for
/// PostgreSQL. A value over `max_bytes` rejects the event (code
/// `too_long`) unless `overflow = "truncate"`; a value over PostgreSQL's
/// 1 GB field limit is always rejected.
///
/// **NUL.** U+0000 is never written: `nul = "reject"` rejects the event,
/// `"strip"` drops the character (inside JSON strings too).
///
/// # Example
///
/// ```
/// let spec = cwl_copy::ColumnSpec::from_toml(r#"
/// table = "logs"
/// [[columns]]
/// name = "t"
/// source = "@timestamp"
/// type = "timestamp"
/// "#)?;
/// assert_eq!(spec.table(), "logs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ColumnSpec {
    pub(crate) table: String,
    pub(crate) table_pos: Pos,
    pub(crate) filter: Option<(String, Pos)>,
    pub(crate) non_json: NonJson,
    pub(crate) nul: NulPolicy,
    pub(crate) columns: Vec<Column>,
}

/// A line and column in the spec text, both from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A spec that could not be read: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column spec, line {line}, column {column}: {message}")]
#[non_exhaustive]
pub struct SpecError {
    /// Line in the TOML text, from 1.
    pub line: usize,
    /// Column in the TOML text, in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl SpecError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> SpecError {
        SpecError {
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// What to do with a message that is not JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NonJson {
    /// Reject the event.
    #[default]
    Reject,
    /// Keep it: message-path columns count as missing.
    Raw,
}

/// What to do with a value of the wrong type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnMismatch {
    /// Write NULL.
    #[default]
    Null,
    /// Reject the event.
    Reject,
}

/// What to do with text longer than `max_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Overflow {
    /// Cut at the last UTF-8 character boundary within the limit, and
    /// count it.
    Truncate,
    /// Reject the event, as Redshift's `COPY` does without
    /// `TRUNCATECOLUMNS`.
    #[default]
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TypeName {
    Text,
    Int,
    Float,
    Bool,
    Timestamp,
    Json,
}

/// Event metadata a column can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Meta {
    Timestamp,
    Id,
    LogGroup,
    LogStream,
    Owner,
    PolicyLevel,
    Message,
    Object,
    Member,
}

const METAS: &[(&str, Meta)] = &[
    ("@timestamp", Meta::Timestamp),
    ("@id", Meta::Id),
    ("@log_group", Meta::LogGroup),
    ("@log_stream", Meta::LogStream),
    ("@owner", Meta::Owner),
    ("@policy_level", Meta::PolicyLevel),
    ("@message", Meta::Message),
    ("@object", Meta::Object),
    ("@member", Meta::Member),
];

/// Where a column's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Meta(Meta),
    Path(Path),
}

/// A column's type with its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Text { max_bytes: usize, overflow: Overflow },
    Int,
    Float,
    Bool,
    Timestamp { unit: TimeUnit },
    Json { max_bytes: usize },
}

/// One validated column.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) name_pos: Pos,
    pub(crate) source: Source,
    pub(crate) kind: Kind,
    /// Where `max_bytes` was given, for dialect checks.
    pub(crate) max_bytes_pos: Option<Pos>,
    pub(crate) required: bool,
    /// The default, already as field text.
    pub(crate) default: Option<(String, Pos)>,
    pub(crate) on_mismatch: OnMismatch,
}

impl Column {
    /// Whether the column reads the message as JSON.
    pub(crate) fn needs_json(&self) -> bool {
        match self.source {
            Source::Path(_) => true,
            Source::Meta(Meta::Message) => {
                matches!(self.kind, Kind::Json { .. })
            }
            Source::Meta(_) => false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    table: Spanned<String>,
    #[serde(default)]
    filter: Option<Spanned<String>>,
    #[serde(default)]
    non_json: NonJson,
    #[serde(default)]
    nul: NulPolicy,
    columns: Spanned<Vec<RawColumn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: Spanned<String>,
    source: Spanned<String>,
    #[serde(rename = "type")]
    ty: Spanned<TypeName>,
    #[serde(default)]
    max_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    overflow: Option<Spanned<Overflow>>,
    #[serde(default)]
    unit: Option<Spanned<TimeUnit>>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<Spanned<toml::Value>>,
    #[serde(default)]
    on_mismatch: OnMismatch,
}

/// Turns byte offsets of the TOML text into line and column.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.0.len());
        while !self.0.is_char_boundary(offset) {
            offset = offset.saturating_sub(1);
        }
        let before = self.0.get(..offset).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).unwrap_or("").chars().count() + 1,
        }
    }

    fn span(&self, span: Range<usize>) -> Pos {
        self.pos(span.start)
    }
}

impl ColumnSpec {
    /// Reads and checks a spec.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] with the line and column of the first problem:
    /// TOML syntax, an unknown key, a missing key, an unknown type or
    /// option value, a bad path or filter pattern, an option that does
    /// not fit the type, a default that does not convert, a duplicate
    /// column name.
    pub fn from_toml(text: &str) -> Result<ColumnSpec, SpecError> {
        let lines = Lines(text);
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let pos =
                e.span().map_or(Pos { line: 1, column: 1 }, |s| lines.span(s));
            SpecError::at(pos, e.message().trim_end())
        })?;

        let table_pos = lines.span(raw.table.span());
        let table = raw.table.into_inner();
        check_identifier(&table, table_pos, "table")?;

        let filter = match raw.filter {
            Some(f) => {
                let pos = lines.span(f.span());
                let pattern = f.into_inner();
                if let Err(e) = FilterPattern::parse(&pattern) {
                    return Err(SpecError::at(
                        pos,
                        format!("bad filter pattern: {e}"),
                    ));
                }
                Some((pattern, pos))
            }
            None => None,
        };

        let columns_pos = lines.span(raw.columns.span());
        let raw_columns = raw.columns.into_inner();
        if raw_columns.is_empty() {
            return Err(SpecError::at(columns_pos, "no columns"));
        }
        let mut columns: Vec<Column> = Vec::with_capacity(raw_columns.len());
        for rc in raw_columns {
            let col = column(rc, &lines, raw.nul)?;
            if columns.iter().any(|c| c.name == col.name) {
                return Err(SpecError::at(
                    col.name_pos,
                    format!("duplicate column name {:?}", col.name),
                ));
            }
            columns.push(col);
        }
        Ok(ColumnSpec {
            table,
            table_pos,
            filter,
            non_json: raw.non_json,
            nul: raw.nul,
            columns,
        })
    }

    /// The table name, as written in the spec.
    #[must_use = "this getter has no side effect"]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Loads into `name` instead of the spec's `table` (the CLI's
    /// `--table`).
    pub fn set_table(&mut self, name: &str) {
        name.clone_into(&mut self.table);
    }

    /// The first column whose source is `@id`: the natural key for
    /// event-level deduplication.
    #[must_use]
    pub fn id_column(&self) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.source == Source::Meta(Meta::Id))
            .map(|c| c.name.as_str())
    }

    /// The column names, in order.
    pub fn column_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// This spec with a first text column `name` holding each event's
    /// object name (`@object`; never truncated: a name over 65,535 bytes
    /// rejects the event), for a loader that must know which object each
    /// row came from (Redshift's staging table).
    #[must_use]
    pub fn with_object_column(&self, name: &str) -> ColumnSpec {
        let mut spec = self.clone();
        spec.columns.insert(
            0,
            Column {
                name: name.to_owned(),
                name_pos: Pos::default(),
                source: Source::Meta(Meta::Object),
                kind: Kind::Text {
                    max_bytes: 65_535,
                    overflow: Overflow::Reject,
                },
                max_bytes_pos: None,
                required: true,
                default: None,
                on_mismatch: OnMismatch::Reject,
            },
        );
        spec
    }
}

impl FromStr for ColumnSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<ColumnSpec, SpecError> {
        ColumnSpec::from_toml(s)
    }
}

fn check_identifier(
    name: &str,
    pos: Pos,
    what: &str,
) -> Result<(), SpecError> {
    if name.is_empty() {
        return Err(SpecError::at(pos, format!("empty {what} name")));
    }
    if name.contains('\0') {
        return Err(SpecError::at(pos, format!("NUL in {what} name")));
    }
    Ok(())
}

fn column(
    rc: RawColumn,
    lines: &Lines<'_>,
    nul: NulPolicy,
) -> Result<Column, SpecError> {
    let name_pos = lines.span(rc.name.span());
    let name = rc.name.into_inner();
    check_identifier(&name, name_pos, "column")?;

    let source_pos = lines.span(rc.source.span());
    let source_text = rc.source.into_inner();
    let source = if source_text.starts_with('@') {
        match METAS.iter().find(|(n, _)| *n == source_text) {
            Some(&(_, m)) => Source::Meta(m),
            None => {
                let known: Vec<&str> = METAS.iter().map(|m| m.0).collect();
                return Err(SpecError::at(
                    source_pos,
                    format!(
                        "unknown metadata source {source_text:?} (known: {}; \
                         quote a JSON key that starts with @)",
                        known.join(", ")
                    ),
                ));
            }
        }
    } else {
        match Path::parse(&source_text) {
            Ok(p) => Source::Path(p),
            Err(e) => {
                return Err(SpecError::at(
                    source_pos,
                    format!(
                        "bad path {source_text:?} at byte {}: {}",
                        e.offset, e.message
                    ),
                ))
            }
        }
    };

    let ty_pos = lines.span(rc.ty.span());
    let ty = rc.ty.into_inner();
    let max_bytes_pos = rc.max_bytes.as_ref().map(|s| lines.span(s.span()));
    let overflow_pos = rc.overflow.as_ref().map(|s| lines.span(s.span()));
    let unit_pos = rc.unit.as_ref().map(|s| lines.span(s.span()));
    let max_bytes = rc.max_bytes.map(Spanned::into_inner);
    let overflow = rc.overflow.map(Spanned::into_inner);
    let unit = rc.unit.map(Spanned::into_inner);

    let not_for = |pos: Option<Pos>, key: &str| match pos {
        Some(p) => Err(SpecError::at(
            p,
            format!("`{key}` does not apply to type {ty:?}").to_lowercase(),
        )),
        None => Ok(()),
    };
    let bytes = |default: u64| -> Result<usize, SpecError> {
        let v = max_bytes.unwrap_or(default);
        let pos = max_bytes_pos.unwrap_or(ty_pos);
        if v == 0 {
            return Err(SpecError::at(pos, "`max_bytes` must be at least 1"));
        }
        usize::try_from(v)
            .map_err(|_| SpecError::at(pos, "`max_bytes` is too large"))
    };
    let kind = match ty {
        TypeName::Text => {
            not_for(unit_pos, "unit")?;
            Kind::Text {
                // Unset: `Mapper::new` puts in the dialect's limit.
                max_bytes: match max_bytes {
                    Some(_) => bytes(0)?,
                    None => TEXT_MAX_DIALECT,
                },
                overflow: overflow.unwrap_or_default(),
            }
        }
        TypeName::Json => {
            not_for(unit_pos, "unit")?;
            if let (Some(Overflow::Truncate), Some(p)) =
                (overflow, overflow_pos)
            {
                return Err(SpecError::at(
                    p,
                    "a json column cannot be truncated: use overflow = \
                     \"reject\"",
                ));
            }
            Kind::Json { max_bytes: bytes(JSON_MAX_DEFAULT)? }
        }
        other => {
            not_for(max_bytes_pos, "max_bytes")?;
            not_for(overflow_pos, "overflow")?;
            match other {
                TypeName::Timestamp => {
                    Kind::Timestamp { unit: unit.unwrap_or_default() }
                }
                _ => {
                    not_for(unit_pos, "unit")?;
                    match other {
                        TypeName::Int => Kind::Int,
                        TypeName::Float => Kind::Float,
                        _ => Kind::Bool,
                    }
                }
            }
        }
    };

    let default = match rc.default {
        Some(d) => {
            let pos = lines.span(d.span());
            if rc.required {
                return Err(SpecError::at(
                    pos,
                    "a column cannot be both `required` and have a `default`",
                ));
            }
            let text = default_text(d.get_ref(), kind, nul)
                .map_err(|m| SpecError::at(pos, m))?;
            Some((text, pos))
        }
        None => None,
    };

    Ok(Column {
        name,
        name_pos,
        source,
        kind,
        max_bytes_pos,
        required: rc.required,
        default,
        on_mismatch: rc.on_mismatch,
    })
}

/// The field text of a `default`, converted as a value of the column's
/// type would be.
fn default_text(
    v: &toml::Value,
    kind: Kind,
    nul: NulPolicy,
) -> Result<String, String> {
    use toml::Value as V;
    let wrong = || Err(format!("default {v} does not fit the column type"));
    let text = match (kind, v) {
        (Kind::Text { .. }, V::String(s)) => s.clone(),
        (Kind::Text { .. }, V::Integer(i)) => i.to_string(),
        (Kind::Text { .. }, V::Float(f)) if f.is_finite() => {
            ryu::Buffer::new().format_finite(*f).to_owned()
        }
        (Kind::Text { .. }, V::Boolean(b)) => b.to_string(),
        (Kind::Int, V::Integer(i)) => i.to_string(),
        (Kind::Float, V::Integer(i)) => i.to_string(),
        (Kind::Float, V::Float(f)) if f.is_finite() => {
            ryu::Buffer::new().format_finite(*f).to_owned()
        }
        (Kind::Bool, V::Boolean(b)) => b.to_string(),
        (Kind::Timestamp { unit }, V::Integer(i)) => {
            let Some(ms) = unit.int_to_ms(*i) else { return wrong() };
            timestamp_text(ms)?
        }
        (Kind::Timestamp { .. }, V::String(s)) => {
            let Some(ms) = convert::parse_rfc3339(s) else { return wrong() };
            timestamp_text(ms)?
        }
        (Kind::Timestamp { .. }, V::Datetime(d)) => {
            let s = d.to_string();
            let Some(ms) = convert::parse_rfc3339(&s) else {
                return Err(format!(
                    "default {s} needs a date, a time and an offset"
                ));
            };
            timestamp_text(ms)?
        }
        (Kind::Json { .. }, V::String(s)) => {
            let mut bytes = s.clone().into_bytes();
            let tape = simd_json::to_tape(&mut bytes)
                .map_err(|e| format!("default is not JSON: {e}"))?;
            let mut out = Vec::new();
            convert::write_json(&tape.0, 0, None, nul, &mut out)
                .map_err(|_| "NUL in default".to_owned())?;
            String::from_utf8(out).map_err(|e| e.to_string())?
        }
        (Kind::Json { .. }, V::Integer(i)) => i.to_string(),
        (Kind::Json { .. }, V::Float(f)) if f.is_finite() => {
            ryu::Buffer::new().format_finite(*f).to_owned()
        }
        (Kind::Json { .. }, V::Boolean(b)) => b.to_string(),
        _ => return wrong(),
    };
    let text = match nul {
        NulPolicy::Strip => text.replace('\0', ""),
        NulPolicy::Reject if text.contains('\0') => {
            return Err("NUL in default".to_owned())
        }
        NulPolicy::Reject => text,
    };
    match kind {
        Kind::Text { max_bytes, .. } | Kind::Json { max_bytes }
            if text.len() > max_bytes =>
        {
            Err(format!(
                "default is {} bytes, more than max_bytes = {max_bytes}",
                text.len()
            ))
        }
        _ => Ok(text),
    }
}

fn timestamp_text(ms: i64) -> Result<String, String> {
    let mut buf = [0u8; 24];
    convert::format_ms(ms, &mut buf)
        .map(str::to_owned)
        .ok_or_else(|| "default timestamp out of range".to_owned())
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
table = "integrated_user_log"
filter = '{ $.context.log_name = "specific-log" }'
non_json = "raw"
nul = "strip"

[[columns]]
name = "event_time"
source = "@timestamp"
type = "timestamp"

[[columns]]
name = "user_id"
source = "context.user_id"
type = "text"
max_bytes = 64
overflow = "reject"
on_mismatch = "reject"

[[columns]]
name = "at"
source = 'a["b.c"][0]'
type = "timestamp"
unit = "s"
default = 1970-01-01T00:00:00Z

[[columns]]
name = "n"
source = "n"
type = "int"
required = true

[[columns]]
name = "doc"
source = "@message"
type = "json"
default = '{ "a" : [1.0, 2] }'
"#;

    #[test]
    fn good_spec() {
        let s = ColumnSpec::from_toml(GOOD).unwrap();
        assert_eq!(s.table(), "integrated_user_log");
        assert_eq!(
            s.column_names().collect::<Vec<_>>(),
            ["event_time", "user_id", "at", "n", "doc"]
        );
        assert_eq!(s.non_json, NonJson::Raw);
        assert_eq!(s.nul, NulPolicy::Strip);
        assert!(s.filter.is_some());
        let c = &s.columns;
        assert_eq!(c[0].source, Source::Meta(Meta::Timestamp));
        assert_eq!(c[0].kind, Kind::Timestamp { unit: TimeUnit::Millis });
        assert_eq!(
            c[1].kind,
            Kind::Text { max_bytes: 64, overflow: Overflow::Reject }
        );
        assert_eq!(c[1].on_mismatch, OnMismatch::Reject);
        assert_eq!(c[2].kind, Kind::Timestamp { unit: TimeUnit::Seconds });
        assert_eq!(
            c[2].default.as_ref().map(|d| d.0.as_str()),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert!(c[3].required);
        assert_eq!(c[4].kind, Kind::Json { max_bytes: 1 << 20 });
        assert_eq!(
            c[4].default.as_ref().map(|d| d.0.as_str()),
            Some(r#"{"a":[1.0,2]}"#)
        );
        assert!(c[4].needs_json());
        // Defaults of the minimal spec.
        let s = ColumnSpec::from_toml(
            "table='t'\n[[columns]]\nname='m'\nsource='@message'\ntype='text'",
        )
        .unwrap();
        assert_eq!(s.non_json, NonJson::Reject);
        assert_eq!(s.nul, NulPolicy::Reject);
        assert_eq!(
            s.columns[0].kind,
            Kind::Text {
                max_bytes: TEXT_MAX_DIALECT,
                overflow: Overflow::Reject
            }
        );
        assert_eq!(s.columns[0].on_mismatch, OnMismatch::Null);
        assert!(!s.columns[0].needs_json());
        assert!(s.filter.is_none());
    }

    /// Each case: the spec text, and the expected line, column and a
    /// piece of the message.
    #[test]
    fn errors() {
        let col = |body: &str| {
            format!("table = \"t\"\n[[columns]]\nname = \"c\"\n{body}\n")
        };
        let cases: Vec<(String, usize, usize, &str)> = vec![
            ("table = ".into(), 1, 9, "string"),
            ("table = \"t\"\ncolumns = []\n".into(), 2, 11, "no columns"),
            ("table = \"t\"\n".into(), 1, 1, "columns"),
            (
                "table = \"t\"\nbogus = 1\n[[columns]]\n".into(),
                2,
                1,
                "unknown field",
            ),
            (col("source = \"a\"\ntype = \"text\"\ncolour = 1"), 6, 1, "unknown field"),
            (col("source = \"a\"\ntype = \"varchar\""), 5, 8, "unknown variant"),
            (col("source = \"a\""), 2, 1, "type"),
            (col("source = \"a..b\"\ntype = \"text\""), 4, 10, "bad path"),
            (col("source = \"@nope\"\ntype = \"text\""), 4, 10, "unknown metadata"),
            (col("source = \"a\"\ntype = \"int\"\nmax_bytes = 3"), 6, 13, "max_bytes"),
            (col("source = \"a\"\ntype = \"text\"\nmax_bytes = 0"), 6, 13, "at least 1"),
            (col("source = \"a\"\ntype = \"text\"\nunit = \"s\""), 6, 8, "unit"),
            (col("source = \"a\"\ntype = \"timestamp\"\nunit = \"h\""), 6, 8, "unknown variant"),
            (col("source = \"a\"\ntype = \"json\"\noverflow = \"truncate\""), 6, 12, "cannot be truncated"),
            (col("source = \"a\"\ntype = \"text\"\non_mismatch = \"skip\""), 6, 15, "unknown variant"),
            (col("source = \"a\"\ntype = \"int\"\ndefault = \"x\""), 6, 11, "does not fit"),
            (col("source = \"a\"\ntype = \"int\"\ndefault = 1\nrequired = true"), 6, 11, "both"),
            (col("source = \"a\"\ntype = \"json\"\ndefault = \"{\""), 6, 11, "not JSON"),
            (col("source = \"a\"\ntype = \"timestamp\"\ndefault = \"yesterday\""), 6, 11, "does not fit"),
            (col("source = \"a\"\ntype = \"text\"\nmax_bytes = 2\ndefault = \"abc\""), 7, 11, "more than"),
            (col("source = \"a\"\ntype = \"text\"\ndefault = \"a\\u0000\""), 6, 11, "NUL"),
            (col("source = \"a\"\ntype = \"text\"\nrequired = \"yes\""), 6, 12, "bool"),
            (
                "table = \"t\"\n[[columns]]\nname = \"c\"\nsource = \"a\"\n\
                 type = \"text\"\n[[columns]]\nname = \"c\"\nsource = \"b\"\n\
                 type = \"int\"\n"
                    .into(),
                7,
                8,
                "duplicate",
            ),
            (
                col("source = \"a\"\ntype = \"text\"").replace("\"t\"", "\"\""),
                1,
                9,
                "empty table",
            ),
            (col("source = \"a\"\ntype = \"text\"").replace("\"c\"", "\"\""), 3, 8, "empty column"),
            // Non-ASCII before the error: columns count characters.
            (col("source = \"日本.\"\ntype = \"text\""), 4, 10, "bad path"),
            (
                "table = \"t\" # 日本語\nnon_json = \"maybe\"\n".into(),
                2,
                12,
                "unknown variant",
            ),
        ];
        for (text, line, column, msg) in cases {
            let e = ColumnSpec::from_toml(&text).expect_err(&text);
            assert_eq!((e.line, e.column), (line, column), "{text}\n=> {e}");
            assert!(e.message.contains(msg), "{text}\n=> {e}");
            assert!(e
                .to_string()
                .contains(&format!("line {line}, column {column}")));
        }
    }
}
