//! The sweep against the emulator: objects no notification brought (as replicas in an
//! organization's central bucket may be) are found and counted, objects already
//! processed are not read again, and a second sweep does nothing.

use crate::support::*;
use bedrock_denied_models::aws::dynamo_store;
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

/// A bus with a rule for the detector's notices about log sources, to a new queue.
async fn notices_bus(s: &Stack, bus: &str) -> String {
    events_call(&s.sdk, "AWSEvents.CreateEventBus", json!({"Name": bus})).await;
    let pattern = json!({"source": ["bedrock-denied-models"],
        "detail-type": ["Bedrock Log Source Silent", "Bedrock Log Source Resumed"]});
    rule_to_queue(s, bus, &pattern).await
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_silent_account_is_told_once_by_email_and_event_and_again_when_it_resumes() {
    use bedrock_denied_models::event::Sweep;
    use bedrock_denied_models::lambda::{aws_handler, LambdaSettings};
    use bedrock_denied_models::stats::Counts;
    use bedrock_denied_models::store::SourceWatch;

    let s = Stack::new("silent").await;
    let bus = unique("notices-bus");
    let events = notices_bus(&s, &bus).await;
    let settings = LambdaSettings {
        event_bus: Some(bus.clone()),
        ..s.settings(bedrock_denied_models::config::Config::default())
    };
    let h = aws_handler(settings).await;
    let (watched, quiet) = ("111122223333", "444455556666");
    // Both accounts deliver a log object now.
    let now = chrono::Utc::now().timestamp();
    for account in [watched, quiet] {
        let key =
            format!("AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/x/{account}.json");
        s.put(&key, denials(MALLORY, &[T0]).into_bytes()).await;
        h.handle(s.s3_event(&[&key])).await.expect("object");
    }
    let req = Sweep {
        bucket: s.bucket.clone(),
        prefix: "AWSLogs/".into(),
        lookback_hours: 1,
        silent_after_hours: 6,
        quiet_accounts: quiet.into(),
        max_listed_per_account: bedrock_denied_models::event::SWEEP_MAX_LISTED_PER_ACCOUNT,
    };
    let sweep = |at: i64| {
        let (h, req) = (&h, &req);
        async move {
            h.sweep(req, at, &mut Counts::default(), None)
                .await
                .expect("sweep")
        }
    };
    let only_notices = |mut messages: Vec<Value>| {
        // The object above alerted nothing (one denial); anything here is a notice.
        messages.retain(|m| {
            m["Subject"]
                .as_str()
                .is_some_and(|s| s.contains("Bedrock logs"))
        });
        messages
    };

    assert_eq!(
        sweep(now + 3600).await.source_notices,
        0,
        "within the hours expected"
    );

    // Silent: one email (SNS) and one event naming the account, not the quiet one.
    let r = sweep(now + 6 * 3600 + 60).await;
    assert_eq!(
        (r.sources_watched, r.sources_silent, r.source_notices),
        (1, 1, 1)
    );
    let mail = only_notices(s.drain(&s.queue_url).await);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(
        mail[0]["Subject"],
        format!("[WARNING] Bedrock logs: account {watched} in us-east-1 silent for 6 h")
    );
    assert_eq!(
        mail[0]["MessageAttributes"]["cloud.account.id"]["Value"],
        watched
    );
    let body: Value =
        serde_json::from_str(mail[0]["Message"].as_str().expect("message")).expect("json");
    assert_eq!(
        (body["status"].as_str(), body["cloud.account.id"].as_str()),
        (Some("silent"), Some(watched))
    );
    let sent = s.drain(&events).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["detail-type"], "Bedrock Log Source Silent");
    assert_eq!(sent[0]["detail"]["cloud.account.id"], watched);

    // Still silent: nothing more.
    let r = sweep(now + 9 * 3600).await;
    assert_eq!((r.sources_silent, r.source_notices), (1, 0));
    assert!(only_notices(s.drain(&s.queue_url).await).is_empty());
    assert!(s.drain(&events).await.is_empty());

    // A log object of the account arrives again: resumed, told once.
    dynamo_store(&s.sdk, &s.table)
        .source_seen(&format!("{watched}:us-east-1"), now + 10 * 3600)
        .await
        .expect("seen");
    let r = sweep(now + 10 * 3600 + 60).await;
    assert_eq!((r.sources_silent, r.source_notices), (0, 1));
    let mail = only_notices(s.drain(&s.queue_url).await);
    assert_eq!(mail.len(), 1);
    assert_eq!(
        mail[0]["Subject"],
        format!("[OK] Bedrock logs: account {watched} in us-east-1 delivering again")
    );
    let sent = s.drain(&events).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["detail-type"], "Bedrock Log Source Resumed");
    assert_eq!(sweep(now + 10 * 3600 + 120).await.source_notices, 0);
}
