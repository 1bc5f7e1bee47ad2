//! CloudWatch Logs subscription payloads: `{"awslogs": {"data": base64(gzip(JSON))}}`
//! whose `logEvents[].message` are Bedrock invocation records or CloudTrail records
//! (docs/DESIGN.md, "Inputs and formats").

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use std::io::Read;

/// Largest decompressed payload read; a larger one is refused as malformed. Lambda
/// passes at most 1 MB of event, so this bounds a hostile compression ratio.
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 20;

/// The decoded payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPayload {
    /// Account that owns the log group.
    #[serde(default)]
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
    /// `DATA_MESSAGE`, or `CONTROL_MESSAGE` for CloudWatch Logs' reachability checks.
    pub message_type: String,
    #[serde(default)]
    pub log_events: Vec<LogEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEvent {
    /// Unique per log event.
    pub id: String,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    pub message: String,
}

impl LogPayload {
    pub fn is_control_message(&self) -> bool {
        self.message_type == "CONTROL_MESSAGE"
    }
}

/// Decodes `awslogs.data`: base64 (padded or not), then gzip, then JSON.
pub fn decode(data: &str) -> Result<LogPayload, String> {
    let compressed = STANDARD
        .decode(data)
        .or_else(|_| STANDARD_NO_PAD.decode(data))
        .map_err(|e| format!("awslogs.data is not base64: {e}"))?;
    let mut text = Vec::new();
    MultiGzDecoder::new(&compressed[..])
        .take(MAX_PAYLOAD_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("awslogs.data is not gzip: {e}"))?;
    if text.len() as u64 > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "awslogs.data is larger than {} MiB decompressed",
            MAX_PAYLOAD_BYTES >> 20
        ));
    }
    serde_json::from_slice(&text).map_err(|e| format!("awslogs.data is not a log payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::awslogs_data as encode;
    use serde_json::json;

    fn payload() -> serde_json::Value {
        json!({
            "messageType": "DATA_MESSAGE", "owner": "111122223333",
            "logGroup": "/aws/bedrock/modelinvocations", "logStream": "aws/bedrock/modelinvocations",
            "subscriptionFilters": ["bedrock-denied-models"],
            "logEvents": [
                {"id": "31953106606966983378809025079804211143289615424298221568",
                 "timestamp": 1_773_478_800_000_i64, "message": "{\"a\":1}"}
            ],
            "policyLevel": "ACCOUNT_LEVEL_POLICY"
        })
    }

    #[test]
    fn decodes_what_cloudwatch_logs_sends() {
        let p = decode(&encode(&payload().to_string())).expect("payload");
        assert_eq!(p.log_group, "/aws/bedrock/modelinvocations");
        assert_eq!(p.owner, "111122223333");
        assert_eq!(p.log_events.len(), 1);
        assert_eq!(p.log_events[0].message, "{\"a\":1}");
        assert!(!p.is_control_message());
        // Unpadded base64 too.
        let unpadded = encode(&payload().to_string())
            .trim_end_matches('=')
            .to_string();
        assert!(decode(&unpadded).is_ok());
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        assert!(decode("!!!").expect_err("base64").contains("base64"));
        assert!(decode(&STANDARD.encode(b"plain"))
            .expect_err("gzip")
            .contains("gzip"));
        assert!(decode(&encode("[1, 2]"))
            .expect_err("shape")
            .contains("log payload"));
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let big = " ".repeat((MAX_PAYLOAD_BYTES + 10) as usize);
        let err = decode(&encode(&big)).expect_err("too big");
        assert!(err.contains("larger than"), "{err}");
    }
}
