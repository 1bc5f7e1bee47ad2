//! [`AlertSink`] that puts every alert on an EventBridge bus, for routing with ordinary
//! rules (chat, paging, Step Functions, another account): source
//! `bedrock-denied-models`, detail type `Repeated Denied Bedrock Model Invocations`,
//! detail the alert JSON (docs/DESIGN.md, "Alert sinks").

use super::json::JsonApi;
use crate::alert::Notice;
use crate::alert::{Alert, AlertSink, SinkError};
use crate::Context;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

pub const SINK_NAME: &str = "events";
pub const SOURCE: &str = "bedrock-denied-models";
/// The seed rule's detail type; each rule has its own (`Rule::detail_type`).
pub const DETAIL_TYPE: &str = crate::rule::SEED.detail_type;
/// EventBridge takes entries of up to 256 KB; leave room for the envelope.
pub const MAX_DETAIL_BYTES: usize = 200 * 1024;

#[derive(Debug, Clone)]
pub struct EventBridgeSink {
    api: JsonApi,
    bus: String,
}

impl EventBridgeSink {
    /// `bus` is the event bus name or ARN.
    pub fn new(api: JsonApi, bus: impl Into<String>) -> Self {
        Self {
            api,
            bus: bus.into(),
        }
    }
}

/// The PutEvents request for one alert.
pub fn put_events_request(alert: &Alert, bus: &str) -> Value {
    json!({"Entries": [{
        "Source": SOURCE,
        "DetailType": alert.rule.rule().detail_type,
        "Detail": alert.to_json_within(MAX_DETAIL_BYTES),
        "Resources": [],
        "EventBusName": bus,
    }]})
}

/// The PutEvents request for one notice.
pub fn notice_request(notice: &Notice, bus: &str) -> Value {
    json!({"Entries": [{
        "Source": SOURCE,
        "DetailType": notice.detail_type(),
        "Detail": notice.to_json(),
        "Resources": [],
        "EventBusName": bus,
    }]})
}

/// PutEvents answers 200 even when an entry failed: `FailedEntryCount` says.
pub fn check_put_events_response(answer: &Value) -> Result<(), String> {
    super::json::check_batch_answer(answer, "FailedEntryCount", "/Entries/0", "entry")
}

impl EventBridgeSink {
    /// Puts the one entry of `request` on the bus.
    async fn put(&self, request: &Value) -> Result<(), Context> {
        self.api
            .call_one(
                "PutEvents",
                "/",
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", "AWSEvents.PutEvents"),
                ],
                request.to_string().as_bytes(),
                check_put_events_response,
            )
            .await
            .map_err(|e| Context::new(format!("EventBridge PutEvents to {}", self.bus), e))
    }
}

impl AlertSink for EventBridgeSink {
    fn name(&self) -> &str {
        SINK_NAME
    }

    fn publish<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.put(&put_events_request(alert, &self.bus))
                .await
                .map_err(|e| SinkError::new(SINK_NAME, alert, e))
        })
    }

    fn notify<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.put(&notice_request(notice, &self.bus))
                .await
                .map_err(|e| SinkError::notice(SINK_NAME, notice, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_entry_is_a_failure_even_in_a_200_answer() {
        assert!(check_put_events_response(
            &json!({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})
        )
        .is_ok());
        let err = check_put_events_response(&json!({"FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}))
        .expect_err("failed");
        assert!(err.contains("InternalFailure"), "{err}");
    }
}
