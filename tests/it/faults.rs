//! Fault injection: every store and sink call of one object's processing fails in
//! turn, before or after its write takes effect (a timeout after the write); a clean
//! retry of the same object, a minute later as Lambda retries, must leave exactly the
//! fault-free counts and deliver the alert to every sink at least once: exactly once,
//! unless the fault fell between a sink's delivery and its record.

use crate::support::*;
use bedrock_denied_models::alert::{Alert, AlertSink, MemorySink, Notice, Sink, SinkError};
use bedrock_denied_models::calls::Contribution;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::errors::Context;
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::store::memory::MemoryStore;
use bedrock_denied_models::store::{
    AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters, DistinctSets, Members,
    StoreError, WindowCounts, WindowRead,
};
use bedrock_denied_models::window::Bucket;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The call fails and nothing happens.
    Before,
    /// The write happens, then the call reports failure (a timeout after the write).
    After,
}

/// Which call fails, shared by the store and the sinks so calls are numbered in the
/// order they happen.
#[derive(Default)]
struct Plan {
    calls: AtomicUsize,
    fail_at: Mutex<Vec<(usize, Mode)>>,
    /// Kinds of calls, in order, for reporting.
    log: Mutex<Vec<String>>,
}

impl Plan {
    /// `Some(mode)` when this call is one to fail.
    fn tick(&self, kind: &str) -> Option<Mode> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().expect("log").push(kind.to_string());
        self.fail_at
            .lock()
            .expect("plan")
            .iter()
            .find(|(at, _)| *at == n)
            .map(|(_, m)| *m)
    }

    fn reset(&self, fail_at: Vec<(usize, Mode)>) {
        self.calls.store(0, Ordering::SeqCst);
        self.log.lock().expect("log").clear();
        *self.fail_at.lock().expect("plan") = fail_at;
    }

    fn kind(&self, at: usize) -> String {
        self.log
            .lock()
            .expect("log")
            .get(at)
            .cloned()
            .unwrap_or_default()
    }
}

struct FaultyStore {
    inner: MemoryStore,
    plan: Arc<Plan>,
}

fn injected() -> StoreError {
    StoreError {
        operation: "injected",
        target: "fault".into(),
        source: Box::new(Context::new("injected failure", "timeout")),
    }
}

/// Runs `write` unless the plan fails this call before it with `fail`; fails after
/// it when planned.
macro_rules! faulty {
    ($self:ident, $kind:expr, $write:expr) => {
        faulty!($self, $kind, $write, injected())
    };
    ($self:ident, $kind:expr, $write:expr, $fail:expr) => {
        match $self.plan.tick(&$kind) {
            Some(Mode::Before) => Err($fail),
            Some(Mode::After) => {
                $write.await?;
                Err($fail)
            }
            None => $write.await,
        }
    };
}

impl Counters for FaultyStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        faulty!(
            self,
            "add",
            self.inner
                .add(object, key, bucket, contribution, expires_at)
        )
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        read: WindowRead,
    ) -> Result<WindowCounts, StoreError> {
        faulty!(self, "query", self.inner.counts(key, first, last, read))
    }
}

impl DistinctSets for FaultyStore {
    async fn add_members(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        members: &Members,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        faulty!(
            self,
            "add_members",
            self.inner.add_members(key, bucket, members, expires_at)
        )
    }

    async fn members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, Members>, StoreError> {
        faulty!(self, "members", self.inner.members(key, first, last))
    }
}

impl AlertClaims for FaultyStore {
    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        faulty!(self, "state", self.inner.alert_state(key))
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        faulty!(self, "claim", self.inner.claim_alert(key, claim))
    }

    async fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> Result<(), StoreError> {
        faulty!(
            self,
            format!("record {sink}"),
            self.inner.record_delivery(key, claim, sink)
        )
    }

    async fn release_claim(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        faulty!(self, "release", self.inner.release_claim(key, claim))
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        faulty!(self, "mark", self.inner.mark_alert_sent(key, claim))
    }

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        faulty!(
            self,
            "slot",
            self.inner
                .take_alert_slot(account, hour_start, max, expires_at)
        )
    }
}

struct FaultySink {
    name: &'static str,
    inner: MemorySink,
    plan: Arc<Plan>,
}

impl AlertSink for FaultySink {
    fn name(&self) -> &str {
        self.name
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            faulty!(
                self,
                format!("publish {}", self.name),
                self.inner.publish(alert),
                SinkError::new(self.name, alert, "injected failure")
            )
        })
    }

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            faulty!(
                self,
                format!("notify {}", self.name),
                self.inner.notify(notice),
                SinkError::notice(self.name, notice, "injected failure")
            )
        })
    }
}

/// Two keys: mallory alerts (3 + 2 denials in two buckets), bob stays below.
fn object_body() -> String {
    denials(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 600, T0 + 601]) + &denials("bob", &[T0, T0 + 700])
}

/// The counts the object must leave, whatever failed on the way.
fn expected_counts() -> BTreeMap<(DenialKey, Bucket), u64> {
    let bob = DenialKey::new("bob", MODEL, ACCOUNT);
    BTreeMap::from([
        ((mallory(), bucket_of(T0)), 3),
        ((mallory(), bucket_of(T0 + 600)), 2),
        ((bob.clone(), bucket_of(T0)), 1),
        ((bob, bucket_of(T0 + 700)), 1),
    ])
}

/// A detector over faulty parts, and what each of its sinks delivered.
fn detector_and_sinks(
    plan: &Arc<Plan>,
    sinks: &[&'static str],
    now: &Arc<AtomicI64>,
) -> (Detector<FaultyStore>, Vec<MemorySink>) {
    let now = now.clone();
    let delivered: Vec<MemorySink> = sinks.iter().map(|_| MemorySink::new()).collect();
    let detector = Detector::with_sinks(
        Config::default(),
        FaultyStore {
            inner: MemoryStore::new(),
            plan: plan.clone(),
        },
        sinks
            .iter()
            .zip(&delivered)
            .map(|(name, inner)| {
                Arc::new(FaultySink {
                    name,
                    inner: inner.clone(),
                    plan: plan.clone(),
                }) as Sink
            })
            .collect(),
    )
    .with_clock(move || now.load(Ordering::SeqCst))
    .with_claim_wait(std::time::Duration::from_millis(10));
    (detector, delivered)
}

/// Fails each call of a clean run in turn (before, then after its write), retries, and
/// checks counts and deliveries. Returns how many failure points were tried.
async fn matrix(sinks: &[&'static str], expected_calls: usize) -> usize {
    let object = ObjectId::s3("logs", "AWSLogs/x.json", "etag-1");
    let body = object_body();
    let now = Arc::new(AtomicI64::new(T0));

    // Fault-free reference run: the calls it makes and the state it leaves.
    let plan = Arc::new(Plan::default());
    let (reference, delivered) = detector_and_sinks(&plan, sinks, &now);
    reference
        .process(&object, body.as_bytes())
        .await
        .expect("clean run");
    let calls = plan.calls.load(Ordering::SeqCst);
    assert_eq!(reference.store().inner.snapshot(), expected_counts());
    for s in &delivered {
        assert_eq!(s.alerts().len(), 1);
        assert_eq!(s.alerts()[0].total_denials, 5);
    }
    let kinds = plan.log.lock().expect("log").clone();
    assert_eq!(calls, expected_calls, "calls of a clean run: {kinds:?}");

    let mut tried = 0;
    for at in 0..calls {
        for mode in [Mode::Before, Mode::After] {
            now.store(T0, Ordering::SeqCst);
            let plan = Arc::new(Plan::default());
            let (d, kept) = detector_and_sinks(&plan, sinks, &now);
            plan.reset(vec![(at, mode)]);
            let first = d.process(&object, body.as_bytes()).await;
            let failed = plan.kind(at);
            assert!(
                first.is_err(),
                "call {at} ({failed}, {mode:?}) failed but the object succeeded"
            );

            // Lambda retries a minute later.
            now.store(T0 + 60, Ordering::SeqCst);
            plan.reset(Vec::new());
            d.process(&object, body.as_bytes())
                .await
                .unwrap_or_else(|e| {
                    panic!("clean retry after call {at} ({failed}, {mode:?}): {e}")
                });
            assert_eq!(
                d.store().inner.snapshot(),
                expected_counts(),
                "counts after failing call {at} ({failed}, {mode:?}) then retrying"
            );
            for (name, s) in sinks.iter().zip(&kept) {
                let delivered = s.alerts().len();
                // A duplicate is allowed only where the sink delivered but its delivery
                // was not recorded: the sink's own call failing after it delivered, its
                // record failing before it was written, or (one sink, nothing recorded
                // per sink) the mark failing before it was written.
                let own = format!("publish {}", name);
                let between = (failed == own && mode == Mode::After)
                    || (failed == format!("record {}", name) && mode == Mode::Before)
                    || (sinks.len() == 1 && failed == "mark" && mode == Mode::Before);
                if between {
                    assert!(
                        delivered >= 1,
                        "call {at} ({failed}, {mode:?}): {} lost",
                        name
                    );
                } else {
                    assert_eq!(
                        delivered, 1,
                        "call {at} ({failed}, {mode:?}): {} got {delivered}",
                        name
                    );
                }
            }
            // A third delivery never alerts again.
            let before: Vec<usize> = kept.iter().map(|s| s.alerts().len()).collect();
            d.process(&object, body.as_bytes())
                .await
                .expect("redelivery");
            let after: Vec<usize> = kept.iter().map(|s| s.alerts().len()).collect();
            assert_eq!(before, after);
            tried += 1;
        }
    }
    tried
}

#[tokio::test]
async fn every_failure_point_then_a_clean_retry_with_one_sink() {
    // mallory: add for each of two buckets, query, claim, slot (the account's hourly
    // allowance), publish, mark; bob: add twice, query; the other rules' groups of both (mallory's role and principal, bob's
    // principal): add_members twice (two buckets) and members, each.
    let tried = matrix(&["sns"], 19).await;
    assert_eq!(tried, 38);
}

#[tokio::test]
async fn every_failure_point_then_a_clean_retry_with_three_sinks() {
    // As above, plus a publish and a record for each of three sinks.
    let tried = matrix(&["sns", "events", "securityhub"], 24).await;
    assert_eq!(tried, 48);
}

#[tokio::test]
async fn when_giving_the_claim_back_fails_too_the_retry_waits_out_the_lease() {
    let object = ObjectId::s3("logs", "a.json", "1");
    let body = denials(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]);
    let now = Arc::new(AtomicI64::new(T0));
    let plan = Arc::new(Plan::default());
    let (d, delivered) = detector_and_sinks(&plan, &["sns"], &now);
    // add, query, the other rules' add_members and members (mallory's role and
    // principal), claim, slot, publish (fails), release (fails): the claim stays
    // behind.
    plan.reset(vec![(8, Mode::Before), (9, Mode::Before)]);
    assert!(d.process(&object, body.as_bytes()).await.is_err());
    assert_eq!(plan.kind(8), "publish sns");
    assert_eq!(plan.kind(9), "release");
    plan.reset(Vec::new());
    // Another object, within the lease: it waits, then fails so it is retried.
    let other = ObjectId::s3("logs", "b.json", "1");
    now.store(T0 + 30, Ordering::SeqCst);
    let err = d.process(&other, body.as_bytes()).await.expect_err("busy");
    assert!(err.to_string().contains("another attempt"), "{err}");
    // After the lease: the retry takes the claim over and delivers.
    now.store(T0 + 60, Ordering::SeqCst);
    let r = d.process(&object, body.as_bytes()).await.expect("retry");
    assert_eq!(r.counts.alerts_published, 1);
    assert_eq!(delivered[0].alerts().len(), 1);
    let r = d
        .process(&other, body.as_bytes())
        .await
        .expect("other retry");
    assert_eq!(r.counts.alerts_suppressed, 1);
}
