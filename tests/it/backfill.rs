//! `backfill --via-queue` against the emulator: the built binary sends a prefix's
//! objects to a tagged queue, the function's handler counts what the queue delivers,
//! once however often it is sent (docs/DESIGN.md, "Backfill through the queue").

use crate::support::*;
use serde_json::{json, Value};
use std::process::{Command, Output};

const PREFIX: &str = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03";

fn backfill(args: &[&str]) -> Output {
    let mut cmd = Command::new(detector_bin());
    cmd.arg("backfill").args(args);
    cmd.output().expect("run backfill")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A queue, tagged as the template tags its input queue when `tagged`.
async fn queue(s: &Stack, tagged: bool) -> String {
    let mut create = s.sqs.create_queue().queue_name(unique("backfill"));
    if tagged {
        create = create.tags("bedrock-denied-models", "log-queue");
    }
    let out = create.send().await.expect("queue");
    out.queue_url().expect("url").to_string()
}

/// Every message on the queue (received and deleted), as the SQS records of a Lambda
/// event.
async fn drain(s: &Stack, url: &str) -> Vec<Value> {
    s.drain(url)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "eventSource": "aws:sqs", "body": body.to_string()}))
        .collect()
}

/// Hands the records to the function's handler, 10 to an invocation, as Lambda does.
async fn deliver(s: &Stack, records: &[Value]) {
    let h = s.handler().await;
    for batch in records.chunks(10) {
        let out = h
            .handle(json!({"Records": batch}))
            .await
            .expect("batch handled");
        assert_eq!(
            answer(out),
            json!({"batchItemFailures": []}),
            "every message processed"
        );
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_backfill_through_the_queue_counts_each_object_once() {
    let s = Stack::new("backfill").await;
    let url = queue(&s, true).await;
    // 23 objects of one denial each in the period, 2 after it.
    for i in 0..23 {
        let key = format!("{PREFIX}/14/09/part-{i:02}.json.gz");
        s.put(&key, denials_gz(MALLORY, &[T0 + i])).await;
    }
    for i in 0..2 {
        let key = format!("{PREFIX}/20/09/later-{i}.json.gz");
        s.put(&key, denials_gz(MALLORY, &[T0 + 6 * 86_400 + i]))
            .await;
    }
    let source = format!("s3://{}/{PREFIX}/", s.bucket);
    let args = ["--via-queue", url.as_str(), "--until", "2026-03-15"];
    let run = |extra: &[&str]| {
        let mut all = vec![source.as_str()];
        all.extend_from_slice(&args);
        all.extend_from_slice(extra);
        backfill(&all)
    };

    let dry = run(&["--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains("done: listed 25, selected 23"),
        "{}",
        stderr(&dry)
    );
    assert!(drain(&s, &url).await.is_empty(), "a dry run sends nothing");

    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("done: listed 25, sent 23"),
        "{}",
        stderr(&first)
    );
    let records = drain(&s, &url).await;
    assert_eq!(records.len(), 23);
    deliver(&s, &records).await;
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 23);
    assert_eq!(s.alerts().await.len(), 1, "one alert for the burst");

    // Sent again: the function counts nothing twice and alerts nothing new.
    let again = run(&[]);
    assert!(again.status.success(), "{}", stderr(&again));
    let records = drain(&s, &url).await;
    assert_eq!(records.len(), 23);
    deliver(&s, &records).await;
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 23);
    assert!(s.alerts().await.is_empty());

    // Resumed after a key: only the keys after it.
    let after = format!("{PREFIX}/14/09/part-09.json.gz");
    let resumed = run(&["--start-after", after.as_str()]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(drain(&s, &url).await.len(), 13);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_queue_no_stack_of_this_project_owns_is_refused_unless_forced() {
    let s = Stack::new("backfill-refuse").await;
    let url = queue(&s, false).await;
    s.put(
        &format!("{PREFIX}/14/09/a.json.gz"),
        denials_gz(MALLORY, &[T0]),
    )
    .await;
    let source = format!("s3://{}/{PREFIX}/", s.bucket);
    let refused = backfill(&[source.as_str(), "--via-queue", url.as_str()]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("no tag bedrock-denied-models=log-queue"),
        "{err}"
    );
    assert!(err.contains("UseQueue=true"), "{err}");
    assert!(drain(&s, &url).await.is_empty());
    let forced = backfill(&[source.as_str(), "--via-queue", url.as_str(), "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(drain(&s, &url).await.len(), 1);
}
