//! One object's denials as per-(key, bucket) counts, so the store sees one update per
//! distinct (key, bucket) and not one per record, plus the evidence the alert shows.
//!
//! Memory and work per object are bounded whatever the content (docs/DESIGN.md,
//! "Bounded memory"): at most [`MAX_KEYS_PER_OBJECT`] keys and
//! [`MAX_COUNTERS_PER_OBJECT`] (key, bucket) counters are held. Past a limit the keys
//! with the fewest denials so far are let go, so a flood of keys denied once or twice
//! cannot push a principal that is hammering out of the count; what is let go is
//! reported ([`OverLimit`]).
//! [`crate::reader::Reader`] fills one aggregate per object.

use crate::arn::{principal_without_session, without_session};
use crate::calls::{tell, Calls, MAX_CALLS_PER_COUNTER};
use crate::key::{call_number, DenialKey, RuleTag};
use crate::logs::{Denial, DenialContext};
use crate::model::normalize_model;
use crate::rule::{self, RuleSet};
use crate::store::Members;
use crate::window::{Bucket, WindowSpec};
use std::collections::BTreeMap;

/// Request ids kept per key as evidence in the alert.
pub const MAX_REQUEST_IDS: usize = 20;
/// Distinct values kept per evidence field (source IPs, user agents, ...).
pub const MAX_CONTEXT_VALUES: usize = 5;
/// Distinct keys of one object held at once. A log object holds minutes of one
/// account's calls; thousands of distinct principals denied within it is far beyond
/// real traffic, and each key costs store requests.
pub const MAX_KEYS_PER_OBJECT: usize = 4000;
/// Distinct (key, bucket) counters of one object held at once: each is one conditional
/// store write, so this bounds what one object can cost the table (docs/DESIGN.md,
/// "Alert ceilings"). A real object spans minutes: one or two buckets per key.
pub const MAX_COUNTERS_PER_OBJECT: usize = 5_000;
/// Buckets of one key in one object (two weeks of 10-minute buckets is 2016).
pub const MAX_BUCKETS_PER_KEY: usize = 2_016;
/// Groups of the rules that count distinct values held for one object, and their
/// (group, bucket) sets: each set is one store write, so this bounds what those rules
/// add to an object's cost. Past it, new groups are not taken (and counted).
pub const MAX_DISTINCT_ITEMS_PER_OBJECT: usize = 1_000;
/// Calls tracked per object in all, bounding the memory the tracking takes.
pub const MAX_TRACKED_CALLS_PER_OBJECT: usize = 5_000;
/// Share of the keys let go at once when a limit is reached: the ones with the fewest
/// denials, so the work of letting go stays small per denial.
const EVICT_SHARE: usize = 10;

/// Distinct context values of one key's denials, first seen first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextValues {
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub error_messages: Vec<String>,
    pub regions: Vec<String>,
    pub operations: Vec<String>,
}

impl ContextValues {
    pub fn add(&mut self, c: DenialContext) {
        for (list, value) in [
            (&mut self.source_ips, c.source_ip),
            (&mut self.user_agents, c.user_agent),
            (&mut self.error_messages, c.error_message),
            (&mut self.regions, c.region),
            (&mut self.operations, c.operation),
        ] {
            // Values arrive cut to their display length (logs::record).
            if let Some(v) = value.filter(|_| list.len() < MAX_CONTEXT_VALUES) {
                if !list.contains(&v) {
                    list.push(v);
                }
            }
        }
    }
}

/// One key's denials in one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyDenials {
    pub buckets: BTreeMap<Bucket, u64>,
    /// The calls of each bucket, by request id, for counting each call once across
    /// the two logs.
    pub calls: BTreeMap<Bucket, Calls>,
    /// The first [`MAX_REQUEST_IDS`] distinct request ids, in log order.
    pub request_ids: Vec<String>,
    pub context: ContextValues,
}

impl KeyDenials {
    /// Denials of this key in the object.
    pub fn total(&self) -> u64 {
        self.buckets.values().sum()
    }
}

/// What an object held beyond the limits, and so was not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OverLimit {
    /// Denials not counted: of keys let go, or of a key's buckets past its limit.
    pub denials: u64,
    /// Keys let go (a key let go and seen again counts again).
    pub keys: u64,
}

/// One group of a rule that counts distinct values, in one object: its denials (for
/// the evidence) and its sets per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinctDenials {
    pub denials: KeyDenials,
    pub members: BTreeMap<Bucket, Members>,
}

/// One object's denials, by key (ordered, so processing order is reproducible).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub keys: BTreeMap<DenialKey, KeyDenials>,
    /// (key, bucket) counters held.
    counters: usize,
    /// Calls tracked, in every (key, bucket).
    tracked_calls: usize,
    pub over_limit: OverLimit,
    /// The groups of the rules that count distinct values (docs/DESIGN.md, "Rules").
    pub distinct: BTreeMap<DenialKey, DistinctDenials>,
    /// (group, bucket) sets held.
    distinct_items: usize,
    /// Denials those rules did not take, past [`MAX_DISTINCT_ITEMS_PER_OBJECT`].
    pub distinct_over_limit: u64,
}

impl Aggregate {
    pub fn add(&mut self, denial: Denial, spec: &WindowSpec) {
        let bucket = spec.bucket_of(denial.event_time);
        let held = self.keys.get(&denial.key).map(|k| &k.buckets);
        if held.is_some_and(|b| !b.contains_key(&bucket) && b.len() >= MAX_BUCKETS_PER_KEY) {
            self.over_limit.denials += 1;
            return;
        }
        let new_key = held.is_none();
        let new_counter = held.is_none_or(|b| !b.contains_key(&bucket));
        if new_counter
            && (self.counters >= MAX_COUNTERS_PER_OBJECT
                || (new_key && self.keys.len() >= MAX_KEYS_PER_OBJECT))
        {
            // Frees at least one key and its counters; this key may be among them,
            // and then starts again from this denial.
            self.let_go_of_the_least_denied();
        }
        let entry = self.keys.entry(denial.key).or_default();
        let count = entry.buckets.entry(bucket).or_insert(0);
        if *count == 0 {
            self.counters += 1;
        }
        *count += 1;
        if let Some(id) = denial.request_id.as_deref().filter(|id| !id.is_empty()) {
            let calls = entry.calls.entry(bucket).or_default();
            let n = call_number(id);
            let room = calls.len() < MAX_CALLS_PER_COUNTER
                && self.tracked_calls < MAX_TRACKED_CALLS_PER_OBJECT;
            if tell(calls, n, denial.source, 1, room) {
                self.tracked_calls += 1;
            }
        }
        if let Some(id) = denial.request_id {
            if entry.request_ids.len() < MAX_REQUEST_IDS && !entry.request_ids.contains(&id) {
                entry.request_ids.push(id);
            }
        }
        entry.context.add(denial.context);
    }

    /// Takes one record read: a denial for the seed rule (`spec` its buckets) and the
    /// rules in `rules` that count distinct values, a validation error for the
    /// validation rule, keyed by (user.id, account) in its one-minute buckets.
    pub fn take(&mut self, denial: Denial, spec: &WindowSpec, rules: &RuleSet) {
        if denial.validation {
            let mut d = denial;
            d.key =
                DenialKey::new(d.key.user_id, "", d.key.account_id).for_rule(RuleTag::Validation);
            return self.add(d, &rule::VALIDATION.spec());
        }
        self.add_distinct(&denial, rules);
        self.add(denial, spec)
    }

    /// Adds a denial to the groups of the rules in `rules` that count distinct values:
    /// a role's sessions per normalized model, and a principal's normalized models.
    pub fn add_distinct(&mut self, denial: &Denial, rules: &RuleSet) {
        let key = &denial.key;
        let model = normalize_model(&key.model_id);
        let call = denial.request_id.as_deref().unwrap_or("");
        let region = denial.context.region.as_deref();
        if rules.has(RuleTag::RoleSessions) {
            if let Some((role, session)) = without_session(&key.user_id) {
                let group =
                    DenialKey::new(role, model, &key.account_id).for_rule(RuleTag::RoleSessions);
                self.add_to_group(group, denial, |m| m.add(call, session, region));
            }
        }
        if rules.has(RuleTag::ManyModels) {
            let principal = principal_without_session(&key.user_id);
            let group =
                DenialKey::new(principal, "", &key.account_id).for_rule(RuleTag::ManyModels);
            self.add_to_group(group, denial, |m| m.add(call, model, region));
        }
    }

    fn add_to_group(&mut self, group: DenialKey, denial: &Denial, add: impl FnOnce(&mut Members)) {
        let spec = rule::rule(group.rule).spec();
        let bucket = spec.bucket_of(denial.event_time);
        let held = self
            .distinct
            .get(&group)
            .is_some_and(|g| g.members.contains_key(&bucket));
        if !held {
            if self.distinct_items >= MAX_DISTINCT_ITEMS_PER_OBJECT {
                self.distinct_over_limit += 1;
                return;
            }
            self.distinct_items += 1;
        }
        let entry = self.distinct.entry(group).or_default();
        add(entry.members.entry(bucket).or_default());
        let d = &mut entry.denials;
        *d.buckets.entry(bucket).or_insert(0) += 1;
        if let Some(id) = &denial.request_id {
            if d.request_ids.len() < MAX_REQUEST_IDS && !d.request_ids.contains(id) {
                d.request_ids.push(id.clone());
            }
        }
        d.context.add(denial.context.clone());
    }

    /// Lets go of the tenth of the keys with the fewest denials (at least one key).
    fn let_go_of_the_least_denied(&mut self) {
        let mut by_total: Vec<(u64, &DenialKey)> =
            self.keys.iter().map(|(k, d)| (d.total(), k)).collect();
        let n = (by_total.len() / EVICT_SHARE).max(1).min(by_total.len());
        if n == 0 {
            return;
        }
        by_total.select_nth_unstable_by_key(n - 1, |(total, _)| *total);
        let gone: Vec<DenialKey> = by_total[..n].iter().map(|(_, k)| (*k).clone()).collect();
        for key in gone {
            if let Some(d) = self.keys.remove(&key) {
                self.over_limit.denials += d.total();
                self.over_limit.keys += 1;
                self.counters -= d.buckets.len();
                self.tracked_calls -= d.calls.values().map(|c| c.len()).sum::<usize>();
            }
        }
    }

    /// Number of distinct (key, bucket) pairs: the counter updates this object needs.
    pub fn updates(&self) -> usize {
        self.keys.values().map(|k| k.buckets.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Total denials in the aggregate.
    pub fn denials(&self) -> u64 {
        self.keys.values().flat_map(|k| k.buckets.values()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::RecordKind;

    fn denial(user: &str, t: i64, req: &str) -> Denial {
        Denial {
            key: DenialKey::new(user, "m", "1"),
            validation: false,
            event_time: t,
            request_id: Some(req.to_string()),
            source: RecordKind::BedrockInvocationLog,
            context: DenialContext {
                source_ip: Some(format!("10.0.0.{}", t % 10)),
                region: Some("us-east-1".into()),
                ..DenialContext::default()
            },
        }
    }

    #[test]
    fn groups_by_key_and_bucket() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        a.add(denial("u1", 0, "r1"), &spec);
        a.add(denial("u1", 599, "r1"), &spec);
        a.add(denial("u1", 600, "r2"), &spec);
        a.add(denial("u2", 0, "r3"), &spec);
        assert_eq!(a.keys.len(), 2);
        assert_eq!(a.updates(), 3);
        assert_eq!(a.denials(), 4);
        let u1 = &a.keys[&DenialKey::new("u1", "m", "1")];
        assert_eq!(u1.buckets, BTreeMap::from([(0, 2), (1, 1)]));
        assert_eq!(u1.request_ids, vec!["r1", "r2"]);
        assert_eq!(u1.context.source_ips, vec!["10.0.0.0", "10.0.0.9"]);
        assert_eq!(u1.context.regions, vec!["us-east-1"]);
    }

    #[test]
    fn evidence_is_bounded() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        for i in 0..1000 {
            let mut d = denial("u", i, &format!("r{i}"));
            d.context.user_agent = Some(format!("agent-{i}"));
            a.add(d, &spec);
        }
        let k = &a.keys[&DenialKey::new("u", "m", "1")];
        assert_eq!(k.request_ids.len(), MAX_REQUEST_IDS);
        assert_eq!(k.buckets.values().sum::<u64>(), 1000);
        assert_eq!(k.context.source_ips.len(), MAX_CONTEXT_VALUES);
        assert_eq!(k.context.user_agents.len(), MAX_CONTEXT_VALUES);
    }

    #[test]
    fn a_flood_of_keys_cannot_push_out_the_one_hammering() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        // The attacker's burst comes first, then a flood of keys denied once each.
        for i in 0..10 {
            a.add(denial("attacker", i, "r"), &spec);
        }
        let flood = 3 * MAX_KEYS_PER_OBJECT;
        for i in 0..flood {
            a.add(denial(&format!("noise-{i}"), 0, "r"), &spec);
        }
        // And the burst goes on after the flood.
        for i in 10..14 {
            a.add(denial("attacker", i, "r"), &spec);
        }
        assert!(a.keys.len() <= MAX_KEYS_PER_OBJECT);
        let attacker = &a.keys[&DenialKey::new("attacker", "m", "1")];
        assert_eq!(
            attacker.total(),
            14,
            "every denial of the hammering key counts"
        );
        let counted: u64 = a.denials();
        assert_eq!(
            counted + a.over_limit.denials,
            14 + flood as u64,
            "every denial is counted or reported"
        );
        assert!(a.over_limit.keys as usize >= flood - MAX_KEYS_PER_OBJECT);
    }

    #[test]
    fn the_other_rules_groups_of_an_object_are_bounded() {
        let spec = WindowSpec::new(10, 6);
        let rules = RuleSet::default();
        let mut a = Aggregate::default();
        // A new principal on every line: one model-rule group each.
        let flood = 3 * MAX_DISTINCT_ITEMS_PER_OBJECT;
        for i in 0..flood {
            a.take(
                denial(&format!("arn:aws:iam::1:user/u{i}"), 0, "r"),
                &spec,
                &rules,
            );
        }
        let items: usize = a.distinct.values().map(|g| g.members.len()).sum();
        assert_eq!(items, MAX_DISTINCT_ITEMS_PER_OBJECT);
        assert_eq!(
            a.distinct_over_limit,
            (flood - MAX_DISTINCT_ITEMS_PER_OBJECT) as u64,
            "every denial not taken is counted"
        );
        assert_eq!(a.denials(), flood as u64, "the seed rule takes them all");
    }

    #[test]
    fn the_calls_an_object_tracks_are_bounded() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        // A new request id on every line: 40 calls in each of 200 buckets of one key.
        for b in 0..200 {
            for c in 0..40 {
                a.add(denial("u", b * 600 + c, &format!("r{b}-{c}")), &spec);
            }
        }
        let k = &a.keys[&DenialKey::new("u", "m", "1")];
        assert!(k.calls.values().all(|c| c.len() <= MAX_CALLS_PER_COUNTER));
        let tracked: usize = k.calls.values().map(|c| c.len()).sum();
        assert_eq!(tracked, MAX_TRACKED_CALLS_PER_OBJECT);
        assert_eq!(a.denials(), 200 * 40, "every record still counts");
    }

    #[test]
    fn counters_and_buckets_per_key_are_bounded() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        // One key spread over more buckets than it may hold.
        for i in 0..(MAX_BUCKETS_PER_KEY as i64 + 5) {
            a.add(denial("spread", i * 600, "r"), &spec);
        }
        let k = &a.keys[&DenialKey::new("spread", "m", "1")];
        assert_eq!(k.buckets.len(), MAX_BUCKETS_PER_KEY);
        assert_eq!(a.over_limit.denials, 5);
        // Many keys with many buckets: the counters stay within their limit.
        let mut a = Aggregate::default();
        for u in 0..100 {
            for i in 0..1000 {
                a.add(denial(&format!("u{u}"), i * 600, "r"), &spec);
            }
        }
        assert!(a.updates() <= MAX_COUNTERS_PER_OBJECT, "{}", a.updates());
        assert_eq!(a.denials() + a.over_limit.denials, 100_000);
    }
}
