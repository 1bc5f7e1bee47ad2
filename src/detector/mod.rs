//! The detector for one object: read (synchronous, [`Reader`]) → count per (key,
//! bucket) in the store → evaluate windows → claim → deliver → mark sent.
//!
//! Generic over the [`DetectorStore`](crate::store::DetectorStore); the sinks are any mix of [`AlertSink`]s. `scan`,
//! the Lambda and the tests run exactly this code. Both call the same seam: [`Reader::read`] on a
//! blocking thread, then [`Detector::count`].

use crate::aggregate::{Aggregate, KeyDenials};
use crate::alert::{Alert, AlertSink, CeilingNotice, HeldKey, Notice, Sink, SinkError};
use crate::calls::Contribution;
use crate::config::Config;
use crate::identity::{attempt_id, ObjectId};
use crate::key::DenialKey;
use crate::reader::{ObjectRead, Reader};
use crate::rule::Decision;
use crate::stats::Counts;

use crate::store::{
    AddOutcome, AlertClaim, AlertState, ClaimOutcome, DetectorStore, StoreError, WindowRead,
};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Keys of one object processed at once: bounds memory and concurrent store requests.
pub const KEY_CONCURRENCY: usize = 16;
/// Counted objects read for a key's windows before asking whether its alert could be
/// raised at all: the windows of a key that many objects counted toward (a principal
/// denied without pause) are read whole only when an alert may follow
/// (docs/DESIGN.md, "Exactly-once counting").
pub const WINDOW_READ_CONTRIBUTIONS: usize = 30;
/// A claim never marked sent can be taken over after this long: longer than an
/// attempt can take to deliver (sinks are called at once, each bounded by
/// [`SINK_TIMEOUT`]), and no longer than Lambda's one-minute wait before its first retry.
pub const CLAIM_LEASE_SECONDS: i64 = 60;
/// One delivery to one sink gives up after this long, so an attempt holding a claim
/// finishes well within its lease whatever a sink does.
pub const SINK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an attempt that finds another attempt delivering waits for it to finish
/// before failing so it is retried.
pub const CLAIM_WAIT: Duration = Duration::from_secs(25);
const CLAIM_POLL: Duration = Duration::from_millis(200);
/// How long counters and alert state outlive the window and suppression they serve,
/// for logs that arrive late.
pub const LATE_LOG_MARGIN_SECONDS: i64 = 2 * 86_400;

/// Wall clock, epoch seconds: replaceable in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What counting and evaluating one key or group gave: its counts, and the alert it
/// would raise.
type KeyOutcome = Result<(Counts, Option<Pending>), DetectError>;

/// Why showing an alert failed.
enum Preview {
    Store(StoreError),
    Sink(SinkError),
}

pub struct Detector<S> {
    config: Config,
    reader: Arc<Reader>,
    store: S,
    sinks: Vec<Sink>,
    clock: Clock,
    claim_wait: Duration,
    /// Set when alerts are shown, not delivered ([`Detector::previewing`]): the window
    /// end of the last alert shown per key in this run.
    previews: Option<std::sync::Mutex<std::collections::HashMap<DenialKey, AlertState>>>,
}

impl<S: DetectorStore> Detector<S> {
    pub fn new(config: Config, store: S, sink: impl AlertSink + 'static) -> Self {
        Self::with_sinks(config, store, vec![Arc::new(sink)])
    }

    /// A detector that delivers every alert to each of `sinks`.
    pub fn with_sinks(config: Config, store: S, sinks: Vec<Sink>) -> Self {
        Self {
            reader: Arc::new(Reader::new(&config)),
            config,
            store,
            sinks,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
            claim_wait: CLAIM_WAIT,
            previews: None,
        }
    }

    /// Counts only, and shows the alerts that would be raised to the sinks without
    /// claiming them: the store's alert state is read (so what it suppresses stays
    /// suppressed) but never written, so a replay into a deployed table cannot
    /// silence the deployed function's next alert (docs/DESIGN.md, "Scan and backfill").
    pub fn previewing(mut self) -> Self {
        self.previews = Some(Default::default());
        self
    }

    /// Replaces the wall clock (used for claim leases, expiry and exceptions) in tests.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long to wait for another attempt's delivery before failing (tests shorten it).
    #[cfg(any(test, feature = "testing"))]
    pub fn with_claim_wait(mut self, wait: Duration) -> Self {
        self.claim_wait = wait;
        self
    }

    pub fn reader(&self) -> &Arc<Reader> {
        &self.reader
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Reads (blocking) and counts one object, for tests that have it at hand. Its
    /// account is the one its key's layout names, if any.
    #[cfg(any(test, feature = "testing"))]
    pub async fn process(
        &self,
        object: &ObjectId,
        input: impl std::io::Read,
    ) -> Result<ObjectReport, DetectError> {
        let account = object.folder_account();
        self.count(object, self.reader.read(input, account.as_deref()))
            .await
    }

    /// Counts what was read. A counter holds an object's whole count for its (key,
    /// bucket) or nothing, so only a complete read, or one cut short by the object
    /// itself (the same bytes every time), is counted; a read the source broke off
    /// fails before counting anything and is retried whole.
    pub async fn count(
        &self,
        object: &ObjectId,
        read: ObjectRead,
    ) -> Result<ObjectReport, DetectError> {
        let read_error = match read.error {
            Some(e) if e.is_retryable() => {
                return Err(DetectError::Read {
                    object: object.uri.clone(),
                    source: e,
                })
            }
            other => other.map(|e| e.to_string()),
        };
        let mut counts = read.stats.object_counts();
        counts.objects_incomplete = u64::from(read_error.is_some());
        counts.denials_over_limit = read.aggregate.over_limit.denials;
        counts.keys_over_limit = read.aggregate.over_limit.keys;
        counts.add(&self.record(object, &read.aggregate).await?);
        Ok(ObjectReport {
            object: object.uri.clone(),
            format: read.stats.format,
            gzip: read.stats.gzip,
            counts,
            read_error,
            accounts: read.accounts,
        })
    }

    /// Counts one object's aggregate and raises the alerts it completes, within the
    /// alert ceilings (docs/DESIGN.md, "Alert ceilings"). Every key is counted and
    /// evaluated whatever another key's requests do, and none is dropped halfway (a
    /// claim held, a delivery under way): a failing key fails the object, so it is
    /// retried and the retry completes exactly what is missing, but it never stops the
    /// others.
    pub async fn record(&self, object: &ObjectId, agg: &Aggregate) -> Result<Counts, DetectError> {
        let attempt = attempt_id();
        use futures_util::future::Either;
        // Each result says whether it is a seed key's (true) or another rule's group's.
        let seed = agg.keys.iter().map(|(key, denials)| {
            Either::Left(async move { (true, self.record_key(object, key, denials).await) })
        });
        let distinct = agg.distinct.iter().map(|(key, group)| {
            Either::Right(async move { (false, self.record_distinct(object, key, group).await) })
        });
        let results: Vec<(bool, KeyOutcome)> = stream::iter(seed.chain(distinct))
            .buffer_unordered(KEY_CONCURRENCY)
            .collect()
            .await;
        let keys = agg.keys.len();
        let groups = agg.distinct.len();
        let mut done = Counts::default();
        let mut errors = Vec::new();
        let mut group_errors = Vec::new();
        let mut pending = Vec::new();
        for (is_seed, r) in results {
            match r {
                Ok((r, p)) => {
                    done.add(&r);
                    pending.extend(p);
                }
                Err(e) if is_seed => errors.push(e),
                Err(e) => group_errors.push(e),
            }
        }
        // The most denied keys are alerted one by one, the same ones on every retry;
        // the rest of the object's alerts are summed up.
        pending.sort_by(|a, b| {
            b.alert
                .total_denials
                .cmp(&a.alert.total_denials)
                .then_with(|| a.key.cmp(&b.key))
        });
        let over_object = pending.split_off(
            pending
                .len()
                .min(self.config.max_alerts_per_object as usize),
        );
        let mut held: Vec<(String, HeldKey)> = over_object.into_iter().map(Pending::held).collect();
        let delivered: Vec<Result<(Counts, Option<Pending>), DetectError>> = stream::iter(pending)
            .map(|p| self.deliver_pending(object, &attempt, p))
            .buffer_unordered(KEY_CONCURRENCY)
            .collect()
            .await;
        let mut over_hour = false;
        for r in delivered {
            match r {
                Ok((r, p)) => {
                    done.add(&r);
                    if let Some(p) = p {
                        over_hour = true;
                        held.push(p.held());
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        done.alerts_over_ceiling += held.len() as u64;
        if !held.is_empty() {
            match self.summarize(object, &attempt, held, over_hour).await {
                Ok(r) => done.add(&r),
                Err(e) => errors.push(e),
            }
        }
        let failed = errors.len();
        let failed_groups = group_errors.len();
        errors.extend(group_errors);
        match errors.into_iter().next() {
            None => Ok(done),
            // One principal's object (a seed key and its other rules' groups) fails as
            // its key does, else as its first group.
            Some(e) if keys <= 1 => Err(e),
            Some(first) => Err(DetectError::Keys {
                object: object.uri.clone(),
                failed,
                keys,
                failed_groups,
                groups,
                first: Box::new(first),
                done: Box::new(done),
            }),
        }
    }

    fn store_error(object: &ObjectId) -> impl Fn(StoreError) -> DetectError + '_ {
        move |source| DetectError::Store {
            object: object.uri.clone(),
            source,
        }
    }

    /// Counts one key of an object and evaluates its windows: the alert it would raise,
    /// if any, for [`Detector::record`] to deliver within the ceilings. Previewing, the
    /// alert is shown at once.
    async fn record_key(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        denials: &KeyDenials,
    ) -> Result<(Counts, Option<Pending>), DetectError> {
        let store_err = Self::store_error(object);
        let settings = self.config.rule_settings(key.rule);
        let (spec, suppress_seconds) = (&settings.spec, settings.suppress_seconds);
        let window_seconds = spec.bucket_seconds() * spec.window_buckets();
        let expires_at =
            |now: i64| now + window_seconds + suppress_seconds + LATE_LOG_MARGIN_SECONDS;
        let mut report = Counts {
            keys: u64::from(key.rule == crate::rule::RuleTag::Seed),
            ..Counts::default()
        };
        let counted_at = (self.clock)();
        for (&bucket, &records) in &denials.buckets {
            // The records and their calls: a window read counts a call told by both
            // logs once (docs/DESIGN.md, "One call, one count").
            let calls = denials.calls.get(&bucket).map_or(&[][..], Vec::as_slice);
            let contribution = Contribution { records, calls };
            match self
                .store
                .add(object, key, bucket, contribution, expires_at(counted_at))
                .await
                .map_err(&store_err)?
            {
                AddOutcome::Added if key.rule != crate::rule::RuleTag::Seed => {
                    report.validation_counters_added += 1
                }
                AddOutcome::Added => report.counters_added += 1,
                AddOutcome::AlreadyCounted => report.counters_already_counted += 1,
            }
        }

        let touched = denials.buckets.keys().copied().collect();
        let Some((first, last)) = spec.query_range(&touched) else {
            return Ok((report, None));
        };
        let rule = self.config.exceptions.rule_for(key, counted_at);
        let decide = |counts: &std::collections::BTreeMap<_, _>| {
            crate::rule::decide(spec, counts, &touched, rule, settings.threshold)
        };
        let excepted = |total: u64, report: &mut Counts| {
            let reason = rule.map_or("", |r| r.reason.as_str());
            info!(key = %key, total_at_least = total, reason = %reason, "alert excepted");
            report.alerts_excepted += 1;
        };
        let mut read = WindowRead {
            max_contributions: Some(WINDOW_READ_CONTRIBUTIONS),
        };
        let mut counts = self
            .store
            .counts(key, first, last, read)
            .await
            .map_err(&store_err)?;
        if !counts.complete {
            // Part of the counts, never more than the whole: enough to see that a stop
            // rule has something to stop, or that every window this object touches is
            // within the suppression period of the key's last alert.
            if let Decision::Excepted { total } = decide(&counts.buckets) {
                excepted(total, &mut report);
                return Ok((report, None));
            }
            let state = self.store.alert_state(key).await.map_err(&store_err)?;
            let suppress = suppress_seconds;
            if let Some(state) = state.filter(|s| {
                spec.window_ends(&touched)
                    .all(|end| s.suppresses(spec.window_bounds(end).1, suppress))
            }) {
                report.alerts_suppressed += 1;
                info!(key = %key, last_sent_end = state.last_sent_end, "every window of this object is within the suppression period; not read whole");
                return Ok((report, None));
            }
            read.max_contributions = None;
            counts = self
                .store
                .counts(key, first, last, read)
                .await
                .map_err(&store_err)?;
        }
        let counts = counts.buckets;
        let (window, threshold) = match decide(&counts) {
            Decision::Quiet => return Ok((report, None)),
            Decision::Excepted { total } => {
                excepted(total, &mut report);
                return Ok((report, None));
            }
            Decision::Alert { window, threshold } => (window, threshold),
        };

        let alert = Alert::build(key, &window, &counts, spec, threshold, object, denials);
        let window_end = spec.window_bounds(window.end).1;
        self.found(object, key, alert, window_end, suppress_seconds, report)
            .await
    }

    /// An alert found for `key`: shown to the sinks at once when previewing, else
    /// left for [`Detector::record`] to deliver within the ceilings.
    async fn found(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        alert: Alert,
        window_end: i64,
        suppress_seconds: i64,
        mut report: Counts,
    ) -> KeyOutcome {
        if let Some(previews) = &self.previews {
            self.preview(
                previews,
                key,
                &alert,
                window_end,
                suppress_seconds,
                &mut report,
            )
            .await
            .map_err(|e| match e {
                Preview::Store(source) => Self::store_error(object)(source),
                Preview::Sink(source) => DetectError::Deliver {
                    object: object.uri.clone(),
                    source,
                },
            })?;
            return Ok((report, None));
        }
        let pending = Pending {
            key: key.clone(),
            alert,
            window_end,
            suppress_seconds,
        };
        Ok((report, Some(pending)))
    }

    /// How long an alert's state outlives it, from `now`.
    fn expires_at(&self, now: i64) -> i64 {
        let spec = self.reader.spec();
        now + spec.bucket_seconds() * spec.window_buckets()
            + self.config.suppress_seconds()
            + LATE_LOG_MARGIN_SECONDS
    }

    /// Claims and delivers one alert within its account's hourly allowance; the alert
    /// back when the allowance is used up (its claim given back).
    async fn deliver_pending(
        &self,
        object: &ObjectId,
        attempt: &str,
        pending: Pending,
    ) -> Result<(Counts, Option<Pending>), DetectError> {
        let mut report = Counts::default();
        // The claim's time is read when it is written: counting and reading may have
        // taken a while, and the lease is measured from the claim.
        let now = (self.clock)();
        let claim = AlertClaim {
            object_token: object.token.clone(),
            attempt: attempt.to_string(),
            window_end: pending.window_end,
            suppress_seconds: pending.suppress_seconds,
            lease_seconds: CLAIM_LEASE_SECONDS,
            now,
            expires_at: self.expires_at(now),
        };
        let sent = self
            .deliver(object, &pending.key, &pending.alert, claim, &mut report)
            .await?;
        Ok((report, (!sent).then_some(pending)))
    }

    /// Shows `alert` to the sinks unless the store's alert state, or an alert already
    /// shown in this run, suppresses it; writes nothing to the store.
    async fn preview(
        &self,
        previews: &std::sync::Mutex<std::collections::HashMap<DenialKey, AlertState>>,
        key: &DenialKey,
        alert: &Alert,
        window_end: i64,
        suppress: i64,
        report: &mut Counts,
    ) -> Result<(), Preview> {
        let stored = self.store.alert_state(key).await.map_err(Preview::Store)?;
        let shown_now = {
            let mut previews = crate::errors::lock(previews);
            let shown = previews.entry(key.clone()).or_default();
            let suppressed = stored.is_some_and(|s| s.suppresses(window_end, suppress))
                || shown.suppresses(window_end, suppress);
            if !suppressed {
                shown.mark_sent(window_end);
            }
            !suppressed
        };
        if !shown_now {
            report.alerts_suppressed += 1;
            return Ok(());
        }
        for sink in &self.sinks {
            publish(sink, alert).await.map_err(Preview::Sink)?;
        }
        report.alerts_not_delivered += 1;
        Ok(())
    }

    /// Claims the alert and delivers it to every sink that does not have it yet; waits
    /// while another attempt holds a fresh claim. A first delivery takes one of its
    /// account's alerts of the hour: with none left, the claim is given back and the
    /// alert is held (`Ok(false)`). On any failure the claim is given back so the
    /// retry can take it at once.
    async fn deliver(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        alert: &Alert,
        mut claim: AlertClaim,
        report: &mut Counts,
    ) -> Result<bool, DetectError> {
        let store_err = Self::store_error(object);
        let started = Instant::now();
        loop {
            let outcome = match self.store.claim_alert(key, &claim).await {
                Ok(o) => o,
                Err(e) => {
                    // The write may have happened before the failure: give it back.
                    self.release(key, &claim).await;
                    return Err(store_err(e));
                }
            };
            match outcome {
                ClaimOutcome::Claimed { delivered } => {
                    if delivered.is_empty() {
                        let hour_start = claim.now - claim.now.rem_euclid(3600);
                        let slot = self
                            .store
                            .take_alert_slot(
                                &key.account_id,
                                hour_start,
                                self.config.max_alerts_per_account_hour,
                                hour_start + 2 * 3600,
                            )
                            .await;
                        match slot {
                            Ok(true) => {}
                            Ok(false) => {
                                self.release(key, &claim).await;
                                return Ok(false);
                            }
                            Err(e) => {
                                self.release(key, &claim).await;
                                return Err(store_err(e));
                            }
                        }
                    }
                    if let Err(e) = self
                        .deliver_claimed(object, key, alert, &claim, &delivered)
                        .await
                    {
                        self.release(key, &claim).await;
                        return Err(e);
                    }
                    report.alerts_published += 1;
                    return Ok(true);
                }
                ClaimOutcome::Suppressed { .. } => {
                    report.alerts_suppressed += 1;
                    return Ok(true);
                }
                ClaimOutcome::Busy { .. } => {
                    report.alerts_in_progress = 1;
                    if started.elapsed() >= self.claim_wait {
                        return Err(DetectError::AlertBusy {
                            object: object.uri.clone(),
                            key: key.to_string(),
                        });
                    }
                    tokio::time::sleep(CLAIM_POLL.min(self.claim_wait)).await;
                    claim.now = (self.clock)();
                }
            }
        }
    }

    async fn deliver_claimed(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        alert: &Alert,
        claim: &AlertClaim,
        delivered: &std::collections::BTreeSet<String>,
    ) -> Result<(), DetectError> {
        let store_err = &Self::store_error(object);
        let track = self.sinks.len() > 1;
        let pending = self.sinks.iter().filter(|s| !delivered.contains(s.name()));
        let results = join_all(pending.map(|sink| async move {
            publish(sink, alert)
                .await
                .map_err(|source| DetectError::Deliver {
                    object: object.uri.clone(),
                    source,
                })?;
            if track {
                self.store
                    .record_delivery(key, claim, sink.name())
                    .await
                    .map_err(store_err)?;
            }
            Ok::<(), DetectError>(())
        }))
        .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        self.store
            .mark_alert_sent(key, claim)
            .await
            .map_err(store_err)
    }

    /// Delivers a notice about an account's logs to every sink at once; the first
    /// failure, after all were tried. A retry delivers to every sink again: notices
    /// are at least once, like alerts.
    pub async fn notify(&self, notice: &Notice) -> Result<(), SinkError> {
        join_all(self.sinks.iter().map(|s| notify(s, notice)))
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    async fn release(&self, key: &DenialKey, claim: &AlertClaim) {
        if let Err(e) = self.store.release_claim(key, claim).await {
            warn!(key = %key, error = %crate::error_chain(&e), "could not release the alert claim; it expires with its lease");
        }
    }
}

/// Delivers `alert` to `sink` within [`SINK_TIMEOUT`].
async fn publish(sink: &Sink, alert: &Alert) -> Result<(), SinkError> {
    tokio::time::timeout(SINK_TIMEOUT, sink.publish(alert))
        .await
        .unwrap_or_else(|_| Err(SinkError::new(sink.name(), alert, timed_out())))
}

/// Delivers `notice` to `sink` within [`SINK_TIMEOUT`].
async fn notify(sink: &Sink, notice: &Notice) -> Result<(), SinkError> {
    tokio::time::timeout(SINK_TIMEOUT, sink.notify(notice))
        .await
        .unwrap_or_else(|_| Err(SinkError::notice(sink.name(), notice, timed_out())))
}

fn timed_out() -> String {
    format!("no answer within {} s", SINK_TIMEOUT.as_secs())
}

mod ceilings;
mod distinct;
mod error;
mod report;

pub use error::DetectError;
pub use report::{ObjectReport, ObjectWarning};

use ceilings::Pending;
pub use ceilings::MAX_CEILING_SUMMARIES;

#[cfg(test)]
mod tests;
