//! The sweep against the emulator: objects no notification brought (as replicas in an
//! organization's central bucket may be) are found and counted, objects already
//! processed are not read again, and a second sweep does nothing.

use crate::support::*;
use chrono::{Datelike, Timelike};
use serde_json::{json, Value};

/// `AWSLogs/<account>/<service>/us-east-1/YYYY/MM/DD/[HH/]` for a time `hours_ago`.
fn key(service: &str, hours_ago: i64, hourly: bool, name: &str) -> String {
    let t = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
    let hour = if hourly {
        format!("{:02}/", t.hour())
    } else {
        String::new()
    };
    format!(
        "AWSLogs/111122223333/{service}/us-east-1/{:04}/{:02}/{:02}/{hour}{name}",
        t.year(),
        t.month(),
        t.day()
    )
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_sweep_counts_what_no_notification_brought_and_nothing_twice() {
    let s = Stack::new("sweep").await;
    let bedrock = |hours_ago, name| key("BedrockModelInvocationLogs", hours_ago, true, name);
    let notified = bedrock(0, "notified.json.gz");
    s.put(&notified, denials_gz(MALLORY, &[T0, T0 + 1])).await;
    s.put(
        &bedrock(1, "replica.json.gz"),
        denials_gz(MALLORY, &[T0 + 2, T0 + 3]),
    )
    .await;
    let trail = json!({"Records": [cloudtrail_record(MALLORY, MODEL, T0 + 4, "InvokeModel", Some("AccessDenied"), "ct-1")]});
    s.put(
        &key("CloudTrail", 0, false, "trail.json.gz"),
        gzip(trail.to_string().as_bytes()),
    )
    .await;
    s.put(
        &bedrock(0, "amazon-bedrock-logs-permission-check"),
        b"x".to_vec(),
    )
    .await;
    s.put(&bedrock(10, "old.json.gz"), denials_gz(MALLORY, &[T0 + 5]))
        .await;

    let h = s.handler().await;
    // One object arrived the usual way.
    h.handle(s.s3_event(&[notified.as_str()]))
        .await
        .expect("notified");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 2);

    let sweep = json!({"sweep": {"bucket": s.bucket, "lookback_hours": 6}});
    let first: Value = answer(h.handle(sweep.clone()).await.expect("sweep"));
    let report = &first["sweep"];
    assert_eq!(
        report["processed"], 2,
        "the replica and the CloudTrail file: {first}"
    );
    assert_eq!(
        report["already_processed"], 1,
        "the notified object: {first}"
    );
    assert_eq!(report["failed"], 0);
    assert_eq!(
        s.count(&mallory(), bucket_of(T0)).await,
        5,
        "2 + 2 + 1, the old object outside the lookback"
    );
    assert_eq!(s.alerts().await.len(), 1);

    let second: Value = answer(h.handle(sweep).await.expect("second sweep"));
    assert_eq!(second["sweep"]["processed"], 0, "{second}");
    assert_eq!(second["sweep"]["already_processed"], 3, "{second}");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 5);
    assert!(s.alerts().await.is_empty());
}
