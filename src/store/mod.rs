//! The counter store: exactly-once per-(key, bucket) denial counters and the per-key
//! alert state with its atomic claim (docs/DESIGN.md, "Exactly-once counting" and
//! "The alert claim").
//!
//! Five small traits are the seam between the detector and storage, one per kind of
//! state: [`Counters`], [`DistinctSets`], [`AlertClaims`], [`SweepBook`] and
//! [`SourceWatch`] (the detector needs the first three, [`DetectorStore`]; the
//! function all five, [`FunctionStore`]). [`memory`] keeps everything in process (for `scan` and tests),
//! the DynamoDB one (`crate::aws::store`, feature `aws`) is the deployed one; a wrapper implements, or forwards, every method of
//! each trait it claims.
//! The claim rules live here, in [`decide_claim`], so both implement the same policy;
//! [`conformance`] checks that they do.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod memory;

use crate::calls::Contribution;
use crate::errors::BoxError;
use crate::identity::ObjectId;
use crate::key::DenialKey;
use crate::silence::{LogSource, SourceStatus};
use crate::window::Bucket;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use thiserror::Error;

/// A store operation that failed; the invocation must fail so it is retried.
#[derive(Debug, Error)]
#[error("{operation} for {target} failed")]
pub struct StoreError {
    pub operation: &'static str,
    pub target: String,
    #[source]
    pub source: BoxError,
}

/// Result of adding one object's count to one (key, bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// This object had already contributed to this (key, bucket): nothing changed.
    AlreadyCounted,
}

/// How much of a key's windows to read ([`Counters::counts`]).
#[derive(Debug, Clone, Copy)]
pub struct WindowRead {
    /// Read no more than about this many counted objects' contributions (one more, to
    /// know there are more); `None` reads them all.
    pub max_contributions: Option<usize>,
}

/// A key's counts over a range of buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Non-zero counts by bucket.
    pub buckets: BTreeMap<Bucket, u64>,
    /// False when there were more than `max_contributions`: `buckets` then holds only
    /// part of the counts (never more than the whole).
    pub complete: bool,
}

/// What is recorded of an object marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The object was processed, however it arrived.
    Processed,
    /// The sweep failed to process it this many times.
    Failed(u32),
}

/// An attempt to become the one that delivers the alert for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertClaim {
    /// Token of the object whose processing found the alert.
    pub object_token: String,
    /// Unique per processing attempt, so a concurrent delivery of the same object is
    /// told apart from this attempt itself.
    pub attempt: String,
    /// End of the alert window, epoch seconds.
    pub window_end: i64,
    pub suppress_seconds: i64,
    /// A claim older than this that was never marked sent can be taken over.
    pub lease_seconds: i64,
    pub now: i64,
    /// Epoch seconds after which the store may forget the alert state.
    pub expires_at: i64,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This attempt delivers the alert to every sink not in `delivered` (sinks an
    /// earlier attempt already delivered this window to), then marks it sent.
    Claimed { delivered: BTreeSet<String> },
    /// An alert for a window ending within the suppression period was already sent.
    Suppressed { last_sent_end: i64 },
    /// Another attempt holds a fresh claim and is delivering.
    Busy {
        holder_object: String,
        claimed_at: i64,
    },
}

/// The per-key alert state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    /// Window end of the latest window whose alert was delivered and marked sent.
    pub last_sent_end: Option<i64>,
    /// Window end of the alert sent before it, or of a late alert for an older window
    /// sent after it: a late burst re-evaluated is not alerted twice.
    pub earlier_sent_end: Option<i64>,
    /// A claim not (yet) marked sent.
    pub pending: Option<PendingClaim>,
    /// Sinks that have an alert, as `(sink, window end)`: kept across attempts until
    /// the alert is marked sent.
    pub delivered: BTreeSet<(String, i64)>,
}

impl AlertState {
    /// Whether the alert of the window ending at `window_end` is suppressed: one of
    /// the two sent windows it remembers ends within `suppress_seconds` of it, or is
    /// the same window.
    pub fn suppresses(&self, window_end: i64, suppress_seconds: i64) -> bool {
        [self.last_sent_end, self.earlier_sent_end]
            .into_iter()
            .flatten()
            .any(|sent| sent == window_end || (window_end - sent).abs() < suppress_seconds)
    }

    /// Records the alert of the window ending at `window_end` as sent: the latest
    /// window end moves forward only; the one before it, or a late older window, is
    /// remembered beside it.
    pub fn mark_sent(&mut self, window_end: i64) {
        match self.last_sent_end {
            Some(last) if window_end < last => self.earlier_sent_end = Some(window_end),
            Some(last) if window_end == last => {}
            last => {
                self.earlier_sent_end = last.or(Some(window_end));
                self.last_sent_end = Some(window_end);
            }
        }
    }

    /// The sinks that have the alert of the window ending at `window_end`.
    pub fn delivered_for(&self, window_end: i64) -> BTreeSet<String> {
        self.delivered
            .iter()
            .filter(|(_, end)| *end == window_end)
            .map(|(sink, _)| sink.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingClaim {
    pub object_token: String,
    pub attempt: String,
    pub window_end: i64,
    pub claimed_at: i64,
}

/// The claim policy (docs/DESIGN.md, "The alert claim"):
/// - suppressed when a sent alert's window ([`AlertState::suppresses`]) ends within
///   `suppress_seconds` of this one (the same window is always suppressed, even with
///   no suppression);
/// - otherwise busy while another attempt holds a claim younger than the lease
///   (whatever its object: a concurrent delivery of this very object included);
/// - otherwise claimed, reporting the sinks earlier attempts delivered this window to.
pub fn decide_claim(state: Option<&AlertState>, claim: &AlertClaim) -> ClaimOutcome {
    let Some(state) = state else {
        return ClaimOutcome::Claimed {
            delivered: BTreeSet::new(),
        };
    };
    if let Some(last) = state.last_sent_end {
        if state.suppresses(claim.window_end, claim.suppress_seconds) {
            return ClaimOutcome::Suppressed {
                last_sent_end: last,
            };
        }
    }
    if let Some(p) = &state.pending {
        if p.attempt != claim.attempt && p.claimed_at > claim.now - claim.lease_seconds {
            return ClaimOutcome::Busy {
                holder_object: p.object_token.clone(),
                claimed_at: p.claimed_at,
            };
        }
    }
    ClaimOutcome::Claimed {
        delivered: state.delivered_for(claim.window_end),
    }
}

/// Exactly-once denial counters per (key, bucket) (docs/DESIGN.md, "Exactly-once
/// counting"). Every method is atomic on its own.
pub trait Counters: Send + Sync {
    /// Adds `contribution` to (key, bucket) unless `object` already contributed to
    /// it, in one atomic step.
    fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        expires_at: i64,
    ) -> impl Future<Output = Result<AddOutcome, StoreError>> + Send;
    /// Counts of buckets `first ..= last` for `key`, read consistently: each bucket's
    /// records, a call told by both logs counted as often as the log telling it more
    /// times ([`CallTally`](crate::calls::CallTally); docs/DESIGN.md, "One call, one
    /// count"). Buckets that count nothing are left out.
    fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        read: WindowRead,
    ) -> impl Future<Output = Result<WindowCounts, StoreError>> + Send;
}

pub use crate::rule::distinct::{bounded_member, Members, MAX_CALLS, MAX_VALUES};

/// Distinct sets per (key, bucket) for the rules that count distinct values or
/// calls (docs/DESIGN.md, "Distinct counting"). Adding is a set union, so an object
/// redelivered, retried or read concurrently adds nothing twice.
pub trait DistinctSets: Send + Sync {
    /// Adds `members` to (key, bucket)'s sets in one atomic step, each set stopping
    /// at its bound ([`MAX_CALLS`], [`MAX_VALUES`]); kept until `expires_at`.
    fn add_members(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        members: &Members,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The sets of buckets `first ..= last` for `key`, read consistently.
    fn members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> impl Future<Output = Result<BTreeMap<Bucket, Members>, StoreError>> + Send;
}

/// The per-key alert state with its atomic claim, and each account's hourly alert
/// allowance (docs/DESIGN.md, "The alert claim", "Alert ceilings").
pub trait AlertClaims: Send + Sync {
    /// The key's alert state, read consistently (`None`: never claimed).
    fn alert_state(
        &self,
        key: &DenialKey,
    ) -> impl Future<Output = Result<Option<AlertState>, StoreError>> + Send;
    /// Atomically applies [`decide_claim`] and, when claimed, records the claim.
    fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;
    /// Records that `sink` has the claimed alert, while this attempt holds the claim.
    fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives up this attempt's claim (delivery failed), keeping the deliveries it
    /// recorded, so a retry can claim at once. A no-op when not held.
    fn release_claim(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records that the claimed alert was delivered everywhere and clears the claim;
    /// the key's last sent window end becomes the later of the two, never an earlier
    /// one. A no-op when the claim was taken over in the meantime.
    fn mark_alert_sent(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes one of the `max` alerts that `account` may send in the wall-clock hour
    /// starting at `hour_start` (docs/DESIGN.md, "Alert ceilings"); false when every
    /// one is taken. The hour's allowance is kept until `expires_at`.
    fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The sweep's bookkeeping: object markers, failures and its cursor (docs/DESIGN.md,
/// "The sweep").
pub trait SweepBook: Send + Sync {
    /// What is recorded of these object markers (docs/DESIGN.md, "The sweep"); a
    /// marker with nothing recorded is absent. A store that keeps none knows none.
    fn markers(
        &self,
        markers: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Marker>, StoreError>> + Send;
    /// Records an object marker as processed until `expires_at`.
    fn mark_seen(
        &self,
        marker: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records one more failure of the sweep to process the object, unless it was
    /// processed; the failures so far (0 when processed).
    fn mark_failed(
        &self,
        marker: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
    /// Where the sweep named `name` stopped early, to continue from.
    fn sweep_cursor(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Records where the sweep named `name` stopped (`None`: it went through).
    fn set_sweep_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// When each log source last delivered, and the notices about it (docs/DESIGN.md,
/// "Log sources").
pub trait SourceWatch: Send + Sync {
    /// Records that a log object with records of the source `source`
    /// (`<account>:<region>`, [`crate::silence::source_name`]) was read at `now`; a no-op
    /// when the stored time is less than
    /// [`SEEN_EVERY_SECONDS`](crate::silence::SEEN_EVERY_SECONDS) older, or the name is
    /// not a source's (docs/DESIGN.md, "Log sources"). A store that watches no source
    /// keeps nothing.
    fn source_seen(
        &self,
        source: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The accounts whose log objects were seen, as stored: at most
    /// [`MAX_LOG_SOURCES`], so account folders a bucket's writer makes up cannot grow
    /// what each sweep reads.
    fn log_sources(&self) -> impl Future<Output = Result<Vec<LogSource>, StoreError>> + Send;
    /// Claims the `status` notice of `source` for `attempt`: true when the account is
    /// still as it was read and no other attempt holds a claim younger than the lease.
    fn claim_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Ends this attempt's notice claim: `delivered` records the notice (the account
    /// is then known silent, or no longer), else the claim is given back.
    fn finish_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        delivered: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What the detector needs of a store: counters and alert claims.
pub trait DetectorStore: Counters + DistinctSets + AlertClaims {}
impl<T: Counters + DistinctSets + AlertClaims> DetectorStore for T {}

/// What the function needs besides: the sweep's bookkeeping and the log-source watch.
pub trait FunctionStore: DetectorStore + SweepBook + SourceWatch {}
impl<T: DetectorStore + SweepBook + SourceWatch> FunctionStore for T {}

/// The notice claim policy, as both stores apply it: the account unchanged since it
/// was read (`stored` is what the store holds now), and no fresh claim of another
/// attempt.
/// Accounts the sweep watches at most (an organization's default account quota is far
/// below; see docs/DESIGN.md, "Log sources").
pub const MAX_LOG_SOURCES: usize = 10_000;

pub fn may_claim_notice(
    stored: &LogSource,
    read: &LogSource,
    status: SourceStatus,
    attempt: &str,
    now: i64,
) -> bool {
    let unchanged = stored.last_seen == read.last_seen
        && match status {
            SourceStatus::Silent => stored.silent_since.is_none(),
            SourceStatus::Resumed => stored.silent_since == read.silent_since,
        };
    let free = stored.claim.as_ref().is_none_or(|(holder, at)| {
        holder == attempt || *at <= now - crate::silence::NOTICE_LEASE_SECONDS
    });
    unchanged && free
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(attempt: &str, end: i64, now: i64) -> AlertClaim {
        AlertClaim {
            object_token: format!("object-of-{attempt}"),
            attempt: attempt.into(),
            window_end: end,
            suppress_seconds: 3600,
            lease_seconds: 60,
            now,
            expires_at: now + 86_400,
        }
    }

    fn claimed() -> ClaimOutcome {
        ClaimOutcome::Claimed {
            delivered: BTreeSet::new(),
        }
    }

    fn pending(attempt: &str, object: &str, claimed_at: i64) -> AlertState {
        AlertState {
            pending: Some(PendingClaim {
                object_token: object.into(),
                attempt: attempt.into(),
                window_end: 600,
                claimed_at,
            }),
            ..AlertState::default()
        }
    }

    #[test]
    fn first_claim_wins() {
        assert_eq!(decide_claim(None, &claim("a", 0, 0)), claimed());
    }

    #[test]
    fn suppression_is_measured_between_window_ends() {
        let s = AlertState {
            last_sent_end: Some(36_000),
            ..AlertState::default()
        };
        for end in [36_000, 36_000 + 3599, 36_000 - 3599] {
            assert!(matches!(
                decide_claim(Some(&s), &claim("b", end, 0)),
                ClaimOutcome::Suppressed {
                    last_sent_end: 36_000
                }
            ));
        }
        for end in [36_000 + 3600, 36_000 - 3600] {
            assert_eq!(decide_claim(Some(&s), &claim("b", end, 0)), claimed());
        }
    }

    #[test]
    fn same_window_is_suppressed_even_without_suppression() {
        let s = AlertState {
            last_sent_end: Some(600),
            ..AlertState::default()
        };
        let mut c = claim("a", 600, 0);
        c.suppress_seconds = 0;
        assert!(matches!(
            decide_claim(Some(&s), &c),
            ClaimOutcome::Suppressed { .. }
        ));
        c.window_end = 1200;
        assert_eq!(decide_claim(Some(&s), &c), claimed());
    }

    #[test]
    fn a_fresh_claim_of_another_attempt_is_busy_until_the_lease_ends() {
        // Another object's attempt, and another attempt on the same object alike.
        for s in [
            pending("x", "object-of-x", 1000),
            pending("x", "object-of-b", 1000),
        ] {
            assert!(matches!(
                decide_claim(Some(&s), &claim("b", 600, 1059)),
                ClaimOutcome::Busy {
                    claimed_at: 1000,
                    ..
                }
            ));
            assert_eq!(decide_claim(Some(&s), &claim("b", 600, 1060)), claimed());
        }
        // The holder itself may claim again.
        let s = pending("b", "object-of-b", 1000);
        assert_eq!(decide_claim(Some(&s), &claim("b", 600, 1001)), claimed());
    }

    #[test]
    fn deliveries_carry_over_only_for_the_same_window() {
        let s = AlertState {
            delivered: BTreeSet::from([("sns".to_string(), 600), ("events".to_string(), 1200)]),
            ..AlertState::default()
        };
        assert_eq!(
            decide_claim(Some(&s), &claim("a", 600, 0)),
            ClaimOutcome::Claimed {
                delivered: BTreeSet::from(["sns".to_string()])
            }
        );
    }
}
