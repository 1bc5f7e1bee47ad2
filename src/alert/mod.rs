//! The alert (docs/DESIGN.md, "The alert"): the model and its JSON, bounded to what
//! each destination takes. Its text renderings are in [`email`], the sinks it is
//! delivered through in [`sink`], its Security Hub finding in [`finding`].
//!
//! Ids come from logs and are untrusted: the JSON carries them as read (serde escapes
//! what JSON needs), the text renderings escape control and bidirectional-formatting
//! characters and are bounded.

pub mod email;
pub mod finding;
pub mod notice;
pub mod sink;

pub use crate::text::{rfc3339, text_escape};
pub use email::{ascii_escape, MAX_SUBJECT_CHARS};
pub use notice::{CeilingNotice, HeldKey, Notice};
pub use sink::{AlertSink, MemorySink, Sink, SinkError, StdoutFormat, StdoutSink};

use crate::aggregate::{ContextValues, KeyDenials};
use crate::identity::ObjectId;
use crate::key::DenialKey;
use crate::window::{WindowSpec, WindowTotal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::rule::{Rule, RuleTag};
pub use crate::rule::{NEXT_STEPS, RISK_SCORE, RULE_ID, RULE_NAME, SEVERITY, THREATS};
use crate::store::Members;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub name: String,
    pub severity: String,
    pub risk_score: u32,
    pub threat: Vec<String>,
}

impl Default for RuleInfo {
    fn default() -> Self {
        Self::of(&crate::rule::SEED)
    }
}

impl RuleInfo {
    pub fn of(rule: &Rule) -> Self {
        Self {
            id: rule.id.into(),
            name: rule.name.into(),
            severity: rule.severity.into(),
            risk_score: rule.risk_score,
            threat: rule.threats.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The rule this alert is of (the seed rule for an id no rule has).
    pub fn rule(&self) -> &'static Rule {
        crate::rule::rule(RuleTag::from_id(&self.id).unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCount {
    pub start: String,
    pub denials: u64,
}

/// What the object that completed the burst says about this key's denials: the
/// object (or log stream), request ids, and distinct context values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub objects: Vec<String>,
    pub request_ids: Vec<String>,
    #[serde(default)]
    pub source_ips: Vec<String>,
    #[serde(default)]
    pub user_agents: Vec<String>,
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
}

impl Evidence {
    fn new(object: &ObjectId, denials: &KeyDenials) -> Self {
        let ContextValues {
            source_ips,
            user_agents,
            error_messages,
            regions,
            operations,
        } = denials.context.clone();
        Self {
            objects: vec![object.uri.clone()],
            request_ids: denials.request_ids.clone(),
            source_ips,
            user_agents,
            error_messages,
            regions,
            operations,
        }
    }

    /// Drops one value, the least useful first; false when nothing is left to drop.
    fn drop_one(&mut self) -> bool {
        [
            &mut self.request_ids,
            &mut self.user_agents,
            &mut self.error_messages,
            &mut self.source_ips,
            &mut self.operations,
            &mut self.regions,
            &mut self.objects,
        ]
        .into_iter()
        .any(|list| list.pop().is_some())
    }
}

/// One alert. The four rule-row fields keep the rule's names exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: RuleInfo,
    #[serde(rename = "user.id")]
    pub user_id: String,
    #[serde(rename = "gen_ai.request.model.id")]
    pub model_id: String,
    #[serde(rename = "cloud.account.id")]
    pub account_id: String,
    pub total_denials: u64,
    pub threshold: u64,
    pub window: TimeRange,
    pub buckets: Vec<BucketCount>,
    pub evidence: Evidence,
    /// The role's sessions seen in the window (the role rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// The distinct normalized models denied in the window (the model rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

impl Alert {
    /// The alert for `key` over `window` (above `threshold`), from the stored `counts`
    /// and this object's evidence.
    pub fn build(
        key: &DenialKey,
        window: &WindowTotal,
        counts: &BTreeMap<i64, u64>,
        spec: &WindowSpec,
        threshold: u64,
        object: &ObjectId,
        denials: &KeyDenials,
    ) -> Self {
        let (start, end) = spec.window_bounds(window.end);
        Alert {
            rule: RuleInfo::of(crate::rule::rule(key.rule)),
            user_id: key.user_id.clone(),
            model_id: key.model_id.clone(),
            account_id: key.account_id.clone(),
            total_denials: window.total,
            threshold,
            window: TimeRange {
                start: rfc3339(start),
                end: rfc3339(end),
            },
            buckets: spec
                .buckets_in_window(counts, window.end)
                .into_iter()
                .map(|(b, n)| BucketCount {
                    start: rfc3339(spec.bucket_start(b)),
                    denials: n,
                })
                .collect(),
            evidence: Evidence::new(object, denials),
            sessions: Vec::new(),
            models: Vec::new(),
        }
    }

    /// The alert of a rule that counts distinct values, for `key` over the window
    /// ending at bucket `end`, whose sets are `union`: its count is the window's
    /// distinct denied calls; its sessions or models are listed.
    #[allow(clippy::too_many_arguments)]
    pub fn build_distinct(
        key: &DenialKey,
        end: i64,
        union: &Members,
        calls_per_bucket: &BTreeMap<i64, u64>,
        spec: &WindowSpec,
        threshold: u64,
        object: &ObjectId,
        denials: &KeyDenials,
    ) -> Self {
        let window = WindowTotal {
            end,
            total: union.calls.len() as u64,
        };
        let mut alert = Self::build(
            key,
            &window,
            calls_per_bucket,
            spec,
            threshold,
            object,
            denials,
        );
        let listed: Vec<String> = union.values.iter().cloned().collect();
        match key.rule {
            RuleTag::RoleSessions => alert.sessions = listed,
            _ => alert.models = listed,
        }
        alert.evidence.regions = union.regions.iter().cloned().collect();
        alert
    }

    pub fn key(&self) -> DenialKey {
        DenialKey::new(&self.user_id, &self.model_id, &self.account_id)
            .for_rule(RuleTag::from_id(&self.rule.id).unwrap_or_default())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The JSON, dropping evidence (request ids first) until it fits in `max_bytes`.
    pub fn to_json_within(&self, max_bytes: usize) -> String {
        let json = self.to_json();
        if json.len() <= max_bytes {
            return json;
        }
        let mut a = self.clone();
        loop {
            let json = a.to_json();
            if json.len() <= max_bytes {
                return json;
            }
            if a.evidence.drop_one() || a.sessions.pop().is_some() || a.models.pop().is_some() {
                continue;
            }
            if !a.buckets.is_empty() {
                a.buckets.clear();
                continue;
            }
            // Ids alone exceed the limit: an alert cut short beats one never delivered.
            let mut each = max_bytes / 4;
            loop {
                for id in [&mut a.user_id, &mut a.model_id, &mut a.account_id] {
                    truncate_id(id, each);
                }
                let json = a.to_json();
                if json.len() <= max_bytes || each <= 64 {
                    return json;
                }
                each /= 2;
            }
        }
    }
}

const TRUNCATED: &str = "...[truncated]";

fn truncate_id(id: &mut String, max_bytes: usize) {
    if id.len() <= max_bytes {
        return;
    }
    let mut cut = max_bytes.saturating_sub(TRUNCATED.len());
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    id.truncate(cut);
    id.push_str(TRUNCATED);
}

#[cfg(test)]
mod tests;
