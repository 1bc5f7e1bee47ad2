//! The alert as people read it: the email subscribers' plain text and the subject,
//! and the escaping that keeps an id from the logs inert in any text rendering.

use super::{Alert, NEXT_STEPS, SEVERITY};
use crate::rule::RuleTag;
use crate::text::text_escape;
use std::fmt::Write as _;

/// Subjects are at most this many printable ASCII characters (SNS allows 100).
pub const MAX_SUBJECT_CHARS: usize = 100;

impl Alert {
    /// `[HIGH] Bedrock: 4 denied calls to <model> by <principal>`: at most
    /// [`MAX_SUBJECT_CHARS`] printable ASCII characters.
    /// The role rule: `[HIGH] Bedrock: 4 denied calls to <model> in 3 sessions of <role>`;
    /// the model rule: `[HIGH] Bedrock: 5 models denied to <principal>`.
    pub fn subject(&self) -> String {
        let severity = match self.rule.rule().tag {
            RuleTag::Seed => SEVERITY.to_ascii_uppercase(),
            _ => self.rule.severity.to_ascii_uppercase(),
        };
        let (head, by, model) = match self.rule.rule().tag {
            RuleTag::ManyModels => (
                format!(
                    "[{severity}] Bedrock: {} models denied to",
                    self.models.len()
                ),
                " ",
                String::new(),
            ),
            RuleTag::RoleSessions => (
                format!(
                    "[{severity}] Bedrock: {} denied calls to ",
                    self.total_denials
                ),
                " in sessions of ",
                ascii_escape(&self.model_id),
            ),
            RuleTag::Validation => (
                format!(
                    "[{severity}] Bedrock: {} validation errors in a minute",
                    self.total_denials
                ),
                " by ",
                String::new(),
            ),
            RuleTag::Seed => (
                format!(
                    "[{severity}] Bedrock: {} denied calls to ",
                    self.total_denials
                ),
                " by ",
                ascii_escape(&self.model_id),
            ),
        };
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
        let what = match self.rule.rule().tag {
            RuleTag::Seed => "Repeated denied Amazon Bedrock model invocations",
            RuleTag::RoleSessions => {
                "Denied Amazon Bedrock model invocations across one role's sessions"
            }
            RuleTag::ManyModels => "Amazon Bedrock invocations denied on many models",
            RuleTag::Validation => "Repeated Amazon Bedrock validation errors by one user",
        };
        let _ = writeln!(
            t,
            "{what} (severity {}, risk score {}).",
            self.rule.severity, self.rule.risk_score
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Principal (user.id):  {}", text_escape(&self.user_id));
        // The model rule groups no model: it lists the models below.
        if !matches!(
            self.rule.rule().tag,
            RuleTag::ManyModels | RuleTag::Validation
        ) {
            let _ = writeln!(
                t,
                "Model (gen_ai.request.model.id):  {}",
                text_escape(&self.model_id)
            );
        }
        let _ = writeln!(
            t,
            "Account (cloud.account.id):  {}",
            text_escape(&self.account_id)
        );
        if !self.evidence.regions.is_empty() {
            let _ = writeln!(t, "Region:  {}", joined(&self.evidence.regions));
        }
        if !self.sessions.is_empty() {
            let _ = writeln!(t, "Sessions:  {}", joined(&self.sessions));
        }
        if !self.models.is_empty() {
            let _ = writeln!(t, "Models denied:  {}", joined(&self.models));
        }
        let (calls, per_bucket) = match self.rule.rule().tag {
            RuleTag::Validation => ("Validation errors", "Validation errors per minute"),
            _ => ("Denied calls", "Denials per bucket"),
        };
        let _ = writeln!(
            t,
            "{calls}:  {} between {} and {} (alerts above {})",
            self.total_denials, self.window.start, self.window.end, self.threshold
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "{per_bucket}:");
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
