//! The grouping key of the rule, `(user.id, gen_ai.request.model.id, cloud.account.id)`,
//! and the stable digests derived from it and from object identities.

use sha2::{Digest, Sha256};
use std::fmt;

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

/// Ids as they appear in log lines and error messages: quoted, escaped, and cut at
/// 256 characters so a hostile id cannot flood a log.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 256;
        match self.0.char_indices().nth(MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}...", &self.0[..cut]),
        }
    }
}

impl fmt::Display for DenialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user={} model={} account={}",
            Shown(&self.user_id),
            Shown(&self.model_id),
            Shown(&self.account_id)
        )
    }
}

/// Identity of one log object: a human-readable URI and a digest that changes
/// whenever the object's content may have changed (ETag or version id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// `s3://bucket/key` or `file:///path`.
    pub uri: String,
    /// Hex digest of (location, version), recorded in the counters it contributed to.
    pub token: String,
}

impl ObjectId {
    pub fn s3(bucket: &str, key: &str, version: &str) -> Self {
        Self {
            uri: format!("s3://{bucket}/{key}"),
            token: digest_parts(&[b"s3", bucket.as_bytes(), key.as_bytes(), version.as_bytes()])
                [..32]
                .to_string(),
        }
    }

    pub fn file(path: &str, version: &str) -> Self {
        Self {
            uri: format!("file://{path}"),
            token: digest_parts(&[b"file", path.as_bytes(), version.as_bytes()])[..32].to_string(),
        }
    }
}

fn digest_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let mut out = String::with_capacity(64);
    for b in h.finalize().iter() {
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
}
