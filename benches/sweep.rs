//! The sweep at organization size, against the emulator (docs/DESIGN.md, "The sweep"):
//! `--accounts` account folders (default 1,000), each with a log object of the last
//! hour that no notification brought, swept as the schedule would until every one is
//! processed, with the silence check on. Run twice in one process:
//!
//! - the baseline: honest accounts only;
//! - with a flooder: one of the accounts (sorting first) writes `--flood` new objects
//!   (default 600) before every sweep, and has `--fake-regions` made-up Region folders
//!   (default 15,000) below its Bedrock folder.
//!
//! `scripts/bench sweep [--accounts N] [--flood N] [--fake-regions N]` starts the
//! emulators and runs it. Per sweep it prints the time taken against the function's
//! default timeout, the list requests, the honest objects processed so far, the
//! flooder's objects processed, whether the silence check ran (sources watched), and
//! where the next sweep continues; then, per run, the sweep in which the last honest
//! object was processed. The emulator answers one request at a time, so its own speed
//! is part of every time; the number of list requests is what a real bucket would see.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use bedrock_denied_models::event::Sweep;
use bedrock_denied_models::identity::object_marker;
use bedrock_denied_models::stats::Counts;
use bedrock_denied_models::store::{Marker, SweepBook};
use std::time::{Duration, Instant};
use support::{denials_gz, Stack, MALLORY, T0};

/// The template's default `FunctionTimeout`.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);
/// Sweeps run at most, per scenario.
const MAX_SWEEPS: usize = 8;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let accounts = arg(&args, "--accounts", 1000);
    let flood = arg(&args, "--flood", 600);
    let fake_regions = arg(&args, "--fake-regions", 15_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{accounts} account folders, one new object each; the function's timeout is 300 s.");
    let baseline = rt.block_on(scenario(accounts, None));
    let flooded = rt.block_on(scenario(accounts, Some((flood, fake_regions))));
    println!();
    println!("| run | sweep in which the last honest object was processed |");
    println!("|---|---|");
    println!(
        "| baseline ({accounts} honest accounts) | {} |",
        show(baseline)
    );
    println!(
        "| one flooder ({flood} new objects a sweep, {fake_regions} fake Region folders) and {} honest | {} |",
        accounts - 1,
        show(flooded)
    );
    match (baseline, flooded) {
        (Some(b), Some(f)) => println!(
            "\nwith the flooder, honest objects are processed {} sweep(s) later than without it",
            f.saturating_sub(b)
        ),
        _ => println!("\nnot every honest object was processed within {MAX_SWEEPS} sweeps"),
    }
}

fn show(sweep: Option<usize>) -> String {
    sweep.map_or_else(|| format!("not within {MAX_SWEEPS}"), |s| s.to_string())
}

/// `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/<this hour>/<name>`.
fn key(account: &str, region: &str, name: &str) -> String {
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H");
    format!("AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{hour}/{name}")
}

/// Writes an object and returns its marker.
async fn put(s: &Stack, key: &str, body: &[u8]) -> String {
    let out =
        s.s3.put_object()
            .bucket(&s.bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .expect("put object");
    object_marker(&s.bucket, key, out.e_tag().expect("etag"))
}

/// Sweeps until every honest object is processed (or [`MAX_SWEEPS`]); the sweep that
/// processed the last one.
async fn scenario(accounts: usize, flooder: Option<(usize, usize)>) -> Option<usize> {
    let s = Stack::new("sweep-bench").await;
    let body = denials_gz(MALLORY, &[T0]);
    let t = Instant::now();
    let first_honest = usize::from(flooder.is_some());
    let mut honest = Vec::new();
    for i in first_honest..accounts {
        let account = format!("{:012}", 100_000_000_000 + i);
        honest.push(put(&s, &key(&account, "us-east-1", "replica.json.gz"), &body).await);
    }
    let flooder_account = format!("{:012}", 100_000_000_000u64);
    if let Some((_, fake_regions)) = flooder {
        for r in 0..fake_regions {
            let region = format!("zz-fake-{r:05}");
            put(&s, &key(&flooder_account, &region, "x.json.gz"), &body).await;
        }
    }
    println!();
    match flooder {
        None => println!("Baseline: {} honest accounts (written in {:.1} s)", honest.len(), t.elapsed().as_secs_f64()),
        Some((flood, fake)) => println!(
            "With a flooder: {} honest accounts and {flooder_account}, with {fake} fake Region folders and {flood} new objects before every sweep (written in {:.1} s)",
            honest.len(),
            t.elapsed().as_secs_f64()
        ),
    }
    let handler = s.handler().await;
    let store = bedrock_denied_models::aws::dynamo_store(&s.sdk, &s.table);
    let req = Sweep {
        bucket: s.bucket.clone(),
        prefix: "AWSLogs/".into(),
        lookback_hours: 6,
        silent_after_hours: 6,
        quiet_accounts: String::new(),
        max_listed_per_account: bedrock_denied_models::event::SWEEP_MAX_LISTED_PER_ACCOUNT,
    };
    println!();
    println!("| sweep | time | of the 300 s timeout | list requests | honest processed | flooder's processed | silence check (sources watched) | continues at |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut done_at = None;
    let mut honest_done = 0;
    for run in 1..=MAX_SWEEPS {
        if let Some((flood, _)) = flooder {
            for n in 0..flood {
                put(
                    &s,
                    &key(
                        &flooder_account,
                        "us-east-1",
                        &format!("s{run}-{n:04}.json.gz"),
                    ),
                    &body,
                )
                .await;
            }
        }
        let now = chrono::Utc::now().timestamp();
        let started = Instant::now();
        let deadline = started + FUNCTION_TIMEOUT;
        let report = handler
            .sweep(
                &req,
                now,
                &mut Counts::default(),
                Some(deadline - Duration::from_secs(60)),
            )
            .await
            .expect("sweep");
        let took = started.elapsed();
        let known = store.markers(&honest).await.expect("markers");
        let processed = honest
            .iter()
            .filter(|m| matches!(known.get(*m), Some(Marker::Processed)))
            .count();
        let flooder_processed = report.processed as usize - (processed - honest_done);
        honest_done = processed;
        println!(
            "| {run} | {:.1} s | {:.0}% | {} | {} of {} | {} | {} | {} |",
            took.as_secs_f64(),
            100.0 * took.as_secs_f64() / FUNCTION_TIMEOUT.as_secs_f64(),
            report.prefixes_listed,
            processed,
            honest.len(),
            flooder_processed,
            report.sources_watched,
            report.continues_at.as_deref().unwrap_or("-"),
        );
        if processed == honest.len() && done_at.is_none() {
            done_at = Some(run);
        }
        // With a flooder, one sweep more shows that it keeps only its share.
        if done_at.is_some_and(|d| flooder.is_none() || run > d) {
            break;
        }
    }
    done_at
}
