//! The Lambda handler, in process, against the AWS emulator: S3 objects in, DynamoDB
//! counters, SNS alerts read back through a subscribed SQS queue.

mod common;

use bedrock_denied_models::config::Config;
use bedrock_denied_models::key::DenialKey;
use common::*;
use serde_json::json;

fn mallory() -> DenialKey {
    DenialKey::new(MALLORY, MODEL, ACCOUNT)
}

#[tokio::test]
async fn alert_end_to_end_through_sns() {
    let Some(s) = Stack::new("e2e").await else {
        return;
    };
    let key =
        "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/a b+c:d.json.gz";
    s.put(key, denials_gz(MALLORY, &[T0, T0 + 60, T0 + 120, T0 + 180]))
        .await;
    let out = s
        .handler()
        .await
        .handle(s.s3_event(&[key]))
        .await
        .expect("handled");
    assert_eq!(out, json!({"objects": 1}));

    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let env = &alerts[0];
    let a = &env["Alert"];
    assert_eq!(a["user.id"], MALLORY);
    assert_eq!(a["gen_ai.request.model.id"], MODEL);
    assert_eq!(a["cloud.account.id"], ACCOUNT);
    assert_eq!(a["total_denials"], 4);
    assert_eq!(a["threshold"], 3);
    assert_eq!(a["rule"]["id"], "17261da3-a6d0-463c-aac8-ea1718afcd20");
    assert_eq!(
        a["window"],
        json!({"start": "2026-03-14T08:10:00Z", "end": "2026-03-14T09:10:00Z"})
    );
    assert_eq!(
        a["evidence"]["objects"],
        json!([format!("s3://{}/{key}", s.bucket)])
    );
    let subject = env["Subject"].as_str().expect("subject");
    assert!(
        subject.starts_with("[HIGH] Bedrock: 4 denied calls to anthropic.claude-3-opus"),
        "{subject}"
    );
    assert!(
        subject.len() <= 100 && subject.ends_with("ContractorAccess/mallory"),
        "{subject}"
    );
    let attrs = &env["MessageAttributes"];
    assert_eq!(attrs["severity"]["Value"], "high");
    assert_eq!(attrs["cloud.account.id"]["Value"], ACCOUNT);
    assert_eq!(attrs["gen_ai.request.model.id"]["Value"], MODEL);
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
}

#[tokio::test]
async fn three_denials_stay_quiet() {
    let Some(s) = Stack::new("quiet").await else {
        return;
    };
    s.put("a.json.gz", denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2]))
        .await;
    s.handler()
        .await
        .handle(s.s3_event(&["a.json.gz"]))
        .await
        .expect("handled");
    assert!(s.alerts().await.is_empty());
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 3);
}

#[tokio::test]
async fn counts_add_across_objects_and_windows_span_55_not_70_minutes() {
    let Some(s) = Stack::new("across").await else {
        return;
    };
    let h = s.handler().await;
    s.put("a.json.gz", denials_gz(MALLORY, &[T0, T0 + 1])).await;
    s.put(
        "b.json.gz",
        denials_gz(MALLORY, &[T0 + 70 * 60, T0 + 70 * 60 + 1]),
    )
    .await;
    h.handle(s.s3_event(&["a.json.gz", "b.json.gz"]))
        .await
        .expect("handled");
    assert!(s.alerts().await.is_empty(), "70 minutes apart never meet");
    s.put(
        "c.json.gz",
        denials_gz(MALLORY, &[T0 + 55 * 60, T0 + 55 * 60 + 1]),
    )
    .await;
    h.handle(s.s3_event(&["c.json.gz"])).await.expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "55 minutes apart meet");
    assert_eq!(alerts[0]["Alert"]["total_denials"], 4);
    assert_eq!(
        alerts[0]["Alert"]["buckets"],
        json!([{"start": "2026-03-14T09:00:00Z", "denials": 2}, {"start": "2026-03-14T09:50:00Z", "denials": 2}])
    );
}

#[tokio::test]
async fn grouping_by_user_model_and_account() {
    let Some(s) = Stack::new("group").await else {
        return;
    };
    let mut body = String::new();
    for (u, m, a) in [
        (MALLORY, MODEL, ACCOUNT),
        ("arn:aws:iam::111122223333:user/bob", MODEL, ACCOUNT),
        (MALLORY, "amazon.titan-text-express-v1", ACCOUNT),
        (MALLORY, MODEL, "444455556666"),
    ] {
        for i in 0..3 {
            body += &line(u, m, a, T0 + i, Some("AccessDeniedException"));
        }
        body += &line(u, m, a, T0, Some("ValidationException"));
        body += &line(u, m, a, T0, None);
    }
    s.put("mixed.json", body.into_bytes()).await;
    s.handler()
        .await
        .handle(s.s3_event(&["mixed.json"]))
        .await
        .expect("handled");
    assert!(s.alerts().await.is_empty(), "3 per key: no alert");
    for (u, m, a) in [(MALLORY, "amazon.titan-text-express-v1", ACCOUNT)] {
        assert_eq!(s.count(&DenialKey::new(u, m, a), bucket_of(T0)).await, 3);
    }
}

#[tokio::test]
async fn redelivery_counts_once_and_alerts_once() {
    let Some(s) = Stack::new("redeliver").await else {
        return;
    };
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 60, T0 + 120, T0 + 180, T0 + 700]),
    )
    .await;
    let h = s.handler().await;
    let event = s.s3_event(&["a.json.gz"]);
    h.handle(event.clone()).await.expect("first");
    h.handle(event.clone()).await.expect("redelivered");
    s.handler()
        .await
        .handle(event)
        .await
        .expect("redelivered to a new container");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert_eq!(s.count(&mallory(), bucket_of(T0 + 700)).await, 1);
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn racing_invocations_alert_once() {
    let Some(s) = Stack::new("race").await else {
        return;
    };
    for k in ["a.json.gz", "b.json.gz", "c.json.gz", "d.json.gz"] {
        s.put(k, denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]))
            .await;
    }
    let (h1, h2, h3, h4) = (
        s.handler().await,
        s.handler().await,
        s.handler().await,
        s.handler().await,
    );
    let (r1, r2, r3, r4) = tokio::join!(
        h1.handle(s.s3_event(&["a.json.gz"])),
        h2.handle(s.s3_event(&["b.json.gz"])),
        h3.handle(s.s3_event(&["c.json.gz"])),
        h4.handle(s.s3_event(&["d.json.gz"])),
    );
    for r in [r1, r2, r3, r4] {
        r.expect("handled");
    }
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 16);
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn suppression_then_a_new_alert_after_the_period() {
    let Some(s) = Stack::new("suppress").await else {
        return;
    };
    let h = s.handler().await;
    s.put("a.json.gz", denials_gz(MALLORY, &[T0; 4])).await;
    s.put("b.json.gz", denials_gz(MALLORY, &[T0 + 1800; 4]))
        .await;
    s.put("c.json.gz", denials_gz(MALLORY, &[T0 + 3 * 3600; 4]))
        .await;
    h.handle(s.s3_event(&["a.json.gz"])).await.expect("a");
    h.handle(s.s3_event(&["b.json.gz"])).await.expect("b");
    assert_eq!(
        s.alerts().await.len(),
        1,
        "second burst within 60 minutes is suppressed"
    );
    h.handle(s.s3_event(&["c.json.gz"])).await.expect("c");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "a burst three hours later alerts again");
    assert_eq!(alerts[0]["Alert"]["window"]["end"], "2026-03-14T12:10:00Z");
}

#[tokio::test]
async fn failed_publish_fails_the_invocation_and_the_retry_alerts() {
    let Some(mut s) = Stack::new("publishfail").await else {
        return;
    };
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let event = s.s3_event(&["a.json.gz"]);
    s.sns
        .delete_topic()
        .topic_arn(&s.topic_arn)
        .send()
        .await
        .expect("delete topic");
    let err = s
        .handler()
        .await
        .handle(event.clone())
        .await
        .expect_err("publish fails");
    assert!(err.to_string().contains("SNS Publish"), "{err}");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4, "counts are in");

    s.create_topic().await;
    s.handler()
        .await
        .handle(event.clone())
        .await
        .expect("retry succeeds");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0]["Alert"]["total_denials"], 4,
        "retry did not count twice"
    );
    s.handler()
        .await
        .handle(event)
        .await
        .expect("late redelivery");
    assert!(s.alerts().await.is_empty(), "and no second alert");
}

#[tokio::test]
async fn missing_table_fails_the_invocation() {
    let Some(s) = Stack::new("notable").await else {
        return;
    };
    s.put("a.json.gz", denials_gz(MALLORY, &[T0])).await;
    s.delete_table().await;
    let err = s
        .handler()
        .await
        .handle(s.s3_event(&["a.json.gz"]))
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("UpdateItem (counter)"), "{err}");
}

#[tokio::test]
async fn bad_objects_are_acknowledged() {
    let Some(s) = Stack::new("badobjects").await else {
        return;
    };
    let mut corrupt = denials_gz(MALLORY, &vec![T0; 3000]);
    corrupt.truncate(corrupt.len() / 2);
    s.put("cut.json.gz", corrupt).await;
    s.put("empty.json.gz", Vec::new()).await;
    s.put("junk.json", b"\x00\x01 not a log\n{\"half\": ".to_vec())
        .await;
    s.put(
        "AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        b"x".to_vec(),
    )
    .await;
    let out = s
        .handler()
        .await
        .handle(s.s3_event(&[
            "cut.json.gz",
            "empty.json.gz",
            "junk.json",
            "never-written.json.gz",
            "AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        ]))
        .await
        .expect("bad objects never fail the invocation");
    assert_eq!(out, json!({"objects": 5}));
    let kept = s.count(&mallory(), bucket_of(T0)).await;
    assert!(
        kept > 3 && kept < 3000,
        "what was read before the cut is counted: {kept}"
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn eventbridge_and_cloudtrail() {
    let Some(s) = Stack::new("eventbridge").await else {
        return;
    };
    let trail = json!({"Records": (0..4).map(|i| json!({
        "eventVersion": "1.09", "eventTime": bedrock_denied_models::alert::rfc3339(T0 + i),
        "eventSource": "bedrock.amazonaws.com", "eventName": "InvokeModel",
        "userIdentity": {"type": "AssumedRole", "arn": MALLORY, "accountId": ACCOUNT},
        "requestParameters": {"modelId": MODEL}, "errorCode": "AccessDenied",
        "requestID": format!("ct-{i}"), "recipientAccountId": ACCOUNT
    })).collect::<Vec<_>>()});
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/14/trail.json.gz";
    s.put(key, gzip(trail.to_string().as_bytes())).await;
    let event = json!({"version": "0", "id": "x", "detail-type": "Object Created", "source": "aws.s3",
        "account": ACCOUNT, "time": "2026-03-14T09:20:05Z", "region": "us-east-1", "resources": [],
        "detail": {"version": "0", "bucket": {"name": s.bucket}, "object": {"key": key, "size": 10}}});
    s.handler().await.handle(event).await.expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0]["Alert"]["evidence"]["request_ids"],
        json!(["ct-0", "ct-1", "ct-2", "ct-3"])
    );
}

#[tokio::test]
async fn sqs_batch_reports_only_failed_messages() {
    let Some(s) = Stack::new("sqsbatch").await else {
        return;
    };
    s.put("ok.json.gz", denials_gz(MALLORY, &[T0; 4])).await;
    let ok = s.s3_event(&["ok.json.gz"]);
    let mut broken = s.s3_event(&["x.json.gz"]);
    broken["Records"][0]["s3"]["bucket"]["name"] = json!("no-such-bucket-anywhere");
    let event = json!({"Records": [
        {"messageId": "m-ok", "eventSource": "aws:sqs", "body": ok.to_string()},
        {"messageId": "m-broken", "eventSource": "aws:sqs", "body": broken.to_string()},
        {"messageId": "m-test", "eventSource": "aws:sqs",
         "body": json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string()},
    ]});
    let out = s
        .handler()
        .await
        .handle(event)
        .await
        .expect("batch answered");
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-broken"}]})
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn configuration_changes_threshold_and_codes() {
    let Some(s) = Stack::new("config").await else {
        return;
    };
    let config = Config::from_vars(|k| match k {
        "THRESHOLD" => Some("5".into()),
        "DENIAL_CODES" => Some("AccessDeniedException".into()),
        _ => None,
    })
    .expect("config");
    let h = s.handler_with(config).await;
    let mut body = String::new();
    for i in 0..5 {
        body += &line(
            MALLORY,
            MODEL,
            ACCOUNT,
            T0 + i,
            Some("AccessDeniedException"),
        );
        body += &line(MALLORY, MODEL, ACCOUNT, T0 + i, Some("AccessDenied"));
    }
    s.put("a.json", body.clone().into_bytes()).await;
    h.handle(s.s3_event(&["a.json"])).await.expect("a");
    assert!(
        s.alerts().await.is_empty(),
        "5 is not above 5; AccessDenied not configured"
    );
    s.put(
        "b.json",
        line(
            MALLORY,
            MODEL,
            ACCOUNT,
            T0 + 9,
            Some("AccessDeniedException"),
        )
        .into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["b.json"])).await.expect("b");
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn huge_ids_still_count_and_alert() {
    let Some(s) = Stack::new("hugeids").await else {
        return;
    };
    // A 600 KB model id would make a 400 KB DynamoDB item if stored whole.
    let model = format!("anthropic.{}", "x".repeat(600_000));
    let body: String = (0..4)
        .map(|i| {
            line(
                MALLORY,
                &model,
                ACCOUNT,
                T0 + i,
                Some("AccessDeniedException"),
            )
        })
        .collect();
    s.put("huge.json", body.into_bytes()).await;
    s.handler()
        .await
        .handle(s.s3_event(&["huge.json"]))
        .await
        .expect("handled");
    assert_eq!(
        s.count(
            &DenialKey::new(MALLORY, model.as_str(), ACCOUNT),
            bucket_of(T0)
        )
        .await,
        4
    );
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    let sent = alerts[0]["Alert"]["gen_ai.request.model.id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        sent.starts_with("anthropic.xxx") && sent.len() < 256 * 1024,
        "{}",
        sent.len()
    );
}
