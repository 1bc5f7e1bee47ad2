//! Command line: `scan PATH...` runs the detector offline with an in-memory store;
//! with no arguments and `AWS_LAMBDA_RUNTIME_API` set, it serves as the Lambda.

use crate::alert::{StdoutFormat, StdoutSink};
use crate::config::{Config, ConfigError};
use crate::detector::{Detector, RecordReport};
use crate::key::ObjectId;
use crate::logs::{skip_reason, ReadStats, Skipped};
use crate::store::memory::MemoryStore;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

#[derive(Debug, Parser)]
#[command(
    name = "bedrock-denied-models",
    version,
    about = "Detects repeated denied Amazon Bedrock model invocations in Bedrock invocation logs and CloudTrail logs.",
    long_about = "Detects repeated denied Amazon Bedrock model invocations in Bedrock invocation logs and CloudTrail logs.\n\nWith no arguments and AWS_LAMBDA_RUNTIME_API set, serves as the AWS Lambda function (configured by COUNTER_TABLE, ALERT_TOPIC_ARN, THRESHOLD, BUCKET_MINUTES, WINDOW_BUCKETS, SUPPRESS_MINUTES, DENIAL_CODES)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan local log files and folders (gzip or plain); print alerts as JSON lines.
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// Alert when a window holds more than this many denials.
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
    /// Comma-separated error codes that count as denials.
    #[arg(long, env = "DENIAL_CODES", value_name = "CODES")]
    denial_codes: Option<String>,
    /// How alerts are printed: `json` (one object per line) or `email` (the email
    /// subscribers' subject and text).
    #[arg(long, value_enum, default_value = "json")]
    output: Output,
    /// Log files or folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Json,
    Email,
}

impl ScanArgs {
    fn config(&self) -> Result<Config, ConfigError> {
        Config::from_vars(|name| match name {
            "THRESHOLD" => self.threshold.clone(),
            "BUCKET_MINUTES" => self.bucket_minutes.clone(),
            "WINDOW_BUCKETS" => self.window_buckets.clone(),
            "SUPPRESS_MINUTES" => self.suppress_minutes.clone(),
            "DENIAL_CODES" => self.denial_codes.clone(),
            _ => None,
        })
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Scan(args)) => scan(&args),
        #[cfg(feature = "aws")]
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => crate::lambda::main(),
        None => {
            eprintln!(
                "bedrock-denied-models: nothing to do. Use `bedrock-denied-models scan PATH...`, \
                 or run as an AWS Lambda function (AWS_LAMBDA_RUNTIME_API set). See --help."
            );
            ExitCode::from(2)
        }
    }
}

/// A file to scan, with the name it is matched against housekeeping rules by.
struct Input {
    path: PathBuf,
    /// Path below the folder it was found in, '/'-separated, with a leading '/'.
    relative: String,
    size: u64,
}

fn collect(path: &Path, root: &Path, out: &mut Vec<Input>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            collect(&e, root, out)?;
        }
    } else {
        let rel = path.strip_prefix(root).unwrap_or(path);
        let relative = format!(
            "/{}",
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        );
        out.push(Input {
            path: path.to_path_buf(),
            relative,
            size: meta.len(),
        });
    }
    Ok(())
}

fn object_id(input: &Input) -> ObjectId {
    let mtime = std::fs::metadata(&input.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let path = std::fs::canonicalize(&input.path).unwrap_or_else(|_| input.path.clone());
    ObjectId::file(&path.to_string_lossy(), &format!("{}:{mtime}", input.size))
}

fn scan(args: &ScanArgs) -> ExitCode {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            let flag = format!("--{}", e.name.to_ascii_lowercase().replace('_', "-"));
            eprintln!(
                "bedrock-denied-models: {e} (flag {flag} or variable {})",
                e.name
            );
            return ExitCode::from(2);
        }
    };
    let mut inputs = Vec::new();
    for p in &args.paths {
        let root = if p.is_dir() {
            p.as_path()
        } else {
            p.parent().unwrap_or(Path::new(""))
        };
        if let Err(e) = collect(p, root, &mut inputs) {
            eprintln!("bedrock-denied-models: cannot read {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bedrock-denied-models: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let format = match args.output {
        Output::Json => StdoutFormat::Json,
        Output::Email => StdoutFormat::Email,
    };
    let detector = Detector::new(config, MemoryStore::new(), StdoutSink { format });
    let progress =
        ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} objects {msg} [{elapsed}]")
    {
        progress.set_style(style);
    }

    let mut summary = Summary::default();
    for input in &inputs {
        progress.inc(1);
        if let Some(reason) = skip_reason(&input.relative, input.size) {
            summary.housekeeping += 1;
            note(
                &progress,
                &format!("skipped {} ({reason})", input.path.display()),
            );
            continue;
        }
        let file = match File::open(&input.path) {
            Ok(f) => f,
            Err(e) => {
                summary.failed += 1;
                note(
                    &progress,
                    &format!("cannot open {}: {e}", input.path.display()),
                );
                continue;
            }
        };
        let id = object_id(input);
        match runtime.block_on(detector.process(&id, file)) {
            Ok(report) => {
                summary.objects += 1;
                summary.add_read(&report.read);
                summary.record.add(&report.record);
                if let Some(e) = report.read_error {
                    summary.incomplete += 1;
                    note(&progress, &format!("{}: {e}", input.path.display()));
                }
            }
            Err(e) => {
                summary.failed += 1;
                note(&progress, &format!("{}: {e}", input.path.display()));
            }
        }
    }
    progress.finish_and_clear();
    summary.keys = detector.store().key_count() as u64;
    eprintln!("{}", summary.render());
    ExitCode::SUCCESS
}

/// A note on stderr that does not garble the progress bar.
fn note(progress: &ProgressBar, msg: &str) {
    progress.suspend(|| eprintln!("bedrock-denied-models: {msg}"));
}

#[derive(Debug, Default)]
struct Summary {
    objects: u64,
    gzip: u64,
    cloudtrail: u64,
    housekeeping: u64,
    incomplete: u64,
    failed: u64,
    log_bytes: u64,
    records: u64,
    denials: u64,
    keys: u64,
    skipped: Skipped,
    record: RecordReport,
}

impl Summary {
    fn add_read(&mut self, r: &ReadStats) {
        self.gzip += u64::from(r.gzip);
        self.cloudtrail += u64::from(r.format == crate::logs::LogFormat::CloudTrail);
        self.log_bytes += r.log_bytes;
        self.records += r.records;
        self.denials += r.denials;
        self.skipped.add(&r.skipped);
    }

    fn render(&self) -> String {
        let s = &self.skipped;
        format!(
            "objects: {} scanned ({} gzip, {} CloudTrail), {} housekeeping skipped, {} incomplete, {} failed\n\
             records: {} ({} bytes of log), denials: {}, keys with denials: {}\n\
             skipped lines: {} (invalid_json {}, missing_fields {}, bad_timestamp {}, oversized_line {})\n\
             alerts: {} published, {} suppressed",
            self.objects,
            self.gzip,
            self.cloudtrail,
            self.housekeeping,
            self.incomplete,
            self.failed,
            self.records,
            self.log_bytes,
            self.denials,
            self.keys,
            s.total(),
            s.invalid_json,
            s.missing_fields,
            s.bad_timestamp,
            s.oversized_line,
            self.record.alerts_published,
            self.record.alerts_suppressed,
        )
    }
}
