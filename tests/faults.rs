//! Fault injection: every store and sink call of one object's processing fails in
//! turn, before or after its write takes effect (a timeout after the write); a clean
//! retry of the same object must leave exactly the fault-free counts and publish the
//! alert at least once, exactly once unless the fault fell between publishing and
//! recording it.

use bedrock_denied_models::alert::{Alert, AlertSink, MemorySink, SinkError};
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::key::{DenialKey, ObjectId};
use bedrock_denied_models::store::memory::MemoryStore;
use bedrock_denied_models::store::{
    AddOutcome, AlertClaim, ClaimOutcome, CounterStore, StoreError,
};
use bedrock_denied_models::window::Bucket;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const T0: i64 = 1_773_478_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The call fails and nothing happens.
    Before,
    /// The write happens, then the call reports failure (a timeout after the write).
    After,
}

/// Which call fails, shared by the store and the sink so calls are numbered in the
/// order they happen.
#[derive(Default)]
struct Plan {
    calls: AtomicUsize,
    fail_at: Mutex<Option<(usize, Mode)>>,
    /// Kinds of calls, in order, for reporting.
    log: Mutex<Vec<&'static str>>,
}

impl Plan {
    /// `Some(mode)` when this call is the one to fail.
    fn tick(&self, kind: &'static str) -> Option<Mode> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().expect("log").push(kind);
        match *self.fail_at.lock().expect("plan") {
            Some((at, mode)) if at == n => Some(mode),
            _ => None,
        }
    }

    fn reset(&self, fail_at: Option<(usize, Mode)>) {
        self.calls.store(0, Ordering::SeqCst);
        self.log.lock().expect("log").clear();
        *self.fail_at.lock().expect("plan") = fail_at;
    }
}

struct FaultyStore {
    inner: MemoryStore,
    plan: Arc<Plan>,
}

fn injected(operation: &'static str) -> StoreError {
    StoreError {
        operation,
        target: "fault".into(),
        message: "injected failure".into(),
    }
}

impl CounterStore for FaultyStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        count: u64,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        match self.plan.tick("add") {
            Some(Mode::Before) => Err(injected("add")),
            Some(Mode::After) => {
                self.inner
                    .add(object, key, bucket, count, expires_at)
                    .await?;
                Err(injected("add"))
            }
            None => self.inner.add(object, key, bucket, count, expires_at).await,
        }
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, u64>, StoreError> {
        match self.plan.tick("query") {
            Some(_) => Err(injected("query")),
            None => self.inner.counts(key, first, last).await,
        }
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        match self.plan.tick("claim") {
            Some(Mode::Before) => Err(injected("claim")),
            Some(Mode::After) => {
                self.inner.claim_alert(key, claim).await?;
                Err(injected("claim"))
            }
            None => self.inner.claim_alert(key, claim).await,
        }
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        match self.plan.tick("mark") {
            Some(Mode::Before) => Err(injected("mark")),
            Some(Mode::After) => {
                self.inner.mark_alert_sent(key, claim).await?;
                Err(injected("mark"))
            }
            None => self.inner.mark_alert_sent(key, claim).await,
        }
    }
}

struct FaultySink {
    inner: MemorySink,
    plan: Arc<Plan>,
}

impl AlertSink for FaultySink {
    async fn publish(&self, alert: &Alert) -> Result<(), SinkError> {
        let fail = || SinkError {
            key: alert.key().to_string(),
            message: "injected failure".into(),
        };
        match self.plan.tick("publish") {
            Some(Mode::Before) => Err(fail()),
            Some(Mode::After) => {
                self.inner.publish(alert).await?;
                Err(fail())
            }
            None => self.inner.publish(alert).await,
        }
    }
}

fn line(user: &str, t: i64) -> String {
    serde_json::json!({
        "timestamp": bedrock_denied_models::alert::rfc3339(t), "accountId": "111122223333",
        "identity": {"arn": user}, "modelId": "anthropic.claude-3-opus-20240229-v1:0",
        "errorCode": "AccessDeniedException", "requestId": format!("r-{t}")
    })
    .to_string()
        + "\n"
}

/// Two keys: mallory alerts (3 + 2 denials in two buckets), bob stays below.
fn object_body() -> String {
    let mut s = String::new();
    for t in [T0, T0 + 1, T0 + 2, T0 + 600, T0 + 601] {
        s += &line("mallory", t);
    }
    for t in [T0, T0 + 700] {
        s += &line("bob", t);
    }
    s
}

fn detector(plan: &Arc<Plan>) -> Detector<FaultyStore, FaultySink> {
    Detector::new(
        Config::default(),
        FaultyStore {
            inner: MemoryStore::new(),
            plan: plan.clone(),
        },
        FaultySink {
            inner: MemorySink::new(),
            plan: plan.clone(),
        },
    )
    .with_clock(|| T0)
}

#[tokio::test]
async fn every_failure_point_then_a_clean_retry() {
    let object = ObjectId::s3("logs", "AWSLogs/x.json", "etag-1");
    let body = object_body();

    // Fault-free reference run: the calls it makes and the state it leaves.
    let plan = Arc::new(Plan::default());
    let reference = detector(&plan);
    reference
        .process(&object, body.as_bytes())
        .await
        .expect("clean run");
    let calls = plan.calls.load(Ordering::SeqCst);
    let expected = reference.store().inner.snapshot();
    assert_eq!(reference.sink().inner.alerts().len(), 1);
    let kinds = plan.log.lock().expect("log").clone();
    assert_eq!(calls, 9, "calls of a clean run: {kinds:?}");

    let mut tried = 0;
    for at in 0..calls {
        for mode in [Mode::Before, Mode::After] {
            let plan = Arc::new(Plan::default());
            let d = detector(&plan);
            plan.reset(Some((at, mode)));
            let first = d.process(&object, body.as_bytes()).await;
            let failed_kind = plan.log.lock().expect("log").get(at).copied();
            assert!(
                first.is_err(),
                "call {at} ({failed_kind:?}, {mode:?}) failed but the object succeeded"
            );

            plan.reset(None);
            d.process(&object, body.as_bytes())
                .await
                .expect("clean retry");
            assert_eq!(
                d.store().inner.snapshot(),
                expected,
                "counts after failing call {at} ({failed_kind:?}, {mode:?}) then retrying"
            );
            let published = d.sink().inner.alerts().len();
            let between_publish_and_mark = matches!(
                (failed_kind, mode),
                (Some("publish"), Mode::After) | (Some("mark"), Mode::Before)
            );
            if between_publish_and_mark {
                assert!(published >= 1, "call {at}: alert lost");
            } else {
                assert_eq!(
                    published, 1,
                    "call {at} ({failed_kind:?}, {mode:?}): published {published}"
                );
            }
            // A third delivery never alerts again.
            d.process(&object, body.as_bytes())
                .await
                .expect("redelivery");
            assert_eq!(d.sink().inner.alerts().len(), published);
            tried += 1;
        }
    }
    println!("fault matrix: {tried} failure points tried over {calls} calls");
    assert_eq!(tried, 2 * calls);
}

#[tokio::test]
async fn a_failed_object_does_not_block_another_objects_alert_forever() {
    // The first object's invocation dies after claiming; another object's alert for
    // the same key waits for the lease, then takes over.
    let plan = Arc::new(Plan::default());
    let store = FaultyStore {
        inner: MemoryStore::new(),
        plan: plan.clone(),
    };
    let sink = FaultySink {
        inner: MemorySink::new(),
        plan: plan.clone(),
    };
    let body: String = [T0, T0 + 1, T0 + 2, T0 + 3]
        .iter()
        .map(|t| line("mallory", *t))
        .collect();
    let a = ObjectId::s3("logs", "a", "1");
    let b = ObjectId::s3("logs", "b", "1");
    let d = Detector::new(Config::default(), store, sink).with_clock(|| T0);
    plan.reset(Some((2, Mode::After))); // add, query, claim(after) -> dies holding the claim
    assert!(d.process(&a, body.as_bytes()).await.is_err());
    plan.reset(None);
    let r = d.process(&b, body.as_bytes()).await.expect("b");
    assert_eq!(
        r.record.alerts_in_progress, 1,
        "within the lease: the holder will publish"
    );
    let late = Detector::new(
        Config::default(),
        d.store_owned_for_test(),
        MemorySink::new(),
    )
    .with_clock(|| T0 + 16 * 60);
    let r = late.process(&b, body.as_bytes()).await.expect("b later");
    assert_eq!(
        r.record.alerts_published, 1,
        "after the lease the claim is taken over"
    );
}

trait StoreOwned {
    fn store_owned_for_test(self) -> MemoryStore;
}

impl StoreOwned for Detector<FaultyStore, FaultySink> {
    fn store_owned_for_test(self) -> MemoryStore {
        self.into_parts().0.inner
    }
}
