//! Exception rules (`EXCEPTIONS`): stop alerts for known-noisy keys, or give them
//! their own threshold, for a reason and optionally until a date (docs/DESIGN.md,
//! "Exceptions").
//!
//! Denials of excepted keys are still counted, so a rule that is removed or expires
//! takes effect on the next object.

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

use crate::key::{DenialKey, RuleTag};

/// A value from a rule: exact, except that `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn matches(&self, text: &str) -> bool {
        let Some((first, tail)) = self.0.split_once('*') else {
            return self.0 == text; // no '*': exact
        };
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let (middle, last) = tail.rsplit_once('*').unwrap_or(("", tail));
        for part in middle.split('*') {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One rule. A key matches when every field the rule names matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRule {
    pub user_id: Option<Pattern>,
    pub model_id: Option<Pattern>,
    pub account_id: Option<Pattern>,
    /// The key's own threshold; `None` stops its alerts.
    pub threshold: Option<u64>,
    pub reason: String,
    /// The rule ends at this time (epoch seconds), when set.
    pub until: Option<i64>,
    /// The detection rules it applies to; empty: the seed rule only, as before rules
    /// could be named.
    pub rules: Vec<RuleTag>,
}

impl ExceptionRule {
    pub fn matches(&self, key: &DenialKey) -> bool {
        let applies = if self.rules.is_empty() {
            key.rule == RuleTag::Seed
        } else {
            self.rules.contains(&key.rule)
        };
        applies
            && [
                (&self.user_id, &key.user_id),
                (&self.model_id, &key.model_id),
                (&self.account_id, &key.account_id),
            ]
            .into_iter()
            .all(|(p, v)| p.as_ref().is_none_or(|p| p.matches(v)))
    }

    pub fn is_active(&self, now: i64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// The configured rules, in order: the first active matching rule wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    rules: Vec<ExceptionRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "user.id")]
    user_id: Option<String>,
    #[serde(rename = "gen_ai.request.model.id")]
    model_id: Option<String>,
    #[serde(rename = "cloud.account.id")]
    account_id: Option<String>,
    threshold: Option<u64>,
    reason: Option<String>,
    until: Option<String>,
    /// Ids of the detection rules the exception applies to (default: the seed rule).
    rules: Option<Vec<String>>,
}

impl Exceptions {
    /// Parses the JSON array of rules; the error names the rule and what is wrong.
    pub fn parse(json: &str) -> Result<Self, String> {
        let rules: Vec<Value> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON array of rules: {e}"))?;
        let mut out = Vec::with_capacity(rules.len());
        for (i, raw) in rules.into_iter().enumerate() {
            let shown = raw.to_string();
            let bad = |why: String| format!("rule {} ({shown}): {why}", i + 1);
            let r: RawRule = serde_json::from_value(raw).map_err(|e| bad(e.to_string()))?;
            if r.user_id.is_none() && r.model_id.is_none() && r.account_id.is_none() {
                return Err(bad(
                    "names none of user.id, gen_ai.request.model.id, cloud.account.id".into(),
                ));
            }
            let reason = r
                .reason
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| bad("\"reason\" is required".into()))?;
            let until = r
                .until
                .map(|u| {
                    DateTime::parse_from_rfc3339(&u)
                        .map(|t| t.timestamp())
                        .map_err(|e| bad(format!("\"until\" is not RFC 3339: {e}")))
                })
                .transpose()?;
            let rules = r
                .rules
                .unwrap_or_default()
                .iter()
                .map(|id| {
                    RuleTag::from_id(id)
                        .ok_or_else(|| bad(format!("\"rules\" names no rule: {id:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(ExceptionRule {
                rules,
                user_id: r.user_id.map(Pattern),
                model_id: r.model_id.map(Pattern),
                account_id: r.account_id.map(Pattern),
                threshold: r.threshold,
                reason,
                until,
            });
        }
        Ok(Self { rules: out })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[ExceptionRule] {
        &self.rules
    }

    /// The rule that applies to `key` at `now`, if any.
    pub fn rule_for(&self, key: &DenialKey, now: i64) -> Option<&ExceptionRule> {
        self.rules
            .iter()
            .find(|r| r.is_active(now) && r.matches(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern(s.to_string())
    }

    #[test]
    fn an_exception_applies_to_the_seed_rule_unless_it_names_rules() {
        let rules = Exceptions::parse(
            r#"[{"user.id": "a", "reason": "r"},
                {"user.id": "b", "rules": ["5ccff5be-bfdf-4b36-91f2-0e122eb0a8db"], "reason": "r"}]"#,
        )
        .expect("rules");
        let seed = |u: &str| DenialKey::new(u, "m", "1");
        let models = |u: &str| DenialKey::new(u, "", "1").for_rule(RuleTag::ManyModels);
        assert!(rules.rule_for(&seed("a"), 0).is_some());
        assert!(rules.rule_for(&models("a"), 0).is_none());
        assert!(rules.rule_for(&seed("b"), 0).is_none());
        assert!(rules.rule_for(&models("b"), 0).is_some());
        let err = Exceptions::parse(r#"[{"user.id": "a", "rules": ["nope"], "reason": "r"}]"#)
            .expect_err("unknown rule");
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn star_matches_any_run_and_nothing_else_is_special() {
        for (pat, text, want) in [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("*", "", true),
            ("a*c", "ac", true),
            ("a*c", "abcbc", true),
            ("a*c", "abcb", false),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("aa*aa", "aaa", false),
            ("a?c", "abc", false),
            ("a.c", "abc", false),
            (
                "arn:aws:sts::*:assumed-role/ci-probe/*",
                "arn:aws:sts::111122223333:assumed-role/ci-probe/run-1",
                true,
            ),
            (
                "arn:aws:sts::*:assumed-role/ci-probe/*",
                "arn:aws:sts::111122223333:assumed-role/ci-probe-x/run-1",
                false,
            ),
        ] {
            assert_eq!(p(pat).matches(text), want, "{pat:?} vs {text:?}");
        }
    }

    #[test]
    fn the_first_active_matching_rule_wins() {
        let e = Exceptions::parse(
            r#"[
              {"user.id": "arn:aws:sts::*:assumed-role/ci-probe/*", "reason": "CI checks model access", "until": "2027-01-31T00:00:00Z"},
              {"cloud.account.id": "111122223333", "gen_ai.request.model.id": "anthropic.*", "threshold": 20, "reason": "sandbox account"}
            ]"#,
        )
        .expect("rules");
        let ci = DenialKey::new(
            "arn:aws:sts::111122223333:assumed-role/ci-probe/run",
            "anthropic.claude",
            "111122223333",
        );
        let before = 1_801_353_599; // 2027-01-30T23:59:59Z
        let expired = 1_801_353_600; // 2027-01-31T00:00:00Z: the first rule has ended
        assert_eq!(
            e.rule_for(&ci, before).map(|r| r.reason.as_str()),
            Some("CI checks model access")
        );
        assert_eq!(
            e.rule_for(&ci, expired).map(|r| r.threshold),
            Some(Some(20))
        );
        let other = DenialKey::new("arn:aws:iam::1:user/bob", "meta.llama", "111122223333");
        assert!(e.rule_for(&other, before).is_none());
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        for (json, expect) in [
            ("{}", "not a JSON array"),
            (r#"[{"user.id": "x"}]"#, "rule 1"),
            (
                r#"[{"user.id": "x", "reason": "ok"}, {"reason": "no field"}]"#,
                "rule 2",
            ),
            (r#"[{"user_id": "x", "reason": "typo"}]"#, "unknown field"),
            (
                r#"[{"user.id": "x", "reason": "r", "until": "tomorrow"}]"#,
                "RFC 3339",
            ),
            (
                r#"[{"user.id": "x", "reason": "r", "threshold": -1}]"#,
                "rule 1",
            ),
            (r#"[{"user.id": "x", "reason": "  "}]"#, "reason"),
        ] {
            let err = Exceptions::parse(json).expect_err(json);
            assert!(err.contains(expect), "{json}: {err}");
        }
    }
}
