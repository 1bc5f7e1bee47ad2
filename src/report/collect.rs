//! What the report keeps while `scan` counts: every counted object's per-(key,
//! bucket) counts in counting order (the record the tuning table replays), and per key
//! its totals per bucket and its evidence, each list bounded per key.

use crate::aggregate::{Aggregate, ContextValues};
use crate::calls::{CallTally, Calls};
use crate::identity::ObjectId;
use crate::key::{DenialKey, RuleTag};
use crate::store::Members;
use crate::window::Bucket;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Index of a key in [`Collector::keys`].
pub type KeyId = u32;

/// Distinct values kept per evidence field and key over the whole scan (the alert
/// keeps as many per object).
pub const MAX_EVIDENCE_VALUES: usize = crate::aggregate::MAX_CONTEXT_VALUES;
/// Log objects named per key.
pub const MAX_KEY_OBJECTS: usize = 5;
/// (group, bucket) entries kept per rule beside the seed rule for its tuning replay: a
/// rule that counts distinct values keeps each entry's sets (a few KB at most). Past
/// it, the rule is not replayed.
pub const MAX_REPLAYED_ENTRIES: usize = 20_000;

/// One key's denials in one bucket of one object, as the detector added them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: KeyId,
    pub bucket: Bucket,
    /// 0 when the object was counted before: the store then adds nothing, but the
    /// detector still evaluates the windows of the buckets it touched.
    pub count: u64,
}

/// Every counted object's entries, in counting order; within an object, grouped by
/// key in the detector's key order.
#[derive(Debug, Default)]
pub struct Record {
    entries: Vec<Entry>,
    /// End of each object's entries in `entries`.
    ends: Vec<usize>,
}

impl Record {
    /// Each object's entries, in counting order.
    pub fn objects(&self) -> impl Iterator<Item = &[Entry]> {
        self.objects_at().map(|(_, object)| object)
    }

    /// Each object's entries with the index of its first in the record.
    pub fn objects_at(&self) -> impl Iterator<Item = (usize, &[Entry])> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let object = (start, &self.entries[start..end]);
            start = end;
            object
        })
    }

    /// Objects with denials.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// One rule's record beside the seed rule's, for its tuning replay: its groups, each
/// counted object's (group, bucket) entries in counting order and, for a rule that
/// counts distinct values, each entry's sets.
#[derive(Debug, Default)]
pub struct RuleRecord {
    index: HashMap<DenialKey, KeyId>,
    keys: Vec<DenialKey>,
    record: Record,
    /// Each entry's sets (rules that count distinct values), in `record` order.
    members: Vec<Members>,
    /// The scan held more than [`MAX_REPLAYED_ENTRIES`] entries of the rule.
    cut: bool,
}

impl RuleRecord {
    pub fn keys(&self) -> &[DenialKey] {
        &self.keys
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Each entry's sets, for a rule that counts distinct values.
    pub fn members(&self) -> &[Members] {
        &self.members
    }

    /// Entries were let go past [`MAX_REPLAYED_ENTRIES`]: the record is not whole.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    fn key_id(&mut self, key: &DenialKey) -> KeyId {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        let id = KeyId::try_from(self.keys.len()).unwrap_or(KeyId::MAX);
        self.keys.push(key.clone());
        self.index.insert(key.clone(), id);
        id
    }

    /// One object's entries of this rule: (group, bucket, count, sets).
    fn add_object<'a>(
        &mut self,
        entries: impl Iterator<Item = (&'a DenialKey, Bucket, u64, Option<&'a Members>)>,
    ) {
        if self.cut {
            return;
        }
        let start = self.record.entries.len();
        for (key, bucket, count, members) in entries {
            if self.record.entries.len() >= MAX_REPLAYED_ENTRIES {
                self.cut = true;
                self.record.entries.truncate(start);
                self.members.truncate(start);
                return;
            }
            let key = self.key_id(key);
            self.record.entries.push(Entry { key, bucket, count });
            if let Some(m) = members {
                self.members.push(m.clone());
            }
        }
        if self.record.entries.len() > start {
            self.record.ends.push(self.record.entries.len());
        }
    }
}

/// Distinct values, first seen first, at most a fixed number of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub shown: Vec<String>,
    /// More distinct values were seen than are shown.
    pub more: bool,
}

impl Values {
    fn add(&mut self, value: &str, max: usize) {
        if self.shown.iter().any(|v| v == value) {
            return;
        }
        if self.shown.len() < max {
            self.shown.push(value.to_string());
        } else {
            self.more = true;
        }
    }
}

/// What the scan saw of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStats {
    pub key: DenialKey,
    pub denials: u64,
    /// Denials per bucket, as the store holds them at the end of the scan.
    pub buckets: BTreeMap<Bucket, u64>,
    pub source_ips: Values,
    pub user_agents: Values,
    pub error_messages: Values,
    pub regions: Values,
    pub operations: Values,
    /// Log objects with denials of this key.
    pub objects: Values,
    pub object_count: u64,
}

impl KeyStats {
    fn new(key: DenialKey) -> Self {
        Self {
            key,
            denials: 0,
            buckets: BTreeMap::new(),
            source_ips: Values::default(),
            user_agents: Values::default(),
            error_messages: Values::default(),
            regions: Values::default(),
            operations: Values::default(),
            objects: Values::default(),
            object_count: 0,
        }
    }

    fn add_context(&mut self, c: &ContextValues) {
        for (values, seen) in [
            (&mut self.source_ips, &c.source_ips),
            (&mut self.user_agents, &c.user_agents),
            (&mut self.error_messages, &c.error_messages),
            (&mut self.regions, &c.regions),
            (&mut self.operations, &c.operations),
        ] {
            for v in seen {
                values.add(v, MAX_EVIDENCE_VALUES);
            }
        }
    }
}

/// What the scan saw of one group of a rule beside the seed rule (a validation
/// rule's (user.id, account), a role's model, a principal): its denials (validation
/// errors, for the validation rule) counted and the objects that held them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub denials: u64,
    pub objects: u64,
}

/// Denials by one source IP. A log object lists the distinct IPs of one key's denials
/// (at most five) without a count per IP: the denials of a key in an object with one
/// IP are that IP's for sure, those of a key in an object with several are shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpStats {
    pub exact: u64,
    pub shared: u64,
    pub keys: HashSet<KeyId>,
}

/// Everything the report needs from the scan, fed one counted object at a time.
#[derive(Debug, Default)]
pub struct Collector {
    index: HashMap<DenialKey, KeyId>,
    keys: Vec<KeyStats>,
    record: Record,
    /// Tokens of the objects counted: the store counts a token once.
    tokens: HashSet<String>,
    source_ips: HashMap<String, IpStats>,
    /// First and last bucket with denials.
    span: Option<(Bucket, Bucket)>,
    /// The groups of the other rules, with what they counted.
    groups: HashMap<DenialKey, GroupStats>,
    /// The other rules' records, for their tuning replays.
    rule_records: BTreeMap<RuleTag, RuleRecord>,
    /// The calls of each (key, bucket) with request ids, so a call told by both logs
    /// counts once, as the store reads it (docs/DESIGN.md, "One call, one count").
    calls: HashMap<(DenialKey, Bucket), CallTally>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one object the detector counted (call it only once `count` succeeded: an
    /// object that failed counts nothing).
    pub fn add(&mut self, object: &ObjectId, aggregate: &Aggregate) {
        if aggregate.is_empty() {
            return;
        }
        let repeat = !self.tokens.insert(object.token.clone());
        self.add_rule_records(aggregate, repeat);
        // The key sections, top tables and this record are the seed rule's.
        let seed = aggregate
            .keys
            .iter()
            .filter(|(k, _)| k.rule == RuleTag::Seed);
        for (key, denials) in seed {
            let id = self.key_id(key);
            let counts: Vec<(Bucket, u64)> = denials
                .buckets
                .iter()
                .map(|(&bucket, &records)| {
                    let calls = denials.calls.get(&bucket);
                    (bucket, self.counted(key, bucket, records, calls, repeat))
                })
                .collect();
            let stats = &mut self.keys[id as usize];
            let mut added = 0;
            for (bucket, count) in counts {
                self.record.entries.push(Entry {
                    key: id,
                    bucket,
                    count,
                });
                if count > 0 {
                    *stats.buckets.entry(bucket).or_insert(0) += count;
                    added += count;
                    self.span = Some(match self.span {
                        None => (bucket, bucket),
                        Some((first, last)) => (first.min(bucket), last.max(bucket)),
                    });
                }
            }
            stats.add_context(&denials.context);
            if repeat {
                continue;
            }
            stats.denials += added;
            stats.object_count += 1;
            stats.objects.add(&object.uri, MAX_KEY_OBJECTS);
            let ips = &denials.context.source_ips;
            for ip in ips {
                let s = self.source_ips.entry(ip.clone()).or_default();
                if ips.len() == 1 {
                    s.exact += added;
                } else {
                    s.shared += added;
                }
                s.keys.insert(id);
            }
        }
        self.record.ends.push(self.record.entries.len());
    }

    /// What one object adds to (key, bucket), as a read of the store counts it: its
    /// records less those of calls the other log tells at least as often; nothing
    /// for an object counted before.
    fn counted(
        &mut self,
        key: &DenialKey,
        bucket: Bucket,
        records: u64,
        calls: Option<&Calls>,
        repeat: bool,
    ) -> u64 {
        if repeat {
            return 0;
        }
        let told_twice = match calls.filter(|c| !c.is_empty()) {
            Some(calls) => self
                .calls
                .entry((key.clone(), bucket))
                .or_default()
                .add(calls),
            None => 0,
        };
        records.saturating_sub(told_twice)
    }

    /// The other rules' entries of one object, as the detector added them: the
    /// validation rule's counts (one call counted once; none for an object counted
    /// before) and the distinct rules' sets (a union: the same again adds nothing,
    /// and their buckets are evaluated as the detector evaluates them); and what its
    /// groups counted, once per object.
    fn add_rule_records(&mut self, aggregate: &Aggregate, repeat: bool) {
        let mut counts = Vec::new();
        for (k, d) in aggregate
            .keys
            .iter()
            .filter(|(k, _)| k.rule != RuleTag::Seed)
        {
            for (&bucket, &records) in &d.buckets {
                let count = self.counted(k, bucket, records, d.calls.get(&bucket), repeat);
                counts.push((k, bucket, count, None));
            }
        }
        let sets = aggregate.distinct.iter().flat_map(|(k, g)| {
            g.members.iter().map(move |(&bucket, m)| {
                (
                    k,
                    bucket,
                    g.denials.buckets.get(&bucket).copied().unwrap_or(0),
                    Some(m),
                )
            })
        });
        let mut by_rule: BTreeMap<RuleTag, Vec<_>> = BTreeMap::new();
        let mut seen: HashSet<&DenialKey> = HashSet::new();
        for entry in counts.into_iter().chain(sets) {
            if !repeat {
                let g = self.groups.entry(entry.0.clone()).or_default();
                g.denials += entry.2;
                g.objects += u64::from(seen.insert(entry.0));
            }
            by_rule.entry(entry.0.rule).or_default().push(entry);
        }
        for (rule, entries) in by_rule {
            self.rule_records
                .entry(rule)
                .or_default()
                .add_object(entries.into_iter());
        }
    }

    /// The record of `rule` (another rule than the seed), if the scan saw it.
    pub fn rule_record(&self, rule: RuleTag) -> Option<&RuleRecord> {
        self.rule_records.get(&rule)
    }

    /// The groups of `rule` (another rule than the seed), most denied first.
    pub fn groups(&self, rule: RuleTag) -> Vec<(&DenialKey, &GroupStats)> {
        let mut out: Vec<_> = self.groups.iter().filter(|(k, _)| k.rule == rule).collect();
        out.sort_by(|a, b| b.1.denials.cmp(&a.1.denials).then_with(|| a.0.cmp(b.0)));
        out
    }

    fn key_id(&mut self, key: &DenialKey) -> KeyId {
        if let Some(&id) = self.index.get(key) {
            return id;
        }
        // More keys than u32 holds would take hundreds of GB of ids first.
        let id = KeyId::try_from(self.keys.len()).unwrap_or(KeyId::MAX);
        self.keys.push(KeyStats::new(key.clone()));
        self.index.insert(key.clone(), id);
        id
    }

    pub fn keys(&self) -> &[KeyStats] {
        &self.keys
    }

    pub fn key(&self, id: KeyId) -> &KeyStats {
        &self.keys[id as usize]
    }

    /// The id of a key the scan saw.
    pub fn find(&self, key: &DenialKey) -> Option<KeyId> {
        self.index.get(key).copied()
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn source_ips(&self) -> &HashMap<String, IpStats> {
        &self.source_ips
    }

    /// First and last bucket with denials.
    pub fn span(&self) -> Option<(Bucket, Bucket)> {
        self.span
    }

    /// Denials counted (repeated objects add none, as in the store).
    pub fn denials(&self) -> u64 {
        self.keys.iter().map(|k| k.denials).sum()
    }
}
