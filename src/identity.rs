//! Identities: of one unit of log (an object, a file or a CloudWatch Logs payload),
//! of an S3 object's content for the sweep's markers, and of one processing attempt
//! (docs/DESIGN.md, "Object identity").

use crate::arn::partition;
use crate::key::digest_parts;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Identity of one unit of log (an object, a file or a CloudWatch Logs payload): a
/// human-readable name and a digest that changes whenever the content may have
/// changed (docs/DESIGN.md, "Object identity").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// `s3://bucket/key`, `file:///path`, or the ARN of a CloudWatch Logs log stream.
    pub uri: String,
    /// Hex digest of (location, version), recorded in the counters it contributed to.
    pub token: String,
}

impl ObjectId {
    /// An S3 object; `version` is the version id read, else the ETag read.
    pub fn s3(bucket: &str, key: &str, version: &str) -> Self {
        Self {
            uri: format!("s3://{bucket}/{key}"),
            token: token(&[b"s3", bucket.as_bytes(), key.as_bytes(), version.as_bytes()]),
        }
    }

    /// The account whose folder holds this object, when its key (or path) follows
    /// AWS's log layout (`crate::log_keys`).
    pub fn folder_account(&self) -> Option<String> {
        let path = match self.uri.strip_prefix("s3://") {
            Some(rest) => rest.split_once('/').map(|(_, key)| key)?,
            None => self.uri.strip_prefix("file://")?,
        };
        crate::log_keys::key_account(path).map(str::to_string)
    }

    pub fn file(path: &str, version: &str) -> Self {
        Self {
            uri: format!("file://{path}"),
            token: token(&[b"file", path.as_bytes(), version.as_bytes()]),
        }
    }

    /// A CloudWatch Logs subscription payload: named by its log stream, identified by
    /// the log group, the stream and the ids of the log events it carries.
    pub fn log_events<'a>(
        owner: &str,
        region: &str,
        group: &str,
        stream: &str,
        event_ids: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let ids: Vec<&str> = event_ids.into_iter().collect();
        let mut parts: Vec<&[u8]> = vec![b"logs", group.as_bytes(), stream.as_bytes()];
        parts.extend(ids.iter().map(|id| id.as_bytes()));
        Self {
            uri: format!(
                "arn:{}:logs:{region}:{owner}:log-group:{group}:log-stream:{stream}",
                partition(region)
            ),
            token: token(&parts),
        }
    }
}

/// The marker of an S3 object's content, recorded once it has been processed so the
/// sweep does not read it again: bucket, key and ETag, which a listing also gives.
pub fn object_marker(bucket: &str, key: &str, etag: &str) -> String {
    token(&[b"seen", bucket.as_bytes(), key.as_bytes(), etag.as_bytes()])
}

fn token(parts: &[&[u8]]) -> String {
    digest_parts(parts)[..32].to_string()
}

/// A fresh id for one processing attempt: unique across processes and within one.
pub fn attempt_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    token(&[
        &std::process::id().to_be_bytes(),
        &nanos.to_be_bytes(),
        &seq.to_be_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_token_depends_on_version() {
        let a = ObjectId::s3("b", "k", "etag1");
        let b = ObjectId::s3("b", "k", "etag2");
        assert_ne!(a.token, b.token);
        assert_eq!(a.uri, "s3://b/k");
        assert_eq!(a.token.len(), 32);
    }

    #[test]
    fn log_payload_identity_names_its_stream_and_follows_its_events() {
        let a = ObjectId::log_events(
            "111122223333",
            "us-east-1",
            "/aws/bedrock",
            "s1",
            ["1", "2"],
        );
        let b = ObjectId::log_events(
            "111122223333",
            "us-east-1",
            "/aws/bedrock",
            "s1",
            ["1", "3"],
        );
        assert_ne!(a.token, b.token);
        assert_eq!(
            a.uri,
            "arn:aws:logs:us-east-1:111122223333:log-group:/aws/bedrock:log-stream:s1"
        );
    }

    #[test]
    fn attempts_are_unique() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| attempt_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
