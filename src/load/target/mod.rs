//! Targets: where batches go. A [`Target`] checks the ledger for objects
//! it already holds and loads merged batches, each in one transaction with
//! its ledger rows. PostgreSQL is [`PgTarget`].

pub(crate) mod postgres;
pub mod redshift;

use std::collections::HashSet;
use std::future::Future;

use super::{LoadError, ObjectRows};
use crate::sql::{LedgerTables, TableName};

pub use self::postgres::{
    BatchOutcome, CopyTarget, KeyList, LoaderOptions, PgLoadError, PgLoader,
    RetryPolicy,
};

/// Where a target writes: for the summary line and JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TargetInfo {
    /// The target table, `schema.table` as the server resolved it.
    pub table: String,
    /// Whether this run created it.
    pub created: bool,
    /// The ledger table.
    pub ledger: String,
    /// The quarantine table.
    pub quarantine: String,
}

/// A warehouse table that takes merged batches exactly once.
pub trait Target {
    /// Makes the target ready (ledger and quarantine tables, the target
    /// table with `--create-table`, a dedup index), and checks that the
    /// target table exists.
    fn prepare(
        &mut self,
    ) -> impl Future<Output = Result<(), LoadError>> + Send;

    /// Which of `keys` (ledger keys) the ledger holds for this target.
    fn already_loaded(
        &mut self,
        keys: &[String],
    ) -> impl Future<Output = Result<HashSet<String>, LoadError>> + Send;

    /// Loads one batch in one transaction with its ledger rows.
    fn load_batch(
        &mut self,
        batch: &[ObjectRows],
    ) -> impl Future<Output = Result<BatchOutcome, LoadError>> + Send;

    /// Transient failures retried so far.
    fn retries(&self) -> u64;

    /// Where this target writes.
    fn info(&self) -> TargetInfo;
}

/// PostgreSQL: `COPY … FROM STDIN` per batch, ledger in the same
/// transaction (see [`PgLoader`]).
#[derive(Debug)]
pub struct PgTarget {
    loader: PgLoader,
    copy: CopyTarget,
    create: Option<Vec<String>>,
    tables: LedgerTables,
    created: bool,
}

impl PgTarget {
    /// A target loading `copy` through `loader`; `create` holds the
    /// `CREATE TABLE` statements for `--create-table` (from
    /// [`crate::sql::create_table`]).
    #[must_use]
    pub fn new(
        loader: PgLoader,
        copy: CopyTarget,
        tables: LedgerTables,
        create: Option<Vec<String>>,
    ) -> PgTarget {
        PgTarget { loader, copy, create, tables, created: false }
    }
}

fn pg(e: PgLoadError) -> LoadError {
    LoadError::Target(Box::new(e))
}

impl Target for PgTarget {
    async fn prepare(&mut self) -> Result<(), LoadError> {
        self.loader.ensure_ledger().await.map_err(pg)?;
        if !self.loader.ledger_is_current().await.map_err(pg)? {
            return Err(LoadError::Config(format!(
                "the ledger table {} was made by an older cwl-copy (one \
                 ledger for all tables, no \"target\" column); rename it, \
                 or pass --ledger-table with a new name",
                self.tables.ledger
            )));
        }
        let table: TableName = self.copy.table().clone();
        let existed = self.loader.resolve_table(&table).await.map_err(pg)?;
        if existed.is_none() {
            if let Some(sql) = &self.create {
                self.loader
                    .create_table(&sql.join(";\n"))
                    .await
                    .map_err(pg)?;
            }
        }
        let Some(name) =
            self.loader.resolve_table(&table).await.map_err(pg)?
        else {
            return Err(LoadError::Config(format!(
                "table {table} does not exist; add --create-table to create it"
            )));
        };
        self.created = existed.is_none();
        self.copy.set_ledger_name(name);
        self.loader.ensure_unique_index(&self.copy).await.map_err(pg)?;
        Ok(())
    }

    async fn already_loaded(
        &mut self,
        keys: &[String],
    ) -> Result<HashSet<String>, LoadError> {
        self.loader.already_loaded(&self.copy, keys).await.map_err(pg)
    }

    async fn load_batch(
        &mut self,
        batch: &[ObjectRows],
    ) -> Result<BatchOutcome, LoadError> {
        self.loader.load_batch(batch, &self.copy).await.map_err(pg)
    }

    fn retries(&self) -> u64 {
        self.loader.retries()
    }

    fn info(&self) -> TargetInfo {
        TargetInfo {
            table: self.copy.ledger_name().to_owned(),
            created: self.created,
            ledger: self.tables.ledger.to_string(),
            quarantine: self.tables.quarantine.to_string(),
        }
    }
}
