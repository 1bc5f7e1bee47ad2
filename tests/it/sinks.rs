//! Alerts beyond SNS, against the emulator: EventBridge (a rule with an SQS target
//! receives the alert as `detail`), Security Hub (the finding's fields, one finding per
//! key and window however often it is imported), failures of each sink, and
//! exceptions through the deployed handler.

use crate::support::*;
use bedrock_denied_models::aws::eventbridge::{DETAIL_TYPE, SOURCE};
use bedrock_denied_models::aws::json::JsonApi;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::exceptions::Exceptions;
use bedrock_denied_models::lambda::{aws_handler, LambdaSettings};
use serde_json::{json, Value};

/// moto's default account: the one the function "runs in" against the emulator.
const EMULATOR_ACCOUNT: &str = "123456789012";

/// A custom bus with a rule matching the detector's alerts, delivering to a new queue.
async fn bus_with_rule(s: &Stack, bus: &str) -> String {
    events_call(&s.sdk, "AWSEvents.CreateEventBus", json!({"Name": bus})).await;
    let pattern = json!({"source": [SOURCE], "detail-type": [DETAIL_TYPE]});
    rule_to_queue(s, bus, &pattern).await
}

fn settings(s: &Stack, event_bus: Option<&str>, security_hub: bool) -> LambdaSettings {
    LambdaSettings {
        event_bus: event_bus.map(str::to_string),
        security_hub_account: security_hub.then(|| EMULATOR_ACCOUNT.to_string()),
        ..s.settings(Config::default())
    }
}

/// The findings about `user`, read back with GetFindings (every page).
async fn findings_of(s: &Stack, user: &str) -> Vec<Value> {
    let hub = JsonApi::new(&s.sdk, "securityhub", "us-east-1");
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 100});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let answer = hub
            .call(
                "GetFindings",
                "/findings",
                &[("content-type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
            .expect("GetFindings");
        out.extend(
            answer["Findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["ProductFields"]["user.id"] == user)
                .cloned(),
        );
        match answer["NextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return out,
        }
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_alert_reaches_an_eventbridge_rule_target_with_the_alert_as_detail() {
    let s = Stack::new("eventbridge-sink").await;
    let bus = unique("alerts-bus");
    let queue = bus_with_rule(&s, &bus).await;
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    aws_handler(settings(&s, Some(&bus), false))
        .await
        .handle(s.s3_event(&["a.json.gz"]))
        .await
        .expect("handled");
    let events = s.drain(&queue).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["source"], SOURCE);
    assert_eq!(e["detail-type"], DETAIL_TYPE);
    assert_eq!(e["detail"]["user.id"], MALLORY);
    assert_eq!(e["detail"]["total_denials"], 4);
    assert_eq!(
        e["detail"]["rule"]["id"],
        "17261da3-a6d0-463c-aac8-ea1718afcd20"
    );
    assert_eq!(s.alerts().await.len(), 1, "and SNS got it too");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_readme_rule_pattern_routes_by_account_and_count() {
    let s = Stack::new("eventbridge-route").await;
    let bus = unique("route-bus");
    events_call(&s.sdk, "AWSEvents.CreateEventBus", json!({"Name": bus})).await;
    // The pattern exactly as the README shows it, read from the README.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let quoted = readme
        .split("--event-pattern '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the README's put-rule command has an --event-pattern");
    let pattern: Value = serde_json::from_str(quoted).expect("the README's pattern is JSON");
    assert_eq!(pattern["source"], json!([SOURCE]), "{pattern}");
    assert_eq!(pattern["detail-type"], json!([DETAIL_TYPE]), "{pattern}");
    let queue = rule_to_queue(&s, &bus, &pattern).await;
    let h = aws_handler(settings(&s, Some(&bus), false)).await;
    s.put("few.json.gz", denials_gz(MALLORY, &[T0; 5])).await;
    h.handle(s.s3_event(&["few.json.gz"]))
        .await
        .expect("handled");
    let many_user = "arn:aws:iam::111122223333:user/many";
    s.put("many.json.gz", denials_gz(many_user, &[T0; 11]))
        .await;
    h.handle(s.s3_event(&["many.json.gz"]))
        .await
        .expect("handled");
    let routed = s.drain(&queue).await;
    assert_eq!(routed.len(), 1, "only the burst above 10: {routed:?}");
    assert_eq!(routed[0]["detail"]["user.id"], many_user);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_missing_bus_fails_the_invocation_and_the_retry_delivers_only_what_is_missing() {
    let s = Stack::new("eventbridge-missing").await;
    let bus = unique("late-bus");
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let event = s.s3_event(&["a.json.gz"]);
    let err = aws_handler(settings(&s, Some(&bus), false))
        .await
        .handle(event.clone())
        .await
        .expect_err("the bus does not exist");
    assert!(err.to_string().contains("EventBridge PutEvents"), "{err}");
    assert_eq!(
        s.alerts().await.len(),
        1,
        "SNS delivered before the failure"
    );
    let queue = bus_with_rule(&s, &bus).await;
    aws_handler(settings(&s, Some(&bus), false))
        .await
        .handle(event)
        .await
        .expect("retry");
    assert_eq!(s.drain(&queue).await.len(), 1, "EventBridge on the retry");
    assert!(s.alerts().await.is_empty(), "SNS not sent again");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_alert_becomes_one_security_hub_finding_however_often_imported() {
    let s = Stack::new("securityhub-sink").await;
    let user = format!(
        "arn:aws:sts::444455556666:assumed-role/Probe/{}",
        unique("s")
    );
    let key = bedrock_denied_models::key::DenialKey::new(user.as_str(), MODEL, "444455556666");
    let body: String = (0..4)
        .map(|i| {
            record(
                &user,
                MODEL,
                "444455556666",
                T0 + i,
                Some(DENIED),
                &format!("r{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect();
    s.put("a.json", body.into_bytes()).await;
    aws_handler(settings(&s, None, true))
        .await
        .handle(s.s3_event(&["a.json"]))
        .await
        .expect("handled");
    let found = findings_of(&s, &user).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["SchemaVersion"], "2018-10-08");
    assert_eq!(f["AwsAccountId"], EMULATOR_ACCOUNT);
    assert_eq!(
        f["ProductArn"],
        format!(
            "arn:aws:securityhub:us-east-1:{EMULATOR_ACCOUNT}:product/{EMULATOR_ACCOUNT}/default"
        )
    );
    assert_eq!(f["GeneratorId"], "17261da3-a6d0-463c-aac8-ea1718afcd20");
    assert_eq!(f["Severity"]["Label"], "HIGH");
    assert_eq!(f["Resources"][0]["Type"], "AwsIamRole");
    assert_eq!(
        f["Resources"][0]["Id"],
        "arn:aws:iam::444455556666:role/Probe"
    );
    assert_eq!(f["ProductFields"]["cloud.account.id"], "444455556666");
    assert_eq!(f["ProductFields"]["gen_ai.request.model.id"], MODEL);
    assert_eq!(f["ProductFields"]["total_denials"], "4");
    assert_eq!(f["FirstObservedAt"], "2026-03-14T08:10:00Z");
    assert_eq!(f["LastObservedAt"], "2026-03-14T09:10:00Z");
    assert!(f["Types"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("TTPs/Discovery"))));
    assert!(f["Remediation"]["Recommendation"]["Text"].is_string());
    assert!(f["Id"]
        .as_str()
        .is_some_and(|id| id.contains(&key.digest())));

    // Importing the same alert again (a retry) updates the same finding.
    let alert: bedrock_denied_models::alert::Alert =
        serde_json::from_str(s.alerts().await[0]["Message"].as_str().expect("message"))
            .expect("alert");
    let hub = bedrock_denied_models::aws::securityhub_sink(&s.sdk, EMULATOR_ACCOUNT, "us-east-1");
    use bedrock_denied_models::alert::AlertSink;
    hub.publish(&alert).await.expect("second import");
    assert_eq!(findings_of(&s, &user).await.len(), 1, "still one finding");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_unreachable_security_hub_fails_the_invocation_and_the_retry_imports() {
    let s = Stack::new("securityhub-down").await;
    let user = format!("arn:aws:iam::111122223333:user/{}", unique("down"));
    s.put(
        "a.json.gz",
        denials_gz(&user, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let event = s.s3_event(&["a.json.gz"]);
    // Security Hub behind a closed port, SNS on the emulator.
    let down = unreachable_sdk().await;
    let set = settings(&s, None, true);
    let sinks: Vec<bedrock_denied_models::alert::Sink> = vec![
        std::sync::Arc::new(bedrock_denied_models::aws::sns_sink(&s.sdk, &s.topic_arn)),
        std::sync::Arc::new(bedrock_denied_models::aws::securityhub_sink(
            &down,
            EMULATOR_ACCOUNT,
            "us-east-1",
        )),
    ];
    let detector = bedrock_denied_models::detector::Detector::with_sinks(
        set.config.clone(),
        bedrock_denied_models::aws::dynamo_store(&s.sdk, &s.table),
        sinks,
    );
    let h = bedrock_denied_models::lambda::Handler::new(
        detector,
        bedrock_denied_models::aws::s3::S3Source::new(bedrock_denied_models::aws::s3_client(
            &s.sdk,
        )),
        "down",
    );
    let err = h
        .handle(event.clone())
        .await
        .expect_err("Security Hub is down");
    assert!(err.to_string().contains("Security Hub"), "{err}");
    assert_eq!(s.alerts().await.len(), 1);
    assert!(findings_of(&s, &user).await.is_empty());
    aws_handler(set).await.handle(event).await.expect("retry");
    assert_eq!(
        findings_of(&s, &user).await.len(),
        1,
        "imported on the retry"
    );
    assert!(s.alerts().await.is_empty(), "SNS not sent again");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn exceptions_quiet_a_key_until_they_end_and_set_per_key_thresholds() {
    let s = Stack::new("exceptions").await;
    let bob = "arn:aws:iam::111122223333:user/bob";
    let rules = format!(
        r#"[{{"user.id": "{MALLORY}", "reason": "red team exercise"}},
            {{"user.id": "arn:aws:iam::111122223333:user/*", "reason": "expired", "until": "2020-01-01T00:00:00Z"}},
            {{"user.id": "{bob}", "threshold": 5, "reason": "QA"}}]"#
    );
    let config = Config {
        exceptions: Exceptions::parse(&rules).expect("rules"),
        ..Config::default()
    };
    let h = s.handler_with(config).await;
    s.put(
        "m.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]),
    )
    .await;
    h.handle(s.s3_event(&["m.json.gz"])).await.expect("handled");
    assert!(s.alerts().await.is_empty(), "excepted");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 5, "but counted");
    // bob: the expired rule no longer applies; his own threshold of 5 does.
    s.put(
        "b1.json.gz",
        denials_gz(bob, &[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]),
    )
    .await;
    h.handle(s.s3_event(&["b1.json.gz"]))
        .await
        .expect("handled");
    assert!(s.alerts().await.is_empty(), "5 is not above bob's 5");
    s.put("b2.json.gz", denials_gz(bob, &[T0 + 5])).await;
    h.handle(s.s3_event(&["b2.json.gz"]))
        .await
        .expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["Alert"]["threshold"], 5);
    assert_eq!(alerts[0]["Alert"]["total_denials"], 6);
}
