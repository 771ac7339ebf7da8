//! The `s3logd` command line.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "s3logd",
    version,
    about = "Moves AWS access logs from S3 into a log store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse local log files (or stdin) and print one JSON record per line,
    /// exactly as the VictoriaLogs sink sends them.
    Parse(commands::parse::Args),
    /// List the bundled and custom parsers with their formats, detection
    /// patterns, options and fields.
    Parsers {
        /// Custom parser components (.wasm files or directories of them).
        #[arg(long = "parser", value_name = "FILE.wasm")]
        parsers: Vec<PathBuf>,
    },
    /// Run the collector: take every log object announced on the SQS queue
    /// into VictoriaLogs, deleting a message only once every record of it
    /// is stored.
    #[command(after_long_help = CONFIG_HELP)]
    Run {
        /// The TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Backfill: take objects already in a bucket (or a local directory
    /// laid out like one) through the same routing, parsers, enrichment
    /// and sinks as `run`, selected by the time in their keys; resumable.
    Import(commands::import::Args),
    /// Accept TCP connections and store the JSON objects clients send (one
    /// per line or concatenated) in the sinks, as s3logger did.
    Listen(commands::listen::Args),
    /// Run as an AWS Lambda function (what `bootstrap` does with no
    /// arguments on the Lambda runtime): store the objects of S3, SQS, SNS
    /// and EventBridge events as `run` does, within each invocation's
    /// deadline.
    Lambda(commands::lambda::Args),
    /// Validate a configuration file and print the effective configuration
    /// (defaults and S3LOGD_* environment overrides applied, secrets
    /// masked), or every problem found.
    #[command(after_long_help = CONFIG_HELP)]
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
}

/// The commented example configuration (host/s3logd.example.toml), shown
/// by `--help`: it documents every key.
const CONFIG_HELP: &str = concat!(
    "Configuration (host/s3logd.example.toml in the source tree documents every key):\n\n",
    include_str!("../s3logd.example.toml")
);

fn main() -> ExitCode {
    // Lambda's provided runtimes start `bootstrap` without arguments.
    let lambda_bootstrap =
        std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let cli = if lambda_bootstrap {
        Cli::parse_from(["s3logd", "lambda"])
    } else {
        Cli::parse()
    };
    let result = match cli.command {
        Command::Parse(args) => commands::parse::run(args),
        Command::Parsers { parsers } => commands::parsers::run(&parsers),
        Command::Run { config } => commands::run::run(&config),
        Command::Import(args) => commands::import::run(args),
        Command::Listen(args) => commands::listen::run(args),
        Command::Lambda(args) => commands::lambda::run(args),
        Command::CheckConfig { file } => commands::check_config::run(&file),
    };
    match result {
        Ok(code) => code,
        // `s3logd parse … | head` is a normal way to look at output.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s3logd: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
