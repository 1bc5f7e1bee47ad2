//! What a rule that counts distinct values keeps of one (key, bucket), and its one
//! pure decision over a window of them (docs/DESIGN.md, "Distinct counting").

use super::{Rule, RuleTag, MIN_SESSIONS};
use crate::exceptions::ExceptionRule;
use crate::window::{Bucket, WindowSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Longest member kept as written in a distinct set; a longer one (hostile content: an
/// AWS session name is at most 64 characters, a model id at most 2048) is kept as its
/// first [`MEMBER_HEAD_BYTES`] bytes and a digest of the whole, so it stays distinct.
pub const MAX_MEMBER_BYTES: usize = 128;
pub const MEMBER_HEAD_BYTES: usize = 64;
/// Values kept per set of one (key, bucket): the rules fire on a few (more than 3
/// models; 2 sessions), and the alert lists what was kept.
pub const MAX_VALUES: usize = 16;
/// Calls (request ids) kept per (key, bucket): a count past this is "at least".
pub const MAX_CALLS: usize = 32;

/// What a rule that counts distinct values keeps of one (key, bucket) (docs/DESIGN.md,
/// "Distinct counting"): sets, so adding what is there already changes nothing, and
/// each bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// The denied calls, by a digest of their request id (16 hex digits): one call,
    /// one count, whichever log told it.
    pub calls: BTreeSet<String>,
    /// The values the rule counts: sessions (a role's) or normalized models.
    pub values: BTreeSet<String>,
    /// Regions the calls were made in, for the alert.
    pub regions: BTreeSet<String>,
}

impl Members {
    /// Adds one denied call, within the bounds.
    pub fn add(&mut self, call: &str, value: &str, region: Option<&str>) {
        insert(&mut self.calls, &crate::key::call_id(call), MAX_CALLS);
        insert(&mut self.values, value, MAX_VALUES);
        if let Some(r) = region {
            insert(&mut self.regions, r, MAX_VALUES);
        }
    }

    /// Adds every member of `other` (a union over buckets, unbounded past the sizes
    /// each bucket brings).
    pub fn union(&mut self, other: &Members) {
        self.calls.extend(other.calls.iter().cloned());
        self.values.extend(other.values.iter().cloned());
        self.regions.extend(other.regions.iter().cloned());
    }

    /// `other` without what `self` already holds, within `self`'s room: what writing
    /// it may still add.
    pub fn missing_from(&self, other: &Members) -> Members {
        let room = |have: &BTreeSet<String>, new: &BTreeSet<String>, max: usize| {
            new.difference(have)
                .take(max.saturating_sub(have.len()))
                .cloned()
                .collect()
        };
        Members {
            calls: room(&self.calls, &other.calls, MAX_CALLS),
            values: room(&self.values, &other.values, MAX_VALUES),
            regions: room(&self.regions, &other.regions, MAX_VALUES),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.values.is_empty() && self.regions.is_empty()
    }
}

fn insert(set: &mut BTreeSet<String>, value: &str, max: usize) {
    if set.len() < max && !set.contains(bounded_member(value).as_ref()) {
        set.insert(bounded_member(value).into_owned());
    }
}

/// A member as a set keeps it: as written up to [`MAX_MEMBER_BYTES`], else cut and
/// marked with the digest of the whole.
pub fn bounded_member(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_MEMBER_BYTES {
        return value.into();
    }
    format!(
        "{}...[{} bytes, sha256 {}]",
        crate::text::prefix_bytes(value, MEMBER_HEAD_BYTES),
        value.len(),
        &crate::key::sha256_hex(value.as_bytes())[..16]
    )
    .into()
}

/// What a distinct rule decides for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistinctDecision {
    Quiet,
    /// A window fires, but an exception rule stops the key's alerts.
    Excepted {
        calls: u64,
    },
    /// The window to alert on (named by its last bucket) and what it holds.
    Alert {
        end: Bucket,
        union: Members,
        threshold: u64,
    },
}

/// Does `union` (a window's sets) fire `rule` at `threshold`?
pub fn fires(rule: &Rule, union: &Members, threshold: u64) -> bool {
    match rule.tag {
        RuleTag::RoleSessions => {
            union.calls.len() as u64 > threshold && union.values.len() >= MIN_SESSIONS
        }
        RuleTag::ManyModels => union.values.len() as u64 > threshold,
        RuleTag::Seed | RuleTag::Validation => false,
    }
}

/// The rule's decision for a key whose sets were read, given the buckets this object
/// touched: the first window (the earliest) containing a touched bucket that fires,
/// unless an exception without a threshold stops it; an exception's threshold
/// replaces `threshold`.
pub fn decide_distinct(
    rule: &Rule,
    spec: &WindowSpec,
    stored: &BTreeMap<Bucket, Members>,
    touched: &BTreeSet<Bucket>,
    exception: Option<&ExceptionRule>,
    threshold: u64,
) -> DistinctDecision {
    let threshold = exception.and_then(|r| r.threshold).unwrap_or(threshold);
    for end in spec.window_ends(touched) {
        let mut union = Members::default();
        for (_, m) in stored.range(spec.window_first(end)..=end) {
            union.union(m);
        }
        if !fires(rule, &union, threshold) {
            continue;
        }
        if exception.is_some_and(|r| r.threshold.is_none()) {
            return DistinctDecision::Excepted {
                calls: union.calls.len() as u64,
            };
        }
        return DistinctDecision::Alert {
            end,
            union,
            threshold,
        };
    }
    DistinctDecision::Quiet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{MANY_MODELS, ROLE_SESSIONS};

    fn members(calls: &[&str], values: &[&str]) -> Members {
        let mut m = Members::default();
        for (i, c) in calls.iter().enumerate() {
            m.add(c, values[i % values.len()], Some("us-east-1"));
        }
        m
    }

    #[test]
    fn the_model_rule_fires_past_three_models_in_one_window() {
        let spec = MANY_MODELS.spec();
        let mut stored: BTreeMap<Bucket, Members> = [
            (100, members(&["r1", "r2"], &["m1", "m2"])),
            (103, members(&["r3"], &["m3"])),
            (106, members(&["r4"], &["m4"])),
        ]
        .into();
        for touched in [103, 106] {
            assert_eq!(
                decide_distinct(&MANY_MODELS, &spec, &stored, &[touched].into(), None, 3),
                DistinctDecision::Quiet,
                "no 60 minutes hold four models"
            );
        }
        stored.insert(105, members(&["r5"], &["m5"]));
        let DistinctDecision::Alert { end, union, .. } =
            decide_distinct(&MANY_MODELS, &spec, &stored, &[105].into(), None, 3)
        else {
            panic!("m1, m2, m3 and m5 are within 100..=105");
        };
        assert_eq!((end, union.values.len(), union.calls.len()), (105, 4, 4));
        assert_eq!(
            decide_distinct(&MANY_MODELS, &spec, &stored, &[105].into(), None, 4),
            DistinctDecision::Quiet
        );
    }

    #[test]
    fn the_role_rule_needs_more_than_three_calls_and_two_sessions() {
        let spec = ROLE_SESSIONS.spec();
        let one_session: BTreeMap<Bucket, Members> =
            [(5, members(&["a", "b", "c", "d", "e"], &["s1"]))].into();
        assert_eq!(
            decide_distinct(&ROLE_SESSIONS, &spec, &one_session, &[5].into(), None, 3),
            DistinctDecision::Quiet
        );
        let two: BTreeMap<Bucket, Members> =
            [(5, members(&["a", "b", "c", "d"], &["s1", "s2"]))].into();
        assert!(matches!(
            decide_distinct(&ROLE_SESSIONS, &spec, &two, &[5].into(), None, 3),
            DistinctDecision::Alert { .. }
        ));
        let three_calls: BTreeMap<Bucket, Members> =
            [(5, members(&["a", "b", "c"], &["s1", "s2", "s3"]))].into();
        assert_eq!(
            decide_distinct(&ROLE_SESSIONS, &spec, &three_calls, &[5].into(), None, 3),
            DistinctDecision::Quiet
        );
    }

    #[test]
    fn sets_stay_bounded_and_adding_twice_adds_nothing() {
        let mut m = Members::default();
        for i in 0..1000 {
            m.add(
                &format!("r{i}"),
                &format!("v{i}"),
                Some(&format!("region-{i}")),
            );
        }
        assert_eq!(m.calls.len(), MAX_CALLS);
        assert_eq!(m.values.len(), MAX_VALUES);
        assert_eq!(m.regions.len(), MAX_VALUES);
        let before = m.clone();
        m.add("r0", "v0", Some("region-0"));
        assert_eq!(m, before);
        let long = "x".repeat(10_000);
        assert!(bounded_member(&long).len() < MAX_MEMBER_BYTES);
        assert_ne!(bounded_member(&long), bounded_member(&format!("{long}y")));
        let full = m.missing_from(&members(&["new"], &["new"]));
        assert!(full.is_empty(), "no room left: {full:?}");
    }
}
