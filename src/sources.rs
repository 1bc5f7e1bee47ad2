//! Knowing when one account goes silent (docs/DESIGN.md, "Log sources"): the policy
//! that says when an account that delivered logs has stopped, or started again, and
//! the notice that tells the team.
//!
//! The store keeps, per account, when a log object of it was last seen (written at
//! most once an hour) and whether the team was told it went silent; the scheduled
//! sweep reads them and applies [`due`]. Free of I/O, like the claim policy.

use crate::exceptions::Pattern;
use crate::text::{rfc3339, text_escape};
use serde::Serialize;
use std::fmt::Write as _;

/// An account's last-seen time is written at most this often.
pub const SEEN_EVERY_SECONDS: i64 = 3600;
/// Accounts that delivered nothing for this long are no longer watched.
pub const WATCHED_FOR_SECONDS: i64 = 7 * 86_400;
/// A notice claim older than this, never marked sent, can be taken over.
pub const NOTICE_LEASE_SECONDS: i64 = 60;

/// What the store holds of one account's log delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    pub account: String,
    /// When a log object of this account was last seen (epoch seconds, to the hour).
    pub last_seen: i64,
    /// Set while the account is known silent: the `last_seen` it went silent after.
    pub silent_since: Option<i64>,
    /// A notice being delivered: its attempt and when it was claimed.
    pub claim: Option<(String, i64)>,
}

/// What the team must be told about an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// It delivered logs within the watched period, but none for the expected interval.
    Silent,
    /// It was silent, and a log object of it was seen since.
    Resumed,
}

/// The notice due for `source` at `now`, if any, when logs are expected every
/// `expect_seconds`.
pub fn due(source: &LogSource, now: i64, expect_seconds: i64) -> Option<SourceStatus> {
    match source.silent_since {
        Some(since) if source.last_seen > since => Some(SourceStatus::Resumed),
        Some(_) => None,
        None if source.last_seen >= now - WATCHED_FOR_SECONDS
            && source.last_seen + expect_seconds <= now =>
        {
            Some(SourceStatus::Silent)
        }
        None => None,
    }
}

/// Accounts expected to be quiet (`QUIET_ACCOUNTS`, the sweep's `quiet_accounts`):
/// comma-separated ids in which `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuietAccounts(Vec<Pattern>);

impl QuietAccounts {
    pub fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(Pattern::new)
                .collect(),
        )
    }

    pub fn contains(&self, account: &str) -> bool {
        self.0.iter().any(|p| p.matches(account))
    }
}

/// Detail type of the EventBridge event of each notice.
pub fn detail_type(status: SourceStatus) -> &'static str {
    match status {
        SourceStatus::Silent => "Bedrock Log Source Silent",
        SourceStatus::Resumed => "Bedrock Log Source Resumed",
    }
}

/// One notice about one account's logs: the SNS message (JSON for subscribers, text
/// for email) and the EventBridge detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceNotice {
    pub status: SourceStatus,
    #[serde(rename = "cloud.account.id")]
    pub account_id: String,
    /// When a log object of the account was last seen (to the hour).
    pub last_seen: String,
    /// Hours between log objects after which an account counts as silent.
    pub expected_every_hours: i64,
    /// Hours since the last log object.
    pub hours_since_last_seen: i64,
    /// The log bucket the detector watches.
    pub bucket: String,
}

impl SourceNotice {
    pub fn new(
        status: SourceStatus,
        source: &LogSource,
        now: i64,
        expect_seconds: i64,
        bucket: &str,
    ) -> Self {
        Self {
            status,
            account_id: source.account.clone(),
            last_seen: rfc3339(source.last_seen),
            expected_every_hours: expect_seconds / 3600,
            hours_since_last_seen: (now - source.last_seen).max(0) / 3600,
            bucket: bucket.to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// At most 100 printable ASCII characters (the account id is 12 digits).
    pub fn subject(&self) -> String {
        match self.status {
            SourceStatus::Silent => format!(
                "[WARNING] Bedrock logs: account {} silent for {} h",
                self.account_id, self.hours_since_last_seen
            ),
            SourceStatus::Resumed => format!(
                "[OK] Bedrock logs: account {} delivering again",
                self.account_id
            ),
        }
    }

    /// Plain-text rendering for email subscribers.
    pub fn email_text(&self) -> String {
        let mut t = String::new();
        let account = text_escape(&self.account_id);
        match self.status {
            SourceStatus::Silent => {
                let _ = writeln!(
                    t,
                    "No Bedrock log object of account {account} has reached the detector for {} hours \
                     (logs are expected at least every {} hours). Until they arrive, the detector cannot \
                     see denied model invocations in this account: its silence about it cannot be trusted.",
                    self.hours_since_last_seen, self.expected_every_hours
                );
                let _ = writeln!(t);
                let _ = writeln!(t, "Account:  {account}");
                let _ = writeln!(t, "Last log object:  {}", self.last_seen);
                let _ = writeln!(t, "Log bucket:  {}", text_escape(&self.bucket));
                let _ = writeln!(t);
                let _ = writeln!(
                    t,
                    "Next steps: in that account, check that Bedrock model-invocation logging is still on \
                     (aws bedrock get-model-invocation-logging-configuration) and writes to its log bucket, \
                     and that replication to the detector's bucket works (the member bucket's replication \
                     status and metrics). An account expected to be quiet can be listed in QuietAccounts."
                );
            }
            SourceStatus::Resumed => {
                let _ = writeln!(
                    t,
                    "Bedrock log objects of account {account} reach the detector again (last seen {})."
                , self.last_seen);
                let _ = writeln!(t);
                let _ = writeln!(t, "Account:  {account}");
                let _ = writeln!(t, "Log bucket:  {}", text_escape(&self.bucket));
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_773_478_800;
    const SIX_HOURS: i64 = 6 * 3600;

    fn source(last_seen: i64, silent_since: Option<i64>) -> LogSource {
        LogSource {
            account: "111122223333".into(),
            last_seen,
            silent_since,
            claim: None,
        }
    }

    #[test]
    fn silent_once_the_expected_interval_has_passed() {
        assert_eq!(
            due(&source(NOW - SIX_HOURS + 1, None), NOW, SIX_HOURS),
            None
        );
        assert_eq!(
            due(&source(NOW - SIX_HOURS, None), NOW, SIX_HOURS),
            Some(SourceStatus::Silent)
        );
    }

    #[test]
    fn no_repeat_while_still_silent_and_resumed_once_seen_again() {
        let silent = source(NOW - 10 * 3600, Some(NOW - 10 * 3600));
        assert_eq!(due(&silent, NOW, SIX_HOURS), None, "told already");
        let back = source(NOW - 60, Some(NOW - 10 * 3600));
        assert_eq!(due(&back, NOW, SIX_HOURS), Some(SourceStatus::Resumed));
    }

    #[test]
    fn accounts_silent_beyond_the_watched_period_are_let_go() {
        let gone = source(NOW - WATCHED_FOR_SECONDS - 1, None);
        assert_eq!(due(&gone, NOW, SIX_HOURS), None);
    }

    #[test]
    fn quiet_accounts_match_exactly_or_by_pattern() {
        let quiet = QuietAccounts::parse(" 111122223333, 4444*, ");
        assert!(quiet.contains("111122223333"));
        assert!(quiet.contains("444455556666"));
        assert!(!quiet.contains("999988887777"));
        assert!(!QuietAccounts::parse("").contains("111122223333"));
    }

    #[test]
    fn the_notice_names_the_account_in_subject_text_and_json() {
        let n = SourceNotice::new(
            SourceStatus::Silent,
            &source(NOW - 7 * 3600, None),
            NOW,
            SIX_HOURS,
            "logs",
        );
        assert_eq!(
            n.subject(),
            "[WARNING] Bedrock logs: account 111122223333 silent for 7 h"
        );
        assert!(n.subject().len() <= 100);
        assert!(n.email_text().contains("111122223333"));
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).expect("json");
        assert_eq!(v["status"], "silent");
        assert_eq!(v["cloud.account.id"], "111122223333");
        assert_eq!(v["hours_since_last_seen"], 7);
        assert_eq!(
            detail_type(SourceStatus::Silent),
            "Bedrock Log Source Silent"
        );
    }
}
