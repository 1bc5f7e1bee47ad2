//! The sweep at organization size, against the emulator: `--accounts` account folders
//! (default 1,000) in one bucket, each with a log object of the last hour that no
//! notification brought, swept as the schedule would, until every one is processed;
//! then once more with nothing new (docs/DESIGN.md, "The sweep").
//!
//! `scripts/bench sweep [--accounts N]` starts the emulators and runs it. It prints,
//! per sweep: the time taken against the function's default timeout, the list
//! requests, the objects processed, and where the next sweep continues. The emulator
//! answers one request at a time, so its own speed is part of every figure; the
//! number of list requests is what a real bucket would see.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use bedrock_denied_models::counters::Counts;
use bedrock_denied_models::event::Sweep;
use std::time::{Duration, Instant};
use support::{denials_gz, Stack, MALLORY, T0};

/// The template's default `FunctionTimeout`.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let accounts: usize = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = rt.block_on(Stack::new("sweep-bench"));
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H");
    let t = Instant::now();
    let body = denials_gz(MALLORY, &[T0]);
    rt.block_on(async {
        for i in 0..accounts {
            let key = format!(
                "AWSLogs/{:012}/BedrockModelInvocationLogs/us-east-1/{hour}/replica.json.gz",
                100_000_000_000 + i
            );
            s.put(&key, body.clone()).await;
        }
    });
    println!(
        "{accounts} account folders, one object each, written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let handler = rt.block_on(s.handler());
    let req = Sweep {
        bucket: s.bucket.clone(),
        prefix: "AWSLogs/".into(),
        lookback_hours: 6,
        silent_after_hours: 0,
        quiet_accounts: String::new(),
        max_listed_per_account: bedrock_denied_models::event::SWEEP_MAX_LISTED_PER_ACCOUNT,
    };
    println!();
    println!("| sweep | time | of the 300 s timeout | list requests | accounts swept | objects processed | already processed | continues at |");
    println!("|---|---|---|---|---|---|---|---|");
    for run in 1..=4 {
        let now = chrono::Utc::now().timestamp();
        let started = Instant::now();
        let deadline = started + FUNCTION_TIMEOUT;
        let report = rt
            .block_on(handler.sweep(
                &req,
                now,
                &mut Counts::default(),
                Some(deadline - Duration::from_secs(60)),
            ))
            .expect("sweep");
        let took = started.elapsed();
        println!(
            "| {run} | {:.1} s | {:.0}% | {} | {} of {} | {} | {} | {} |",
            took.as_secs_f64(),
            100.0 * took.as_secs_f64() / FUNCTION_TIMEOUT.as_secs_f64(),
            report.prefixes_listed,
            report.accounts_swept,
            report.accounts,
            report.processed,
            report.already_processed,
            report.continues_at.as_deref().unwrap_or("-"),
        );
        if report.processed == 0 && report.continues_at.is_none() {
            break;
        }
    }
}
