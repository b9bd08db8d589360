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
mod report;

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
    /// Not in this build, which has no loader: build with the default
    /// features (cargo install --path .).
    #[cfg(not(feature = "loader"))]
    #[command(disable_help_flag = true)]
    Load {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            hide = true
        )]
        _args: Vec<String>,
    },
    /// Not in this build, which has no loader: build with the default
    /// features (cargo install --path .).
    #[cfg(not(feature = "loader"))]
    #[command(disable_help_flag = true)]
    Enqueue {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            hide = true
        )]
        _args: Vec<String>,
    },
}

/// What `load` and `enqueue` say in a build without the loader.
#[cfg_attr(feature = "loader", allow(dead_code))]
fn no_loader(command: &str) -> anyhow::Error {
    Usage(format!(
        "this build has no loader, so no `{command}` (S3, SQS, PostgreSQL \
         and Redshift need the `loader` feature); build with the default \
         features: cargo install --path ."
    ))
    .into()
}

fn main() -> ExitCode {
    init_tracing();
    match run() {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("cwl-copy: error: {}", render(&err));
            if err.is::<Usage>() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// `err` and its causes, joined by `: `, each said once: a cause whose
/// text an outer message already includes (errors that print their source
/// and also return it from `source()`) is left out.
fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let msg = cause.to_string();
        if msg.is_empty() || out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing() {
    // Warnings, and the loader's one line per batch (SQS mode); short
    // retries log at debug level (the final error counts them).
    let filter = tracing_subscriber::EnvFilter::try_from_env("CWL_COPY_LOG")
        .unwrap_or_else(|_| {
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
        Command::Load { .. } => Err(no_loader("load")),
        #[cfg(not(feature = "loader"))]
        Command::Enqueue { .. } => Err(no_loader("enqueue")),
        Command::Decode(args) => decode::run(&args),
        Command::Convert(args) => convert::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_each_cause_once() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(
                &self,
                f: &mut std::fmt::Formatter<'_>,
            ) -> std::fmt::Result {
                f.write_str("Connection refused (os error 111)")
            }
        }
        impl std::error::Error for Inner {}
        // An error that prints its source and also returns it.
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(
                &self,
                f: &mut std::fmt::Formatter<'_>,
            ) -> std::fmt::Result {
                write!(f, "connecting to h:1: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(Inner)).context("--target");
        assert_eq!(
            render(&e),
            "--target: connecting to h:1: Connection refused (os error 111)"
        );
        let e = anyhow::Error::new(Inner).context("reading spec.toml");
        assert_eq!(
            render(&e),
            "reading spec.toml: Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_build_without_the_loader_says_how_to_get_it() {
        let e = no_loader("load");
        assert!(e.is::<Usage>(), "exit code 2");
        assert_eq!(
            e.to_string(),
            "this build has no loader, so no `load` (S3, SQS, PostgreSQL and \
             Redshift need the `loader` feature); build with the default \
             features: cargo install --path ."
        );
    }
}
