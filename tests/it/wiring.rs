//! An existing bucket wired through EventBridge, against the emulator: the
//! `enable-eventbridge` command keeps every notification the bucket had, the
//! template's rule pattern matches S3's Object Created events for log objects only,
//! and an object written to the bucket reaches the detector that way and is counted.

use crate::support::*;
use crate::template::{resolve, template};
use aws_sdk_s3::types::{
    Event, LambdaFunctionConfiguration, NotificationConfiguration, QueueConfiguration,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;

fn enable_eventbridge(bucket: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(detector_bin())
        .args(["enable-eventbridge", "--bucket", bucket])
        .args(extra)
        .output()
        .expect("run enable-eventbridge");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The template's rule pattern for `bucket` and `prefix`.
fn rule_pattern(bucket: &str, prefix: &str) -> Value {
    let t = template();
    let params = BTreeMap::from([("ExistingLogBucketName", bucket), ("LogKeyPrefix", prefix)]);
    resolve(
        &t["Resources"]["ExistingBucketRule"]["Properties"]["EventPattern"],
        &params,
    )
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn enabling_eventbridge_keeps_the_buckets_other_notifications_and_is_idempotent() {
    let s = Stack::new("wiring").await;
    // The bucket already notifies a queue and a function.
    let queue = s.create_queue(&unique("existing-consumer")).await;
    let queue_arn = s.queue_arn(&queue).await;
    let lambda_arn = "arn:aws:lambda:us-east-1:123456789012:function:existing-consumer";
    let existing = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("existing-queue")
                .queue_arn(&queue_arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .build()
                .expect("queue configuration"),
        )
        .lambda_function_configurations(
            LambdaFunctionConfiguration::builder()
                .id("existing-function")
                .lambda_function_arn(lambda_arn)
                .events(Event::from("s3:ObjectRemoved:*"))
                .build()
                .expect("lambda configuration"),
        )
        .build();
    s.s3.put_bucket_notification_configuration()
        .bucket(&s.bucket)
        .notification_configuration(existing)
        .send()
        .await
        .expect("existing notifications");
    s.drain(&queue).await; // S3's test event

    let (ok, out) = enable_eventbridge(&s.bucket, &["--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("adds EventBridge delivery") && out.contains("dry run"),
        "{out}"
    );
    let read = || async {
        s.s3.get_bucket_notification_configuration()
            .bucket(&s.bucket)
            .send()
            .await
            .expect("read configuration")
    };
    assert!(
        read().await.event_bridge_configuration().is_none(),
        "a dry run writes nothing"
    );

    let (ok, out) = enable_eventbridge(&s.bucket, &[]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("keeps SQS     {queue_arn}")), "{out}");
    assert!(
        out.contains(&format!("keeps Lambda  {lambda_arn}")),
        "{out}"
    );
    let after = read().await;
    assert!(after.event_bridge_configuration().is_some());
    assert_eq!(after.queue_configurations().len(), 1);
    assert_eq!(after.queue_configurations()[0].queue_arn(), queue_arn);
    assert_eq!(after.lambda_function_configurations().len(), 1);
    assert_eq!(
        after.lambda_function_configurations()[0].lambda_function_arn(),
        lambda_arn
    );

    let (ok, out) = enable_eventbridge(&s.bucket, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("already on: nothing to change"), "{out}");
    let again = read().await;
    assert_eq!(
        (
            again.queue_configurations(),
            again.lambda_function_configurations(),
            again.topic_configurations(),
            again.event_bridge_configuration()
        ),
        (
            after.queue_configurations(),
            after.lambda_function_configurations(),
            after.topic_configurations(),
            after.event_bridge_configuration()
        ),
        "a second run changes nothing"
    );

    // The existing consumer still gets its notifications.
    s.drain(&queue).await;
    s.put("AWSLogs/x.json.gz", denials_gz(MALLORY, &[T0])).await;
    let got = s.drain(&queue).await;
    assert!(
        got.iter().any(|m| m["Records"][0]["eventName"]
            .as_str()
            .is_some_and(|n| n.starts_with("ObjectCreated"))),
        "{got:?}"
    );
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_rule_pattern_matches_the_sample_object_created_event_and_log_objects_only() {
    let s = Stack::new("rulepattern").await;
    let bus = unique("bus");
    events_call(&s.sdk, "AWSEvents.CreateEventBus", json!({"Name": bus})).await;
    let queue = rule_to_queue(&s, &bus, &rule_pattern(&s.bucket, "AWSLogs/")).await;
    let sample: Value =
        serde_json::from_str(include_str!("../../events/eventbridge-object-created.json"))
            .expect("sample event");
    let mut events = Vec::new();
    for (key, bucket) in [
        (
            sample["detail"]["object"]["key"]
                .as_str()
                .expect("key")
                .to_string(),
            s.bucket.clone(),
        ),
        (
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/x.json".into(),
            s.bucket.clone(),
        ),
        ("AWSLogs/111122223333/notes.txt".into(), s.bucket.clone()),
        ("other/prefix/x.json.gz".into(), s.bucket.clone()),
        ("AWSLogs/a.json.gz".into(), "another-bucket".into()),
    ] {
        let mut e = sample.clone();
        e["detail"]["bucket"]["name"] = json!(bucket);
        e["detail"]["object"]["key"] = json!(key);
        events.push(
            json!({"Source": e["source"], "DetailType": e["detail-type"],
            "Detail": e["detail"].to_string(), "EventBusName": bus}),
        );
    }
    events_call(&s.sdk, "AWSEvents.PutEvents", json!({"Entries": events})).await;
    let got: Vec<String> = s
        .drain(&queue)
        .await
        .iter()
        .filter_map(|e| e["detail"]["object"]["key"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        got.len(),
        2,
        "the CloudTrail sample and the Bedrock log match; the text file, the other prefix and the other bucket do not: {got:?}"
    );
    assert!(got
        .iter()
        .all(|k| k.ends_with(".json.gz") || k.ends_with(".json")));
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_object_written_to_a_wired_bucket_reaches_the_detector_through_eventbridge() {
    let s = Stack::new("wired").await;
    let (ok, out) = enable_eventbridge(&s.bucket, &[]);
    assert!(ok, "{out}");
    // The template's rule, on the bus S3 sends to, delivering where the function would
    // read (a queue, as with UseQueue).
    let queue = rule_to_queue(&s, "default", &rule_pattern(&s.bucket, "AWSLogs/")).await;
    let key = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/a.json.gz";
    s.put(key, denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .await;
    s.put("AWSLogs/readme.txt", b"not a log".to_vec()).await;
    let events: Vec<Value> = s
        .drain(&queue)
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "Object Created")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    // The queue delivers the EventBridge event to the function as an SQS message.
    let batch = json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs",
        "body": events[0].to_string()}]});
    let out = s.handler().await.handle(batch).await.expect("handled");
    assert_eq!(answer(out), json!({"batchItemFailures": []}));
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert_eq!(s.alerts().await.len(), 1);
}

/// Creates a CloudFormation stack (on the emulator) holding one bucket, as a team's
/// own stack would; returns the bucket's name.
async fn bucket_of_a_stack(s: &Stack, stack: &str) -> String {
    let bucket = unique("stack-bucket");
    let template = json!({"Resources": {"Logs": {"Type": "AWS::S3::Bucket",
        "Properties": {"BucketName": bucket}}}});
    let form = format!(
        "Action=CreateStack&Version=2010-05-15&StackName={stack}&TemplateBody={}",
        url_encode(&template.to_string())
    );
    bedrock_denied_models::aws::json::JsonApi::new(&s.sdk, "cloudformation", "us-east-1")
        .call_raw(
            "CreateStack",
            "/",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .await
        .expect("create stack");
    bucket
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_bucket_a_stack_manages_is_refused_without_force() {
    let s = Stack::new("stackbucket").await;
    let stack = unique("team-logs");
    let bucket = bucket_of_a_stack(&s, &stack).await;
    let status = |extra: &[&str]| {
        let out = Command::new(detector_bin())
            .args(["enable-eventbridge", "--bucket", &bucket])
            .args(extra)
            .output()
            .expect("run enable-eventbridge");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let eventbridge_on = || async {
        s.s3.get_bucket_notification_configuration()
            .bucket(&bucket)
            .send()
            .await
            .expect("read")
            .event_bridge_configuration()
            .is_some()
    };
    let (code, out) = status(&["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("managed by CloudFormation stack {stack:?}")),
        "{out}"
    );
    let (code, out) = status(&[]);
    assert_eq!(code, Some(3), "refused: {out}");
    assert!(
        out.contains(&stack) && out.contains("EventBridgeEnabled: true"),
        "{out}"
    );
    assert!(out.contains("--force"), "{out}");
    assert!(!eventbridge_on().await, "nothing written");
    let (code, out) = status(&["--force"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(eventbridge_on().await);
}

/// S3, with another writer that replaces the configuration right after each write.
struct AnotherWriter<'a>(&'a aws_sdk_s3::Client);

impl bedrock_denied_models::cli::wire::BucketConfig for AnotherWriter<'_> {
    async fn managing_stack(
        &self,
        bucket: &str,
    ) -> Result<Option<String>, bedrock_denied_models::cli::wire::WireError> {
        self.0.managing_stack(bucket).await
    }

    async fn read(
        &self,
        bucket: &str,
    ) -> Result<
        bedrock_denied_models::cli::wire::Notifications,
        bedrock_denied_models::cli::wire::WireError,
    > {
        self.0.read(bucket).await
    }

    async fn write(
        &self,
        bucket: &str,
        config: &bedrock_denied_models::cli::wire::Notifications,
    ) -> Result<(), bedrock_denied_models::cli::wire::WireError> {
        self.0.write(bucket, config).await?;
        // Another tool writes its own configuration, as it knew it before.
        self.0
            .write(
                bucket,
                &bedrock_denied_models::cli::wire::Notifications::default(),
            )
            .await
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_configuration_changed_by_another_writer_meanwhile_is_reported() {
    use bedrock_denied_models::cli::wire::{enable, WireError};
    let s = Stack::new("concurrent").await;
    let err = enable(&AnotherWriter(&s.s3), &s.bucket, false, false)
        .await
        .expect_err("the read-back differs from what was written");
    assert!(matches!(err, WireError::ConcurrentChange { .. }), "{err}");
    assert!(
        err.to_string().contains("EventBridge delivery OFF"),
        "{err}"
    );
    // Without another writer the same run succeeds.
    enable(&s.s3, &s.bucket, false, false)
        .await
        .expect("enabled");
}
