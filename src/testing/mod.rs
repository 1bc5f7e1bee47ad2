//! Test support shared by the unit tests and the integration tests (feature
//! `testing`): log-record builders, gzip, readers that misbehave, and a detector over
//! memory. Never part of a release build.

#[cfg(feature = "aws")]
pub mod runtime_api;

use crate::alert::{rfc3339, MemorySink};
use crate::config::Config;
use crate::detector::Detector;
use crate::store::memory::MemoryStore;
use crate::store::{AlertClaims, Counters, DetectorStore};
use serde_json::{json, Value};
use std::io::{self, Read, Write};

/// The handler's answer as the Lambda runtime would send it.
#[cfg(feature = "aws")]
pub fn answer(r: crate::lambda::Response) -> Value {
    serde_json::to_value(r).expect("a response serializes")
}

/// 2026-03-14T09:00:00Z.
pub const T0: i64 = 1_773_478_800;
pub const ACCOUNT: &str = "111122223333";
pub const MALLORY: &str = "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory";
pub const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/Analyst/alice";
pub const MODEL: &str = "anthropic.claude-3-opus-20240229-v1:0";
pub const DENIED: &str = "AccessDeniedException";
/// Planted in every prompt: it must never appear in the function's output.
pub const PROMPT_MARKER: &str = "a prompt that must never be logged";

/// One Bedrock model-invocation log record.
pub fn record(
    user: &str,
    model: &str,
    account: &str,
    t: i64,
    code: Option<&str>,
    request_id: &str,
) -> Value {
    let mut v = json!({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": rfc3339(t), "accountId": account,
        "identity": {"arn": user}, "region": "us-east-1", "requestId": request_id,
        "operation": "InvokeModel", "modelId": model,
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"prompt": PROMPT_MARKER}},
    });
    if let Some(c) = code {
        v["errorCode"] = json!(c);
    }
    v
}

/// [`record`] as one JSON line, with request id `req-<t>`.
pub fn line(user: &str, model: &str, account: &str, t: i64, code: Option<&str>) -> String {
    record(user, model, account, t, code, &format!("req-{t}")).to_string() + "\n"
}

/// Denials by `user` of [`MODEL`] in [`ACCOUNT`] at `times`, as JSON lines with
/// request ids `r0`, `r1`, ...
pub fn denials(user: &str, times: &[i64]) -> String {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            record(user, MODEL, ACCOUNT, *t, Some(DENIED), &format!("r{i}")).to_string() + "\n"
        })
        .collect()
}

/// [`denials`], gzip-compressed.
pub fn denials_gz(user: &str, times: &[i64]) -> Vec<u8> {
    gzip(denials(user, times).as_bytes())
}

/// One CloudTrail record of a Bedrock call.
pub fn cloudtrail_record(
    user: &str,
    model: &str,
    t: i64,
    event_name: &str,
    code: Option<&str>,
    request_id: &str,
) -> Value {
    let mut v = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": user, "accountId": ACCOUNT},
        "eventTime": rfc3339(t), "eventSource": "bedrock.amazonaws.com", "eventName": event_name,
        "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6",
        "requestParameters": {"modelId": model}, "responseElements": null,
        "requestID": request_id, "eventID": format!("e-{request_id}"),
        "recipientAccountId": ACCOUNT,
    });
    if let Some(c) = code {
        v["errorCode"] = json!(c);
        v["errorMessage"] = json!(format!(
            "User: {user} is not authorized to perform: bedrock:{event_name}"
        ));
    }
    v
}

/// A CloudTrail IAM denial of `InvokeModel` by `user` on [`MODEL`] at `T0 + i`, request
/// id `r<i>`: the call whose invocation-log record is `record(user, MODEL, ACCOUNT,
/// T0 + i, Some(DENIED), "r<i>")`.
pub fn trail_denial(user: &str, i: i64) -> Value {
    cloudtrail_record(
        user,
        MODEL,
        T0 + i,
        "InvokeModel",
        Some("AccessDenied"),
        &format!("r{i}"),
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to memory cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// `awslogs.data` of a CloudWatch Logs subscription event carrying `payload_json`:
/// base64(gzip(JSON)), as CloudWatch Logs encodes it.
pub fn awslogs_data(payload_json: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(gzip(payload_json.as_bytes()))
}

/// The bucket of `t` with 10-minute buckets.
pub fn bucket_of(t: i64) -> i64 {
    t.div_euclid(600)
}

/// A detector over memory with the default configuration, its clock at [`T0`].
pub fn memory_detector() -> Watched {
    memory_detector_with(Config::default())
}

pub fn memory_detector_with(config: Config) -> Watched {
    Watched::new(config, MemoryStore::new())
}

/// A detector whose one sink is kept in memory, to look at what it delivered.
pub struct Watched<S = MemoryStore> {
    pub detector: Detector<S>,
    pub sink: MemorySink,
}

/// Implements [`DistinctSets`](crate::store::DistinctSets) for a test wrapper
/// `$wrapper<S>` with an `inner: S` by forwarding both methods.
#[macro_export]
macro_rules! forward_distinct_sets {
    ($wrapper:ident) => {
        impl<S: $crate::store::DistinctSets> $crate::store::DistinctSets for $wrapper<S> {
            async fn add_members(
                &self,
                key: &$crate::key::DenialKey,
                bucket: $crate::window::Bucket,
                members: &$crate::store::Members,
                expires_at: i64,
            ) -> Result<(), $crate::store::StoreError> {
                self.inner
                    .add_members(key, bucket, members, expires_at)
                    .await
            }

            async fn members(
                &self,
                key: &$crate::key::DenialKey,
                first: $crate::window::Bucket,
                last: $crate::window::Bucket,
            ) -> Result<
                std::collections::BTreeMap<$crate::window::Bucket, $crate::store::Members>,
                $crate::store::StoreError,
            > {
                self.inner.members(key, first, last).await
            }
        }
    };
}

/// Implements [`SweepBook`] and [`SourceWatch`] for a test wrapper `$wrapper<S>` with an
/// `inner: S` by forwarding every method: wrappers that only watch counting and
/// claims keep the sweep's and the log sources' state of the store they wrap.
#[macro_export]
macro_rules! forward_sweep_book_and_source_watch {
    ($wrapper:ident) => {
        impl<S: $crate::store::SweepBook> $crate::store::SweepBook for $wrapper<S> {
            async fn markers(
                &self,
                markers: &[String],
            ) -> Result<
                std::collections::BTreeMap<String, $crate::store::Marker>,
                $crate::store::StoreError,
            > {
                self.inner.markers(markers).await
            }

            async fn mark_seen(
                &self,
                marker: &str,
                expires_at: i64,
            ) -> Result<(), $crate::store::StoreError> {
                self.inner.mark_seen(marker, expires_at).await
            }

            async fn mark_failed(
                &self,
                marker: &str,
                expires_at: i64,
            ) -> Result<u32, $crate::store::StoreError> {
                self.inner.mark_failed(marker, expires_at).await
            }

            async fn sweep_cursor(
                &self,
                name: &str,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                self.inner.sweep_cursor(name).await
            }

            async fn set_sweep_cursor(
                &self,
                name: &str,
                cursor: Option<&str>,
                expires_at: i64,
            ) -> Result<(), $crate::store::StoreError> {
                self.inner.set_sweep_cursor(name, cursor, expires_at).await
            }
        }

        impl<S: $crate::store::SourceWatch> $crate::store::SourceWatch for $wrapper<S> {
            async fn source_seen(
                &self,
                source: &str,
                now: i64,
            ) -> Result<(), $crate::store::StoreError> {
                self.inner.source_seen(source, now).await
            }

            async fn log_sources(
                &self,
            ) -> Result<Vec<$crate::silence::LogSource>, $crate::store::StoreError> {
                self.inner.log_sources().await
            }

            async fn claim_notice(
                &self,
                source: &$crate::silence::LogSource,
                status: $crate::silence::SourceStatus,
                attempt: &str,
                now: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                self.inner.claim_notice(source, status, attempt, now).await
            }

            async fn finish_notice(
                &self,
                source: &$crate::silence::LogSource,
                status: $crate::silence::SourceStatus,
                attempt: &str,
                delivered: bool,
            ) -> Result<(), $crate::store::StoreError> {
                self.inner
                    .finish_notice(source, status, attempt, delivered)
                    .await
            }
        }
    };
}

impl<S: DetectorStore> Watched<S> {
    /// Over `store`, its clock at [`T0`].
    pub fn new(config: Config, store: S) -> Self {
        let sink = MemorySink::new();
        Self {
            detector: Detector::new(config, store, sink.clone()).with_clock(|| T0),
            sink,
        }
    }

    /// Changes the detector (its clock, its claim wait).
    pub fn with(self, f: impl FnOnce(Detector<S>) -> Detector<S>) -> Self {
        Self {
            detector: f(self.detector),
            sink: self.sink,
        }
    }

    pub fn sink(&self) -> &MemorySink {
        &self.sink
    }
}

impl<S> std::ops::Deref for Watched<S> {
    type Target = Detector<S>;

    fn deref(&self) -> &Detector<S> {
        &self.detector
    }
}

/// A source that fails after some bytes, like a dropped S3 connection.
pub struct FailingSource<'a> {
    pub data: &'a [u8],
    pub fail_at: usize,
}

impl Read for FailingSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(self.fail_at).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.fail_at -= n;
        Ok(n)
    }
}

/// Hands out at most `sizes[i]` bytes per read, cycling: exercises every boundary.
pub struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl<'a> Chunked<'a> {
    pub fn new(data: &'a [u8], sizes: Vec<usize>) -> Self {
        Self { data, sizes, i: 0 }
    }
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A store that holds its first `parties` callers of `add` at one barrier, and its
/// first `parties` callers of `claim_alert` at another before the claim and at a third
/// after it, so that many invocations of one object really race on the same counter
/// and the same claim, and every loser sees the winner's claim still pending.
pub struct BarrierStore<S> {
    pub inner: S,
    parties: usize,
    adds: std::sync::atomic::AtomicUsize,
    claims: std::sync::atomic::AtomicUsize,
    before_add: tokio::sync::Barrier,
    before_claim: tokio::sync::Barrier,
    after_claim: tokio::sync::Barrier,
}

impl<S> BarrierStore<S> {
    pub fn new(inner: S, parties: usize) -> Self {
        Self {
            inner,
            parties,
            adds: Default::default(),
            claims: Default::default(),
            before_add: tokio::sync::Barrier::new(parties),
            before_claim: tokio::sync::Barrier::new(parties),
            after_claim: tokio::sync::Barrier::new(parties),
        }
    }

    /// True for the first `parties` calls, after they have all met at `barrier`.
    async fn gate(
        &self,
        calls: &std::sync::atomic::AtomicUsize,
        barrier: &tokio::sync::Barrier,
    ) -> bool {
        let gated = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < self.parties;
        if gated {
            barrier.wait().await;
        }
        gated
    }
}

impl<S: Counters> Counters for BarrierStore<S> {
    async fn add(
        &self,
        object: &crate::identity::ObjectId,
        key: &crate::key::DenialKey,
        bucket: crate::window::Bucket,
        contribution: crate::calls::Contribution<'_>,
        expires_at: i64,
    ) -> Result<crate::store::AddOutcome, crate::store::StoreError> {
        self.gate(&self.adds, &self.before_add).await;
        self.inner
            .add(object, key, bucket, contribution, expires_at)
            .await
    }

    async fn counts(
        &self,
        key: &crate::key::DenialKey,
        first: crate::window::Bucket,
        last: crate::window::Bucket,
        read: crate::store::WindowRead,
    ) -> Result<crate::store::WindowCounts, crate::store::StoreError> {
        self.inner.counts(key, first, last, read).await
    }
}

impl<S: AlertClaims> AlertClaims for BarrierStore<S> {
    async fn alert_state(
        &self,
        key: &crate::key::DenialKey,
    ) -> Result<Option<crate::store::AlertState>, crate::store::StoreError> {
        self.inner.alert_state(key).await
    }

    async fn claim_alert(
        &self,
        key: &crate::key::DenialKey,
        claim: &crate::store::AlertClaim,
    ) -> Result<crate::store::ClaimOutcome, crate::store::StoreError> {
        let gated = self.gate(&self.claims, &self.before_claim).await;
        let outcome = self.inner.claim_alert(key, claim).await;
        if gated {
            self.after_claim.wait().await;
        }
        outcome
    }

    async fn record_delivery(
        &self,
        key: &crate::key::DenialKey,
        claim: &crate::store::AlertClaim,
        sink: &str,
    ) -> Result<(), crate::store::StoreError> {
        self.inner.record_delivery(key, claim, sink).await
    }

    async fn release_claim(
        &self,
        key: &crate::key::DenialKey,
        claim: &crate::store::AlertClaim,
    ) -> Result<(), crate::store::StoreError> {
        self.inner.release_claim(key, claim).await
    }

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> Result<bool, crate::store::StoreError> {
        self.inner
            .take_alert_slot(account, hour_start, max, expires_at)
            .await
    }

    async fn mark_alert_sent(
        &self,
        key: &crate::key::DenialKey,
        claim: &crate::store::AlertClaim,
    ) -> Result<(), crate::store::StoreError> {
        self.inner.mark_alert_sent(key, claim).await
    }
}

forward_sweep_book_and_source_watch!(BarrierStore);
forward_distinct_sets!(BarrierStore);
