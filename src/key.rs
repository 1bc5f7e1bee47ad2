//! The grouping key of a rule, `(user.id, gen_ai.request.model.id, cloud.account.id)`
//! and the rule it belongs to, ids bounded as they are read, and the stable digests
//! derived from them.

use crate::text::{prefix_bytes, Quoted};
use sha2::{Digest, Sha256};
use std::fmt;

/// Which rule a key groups for (docs/DESIGN.md, "Rules"). The seed rule's keys are
/// the ported rule's rows; the others group what the seed rule's keys cannot see
/// together. Each rule's keys, digests, claims and finding ids are its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleTag {
    /// `17261da3-…`: denials per (user.id, model id, account), ids byte for byte.
    #[default]
    Seed,
    /// `725a048a-…`: validation errors per (user.id, account), per minute.
    Validation,
    /// `a6adaad9-…`: denials per (role, normalized model, account) across sessions.
    RoleSessions,
    /// `5ccff5be-…`: distinct normalized models denied per (principal, account).
    ManyModels,
}

impl RuleTag {
    pub const ALL: [RuleTag; 4] = [
        RuleTag::Seed,
        RuleTag::Validation,
        RuleTag::RoleSessions,
        RuleTag::ManyModels,
    ];

    /// The rule's id, as Elastic's rules are named.
    pub fn id(self) -> &'static str {
        match self {
            RuleTag::Seed => "17261da3-a6d0-463c-aac8-ea1718afcd20",
            RuleTag::Validation => "725a048a-88c5-4fc7-8677-a44fc0031822",
            RuleTag::RoleSessions => "a6adaad9-e278-45d8-8915-95a965f1a444",
            RuleTag::ManyModels => "5ccff5be-bfdf-4b36-91f2-0e122eb0a8db",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// One group of a rule's `stats ... by user.id, gen_ai.request.model.id, cloud.account.id`.
/// Ids are kept byte for byte as the log wrote them (the seed rule), or as the rule
/// groups them (the role without its session, the normalized model).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DenialKey {
    pub user_id: String,
    pub model_id: String,
    pub account_id: String,
    pub rule: RuleTag,
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
            rule: RuleTag::Seed,
        }
    }

    /// The same ids, grouped for `rule`.
    pub fn for_rule(mut self, rule: RuleTag) -> Self {
        self.rule = rule;
        self
    }

    /// Hex SHA-256 of an unambiguous (length-prefixed) encoding of the three ids: a
    /// fixed-size partition key for ids of any length and content. The seed rule's
    /// digests are the three ids alone, as they always were; another rule's start
    /// with its id, so no two rules share a key.
    pub fn digest(&self) -> String {
        let ids = [
            self.user_id.as_bytes(),
            self.model_id.as_bytes(),
            self.account_id.as_bytes(),
        ];
        match self.rule {
            RuleTag::Seed => digest_parts(&ids),
            rule => digest_parts(&[rule.id().as_bytes(), ids[0], ids[1], ids[2]]),
        }
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
        )?;
        match self.rule {
            RuleTag::Seed => Ok(()),
            rule => write!(f, " rule={}", rule.id()),
        }
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

/// A call's id across the two logs: 16 hex digits of the SHA-256 of its request id
/// (invocation log `requestId`, CloudTrail `requestID`), the same in every rule.
pub fn call_id(request_id: &str) -> String {
    format!("{:016x}", call_number(request_id))
}

/// [`call_id`] as a number: the first 8 bytes of the SHA-256 of the request id.
pub fn call_number(request_id: &str) -> u64 {
    let digest = Sha256::digest(request_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
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
    fn a_call_id_is_the_first_16_hex_digits_of_its_digest() {
        for id in ["", "r1", "ede9a64e-f388-d951-31d5-66845f27ba5b"] {
            assert_eq!(call_id(id), sha256_hex(id.as_bytes())[..16]);
        }
    }

    #[test]
    fn digest_is_unambiguous() {
        let a = DenialKey::new("ab", "c", "1");
        let b = DenialKey::new("a", "bc", "1");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 64);
        assert_eq!(a.digest(), DenialKey::new("ab", "c", "1").digest());
    }

    #[test]
    fn the_seed_rules_digest_is_unchanged_and_other_rules_keys_are_apart() {
        // The digest an earlier version stored for this key: an upgrade keeps its
        // counters, claims and finding ids.
        let seed = DenialKey::new("arn:aws:iam::111122223333:user/a", "m", "111122223333");
        assert_eq!(
            seed.digest(),
            digest_parts(&[b"arn:aws:iam::111122223333:user/a", b"m", b"111122223333"])
        );
        let digests: std::collections::BTreeSet<String> = RuleTag::ALL
            .into_iter()
            .map(|t| seed.clone().for_rule(t).digest())
            .collect();
        assert_eq!(digests.len(), 4);
        for t in RuleTag::ALL {
            assert_eq!(RuleTag::from_id(t.id()), Some(t));
        }
        assert_eq!(RuleTag::from_id("nope"), None);
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
