//! The rules (docs/DESIGN.md, "Rules"): each one's identity and what it takes, groups
//! by and fires on, the set of rules switched on, and the one pure decision for a key
//! over the counts read, which the detector and the report's replay both take.

pub mod distinct;

use crate::exceptions::ExceptionRule;
pub use crate::key::RuleTag;
use crate::window::{Bucket, WindowSpec, WindowTotal};
use std::collections::{BTreeMap, BTreeSet};

pub const RULE_ID: &str = SEED.id;
pub const RULE_NAME: &str = SEED.name;
pub const SEVERITY: &str = SEED.severity;
pub const RISK_SCORE: u32 = SEED.risk_score;
pub const THREATS: [&str; 2] = ["AML.T0015", "AML.T0034"];
/// What to do about an alert: in the email and in the Security Hub finding.
pub const NEXT_STEPS: &str = "Confirm who uses this principal, review its IAM and SCP denials \
     for Bedrock, and check CloudTrail for other activity by it.";

/// One rule, as a value: adding a rule is a new value, its tests and its DESIGN
/// section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub tag: RuleTag,
    pub id: &'static str,
    pub name: &'static str,
    pub severity: &'static str,
    pub risk_score: u32,
    pub threats: &'static [&'static str],
    /// Which records it takes.
    pub takes: &'static str,
    /// What it groups by.
    pub groups_by: &'static str,
    /// When it fires (alert when strictly more than the threshold).
    pub fires_when: &'static str,
    /// What its alerts are, in a few words (the start of a finding's title).
    pub what: &'static str,
    /// Its alerts' EventBridge detail-type.
    pub detail_type: &'static str,
    /// Its findings' ASFF types.
    pub finding_types: &'static [&'static str],
    /// Its defaults (the seed rule's come from `THRESHOLD`, `BUCKET_MINUTES`,
    /// `WINDOW_BUCKETS` and `SUPPRESS_MINUTES`).
    pub bucket_minutes: u32,
    pub window_buckets: u32,
    pub threshold: u64,
    pub suppress_minutes: u32,
}

impl Rule {
    /// Its buckets and windows, at its defaults.
    pub fn spec(&self) -> WindowSpec {
        WindowSpec::new(self.bucket_minutes, self.window_buckets)
    }
}

/// Sessions of one role a role-rule alert needs: one session alone is the seed
/// rule's to alert on.
pub const MIN_SESSIONS: usize = 2;

/// The ported rule, exactly: its keys, digests, alert JSON, subject, detail-type and
/// finding ids are what they always were.
pub const SEED: Rule = Rule {
    tag: RuleTag::Seed,
    id: "17261da3-a6d0-463c-aac8-ea1718afcd20",
    name: "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User",
    severity: "high",
    risk_score: 73,
    threats: &THREATS,
    takes: "denials (AccessDeniedException in invocation logs; AccessDenied, AccessDeniedException in CloudTrail)",
    groups_by: "user.id, model id, account (ids byte for byte)",
    fires_when: "> 3 in 60 min, sliding, 10-min buckets",
    what: "Repeated denied Bedrock model invocations",
    detail_type: "Repeated Denied Bedrock Model Invocations",
    finding_types: &["TTPs/Discovery", "TTPs/Defense Evasion", "Effects/Resource Consumption", "Unusual Behaviors/User"],
    bucket_minutes: 10,
    window_buckets: 6,
    threshold: 3,
    suppress_minutes: 60,
};

/// Elastic's second Bedrock rule, ported exactly for invocation logs: more than 3
/// `ValidationException` of one user in one account within one clock minute.
pub const VALIDATION: Rule = Rule {
    tag: RuleTag::Validation,
    id: "725a048a-88c5-4fc7-8677-a44fc0031822",
    name: "AWS Bedrock Detected Multiple Validation Exception Errors by a Single User",
    severity: "high",
    risk_score: 73,
    threats: &["AML.T0015", "AML.T0034", "AML.T0046"],
    takes: "ValidationException in invocation logs (and in CloudTrail model invocations)",
    groups_by: "user.id, account, 1-minute bucket",
    fires_when: "> 3 in one clock minute (tumbling)",
    what: "Repeated Bedrock validation errors",
    detail_type: "Repeated Bedrock Validation Errors",
    finding_types: &[
        "TTPs/Discovery",
        "Effects/Resource Consumption",
        "Unusual Behaviors/User",
    ],
    bucket_minutes: 1,
    window_buckets: 1,
    threshold: 3,
    suppress_minutes: 60,
};

/// The error code the validation rule takes, in both sources.
pub const VALIDATION_CODE: &str = "ValidationException";

pub const ROLE_SESSIONS: Rule = Rule {
    tag: RuleTag::RoleSessions,
    id: "a6adaad9-e278-45d8-8915-95a965f1a444",
    name: "AWS Bedrock Denied Models Across One Role's Sessions",
    severity: "high",
    risk_score: 73,
    threats: &["AML.T0012", "AML.T0034", "T1078.004", "T1496.004"],
    takes: "denials of assumed-role and federated principals",
    groups_by: "role (principal without session), normalized model, account",
    fires_when: "> 3 in 60 min and from at least 2 sessions",
    what: "Denied Bedrock model invocations across one role's sessions",
    detail_type: "Denied Bedrock Model Invocations Across Role Sessions",
    finding_types: &[
        "TTPs/Discovery",
        "TTPs/Initial Access",
        "Effects/Resource Consumption",
        "Unusual Behaviors/User",
    ],
    bucket_minutes: 10,
    window_buckets: 6,
    threshold: 3,
    suppress_minutes: 60,
};

pub const MANY_MODELS: Rule = Rule {
    tag: RuleTag::ManyModels,
    id: "5ccff5be-bfdf-4b36-91f2-0e122eb0a8db",
    name: "AWS Bedrock Denied on Many Models by One Principal",
    severity: "high",
    risk_score: 73,
    threats: &["AML.T0012", "AML.T0034", "T1078.004", "T1496.004"],
    takes: "denials",
    groups_by: "principal without session, account",
    fires_when: "> 3 distinct normalized models in 60 min, any Regions",
    what: "Bedrock invocations denied on many models",
    detail_type: "Bedrock Invocations Denied On Many Models",
    finding_types: &[
        "TTPs/Discovery",
        "TTPs/Initial Access",
        "Effects/Resource Consumption",
        "Unusual Behaviors/User",
    ],
    bucket_minutes: 10,
    window_buckets: 6,
    threshold: 3,
    suppress_minutes: 60,
};

/// Every rule, in the order `scan --list-rules` prints them.
pub const RULES: [Rule; 4] = [SEED, VALIDATION, ROLE_SESSIONS, MANY_MODELS];

/// The rule of a tag.
pub fn rule(tag: RuleTag) -> &'static Rule {
    match tag {
        RuleTag::Seed => &RULES[0],
        RuleTag::Validation => &RULES[1],
        RuleTag::RoleSessions => &RULES[2],
        RuleTag::ManyModels => &RULES[3],
    }
}

/// The rules switched on (`RULES`, `scan --rules`): all of them unless told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSet([bool; 4]);

impl Default for RuleSet {
    fn default() -> Self {
        Self([true; 4])
    }
}

impl RuleSet {
    /// `all`, or rule ids separated by commas; an unknown id is an error naming it.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("all") {
            return Ok(Self::default());
        }
        let mut on = [false; 4];
        for id in value.split(',').map(str::trim) {
            let tag = RuleTag::from_id(id).ok_or_else(|| {
                format!(
                    "unknown rule id {id:?}; the rules are `all` or ids of {}",
                    RULES.map(|r| r.id).join(", ")
                )
            })?;
            on[tag as usize] = true;
        }
        if on == [false; 4] {
            return Err("names no rule".into());
        }
        Ok(Self(on))
    }

    pub fn only(tags: &[RuleTag]) -> Self {
        let mut on = [false; 4];
        for &t in tags {
            on[t as usize] = true;
        }
        Self(on)
    }

    pub fn has(&self, tag: RuleTag) -> bool {
        self.0[tag as usize]
    }

    /// The ids switched on, comma-separated, or `all`.
    pub fn ids(&self) -> String {
        if self.0 == [true; 4] {
            return "all".into();
        }
        RULES
            .iter()
            .filter(|r| self.has(r.tag))
            .map(|r| r.id)
            .collect::<Vec<_>>()
            .join(",")
    }
}

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

    #[test]
    fn rules_are_switched_on_by_id_and_an_unknown_id_is_named() {
        assert_eq!(RuleSet::parse("all"), Ok(RuleSet::default()));
        let two = RuleSet::parse(&format!("{}, {}", SEED.id, MANY_MODELS.id)).expect("ids");
        assert!(two.has(RuleTag::Seed) && two.has(RuleTag::ManyModels));
        assert!(!two.has(RuleTag::Validation) && !two.has(RuleTag::RoleSessions));
        assert_eq!(RuleSet::parse(&two.ids()), Ok(two));
        let err = RuleSet::parse("17261da3,nope").expect_err("unknown");
        assert!(err.contains("\"17261da3\""), "{err}");
        assert!(RuleSet::parse(" , ").is_err());
        for r in RULES {
            assert_eq!(rule(r.tag), &r);
            assert_eq!(r.tag.id(), r.id);
        }
    }
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
