//! The rule (docs/DESIGN.md, "The rule"): its identity, and its one pure decision for a
//! key over the counts read, which the detector and the report's replay both take.

use crate::exceptions::ExceptionRule;
use crate::window::{Bucket, WindowSpec, WindowTotal};
use std::collections::{BTreeMap, BTreeSet};

pub const RULE_ID: &str = "17261da3-a6d0-463c-aac8-ea1718afcd20";
pub const RULE_NAME: &str =
    "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User";
pub const SEVERITY: &str = "high";
pub const RISK_SCORE: u32 = 73;
pub const THREATS: [&str; 2] = ["AML.T0015", "AML.T0034"];
/// What to do about an alert: in the email and in the Security Hub finding.
pub const NEXT_STEPS: &str = "Confirm who uses this principal, review its IAM and SCP denials \
     for Bedrock, and check CloudTrail for other activity by it.";

/// What the rule decides for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No window the object touched holds more than the key's threshold.
    Quiet,
    /// A window does, but an exception rule stops the key's alerts.
    Excepted { total: u64 },
    /// The window to alert on, over the key's threshold.
    Alert { window: WindowTotal, threshold: u64 },
}

/// The rule's decision for a key whose `counts` were read, given the buckets this
/// object `touched`: its threshold is the exception's own, else `threshold`; it alerts
/// on the first window over it ([`WindowSpec::alert_window`]) unless an exception
/// without a threshold stops it. Over part of the counts (never more than the whole)
/// an `Excepted` or `Alert` is already certain.
pub fn decide(
    spec: &WindowSpec,
    counts: &BTreeMap<Bucket, u64>,
    touched: &BTreeSet<Bucket>,
    exception: Option<&ExceptionRule>,
    threshold: u64,
) -> Decision {
    let threshold = exception.and_then(|r| r.threshold).unwrap_or(threshold);
    match spec.alert_window(counts, touched, threshold) {
        None => Decision::Quiet,
        Some(window) if exception.is_some_and(|r| r.threshold.is_none()) => Decision::Excepted {
            total: window.total,
        },
        Some(window) => Decision::Alert { window, threshold },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exceptions::Exceptions;
    use crate::key::DenialKey;

    #[test]
    fn more_than_the_threshold_alerts_unless_an_exception_stops_or_raises_it() {
        let spec = WindowSpec::new(10, 6);
        let counts: BTreeMap<Bucket, u64> = [(100, 2), (101, 2)].into();
        let touched: BTreeSet<Bucket> = [101].into();
        assert!(matches!(
            decide(&spec, &counts, &touched, None, 3),
            Decision::Alert { threshold: 3, window } if window.total == 4
        ));
        assert_eq!(decide(&spec, &counts, &touched, None, 4), Decision::Quiet);
        let rules = Exceptions::parse(
            r#"[{"user.id": "stop", "reason": "r"}, {"user.id": "raise", "threshold": 10, "reason": "r"}]"#,
        )
        .expect("rules");
        let rule = |who: &str| rules.rule_for(&DenialKey::new(who, "m", "a"), 0);
        assert_eq!(
            decide(&spec, &counts, &touched, rule("stop"), 3),
            Decision::Excepted { total: 4 }
        );
        assert_eq!(
            decide(&spec, &counts, &touched, rule("raise"), 3),
            Decision::Quiet
        );
    }
}
