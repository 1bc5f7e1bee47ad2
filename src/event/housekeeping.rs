//! Objects that are not logs to read (docs/DESIGN.md, "Inputs and formats"): empty
//! objects, Bedrock's logging permission check, and Bedrock's large-payload files in
//! the `data/` folder below `BedrockModelInvocationLogs/<region>/` (their invocations
//! are logged, with the denial, in the main log). A `data` folder anywhere else (a
//! bucket prefix such as `security/data/`) is read.

/// Why an object with this key and size is skipped, or `None` to read it.
pub fn skip_reason(key: &str, size: u64) -> Option<&'static str> {
    if size == 0 {
        Some("empty object")
    } else if key.contains("amazon-bedrock-logs-permission-check") {
        Some("Bedrock logging permission check")
    } else if crate::log_keys::parse(key).is_some_and(|k| k.is_large_payload()) {
        Some("Bedrock large-payload file")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn housekeeping_objects_are_skipped() {
        assert_eq!(skip_reason("AWSLogs/1/x.json.gz", 0), Some("empty object"));
        assert!(skip_reason(
            "AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
            10
        )
        .is_some());
        assert!(skip_reason(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data/abc.json.gz",
            10
        )
        .is_some());
        assert_eq!(
            skip_reason(
                "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz",
                10
            ),
            None
        );
        // A prefix that contains `data` is read.
        assert_eq!(
            skip_reason(
                "security/data/bedrock/AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz",
                10
            ),
            None
        );
    }
}
