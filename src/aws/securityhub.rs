//! [`AlertSink`] that imports every alert into Security Hub as an ASFF finding with
//! BatchImportFindings (docs/DESIGN.md, "Alert sinks"). The finding id depends on the
//! key and the window only, so a retried import updates the same finding.

use super::json::JsonApi;
use crate::alert::finding::finding;
use crate::alert::Notice;
use crate::alert::{rfc3339, Alert, AlertSink, SinkError};
use crate::Context;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

pub const SINK_NAME: &str = "securityhub";

#[derive(Debug, Clone)]
pub struct SecurityHubSink {
    api: JsonApi,
    /// The account the function runs in: the only one it may import findings for.
    account: String,
}

impl SecurityHubSink {
    pub fn new(api: JsonApi, account: impl Into<String>) -> Self {
        Self {
            api,
            account: account.into(),
        }
    }
}

/// BatchImportFindings answers 200 even when a finding failed: `FailedCount` says.
pub fn check_import_response(answer: &Value) -> Result<(), String> {
    super::json::check_batch_answer(answer, "FailedCount", "/FailedFindings/0", "finding")
}

impl AlertSink for SecurityHubSink {
    fn name(&self) -> &str {
        SINK_NAME
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let now = rfc3339(chrono::Utc::now().timestamp());
            let body =
                json!({"Findings": [finding(alert, &self.account, self.api.region(), &now)]});
            let what = "Security Hub BatchImportFindings";
            self.api
                .call_one(
                    "BatchImportFindings",
                    "/findings/import",
                    &[("content-type", "application/json")],
                    body.to_string().as_bytes(),
                    check_import_response,
                )
                .await
                .map_err(|e| SinkError::new(SINK_NAME, alert, Context::new(what, e)))
        })
    }

    /// Findings are alerts only: notices about log sources and ceiling summaries go to
    /// the team through SNS and EventBridge (docs/DESIGN.md, "Alert sinks").
    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        let _ = notice;
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_finding_is_a_failure_even_in_a_200_answer() {
        assert!(check_import_response(&json!({"FailedCount": 0, "SuccessCount": 1})).is_ok());
        let err = check_import_response(&json!({"FailedCount": 1, "SuccessCount": 0,
            "FailedFindings": [{"Id": "x", "ErrorCode": "InvalidAccess", "ErrorMessage": "not subscribed"}]}))
        .expect_err("failed");
        assert!(err.contains("InvalidAccess"), "{err}");
    }
}
