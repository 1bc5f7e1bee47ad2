//! Detector configuration (docs/DESIGN.md, "Configuration"): the same settings for
//! the Lambda (from the environment) and for `scan` (from flags of the same names).

use crate::exceptions::Exceptions;
use crate::rule::{RuleSet, RuleTag};
use crate::text::Quoted;
use crate::window::WindowSpec;
use std::collections::BTreeMap;
use thiserror::Error;

pub const DEFAULT_THRESHOLD: u64 = 3;
pub const DEFAULT_BUCKET_MINUTES: u32 = 10;
pub const DEFAULT_WINDOW_BUCKETS: u32 = 6;
pub const DEFAULT_SUPPRESS_MINUTES: u32 = 60;
/// Alerts of one object sent one by one; the rest are summed up (docs/DESIGN.md,
/// "Alert ceilings").
pub const DEFAULT_MAX_ALERTS_PER_OBJECT: u32 = 10;
/// Alerts of one account sent per wall-clock hour; the rest are summed up.
pub const DEFAULT_MAX_ALERTS_PER_ACCOUNT_HOUR: u32 = 30;
/// The rule's `gen_ai.response.error_code == "AccessDeniedException"`, exactly.
pub const DEFAULT_DENIAL_CODES: &str = "AccessDeniedException";
/// CloudTrail writes IAM denials of `bedrock:InvokeModel` as `AccessDenied`.
pub const DEFAULT_CLOUDTRAIL_DENIAL_CODES: &str = "AccessDenied,AccessDeniedException";

/// The settings `Config` reads, by variable name (the `scan` flags are the same names
/// in lower case with dashes).
pub const VARIABLES: [&str; 9] = [
    "RULES",
    "RULE_SETTINGS",
    "THRESHOLD",
    "BUCKET_MINUTES",
    "WINDOW_BUCKETS",
    "SUPPRESS_MINUTES",
    "DENIAL_CODES",
    "CLOUDTRAIL_DENIAL_CODES",
    "EXCEPTIONS",
];

/// A configuration value that cannot be used; names the variable (or flag).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid {name}={}: {reason}", Quoted::<120>(value))]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// The variable `name` through `var`, unless unset or blank.
pub fn non_blank(var: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name).filter(|v| !v.trim().is_empty())
}

/// A rule's buckets and windows, threshold and suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSettings {
    pub spec: WindowSpec,
    pub threshold: u64,
    pub suppress_seconds: i64,
}

/// Settings of a rule beside the seed rule that replace its defaults (`RULE_SETTINGS`):
/// its threshold, window and suppression. Its buckets are its own (1 minute for the
/// validation rule, as the ES|QL it ports; 10 for the others).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleOverride {
    pub threshold: Option<u64>,
    pub window_buckets: Option<u32>,
    pub suppress_minutes: Option<u32>,
}

/// What counts as a denial, how it is bucketed and when it alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The rules switched on (docs/DESIGN.md, "Rules").
    pub rules: RuleSet,
    /// The other rules' settings that replace their defaults.
    pub rule_overrides: BTreeMap<RuleTag, RuleOverride>,
    pub threshold: u64,
    pub bucket_minutes: u32,
    pub window_buckets: u32,
    pub suppress_minutes: u32,
    /// Error codes that are denials in Bedrock model-invocation logs.
    pub denial_codes: Vec<String>,
    /// Error codes that are denials in CloudTrail records.
    pub cloudtrail_denial_codes: Vec<String>,
    /// Keys that do not alert, or alert at their own threshold.
    pub exceptions: Exceptions,
    /// Alerts of one object sent one by one, the most denied first.
    pub max_alerts_per_object: u32,
    /// Alerts of one account sent per wall-clock hour.
    pub max_alerts_per_account_hour: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rules: RuleSet::default(),
            rule_overrides: BTreeMap::new(),
            threshold: DEFAULT_THRESHOLD,
            bucket_minutes: DEFAULT_BUCKET_MINUTES,
            window_buckets: DEFAULT_WINDOW_BUCKETS,
            suppress_minutes: DEFAULT_SUPPRESS_MINUTES,
            denial_codes: parse_denial_codes("DENIAL_CODES", DEFAULT_DENIAL_CODES)
                .unwrap_or_default(),
            cloudtrail_denial_codes: parse_denial_codes(
                "CLOUDTRAIL_DENIAL_CODES",
                DEFAULT_CLOUDTRAIL_DENIAL_CODES,
            )
            .unwrap_or_default(),
            exceptions: Exceptions::default(),
            max_alerts_per_object: DEFAULT_MAX_ALERTS_PER_OBJECT,
            max_alerts_per_account_hour: DEFAULT_MAX_ALERTS_PER_ACCOUNT_HOUR,
        }
    }
}

impl Config {
    /// The settings `rule` counts and alerts with: the seed rule's are the configured
    /// ones (`THRESHOLD`, `BUCKET_MINUTES`, `WINDOW_BUCKETS`, `SUPPRESS_MINUTES`), the
    /// others' their own.
    pub fn rule_settings(&self, rule: RuleTag) -> RuleSettings {
        match rule {
            RuleTag::Seed => RuleSettings {
                spec: self.window(),
                threshold: self.threshold,
                suppress_seconds: self.suppress_seconds(),
            },
            other => {
                let rule = crate::rule::rule(other);
                let o = self.rule_overrides.get(&other).copied().unwrap_or_default();
                RuleSettings {
                    spec: WindowSpec::new(
                        rule.bucket_minutes,
                        o.window_buckets.unwrap_or(rule.window_buckets),
                    ),
                    threshold: o.threshold.unwrap_or(rule.threshold),
                    suppress_seconds: i64::from(
                        o.suppress_minutes.unwrap_or(rule.suppress_minutes),
                    ) * 60,
                }
            }
        }
    }

    /// Reads the [`VARIABLES`] through `var`; unset or empty means the default.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| non_blank(&var, name);
        let mut c = Config::default();
        if let Some(v) = get("RULES") {
            c.rules = RuleSet::parse(&v).map_err(|e| ConfigError::new("RULES", &v, e))?;
        }
        if let Some(v) = get("RULE_SETTINGS") {
            c.rule_overrides = parse_rule_settings(&v)?;
        }
        if let Some(v) = get("THRESHOLD") {
            c.threshold = parse_number("THRESHOLD", &v, 0, u64::from(u32::MAX))?;
        }
        if let Some(v) = get("BUCKET_MINUTES") {
            c.bucket_minutes = parse_number("BUCKET_MINUTES", &v, 1, 1440)? as u32;
        }
        if let Some(v) = get("WINDOW_BUCKETS") {
            c.window_buckets = parse_number("WINDOW_BUCKETS", &v, 1, 1000)? as u32;
        }
        if let Some(v) = get("SUPPRESS_MINUTES") {
            c.suppress_minutes = parse_number("SUPPRESS_MINUTES", &v, 0, 525_600)? as u32;
        }
        if let Some(v) = get("DENIAL_CODES") {
            c.denial_codes = parse_denial_codes("DENIAL_CODES", &v)?;
        }
        if let Some(v) = get("CLOUDTRAIL_DENIAL_CODES") {
            c.cloudtrail_denial_codes = parse_denial_codes("CLOUDTRAIL_DENIAL_CODES", &v)?;
        }
        if let Some(v) = get("EXCEPTIONS") {
            c.exceptions = Exceptions::parse(&v)
                .map_err(|reason| ConfigError::new("EXCEPTIONS", &v, reason))?;
        }
        Ok(c)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn window(&self) -> WindowSpec {
        WindowSpec::new(self.bucket_minutes, self.window_buckets)
    }

    pub fn suppress_seconds(&self) -> i64 {
        i64::from(self.suppress_minutes) * 60
    }
}

/// `RULE_SETTINGS`: comma-separated `<rule id>:<field>=<n>[:<field>=<n>...]`, fields
/// `threshold`, `window_buckets` and `suppress_minutes`, for the rules beside the seed
/// rule (whose settings are `THRESHOLD`, `WINDOW_BUCKETS` and `SUPPRESS_MINUTES`).
fn parse_rule_settings(value: &str) -> Result<BTreeMap<RuleTag, RuleOverride>, ConfigError> {
    const NAME: &str = "RULE_SETTINGS";
    let err = |reason: String| ConfigError::new(NAME, value, reason);
    let mut out: BTreeMap<RuleTag, RuleOverride> = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':').map(str::trim);
        let id = parts.next().unwrap_or_default();
        let tag = RuleTag::from_id(id).ok_or_else(|| {
            err(format!(
                "{}: no such rule (scan --list-rules)",
                Quoted::<80>(id)
            ))
        })?;
        if tag == RuleTag::Seed {
            return Err(err(
                "the ported rule's settings are THRESHOLD, WINDOW_BUCKETS and SUPPRESS_MINUTES"
                    .into(),
            ));
        }
        let o = out.entry(tag).or_default();
        let mut any = false;
        for field in parts {
            any = true;
            let (name, n) = field.split_once('=').ok_or_else(|| {
                err(format!(
                    "{}: expected <field>=<number>",
                    Quoted::<80>(field)
                ))
            })?;
            let number = |min: u64, max: u64| {
                parse_number(NAME, n, min, max)
                    .map_err(|e| err(format!("{}: {}", name.trim(), e.reason)))
            };
            match name.trim() {
                "threshold" => o.threshold = Some(number(0, u64::from(u32::MAX))?),
                "window_buckets" => o.window_buckets = Some(number(1, 1000)? as u32),
                "suppress_minutes" => o.suppress_minutes = Some(number(0, 525_600)? as u32),
                other => {
                    return Err(err(format!(
                        "{}: not a setting (threshold, window_buckets, suppress_minutes)",
                        Quoted::<80>(other)
                    )))
                }
            }
        }
        if !any {
            return Err(err(format!("{id}: no setting given")));
        }
    }
    Ok(out)
}

fn parse_number(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let err = |reason: String| ConfigError::new(name, value, reason);
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|e| err(format!("not a whole number ({e})")))?;
    if n < min || n > max {
        return Err(err(format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// Comma-separated error codes; blanks around commas are ignored, an empty entry or
/// one with characters no error code has is refused.
pub fn parse_denial_codes(name: &'static str, value: &str) -> Result<Vec<String>, ConfigError> {
    let err = |reason: &str| ConfigError::new(name, value, reason);
    let mut codes = Vec::new();
    for code in value.split(',').map(str::trim) {
        if code.is_empty() {
            return Err(err("empty entry in the comma-separated list"));
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' || b == b':')
        {
            return Err(err("error codes are letters, digits and . _ - :"));
        }
        if !codes.iter().any(|c| c == code) {
            codes.push(code.to_string());
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn the_other_rules_take_their_own_settings() {
        use crate::rule::{MANY_MODELS, SEED, VALIDATION};
        let c = from(&[(
            "RULE_SETTINGS",
            &format!(
                "{}:threshold=5:window_buckets=12, {}:suppress_minutes=0",
                MANY_MODELS.id, VALIDATION.id
            ),
        )])
        .expect("settings");
        let many = c.rule_settings(RuleTag::ManyModels);
        assert_eq!((many.threshold, many.spec.window_buckets()), (5, 12));
        assert_eq!(many.suppress_seconds, 3600);
        let validation = c.rule_settings(RuleTag::Validation);
        assert_eq!((validation.threshold, validation.suppress_seconds), (3, 0));
        assert_eq!(validation.spec.bucket_seconds(), 60, "its own minute");
        // The seed rule keeps its own variables.
        assert_eq!(c.rule_settings(RuleTag::Seed).threshold, 3);
        for (bad, says) in [
            (format!("{}:threshold=5", SEED.id), "THRESHOLD"),
            ("nope:threshold=5".to_string(), "no such rule"),
            (format!("{}:thresh=5", MANY_MODELS.id), "not a setting"),
            (
                format!("{}:window_buckets=0", MANY_MODELS.id),
                "between 1 and 1000",
            ),
            (format!("{}:threshold", MANY_MODELS.id), "expected"),
            (MANY_MODELS.id.to_string(), "no setting"),
        ] {
            let e = from(&[("RULE_SETTINGS", &bad)]).expect_err(&bad);
            assert_eq!(e.name, "RULE_SETTINGS");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults() {
        let c = from(&[]).expect("defaults");
        assert_eq!(c.threshold, 3);
        assert_eq!(c.bucket_minutes, 10);
        assert_eq!(c.window_buckets, 6);
        assert_eq!(c.suppress_minutes, 60);
        assert_eq!(c.denial_codes, vec!["AccessDeniedException"]);
        assert_eq!(
            c.cloudtrail_denial_codes,
            vec!["AccessDenied", "AccessDeniedException"]
        );
    }

    #[test]
    fn values_are_read() {
        let c = from(&[
            ("THRESHOLD", "5"),
            ("BUCKET_MINUTES", "5"),
            ("WINDOW_BUCKETS", "12"),
            ("SUPPRESS_MINUTES", "0"),
            (
                "DENIAL_CODES",
                " AccessDeniedException , UnauthorizedOperation ",
            ),
            ("CLOUDTRAIL_DENIAL_CODES", "AccessDenied"),
        ])
        .expect("config");
        assert_eq!(c.threshold, 5);
        assert_eq!(c.window().bucket_seconds(), 300);
        assert_eq!(c.window().window_buckets(), 12);
        assert_eq!(c.suppress_seconds(), 0);
        assert_eq!(
            c.denial_codes,
            vec!["AccessDeniedException", "UnauthorizedOperation"]
        );
        assert_eq!(c.cloudtrail_denial_codes, vec!["AccessDenied"]);
    }

    #[test]
    fn every_variable_is_read_and_no_other() {
        let read = std::cell::RefCell::new(Vec::new());
        let _ = Config::from_vars(|name| {
            read.borrow_mut().push(name.to_string());
            None
        });
        assert_eq!(read.into_inner(), VARIABLES);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("THRESHOLD", "three"),
            ("THRESHOLD", "-1"),
            ("BUCKET_MINUTES", "0"),
            ("WINDOW_BUCKETS", "1001"),
            ("SUPPRESS_MINUTES", "1.5"),
            ("DENIAL_CODES", "AccessDenied,,X"),
            ("DENIAL_CODES", "Access\"Denied"),
            ("CLOUDTRAIL_DENIAL_CODES", ","),
            ("EXCEPTIONS", r#"[{"reason": "names no field"}]"#),
        ] {
            let e = from(&[(k, v)]).expect_err(k);
            assert_eq!(e.name, k);
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}
