//! The ledger and quarantine tables, and SQL identifier quoting.
//!
//! The **ledger** has one row per loaded object, keyed by its S3 key or
//! file path. A loader claims a batch's keys in the ledger in the same
//! transaction as the `COPY` of their rows, so a key is committed exactly
//! when its rows are:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "public"."cwl_copy_ledger" (
//!     "key" text PRIMARY KEY,
//!     "size" bigint NOT NULL,
//!     "etag" text,
//!     "content_hash" text NOT NULL,
//!     "events" bigint NOT NULL,
//!     "rows" bigint NOT NULL,
//!     "filtered" bigint NOT NULL,
//!     "rejected" bigint NOT NULL,
//!     "batch_id" text NOT NULL,
//!     "loaded_at" timestamptz NOT NULL DEFAULT now()
//! )
//! ```
//!
//! The **quarantine** keeps rejected events and undecodable byte ranges,
//! committed with the same transaction:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "public"."cwl_copy_quarantine" (
//!     "key" text NOT NULL,
//!     "member" bigint,
//!     "event_id" text,
//!     "offset" bigint,
//!     "kind" text NOT NULL,
//!     "reason" text NOT NULL,
//!     "message" text NOT NULL,
//!     "batch_id" text NOT NULL,
//!     "at" timestamptz NOT NULL DEFAULT now()
//! )
//! ```
//!
//! Every identifier goes through [`quote_ident`]; every value is a bound
//! parameter.

use std::fmt;

/// An identifier that cannot be quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentError {
    /// The identifier is empty.
    #[error("empty SQL identifier")]
    Empty,
    /// The identifier contains a NUL byte, which PostgreSQL cannot store.
    #[error("SQL identifier contains a NUL byte")]
    Nul,
}

/// Quotes `ident` as a PostgreSQL identifier: `"…"`, with each `"` doubled.
///
/// The result is always a single identifier, whatever `ident` holds, and
/// is case-sensitive (`"Logs"` is not `logs`).
///
/// # Errors
///
/// [`IdentError`] if `ident` is empty or holds a NUL byte.
///
/// # Example
///
/// ```
/// use cwl_copy::load::quote_ident;
///
/// assert_eq!(quote_ident("a\"b")?, "\"a\"\"b\"");
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn quote_ident(ident: &str) -> Result<String, IdentError> {
    if ident.is_empty() {
        return Err(IdentError::Empty);
    }
    if ident.contains('\0') {
        return Err(IdentError::Nul);
    }
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for c in ident.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A table name, optionally schema-qualified. Both parts are taken
/// verbatim (no case folding, no splitting on `.`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    /// A table `name` in `schema` (`None`: the `search_path`).
    ///
    /// # Errors
    ///
    /// [`IdentError`] if a part is empty or holds a NUL byte.
    pub fn new(
        schema: Option<&str>,
        name: &str,
    ) -> Result<TableName, IdentError> {
        if let Some(s) = schema {
            quote_ident(s)?;
        }
        quote_ident(name)?;
        Ok(TableName { schema: schema.map(str::to_owned), name: name.into() })
    }

    /// The schema, if qualified.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The unqualified name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quoted form, `"schema"."name"` or `"name"`.
    #[must_use]
    pub fn quoted(&self) -> String {
        self.to_string()
    }
}

/// Writes `"` + ident with doubled quotes + `"` (validity was checked at
/// construction).
fn write_quoted(f: &mut fmt::Formatter<'_>, ident: &str) -> fmt::Result {
    f.write_str("\"")?;
    f.write_str(&ident.replace('"', "\"\""))?;
    f.write_str("\"")
}

impl fmt::Display for TableName {
    /// The quoted, SQL-ready form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            write_quoted(f, s)?;
            f.write_str(".")?;
        }
        write_quoted(f, &self.name)
    }
}

/// Quotes each column and joins them with `, `.
///
/// # Errors
///
/// [`IdentError`] for an empty column name or one holding a NUL byte.
pub fn quote_columns(columns: &[String]) -> Result<String, IdentError> {
    let quoted: Vec<String> =
        columns.iter().map(|c| quote_ident(c)).collect::<Result<_, _>>()?;
    Ok(quoted.join(", "))
}

/// Default ledger table name.
pub const DEFAULT_LEDGER_TABLE: &str = "cwl_copy_ledger";
/// Default quarantine table name.
pub const DEFAULT_QUARANTINE_TABLE: &str = "cwl_copy_quarantine";

/// Where the ledger and quarantine live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerTables {
    /// The ledger table (default `cwl_copy_ledger`, unqualified).
    pub ledger: TableName,
    /// The quarantine table (default `cwl_copy_quarantine`, unqualified).
    pub quarantine: TableName,
}

impl Default for LedgerTables {
    fn default() -> Self {
        LedgerTables {
            ledger: TableName {
                schema: None,
                name: DEFAULT_LEDGER_TABLE.to_owned(),
            },
            quarantine: TableName {
                schema: None,
                name: DEFAULT_QUARANTINE_TABLE.to_owned(),
            },
        }
    }
}

impl LedgerTables {
    /// Both tables in `schema`, with names `ledger` and `quarantine`
    /// (`None`: the defaults).
    ///
    /// # Errors
    ///
    /// [`IdentError`] for an empty name or one holding a NUL byte.
    pub fn new(
        schema: Option<&str>,
        ledger: Option<&str>,
        quarantine: Option<&str>,
    ) -> Result<LedgerTables, IdentError> {
        Ok(LedgerTables {
            ledger: TableName::new(
                schema,
                ledger.unwrap_or(DEFAULT_LEDGER_TABLE),
            )?,
            quarantine: TableName::new(
                schema,
                quarantine.unwrap_or(DEFAULT_QUARANTINE_TABLE),
            )?,
        })
    }

    /// `CREATE SCHEMA IF NOT EXISTS` for each schema named, then
    /// `CREATE TABLE IF NOT EXISTS` for both tables.
    #[must_use]
    pub fn ddl(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in [self.ledger.schema(), self.quarantine.schema()]
            .into_iter()
            .flatten()
        {
            let sql = format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                TableName { schema: None, name: s.to_owned() }
            );
            if !out.contains(&sql) {
                out.push(sql);
            }
        }
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             \x20   \"key\" text PRIMARY KEY,\n\
             \x20   \"size\" bigint NOT NULL,\n\
             \x20   \"etag\" text,\n\
             \x20   \"content_hash\" text NOT NULL,\n\
             \x20   \"events\" bigint NOT NULL,\n\
             \x20   \"rows\" bigint NOT NULL,\n\
             \x20   \"filtered\" bigint NOT NULL,\n\
             \x20   \"rejected\" bigint NOT NULL,\n\
             \x20   \"batch_id\" text NOT NULL,\n\
             \x20   \"loaded_at\" timestamptz NOT NULL DEFAULT now()\n\
             )",
            self.ledger
        ));
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             \x20   \"key\" text NOT NULL,\n\
             \x20   \"member\" bigint,\n\
             \x20   \"event_id\" text,\n\
             \x20   \"offset\" bigint,\n\
             \x20   \"kind\" text NOT NULL,\n\
             \x20   \"reason\" text NOT NULL,\n\
             \x20   \"message\" text NOT NULL,\n\
             \x20   \"batch_id\" text NOT NULL,\n\
             \x20   \"at\" timestamptz NOT NULL DEFAULT now()\n\
             )",
            self.quarantine
        ));
        out
    }

    /// Claims keys: one row per element of the arrays `$1`…`$8` (key, size,
    /// etag, content_hash, events, rows, filtered, rejected), all with
    /// batch id `$9`. Returns the keys actually inserted; a key already
    /// there (or being inserted by an uncommitted transaction, which this
    /// waits for) is skipped.
    #[must_use]
    pub fn claim_sql(&self) -> String {
        format!(
            "INSERT INTO {} AS l (\"key\", \"size\", \"etag\", \
             \"content_hash\", \"events\", \"rows\", \"filtered\", \
             \"rejected\", \"batch_id\")\n\
             SELECT u.k, u.s, u.e, u.h, u.ev, u.r, u.f, u.rj, $9::text\n\
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], \
             $5::int8[], $6::int8[], $7::int8[], $8::int8[]) WITH \
             ORDINALITY AS u(k, s, e, h, ev, r, f, rj, n)\n\
             ORDER BY u.n\n\
             ON CONFLICT (\"key\") DO NOTHING\n\
             RETURNING l.\"key\"",
            self.ledger
        )
    }

    /// Keys of `$1::text[]` already in the ledger.
    #[must_use]
    pub fn loaded_sql(&self) -> String {
        format!(
            "SELECT \"key\" FROM {} WHERE \"key\" = ANY($1::text[])",
            self.ledger
        )
    }

    /// Keys of `$1::text[]` in the ledger with batch id `$2` (to recognise
    /// a commit whose acknowledgement was lost).
    #[must_use]
    pub fn committed_by_batch_sql(&self) -> String {
        format!(
            "SELECT \"key\" FROM {} WHERE \"key\" = ANY($1::text[]) \
             AND \"batch_id\" = $2::text",
            self.ledger
        )
    }

    /// Quarantine rows from the arrays `$1`…`$7` (key, member, event_id,
    /// offset, kind, reason, message), all with batch id `$8`.
    #[must_use]
    pub fn quarantine_sql(&self) -> String {
        format!(
            "INSERT INTO {} (\"key\", \"member\", \"event_id\", \"offset\", \
             \"kind\", \"reason\", \"message\", \"batch_id\")\n\
             SELECT u.k, u.m, u.e, u.o, u.kd, u.r, u.msg, $8::text\n\
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], \
             $5::text[], $6::text[], $7::text[]) AS u(k, m, e, o, kd, r, msg)",
            self.quarantine
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("t").unwrap(), "\"t\"");
        assert_eq!(quote_ident("My Table").unwrap(), "\"My Table\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE y; --").unwrap(),
            "\"x\"\"; DROP TABLE y; --\""
        );
        assert_eq!(quote_ident(""), Err(IdentError::Empty));
        assert_eq!(quote_ident("a\0b"), Err(IdentError::Nul));
        let t = TableName::new(Some("s\"x"), "t.y").unwrap();
        assert_eq!(t.to_string(), "\"s\"\"x\".\"t.y\"");
        assert_eq!(TableName::new(None, "t").unwrap().quoted(), "\"t\"");
        assert_eq!(
            quote_columns(&["a".into(), "B\"".into()]).unwrap(),
            "\"a\", \"B\"\"\""
        );
        assert!(TableName::new(Some(""), "t").is_err());
    }

    #[test]
    fn ddl_is_quoted() {
        let t = LedgerTables::new(Some("Ops"), None, Some("q\"q")).unwrap();
        let ddl = t.ddl().join(";\n");
        assert!(ddl.starts_with("CREATE SCHEMA IF NOT EXISTS \"Ops\""));
        assert!(ddl.contains("\"Ops\".\"cwl_copy_ledger\""));
        assert!(ddl.contains("\"Ops\".\"q\"\"q\""));
        assert_eq!(t.ddl().len(), 3);
        assert_eq!(LedgerTables::default().ddl().len(), 2);
    }
}
