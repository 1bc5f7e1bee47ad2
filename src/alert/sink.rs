//! Where alerts go: the [`AlertSink`] seam and the sinks that need no AWS (memory,
//! stdout); the AWS ones are in `crate::aws`.

use super::notice::{CeilingNotice, Notice};
use super::Alert;
use crate::errors::{lock, BoxError};
use crate::silence::SourceNotice;
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
    /// A notice could not be delivered.
    pub fn notice(sink: &str, notice: &Notice, source: impl Into<BoxError>) -> Self {
        Self {
            sink: sink.to_string(),
            key: format!("{} of {}", notice.detail_type(), notice.account_id()),
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

    /// Tells the team a log source went silent or resumed (docs/DESIGN.md, "Log
    /// sources"), or what the alert ceilings held back ("Alert ceilings").
    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// A sink of any kind.
pub type Sink = Arc<dyn AlertSink>;

/// Keeps alerts and notices in memory. Clones share them: keep one to look at what a
/// detector given the other delivered.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    alerts: Arc<Mutex<Vec<Alert>>>,
    notices: Arc<Mutex<Vec<SourceNotice>>>,
    ceilings: Arc<Mutex<Vec<CeilingNotice>>>,
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

    /// The ceiling summaries delivered.
    pub fn ceilings(&self) -> Vec<CeilingNotice> {
        lock(&self.ceilings).clone()
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

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            match notice {
                Notice::Source(n) => lock(&self.notices).push(n.clone()),
                Notice::Ceiling(n) => lock(&self.ceilings).push(n.clone()),
            }
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

    /// A ceiling summary is printed like an alert; notices of log sources come only
    /// from the function's sweep.
    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if !matches!(notice, Notice::Ceiling(_)) {
                return Ok(());
            }
            let text = match self.format {
                StdoutFormat::Json => notice.to_json(),
                StdoutFormat::Email => {
                    format!("Subject: {}\n\n{}", notice.subject(), notice.email_text())
                }
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")
                .and_then(|()| out.flush())
                .map_err(|e| SinkError::notice("stdout", notice, e))
        })
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
