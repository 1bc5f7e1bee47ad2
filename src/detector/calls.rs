//! One call, one count (docs/DESIGN.md, "One call, one count"): which of an object's
//! (key, bucket)s claim their calls, within the object's write bound, and how many
//! of a (key, bucket)'s records are left uncounted because the other log counted
//! their calls first.

use super::Detector;
use crate::aggregate::{Aggregate, BucketCalls, MAX_COUNTERS_PER_OBJECT};
use crate::key::DenialKey;
use crate::stats::Counts;
use crate::store::{DetectorStore, StoreError};
use crate::window::Bucket;

/// How many of each key's (key, bucket)s with calls claim them, in key order: the
/// claims share the object's write bound with its counters (docs/DESIGN.md, "One
/// call, one count"), the same ones on every retry.
pub(super) fn call_claims_per_key(agg: &Aggregate) -> Vec<usize> {
    let mut left = MAX_COUNTERS_PER_OBJECT.saturating_sub(agg.updates());
    agg.keys
        .values()
        .map(|denials| {
            let wanted = denials
                .calls
                .values()
                .filter(|c| !c.calls.is_empty())
                .count();
            let granted = wanted.min(left);
            left -= granted;
            granted
        })
        .collect()
}

impl<S: DetectorStore> Detector<S> {
    /// Records of (key, bucket) in this object not to count: those of a call another
    /// record of the object told from the other log, and, when `claim`, those of the
    /// calls the other log claimed first.
    pub(super) async fn counted_elsewhere(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        calls: &BucketCalls,
        claim: bool,
        expires_at: i64,
        report: &mut Counts,
    ) -> Result<u64, StoreError> {
        let mut elsewhere = calls.told_twice;
        if claim {
            match self
                .store
                .claim_calls(key, bucket, &calls.sources(), expires_at)
                .await?
            {
                Some(owners) => elsewhere += calls.counted_elsewhere(&owners),
                None => report.call_claims_full += 1,
            }
        }
        report.records_counted_elsewhere += elsewhere;
        Ok(elsewhere)
    }
}
