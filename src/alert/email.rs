//! The alert as people read it: the email subscribers' plain text and the subject,
//! and the escaping that keeps an id from the logs inert in any text rendering.

use super::{Alert, NEXT_STEPS, SEVERITY};
use crate::text::text_escape;
use std::fmt::Write as _;

/// Subjects are at most this many printable ASCII characters (SNS allows 100).
pub const MAX_SUBJECT_CHARS: usize = 100;

impl Alert {
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
