//! The alert (docs/DESIGN.md, "The alert"): its JSON, the plain-text email rendering,
//! the subject, and the [`AlertSink`] seam it is delivered through.
//!
//! Ids come from logs and are untrusted: the JSON carries them exactly (serde escapes
//! what JSON needs), the text renderings escape control and bidirectional-formatting
//! characters and are bounded.

pub mod finding;

use crate::aggregate::{ContextValues, KeyDenials};
use crate::errors::{lock, BoxError};
use crate::key::{DenialKey, ObjectId};
use crate::sources::SourceNotice;
use crate::window::{WindowSpec, WindowTotal};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::sync::Mutex;
use thiserror::Error;

pub const RULE_ID: &str = "17261da3-a6d0-463c-aac8-ea1718afcd20";
pub const RULE_NAME: &str =
    "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User";
pub const SEVERITY: &str = "high";
pub const RISK_SCORE: u32 = 73;
pub const THREATS: [&str; 2] = ["AML.T0015", "AML.T0034"];
/// What to do about an alert: in the email and in the Security Hub finding.
pub const NEXT_STEPS: &str = "Confirm who uses this principal, review its IAM and SCP denials \
     for Bedrock, and check CloudTrail for other activity by it.";
/// Subjects are at most this many printable ASCII characters (SNS allows 100).
pub const MAX_SUBJECT_CHARS: usize = 100;
/// Longest rendering of one id in the email text.
const MAX_TEXT_ID_CHARS: usize = 2048;

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
        Self {
            id: RULE_ID.into(),
            name: RULE_NAME.into(),
            severity: SEVERITY.into(),
            risk_score: RISK_SCORE,
            threat: THREATS.iter().map(|t| t.to_string()).collect(),
        }
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
}

/// RFC 3339 UTC with seconds, e.g. `2026-03-14T09:00:00Z`.
pub fn rfc3339(epoch_seconds: i64) -> String {
    match DateTime::from_timestamp(epoch_seconds, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{epoch_seconds}"),
    }
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
            rule: RuleInfo::default(),
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
        }
    }

    pub fn key(&self) -> DenialKey {
        DenialKey::new(&self.user_id, &self.model_id, &self.account_id)
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
            if a.evidence.drop_one() {
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

    /// `[HIGH] Bedrock: 4 denied calls to <model> by <principal>`: at most
    /// [`MAX_SUBJECT_CHARS`] printable ASCII characters.
    pub fn subject(&self) -> String {
        let head = format!(
            "[{}] Bedrock: {} denied calls to ",
            SEVERITY.to_ascii_uppercase(),
            self.total_denials
        );
        let by = " by ";
        let model = ascii_escape(&self.model_id);
        let user = ascii_escape(&self.user_id);
        let budget = MAX_SUBJECT_CHARS.saturating_sub(head.len() + by.len());
        // The model gets what the principal leaves, and at least half when both are long.
        let model_len = model
            .len()
            .min(budget.saturating_sub(user.len()).max(budget / 2));
        let user_len = user.len().min(budget - model_len);
        let mut s = head;
        s.push_str(&keep_head(&model, model_len));
        s.push_str(by);
        s.push_str(&keep_tail(&user, user_len));
        s
    }

    /// Plain-text rendering for email subscribers.
    pub fn email_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Repeated denied Amazon Bedrock model invocations (severity {}, risk score {}).",
            self.rule.severity, self.rule.risk_score
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Principal (user.id):  {}", text_escape(&self.user_id));
        let _ = writeln!(
            t,
            "Model (gen_ai.request.model.id):  {}",
            text_escape(&self.model_id)
        );
        let _ = writeln!(
            t,
            "Account (cloud.account.id):  {}",
            text_escape(&self.account_id)
        );
        if !self.evidence.regions.is_empty() {
            let _ = writeln!(t, "Region:  {}", joined(&self.evidence.regions));
        }
        let _ = writeln!(
            t,
            "Denied calls:  {} between {} and {} (alerts above {})",
            self.total_denials, self.window.start, self.window.end, self.threshold
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Denials per bucket:");
        for b in &self.buckets {
            let _ = writeln!(t, "  {}  {}", b.start, b.denials);
        }
        let e = &self.evidence;
        let lines: [(&str, &Vec<String>); 6] = [
            ("log object", &e.objects),
            ("operation", &e.operations),
            ("source IP", &e.source_ips),
            ("user agent", &e.user_agents),
            ("error message", &e.error_messages),
            ("request id", &e.request_ids),
        ];
        if lines.iter().any(|(_, values)| !values.is_empty()) {
            let _ = writeln!(t);
            let _ = writeln!(t, "Evidence:");
            for (label, values) in lines {
                for v in values {
                    let _ = writeln!(t, "  {label}: {}", text_escape(v));
                }
            }
        }
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Why it matters: repeated attempts to use models this principal is denied can mean \
             probing for models outside policy or an attempt to run up costs (MITRE ATLAS {}).",
            self.rule.threat.join(", ")
        );
        let _ = writeln!(t, "Next steps: {NEXT_STEPS}");
        let _ = writeln!(t);
        let _ = writeln!(t, "Rule: {} ({})", self.rule.name, self.rule.id);
        t
    }
}

fn joined(values: &[String]) -> String {
    values
        .iter()
        .map(|v| text_escape(v))
        .collect::<Vec<_>>()
        .join(", ")
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

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width and directional marks
            | '\u{2028}'..='\u{202E}' // separators and bidi embeddings/overrides
            | '\u{2060}'..='\u{2069}' // word joiner, bidi isolates
            | '\u{FEFF}')
}

/// Escapes control and bidi-formatting characters as `\u{..}`, bounded in length.
pub fn text_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT_ID_CHARS));
    for (n, c) in s.chars().enumerate() {
        if n == MAX_TEXT_ID_CHARS {
            let _ = write!(out, "... [{} more characters]", s.chars().count() - n);
            break;
        }
        if is_dangerous(c) || c == '\\' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Printable ASCII only: everything else as `\u{..}`.
pub fn ascii_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if (' '..='~').contains(&c) && c != '\\' {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        if out.len() > 4 * MAX_SUBJECT_CHARS {
            break; // longer than any subject can show
        }
    }
    out
}

fn keep_head(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else if n <= 3 {
        ".".repeat(n)
    } else {
        format!("{}...", &s[..n - 3])
    }
}

fn keep_tail(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else if n <= 3 {
        ".".repeat(n)
    } else {
        format!("...{}", &s[s.len() - (n - 3)..])
    }
}

/// Delivering failed; the invocation must fail so the alert is retried.
#[derive(Debug, Error)]
#[error("{sink}: delivering the alert for {key} failed")]
pub struct SinkError {
    pub sink: String,
    pub key: String,
    #[source]
    pub source: BoxError,
}

impl SinkError {
    pub fn new(sink: &str, alert: &Alert, source: impl Into<BoxError>) -> Self {
        Self {
            sink: sink.to_string(),
            key: alert.key().to_string(),
            source: source.into(),
        }
    }
}

impl SinkError {
    /// A notice about an account's logs could not be delivered.
    pub fn notice(sink: &str, notice: &SourceNotice, source: impl Into<BoxError>) -> Self {
        Self {
            sink: sink.to_string(),
            key: format!("log source {}", notice.account_id),
            source: source.into(),
        }
    }
}

/// Where alerts go: SNS, EventBridge and Security Hub when deployed, stdout for
/// `scan`, memory in tests.
pub trait AlertSink: Send + Sync {
    /// A short, stable name, recorded with each delivery (`sns`, `events`, ...).
    fn name(&self) -> &str;

    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Tells the team an account's logs went silent or resumed (docs/DESIGN.md, "Log
    /// sources"). Sinks for alerts only take no notices.
    fn notify(&self, notice: &SourceNotice) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = notice;
        async { Ok(()) }
    }
}

/// Keeps alerts and notices in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    alerts: Mutex<Vec<Alert>>,
    notices: Mutex<Vec<SourceNotice>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }

    pub fn notices(&self) -> Vec<SourceNotice> {
        lock(&self.notices).clone()
    }
}

impl AlertSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    async fn publish(&self, alert: &Alert) -> Result<(), SinkError> {
        lock(&self.alerts).push(alert.clone());
        Ok(())
    }

    async fn notify(&self, notice: &SourceNotice) -> Result<(), SinkError> {
        lock(&self.notices).push(notice.clone());
        Ok(())
    }
}

/// How `scan` prints alerts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum StdoutFormat {
    /// One JSON object per line: what SNS subscribers other than email receive.
    #[default]
    Json,
    /// The subject and text email subscribers receive.
    Email,
}

/// Writes each alert to stdout (`scan`).
#[derive(Debug, Default)]
pub struct StdoutSink {
    pub format: StdoutFormat,
    /// The alerts are shown only, never delivered anywhere: say so on each
    /// (`"delivered": false`, a `[NOT DELIVERED]` subject).
    pub not_delivered: bool,
}

impl AlertSink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn publish(&self, alert: &Alert) -> Result<(), SinkError> {
        let text = match (self.format, self.not_delivered) {
            (StdoutFormat::Json, false) => alert.to_json(),
            (StdoutFormat::Json, true) => {
                let mut v = serde_json::to_value(alert).unwrap_or_default();
                v["delivered"] = serde_json::Value::Bool(false);
                v.to_string()
            }
            (StdoutFormat::Email, not_delivered) => {
                let mark = if not_delivered {
                    "[NOT DELIVERED] "
                } else {
                    ""
                };
                format!(
                    "Subject: {mark}{}\n\n{}",
                    alert.subject(),
                    alert.email_text()
                )
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|e| SinkError::new("stdout", alert, e))
    }
}

#[cfg(test)]
mod tests;
