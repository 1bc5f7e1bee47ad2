use super::*;
use crate::alert::MemorySink;
use crate::store::memory::{MemoryStore, StoreOps};
use std::sync::atomic::{AtomicUsize, Ordering};

const T0: i64 = 1_773_478_800; // 2026-03-14T09:00:00Z
const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/Analyst/alice";
const MODEL: &str = "anthropic.claude-3-opus-20240229-v1:0";

fn line(user: &str, model: &str, account: &str, t: i64, code: &str, req: &str) -> String {
    serde_json::json!({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": crate::alert::rfc3339(t), "accountId": account,
        "identity": {"arn": user}, "region": "us-east-1", "requestId": req,
        "operation": "InvokeModel", "modelId": model, "errorCode": code,
    })
    .to_string()
        + "\n"
}

fn denials(user: &str, times: &[i64]) -> String {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            line(
                user,
                MODEL,
                "111122223333",
                *t,
                "AccessDeniedException",
                &format!("r{i}"),
            )
        })
        .collect()
}

fn detector() -> Detector<MemoryStore, MemorySink> {
    Detector::new(Config::default(), MemoryStore::new(), MemorySink::new()).with_clock(|| T0)
}

async fn run<S: CounterStore, A: AlertSink>(
    d: &Detector<S, A>,
    name: &str,
    body: &str,
) -> Result<ObjectReport, DetectError> {
    d.process(&ObjectId::s3("logs", name, "e1"), body.as_bytes())
        .await
}

#[tokio::test]
async fn four_denials_alert_once() {
    let d = detector();
    let r = run(&d, "a", &denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]))
        .await
        .expect("ok");
    assert_eq!(r.record.alerts_published, 1);
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].total_denials, 4);
    assert_eq!(alerts[0].user_id, ALICE);
    assert_eq!(alerts[0].evidence.objects, vec!["s3://logs/a"]);
    assert_eq!(alerts[0].evidence.request_ids, vec!["r0", "r1", "r2", "r3"]);
}

#[tokio::test]
async fn three_denials_stay_quiet() {
    let d = detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 60, T0 + 120]))
        .await
        .expect("ok");
    assert!(d.sink().alerts().is_empty());
}

#[tokio::test]
async fn counts_add_across_objects() {
    let d = detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 60]))
        .await
        .expect("ok");
    assert!(d.sink().alerts().is_empty());
    run(&d, "b", &denials(ALICE, &[T0 + 1800, T0 + 3000]))
        .await
        .expect("ok");
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].total_denials, 4);
    assert_eq!(alerts[0].evidence.objects, vec!["s3://logs/b"]);
}

#[tokio::test]
async fn fifty_five_minutes_meet_seventy_do_not() {
    let d = detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 1]))
        .await
        .expect("ok");
    run(&d, "b", &denials(ALICE, &[T0 + 55 * 60, T0 + 55 * 60 + 1]))
        .await
        .expect("ok");
    assert_eq!(d.sink().alerts().len(), 1);

    let d = detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 1]))
        .await
        .expect("ok");
    run(&d, "b", &denials(ALICE, &[T0 + 70 * 60, T0 + 70 * 60 + 1]))
        .await
        .expect("ok");
    assert!(d.sink().alerts().is_empty());
}

#[tokio::test]
async fn grouping_is_by_user_model_and_account() {
    let d = detector();
    let mut body = String::new();
    // Two denials each for 4 keys differing in one id, plus noise of other codes.
    for (u, m, a) in [
        (ALICE, MODEL, "111122223333"),
        ("arn:aws:iam::111122223333:user/bob", MODEL, "111122223333"),
        (ALICE, "amazon.titan-text-express-v1", "111122223333"),
        (ALICE, MODEL, "444455556666"),
    ] {
        for i in 0..2 {
            body += &line(u, m, a, T0 + i, "AccessDeniedException", "r");
        }
        body += &line(u, m, a, T0, "ThrottlingException", "r");
    }
    let r = run(&d, "a", &body).await.expect("ok");
    assert_eq!(r.record.keys, 4);
    assert!(d.sink().alerts().is_empty());
    // Two more for one key tip only that key over.
    run(&d, "b", &denials(ALICE, &[T0 + 5, T0 + 6]))
        .await
        .expect("ok");
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].model_id.as_str(), alerts[0].account_id.as_str()),
        (MODEL, "111122223333")
    );
}

#[tokio::test]
async fn redelivery_neither_double_counts_nor_realerts() {
    let d = detector();
    let body = denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]);
    run(&d, "a", &body).await.expect("ok");
    let before = d.store().snapshot();
    let r = run(&d, "a", &body).await.expect("ok");
    assert_eq!(d.store().snapshot(), before);
    assert_eq!(r.record.counters_already_counted, 1);
    assert_eq!(r.record.alerts_suppressed, 1);
    assert_eq!(d.sink().alerts().len(), 1);
    // A new version of the object (new ETag) is a new object.
    d.process(&ObjectId::s3("logs", "a", "e2"), body.as_bytes())
        .await
        .expect("ok");
    assert_eq!(
        d.store().count(
            &DenialKey::new(ALICE, MODEL, "111122223333"),
            d.spec().bucket_of(T0)
        ),
        8
    );
}

#[tokio::test]
async fn suppression_then_a_new_alert_after_the_period() {
    let d = detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .await
        .expect("ok");
    // 30 minutes later, still within the suppression period of the first window.
    let r = run(&d, "b", &denials(ALICE, &[T0 + 1800; 4]))
        .await
        .expect("ok");
    assert_eq!(r.record.alerts_suppressed, 1);
    assert_eq!(d.sink().alerts().len(), 1);
    // Two hours later: a new burst, a new alert.
    let r = run(&d, "c", &denials(ALICE, &[T0 + 7200; 4]))
        .await
        .expect("ok");
    assert_eq!(r.record.alerts_published, 1);
    assert_eq!(d.sink().alerts().len(), 2);
}

/// Fails the first `fail` publishes, then delivers to memory.
struct FlakySink {
    fail: AtomicUsize,
    inner: MemorySink,
}

impl AlertSink for FlakySink {
    async fn publish(&self, alert: &Alert) -> Result<(), SinkError> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SinkError {
                key: alert.key().to_string(),
                message: "topic unavailable".into(),
            });
        }
        self.inner.publish(alert).await
    }
}

#[tokio::test]
async fn failed_publish_fails_and_the_retry_publishes() {
    let sink = FlakySink {
        fail: AtomicUsize::new(1),
        inner: MemorySink::new(),
    };
    let d = Detector::new(Config::default(), MemoryStore::new(), sink).with_clock(|| T0);
    let body = denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]);
    let err = run(&d, "a", &body)
        .await
        .expect_err("publish failure fails the object");
    assert!(matches!(err, DetectError::Publish { .. }), "{err}");
    assert!(err.to_string().contains("s3://logs/a"), "{err}");
    // Another object cannot alert while the first one's claim is fresh...
    let r = run(&d, "b", &denials(ALICE, &[T0 + 200]))
        .await
        .expect("ok");
    assert_eq!(r.record.alerts_in_progress, 1);
    // ...and the retry of the first one publishes with counts already in.
    let r = run(&d, "a", &body).await.expect("retry ok");
    assert_eq!(r.record.counters_already_counted, 1);
    assert_eq!(r.record.alerts_published, 1);
    assert_eq!(d.sink().inner.alerts().len(), 1);
    assert_eq!(d.sink().inner.alerts()[0].total_denials, 5);
}

#[tokio::test]
async fn store_requests_per_object() {
    let d = detector();
    // No denials: no store request at all.
    run(
        &d,
        "quiet",
        &line(ALICE, MODEL, "1", T0, "ValidationException", "r"),
    )
    .await
    .expect("ok");
    assert_eq!(d.store().ops(), StoreOps::default());
    // 2 keys; 3 distinct (key, bucket) pairs; 10 denials.
    let mut body = denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 600]);
    body += &denials("bob", &[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5]);
    run(&d, "b", &body).await.expect("ok");
    let ops = d.store().ops();
    assert_eq!((ops.adds, ops.queries), (3, 2));
    assert_eq!((ops.claims, ops.marks), (2, 2));
}

#[tokio::test]
async fn truncated_gzip_counts_what_was_read_and_reports() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let d = detector();
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    let body = denials(ALICE, &vec![T0; 4000]);
    e.write_all(body.as_bytes()).expect("gzip");
    let gz = e.finish().expect("gzip");
    let r = d
        .process(
            &ObjectId::s3("logs", "cut.json.gz", "e"),
            &gz[..gz.len() / 2],
        )
        .await
        .expect("a corrupt object does not fail the invocation");
    assert!(
        r.read_error.as_deref().is_some_and(|e| e.contains("gzip")),
        "{r:?}"
    );
    assert!(r.read.denials > 3);
    assert_eq!(r.record.alerts_published, 1);
}

#[tokio::test]
async fn a_read_broken_off_by_the_source_counts_nothing_and_the_retry_counts_all() {
    let d = detector();
    let body = denials(ALICE, &vec![T0; 2000]);
    let object = ObjectId::s3("logs", "a", "e1");
    let broken = crate::logs::tests::FailingSource {
        data: body.as_bytes(),
        fail_at: body.len() / 2,
    };
    let err = d.process(&object, broken).await.expect_err("retryable");
    assert!(matches!(err, DetectError::Read { .. }), "{err}");
    assert_eq!(
        d.store().ops(),
        StoreOps::default(),
        "nothing counted from a partial read"
    );
    d.process(&object, body.as_bytes()).await.expect("retry");
    let key = DenialKey::new(ALICE, MODEL, "111122223333");
    assert_eq!(d.store().count(&key, d.spec().bucket_of(T0)), 2000);
}
