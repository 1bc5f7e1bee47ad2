//! Turns one object's denials into per-(key, bucket) counts, so the store sees one
//! update per distinct (key, bucket) and not one per record.

use crate::key::DenialKey;
use crate::logs::{read_log, Denial, DenialMatcher, ReadOutcome};
use crate::window::{Bucket, WindowSpec};
use std::collections::BTreeMap;
use std::io::Read;

/// Request ids kept per key as evidence in the alert.
pub const MAX_REQUEST_IDS: usize = 20;

/// One key's denials in one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyDenials {
    pub buckets: BTreeMap<Bucket, u64>,
    /// The first [`MAX_REQUEST_IDS`] distinct request ids, in log order.
    pub request_ids: Vec<String>,
}

/// One object's denials, by key (ordered, so processing order is reproducible).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub keys: BTreeMap<DenialKey, KeyDenials>,
}

impl Aggregate {
    pub fn add(&mut self, denial: Denial, spec: &WindowSpec) {
        let entry = self.keys.entry(denial.key).or_default();
        *entry
            .buckets
            .entry(spec.bucket_of(denial.event_time))
            .or_insert(0) += 1;
        if let Some(id) = denial.request_id {
            if entry.request_ids.len() < MAX_REQUEST_IDS && !entry.request_ids.contains(&id) {
                entry.request_ids.push(id);
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
}

/// Reads one object and aggregates its denials.
pub fn scan_object(
    input: impl Read,
    matcher: &DenialMatcher,
    spec: &WindowSpec,
) -> (Aggregate, ReadOutcome) {
    let mut agg = Aggregate::default();
    let outcome = read_log(input, matcher, |d| agg.add(d, spec));
    (agg, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(user: &str, t: i64, req: &str) -> Denial {
        Denial {
            key: DenialKey::new(user, "m", "1"),
            event_time: t,
            request_id: Some(req.to_string()),
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
        let u1 = &a.keys[&DenialKey::new("u1", "m", "1")];
        assert_eq!(u1.buckets, BTreeMap::from([(0, 2), (1, 1)]));
        assert_eq!(u1.request_ids, vec!["r1", "r2"]);
    }

    #[test]
    fn evidence_is_bounded() {
        let spec = WindowSpec::new(10, 6);
        let mut a = Aggregate::default();
        for i in 0..1000 {
            a.add(denial("u", i, &format!("r{i}")), &spec);
        }
        let k = &a.keys[&DenialKey::new("u", "m", "1")];
        assert_eq!(k.request_ids.len(), MAX_REQUEST_IDS);
        assert_eq!(k.buckets.values().sum::<u64>(), 1000);
    }
}
