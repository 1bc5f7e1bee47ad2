//! Backfill through the queue: how many S3 notifications one machine sends to the
//! stack's input queue per second, for `--objects` listed objects (default 100,000) on
//! the emulator, beside the listing alone (a dry run) in the same run
//! (docs/DESIGN.md, "Backfill through the queue").
//!
//! `scripts/bench backfill [--objects N]` starts the emulator and runs it. The objects
//! are tiny: what is measured is listing and sending, not reading. While the backfill
//! sends, consumers receive and delete the messages as the deployed functions would
//! (`--consumers N`, default 4; 0 leaves them in the queue), so the queue stays as
//! short as a drained one: the emulator's `SendMessageBatch` slows with every message
//! its queue holds, which SQS's does not.

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

use bedrock_denied_models::aws::backfill::{backfill, Plan, Progress, SqsQueue, BATCH};
use futures_util::stream::{self, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const PREFIX: &str = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let objects: usize = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s = support::Stack::new("bench-backfill").await;
        let t = Instant::now();
        stream::iter(0..objects)
            .map(|i| {
                let s = &s;
                async move {
                    s.put(&format!("{PREFIX}/o-{i:07}.json"), b"{}\n".to_vec())
                        .await;
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        println!(
            "{objects} objects put in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let url = s
            .sqs
            .create_queue()
            .queue_name(support::unique("bench-backfill"))
            .tags("bedrock-denied-models", "log-queue")
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_string();
        let region = bedrock_denied_models::aws::region(&s.sdk);
        let queue = SqsQueue::new(&s.sdk, &region, &url);
        queue.check_owned().await.expect("the queue is tagged");
        let mut rows = Vec::new();
        let consumers: usize = args
            .iter()
            .position(|a| a == "--consumers")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(4);
        let mut received = 0u64;
        for dry_run in [true, false] {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let drains: Vec<_> = (0..if dry_run { 0 } else { consumers })
                .map(|_| tokio::spawn(drain(s.sqs.clone(), url.clone(), stop.clone())))
                .collect();
            let plan = Plan {
                bucket: s.bucket.clone(),
                prefix: format!("{PREFIX}/"),
                region: region.clone(),
                start_after: None,
                dry_run,
            };
            let progress = Arc::new(Mutex::new(Progress::default()));
            let t = Instant::now();
            let done = backfill(&s.s3, &queue, &plan, |_, _| true, progress)
                .await
                .expect("backfill");
            let seconds = t.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            for d in drains {
                received += d.await.expect("consumer");
            }
            assert_eq!(done.sent, objects as u64);
            rows.push((dry_run, seconds, done));
        }
        println!();
        println!(
            "| run | objects | time | rate | SendMessageBatch requests | entries sent again |"
        );
        println!("|---|---|---|---|---|---|");
        for (dry_run, seconds, done) in &rows {
            println!(
                "| {} | {} | {:.1} s | {:.0} {}/s | {} | {} |",
                if *dry_run {
                    "listing alone (--dry-run)"
                } else {
                    "listing and sending"
                },
                done.sent,
                seconds,
                done.sent as f64 / seconds,
                if *dry_run { "objects" } else { "messages" },
                if *dry_run {
                    0
                } else {
                    done.sent.div_ceil(BATCH as u64)
                },
                done.retried,
            );
        }
        println!();
        println!(
            "{consumers} consumers received and deleted {received} messages while it sent (the rest stay queued)"
        );
        let (_, send_seconds, _) = rows[1];
        println!();
        println!(
            "sending costs {:.2}x the listing alone",
            send_seconds / rows[0].1.max(1e-9)
        );
    });
}

/// Receives and deletes messages, 10 at a time, until told to stop and the queue
/// answers empty; how many it took.
async fn drain(
    sqs: aws_sdk_sqs::Client,
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut taken = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = out.messages();
        if messages.is_empty() {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return taken;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        let entries: Vec<_> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle().map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        taken += entries.len() as u64;
        sqs.delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("delete");
    }
}
