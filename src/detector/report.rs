//! What became of one processed object, for its log line, metrics and warnings: the
//! [`ObjectReport`], and the [`ObjectWarning`]s the function logs and `scan` notes.

use crate::logs::LogFormat;
use crate::reader::Accounts;
use crate::stats::Counts;
use serde::Serialize;

/// Everything about one processed object, for the log line and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectReport {
    pub object: String,
    pub format: LogFormat,
    pub gzip: bool,
    /// What was read, counted and alerted (`crate::stats`).
    pub counts: Counts,
    /// An error that ended reading early but does not fail the invocation.
    pub read_error: Option<String>,
    /// Whose logs the object holds, and the first denial that claimed another account.
    #[serde(skip)]
    pub accounts: Accounts,
}

/// What the team should hear about one object beside its counts: written once, logged
/// as a warning by the function and noted by `scan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectWarning<'a> {
    /// Reading stopped at damage in the object; what was read before is counted.
    ReadInPart(&'a str),
    /// Denials that claimed another account than the object's were skipped.
    OtherAccount {
        folder: &'a str,
        other: &'a str,
        records: u64,
    },
    /// The object held more than the per-object limits: its least denied keys were let go.
    OverLimits { denials: u64, keys: u64 },
}

impl std::fmt::Display for ObjectWarning<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectWarning::ReadInPart(e) => {
                write!(f, "{e}; read only in part, what was read is counted")
            }
            ObjectWarning::OtherAccount {
                folder,
                other,
                records,
            } => write!(
                f,
                "{records} denials of another account (first: {other}) skipped: the object speaks for account {folder}"
            ),
            ObjectWarning::OverLimits { denials, keys } => write!(
                f,
                "over the per-object limits ({} keys, {} counters): {denials} denials not counted ({keys} least denied keys let go)",
                crate::aggregate::MAX_KEYS_PER_OBJECT,
                crate::aggregate::MAX_COUNTERS_PER_OBJECT
            ),
        }
    }
}

impl ObjectReport {
    /// The warnings about this object, in a fixed order.
    pub fn warnings(&self) -> Vec<ObjectWarning<'_>> {
        let c = &self.counts;
        let mut out = Vec::new();
        if let Some(e) = &self.read_error {
            out.push(ObjectWarning::ReadInPart(e));
        }
        if c.skipped_account_mismatch > 0 {
            out.push(ObjectWarning::OtherAccount {
                folder: self.accounts.folder.as_deref().unwrap_or_default(),
                other: self.accounts.mismatched.as_deref().unwrap_or_default(),
                records: c.skipped_account_mismatch,
            });
        }
        if c.denials_over_limit > 0 {
            out.push(ObjectWarning::OverLimits {
                denials: c.denials_over_limit,
                keys: c.keys_over_limit,
            });
        }
        out
    }
}
