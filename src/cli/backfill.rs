//! `backfill s3://BUCKET/PREFIX --via-queue QUEUE_URL`: history counted by the deployed
//! functions, through the stack's input queue (docs/DESIGN.md, "Backfill through the
//! queue"). Lists, selects by `--since`/`--until` as `scan` does, sends, and says
//! where to resume.

use super::inputs::{in_period, parse_period, parse_s3_uri, Input};
use crate::aws::backfill::{backfill, progress_line, Plan, Progress, SqsQueue};
use clap::Args;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The objects to send: s3://BUCKET/PREFIX.
    #[arg(value_name = "s3://BUCKET/PREFIX")]
    source: String,
    /// The stack's input queue (output LogQueueUrl; the stack needs UseQueue=true).
    #[arg(long, value_name = "QUEUE_URL")]
    via_queue: String,
    /// Only objects from this time on (as `scan --since`).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only objects from before this time (as `scan --until`).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Start after this key (where an interrupted backfill said to resume).
    #[arg(long, value_name = "KEY")]
    start_after: Option<String>,
    /// List and count what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Send to a queue that carries no tag of this project's stack.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &BackfillArgs) -> ExitCode {
    let fail = |what: String| {
        eprintln!("bedrock-denied-models: backfill: {what}");
        ExitCode::from(2)
    };
    let Some((bucket, prefix)) = parse_s3_uri(&args.source) else {
        return fail(format!("{:?} is not s3://BUCKET/PREFIX", args.source));
    };
    let now = chrono::Utc::now().timestamp();
    let period = match parse_period(args.since.as_deref(), args.until.as_deref(), now) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let runtime = match super::start_runtime(tokio::runtime::Builder::new_multi_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = crate::aws::sdk_config().await;
        let region = crate::aws::region(&sdk);
        let queue = SqsQueue::new(&sdk, &region, &args.via_queue);
        if let Err(e) = queue.check_owned().await {
            if !args.force {
                return fail(format!(
                    "{e}. Deploy with UseQueue=true (the busy-bucket and organization \
                     environments of samconfig.toml turn it on) and give its LogQueueUrl \
                     output, or pass --force to send to this queue anyway"
                ));
            }
            eprintln!("bedrock-denied-models: backfill: {e}; sending anyway (--force)");
        }
        let plan = Plan {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region: region.clone(),
            start_after: args.start_after.clone(),
            dry_run: args.dry_run,
        };
        let [since, until] = period;
        let keep = |key: &str, modified: i64| {
            let input = Input::S3 {
                bucket: String::new(),
                key: key.to_string(),
                size: 0,
                modified,
            };
            in_period(&input, since, until)
        };
        let progress = Arc::new(Mutex::new(Progress::default()));
        let started = Instant::now();
        let s3 = crate::aws::s3_client(&sdk);
        let work = backfill(&s3, &queue, &plan, keep, progress.clone());
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let resume = |p: &Progress| match &p.sent_through {
            Some(k) => format!("; resume with --start-after {k:?}"),
            None => String::new(),
        };
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    let p = crate::errors::lock(&progress).clone();
                    eprintln!("backfill: {}", progress_line(&p, started, args.dry_run));
                }
                _ = tokio::signal::ctrl_c() => {
                    let p = crate::errors::lock(&progress).clone();
                    eprintln!("backfill: interrupted: {}{}", progress_line(&p, started, args.dry_run), resume(&p));
                    return ExitCode::from(130);
                }
            }
        };
        match result {
            Ok(p) => {
                eprintln!(
                    "backfill: done: {}{}",
                    progress_line(&p, started, args.dry_run),
                    if args.dry_run { " (dry run: nothing sent)" } else { "" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "bedrock-denied-models: backfill: {}: {}{}",
                    e.what,
                    progress_line(&e.progress, started, args.dry_run),
                    resume(&e.progress)
                );
                ExitCode::from(1)
            }
        }
    })
}
