//! The grouping key of the rule, `(user.id, gen_ai.request.model.id, cloud.account.id)`,
//! ids bounded as they are read, and the stable digests derived from them.

use crate::text::{prefix_bytes, Quoted};
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
}
