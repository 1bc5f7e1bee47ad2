//! [`AlertSink`] over SNS Publish: `MessageStructure=json` with the alert JSON as
//! `default` and the text rendering as `email`, the subject, and message attributes
//! for filter policies (docs/DESIGN.md, "The alert").

use crate::alert::Notice;
use crate::alert::{Alert, AlertSink, SinkError};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use futures_util::future::BoxFuture;

/// SNS's limit is 256 KiB for the whole message; leave room for the envelope.
pub const MAX_ALERT_JSON_BYTES: usize = 120 * 1024;
const MAX_ATTRIBUTE_CHARS: usize = 1024;

#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
}

impl SnsSink {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// The `Message` for `MessageStructure=json`.
pub fn message_body(alert: &Alert) -> String {
    serde_json::json!({
        "default": alert.to_json_within(MAX_ALERT_JSON_BYTES),
        "email": alert.email_text(),
    })
    .to_string()
}

/// SNS attribute values take only XML-safe characters and no empty string.
pub fn attribute_value(v: &str) -> String {
    let cleaned: String = v
        .chars()
        .take(MAX_ATTRIBUTE_CHARS)
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => '\u{FFFD}',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        "-".to_string()
    } else {
        cleaned
    }
}

pub const SINK_NAME: &str = "sns";

impl SnsSink {
    /// Publishes `message` (a JSON message structure) with `subject` and the
    /// `attributes` subscribers filter on.
    async fn send(
        &self,
        message: String,
        subject: String,
        attributes: &[(&str, &str)],
    ) -> Result<(), crate::errors::BoxError> {
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(message)
            .subject(subject);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(attribute_value(value))
                .build()?;
            publish = publish.message_attributes(*name, value);
        }
        publish
            .send()
            .await
            .map_err(|e| crate::Context::new(format!("SNS Publish to {}", self.topic_arn), e))?;
        Ok(())
    }
}

impl AlertSink for SnsSink {
    fn name(&self) -> &str {
        SINK_NAME
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let attributes = [
                ("severity", alert.rule.severity.as_str()),
                ("cloud.account.id", alert.account_id.as_str()),
                ("gen_ai.request.model.id", alert.model_id.as_str()),
            ];
            self.send(message_body(alert), alert.subject(), &attributes)
                .await
                .map_err(|e| SinkError::new(SINK_NAME, alert, e))
        })
    }

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let message = serde_json::json!({
                "default": notice.to_json(),
                "email": notice.email_text(),
            });
            let attributes = [
                ("severity", notice.severity()),
                ("cloud.account.id", notice.account_id()),
                ("notice", notice.detail_type()),
            ];
            self.send(message.to_string(), notice.subject(), &attributes)
                .await
                .map_err(|e| SinkError::notice(SINK_NAME, notice, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_stays_under_the_sns_limit_with_huge_ids() {
        let mut alert: Alert = serde_json::from_value(serde_json::json!({
            "rule": crate::alert::RuleInfo::default(),
            "user.id": "u".repeat(1_000_000), "gen_ai.request.model.id": "\u{7}".repeat(100_000),
            "cloud.account.id": "1", "total_denials": 4, "threshold": 3,
            "window": {"start": "a", "end": "b"}, "buckets": [],
            "evidence": {"objects": ["s3://b/k"], "request_ids": ["r"], "user_agents": ["u".repeat(100_000)]}
        }))
        .expect("alert");
        alert.evidence.request_ids = vec!["x".repeat(1000); 20];
        let body = message_body(&alert);
        assert!(body.len() < 256 * 1024, "{}", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(v["default"]
            .as_str()
            .is_some_and(|d| d.contains("total_denials")));
    }

    #[test]
    fn attributes_are_cleaned() {
        assert_eq!(attribute_value(""), "-");
        assert_eq!(attribute_value("a\u{0}b"), "a\u{FFFD}b");
        assert_eq!(
            attribute_value(&"x".repeat(5000)).len(),
            MAX_ATTRIBUTE_CHARS
        );
    }
}
