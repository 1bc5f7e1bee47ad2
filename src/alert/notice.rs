//! What the sinks are told besides alerts (docs/DESIGN.md, "Alert ceilings" and "Log
//! sources"): a log source gone silent or delivering again, and the summary of the
//! alerts an account's keys would have raised past the alert ceilings.

use crate::silence::{SourceNotice, SourceStatus};
use crate::text::{rfc3339, text_escape};
use serde::Serialize;
use std::fmt::Write as _;

/// EventBridge detail type of a ceiling summary.
pub const CEILING_DETAIL_TYPE: &str = "Bedrock Denied Models Alert Ceiling";
/// Keys a ceiling summary names (the most denied first).
pub const CEILING_TOP_KEYS: usize = 10;

/// One notice: what SNS and EventBridge deliver beside alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Source(SourceNotice),
    Ceiling(CeilingNotice),
}

impl Notice {
    pub fn subject(&self) -> String {
        match self {
            Notice::Source(n) => n.subject(),
            Notice::Ceiling(n) => n.subject(),
        }
    }

    pub fn to_json(&self) -> String {
        match self {
            Notice::Source(n) => n.to_json(),
            Notice::Ceiling(n) => n.to_json(),
        }
    }

    pub fn email_text(&self) -> String {
        match self {
            Notice::Source(n) => n.email_text(),
            Notice::Ceiling(n) => n.email_text(),
        }
    }

    /// The EventBridge detail type, also the SNS `notice` attribute.
    pub fn detail_type(&self) -> &'static str {
        match self {
            Notice::Source(n) => crate::silence::detail_type(n.status),
            Notice::Ceiling(_) => CEILING_DETAIL_TYPE,
        }
    }

    /// The SNS `severity` attribute.
    pub fn severity(&self) -> &'static str {
        match self {
            Notice::Source(n) if n.status == SourceStatus::Silent => "warning",
            Notice::Source(_) => "informational",
            Notice::Ceiling(_) => "high",
        }
    }

    /// The account the notice is about.
    pub fn account_id(&self) -> &str {
        match self {
            Notice::Source(n) => &n.account_id,
            Notice::Ceiling(n) => &n.account_id,
        }
    }
}

/// A key whose alert was held back, and its window's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldKey {
    #[serde(rename = "user.id")]
    pub user_id: String,
    #[serde(rename = "gen_ai.request.model.id")]
    pub model_id: String,
    pub total_denials: u64,
}

/// The alerts of one account held back by the ceilings of one object or of the hour:
/// how many keys crossed the threshold, and the most denied of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CeilingNotice {
    #[serde(rename = "cloud.account.id")]
    pub account_id: String,
    /// Keys of this object over the threshold whose alert was held back.
    pub keys_over_threshold: u64,
    /// The most denied of them, at most [`CEILING_TOP_KEYS`].
    pub top: Vec<HeldKey>,
    /// The object that raised them.
    pub object: String,
    /// The hour (wall clock) whose alert allowance the account used up, if that was
    /// the ceiling met.
    pub hour: Option<String>,
    pub max_alerts_per_object: u32,
    pub max_alerts_per_account_hour: u32,
}

impl CeilingNotice {
    pub fn new(
        account_id: &str,
        mut held: Vec<HeldKey>,
        object: &str,
        hour_start: Option<i64>,
        limits: (u32, u32),
    ) -> Self {
        let keys = held.len() as u64;
        held.sort_by(|a, b| {
            b.total_denials
                .cmp(&a.total_denials)
                .then_with(|| a.user_id.cmp(&b.user_id))
                .then_with(|| a.model_id.cmp(&b.model_id))
        });
        held.truncate(CEILING_TOP_KEYS);
        Self {
            account_id: account_id.to_string(),
            keys_over_threshold: keys,
            top: held,
            object: object.to_string(),
            hour: hour_start.map(rfc3339),
            max_alerts_per_object: limits.0,
            max_alerts_per_account_hour: limits.1,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Printable ASCII, at most 100 characters.
    pub fn subject(&self) -> String {
        let account = crate::alert::ascii_escape(&self.account_id);
        let subject = format!(
            "[HIGH] Bedrock denied models: {} more keys over the threshold in account {}",
            self.keys_over_threshold, account
        );
        crate::text::prefix_bytes(&subject, crate::alert::MAX_SUBJECT_CHARS).to_string()
    }

    pub fn email_text(&self) -> String {
        let mut t = String::new();
        let account = text_escape(&self.account_id);
        let _ = writeln!(
            t,
            "{} more principal and model pairs of account {account} crossed the threshold, past the \
             alert ceilings (at most {} alerts per object and {} per account and hour). Their denials \
             are counted; their alerts are summed up here instead of sent one by one, so that one \
             account's flood cannot bury the others' alerts.",
            self.keys_over_threshold, self.max_alerts_per_object, self.max_alerts_per_account_hour
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Account:  {account}");
        let _ = writeln!(t, "Object:  {}", text_escape(&self.object));
        if let Some(hour) = &self.hour {
            let _ = writeln!(t, "Hour whose alerts were used up:  {hour}");
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "The most denied:");
        for k in &self.top {
            let _ = writeln!(
                t,
                "  {} denials  {}  {}",
                k.total_denials,
                text_escape(&k.user_id),
                text_escape(&k.model_id)
            );
        }
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Next steps: treat the account as under attack or misconfigured; `scan --report` over its \
             recent logs lists every key with its denials."
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: u64) -> Vec<HeldKey> {
        (0..n)
            .map(|i| HeldKey {
                user_id: format!("arn:aws:iam::111122223333:user/u{i}"),
                model_id: "m".into(),
                total_denials: 4 + i,
            })
            .collect()
    }

    #[test]
    fn the_summary_names_the_count_and_the_most_denied() {
        let n = CeilingNotice::new("111122223333", held(25), "s3://b/k", Some(0), (10, 50));
        assert_eq!(n.keys_over_threshold, 25);
        assert_eq!(n.top.len(), CEILING_TOP_KEYS);
        assert_eq!(n.top[0].total_denials, 28, "the most denied first");
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).expect("json");
        assert_eq!(v["cloud.account.id"], "111122223333");
        assert_eq!(v["top"][0]["user.id"], "arn:aws:iam::111122223333:user/u24");
        assert_eq!(v["hour"], "1970-01-01T00:00:00Z");
        let notice = Notice::Ceiling(n);
        assert_eq!(notice.detail_type(), CEILING_DETAIL_TYPE);
        assert!(notice.subject().len() <= 100);
        assert!(notice
            .email_text()
            .contains("25 more principal and model pairs"));
    }

    #[test]
    fn a_hostile_account_id_stays_within_the_subject() {
        let n = CeilingNotice::new(&"\u{202e}x".repeat(500), held(1), "o", None, (10, 50));
        let s = Notice::Ceiling(n).subject();
        assert!(s.len() <= 100 && s.is_ascii(), "{s}");
    }
}
