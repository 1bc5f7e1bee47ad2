//! The Lambda handler, in process, against the AWS emulator: S3 objects in, DynamoDB
//! counters, SNS alerts read back through a subscribed SQS queue.

use crate::support::*;
use bedrock_denied_models::aws::dynamo_store;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::key::{bounded_id, DenialKey};
use serde_json::json;

#[tokio::test]
#[ignore = "needs the emulator"]
async fn alert_end_to_end_through_sns() {
    let s = Stack::new("e2e").await;
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
    assert_eq!(answer(out), json!({"objects": 1}));

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
#[ignore = "needs the emulator"]
async fn three_denials_stay_quiet() {
    let s = Stack::new("quiet").await;
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
#[ignore = "needs the emulator"]
async fn counts_add_across_objects_and_windows_span_55_not_70_minutes() {
    let s = Stack::new("across").await;
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
#[ignore = "needs the emulator"]
async fn grouping_by_user_model_and_account() {
    let s = Stack::new("group").await;
    let keys = [
        (MALLORY, MODEL, ACCOUNT),
        ("arn:aws:iam::111122223333:user/bob", MODEL, ACCOUNT),
        (MALLORY, "amazon.titan-text-express-v1", ACCOUNT),
        (MALLORY, MODEL, "444455556666"),
    ];
    let mut body = String::new();
    for (u, m, a) in keys {
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
    for (u, m, a) in keys {
        assert_eq!(
            s.count(&DenialKey::new(u, m, a), bucket_of(T0)).await,
            3,
            "{u} {m} {a}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn redelivery_counts_once_and_alerts_once() {
    let s = Stack::new("redeliver").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator"]
async fn one_object_delivered_four_times_at_once_counts_once_and_alerts_once() {
    let s = Stack::new("race").await;
    for round in 0..5 {
        let user = format!("arn:aws:iam::111122223333:user/racer-{round}");
        let key = format!("round-{round}.json.gz");
        s.put(&key, denials_gz(&user, &[T0, T0 + 1, T0 + 2, T0 + 3]))
            .await;
        // A fresh handler per round: its barriers hold the round's four deliveries.
        let h = s.racing_handler(4, "race");
        let object =
            match bedrock_denied_models::event::parse_invocation(&s.s3_event(&[key.as_str()])) {
                bedrock_denied_models::event::Invocation::Objects(o) => o[0].clone(),
                other => panic!("{other:?}"),
            };
        let runs = (0..4).map(|_| h.process_object(&object, None));
        let mut sum = bedrock_denied_models::stats::Counts::default();
        for r in futures_util::future::join_all(runs).await {
            match r.expect("every delivery succeeds") {
                bedrock_denied_models::lambda::ObjectOutcome::Processed(report) => {
                    sum.add(&report.counts)
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            (sum.counters_added, sum.counters_already_counted),
            (1, 3),
            "round {round}: {sum:?}"
        );
        assert_eq!(
            (
                sum.alerts_published,
                sum.alerts_suppressed,
                sum.alerts_in_progress
            ),
            (1, 3, 3),
            "round {round}: one published, three waited for it and found it sent: {sum:?}"
        );
        assert_eq!(
            s.count(
                &DenialKey::new(user.as_str(), MODEL, ACCOUNT),
                bucket_of(T0)
            )
            .await,
            4,
            "round {round}: counted once"
        );
        let alerts = s.alerts().await;
        assert_eq!(
            alerts.len(),
            1,
            "round {round}: one alert, not one per delivery"
        );
        assert_eq!(alerts[0]["Alert"]["user.id"], user.as_str());
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn suppression_then_a_new_alert_after_the_period() {
    let s = Stack::new("suppress").await;
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
#[ignore = "needs the emulator"]
async fn failed_publish_fails_the_invocation_and_the_retry_alerts() {
    let mut s = Stack::new("publishfail").await;
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
#[ignore = "needs the emulator"]
async fn missing_table_fails_the_invocation() {
    let s = Stack::new("notable").await;
    s.put("a.json.gz", denials_gz(MALLORY, &[T0])).await;
    s.delete_table().await;
    let err = s
        .handler()
        .await
        .handle(s.s3_event(&["a.json.gz"]))
        .await
        .expect_err("fails");
    // The first write of a denial's count: its contribution.
    assert!(
        err.to_string().contains("PutItem (counter contribution)"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn bad_objects_are_acknowledged() {
    let s = Stack::new("badobjects").await;
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
    assert_eq!(answer(out), json!({"objects": 5}));
    let kept = s.count(&mallory(), bucket_of(T0)).await;
    assert!(
        kept > 3 && kept < 3000,
        "what was read before the cut is counted: {kept}"
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn eventbridge_and_cloudtrail() {
    let s = Stack::new("eventbridge").await;
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
#[ignore = "needs the emulator"]
async fn sqs_batch_reports_only_failed_messages() {
    let s = Stack::new("sqsbatch").await;
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
        answer(out),
        json!({"batchItemFailures": [{"itemIdentifier": "m-broken"}]})
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn configuration_changes_threshold_and_codes() {
    let s = Stack::new("config").await;
    let config = Config::from_vars(|k| match k {
        "THRESHOLD" => Some("5".into()),
        "CLOUDTRAIL_DENIAL_CODES" => Some("AccessDeniedException".into()),
        _ => None,
    })
    .expect("config");
    let h = s.handler_with(config).await;
    let mut body = String::new();
    for i in 0..5 {
        body += &line(MALLORY, MODEL, ACCOUNT, T0 + i, Some(DENIED));
        // Not a denial in an invocation log, whatever the settings.
        body += &line(MALLORY, MODEL, ACCOUNT, T0 + i, Some("AccessDenied"));
    }
    s.put("a.json", body.into_bytes()).await;
    h.handle(s.s3_event(&["a.json"])).await.expect("a");
    assert!(s.alerts().await.is_empty(), "5 is not above 5");
    // CloudTrail's AccessDenied no longer counts with these settings.
    let trail = json!({"Records": (0..3).map(|i| cloudtrail_record(MALLORY, MODEL, T0 + 10 + i, "InvokeModel", Some("AccessDenied"), &format!("ct-{i}"))).collect::<Vec<_>>()});
    s.put("trail.json", trail.to_string().into_bytes()).await;
    h.handle(s.s3_event(&["trail.json"])).await.expect("trail");
    assert!(
        s.alerts().await.is_empty(),
        "AccessDenied not configured for CloudTrail"
    );
    s.put(
        "b.json",
        line(MALLORY, MODEL, ACCOUNT, T0 + 9, Some(DENIED)).into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["b.json"])).await.expect("b");
    assert_eq!(s.alerts().await.len(), 1);
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 6);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn huge_ids_still_count_and_alert() {
    let s = Stack::new("hugeids").await;
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
            &DenialKey::new(MALLORY, bounded_id(&model), ACCOUNT),
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

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_versioned_bucket_counts_each_version_as_its_event_names_it() {
    let s = Stack::new("versioned").await;
    s.version_bucket().await;
    // v1: 2 denials at 08:00; v2: 1 denial at 08:01, same key and same 10-minute
    // bucket, so an identity that ignored the version would count one of them only.
    let v1 = s
        .put("k.json.gz", denials_gz(MALLORY, &[T0 - 3600, T0 - 3590]))
        .await
        .expect("v1");
    let v2 = s
        .put("k.json.gz", denials_gz(MALLORY, &[T0 - 3540]))
        .await
        .expect("v2");
    assert_ne!(v1, v2);
    let h = s.handler().await;
    // Each version's event twice, v2's first: every read is pinned to its version.
    for v in [&v2, &v1, &v2, &v1] {
        h.handle(s.versioned_event("k.json.gz", v))
            .await
            .expect("handled");
    }
    assert_eq!(bucket_of(T0 - 3600), bucket_of(T0 - 3540));
    assert_eq!(s.count(&mallory(), bucket_of(T0 - 3600)).await, 3);
    assert!(s.alerts().await.is_empty(), "3 in the window: no alert");
    // An event without a version id reads the current version and names it by the
    // version read: v2, already counted.
    h.handle(s.s3_event(&["k.json.gz"])).await.expect("handled");
    assert_eq!(s.count(&mallory(), bucket_of(T0 - 3600)).await, 3);
    // A version that was deleted is acknowledged as missing.
    s.s3.delete_object()
        .bucket(&s.bucket)
        .key("k.json.gz")
        .version_id(&v1)
        .send()
        .await
        .expect("delete v1");
    let out = h
        .handle(s.versioned_event("k.json.gz", &v1))
        .await
        .expect("acknowledged");
    assert_eq!(answer(out), json!({"objects": 1}));
    assert_eq!(s.count(&mallory(), bucket_of(T0 - 3600)).await, 3);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_overwritten_key_in_an_unversioned_bucket_counts_each_content_once() {
    let s = Stack::new("overwrite").await;
    let h = s.handler().await;
    s.put(
        "k.json",
        denials(MALLORY, &[T0 - 3600, T0 - 3599]).into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["k.json"]))
        .await
        .expect("first content");
    s.put("k.json", denials(MALLORY, &[T0, T0 + 1]).into_bytes())
        .await;
    for _ in 0..2 {
        h.handle(s.s3_event(&["k.json"]))
            .await
            .expect("second content");
    }
    assert_eq!(s.count(&mallory(), bucket_of(T0 - 3600)).await, 2);
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 2);
    assert!(s.alerts().await.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn cloudwatch_logs_payloads_count_once_and_alert_naming_the_stream() {
    let s = Stack::new("cwlogs").await;
    let h = s.handler().await;
    let mut messages = bedrock_messages(&[T0, T0 + 1, T0 + 2, T0 + 3]);
    messages.push(("99".into(), "not JSON at all".into()));
    let event = logs_event(
        "/aws/bedrock/modelinvocations",
        "aws/bedrock/modelinvocations",
        &messages,
    );
    let out = h.handle(event.clone()).await.expect("handled");
    assert_eq!(answer(out), json!({"log_events": 5}));
    let report = h
        .process_log_events(
            &match bedrock_denied_models::event::parse_invocation(&event) {
                bedrock_denied_models::event::Invocation::LogEvents(p) => p,
                other => panic!("{other:?}"),
            },
        )
        .await
        .expect("redelivered");
    assert_eq!(report.counts.records, 5);
    assert_eq!(
        report.counts.skipped_invalid_json, 1,
        "the message that is not JSON"
    );
    assert_eq!(
        report.counts.counters_already_counted, 1,
        "redelivery adds nothing"
    );
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0]["Alert"]["evidence"]["objects"],
        json!(["arn:aws:logs:us-east-1:111122223333:log-group:/aws/bedrock/modelinvocations:log-stream:aws/bedrock/modelinvocations"])
    );
    // Another payload (other event ids) from the same stream is another unit.
    let more = logs_event(
        "/aws/bedrock/modelinvocations",
        "aws/bedrock/modelinvocations",
        &bedrock_messages(&[T0 + 4])[..1]
            .iter()
            .map(|(_, m)| ("100".to_string(), m.clone()))
            .collect::<Vec<_>>(),
    );
    h.handle(more).await.expect("handled");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 5);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_key_whose_counter_keeps_failing_never_stops_the_others() {
    let s = Stack::new("onekeyfails").await;
    let broken = "arn:aws:sts::111122223333:assumed-role/Batch/misconfigured";
    let key = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/mixed.json";
    // The failing key sorts first, so without the fix it stops the others.
    let body = [broken, MALLORY, ALICE]
        .iter()
        .map(|u| denials(u, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .collect::<String>();
    s.put(key, body.into_bytes()).await;
    let h = s.handler_over(
        OneKeyFails::new(dynamo_store(&s.sdk, &s.table), broken),
        "fails",
    );
    for attempt in 0..3 {
        let err = h
            .handle(s.s3_event(&[key]))
            .await
            .expect_err("the object fails, so it is retried");
        let text = err.to_string();
        assert!(text.contains("1 of 3 keys failed"), "{text}");
        // Mallory and Alice are counted and alerted on the first attempt, once.
        let alerts = s.alerts().await;
        let mut users: Vec<String> = alerts
            .iter()
            .map(|a| {
                a["Alert"]["user.id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        users.sort();
        if attempt == 0 {
            assert_eq!(users, vec![ALICE.to_string(), MALLORY.to_string()]);
        } else {
            assert!(users.is_empty(), "retry {attempt}: {users:?}");
        }
        assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
        assert_eq!(
            s.count(&DenialKey::new(ALICE, MODEL, ACCOUNT), bucket_of(T0))
                .await,
            4
        );
    }
    // Once the failing key's counter is accepted, the retry completes exactly it.
    h.detector()
        .store()
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.handle(s.s3_event(&[key]))
        .await
        .expect("the retry completes");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["Alert"]["user.id"], broken);
    assert_eq!(
        s.count(&DenialKey::new(broken, MODEL, ACCOUNT), bucket_of(T0))
            .await,
        4
    );
    assert_eq!(
        s.count(&mallory(), bucket_of(T0)).await,
        4,
        "nothing counted twice"
    );
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_late_alert_for_an_older_window_never_reopens_the_suppression_of_a_newer_one() {
    let s = Stack::new("latealert").await;
    let h = s.handler().await;
    let later = T0 + 5 * 3600;
    // The newer burst alerts first.
    s.put(
        "newer.json",
        denials(MALLORY, &[later, later + 1, later + 2, later + 3]).into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["newer.json"])).await.expect("newer");
    assert_eq!(s.alerts().await.len(), 1);
    // A late log of a burst five hours before: outside the suppression period, so it
    // alerts too.
    s.put(
        "older.json",
        denials(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]).into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["older.json"])).await.expect("older");
    let late = s.alerts().await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["Alert"]["window"]["end"], "2026-03-14T09:10:00Z");
    // The newer burst goes on twenty minutes later: still within its suppression
    // period, whatever the late alert was.
    let more = later + 1200;
    s.put(
        "more.json",
        denials(MALLORY, &[more, more + 1, more + 2, more + 3]).into_bytes(),
    )
    .await;
    h.handle(s.s3_event(&["more.json"])).await.expect("more");
    assert!(s.alerts().await.is_empty(), "suppressed by the newer alert");
}
