//! Where alerts go: the [`AlertSink`] seam and the sinks that need no AWS (memory,
//! stdout); the AWS ones are in `crate::aws`.

use super::Alert;
use crate::errors::{lock, BoxError};
use crate::sources::SourceNotice;
use futures_util::future::BoxFuture;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Delivering failed; the invocation must fail so the alert is retried.
#[derive(Debug, Error)]
#[error("{sink}: delivering the alert for {key} failed")]
pub struct SinkError {
    pub sink: String,
    pub key: String,
    #[source]
    pub source: BoxError,
}

impl SinkError {
    pub fn new(sink: &str, alert: &Alert, source: impl Into<BoxError>) -> Self {
        Self {
            sink: sink.to_string(),
            key: alert.key().to_string(),
            source: source.into(),
        }
    }
}

impl SinkError {
    /// A notice about an account's logs could not be delivered.
    pub fn notice(sink: &str, notice: &SourceNotice, source: impl Into<BoxError>) -> Self {
        Self {
            sink: sink.to_string(),
            key: format!("log source {}", notice.account_id),
            source: source.into(),
        }
    }
}

/// Where alerts go: SNS, EventBridge and Security Hub when deployed, stdout for
/// `scan`, memory in tests. One type for all of them ([`Sink`]), so a detector holds
/// any mix; the one boxed call per delivery costs nothing beside the network.
pub trait AlertSink: Send + Sync {
    /// A short, stable name, recorded with each delivery (`sns`, `events`, ...).
    fn name(&self) -> &str;

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Tells the team an account's logs went silent or resumed (docs/DESIGN.md, "Log
    /// sources"). Sinks for alerts only take no notices.
    fn notify<'a>(&'a self, notice: &'a SourceNotice) -> BoxFuture<'a, Result<(), SinkError>> {
        let _ = notice;
        Box::pin(async { Ok(()) })
    }
}

/// A sink of any kind.
pub type Sink = Arc<dyn AlertSink>;

/// Keeps alerts and notices in memory. Clones share them: keep one to look at what a
/// detector given the other delivered.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    alerts: Arc<Mutex<Vec<Alert>>>,
    notices: Arc<Mutex<Vec<SourceNotice>>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }

    pub fn notices(&self) -> Vec<SourceNotice> {
        lock(&self.notices).clone()
    }
}

impl AlertSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            lock(&self.alerts).push(alert.clone());
            Ok(())
        })
    }

    fn notify<'a>(&'a self, notice: &'a SourceNotice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            lock(&self.notices).push(notice.clone());
            Ok(())
        })
    }
}

/// How `scan` prints alerts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum StdoutFormat {
    /// One JSON object per line: what SNS subscribers other than email receive.
    #[default]
    Json,
    /// The subject and text email subscribers receive.
    Email,
}

/// Writes each alert to stdout (`scan`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink {
    pub format: StdoutFormat,
    /// The alerts are shown only, never delivered anywhere: say so on each
    /// (`"delivered": false`, a `[NOT DELIVERED]` subject).
    pub not_delivered: bool,
}

impl AlertSink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move { self.print(alert) })
    }
}

impl StdoutSink {
    fn print(&self, alert: &Alert) -> Result<(), SinkError> {
        let text = match (self.format, self.not_delivered) {
            (StdoutFormat::Json, false) => alert.to_json(),
            (StdoutFormat::Json, true) => {
                let mut v = serde_json::to_value(alert).unwrap_or_default();
                v["delivered"] = serde_json::Value::Bool(false);
                v.to_string()
            }
            (StdoutFormat::Email, not_delivered) => {
                let mark = if not_delivered {
                    "[NOT DELIVERED] "
                } else {
                    ""
                };
                format!(
                    "Subject: {mark}{}\n\n{}",
                    alert.subject(),
                    alert.email_text()
                )
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(|e| SinkError::new("stdout", alert, e))
    }
}
