//! The grouping key of the rule, `(user.id, gen_ai.request.model.id, cloud.account.id)`,
//! and the stable digests derived from it and from object identities.

use crate::text::{prefix_bytes, Quoted};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One group of the rule's `stats ... by user.id, gen_ai.request.model.id, cloud.account.id`.
/// Ids are kept byte for byte as the log wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DenialKey {
    pub user_id: String,
    pub model_id: String,
    pub account_id: String,
}

impl DenialKey {
    pub fn new(
        user_id: impl Into<String>,
        model_id: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            model_id: model_id.into(),
            account_id: account_id.into(),
        }
    }

    /// Hex SHA-256 of an unambiguous (length-prefixed) encoding of the three ids: a
    /// fixed-size partition key for ids of any length and content.
    pub fn digest(&self) -> String {
        digest_parts(&[
            self.user_id.as_bytes(),
            self.model_id.as_bytes(),
            self.account_id.as_bytes(),
        ])
    }
}

/// Longest id kept as written. AWS's own ids are shorter (an IAM ARN, a model or
/// inference-profile ARN: at most 2048 characters); a longer one can only come from
/// hostile or broken log content.
pub const MAX_ID_BYTES: usize = 2048;
/// Bytes of a longer id kept in front of its mark.
pub const ID_HEAD_BYTES: usize = 256;

/// An id as the detector keeps it, bounded as it is read (docs/DESIGN.md, "Field
/// mapping"): as written up to [`MAX_ID_BYTES`], else its first [`ID_HEAD_BYTES`]
/// bytes marked with the full length and the SHA-256 of the full value. Two different
/// long ids keep different marks, so keys stay distinct and counts exact.
pub fn bounded_id(id: &str) -> String {
    if id.len() <= MAX_ID_BYTES {
        return id.to_owned();
    }
    format!(
        "{}...[{} bytes, sha256 {}]",
        prefix_bytes(id, ID_HEAD_BYTES),
        id.len(),
        sha256_hex(id.as_bytes())
    )
}

/// Characters of an id shown in log lines and error messages, so a hostile id
/// cannot flood a log.
const SHOWN_ID_CHARS: usize = 256;

impl fmt::Display for DenialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user={} model={} account={}",
            Quoted::<SHOWN_ID_CHARS>(&self.user_id),
            Quoted::<SHOWN_ID_CHARS>(&self.model_id),
            Quoted::<SHOWN_ID_CHARS>(&self.account_id)
        )
    }
}

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

/// The account an IAM or STS principal ARN names (`arn:<partition>:<service>::<account>:...`),
/// when it is a 12-digit account id.
pub fn principal_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(_), Some(_), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    crate::log_keys::is_account_id(account).then_some(account)
}

/// The AWS partition of a region, for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
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

pub(crate) fn digest_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_unambiguous() {
        let a = DenialKey::new("ab", "c", "1");
        let b = DenialKey::new("a", "bc", "1");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
        assert_eq!(a.digest(), DenialKey::new("ab", "c", "1").digest());
    }

    #[test]
    fn long_ids_are_cut_and_marked_and_stay_distinct() {
        let short = "a".repeat(MAX_ID_BYTES);
        assert_eq!(bounded_id(&short), short);
        let long_a = format!("{}a", "x".repeat(MAX_ID_BYTES));
        let long_b = format!("{}b", "x".repeat(MAX_ID_BYTES));
        let (a, b) = (bounded_id(&long_a), bounded_id(&long_b));
        assert_ne!(a, b, "distinct ids stay distinct");
        assert_eq!(a, bounded_id(&long_a), "and stable");
        assert!(a.starts_with(&"x".repeat(ID_HEAD_BYTES)), "{a}");
        assert!(
            a.contains(&format!("[{} bytes, sha256 ", MAX_ID_BYTES + 1)),
            "{a}"
        );
        assert!(a.len() < ID_HEAD_BYTES + 100, "{}", a.len());
        // A multi-byte character is never split.
        let wide = "é".repeat(MAX_ID_BYTES);
        assert!(bounded_id(&wide).starts_with(&"é".repeat(ID_HEAD_BYTES / 2)));
    }

    #[test]
    fn display_is_escaped_and_bounded() {
        let k = DenialKey::new("a\nb".repeat(1000), "m", "1");
        let shown = k.to_string();
        assert!(shown.starts_with("user=\"a\\nb"), "{shown}");
        assert!(shown.len() < 600, "{}", shown.len());
        assert!(shown.ends_with("model=\"m\" account=\"1\""), "{shown}");
    }

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
