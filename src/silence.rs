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

pub use crate::log_keys::{is_region_name, MAX_REGION_BYTES};

/// The name of one account's logs of one Region: `<account>:<region>`, or `None` when
/// either cannot be what AWS writes.
pub fn source_name(account: &str, region: &str) -> Option<String> {
    (crate::log_keys::is_account_id(account) && is_region_name(region))
        .then(|| format!("{account}:{region}"))
}

/// The account and Region of a source name made by [`source_name`].
pub fn parse_source_name(name: &str) -> Option<(&str, &str)> {
    let (account, region) = name.split_once(':')?;
    (crate::log_keys::is_account_id(account) && is_region_name(region)).then_some((account, region))
}

/// The log sources one process recorded as seen within the hour, so the store is asked
/// at most once an hour per source and process; at most 10,000, then it starts afresh.
#[derive(Debug, Default)]
pub struct RecentlySeen(std::sync::Mutex<std::collections::HashMap<String, i64>>);

/// Sources a process remembers before it starts afresh.
const RECENTLY_SEEN_KEPT: usize = 10_000;

impl RecentlySeen {
    /// True, and remembered, when `name` was not recorded within the hour before `now`.
    pub fn first_within_the_hour(&self, name: &str, now: i64) -> bool {
        let mut seen = crate::errors::lock(&self.0);
        if seen
            .get(name)
            .is_some_and(|at| *at > now - SEEN_EVERY_SECONDS)
        {
            return false;
        }
        if seen.len() >= RECENTLY_SEEN_KEPT {
            seen.clear();
        }
        seen.insert(name.to_string(), now);
        true
    }

    /// Forgets `name`, whose recording failed: the next object tries again.
    pub fn forget(&self, name: &str) {
        crate::errors::lock(&self.0).remove(name);
    }
}

/// What the store holds of one log source's delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSource {
    /// The source's name, `<account>:<region>` ([`source_name`]).
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

/// Accounts, or accounts in one Region, expected to be quiet (`QUIET_ACCOUNTS`, the
/// sweep's `quiet_accounts`): comma-separated entries, each an account id (all its
/// Regions) or `<account>:<region>`, in which `*` matches any run of characters.
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

    /// Whether the source named `name` (`<account>:<region>`, or an account id) is
    /// quiet: an entry matches its whole name, or its account.
    pub fn contains(&self, name: &str) -> bool {
        let account = name.split_once(':').map_or(name, |(a, _)| a);
        self.0.iter().any(|p| p.matches(name) || p.matches(account))
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
    /// The Region whose logs of the account went silent or resumed.
    #[serde(rename = "cloud.region")]
    pub region: String,
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
        let (account, region) = parse_source_name(&source.account).unwrap_or((&source.account, ""));
        Self {
            status,
            account_id: account.to_string(),
            region: region.to_string(),
            last_seen: rfc3339(source.last_seen),
            expected_every_hours: expect_seconds / 3600,
            hours_since_last_seen: (now - source.last_seen).max(0) / 3600,
            bucket: bucket.to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// At most 100 printable ASCII characters (the account id is 12 digits, the Region
    /// at most [`MAX_REGION_BYTES`] of `[a-z0-9-]`).
    pub fn subject(&self) -> String {
        let subject = match self.status {
            SourceStatus::Silent => format!(
                "[WARNING] Bedrock logs: account {} in {} silent for {} h",
                self.account_id, self.region, self.hours_since_last_seen
            ),
            SourceStatus::Resumed => format!(
                "[OK] Bedrock logs: account {} in {} delivering again",
                self.account_id, self.region
            ),
        };
        crate::text::prefix_bytes(&subject, 100).to_string()
    }

    /// Plain-text rendering for email subscribers.
    pub fn email_text(&self) -> String {
        let mut t = String::new();
        let account = text_escape(&self.account_id);
        let region = text_escape(&self.region);
        match self.status {
            SourceStatus::Silent => {
                let _ = writeln!(
                    t,
                    "No Bedrock log object of account {account} in {region} has reached the detector for {} \
                     hours (logs are expected at least every {} hours). Until they arrive, the detector \
                     cannot see denied model invocations there: its silence about them cannot be trusted.",
                    self.hours_since_last_seen, self.expected_every_hours
                );
                let _ = writeln!(t);
                let _ = writeln!(t, "Account:  {account}");
                let _ = writeln!(t, "Region:  {region}");
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
                    "Bedrock log objects of account {account} in {region} reach the detector again (last seen {})."
                , self.last_seen);
                let _ = writeln!(t);
                let _ = writeln!(t, "Account:  {account}");
                let _ = writeln!(t, "Region:  {region}");
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
            account: "111122223333:us-east-1".into(),
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
        assert!(quiet.contains("111122223333:eu-west-1"));
        assert!(quiet.contains("444455556666:us-east-1"));
        assert!(!quiet.contains("999988887777:us-east-1"));
        assert!(!QuietAccounts::parse("").contains("111122223333:us-east-1"));
        // One Region of an account.
        let quiet = QuietAccounts::parse("111122223333:eu-west-1,*:ap-south-2");
        assert!(quiet.contains("111122223333:eu-west-1"));
        assert!(!quiet.contains("111122223333:us-east-1"));
        assert!(quiet.contains("999988887777:ap-south-2"));
    }

    #[test]
    fn a_source_is_recorded_once_an_hour_per_process_and_again_after_a_failure() {
        let seen = RecentlySeen::default();
        assert!(seen.first_within_the_hour("111122223333:us-east-1", NOW));
        assert!(!seen.first_within_the_hour("111122223333:us-east-1", NOW + 3599));
        assert!(seen.first_within_the_hour("111122223333:eu-west-1", NOW + 1));
        assert!(seen.first_within_the_hour("111122223333:us-east-1", NOW + 3600));
        seen.forget("111122223333:us-east-1");
        assert!(seen.first_within_the_hour("111122223333:us-east-1", NOW + 3601));
    }

    #[test]
    fn source_names_are_an_account_and_a_region() {
        assert_eq!(
            source_name("111122223333", "us-east-1").as_deref(),
            Some("111122223333:us-east-1")
        );
        assert_eq!(source_name("1111", "us-east-1"), None);
        assert_eq!(source_name("111122223333", "US East"), None);
        assert_eq!(source_name("111122223333", &"a".repeat(33)), None);
        assert_eq!(
            parse_source_name("111122223333:us-east-1"),
            Some(("111122223333", "us-east-1"))
        );
        // The names of the earlier, account-wide items are not sources any more.
        assert_eq!(parse_source_name("111122223333"), None);
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
            "[WARNING] Bedrock logs: account 111122223333 in us-east-1 silent for 7 h"
        );
        let longest = LogSource {
            account: format!("111122223333:{}", "a".repeat(MAX_REGION_BYTES)),
            ..source(0, None)
        };
        // Sources silent longer than the watched week are not told of.
        let n2 = SourceNotice::new(
            SourceStatus::Silent,
            &longest,
            WATCHED_FOR_SECONDS,
            SIX_HOURS,
            "l",
        );
        assert!(
            n2.subject().len() <= 100 && n2.subject().ends_with(" h"),
            "{}",
            n2.subject()
        );
        assert!(n.email_text().contains("111122223333"));
        assert!(n.email_text().contains("Region:  us-east-1"));
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).expect("json");
        assert_eq!(v["status"], "silent");
        assert_eq!(v["cloud.account.id"], "111122223333");
        assert_eq!(v["cloud.region"], "us-east-1");
        assert_eq!(v["hours_since_last_seen"], 7);
        assert_eq!(
            detail_type(SourceStatus::Silent),
            "Bedrock Log Source Silent"
        );
    }
}
