//! Reading one object into per-(key, bucket) counts, so the store sees one update per
//! distinct (key, bucket) and not one per record, plus the evidence the alert shows.
//!
//! [`Reader`] is the synchronous half of the detector: it holds no store and no
//! sink, and runs on blocking threads (shared with them through an `Arc`).

use crate::config::Config;
use crate::key::DenialKey;
use crate::logs::{
    read_log, read_messages, Denial, DenialContext, DenialMatcher, ReadError, ReadStats,
};
use crate::text::prefix_chars;
use crate::window::{Bucket, WindowSpec};
use std::collections::BTreeMap;
use std::io::Read;

/// Request ids kept per key as evidence in the alert.
pub const MAX_REQUEST_IDS: usize = 20;
/// Distinct values kept per evidence field (source IPs, user agents, ...).
pub const MAX_CONTEXT_VALUES: usize = 5;
/// Characters kept of each evidence value.
pub const MAX_CONTEXT_CHARS: usize = 256;

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
            // A full list is the common case in a flood of denials: nothing to cut.
            if let Some(mut v) = value.filter(|_| list.len() < MAX_CONTEXT_VALUES) {
                v.truncate(prefix_chars(&v, MAX_CONTEXT_CHARS).len());
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
    /// The first [`MAX_REQUEST_IDS`] distinct request ids, in log order.
    pub request_ids: Vec<String>,
    pub context: ContextValues,
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
        entry.context.add(denial.context);
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

/// What reading one object gave.
#[derive(Debug, Default)]
pub struct ObjectRead {
    pub aggregate: Aggregate,
    pub stats: ReadStats,
    /// The error that ended reading early, if any; what was read before is in `aggregate`.
    pub error: Option<ReadError>,
}

/// Reads objects into aggregates with the configured denial codes and buckets.
#[derive(Debug, Clone)]
pub struct Reader {
    matcher: DenialMatcher,
    spec: WindowSpec,
}

impl Reader {
    pub fn new(config: &Config) -> Self {
        Self {
            matcher: DenialMatcher::new(&config.denial_codes, &config.cloudtrail_denial_codes),
            spec: config.window(),
        }
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Reads one object (blocking: call it from a blocking thread).
    pub fn read(&self, input: impl Read) -> ObjectRead {
        let mut aggregate = Aggregate::default();
        let outcome = read_log(input, &self.matcher, |d| aggregate.add(d, &self.spec));
        ObjectRead {
            aggregate,
            stats: outcome.stats,
            error: outcome.error,
        }
    }

    /// Reads records delivered one per message (CloudWatch Logs events).
    pub fn read_messages<'m>(&self, messages: impl IntoIterator<Item = &'m str>) -> ObjectRead {
        let mut aggregate = Aggregate::default();
        let stats = read_messages(messages, &self.matcher, |d| aggregate.add(d, &self.spec));
        ObjectRead {
            aggregate,
            stats,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(user: &str, t: i64, req: &str) -> Denial {
        Denial {
            key: DenialKey::new(user, "m", "1"),
            event_time: t,
            request_id: Some(req.to_string()),
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
            d.context.user_agent = Some(format!("agent-{i}-{}", "x".repeat(1000)));
            a.add(d, &spec);
        }
        let k = &a.keys[&DenialKey::new("u", "m", "1")];
        assert_eq!(k.request_ids.len(), MAX_REQUEST_IDS);
        assert_eq!(k.buckets.values().sum::<u64>(), 1000);
        assert_eq!(k.context.source_ips.len(), MAX_CONTEXT_VALUES);
        assert_eq!(k.context.user_agents.len(), MAX_CONTEXT_VALUES);
        assert!(k
            .context
            .user_agents
            .iter()
            .all(|u| u.chars().count() == MAX_CONTEXT_CHARS));
    }
}
