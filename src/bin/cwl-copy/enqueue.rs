//! `cwl-copy enqueue`: list S3 objects exactly as the S3 source does and
//! send one S3-event-shaped message per object to a queue, so that a fleet
//! of `cwl-copy load --sqs-queue-url` consumers backfills through the same
//! path as live data.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use cwl_copy::load::source::notification::{s3_event_body, S3Object};
use cwl_copy::load::source::s3::{sdk_config, S3};
use cwl_copy::load::{
    CopyTarget, LedgerTables, LoaderOptions, Location, PgSettings, TableName,
};
use futures_util::StreamExt as _;

use crate::args::{self, SourceOpts, Usage};

/// SendMessageBatch calls at once.
const SEND_CONCURRENCY: usize = 8;
/// Attempts at the entries a SendMessageBatch reported failed.
const SEND_ATTEMPTS: u32 = 4;

/// The flags of `cwl-copy enqueue`.
#[derive(clap::Args, Clone)]
pub(crate) struct EnqueueArgs {
    #[command(flatten)]
    pub(crate) source: SourceOpts,
    /// The queue the loaders consume.
    #[arg(long, value_name = "URL")]
    pub(crate) sqs_queue_url: String,
    /// The PostgreSQL target, as for `load`: objects its ledger holds for
    /// the target table are not sent (needs --table or --columns)
    /// [default: none, every object listed is sent].
    #[arg(long, value_name = "CONNINFO")]
    pub(crate) target: Option<String>,
    #[arg(long, value_name = "NAME", requires = "target", help = args::TABLE_HELP)]
    pub(crate) table: Option<String>,
    #[arg(long, value_name = "SPEC", requires = "target", help = args::COLUMNS_HELP)]
    pub(crate) columns: Option<PathBuf>,
    #[arg(long, value_name = "NAME", requires = "target", help = args::SCHEMA_HELP)]
    pub(crate) schema: Option<String>,
    #[arg(long, value_name = "NAME", help = args::LEDGER_HELP, default_value = cwl_copy::load::DEFAULT_LEDGER_TABLE)]
    pub(crate) ledger_table: String,
    /// s3://bucket/prefix/ (listed in key order).
    #[arg(required = true, value_name = "INPUT")]
    pub(crate) inputs: Vec<String>,
}

pub(crate) fn run(args: &EnqueueArgs) -> Result<ExitCode> {
    let inputs = args::parse_inputs(&args.inputs)?;
    if let Some(p) = inputs.iter().find(|i| !i.is_s3()) {
        return Err(Usage(format!(
            "enqueue sends S3 notifications: {p} is not an s3:// input"
        ))
        .into());
    }
    let list = args::list_options(&args.source)?;
    let table = match (&args.target, &args.table, &args.columns) {
        (None, _, _) => None,
        (Some(_), Some(t), _) => Some(t.clone()),
        (Some(_), None, Some(spec)) => {
            Some(args::read_spec(spec, None)?.table().to_owned())
        }
        (Some(_), None, None) => {
            return Err(Usage(
                "--target needs --table or --columns (the spec names the \
                 table)"
                    .into(),
            )
            .into())
        }
    };
    let settings = match &args.target {
        Some(t) => Some(PgSettings::resolve(t).context("--target")?),
        None => None,
    };
    let rt = args::runtime()?;
    let (sent, skipped) = rt.block_on(async {
        let sdk = sdk_config(args.source.endpoint_url.as_deref()).await;
        let region =
            sdk.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
        let s3 = S3::connect(&args::s3_options(&args.source)).await;
        let refs =
            cwl_copy::load::list_inputs(&inputs, &list, Some(&s3)).await?;
        if refs.is_empty() {
            // As for the other subcommands: a warning, and exit 0.
            eprintln!(
                "cwl-copy: warning: no objects found in {}",
                args.inputs.join(" ")
            );
        }
        let done = match (settings, &table) {
            (Some(settings), Some(table)) => {
                let keys: Vec<String> =
                    refs.iter().map(|r| r.ledger_key.clone()).collect();
                loaded(settings, args, table, &keys).await?
            }
            _ => Default::default(),
        };
        let objects: Vec<S3Object> = refs
            .iter()
            .filter(|r| !done.contains(&r.ledger_key))
            .filter_map(|r| match &r.location {
                Location::S3 { bucket, key, version_id } => Some(S3Object {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version_id: version_id.clone(),
                    size: r.size,
                    etag: r.etag.clone(),
                }),
                _ => None,
            })
            .collect();
        let skipped = refs.len() - objects.len();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let sent = send(&sqs, &args.sqs_queue_url, &region, &objects).await?;
        anyhow::Ok((sent, skipped))
    })?;
    // Stdout, for scripts: the same words for any count.
    println!("sent {sent} messages ({skipped} already loaded)");
    Ok(ExitCode::SUCCESS)
}

/// The ledger keys of `keys` that the ledger holds for `table`.
async fn loaded(
    settings: PgSettings,
    args: &EnqueueArgs,
    table: &str,
    keys: &[String],
) -> Result<std::collections::HashSet<String>> {
    let tables = LedgerTables::new(
        args.schema.as_deref(),
        Some(&args.ledger_table),
        None,
    )
    .map_err(|e| Usage(e.to_string()))?;
    let name = TableName::new(args.schema.as_deref(), table)
        .map_err(|e| Usage(format!("--table: {e}")))?;
    let mut loader = crate::load::connect(
        settings,
        LoaderOptions { tables: tables.clone(), ..Default::default() },
    )
    .await?;
    // No ledger yet: nothing is loaded.
    if loader.resolve_table(&tables.ledger).await?.is_none() {
        return Ok(Default::default());
    }
    let mut copy = CopyTarget::new(name.clone(), &["x".to_owned()])
        .map_err(|e| Usage(e.to_string()))?;
    if let Some(canonical) = loader.resolve_table(&name).await? {
        copy.set_ledger_name(canonical);
    }
    Ok(loader.already_loaded(&copy, keys).await?)
}

/// Sends one notification per object, 10 a SendMessageBatch; returns how
/// many were sent.
async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    region: &str,
    objects: &[S3Object],
) -> Result<usize> {
    let calls = objects.chunks(10).map(|chunk| async move {
        let mut pending: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| {
                (i.to_string(), s3_event_body(region, std::slice::from_ref(o)))
            })
            .collect();
        for attempt in 1..=SEND_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .context("building a SendMessageBatch entry")?;
            let out = sqs
                .send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "SendMessageBatch {queue}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            let failed: std::collections::HashSet<&str> =
                out.failed().iter().map(|f| f.id()).collect();
            if failed.is_empty() {
                return anyhow::Ok(chunk.len());
            }
            if attempt == SEND_ATTEMPTS {
                let f = &out.failed()[0];
                anyhow::bail!(
                    "SendMessageBatch {queue}: {} messages not sent after \
                     {SEND_ATTEMPTS} attempts: {}: {}",
                    failed.len(),
                    f.code(),
                    f.message().unwrap_or("")
                );
            }
            pending.retain(|(id, _)| failed.contains(id.as_str()));
            tokio::time::sleep(std::time::Duration::from_millis(
                100 << attempt,
            ))
            .await;
        }
        anyhow::Ok(chunk.len())
    });
    let mut sent = 0;
    let mut results =
        futures_util::stream::iter(calls).buffer_unordered(SEND_CONCURRENCY);
    while let Some(r) = results.next().await {
        sent += r?;
    }
    Ok(sent)
}
