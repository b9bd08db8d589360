//! The one place SQL is built: identifier quoting, table names, column
//! lists, and the `CREATE`, `COPY`, ledger and quarantine statements per
//! dialect. The mapper writes rows and knows no SQL; the loader runs what
//! this module builds.
//!
//! Every identifier goes through [`quote_ident`] (or [`TableName`]'s
//! `Display`, which quotes); every value is a bound parameter, or for the
//! statements that cannot bind (Redshift's `COPY … FROM 's3://…'`), a
//! literal through [`quote_literal`].
//!
//! # The ledger
//!
//! One row per object loaded into a target table. Its key is the pair
//! (target table, object): the same object may be loaded once into each
//! table, and never twice into one. The object is its key (`s3://bucket/key`,
//! or a local file's canonical path) and, through a unique index, its
//! content hash, so a copied or moved file is recognised:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "public"."cwl_copy_ledger" (
//!     "target" text NOT NULL,
//!     "key" text NOT NULL,
//!     "size" bigint NOT NULL,
//!     "etag" text,
//!     "content_hash" text NOT NULL,
//!     "events" bigint NOT NULL,
//!     "rows" bigint NOT NULL,
//!     "filtered" bigint NOT NULL,
//!     "rejected" bigint NOT NULL,
//!     "batch_id" text NOT NULL,
//!     "loaded_at" timestamptz NOT NULL DEFAULT now(),
//!     PRIMARY KEY ("target", "key"),
//!     UNIQUE ("target", "content_hash")
//! )
//! ```
//!
//! `target` is the table's canonical name as the server resolves it
//! (`public.events`), so `events` and `"public"."events"` are one table.
//!
//! # The quarantine
//!
//! Rejected events and undecodable byte ranges, committed with the batch
//! that read them:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "public"."cwl_copy_quarantine" (
//!     "target" text NOT NULL,
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

use std::fmt;
use std::fmt::Write as _;

use crate::map::spec::Kind;
use crate::map::Mapper;
use crate::write::Dialect;

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
/// use cwl_copy::sql::quote_ident;
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
    /// `CREATE TABLE IF NOT EXISTS` for both tables. (The content-hash
    /// index is a table constraint, not a `CREATE INDEX IF NOT EXISTS`:
    /// that takes a lock on an existing ledger that waits for every batch
    /// in progress, so a loader starting would stall behind another's
    /// batch.)
    #[must_use]
    pub fn ddl(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in [self.ledger.schema(), self.quarantine.schema()]
            .into_iter()
            .flatten()
        {
            let sql = create_schema(s);
            if !out.contains(&sql) {
                out.push(sql);
            }
        }
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             \x20   \"target\" text NOT NULL,\n\
             \x20   \"key\" text NOT NULL,\n\
             \x20   \"size\" bigint NOT NULL,\n\
             \x20   \"etag\" text,\n\
             \x20   \"content_hash\" text NOT NULL,\n\
             \x20   \"events\" bigint NOT NULL,\n\
             \x20   \"rows\" bigint NOT NULL,\n\
             \x20   \"filtered\" bigint NOT NULL,\n\
             \x20   \"rejected\" bigint NOT NULL,\n\
             \x20   \"batch_id\" text NOT NULL,\n\
             \x20   \"loaded_at\" timestamptz NOT NULL DEFAULT now(),\n\
             \x20   PRIMARY KEY (\"target\", \"key\"),\n\
             \x20   UNIQUE (\"target\", \"content_hash\")\n\
             )",
            self.ledger
        ));
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             \x20   \"target\" text NOT NULL,\n\
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

    /// Whether the ledger has the `target` column (a ledger made by
    /// cwl-copy before tables had ledgers of their own has not): a
    /// query returning one boolean.
    #[must_use]
    pub fn has_target_column_sql(&self) -> String {
        format!(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = \
             to_regclass({}) AND attname = 'target' AND NOT attisdropped)",
            quote_literal(&self.ledger.to_string())
        )
    }

    /// Claims keys for target `$10`: one row per element of the arrays
    /// `$1`…`$8` (key, size, etag, content_hash, events, rows, filtered,
    /// rejected), all with batch id `$9`. Returns the keys actually
    /// inserted; a key (or content hash) already there for the target, or
    /// being inserted by an uncommitted transaction (which this waits
    /// for), is skipped.
    #[must_use]
    pub fn claim_sql(&self) -> String {
        format!(
            "INSERT INTO {} AS l (\"target\", \"key\", \"size\", \"etag\", \
             \"content_hash\", \"events\", \"rows\", \"filtered\", \
             \"rejected\", \"batch_id\")\n\
             SELECT $10::text, u.k, u.s, u.e, u.h, u.ev, u.r, u.f, u.rj, \
             $9::text\n\
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], \
             $5::int8[], $6::int8[], $7::int8[], $8::int8[]) WITH \
             ORDINALITY AS u(k, s, e, h, ev, r, f, rj, n)\n\
             ORDER BY u.n\n\
             ON CONFLICT DO NOTHING\n\
             RETURNING l.\"key\"",
            self.ledger
        )
    }

    /// Keys of `$1::text[]` already in the ledger for target `$2`.
    #[must_use]
    pub fn loaded_sql(&self) -> String {
        format!(
            "SELECT \"key\" FROM {} WHERE \"target\" = $2::text \
             AND \"key\" = ANY($1::text[])",
            self.ledger
        )
    }

    /// Keys of `$1::text[]` in the ledger for target `$3` with batch id
    /// `$2` (to recognise a commit whose acknowledgement was lost).
    #[must_use]
    pub fn committed_by_batch_sql(&self) -> String {
        format!(
            "SELECT \"key\" FROM {} WHERE \"target\" = $3::text \
             AND \"key\" = ANY($1::text[]) AND \"batch_id\" = $2::text",
            self.ledger
        )
    }

    /// Quarantine rows for target `$9` from the arrays `$1`…`$7` (key,
    /// member, event_id, offset, kind, reason, message), all with batch id
    /// `$8`.
    #[must_use]
    pub fn quarantine_sql(&self) -> String {
        format!(
            "INSERT INTO {} (\"target\", \"key\", \"member\", \
             \"event_id\", \"offset\", \"kind\", \"reason\", \"message\", \
             \"batch_id\")\n\
             SELECT $9::text, u.k, u.m, u.e, u.o, u.kd, u.r, u.msg, \
             $8::text\n\
             FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], \
             $5::text[], $6::text[], $7::text[]) AS u(k, m, e, o, kd, r, msg)",
            self.quarantine
        )
    }
}

/// `CREATE SCHEMA IF NOT EXISTS "schema"`.
#[must_use]
pub fn create_schema(schema: &str) -> String {
    let mut s = String::from("CREATE SCHEMA IF NOT EXISTS ");
    push_quoted(&mut s, schema);
    s
}

/// An index name derived from a table name, quoted, cut to PostgreSQL's
/// 63 bytes on a character boundary: `"<table>_<suffix>"`.
#[must_use]
pub fn index_name(table: &str, suffix: &str) -> String {
    let mut name = format!("{table}_{suffix}");
    while name.len() > 63 {
        name.pop();
    }
    let mut s = String::new();
    push_quoted(&mut s, &name);
    s
}

/// Quotes `value` as a SQL string literal: `'…'` with each `'` doubled.
/// (Standard-conforming strings: backslashes are literal, as in
/// PostgreSQL ≥ 9.1 and Redshift.) NUL bytes, which no server stores, are
/// dropped.
#[must_use]
pub fn quote_literal(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for c in value.chars() {
        match c {
            '\'' => s.push_str("''"),
            '\0' => {}
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}

fn push_quoted(s: &mut String, ident: &str) {
    s.push('"');
    s.push_str(&ident.replace('"', "\"\""));
    s.push('"');
}

/// The `COPY` options that read exactly the CSV a mapper of `dialect`
/// writes.
///
/// PostgreSQL: `WITH (FORMAT csv)` (NULL is the default unquoted empty
/// field). Redshift: `FORMAT CSV NULL AS '\N' TIMEFORMAT 'auto'` (never
/// `EMPTYASNULL`, which would turn `""` into NULL).
#[must_use]
pub fn copy_options(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "WITH (FORMAT csv)",
        Dialect::Redshift => "FORMAT CSV NULL AS '\\N' TIMEFORMAT 'auto'",
    }
}

/// The mapper's columns, quoted and joined with `, `.
fn mapper_columns(mapper: &Mapper) -> String {
    let mut s = String::new();
    for (i, name) in mapper.column_names().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        push_quoted(&mut s, name);
    }
    s
}

/// A whole `COPY` statement for the rows `mapper` writes into `table`:
/// `COPY "table" ("a", "b") FROM {from} {options}`. For PostgreSQL pass
/// `"STDIN"`; for Redshift the quoted S3 location and credentials
/// (`'s3://…' IAM_ROLE '…'`, built with [`quote_literal`]), to which the
/// caller may append `MANIFEST`, `GZIP` and the like.
#[must_use]
pub fn copy_statement(
    mapper: &Mapper,
    table: &TableName,
    from: &str,
) -> String {
    format!(
        "COPY {table} ({}) FROM {from} {}",
        mapper_columns(mapper),
        copy_options(mapper.dialect())
    )
}

/// `CREATE TABLE IF NOT EXISTS` for the rows `mapper` writes, in its
/// dialect, preceded by `CREATE SCHEMA IF NOT EXISTS` when `table` names a
/// schema.
///
/// | type      | PostgreSQL         | Redshift             |
/// |-----------|--------------------|----------------------|
/// | text      | `text`             | `varchar(max_bytes)` |
/// | int       | `bigint`           | `bigint`             |
/// | float     | `double precision` | `float8`             |
/// | bool      | `boolean`          | `boolean`            |
/// | timestamp | `timestamptz`      | `timestamptz`        |
/// | json      | `jsonb`            | `super`              |
#[must_use]
pub fn create_table(mapper: &Mapper, table: &TableName) -> Vec<String> {
    let pg = mapper.dialect() == Dialect::Postgres;
    let mut out = Vec::new();
    if let Some(schema) = table.schema() {
        out.push(create_schema(schema));
    }
    let mut s = format!("CREATE TABLE IF NOT EXISTS {table} (");
    for (i, c) in mapper.columns().iter().enumerate() {
        s.push_str(if i > 0 { ",\n  " } else { "\n  " });
        push_quoted(&mut s, &c.name);
        s.push(' ');
        match (c.kind, pg) {
            (Kind::Text { .. }, true) => s.push_str("text"),
            (Kind::Text { max_bytes, .. }, false) => {
                let _ = write!(s, "varchar({max_bytes})");
            }
            (Kind::Int, _) => s.push_str("bigint"),
            (Kind::Float, true) => s.push_str("double precision"),
            (Kind::Float, false) => s.push_str("float8"),
            (Kind::Bool, _) => s.push_str("boolean"),
            (Kind::Timestamp { .. }, _) => s.push_str("timestamptz"),
            (Kind::Json { .. }, true) => s.push_str("jsonb"),
            (Kind::Json { .. }, false) => s.push_str("super"),
        }
    }
    s.push_str("\n)");
    out.push(s);
    out
}

/// The mapper's columns with their types in its dialect (as
/// [`create_table`] declares them), skipping the first `skip` columns.
#[must_use]
pub fn column_types(mapper: &Mapper, skip: usize) -> Vec<(String, String)> {
    let pg = mapper.dialect() == Dialect::Postgres;
    mapper
        .columns()
        .iter()
        .skip(skip)
        .map(|c| {
            let ty = match (c.kind, pg) {
                (Kind::Text { .. }, true) => "text".to_owned(),
                (Kind::Text { max_bytes, .. }, false) => {
                    format!("varchar({max_bytes})")
                }
                (Kind::Int, _) => "bigint".to_owned(),
                (Kind::Float, true) => "double precision".to_owned(),
                (Kind::Float, false) => "float8".to_owned(),
                (Kind::Bool, _) => "boolean".to_owned(),
                (Kind::Timestamp { .. }, _) => "timestamptz".to_owned(),
                (Kind::Json { .. }, true) => "jsonb".to_owned(),
                (Kind::Json { .. }, false) => "super".to_owned(),
            };
            (c.name.clone(), ty)
        })
        .collect()
}

/// The `--dedup-events` statements around a batch's `COPY`, PostgreSQL.
pub mod dedup {
    use super::{push_quoted, TableName};

    /// The staging table's name (temporary, dropped at commit).
    pub const STAGE_TABLE: &str = "cwl_copy_stage";

    /// `"pg_temp"."cwl_copy_stage"`: where `COPY` writes with dedup.
    #[must_use]
    pub fn stage() -> String {
        let mut s = String::from("pg_temp.");
        push_quoted(&mut s, STAGE_TABLE);
        s
    }

    /// Creates the staging table with the target's column types.
    #[must_use]
    pub fn create_stage(target: &TableName, columns: &str) -> String {
        let mut s = String::from("CREATE TEMP TABLE ");
        push_quoted(&mut s, STAGE_TABLE);
        s.push_str(&format!(
            " ON COMMIT DROP AS SELECT {columns} FROM {target} WITH NO DATA"
        ));
        s
    }

    /// Inserts the staged rows whose `id` is not in the target yet.
    #[must_use]
    pub fn insert_new(target: &TableName, columns: &str, id: &str) -> String {
        let mut q = String::new();
        push_quoted(&mut q, id);
        format!(
            "INSERT INTO {target} ({columns}) SELECT {columns} FROM {} \
             ON CONFLICT ({q}) DO NOTHING",
            stage()
        )
    }

    /// The unique index `ON CONFLICT (id)` needs.
    #[must_use]
    pub fn unique_index(target: &TableName, id: &str) -> String {
        let mut q = String::new();
        push_quoted(&mut q, id);
        format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {target} ({q})",
            super::index_name(target.name(), &format!("{id}_cwl_key"))
        )
    }
}

/// The canonical name of the table a (possibly unqualified) name resolves
/// to on the server: `schema.table`, or NULL when it does not exist. One
/// text parameter, the quoted name.
pub const RESOLVE_TABLE_SQL: &str = "SELECT (SELECT n.nspname || '.' || \
    c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
    ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1::text))";

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
        assert!(ddl.contains("PRIMARY KEY (\"target\", \"key\")"));
        assert!(ddl.contains("UNIQUE (\"target\", \"content_hash\")"));
        assert_eq!(t.ddl().len(), 3);
        assert_eq!(LedgerTables::default().ddl().len(), 2);
    }

    #[test]
    fn literals_and_index_names() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b\0c"), "'a\\bc'");
        assert_eq!(
            quote_literal("'; DROP TABLE x; --"),
            "'''; DROP TABLE x; --'"
        );
        let long = "é".repeat(40);
        let name = index_name(&long, "content");
        assert!(name.len() <= 65, "{name}");
        assert!(name.starts_with("\"é"));
        assert_eq!(index_name("t\"x", "k"), "\"t\"\"x_k\"");
    }

    fn mapper(dialect: Dialect, toml: &str) -> Mapper {
        let spec = crate::ColumnSpec::from_toml(toml).unwrap();
        Mapper::new(&spec, dialect).unwrap()
    }

    #[test]
    fn copy_and_create_per_dialect() {
        let toml = "table = 't'\n\
            [[columns]]\nname = 'when'\nsource = '@timestamp'\ntype = 'timestamp'\n\
            [[columns]]\nname = 'say \"hi\"'\nsource = 'a'\ntype = 'text'\n\
            [[columns]]\nname = 'n'\nsource = 'n'\ntype = 'int'\n\
            [[columns]]\nname = 'f'\nsource = 'f'\ntype = 'float'\n\
            [[columns]]\nname = 'b'\nsource = 'b'\ntype = 'bool'\n\
            [[columns]]\nname = 'j'\nsource = 'j'\ntype = 'json'\n\
            [[columns]]\nname = 's'\nsource = 's'\ntype = 'text'\nmax_bytes = 10\n";
        let pg = mapper(Dialect::Postgres, toml);
        let t = TableName::new(None, "t").unwrap();
        assert_eq!(
            copy_statement(&pg, &t, "STDIN"),
            r#"COPY "t" ("when", "say ""hi""", "n", "f", "b", "j", "s") FROM STDIN WITH (FORMAT csv)"#
        );
        assert_eq!(
            create_table(&pg, &t),
            ["CREATE TABLE IF NOT EXISTS \"t\" (\n  \"when\" timestamptz,\n  \
              \"say \"\"hi\"\"\" text,\n  \"n\" bigint,\n  \
              \"f\" double precision,\n  \"b\" boolean,\n  \"j\" jsonb,\n  \
              \"s\" text\n)"]
        );
        let rs = mapper(Dialect::Redshift, toml);
        let t = TableName::new(Some("Ops"), "t").unwrap();
        let from = format!(
            "{} IAM_ROLE {}",
            quote_literal("s3://b/k'.manifest"),
            quote_literal("arn:x")
        );
        assert_eq!(
            copy_statement(&rs, &t, &from),
            "COPY \"Ops\".\"t\" (\"when\", \"say \"\"hi\"\"\", \"n\", \"f\", \
             \"b\", \"j\", \"s\") FROM 's3://b/k''.manifest' IAM_ROLE 'arn:x' \
             FORMAT CSV NULL AS '\\N' TIMEFORMAT 'auto'"
        );
        let ddl = create_table(&rs, &t);
        assert_eq!(ddl[0], "CREATE SCHEMA IF NOT EXISTS \"Ops\"");
        assert!(
            ddl[1].starts_with("CREATE TABLE IF NOT EXISTS \"Ops\".\"t\" (")
        );
        assert!(ddl[1].contains("\"say \"\"hi\"\"\" varchar(65535)"));
        assert!(ddl[1].contains("\"j\" super"));
        assert!(ddl[1].contains("\"f\" float8"));
        assert!(ddl[1].contains("\"s\" varchar(10)"));
    }

    #[test]
    fn dedup_statements() {
        let t = TableName::new(Some("s"), "T").unwrap();
        assert_eq!(
            dedup::create_stage(&t, "\"a\""),
            "CREATE TEMP TABLE \"cwl_copy_stage\" ON COMMIT DROP AS SELECT \
             \"a\" FROM \"s\".\"T\" WITH NO DATA"
        );
        assert_eq!(
            dedup::insert_new(&t, "\"a\"", "i\"d"),
            "INSERT INTO \"s\".\"T\" (\"a\") SELECT \"a\" FROM \
             pg_temp.\"cwl_copy_stage\" ON CONFLICT (\"i\"\"d\") DO NOTHING"
        );
        assert_eq!(
            dedup::unique_index(&t, "id"),
            "CREATE UNIQUE INDEX IF NOT EXISTS \"T_id_cwl_key\" ON \
             \"s\".\"T\" (\"id\")"
        );
    }
}

/// Redshift's statements: the ledger DDL and the plan of one batch.
///
/// Redshift enforces no unique constraint and has no `ON CONFLICT`, so a
/// batch is exactly once by a lock and conditional inserts in one
/// transaction:
///
/// 1. `LOCK` the ledger: batches of concurrent loaders run one after the
///    other, each seeing what the previous committed;
/// 2. `COPY` the batch's object list (key, size, hashes, counts; a staged
///    file, so nothing in the SQL grows with the batch) into a temporary
///    table, and delete from it the objects the ledger holds for the
///    target (by key or content hash) and repeats within the batch;
/// 3. `COPY … MANIFEST` the rows, each carrying its object's key, into a
///    temporary staging table; check that the staged rows of the objects
///    left are the rows they declare (a division by zero aborts the
///    transaction if not);
/// 4. insert into the target only the rows of the objects left (with
///    `--dedup-events`, only event ids not in the target, once each), then
///    those objects into the ledger and their quarantine rows into the
///    quarantine;
/// 5. select the objects left: the ones this batch loaded.
pub mod redshift {
    use super::{quote_literal, TableName};

    /// The temporary table of the batch's objects.
    pub const OBJECTS: &str = "\"cwl_copy_objects\"";
    /// The temporary staging table of the batch's rows.
    pub const STAGE: &str = "\"cwl_copy_stage\"";
    /// The temporary table of the batch's quarantine rows.
    pub const QSTAGE: &str = "\"cwl_copy_qstage\"";
    /// The staging table's column holding each row's object key.
    pub const OBJECT_COLUMN: &str = "cwl_copy_object";

    /// The ledger and quarantine tables for Redshift (no defaults: the
    /// loader writes `loaded_at` itself; the primary key is informational,
    /// as Redshift does not enforce it).
    #[must_use]
    pub fn ledger_ddl(
        ledger: &TableName,
        quarantine: &TableName,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for s in [ledger.schema(), quarantine.schema()].into_iter().flatten() {
            let sql = super::create_schema(s);
            if !out.contains(&sql) {
                out.push(sql);
            }
        }
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {ledger} (\"target\" VARCHAR(1024) NOT \
             NULL, \"key\" VARCHAR(4096) NOT NULL, \"size\" BIGINT NOT NULL, \
             \"etag\" VARCHAR(256), \"content_hash\" VARCHAR(80) NOT NULL, \
             \"events\" BIGINT NOT NULL, \"rows\" BIGINT NOT NULL, \
             \"filtered\" BIGINT NOT NULL, \"rejected\" BIGINT NOT NULL, \
             \"batch_id\" VARCHAR(128) NOT NULL, \"loaded_at\" TIMESTAMPTZ \
             NOT NULL, PRIMARY KEY (\"target\", \"key\"))"
        ));
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {quarantine} (\"target\" VARCHAR(1024) \
             NOT NULL, \"key\" VARCHAR(4096) NOT NULL, \"member\" BIGINT, \
             \"event_id\" VARCHAR(256), \"offset\" BIGINT, \"kind\" \
             VARCHAR(64) NOT NULL, \"reason\" VARCHAR(65535) NOT NULL, \
             \"message\" VARCHAR(65535) NOT NULL, \"batch_id\" VARCHAR(128) \
             NOT NULL, \"at\" TIMESTAMPTZ NOT NULL)"
        ));
        out
    }

    /// What one batch's plan needs.
    #[derive(Clone, Debug)]
    pub struct Plan<'a> {
        /// The target table.
        pub table: &'a TableName,
        /// The target's name in the ledger (`schema.table`).
        pub target: &'a str,
        /// The ledger table.
        pub ledger: &'a TableName,
        /// The quarantine table.
        pub quarantine: &'a TableName,
        /// The target's columns (and their Redshift types, for reports),
        /// in CSV order, without the object column.
        pub columns: &'a [(String, String)],
        /// The `--dedup-events` id column.
        pub dedup: Option<&'a str>,
        /// The object list's manifest (`s3://…`).
        pub objects_manifest: &'a str,
        /// The rows' manifest, if the batch has rows.
        pub rows_manifest: Option<&'a str>,
        /// The quarantine rows' manifest, if any.
        pub quarantine_manifest: Option<&'a str>,
        /// `IAM_ROLE` (an ARN or `default`).
        pub iam_role: &'a str,
        /// The batch id.
        pub batch_id: &'a str,
        /// When the batch is recorded (`loaded_at`), RFC 3339.
        pub now: &'a str,
    }

    fn ident(s: &str) -> String {
        let mut q = String::new();
        super::push_quoted(&mut q, s);
        q
    }

    fn iam(role: &str) -> String {
        if role == "default" {
            "IAM_ROLE default".to_owned()
        } else {
            format!("IAM_ROLE {}", quote_literal(role))
        }
    }

    /// The statement plan of one batch, to run as one transaction; the
    /// last statement selects the keys the batch loaded. Returns the
    /// statements and the index of the target insert (whose row count is
    /// the rows inserted).
    #[must_use]
    pub fn batch(p: &Plan<'_>) -> (Vec<String>, Option<usize>) {
        let t = quote_literal(p.target);
        let role = iam(p.iam_role);
        let copy = |table: &str, manifest: &str, time: bool| {
            format!(
                "COPY {table} FROM {} {role} MANIFEST FORMAT AS CSV GZIP \
                 NULL AS '\\N'{} MAXERROR 0",
                quote_literal(manifest),
                if time { " TIMEFORMAT 'auto'" } else { "" }
            )
        };
        let cols: Vec<String> =
            p.columns.iter().map(|(c, _)| ident(c)).collect();
        let col_list = cols.join(", ");
        let mut s = vec![
            format!("LOCK {}", p.ledger),
            format!("DROP TABLE IF EXISTS {OBJECTS}"),
            format!(
                "CREATE TEMP TABLE {OBJECTS} (\"key\" VARCHAR(4096), \"size\" \
                 BIGINT, \"etag\" VARCHAR(256), \"content_hash\" VARCHAR(80), \
                 \"events\" BIGINT, \"rows\" BIGINT, \"filtered\" BIGINT, \
                 \"rejected\" BIGINT)"
            ),
            copy(OBJECTS, p.objects_manifest, false),
            format!(
                "DELETE FROM {OBJECTS} WHERE \"key\" IN (SELECT \"key\" FROM \
                 {l} WHERE \"target\" = {t}) OR \"content_hash\" IN (SELECT \
                 \"content_hash\" FROM {l} WHERE \"target\" = {t})",
                l = p.ledger
            ),
            format!(
                "DELETE FROM {OBJECTS} WHERE \"key\" IN (SELECT o.\"key\" FROM \
                 {OBJECTS} o JOIN {OBJECTS} e ON e.\"content_hash\" = \
                 o.\"content_hash\" AND e.\"key\" < o.\"key\")"
            ),
        ];
        let mut insert_at = None;
        if let Some(rows) = p.rows_manifest {
            let obj = ident(OBJECT_COLUMN);
            s.push(format!("DROP TABLE IF EXISTS {STAGE}"));
            // The target's own types: a value that does not fit fails the
            // COPY, at its part and line, not a later INSERT.
            s.push(format!(
                "CREATE TEMP TABLE {STAGE} AS SELECT CAST(NULL AS \
                 VARCHAR(65535)) AS {obj}, {col_list} FROM {} WHERE 1 = 0",
                p.table
            ));
            s.push(copy(STAGE, rows, true));
            s.push(format!(
                "SELECT 1 / (CASE WHEN (SELECT COUNT(*) FROM {STAGE} WHERE \
                 {obj} IN (SELECT \"key\" FROM {OBJECTS})) = (SELECT \
                 COALESCE(SUM(\"rows\"), 0) FROM {OBJECTS}) THEN 1 ELSE 0 END) \
                 AS \"rows_match_the_ledger\""
            ));
            insert_at = Some(s.len());
            s.push(match p.dedup {
                None => format!(
                    "INSERT INTO {} ({col_list}) SELECT {col_list} FROM {STAGE} \
                     WHERE {obj} IN (SELECT \"key\" FROM {OBJECTS})",
                    p.table
                ),
                Some(id) => {
                    let id = ident(id);
                    format!(
                        "INSERT INTO {table} ({col_list}) SELECT {col_list} FROM \
                         (SELECT {col_list}, ROW_NUMBER() OVER (PARTITION BY \
                         {id} ORDER BY {obj}) AS \"cwl_copy_n\" FROM {STAGE} \
                         WHERE {obj} IN (SELECT \"key\" FROM {OBJECTS})) AS d \
                         WHERE (d.\"cwl_copy_n\" = 1 OR d.{id} IS NULL) AND \
                         (d.{id} IS NULL OR d.{id} NOT IN (SELECT {id} FROM \
                         {table} WHERE {id} IS NOT NULL))",
                        table = p.table
                    )
                }
            });
        }
        s.push(format!(
            "INSERT INTO {} (\"target\", \"key\", \"size\", \"etag\", \
             \"content_hash\", \"events\", \"rows\", \"filtered\", \"rejected\", \
             \"batch_id\", \"loaded_at\") SELECT {t}, \"key\", \"size\", \
             \"etag\", \"content_hash\", \"events\", \"rows\", \"filtered\", \
             \"rejected\", {}, CAST({} AS TIMESTAMPTZ) FROM {OBJECTS}",
            p.ledger,
            quote_literal(p.batch_id),
            quote_literal(p.now)
        ));
        if let Some(q) = p.quarantine_manifest {
            s.push(format!("DROP TABLE IF EXISTS {QSTAGE}"));
            s.push(format!(
                "CREATE TEMP TABLE {QSTAGE} (\"key\" VARCHAR(4096), \"member\" \
                 BIGINT, \"event_id\" VARCHAR(256), \"offset\" BIGINT, \"kind\" \
                 VARCHAR(64), \"reason\" VARCHAR(65535), \"message\" \
                 VARCHAR(65535))"
            ));
            s.push(copy(QSTAGE, q, false));
            s.push(format!(
                "INSERT INTO {} (\"target\", \"key\", \"member\", \"event_id\", \
                 \"offset\", \"kind\", \"reason\", \"message\", \"batch_id\", \
                 \"at\") SELECT {t}, \"key\", \"member\", \"event_id\", \
                 \"offset\", \"kind\", \"reason\", \"message\", {}, CAST({} AS \
                 TIMESTAMPTZ) FROM {QSTAGE} WHERE \"key\" IN (SELECT \"key\" \
                 FROM {OBJECTS})",
                p.quarantine,
                quote_literal(p.batch_id),
                quote_literal(p.now)
            ));
        }
        s.push(format!("SELECT \"key\" FROM {OBJECTS} ORDER BY \"key\""));
        (s, insert_at)
    }

    /// Keys of `keys` in the ledger for `target`, as one query per chunk
    /// of literals (the Data API takes no array parameter; a chunk keeps
    /// the SQL under its 100 KB limit).
    #[must_use]
    pub fn loaded(
        ledger: &TableName,
        target: &str,
        keys: &[String],
    ) -> String {
        let list: Vec<String> =
            keys.iter().map(|k| quote_literal(k)).collect();
        format!(
            "SELECT \"key\" FROM {ledger} WHERE \"target\" = {} AND \"key\" IN \
             ({})",
            quote_literal(target),
            list.join(", ")
        )
    }
}

#[cfg(test)]
mod redshift_golden {
    use super::*;

    /// The whole statement plan of a batch, as a golden file: a change to
    /// what runs on a cluster shows in review as a diff of
    /// `testdata/expected/redshift-plan.sql`. Regenerate it with
    /// `CWL_BLESS=1 cargo test --lib redshift_golden`.
    #[test]
    fn the_batch_plan_is_the_golden_one() {
        let table =
            TableName::new(Some("logs"), "integrated_user_log").unwrap();
        let tables = LedgerTables::new(Some("logs"), None, None).unwrap();
        let columns = vec![
            ("event_time".to_owned(), "timestamptz".to_owned()),
            ("event_id".to_owned(), "varchar(64)".to_owned()),
            ("message".to_owned(), "varchar(65535)".to_owned()),
        ];
        let mut out = String::new();
        for s in redshift::ledger_ddl(&tables.ledger, &tables.quarantine) {
            out.push_str(&s);
            out.push_str(";\n");
        }
        for (name, dedup, quarantine) in [
            ("plain", None, None),
            (
                "dedup and quarantine",
                Some("event_id"),
                Some("s3://stage/cwl/b1/quarantine.manifest"),
            ),
        ] {
            out.push_str(&format!("-- {name}\n"));
            let plan = redshift::Plan {
                table: &table,
                target: "logs.integrated_user_log",
                ledger: &tables.ledger,
                quarantine: &tables.quarantine,
                columns: &columns,
                dedup,
                objects_manifest: "s3://stage/cwl/b1/objects.manifest",
                rows_manifest: Some("s3://stage/cwl/b1/rows.manifest"),
                quarantine_manifest: quarantine,
                iam_role: "arn:aws:iam::123456789012:role/RedshiftCopy",
                batch_id: "b1",
                now: "2026-12-01T00:00:00Z",
            };
            let (stmts, insert) = redshift::batch(&plan);
            out.push_str(&format!("-- rows inserted: statement {insert:?}\n"));
            for s in stmts {
                out.push_str(&s);
                out.push_str(";\n");
            }
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/expected/redshift-plan.sql"
        );
        if std::env::var_os("CWL_BLESS").is_some() {
            std::fs::write(path, &out).unwrap();
        }
        let want = std::fs::read_to_string(path).unwrap();
        assert_eq!(out, want, "the plan changed: review, then CWL_BLESS=1");
    }
}
