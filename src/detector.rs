//! The detector for one object: read → aggregate per (key, bucket) → count in the
//! store → evaluate windows → claim → publish → mark sent.
//!
//! Generic over the [`CounterStore`] and the [`AlertSink`], so `scan`, the Lambda and
//! the tests run exactly this code.

use crate::aggregate::{scan_object, Aggregate, KeyDenials};
use crate::alert::{Alert, AlertSink, SinkError};
use crate::config::Config;
use crate::key::{DenialKey, ObjectId};
use crate::logs::{DenialMatcher, ReadError, ReadStats};
use crate::store::{AddOutcome, AlertClaim, ClaimOutcome, CounterStore, StoreError};
use crate::window::WindowSpec;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use std::io::Read;
use thiserror::Error;

/// Keys of one object processed at once: bounds memory and concurrent store requests.
pub const KEY_CONCURRENCY: usize = 16;
/// A claim never marked sent can be taken over after this long (Lambda's longest run).
pub const CLAIM_LEASE_SECONDS: i64 = 15 * 60;
/// How long counters and alert state outlive the window and suppression they serve,
/// for logs that arrive late.
pub const LATE_LOG_MARGIN_SECONDS: i64 = 2 * 86_400;

/// A failure that must fail the invocation so the object is retried.
#[derive(Debug, Error)]
pub enum DetectError {
    #[error("{object}: {source}")]
    Read { object: String, source: ReadError },
    #[error("{object}: {source}")]
    Store { object: String, source: StoreError },
    #[error("{object}: {source}")]
    Publish { object: String, source: SinkError },
}

/// What happened to the counts and alerts of one object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    pub keys: u64,
    /// (key, bucket) counters this object added to.
    pub counters_added: u64,
    /// (key, bucket) counters this object had already added to (a redelivery).
    pub counters_already_counted: u64,
    pub alerts_published: u64,
    pub alerts_suppressed: u64,
    /// Another invocation holds the claim for the key and is publishing.
    pub alerts_in_progress: u64,
}

impl RecordReport {
    pub fn add(&mut self, o: &RecordReport) {
        self.keys += o.keys;
        self.counters_added += o.counters_added;
        self.counters_already_counted += o.counters_already_counted;
        self.alerts_published += o.alerts_published;
        self.alerts_suppressed += o.alerts_suppressed;
        self.alerts_in_progress += o.alerts_in_progress;
    }
}

/// Everything about one processed object, for the log line and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectReport {
    pub object: String,
    pub read: ReadStats,
    /// An error that ended reading early but does not fail the invocation.
    pub read_error: Option<String>,
    pub record: RecordReport,
}

pub struct Detector<S, A> {
    config: Config,
    spec: WindowSpec,
    matcher: DenialMatcher,
    store: S,
    sink: A,
    clock: fn() -> i64,
}

fn system_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl<S: CounterStore, A: AlertSink> Detector<S, A> {
    pub fn new(config: Config, store: S, sink: A) -> Self {
        Self {
            spec: config.window(),
            matcher: DenialMatcher::new(&config.denial_codes),
            config,
            store,
            sink,
            clock: system_now,
        }
    }

    /// Replaces the wall clock (used for claim leases and expiry) in tests.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    pub fn matcher(&self) -> &DenialMatcher {
        &self.matcher
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn sink(&self) -> &A {
        &self.sink
    }

    /// The store and the sink back, e.g. to continue with another configuration.
    pub fn into_parts(self) -> (S, A) {
        (self.store, self.sink)
    }

    /// Reads, counts and alerts for one object read from `input` (blocking read).
    pub async fn process(
        &self,
        object: &ObjectId,
        input: impl Read,
    ) -> Result<ObjectReport, DetectError> {
        let (agg, outcome) = scan_object(input, &self.matcher, &self.spec);
        self.finish(object, agg, outcome.stats, outcome.error).await
    }

    /// Counts what was read. A counter holds an object's whole count for its (key,
    /// bucket) or nothing, so only a complete read, or one cut short by the object
    /// itself (the same bytes every time), is counted; a read the source broke off
    /// fails before counting anything and is retried whole.
    pub async fn finish(
        &self,
        object: &ObjectId,
        agg: Aggregate,
        stats: ReadStats,
        read_error: Option<ReadError>,
    ) -> Result<ObjectReport, DetectError> {
        let read_error = match read_error {
            Some(e) if e.is_retryable() => {
                return Err(DetectError::Read {
                    object: object.uri.clone(),
                    source: e,
                })
            }
            other => other.map(|e| e.to_string()),
        };
        let record = self.record(object, &agg).await?;
        Ok(ObjectReport {
            object: object.uri.clone(),
            read: stats,
            read_error,
            record,
        })
    }

    /// Counts one object's aggregate and raises the alerts it completes.
    pub async fn record(
        &self,
        object: &ObjectId,
        agg: &Aggregate,
    ) -> Result<RecordReport, DetectError> {
        let reports: Vec<RecordReport> = stream::iter(agg.keys.iter())
            .map(|(key, denials)| self.record_key(object, key, denials))
            .buffer_unordered(KEY_CONCURRENCY)
            .try_collect()
            .await?;
        let mut total = RecordReport::default();
        for r in &reports {
            total.add(r);
        }
        Ok(total)
    }

    async fn record_key(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        denials: &KeyDenials,
    ) -> Result<RecordReport, DetectError> {
        let store_err = |source| DetectError::Store {
            object: object.uri.clone(),
            source,
        };
        let now = (self.clock)();
        let window_seconds = self.spec.bucket_seconds() * self.spec.window_buckets();
        let expires_at =
            now + window_seconds + self.config.suppress_seconds() + LATE_LOG_MARGIN_SECONDS;
        let mut report = RecordReport {
            keys: 1,
            ..RecordReport::default()
        };
        for (&bucket, &count) in &denials.buckets {
            match self
                .store
                .add(object, key, bucket, count, expires_at)
                .await
                .map_err(store_err)?
            {
                AddOutcome::Added => report.counters_added += 1,
                AddOutcome::AlreadyCounted => report.counters_already_counted += 1,
            }
        }

        let touched = denials.buckets.keys().copied().collect();
        let Some((first, last)) = self.spec.query_range(&touched) else {
            return Ok(report);
        };
        let counts = self
            .store
            .counts(key, first, last)
            .await
            .map_err(store_err)?;
        let Some(window) = self
            .spec
            .alert_window(&counts, &touched, self.config.threshold)
        else {
            return Ok(report);
        };

        let alert = Alert::build(
            key,
            &window,
            &counts,
            &self.spec,
            &self.config,
            object,
            denials,
        );
        let claim = AlertClaim {
            object_token: object.token.clone(),
            window_end: self.spec.window_bounds(window.end).1,
            suppress_seconds: self.config.suppress_seconds(),
            lease_seconds: CLAIM_LEASE_SECONDS,
            now,
            expires_at,
        };
        match self
            .store
            .claim_alert(key, &claim)
            .await
            .map_err(store_err)?
        {
            ClaimOutcome::Claimed => {
                self.sink
                    .publish(&alert)
                    .await
                    .map_err(|source| DetectError::Publish {
                        object: object.uri.clone(),
                        source,
                    })?;
                self.store
                    .mark_alert_sent(key, &claim)
                    .await
                    .map_err(store_err)?;
                report.alerts_published += 1;
            }
            ClaimOutcome::Suppressed { .. } => report.alerts_suppressed += 1,
            ClaimOutcome::InProgress => report.alerts_in_progress += 1,
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
