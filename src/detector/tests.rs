use super::*;
use crate::alert::MemorySink;
use crate::exceptions::Exceptions;
use crate::store::memory::{MemoryStore, StoreOps};
use crate::store::AlertClaims;
use crate::testing::{
    cloudtrail_record, denials, gzip, line, memory_detector, memory_detector_with, record,
    BarrierStore, FailingSource, Watched, ACCOUNT, ALICE, DENIED, MODEL, T0,
};
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

async fn run<S: DetectorStore>(
    d: &Detector<S>,
    name: &str,
    body: &str,
) -> Result<ObjectReport, DetectError> {
    d.process(&ObjectId::s3("logs", name, "e1"), body.as_bytes())
        .await
}

fn alice() -> DenialKey {
    DenialKey::new(ALICE, MODEL, ACCOUNT)
}

#[tokio::test]
async fn four_denials_alert_once() {
    let d = memory_detector();
    let r = run(&d, "a", &denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]))
        .await
        .expect("ok");
    assert_eq!(r.counts.alerts_published, 1);
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].total_denials, 4);
    assert_eq!(alerts[0].user_id, ALICE);
    assert_eq!(alerts[0].evidence.objects, vec!["s3://logs/a"]);
    assert_eq!(alerts[0].evidence.request_ids, vec!["r0", "r1", "r2", "r3"]);
    assert_eq!(alerts[0].evidence.regions, vec!["us-east-1"]);
    assert_eq!(alerts[0].evidence.operations, vec!["InvokeModel"]);
}

#[tokio::test]
async fn three_denials_stay_quiet() {
    let d = memory_detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 60, T0 + 120]))
        .await
        .expect("ok");
    assert!(d.sink().alerts().is_empty());
}

#[tokio::test]
async fn counts_add_across_objects() {
    let d = memory_detector();
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
    let d = memory_detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 1]))
        .await
        .expect("ok");
    run(&d, "b", &denials(ALICE, &[T0 + 55 * 60, T0 + 55 * 60 + 1]))
        .await
        .expect("ok");
    assert_eq!(d.sink().alerts().len(), 1);

    let d = memory_detector();
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
    let d = memory_detector();
    let mut body = String::new();
    let keys = [
        (ALICE, MODEL, ACCOUNT),
        ("arn:aws:iam::111122223333:user/bob", MODEL, ACCOUNT),
        (ALICE, "amazon.titan-text-express-v1", ACCOUNT),
        (ALICE, MODEL, "444455556666"),
    ];
    // Two denials each for 4 keys differing in one id, plus noise of other codes.
    for (u, m, a) in keys {
        for i in 0..2 {
            body += &line(u, m, a, T0 + i, Some(DENIED));
        }
        body += &line(u, m, a, T0, Some("ThrottlingException"));
    }
    let r = run(&d, "a", &body).await.expect("ok");
    assert_eq!(r.counts.keys, 4);
    for (u, m, a) in keys {
        assert_eq!(
            d.store()
                .count(&DenialKey::new(u, m, a), d.reader().spec().bucket_of(T0)),
            2
        );
    }
    assert!(d.sink().alerts().is_empty());
    // Two more for one key tip only that key over.
    run(&d, "b", &denials(ALICE, &[T0 + 5, T0 + 6]))
        .await
        .expect("ok");
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].model_id.as_str(), alerts[0].account_id.as_str()),
        (MODEL, ACCOUNT)
    );
}

#[tokio::test]
async fn redelivery_neither_double_counts_nor_realerts() {
    let d = memory_detector();
    let body = denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]);
    run(&d, "a", &body).await.expect("ok");
    let before = d.store().snapshot();
    let r = run(&d, "a", &body).await.expect("ok");
    assert_eq!(d.store().snapshot(), before);
    assert_eq!(r.counts.counters_already_counted, 1);
    assert_eq!(r.counts.alerts_suppressed, 1);
    assert_eq!(d.sink().alerts().len(), 1);
    // A new version of the object (new ETag) is a new object.
    d.process(&ObjectId::s3("logs", "a", "e2"), body.as_bytes())
        .await
        .expect("ok");
    assert_eq!(
        d.store().count(&alice(), d.reader().spec().bucket_of(T0)),
        8
    );
}

#[tokio::test]
async fn suppression_then_a_new_alert_after_the_period() {
    let d = memory_detector();
    run(&d, "a", &denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .await
        .expect("ok");
    // 30 minutes later, still within the suppression period of the first window.
    let r = run(&d, "b", &denials(ALICE, &[T0 + 1800; 4]))
        .await
        .expect("ok");
    assert_eq!(r.counts.alerts_suppressed, 1);
    assert_eq!(d.sink().alerts().len(), 1);
    // Two hours later: a new burst, a new alert.
    let r = run(&d, "c", &denials(ALICE, &[T0 + 7200; 4]))
        .await
        .expect("ok");
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(d.sink().alerts().len(), 2);
}

/// Fails the first `fail` publishes, then delivers to memory.
struct FlakySink {
    name: &'static str,
    fail: AtomicUsize,
    inner: MemorySink,
}

impl FlakySink {
    fn new(name: &'static str, fail: usize) -> Self {
        Self {
            name,
            fail: AtomicUsize::new(fail),
            inner: MemorySink::new(),
        }
    }
}

impl AlertSink for FlakySink {
    fn name(&self) -> &str {
        self.name
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::new(self.name, alert, "topic unavailable"));
            }
            self.inner.publish(alert).await
        })
    }

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::notice(self.name, notice, "topic unavailable"));
            }
            self.inner.notify(notice).await
        })
    }
}

#[tokio::test]
async fn failed_publish_fails_releases_the_claim_and_the_retry_publishes() {
    let sns = FlakySink::new("sns", 1);
    let delivered = sns.inner.clone();
    let d = Detector::new(Config::default(), MemoryStore::new(), sns).with_clock(|| T0);
    let body = denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]);
    let err = run(&d, "a", &body)
        .await
        .expect_err("publish failure fails the object");
    assert!(matches!(err, DetectError::Deliver { .. }), "{err}");
    assert!(err.to_string().contains("s3://logs/a"), "{err}");
    let state = d
        .store()
        .alert_state(&alice())
        .await
        .expect("read")
        .expect("alert state");
    assert!(
        state.pending.is_none(),
        "the failed attempt gave its claim back"
    );
    // The retry, with counts already in, claims at once and publishes.
    let r = run(&d, "a", &body).await.expect("retry ok");
    assert_eq!(r.counts.counters_already_counted, 1);
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(r.counts.alerts_in_progress, 0);
    assert_eq!(delivered.alerts().len(), 1);
    assert_eq!(delivered.alerts()[0].total_denials, 4);
}

#[tokio::test]
async fn a_failing_sink_is_retried_alone_the_others_keep_their_one_copy() {
    let (sns, hub) = (FlakySink::new("sns", 0), FlakySink::new("securityhub", 2));
    let delivered = [sns.inner.clone(), hub.inner.clone()];
    let sinks: Vec<Sink> = vec![Arc::new(sns), Arc::new(hub)];
    let d = Detector::with_sinks(Config::default(), MemoryStore::new(), sinks).with_clock(|| T0);
    let body = denials(ALICE, &[T0, T0 + 60, T0 + 120, T0 + 180]);
    for _ in 0..2 {
        let err = run(&d, "a", &body).await.expect_err("security hub down");
        assert!(err.to_string().contains("s3://logs/a"), "{err}");
    }
    let r = run(&d, "a", &body).await.expect("third attempt");
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(delivered[0].alerts().len(), 1, "SNS delivered once");
    assert_eq!(
        delivered[1].alerts().len(),
        1,
        "Security Hub delivered on the retry"
    );
    // Marked sent: a redelivery delivers nothing.
    run(&d, "a", &body).await.expect("redelivery");
    assert_eq!(delivered[0].alerts().len(), 1);
    assert_eq!(delivered[1].alerts().len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_object_count_once_and_alert_once() {
    // Four invocations of the same object meet at the counter and at the claim.
    let d = Watched::new(Config::default(), BarrierStore::new(MemoryStore::new(), 4));
    let body = denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 3]);
    let runs = (0..4).map(|_| run(&d, "a", &body));
    let reports: Vec<Counts> = join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("every delivery succeeds").counts)
        .collect();
    let sum = reports.iter().fold(Counts::default(), |mut t, r| {
        t.add(r);
        t
    });
    assert_eq!(sum.counters_added, 1, "{reports:?}");
    assert_eq!(sum.counters_already_counted, 3, "{reports:?}");
    assert_eq!(sum.alerts_published, 1, "{reports:?}");
    assert_eq!(sum.alerts_suppressed, 3, "{reports:?}");
    assert_eq!(
        sum.alerts_in_progress, 3,
        "the three losers waited: {reports:?}"
    );
    assert_eq!(
        d.store()
            .inner
            .count(&alice(), d.reader().spec().bucket_of(T0)),
        4
    );
    assert_eq!(d.sink().alerts().len(), 1);
}

#[tokio::test]
async fn a_claim_held_by_a_dead_attempt_fails_the_others_until_its_lease_ends() {
    // An attempt that dies between claiming and marking leaves a fresh claim behind.
    static NOW: AtomicI64 = AtomicI64::new(T0);
    let d = Watched::new(Config::default(), MemoryStore::new()).with(|d| {
        d.with_clock(|| NOW.load(Ordering::SeqCst))
            .with_claim_wait(Duration::from_millis(50))
    });
    let key = alice();
    let held = AlertClaim {
        object_token: "dead".into(),
        attempt: "dead-attempt".into(),
        window_end: T0 + 600,
        suppress_seconds: 3600,
        lease_seconds: CLAIM_LEASE_SECONDS,
        now: T0,
        expires_at: T0 + 86_400,
    };
    d.store().claim_alert(&key, &held).await.expect("claim");
    let body = denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 3]);
    let err = run(&d, "b", &body).await.expect_err("busy");
    assert!(matches!(err, DetectError::AlertBusy { .. }), "{err}");
    // Lambda retries a minute later: the lease has run out and the retry takes over.
    NOW.store(T0 + 60, Ordering::SeqCst);
    let r = run(&d, "b", &body).await.expect("retry");
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(d.sink().alerts().len(), 1);
}

#[tokio::test]
async fn excepted_keys_are_counted_but_quiet_until_the_rule_expires() {
    static NOW: AtomicI64 = AtomicI64::new(T0);
    let config = Config {
        exceptions: Exceptions::parse(&format!(
            r#"[{{"user.id": "{ALICE}", "reason": "pen test", "until": "2026-03-14T10:00:00Z"}}]"#
        ))
        .expect("rules"),
        ..Config::default()
    };
    let d = Watched::new(config, MemoryStore::new())
        .with(|d| d.with_clock(|| NOW.load(Ordering::SeqCst)));
    let r = run(&d, "a", &denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .await
        .expect("ok");
    assert_eq!(r.counts.alerts_excepted, 1);
    assert_eq!(r.counts.alerts_published, 0);
    assert_eq!(
        d.store().count(&alice(), d.reader().spec().bucket_of(T0)),
        4
    );
    // The rule has ended: the next object alerts on what was counted meanwhile.
    NOW.store(T0 + 3600, Ordering::SeqCst);
    let r = run(&d, "b", &denials(ALICE, &[T0 + 5])).await.expect("ok");
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(d.sink().alerts()[0].total_denials, 5);
}

#[tokio::test]
async fn a_per_key_threshold_alerts_above_its_own_value_only() {
    let config = Config {
        exceptions: Exceptions::parse(
            r#"[{"cloud.account.id": "111122223333", "gen_ai.request.model.id": "anthropic.*", "threshold": 6, "reason": "sandbox"}]"#,
        )
        .expect("rules"),
        ..Config::default()
    };
    let d = memory_detector_with(config);
    run(&d, "a", &denials(ALICE, &[T0; 6])).await.expect("ok");
    assert!(d.sink().alerts().is_empty(), "6 is not above 6");
    run(&d, "b", &denials(ALICE, &[T0 + 1])).await.expect("ok");
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].total_denials, alerts[0].threshold), (7, 6));
    // Another model keeps the global threshold.
    let body: String = (0..4)
        .map(|i| {
            line(
                ALICE,
                "meta.llama3-70b-instruct-v1:0",
                ACCOUNT,
                T0 + i,
                Some(DENIED),
            )
        })
        .collect();
    run(&d, "c", &body).await.expect("ok");
    assert_eq!(d.sink().alerts().len(), 2);
}

#[tokio::test]
async fn cloudtrail_evidence_carries_ip_agent_and_message() {
    let d = memory_detector();
    let doc = serde_json::json!({"Records": (0..4)
        .map(|i| cloudtrail_record(ALICE, MODEL, T0 + i, "InvokeModel", Some("AccessDenied"), &format!("ct-{i}")))
        .collect::<Vec<_>>()});
    d.process(
        &ObjectId::s3("trail", "t.json.gz", "e"),
        &gzip(doc.to_string().as_bytes())[..],
    )
    .await
    .expect("ok");
    let a = &d.sink().alerts()[0];
    assert_eq!(a.evidence.source_ips, vec!["203.0.113.7"]);
    assert_eq!(a.evidence.user_agents.len(), 1);
    assert_eq!(a.evidence.error_messages.len(), 1);
    assert_eq!(a.evidence.operations, vec!["InvokeModel"]);
    assert_eq!(a.evidence.request_ids, vec!["ct-0", "ct-1", "ct-2", "ct-3"]);
}

#[tokio::test]
async fn store_requests_per_object() {
    let d = memory_detector();
    // No denials: no store request at all.
    run(
        &d,
        "quiet",
        &line(ALICE, MODEL, "1", T0, Some("ThrottlingException")),
    )
    .await
    .expect("ok");
    assert_eq!(d.store().ops(), StoreOps::default());
    // A validation error is the validation rule's: one counter and one read, and none
    // when that rule is off.
    let only_seed =
        Config::from_vars(|k| (k == "RULES").then(|| crate::rule::SEED.id.into())).expect("config");
    let off = Watched::new(only_seed, MemoryStore::new());
    let validation = line(ALICE, MODEL, "1", T0, Some("ValidationException"));
    run(&off, "quiet", &validation).await.expect("ok");
    assert_eq!(off.store().ops(), StoreOps::default());
    let on = memory_detector();
    run(&on, "v", &validation).await.expect("ok");
    assert_eq!((on.store().ops().adds, on.store().ops().queries), (1, 1));
    // 2 keys; 3 distinct (key, bucket) pairs; 10 denials.
    let mut body = denials(ALICE, &[T0, T0 + 1, T0 + 2, T0 + 600]);
    body += &denials("bob", &[T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5]);
    run(&d, "b", &body).await.expect("ok");
    let ops = d.store().ops();
    // Counting a call told by both logs once takes no request of its own.
    assert_eq!((ops.adds, ops.queries), (3, 2));
    assert_eq!((ops.claims, ops.marks), (2, 2));
}

/// Denials of `user` on [`MODEL`] as CloudTrail records, one per line, request ids
/// `r<i>` for each `t` at `T0 + i`.
fn trail_denials(user: &str, calls: &[i64]) -> String {
    calls
        .iter()
        .map(|i| crate::testing::trail_denial(user, *i).to_string() + "\n")
        .collect()
}

#[tokio::test]
async fn a_call_in_both_logs_counts_once_whichever_comes_first() {
    for trail_first in [false, true] {
        let d = memory_detector();
        let log = denials(ALICE, &[T0, T0 + 1]);
        let trail = trail_denials(ALICE, &[0, 1]);
        let (first, second) = if trail_first {
            (&trail, &log)
        } else {
            (&log, &trail)
        };
        let a = run(&d, "first", first).await.expect("ok");
        let b = run(&d, "second", second).await.expect("ok");
        assert_eq!(d.store().count(&alice(), crate::testing::bucket_of(T0)), 2);
        assert_eq!(
            (a.counts.denials, b.counts.denials),
            (2, 2),
            "each record read"
        );
        assert_eq!(d.store().records_told_twice(), 2);
        assert!(d.sink().alerts().is_empty(), "two calls");
        // Redelivered, the second counts nothing more and the first nothing again.
        run(&d, "second", second).await.expect("ok");
        run(&d, "first", first).await.expect("ok");
        assert_eq!(d.store().count(&alice(), crate::testing::bucket_of(T0)), 2);
        // Two more calls told by the first log only: four, one alert.
        let more = if trail_first {
            trail_denials(ALICE, &[2, 3])
        } else {
            [2, 3]
                .iter()
                .map(|i| {
                    let r = record(
                        ALICE,
                        MODEL,
                        ACCOUNT,
                        T0 + i,
                        Some(DENIED),
                        &format!("r{i}"),
                    );
                    r.to_string() + "\n"
                })
                .collect()
        };
        run(&d, "more", &more).await.expect("ok");
        let alerts = d.sink().alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].total_denials, 4);
    }
}

#[tokio::test]
async fn one_object_telling_a_call_in_both_logs_counts_it_once() {
    let d = memory_detector();
    let body = denials(ALICE, &[T0, T0 + 1]) + &trail_denials(ALICE, &[0, 1, 2]);
    let r = run(&d, "mixed", &body).await.expect("ok");
    assert_eq!(r.counts.denials, 5, "every record is read");
    assert_eq!(d.store().records_told_twice(), 2);
    assert_eq!(d.store().count(&alice(), crate::testing::bucket_of(T0)), 3);
}

#[tokio::test]
async fn truncated_gzip_counts_what_was_read_and_reports() {
    let d = memory_detector();
    let gz = gzip(denials(ALICE, &vec![T0; 4000]).as_bytes());
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
    assert!(r.counts.denials > 3);
    assert_eq!(r.counts.alerts_published, 1);
}

#[tokio::test]
async fn a_read_broken_off_by_the_source_counts_nothing_and_the_retry_counts_all() {
    let d = memory_detector();
    let body = denials(ALICE, &vec![T0; 2000]);
    let object = ObjectId::s3("logs", "a", "e1");
    let broken = FailingSource {
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
    assert_eq!(
        d.store().count(&alice(), d.reader().spec().bucket_of(T0)),
        2000
    );
}

/// A principal denied without pause: `n` objects of one denial each in one bucket.
async fn hammer<S: DetectorStore>(d: &Detector<S>, n: usize) -> Counts {
    let mut total = Counts::default();
    for i in 0..n {
        let r = run(d, &format!("o{i}"), &denials(ALICE, &[T0 + i as i64]))
            .await
            .expect("ok");
        total.add(&r.counts);
    }
    total
}

#[tokio::test]
async fn a_key_counted_by_many_objects_is_read_whole_only_when_it_may_alert() {
    let d = memory_detector();
    let objects = 3 * WINDOW_READ_CONTRIBUTIONS;
    let total = hammer(&d, objects).await;
    assert_eq!(total.alerts_published, 1, "one alert for the burst");
    assert_eq!(total.alerts_suppressed as usize, objects - 4);
    assert_eq!(d.sink().alerts().len(), 1);
    // Past the bounded read, every window this object touches is within the
    // suppression period of the alert sent: one read per object, never the whole.
    let queries = d.store().ops().queries as usize;
    assert_eq!(queries, objects, "one bounded read per object");
    // Once the suppression period is over, the next object reads the key whole and alerts.
    let later = T0 + 4 * 3600;
    let r = run(&d, "later", &denials(ALICE, &[later, later, later, later]))
        .await
        .expect("ok");
    assert_eq!(r.counts.alerts_published, 1);
}

#[tokio::test]
async fn a_stopped_key_counted_by_many_objects_is_never_read_whole() {
    let config = Config {
        exceptions: Exceptions::parse(&format!(
            r#"[{{"user.id": "{ALICE}", "reason": "batch job denied by design"}}]"#
        ))
        .expect("rules"),
        ..Config::default()
    };
    let d = memory_detector_with(config);
    let objects = 2 * WINDOW_READ_CONTRIBUTIONS;
    let total = hammer(&d, objects).await;
    assert_eq!(total.alerts_published, 0);
    assert_eq!(total.alerts_excepted as usize, objects - 3);
    assert_eq!(d.store().ops().queries as usize, objects);
    assert_eq!(
        d.store().count(&alice(), d.reader().spec().bucket_of(T0)),
        objects as u64,
        "every denial is counted"
    );
}

/// An object where each of `keys` principals of the account is denied `4 + i` times.
fn many_keys(keys: usize) -> String {
    (0..keys)
        .map(|i| {
            let user = format!("arn:aws:iam::{ACCOUNT}:user/flood{i:03}");
            let times: Vec<i64> = (0..4 + i as i64).map(|t| T0 + t).collect();
            denials(&user, &times)
        })
        .collect()
}

#[tokio::test]
async fn one_object_sends_its_most_denied_alerts_and_one_summary_of_the_rest() {
    let d = memory_detector();
    let body = many_keys(25);
    let r = run(&d, "flood", &body).await.expect("ok");
    assert_eq!(
        (
            r.counts.alerts_published,
            r.counts.alerts_over_ceiling,
            r.counts.ceiling_notices
        ),
        (10, 15, 1)
    );
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 10);
    assert!(
        alerts.iter().all(|a| a.total_denials >= 4 + 15),
        "the ten most denied are the ones sent"
    );
    let summaries = d.sink().ceilings();
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(
        (s.account_id.as_str(), s.keys_over_threshold),
        (ACCOUNT, 15)
    );
    assert_eq!(s.top.len(), crate::alert::notice::CEILING_TOP_KEYS);
    assert_eq!(
        s.top[0].total_denials,
        4 + 14,
        "the most denied held back first"
    );
    assert_eq!(s.hour, None, "the object's ceiling, not the hour's");
    // Delivered again: nothing more, neither alerts nor a second summary.
    let again = run(&d, "flood", &body).await.expect("ok");
    assert_eq!(
        (again.counts.alerts_published, again.counts.ceiling_notices),
        (0, 0)
    );
    assert_eq!(
        (d.sink().alerts().len(), d.sink().ceilings().len()),
        (10, 1)
    );
}

#[tokio::test]
async fn an_account_sends_a_bounded_number_of_alerts_an_hour_then_one_summary() {
    let now = Arc::new(AtomicI64::new(T0));
    let clock = now.clone();
    let sink = MemorySink::new();
    let config = Config {
        max_alerts_per_account_hour: 3,
        ..Config::default()
    };
    let d = Detector::new(config, MemoryStore::new(), sink.clone())
        .with_clock(move || clock.load(Ordering::SeqCst));
    // Five objects with two keys each that cross the threshold, within one hour.
    for o in 0..5 {
        let body = denials(&format!("{ALICE}{o}a"), &[T0, T0 + 1, T0 + 2, T0 + 3])
            + &denials(&format!("{ALICE}{o}b"), &[T0, T0 + 1, T0 + 2, T0 + 3]);
        run(&d, &format!("o{o}"), &body).await.expect("ok");
    }
    assert_eq!(sink.alerts().len(), 3, "the hour's allowance");
    let summaries = sink.ceilings();
    assert_eq!(summaries.len(), 1, "one summary an hour: {summaries:?}");
    assert!(summaries[0].hour.is_some());
    // The next hour has its allowance again; a key held back alerts once it crosses
    // again.
    now.store(T0 + 3600, Ordering::SeqCst);
    run(&d, "later", &denials(&format!("{ALICE}4a"), &[T0 + 4]))
        .await
        .expect("ok");
    assert_eq!(sink.alerts().len(), 4);
}

/// Delivers alerts; fails the first notice, then delivers them.
struct FirstNoticeFails {
    failed: std::sync::atomic::AtomicBool,
    inner: MemorySink,
}

impl AlertSink for FirstNoticeFails {
    fn name(&self) -> &str {
        "sns"
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.publish(alert)
    }

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if !self.failed.swap(true, Ordering::SeqCst) {
                return Err(SinkError::notice("sns", notice, "topic unavailable"));
            }
            self.inner.notify(notice).await
        })
    }
}

#[tokio::test]
async fn a_summary_that_fails_a_sink_is_sent_by_the_retry() {
    let delivered = MemorySink::new();
    let sink = FirstNoticeFails {
        failed: Default::default(),
        inner: delivered.clone(),
    };
    let config = Config {
        max_alerts_per_object: 1,
        ..Config::default()
    };
    let d = Detector::new(config, MemoryStore::new(), sink).with_clock(|| T0);
    let body = many_keys(3);
    let err = run(&d, "a", &body).await.expect_err("the summary failed");
    assert!(matches!(err.first(), DetectError::Deliver { .. }), "{err}");
    assert_eq!(
        (delivered.alerts().len(), delivered.ceilings().len()),
        (1, 0)
    );
    // The retry: the alert is not sent again, the summary is.
    let r = run(&d, "a", &body).await.expect("retry");
    assert_eq!(
        (r.counts.alerts_published, r.counts.ceiling_notices),
        (0, 1)
    );
    assert_eq!(
        (delivered.alerts().len(), delivered.ceilings().len()),
        (1, 1)
    );
    assert_eq!(delivered.ceilings()[0].keys_over_threshold, 2);
}
