use super::*;
use crate::alert::MemorySink;
use crate::source::{MemorySource, OpenedObject};
use crate::store::memory::MemoryStore;

const T0: i64 = 1_773_478_800;

fn denials(n: usize) -> String {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "timestamp": crate::alert::rfc3339(T0 + i as i64), "accountId": "1",
                "identity": {"arn": "arn:aws:iam::1:user/mallory"}, "requestId": format!("r{i}"),
                "modelId": "m", "errorCode": "AccessDeniedException"
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn s3_event(keys: &[&str]) -> Value {
    json!({"Records": keys.iter().map(|k| json!({
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "logs"}, "object": {"key": k, "size": 100, "eTag": "e"}}
    })).collect::<Vec<_>>()})
}

fn handler(source: MemorySource) -> Handler<MemoryStore, MemorySink, MemorySource> {
    let d =
        Detector::new(Config::default(), MemoryStore::new(), MemorySink::new()).with_clock(|| T0);
    Handler::new(d, source, "test")
}

#[tokio::test]
async fn s3_event_with_encoded_key_alerts() {
    let src = MemorySource::new();
    src.put("logs", "AWSLogs/1/a b+c.json", denials(4));
    let h = handler(src);
    h.handle(s3_event(&["AWSLogs/1/a+b%2Bc.json"]))
        .await
        .expect("ok");
    assert_eq!(h.detector().sink().alerts().len(), 1);
}

#[tokio::test]
async fn missing_and_housekeeping_objects_are_acknowledged() {
    let h = handler(MemorySource::new());
    let out = h
        .handle(s3_event(&[
            "gone.json",
            "x/amazon-bedrock-logs-permission-check",
            "a/data/big.json.gz",
        ]))
        .await
        .expect("bad objects do not fail the invocation");
    assert_eq!(out["objects"], 3);
}

#[test]
fn settings_require_table_and_topic() {
    let e = LambdaSettings::from_vars(|_| None).expect_err("missing");
    assert_eq!(e.name, "COUNTER_TABLE");
    let e = LambdaSettings::from_vars(|k| (k == "COUNTER_TABLE").then(|| "t".to_string()))
        .expect_err("missing");
    assert_eq!(e.name, "ALERT_TOPIC_ARN");
    let e = LambdaSettings::from_vars(|k| match k {
        "COUNTER_TABLE" | "ALERT_TOPIC_ARN" => Some("x".into()),
        "WINDOW_BUCKETS" => Some("zero".into()),
        _ => None,
    })
    .expect_err("bad");
    assert_eq!(e.name, "WINDOW_BUCKETS");
}

/// Fails to open keys starting with "fail".
struct PartlyFailing(MemorySource);

impl ObjectSource for PartlyFailing {
    async fn open(&self, o: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        if o.key.starts_with("fail") {
            return Err(SourceError {
                bucket: o.bucket.clone(),
                key: o.key.clone(),
                message: "AccessDenied".into(),
            });
        }
        self.0.open(o).await
    }
}

#[tokio::test]
async fn dependency_failures_fail_the_invocation_or_the_sqs_message() {
    let src = MemorySource::new();
    src.put("logs", "ok.json", denials(2));
    let d = Detector::new(Config::default(), MemoryStore::new(), MemorySink::new());
    let h = Handler::new(d, PartlyFailing(src), "test");
    let err = h
        .handle(s3_event(&["ok.json", "fail.json"]))
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("1 of 2 objects failed"), "{err}");
    assert!(err.to_string().contains("s3://logs/fail.json"), "{err}");

    let sqs = json!({"Records": [
        {"messageId": "m-ok", "eventSource": "aws:sqs", "body": s3_event(&["ok.json"]).to_string()},
        {"messageId": "m-fail", "eventSource": "aws:sqs", "body": s3_event(&["fail.json"]).to_string()},
        {"messageId": "m-junk", "eventSource": "aws:sqs", "body": "junk"},
    ]});
    let out = h
        .handle(sqs)
        .await
        .expect("SQS batches answer with failures");
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-fail"}]})
    );
}
