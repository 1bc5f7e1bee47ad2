//! The tuning table: the scan's record replayed with the detector's own decisions, for
//! many thresholds and windows in one pass (docs/DESIGN.md, "The investigator's
//! report").
//!
//! Each object's entries are applied to the counters in counting order, as the store
//! applied them; then, for every setting, each key the object touched is decided as
//! the detector decides it: [`WindowSpec::query_range`], then the rule's one decision
//! ([`crate::rule::decide`]) over the counts read with the key's exception rule from
//! [`Exceptions::rule_for`](crate::exceptions::Exceptions::rule_for), and the
//! claim through the in-memory store `scan` counts in ([`MemoryStore::claim_alert`],
//! whose policy is [`decide_claim`](crate::store::decide_claim), then
//! [`MemoryStore::mark_alert_sent`]), so suppression, and how the last sent window
//! is kept, are the store's own. The counters do not depend on the setting, so they
//! are kept once; each setting has its own alert state.

use super::collect::{Collector, KeyId, Record};
use crate::config::Config;
use crate::detector::CLAIM_LEASE_SECONDS;
use crate::exceptions::ExceptionRule;
use crate::key::{DenialKey, RuleTag};
use crate::rule::distinct::{decide_distinct, DistinctDecision};
use crate::rule::Decision;
use crate::store::memory::MemoryStore;
use crate::store::{AlertClaim, AlertClaims, ClaimOutcome, Members};
use crate::window::{Bucket, WindowSpec, WindowTotal};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Thresholds of the tuning table (and the configured one).
pub const THRESHOLDS: [u64; 7] = [1, 2, 3, 5, 10, 20, 50];
/// Windows of the tuning table in minutes (and the configured one).
pub const WINDOW_MINUTES: [u32; 3] = [30, 60, 120];
/// The longest window the configuration accepts, in buckets.
const MAX_WINDOW_BUCKETS: u32 = 1000;

/// One setting to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub threshold: u64,
    pub window_buckets: u32,
    /// Apply the configured exception rules.
    pub exceptions: bool,
    /// Keep the list of alerts (else only their numbers).
    pub list: bool,
}

/// An alert the replay raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedAlert {
    pub key: KeyId,
    pub window: WindowTotal,
    pub threshold: u64,
}

/// What one setting gives, in the detector's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub published: u64,
    pub suppressed: u64,
    pub excepted: u64,
    /// Distinct keys with an alert.
    pub keys: u64,
    /// The alerts in order, when the setting asked for them.
    pub alerts: Vec<ReplayedAlert>,
    /// Suppressed alerts per key, when the setting asked for its alerts.
    pub suppressed_by_key: HashMap<KeyId, u64>,
}

/// The replay's one attempt: each claim it makes is marked sent at once.
const ATTEMPT: &str = "report";

/// One rule's record, as the replay reads it.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub rule: RuleTag,
    pub keys: &'a [DenialKey],
    pub record: &'a Record,
    /// Each entry's sets, for a rule that counts distinct values.
    pub members: &'a [Members],
    pub bucket_minutes: u32,
    pub suppress_seconds: i64,
}

impl<'a> RuleInput<'a> {
    /// The seed rule's record, whose keys are `keys` ([`seed_keys`]).
    pub fn seed(collector: &'a Collector, config: &Config, keys: &'a [DenialKey]) -> Self {
        Self {
            rule: RuleTag::Seed,
            keys,
            record: collector.record(),
            members: &[],
            bucket_minutes: config.bucket_minutes,
            suppress_seconds: config.suppress_seconds(),
        }
    }
}

/// The seed rule's keys, in the collector's order.
fn seed_keys(collector: &Collector) -> Vec<DenialKey> {
    collector.keys().iter().map(|k| k.key.clone()).collect()
}

/// Replays the seed rule's record once for every setting; outcomes in the order of
/// `settings`. `now` is the time exception rules are judged at (their `until`).
pub async fn replay(
    collector: &Collector,
    config: &Config,
    now: i64,
    settings: &[Setting],
) -> Vec<Outcome> {
    let keys = seed_keys(collector);
    replay_rule(
        &RuleInput::seed(collector, config, &keys),
        config,
        now,
        settings,
    )
    .await
}

/// What a key holds in the replay: counts per bucket, or a distinct rule's sets.
#[derive(Debug, Clone, Default)]
struct Held {
    counts: BTreeMap<Bucket, u64>,
    sets: BTreeMap<Bucket, Members>,
}

/// Replays one rule's record once for every setting, with that rule's decision.
pub async fn replay_rule(
    input: &RuleInput<'_>,
    config: &Config,
    now: i64,
    settings: &[Setting],
) -> Vec<Outcome> {
    let rule_value = crate::rule::rule(input.rule);
    let distinct = matches!(input.rule, RuleTag::RoleSessions | RuleTag::ManyModels);
    let rules: Vec<Option<&ExceptionRule>> = input
        .keys
        .iter()
        .map(|k| config.exceptions.rule_for(k, now))
        .collect();
    let specs: Vec<WindowSpec> = settings
        .iter()
        .map(|s| WindowSpec::new(input.bucket_minutes, s.window_buckets))
        .collect();
    let mut held: Vec<Held> = vec![Held::default(); input.keys.len()];
    // Alert state per setting, keyed by a short stand-in for each key.
    let states: Vec<MemoryStore> = settings.iter().map(|_| MemoryStore::new()).collect();
    let mut alerted: Vec<BTreeSet<KeyId>> = vec![BTreeSet::new(); settings.len()];
    let mut outcomes = vec![Outcome::default(); settings.len()];
    for (start, object) in input.record.objects_at() {
        let mut at = start;
        for group in object.chunk_by(|a, b| a.key == b.key) {
            let key = group[0].key;
            let stored = &mut held[key as usize];
            let mut touched = BTreeSet::new();
            for e in group {
                touched.insert(e.bucket);
                if e.count > 0 {
                    *stored.counts.entry(e.bucket).or_insert(0) += e.count;
                }
                if let Some(m) = input.members.get(at).filter(|_| distinct) {
                    stored.sets.entry(e.bucket).or_default().union(m);
                }
                at += 1;
            }
            let stand_in = DenialKey::new(key.to_string(), "", "");
            // What the detector's query returns, once per window width.
            let mut read: HashMap<u32, BTreeMap<Bucket, u64>> = HashMap::new();
            let mut read_sets: HashMap<u32, BTreeMap<Bucket, Members>> = HashMap::new();
            for (i, setting) in settings.iter().enumerate() {
                let spec = &specs[i];
                let Some((first, last)) = spec.query_range(&touched) else {
                    continue;
                };
                let rule = if setting.exceptions {
                    rules[key as usize]
                } else {
                    None
                };
                let outcome = &mut outcomes[i];
                let (window, threshold) = if distinct {
                    let sets = read_sets.entry(setting.window_buckets).or_insert_with(|| {
                        stored
                            .sets
                            .range(first..=last)
                            .map(|(b, m)| (*b, m.clone()))
                            .collect()
                    });
                    match decide_distinct(rule_value, spec, sets, &touched, rule, setting.threshold)
                    {
                        DistinctDecision::Quiet => continue,
                        DistinctDecision::Excepted { .. } => {
                            outcome.excepted += 1;
                            continue;
                        }
                        DistinctDecision::Alert {
                            end,
                            union,
                            threshold,
                        } => {
                            let total = union.calls.len() as u64;
                            (WindowTotal { end, total }, threshold)
                        }
                    }
                } else {
                    let counts = read.entry(setting.window_buckets).or_insert_with(|| {
                        stored
                            .counts
                            .range(first..=last)
                            .map(|(b, n)| (*b, *n))
                            .collect()
                    });
                    match crate::rule::decide(spec, counts, &touched, rule, setting.threshold) {
                        Decision::Quiet => continue,
                        Decision::Excepted { .. } => {
                            outcome.excepted += 1;
                            continue;
                        }
                        Decision::Alert { window, threshold } => (window, threshold),
                    }
                };
                let claim = AlertClaim {
                    object_token: String::new(),
                    attempt: ATTEMPT.to_string(),
                    window_end: spec.window_bounds(window.end).1,
                    suppress_seconds: input.suppress_seconds,
                    lease_seconds: CLAIM_LEASE_SECONDS,
                    now,
                    expires_at: 0,
                };
                // The in-memory store cannot fail.
                match states[i].claim_alert(&stand_in, &claim).await {
                    Ok(ClaimOutcome::Claimed { .. }) => {
                        let _ = states[i].mark_alert_sent(&stand_in, &claim).await;
                        outcome.published += 1;
                        alerted[i].insert(key);
                        if setting.list {
                            outcome.alerts.push(ReplayedAlert {
                                key,
                                window,
                                threshold,
                            });
                        }
                    }
                    Ok(ClaimOutcome::Suppressed { .. }) => {
                        outcome.suppressed += 1;
                        if setting.list {
                            *outcome.suppressed_by_key.entry(key).or_insert(0) += 1;
                        }
                    }
                    // Every claim here is marked sent at once: none is ever pending.
                    Ok(ClaimOutcome::Busy { .. }) | Err(_) => {}
                }
            }
        }
    }
    for (outcome, keys) in outcomes.iter_mut().zip(&alerted) {
        outcome.keys = keys.len() as u64;
    }
    outcomes
}

/// The tuning table: thresholds by windows, with and without the exception rules.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub thresholds: Vec<u64>,
    /// Window widths in buckets.
    pub windows: Vec<u32>,
    pub bucket_minutes: u32,
    pub configured_threshold: u64,
    pub configured_window: u32,
    /// Row-major: `with[t * windows.len() + w]`.
    pub with: Vec<Outcome>,
    /// The same without exception rules, when rules are configured.
    pub without: Option<Vec<Outcome>>,
    /// The other rules' tables (for the seed rule's), in the rules' order: `None` for
    /// a rule whose record was cut ([`MAX_REPLAYED_ENTRIES`](super::collect::MAX_REPLAYED_ENTRIES)).
    pub others: Vec<(RuleTag, Option<Tuning>)>,
}

/// Windows of the validation rule's tuning table, in minutes: its own minute, and wider.
pub const VALIDATION_WINDOW_MINUTES: [u32; 3] = [1, 5, 10];

impl Tuning {
    /// The seed rule's table, with the table of every other rule switched on.
    pub async fn compute(collector: &Collector, config: &Config, now: i64) -> Self {
        let keys = seed_keys(collector);
        let seed = RuleInput::seed(collector, config, &keys);
        let mut tuning = Self::grid(
            &seed,
            config,
            now,
            config.threshold,
            config.window_buckets,
            &WINDOW_MINUTES,
        )
        .await;
        let empty = Record::default();
        for tag in RuleTag::ALL.into_iter().filter(|t| *t != RuleTag::Seed) {
            if !config.rules.has(tag) {
                continue;
            }
            let rule = crate::rule::rule(tag);
            let record = collector.rule_record(tag);
            if record.is_some_and(|r| r.is_cut()) {
                tuning.others.push((tag, None));
                continue;
            }
            let settings = config.rule_settings(tag);
            let input = RuleInput {
                rule: tag,
                keys: record.map_or(&[], |r| r.keys()),
                record: record.map_or(&empty, |r| r.record()),
                members: record.map_or(&[], |r| r.members()),
                bucket_minutes: rule.bucket_minutes,
                suppress_seconds: settings.suppress_seconds,
            };
            let window =
                u32::try_from(settings.spec.window_buckets()).unwrap_or(rule.window_buckets);
            let minutes: &[u32] = if tag == RuleTag::Validation {
                &VALIDATION_WINDOW_MINUTES
            } else {
                &WINDOW_MINUTES
            };
            let t = Self::grid(&input, config, now, settings.threshold, window, minutes).await;
            tuning.others.push((tag, Some(t)));
        }
        tuning
    }

    /// One rule's table: [`THRESHOLDS`] and `threshold`, by `minutes` (in the rule's
    /// buckets, rounded up) and `window`.
    async fn grid(
        input: &RuleInput<'_>,
        config: &Config,
        now: i64,
        threshold: u64,
        window: u32,
        minutes: &[u32],
    ) -> Self {
        let mut thresholds: Vec<u64> = THRESHOLDS.to_vec();
        thresholds.push(threshold);
        thresholds.sort_unstable();
        thresholds.dedup();
        let bucket = input.bucket_minutes.max(1);
        let mut windows: Vec<u32> = minutes
            .iter()
            .map(|m| m.div_ceil(bucket).clamp(1, MAX_WINDOW_BUCKETS))
            .collect();
        windows.push(window);
        windows.sort_unstable();
        windows.dedup();
        let has_rules = input
            .keys
            .iter()
            .any(|k| config.exceptions.rule_for(k, now).is_some())
            || (input.rule == RuleTag::Seed && !config.exceptions.rules().is_empty());
        let mut settings = Vec::new();
        for exceptions in [true, false] {
            if !exceptions && !has_rules {
                continue;
            }
            for &t in &thresholds {
                for &window_buckets in &windows {
                    settings.push(Setting {
                        threshold: t,
                        window_buckets,
                        exceptions,
                        list: t == threshold && window_buckets == window,
                    });
                }
            }
        }
        let mut outcomes = replay_rule(input, config, now, &settings).await;
        let cells = thresholds.len() * windows.len();
        let without = (outcomes.len() > cells).then(|| outcomes.split_off(cells));
        Self {
            thresholds,
            windows,
            bucket_minutes: bucket,
            configured_threshold: threshold,
            configured_window: window,
            with: outcomes,
            without,
            others: Vec::new(),
        }
    }

    fn index(&self, threshold: u64, window: u32) -> Option<usize> {
        let t = self.thresholds.iter().position(|x| *x == threshold)?;
        let w = self.windows.iter().position(|x| *x == window)?;
        Some(t * self.windows.len() + w)
    }

    /// The cell of (threshold, window): with the rules, and without them if any.
    pub fn cell(&self, threshold: u64, window: u32) -> Option<(&Outcome, Option<&Outcome>)> {
        let i = self.index(threshold, window)?;
        Some((&self.with[i], self.without.as_ref().map(|w| &w[i])))
    }

    /// The configured setting: what this scan's detector did.
    pub fn configured(&self) -> (&Outcome, Option<&Outcome>) {
        let i = self
            .index(self.configured_threshold, self.configured_window)
            .unwrap_or(0);
        (&self.with[i], self.without.as_ref().map(|w| &w[i]))
    }
}
