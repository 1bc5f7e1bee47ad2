//! Which error codes are denials, per source, and the substring prefilter derived from
//! them (docs/DESIGN.md, "What counts as a denial").
//!
//! Bedrock invocation logs and CloudTrail spell denials differently: the rule counts
//! `AccessDeniedException` in invocation logs, while CloudTrail writes IAM denials of
//! `bedrock:InvokeModel` as `AccessDenied`. Each source has its own list.

use memchr::memmem;

/// Where a record came from, as told by its fields (CloudTrail records carry `eventSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    BedrockInvocationLog,
    CloudTrail,
}

/// The configured denial codes of each source and the prefilter over their union.
#[derive(Debug, Clone)]
pub struct DenialMatcher {
    bedrock: Vec<String>,
    cloudtrail: Vec<String>,
    /// Codes of the validation rule's records (both sources), when it is on.
    validation: Vec<String>,
    /// `"CODE` needles; a needle that another one starts with is enough for both.
    needles: Vec<memmem::Finder<'static>>,
}

impl DenialMatcher {
    pub fn new(bedrock_codes: &[String], cloudtrail_codes: &[String]) -> Self {
        Self::with_validation(bedrock_codes, cloudtrail_codes, &[])
    }

    /// Also takes records whose code is one of `validation_codes`, in either source
    /// (the validation rule's), told apart by [`DenialMatcher::is_validation`].
    pub fn with_validation(
        bedrock_codes: &[String],
        cloudtrail_codes: &[String],
        validation_codes: &[String],
    ) -> Self {
        let mut quoted: Vec<Vec<u8>> = bedrock_codes
            .iter()
            .chain(cloudtrail_codes)
            .chain(validation_codes)
            .map(|c| {
                let mut q = b"\"".to_vec();
                q.extend_from_slice(c.as_bytes());
                q
            })
            .collect();
        quoted.sort_by_key(Vec::len);
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for q in quoted {
            if !kept.iter().any(|k| q.starts_with(k)) {
                kept.push(q);
            }
        }
        Self {
            bedrock: bedrock_codes.to_vec(),
            cloudtrail: cloudtrail_codes.to_vec(),
            validation: validation_codes.to_vec(),
            needles: kept
                .into_iter()
                .map(|n| memmem::Finder::new(&n).into_owned())
                .collect(),
        }
    }

    /// Is `code` a denial for a record of `source`?
    pub fn is_denial(&self, source: RecordKind, code: &str) -> bool {
        let codes = match source {
            RecordKind::BedrockInvocationLog => &self.bedrock,
            RecordKind::CloudTrail => &self.cloudtrail,
        };
        codes.iter().any(|c| c == code)
    }

    /// Is `code` one the validation rule takes (and not a denial)?
    pub fn is_validation(&self, code: &str) -> bool {
        self.validation.iter().any(|c| c == code)
    }

    /// Cheap test: can `text` hold a denial at all?
    pub(crate) fn may_match(&self, text: &[u8]) -> bool {
        self.needles.iter().any(|f| f.find(text).is_some())
    }

    /// Offsets in `block` where a needle starts, ascending.
    pub(crate) fn candidates(&self, block: &[u8], out: &mut Vec<usize>) {
        out.clear();
        for f in &self.needles {
            out.extend(f.find_iter(block));
        }
        if self.needles.len() > 1 {
            out.sort_unstable();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    #[test]
    fn each_source_has_its_own_codes() {
        let m = DenialMatcher::new(
            &codes("AccessDeniedException"),
            &codes("AccessDenied,AccessDeniedException"),
        );
        use RecordKind::*;
        assert!(m.is_denial(BedrockInvocationLog, "AccessDeniedException"));
        assert!(!m.is_denial(BedrockInvocationLog, "AccessDenied"));
        assert!(m.is_denial(CloudTrail, "AccessDenied"));
        assert!(m.is_denial(CloudTrail, "AccessDeniedException"));
        assert!(!m.is_denial(CloudTrail, "ValidationException"));
    }

    #[test]
    fn validation_codes_are_taken_apart_from_denials_only_when_asked() {
        let plain = DenialMatcher::new(&codes("AccessDeniedException"), &codes("AccessDenied"));
        assert!(!plain.is_validation("ValidationException"));
        assert!(!plain.may_match(br#""errorCode":"ValidationException""#));
        let m = DenialMatcher::with_validation(
            &codes("AccessDeniedException"),
            &codes("AccessDenied"),
            &codes("ValidationException"),
        );
        assert!(m.is_validation("ValidationException"));
        assert!(!m.is_denial(RecordKind::BedrockInvocationLog, "ValidationException"));
        assert!(m.may_match(br#""errorCode":"ValidationException""#));
    }

    #[test]
    fn a_needle_covering_another_is_kept_alone() {
        let m = DenialMatcher::new(
            &codes("AccessDeniedException"),
            &codes("AccessDenied,AccessDeniedException"),
        );
        assert_eq!(m.needles.len(), 1);
        let mut out = Vec::new();
        m.candidates(
            br#"{"errorCode":"AccessDeniedException"} "AccessDenied""#,
            &mut out,
        );
        assert_eq!(out, vec![13, 38]);
        assert!(m.may_match(br#""AccessDenied""#));
        assert!(!m.may_match(b"AccessDenied without a quote"));
    }
}
