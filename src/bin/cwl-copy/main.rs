//! The `cwl-copy` command line: one module per subcommand, flags turned
//! into configuration in `args`, the work done by the library.
//!
//! Exit codes (a contract; scripts and tests rely on them):
//! - 0: all input decoded (and loaded);
//! - 1: a failure other than bad input (I/O, database, configuration);
//! - 2: a usage error (bad flags or arguments);
//! - 3: some input was rejected (reported on stderr and in the summary).

use std::io;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod args;
mod convert;
mod decode;
#[cfg(feature = "loader")]
mod enqueue;
#[cfg(feature = "loader")]
mod load;

use args::Usage;

// No custom global allocator: with buffers recycled per object (see
// `convert`), mimalloc bought no speed and tripled peak RSS (BENCHMARKS.md,
// "Convert streams CSV in chunks, recycles buffers, system allocator").

#[derive(Parser)]
#[command(
    name = "cwl-copy",
    version,
    about = "CloudWatch Logs from Firehose S3 objects into warehouse tables"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load objects (files, S3) into PostgreSQL exactly once: merged COPY
    /// batches, a ledger row per object in the same transaction.
    #[cfg(feature = "loader")]
    Load(Box<load::LoadArgs>),
    /// Send one S3 event notification per listed object to an SQS queue,
    /// for a fleet of `load --sqs-queue-url` consumers to backfill.
    #[cfg(feature = "loader")]
    Enqueue(Box<enqueue::EnqueueArgs>),
    /// Convert objects to CSV rows for COPY, with a column spec.
    Convert(Box<convert::ConvertArgs>),
    /// Decode objects to one JSON object per event on stdout.
    Decode(Box<decode::DecodeArgs>),
    /// (Not in this build: `load` needs the default features.)
    #[cfg(not(feature = "loader"))]
    #[command(hide = true, disable_help_flag = true)]
    Load {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        _args: Vec<String>,
    },
}

fn main() -> ExitCode {
    init_tracing();
    match run() {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cwl-copy: error: {err:#}");
            if err.is::<Usage>() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CWL_COPY_LOG")
        .unwrap_or_else(|_| {
            // Warnings, and the loader's one line per batch (SQS mode).
            tracing_subscriber::EnvFilter::new(
                "warn,aws_config=error,cwl_copy::batch=info",
            )
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        #[cfg(feature = "loader")]
        Command::Load(args) => load::run(&args),
        #[cfg(feature = "loader")]
        Command::Enqueue(args) => enqueue::run(&args),
        #[cfg(not(feature = "loader"))]
        Command::Load { .. } => Err(Usage(
            "this build has no loader; build with the default features: \
             cargo install --path ."
                .into(),
        )
        .into()),
        Command::Decode(args) => decode::run(&args),
        Command::Convert(args) => convert::run(&args),
    }
}
