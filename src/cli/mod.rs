//! Command line: `scan INPUT...` runs the detector over local files and folders (and,
//! in the AWS build, S3 objects); `enable-eventbridge` wires an existing bucket (AWS
//! build). With no arguments and `AWS_LAMBDA_RUNTIME_API` set, the AWS build serves as
//! the Lambda function instead (`main.rs`).

#[cfg(feature = "aws")]
mod backfill;
mod inputs;
mod scan;
#[cfg(feature = "aws")]
pub mod wire;

use crate::config::{Config, ConfigError};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "bedrock-denied-models",
    version,
    about = "Detects repeated denied Amazon Bedrock model invocations in Bedrock invocation logs and CloudTrail logs.",
    long_about = "Detects repeated denied Amazon Bedrock model invocations in Bedrock invocation logs and CloudTrail logs.\n\nWith no arguments and AWS_LAMBDA_RUNTIME_API set, serves as the AWS Lambda function (configured by COUNTER_TABLE, ALERT_TOPIC_ARN and the variables named by the scan flags). See docs/DESIGN.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the detector over log files, folders and (AWS build) s3://BUCKET/PREFIX
    /// objects; print alerts as JSON lines and a summary on stderr.
    Scan(ScanArgs),
    /// Turn on S3's EventBridge delivery for a bucket, keeping every notification it
    /// already has (AWS build).
    #[cfg(feature = "aws")]
    EnableEventbridge(wire::WireArgs),
    /// Send s3://BUCKET/PREFIX's objects to the deployed stack's input queue, as S3
    /// notifications, so the deployed functions count them (AWS build).
    #[cfg(feature = "aws")]
    Backfill(backfill::BackfillArgs),
    /// Turn on S3's EventBridge delivery for a bucket (AWS build).
    #[cfg(not(feature = "aws"))]
    EnableEventbridge {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

/// The detector settings, as flags named like the function's variables.
#[derive(Debug, Clone, Args)]
pub struct DetectorArgs {
    /// The rules switched on: `all`, or comma-separated rule ids (see --list-rules).
    #[arg(long, env = "RULES", value_name = "IDS")]
    rules: Option<String>,
    /// The other rules' settings: comma-separated `<rule id>:threshold=N[:window_buckets=N][:suppress_minutes=N]`.
    #[arg(long, env = "RULE_SETTINGS", value_name = "SETTINGS")]
    rule_settings: Option<String>,
    /// Alert when a window holds more than this many denials (the seed rule).
    #[arg(long, env = "THRESHOLD", value_name = "N")]
    threshold: Option<String>,
    /// Bucket length in minutes.
    #[arg(long, env = "BUCKET_MINUTES", value_name = "MINUTES")]
    bucket_minutes: Option<String>,
    /// Buckets per window.
    #[arg(long, env = "WINDOW_BUCKETS", value_name = "N")]
    window_buckets: Option<String>,
    /// One alert per key per this many minutes.
    #[arg(long, env = "SUPPRESS_MINUTES", value_name = "MINUTES")]
    suppress_minutes: Option<String>,
    /// Comma-separated error codes that are denials in Bedrock invocation logs.
    #[arg(long, env = "DENIAL_CODES", value_name = "CODES")]
    denial_codes: Option<String>,
    /// Comma-separated error codes that are denials in CloudTrail records.
    #[arg(long, env = "CLOUDTRAIL_DENIAL_CODES", value_name = "CODES")]
    cloudtrail_denial_codes: Option<String>,
    /// Exception rules: a JSON array, or a file holding one.
    #[arg(long, env = "EXCEPTIONS", value_name = "FILE_OR_JSON")]
    exceptions: Option<String>,
}

impl DetectorArgs {
    fn config(&self) -> Result<Config, ConfigError> {
        let exceptions = match &self.exceptions {
            Some(v) if !v.trim_start().starts_with('[') && !v.trim().is_empty() => {
                Some(std::fs::read_to_string(v).map_err(|e| {
                    ConfigError::new(
                        "EXCEPTIONS",
                        v,
                        format!("not a JSON array, and not a readable file: {e}"),
                    )
                })?)
            }
            other => other.clone(),
        };
        Config::from_vars(|name| match name {
            "RULES" => self.rules.clone(),
            "RULE_SETTINGS" => self.rule_settings.clone(),
            "THRESHOLD" => self.threshold.clone(),
            "BUCKET_MINUTES" => self.bucket_minutes.clone(),
            "WINDOW_BUCKETS" => self.window_buckets.clone(),
            "SUPPRESS_MINUTES" => self.suppress_minutes.clone(),
            "DENIAL_CODES" => self.denial_codes.clone(),
            "CLOUDTRAIL_DENIAL_CODES" => self.cloudtrail_denial_codes.clone(),
            "EXCEPTIONS" => exceptions.clone(),
            _ => None,
        })
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    detector: DetectorArgs,
    /// How alerts are printed: `json` (one object per line) or `email` (the email
    /// subscribers' subject and text).
    #[arg(long, value_enum, default_value = "json")]
    output: Output,
    /// Objects read at once (default: one per core).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Only objects from this time on: RFC 3339, YYYY-MM-DD, or a span back from now
    /// such as 36h or 7d. Taken from the key's .../YYYY/MM/DD/HH/... where present,
    /// else from the file's or object's modification time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only objects from before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Count into this DynamoDB table (the deployed one) instead of memory, with the
    /// function's object identity: objects it already counted add nothing (AWS build).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// With --table: publish alerts to this SNS topic instead of printing them
    /// (AWS build).
    #[arg(long, value_name = "ARN", requires = "table")]
    topic: Option<String>,
    /// With --table: also put alerts on this EventBridge bus (AWS build).
    #[arg(long, value_name = "NAME", requires = "table")]
    event_bus: Option<String>,
    /// With --table: also import alerts into Security Hub as findings of this account,
    /// the one the credentials belong to (AWS build).
    #[arg(long, value_name = "ACCOUNT_ID", requires = "table")]
    security_hub: Option<String>,
    /// Also write an investigator's report to this HTML file: the scan and its
    /// settings, the alerts, a timeline and the evidence per key, top tables, and how
    /// many alerts other thresholds and windows would raise (in-memory counters only).
    #[arg(long, value_name = "FILE.html", conflicts_with = "table")]
    report: Option<std::path::PathBuf>,
    /// Print the rules (id, name, what each takes, groups by and fires on) and exit.
    #[arg(long)]
    list_rules: bool,
    /// Log files, folders (searched recursively) and s3://BUCKET/PREFIX.
    #[arg(required_unless_present = "list_rules", value_name = "INPUT")]
    inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Json,
    Email,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Scan(args)) => scan::run(&args),
        #[cfg(feature = "aws")]
        Some(Command::EnableEventbridge(args)) => wire::run(&args),
        #[cfg(feature = "aws")]
        Some(Command::Backfill(args)) => backfill::run(&args),
        #[cfg(not(feature = "aws"))]
        Some(Command::EnableEventbridge { .. }) => {
            eprintln!("bedrock-denied-models: enable-eventbridge: {AWS_BUILD_HINT}");
            ExitCode::from(2)
        }
        // The AWS build serves as the function before the command line is parsed
        // (`main.rs`); only this build gets here with a runtime API set.
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            #[cfg(not(feature = "aws"))]
            eprintln!("bedrock-denied-models: serving as the Lambda function: {AWS_BUILD_HINT}");
            ExitCode::from(2)
        }
        None => {
            eprintln!(
                "bedrock-denied-models: nothing to do. Use `bedrock-denied-models scan INPUT...`, \
                 or run as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API set, AWS build). See --help."
            );
            ExitCode::from(2)
        }
    }
}

/// A Tokio runtime from `builder`, or the exit status after saying why not.
fn start_runtime(
    mut builder: tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("bedrock-denied-models: cannot start: {e}");
        ExitCode::from(1)
    })
}

/// `--flag-name` for a variable name.
fn flag(variable: &str) -> String {
    format!("--{}", variable.to_ascii_lowercase().replace('_', "-"))
}

/// Where an AWS-only feature was asked of the build without the SDK.
#[cfg(not(feature = "aws"))]
const AWS_BUILD_HINT: &str =
    "this build has no AWS SDK; build with `--features aws` (e.g. `cargo run --release --features aws -- scan s3://...`)";

#[cfg(all(test, not(feature = "aws")))]
mod tests {
    use super::*;

    #[test]
    fn aws_only_features_name_the_build_that_has_them() {
        assert!(AWS_BUILD_HINT.contains("--features aws"));
        let cli = Cli::try_parse_from(["bedrock-denied-models", "scan", "s3://bucket/AWSLogs/"])
            .expect("parses");
        let Some(Command::Scan(args)) = cli.command else {
            panic!("scan")
        };
        assert_eq!(
            scan::unsupported(&args),
            Some(format!("s3://bucket/AWSLogs/: {AWS_BUILD_HINT}"))
        );
    }
}
