//! The counter store: exactly-once per-(key, bucket) denial counters and the per-key
//! alert state with its atomic claim (SPEC sections 3 and 4).
//!
//! [`CounterStore`] is the seam between the detector and storage: [`memory`] keeps
//! everything in process (for `scan` and tests), [`dynamodb`] is the deployed one.
//! The claim rules live here, in [`decide_claim`], so both implement the same policy.

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod memory;

use crate::key::{DenialKey, ObjectId};
use crate::window::Bucket;
use std::collections::BTreeMap;
use std::future::Future;
use thiserror::Error;

/// A store operation that failed; the invocation must fail so it is retried.
#[derive(Debug, Error)]
#[error("{operation} for {target} failed: {message}")]
pub struct StoreError {
    pub operation: &'static str,
    pub target: String,
    pub message: String,
}

/// Result of adding one object's count to one (key, bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// This object had already contributed to this (key, bucket): nothing changed.
    AlreadyCounted,
}

/// An attempt to become the one invocation that alerts for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertClaim {
    /// Token of the object whose processing found the alert.
    pub object_token: String,
    /// End of the alert window, epoch seconds.
    pub window_end: i64,
    pub suppress_seconds: i64,
    /// Claims older than this that were never marked sent can be taken over.
    pub lease_seconds: i64,
    pub now: i64,
    /// Epoch seconds after which the store may forget the alert state.
    pub expires_at: i64,
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This invocation must publish, then mark the alert sent.
    Claimed,
    /// An alert for a window ending within the suppression period was already sent.
    Suppressed { last_sent_end: i64 },
    /// Another object's invocation holds a fresh claim and is publishing.
    InProgress,
}

/// The per-key alert state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertState {
    /// Window end of the last alert that was published and marked sent.
    pub last_sent_end: Option<i64>,
    /// A claim not (yet) marked sent.
    pub pending: Option<PendingClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingClaim {
    pub object_token: String,
    pub window_end: i64,
    pub claimed_at: i64,
}

/// The claim policy of SPEC section 4:
/// - suppressed when the last sent alert's window ends within `suppress_seconds` of
///   this one (the same window is always suppressed, even with no suppression);
/// - otherwise claimed, unless another object holds a claim younger than the lease;
///   the same object may claim again (its retry after a failed publish).
pub fn decide_claim(state: Option<&AlertState>, claim: &AlertClaim) -> ClaimOutcome {
    let Some(state) = state else {
        return ClaimOutcome::Claimed;
    };
    if let Some(last) = state.last_sent_end {
        if last == claim.window_end || (claim.window_end - last).abs() < claim.suppress_seconds {
            return ClaimOutcome::Suppressed {
                last_sent_end: last,
            };
        }
    }
    match &state.pending {
        Some(p)
            if p.object_token != claim.object_token
                && p.claimed_at > claim.now - claim.lease_seconds =>
        {
            ClaimOutcome::InProgress
        }
        _ => ClaimOutcome::Claimed,
    }
}

/// Storage for counters and alert state. Every method is atomic on its own.
pub trait CounterStore: Send + Sync {
    /// Adds `count` to (key, bucket) unless `object` already contributed to it, in one
    /// atomic step.
    fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        count: u64,
        expires_at: i64,
    ) -> impl Future<Output = Result<AddOutcome, StoreError>> + Send;

    /// Non-zero counts of buckets `first ..= last` for `key`, read consistently.
    fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> impl Future<Output = Result<BTreeMap<Bucket, u64>, StoreError>> + Send;

    /// Atomically applies [`decide_claim`] and, when claimed, records the claim.
    fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Records that the claimed alert was published. A no-op when the claim was
    /// taken over in the meantime.
    fn mark_alert_sent(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(obj: &str, end: i64, now: i64) -> AlertClaim {
        AlertClaim {
            object_token: obj.into(),
            window_end: end,
            suppress_seconds: 3600,
            lease_seconds: 900,
            now,
            expires_at: now + 86_400,
        }
    }

    #[test]
    fn first_claim_wins() {
        assert_eq!(decide_claim(None, &claim("a", 0, 0)), ClaimOutcome::Claimed);
    }

    #[test]
    fn suppression_is_measured_between_window_ends() {
        let s = AlertState {
            last_sent_end: Some(36_000),
            pending: None,
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
            assert_eq!(
                decide_claim(Some(&s), &claim("b", end, 0)),
                ClaimOutcome::Claimed
            );
        }
    }

    #[test]
    fn same_window_is_suppressed_even_without_suppression() {
        let s = AlertState {
            last_sent_end: Some(600),
            pending: None,
        };
        let mut c = claim("a", 600, 0);
        c.suppress_seconds = 0;
        assert!(matches!(
            decide_claim(Some(&s), &c),
            ClaimOutcome::Suppressed { .. }
        ));
        c.window_end = 1200;
        assert_eq!(decide_claim(Some(&s), &c), ClaimOutcome::Claimed);
    }

    #[test]
    fn pending_claims_block_others_until_the_lease_ends() {
        let s = AlertState {
            last_sent_end: None,
            pending: Some(PendingClaim {
                object_token: "a".into(),
                window_end: 600,
                claimed_at: 1000,
            }),
        };
        assert_eq!(
            decide_claim(Some(&s), &claim("b", 600, 1100)),
            ClaimOutcome::InProgress
        );
        assert_eq!(
            decide_claim(Some(&s), &claim("a", 600, 1100)),
            ClaimOutcome::Claimed
        );
        assert_eq!(
            decide_claim(Some(&s), &claim("b", 600, 1900)),
            ClaimOutcome::Claimed
        );
    }
}
