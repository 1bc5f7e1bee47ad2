//! In-process store, every trait of [`super`]: used by `scan` and by tests. Counts its operations so
//! tests can check how many store requests an object costs.

use super::{
    decide_claim, AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters,
    DistinctSets, Marker, Members, PendingClaim, SourceWatch, StoreError, SweepBook, WindowCounts,
    WindowRead,
};
use crate::calls::{CallTally, Contribution};
use crate::errors::lock;
use crate::identity::ObjectId;
use crate::key::DenialKey;
use crate::silence::{LogSource, SourceStatus, SEEN_EVERY_SECONDS};
use crate::window::Bucket;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One (key, bucket): each counted object's records, as DynamoDB keeps them, and
/// their calls across the two logs.
#[derive(Debug, Default)]
struct Counter {
    /// What a whole read counts: the records less those of calls told by both logs.
    count: u64,
    objects: BTreeMap<String, u64>,
    calls: CallTally,
}

/// Requests made to a store, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreOps {
    pub adds: u64,
    pub queries: u64,
    pub claims: u64,
    pub marks: u64,
    /// Distinct-set writes and reads (the rules that count distinct values).
    pub member_adds: u64,
    pub member_reads: u64,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    counters: Mutex<HashMap<DenialKey, BTreeMap<Bucket, Counter>>>,
    members: Mutex<HashMap<DenialKey, BTreeMap<Bucket, Members>>>,
    alerts: Mutex<HashMap<DenialKey, AlertState>>,
    seen: Mutex<HashMap<String, Marker>>,
    cursors: Mutex<HashMap<String, String>>,
    sources: Mutex<BTreeMap<String, LogSource>>,
    /// Alerts sent per (account, hour).
    alert_slots: Mutex<HashMap<(String, i64), u32>>,
    adds: AtomicU64,
    queries: AtomicU64,
    claims: AtomicU64,
    marks: AtomicU64,
    member_adds: AtomicU64,
    member_reads: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ops(&self) -> StoreOps {
        StoreOps {
            adds: self.adds.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            claims: self.claims.load(Ordering::Relaxed),
            marks: self.marks.load(Ordering::Relaxed),
            member_adds: self.member_adds.load(Ordering::Relaxed),
            member_reads: self.member_reads.load(Ordering::Relaxed),
        }
    }

    /// Current count of one (key, bucket).
    pub fn count(&self, key: &DenialKey, bucket: Bucket) -> u64 {
        lock(&self.counters)
            .get(key)
            .and_then(|b| b.get(&bucket))
            .map_or(0, |c| c.count)
    }

    /// Records of calls told by both logs that no read counts, in every (key, bucket).
    pub fn records_told_twice(&self) -> u64 {
        lock(&self.counters)
            .values()
            .flat_map(|bs| bs.values())
            .map(|c| c.calls.told_twice())
            .sum()
    }

    /// All non-zero counters, for comparing whole-store states in tests.
    pub fn snapshot(&self) -> BTreeMap<(DenialKey, Bucket), u64> {
        lock(&self.counters)
            .iter()
            .flat_map(|(k, bs)| bs.iter().map(move |(b, c)| ((k.clone(), *b), c.count)))
            .collect()
    }

    /// Number of distinct keys of the seed rule with counters.
    pub fn key_count(&self) -> usize {
        lock(&self.counters)
            .keys()
            .filter(|k| k.rule == crate::key::RuleTag::Seed)
            .count()
    }

    /// Applies `f` to the key's state when this attempt holds its claim.
    fn if_holding(&self, key: &DenialKey, claim: &AlertClaim, f: impl FnOnce(&mut AlertState)) {
        let mut alerts = lock(&self.alerts);
        if let Some(state) = alerts.get_mut(key) {
            if state
                .pending
                .as_ref()
                .is_some_and(|p| p.attempt == claim.attempt)
            {
                f(state);
            }
        }
    }
}

impl Counters for MemoryStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        _expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        self.adds.fetch_add(1, Ordering::Relaxed);
        let mut counters = lock(&self.counters);
        let c = counters
            .entry(key.clone())
            .or_default()
            .entry(bucket)
            .or_default();
        if c.objects.contains_key(&object.token) {
            return Ok(AddOutcome::AlreadyCounted);
        }
        c.objects.insert(object.token.clone(), contribution.records);
        let told_twice = c.calls.add(contribution.calls);
        c.count += contribution.records.saturating_sub(told_twice);
        Ok(AddOutcome::Added)
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        read: WindowRead,
    ) -> Result<WindowCounts, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let counters = lock(&self.counters);
        let mut out = WindowCounts {
            complete: true,
            ..WindowCounts::default()
        };
        // Contributions are read one per counted object, in bucket order, as the
        // DynamoDB store reads them: past the most asked for, the read is a part.
        let mut left = read.max_contributions.map_or(usize::MAX, |m| m + 1);
        for (b, c) in counters
            .get(key)
            .into_iter()
            .flat_map(|bs| bs.range(first..=last))
        {
            let taken = c.objects.len().min(left);
            // A part never counts more than the whole.
            let count = if taken == c.objects.len() {
                c.count
            } else {
                c.objects.values().take(taken).sum::<u64>().min(c.count)
            };
            if count > 0 {
                out.buckets.insert(*b, count);
            }
            left -= taken;
            if left == 0 {
                out.complete = false;
                break;
            }
        }
        Ok(out)
    }
}

impl DistinctSets for MemoryStore {
    async fn add_members(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        members: &Members,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        self.member_adds.fetch_add(1, Ordering::Relaxed);
        let mut all = lock(&self.members);
        let stored = all
            .entry(key.clone())
            .or_default()
            .entry(bucket)
            .or_default();
        let new = stored.missing_from(members);
        stored.union(&new);
        Ok(())
    }

    async fn members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, Members>, StoreError> {
        self.member_reads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.members)
            .get(key)
            .map(|b| {
                b.range(first..=last)
                    .map(|(b, m)| (*b, m.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl AlertClaims for MemoryStore {
    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        Ok(lock(&self.alerts).get(key).cloned())
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        self.claims.fetch_add(1, Ordering::Relaxed);
        let mut alerts = lock(&self.alerts);
        let outcome = decide_claim(alerts.get(key), claim);
        if matches!(outcome, ClaimOutcome::Claimed { .. }) {
            alerts.entry(key.clone()).or_default().pending = Some(PendingClaim {
                object_token: claim.object_token.clone(),
                attempt: claim.attempt.clone(),
                window_end: claim.window_end,
                claimed_at: claim.now,
            });
        }
        Ok(outcome)
    }

    async fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> Result<(), StoreError> {
        self.if_holding(key, claim, |state| {
            state.delivered.insert((sink.to_string(), claim.window_end));
        });
        Ok(())
    }

    async fn release_claim(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.if_holding(key, claim, |state| state.pending = None);
        Ok(())
    }

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut slots = lock(&self.alert_slots);
        let taken = slots.entry((account.to_string(), hour_start)).or_default();
        if *taken >= max {
            return Ok(false);
        }
        *taken += 1;
        Ok(true)
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.marks.fetch_add(1, Ordering::Relaxed);
        self.if_holding(key, claim, |state| {
            state.mark_sent(claim.window_end);
            state.pending = None;
            state.delivered.clear();
        });
        Ok(())
    }
}

impl SweepBook for MemoryStore {
    async fn markers(&self, markers: &[String]) -> Result<BTreeMap<String, Marker>, StoreError> {
        let seen = lock(&self.seen);
        Ok(markers
            .iter()
            .filter_map(|m| seen.get(m).map(|state| (m.clone(), *state)))
            .collect())
    }

    async fn mark_seen(&self, marker: &str, _expires_at: i64) -> Result<(), StoreError> {
        lock(&self.seen).insert(marker.to_string(), Marker::Processed);
        Ok(())
    }

    async fn mark_failed(&self, marker: &str, _expires_at: i64) -> Result<u32, StoreError> {
        let mut seen = lock(&self.seen);
        let state = seen.entry(marker.to_string()).or_insert(Marker::Failed(0));
        Ok(match state {
            Marker::Processed => 0,
            Marker::Failed(n) => {
                *n += 1;
                *n
            }
        })
    }

    async fn sweep_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.cursors).get(name).cloned())
    }

    async fn set_sweep_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut cursors = lock(&self.cursors);
        match cursor {
            Some(c) => cursors.insert(name.to_string(), c.to_string()),
            None => cursors.remove(name),
        };
        Ok(())
    }
}

impl SourceWatch for MemoryStore {
    async fn source_seen(&self, account: &str, now: i64) -> Result<(), StoreError> {
        if crate::silence::parse_source_name(account).is_none() {
            return Ok(());
        }
        let mut sources = lock(&self.sources);
        let s = sources
            .entry(account.to_string())
            .or_insert_with(|| LogSource {
                account: account.to_string(),
                ..LogSource::default()
            });
        if s.last_seen == 0 || s.last_seen <= now - SEEN_EVERY_SECONDS {
            s.last_seen = now;
        }
        Ok(())
    }

    async fn log_sources(&self) -> Result<Vec<LogSource>, StoreError> {
        Ok(lock(&self.sources)
            .values()
            .take(super::MAX_LOG_SOURCES)
            .cloned()
            .collect())
    }

    async fn claim_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut sources = lock(&self.sources);
        let Some(stored) = sources.get_mut(&source.account) else {
            return Ok(false);
        };
        let claimed = super::may_claim_notice(stored, source, status, attempt, now);
        if claimed {
            stored.claim = Some((attempt.to_string(), now));
        }
        Ok(claimed)
    }

    async fn finish_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        delivered: bool,
    ) -> Result<(), StoreError> {
        let mut sources = lock(&self.sources);
        if let Some(stored) = sources.get_mut(&source.account) {
            if stored.claim.as_ref().is_some_and(|(a, _)| a == attempt) {
                stored.claim = None;
                if delivered {
                    stored.silent_since = match status {
                        SourceStatus::Silent => Some(source.last_seen),
                        SourceStatus::Resumed => None,
                    };
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sweep_reads_a_bounded_number_of_log_sources() {
        let store = MemoryStore::new();
        for i in 0..=super::super::MAX_LOG_SOURCES {
            store
                .source_seen(&format!("{:012}:us-east-1", 100_000_000_000 + i), 0)
                .await
                .expect("seen");
        }
        let sources = store.log_sources().await.expect("sources");
        assert_eq!(sources.len(), super::super::MAX_LOG_SOURCES);
        assert_eq!(
            sources[0].account, "100000000000:us-east-1",
            "the first, in order"
        );
    }
}
