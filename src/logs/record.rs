//! The rule's field mapping: one Bedrock invocation-log record or CloudTrail record in,
//! a [`Denial`] out (docs/DESIGN.md, "Field mapping").
//!
//! Only the fields the rule and the alert's evidence read are deserialized, borrowing
//! from the input; prompt and completion bodies are skipped without being copied.

use super::matcher::{DenialMatcher, RecordKind};
use super::{Denial, DenialContext};
use crate::arn::principal_account;
use crate::key::{bounded_id, DenialKey};
use crate::stats::Counts;
use crate::text::prefix_bytes;
use chrono::DateTime;
use serde::Deserialize;
use std::borrow::Cow;

/// CloudTrail event names that are model invocations.
pub const INVOCATION_EVENTS: [&str; 4] = [
    "InvokeModel",
    "InvokeModelWithResponseStream",
    "Converse",
    "ConverseStream",
];
pub const BEDROCK_EVENT_SOURCE: &str = "bedrock.amazonaws.com";
/// Bytes of a request id kept as evidence (AWS's are 36-character UUIDs).
pub const MAX_REQUEST_ID_BYTES: usize = 128;
/// Bytes of any other evidence value kept (source IP, user agent, error message,
/// region, operation).
pub const MAX_EVIDENCE_BYTES: usize = 256;

type Text<'a> = Option<Cow<'a, str>>;

/// The fields of either a Bedrock invocation-log record or a CloudTrail record.
#[derive(Deserialize)]
struct RecordFields<'a> {
    #[serde(borrow, rename = "errorCode")]
    error_code: Text<'a>,
    // Bedrock invocation log
    #[serde(borrow)]
    timestamp: Text<'a>,
    #[serde(borrow, rename = "accountId")]
    account_id: Text<'a>,
    #[serde(borrow)]
    identity: Option<Arn<'a>>,
    #[serde(borrow, rename = "modelId")]
    model_id: Text<'a>,
    #[serde(borrow, rename = "requestId")]
    request_id: Text<'a>,
    #[serde(borrow)]
    region: Text<'a>,
    #[serde(borrow)]
    operation: Text<'a>,
    // CloudTrail
    #[serde(borrow, rename = "eventSource")]
    event_source: Text<'a>,
    #[serde(borrow, rename = "eventName")]
    event_name: Text<'a>,
    #[serde(borrow, rename = "eventTime")]
    event_time: Text<'a>,
    #[serde(borrow, rename = "userIdentity")]
    user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow, rename = "recipientAccountId")]
    recipient_account_id: Text<'a>,
    #[serde(borrow, rename = "requestParameters")]
    request_parameters: Option<RequestParameters<'a>>,
    #[serde(borrow, rename = "requestID")]
    ct_request_id: Text<'a>,
    #[serde(borrow, rename = "sourceIPAddress")]
    source_ip: Text<'a>,
    #[serde(borrow, rename = "userAgent")]
    user_agent: Text<'a>,
    #[serde(borrow, rename = "errorMessage")]
    error_message: Text<'a>,
    #[serde(borrow, rename = "awsRegion")]
    aws_region: Text<'a>,
}

#[derive(Deserialize)]
struct Arn<'a> {
    #[serde(borrow)]
    arn: Text<'a>,
}

#[derive(Deserialize)]
struct UserIdentity<'a> {
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(borrow, rename = "accountId")]
    account_id: Text<'a>,
}

#[derive(Deserialize)]
struct RequestParameters<'a> {
    #[serde(borrow, rename = "modelId")]
    model_id: Text<'a>,
}

/// What one record is, for the rule.
// Returned and consumed at once: boxing the denial would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Denial(Denial),
    /// Anything that is not a denial: successes, other error codes, other events.
    Other,
    /// A denial the rule cannot use, and why (counted in `Counts::skipped_*`).
    Unusable(Unusable),
    /// An invocation-log denial whose principal ARN names another account than the
    /// record's: where the object's location names its account, it is skipped as
    /// [`Unusable::AccountMismatch`]; a file with no account counts it as the rule would
    /// (docs/DESIGN.md, "A record speaks only for its own account").
    ForeignPrincipal(Denial),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Not a JSON object, cut short, or a field of the wrong type.
    InvalidJson,
    /// A denial without user, model, account or time.
    MissingFields,
    /// A denial whose time is not RFC 3339.
    BadTimestamp,
    /// A line or record longer than [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES).
    OversizedLine,
    /// A denial of another account than the one whose folder holds the object.
    AccountMismatch,
}

impl Unusable {
    pub fn count_in(self, counts: &mut Counts) {
        match self {
            Unusable::InvalidJson => counts.skipped_invalid_json += 1,
            Unusable::MissingFields => counts.skipped_missing_fields += 1,
            Unusable::BadTimestamp => counts.skipped_bad_timestamp += 1,
            Unusable::OversizedLine => counts.skipped_oversized_line += 1,
            Unusable::AccountMismatch => counts.skipped_account_mismatch += 1,
        }
    }
}

/// An id, bounded as it is read ([`bounded_id`]).
fn id(v: Text<'_>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(|s| bounded_id(&s))
}

/// An evidence value, cut to `max_bytes` as it is read.
fn evidence(v: Text<'_>, max_bytes: usize) -> Option<String> {
    v.filter(|s| !s.is_empty())
        .map(|s| prefix_bytes(&s, max_bytes).to_owned())
}

/// Classifies one record, given as the bytes of one JSON object (a line of a log
/// object may not be UTF-8).
pub fn classify(json: &[u8], matcher: &DenialMatcher) -> Record {
    match serde_json::from_slice::<RecordFields<'_>>(json) {
        Ok(fields) => fields.into_record(matcher),
        Err(_) => Record::Unusable(Unusable::InvalidJson),
    }
}

impl RecordFields<'_> {
    fn into_record(self, matcher: &DenialMatcher) -> Record {
        let source = if self.event_source.is_some() {
            RecordKind::CloudTrail
        } else {
            RecordKind::BedrockInvocationLog
        };
        let validation = match self.error_code.as_deref() {
            Some(code) if matcher.is_denial(source, code) => false,
            Some(code) if matcher.is_validation(code) => true,
            _ => return Record::Other,
        };
        let (user, model, account, time, request_id, context) = match source {
            RecordKind::CloudTrail => {
                let invocation = self
                    .event_name
                    .as_deref()
                    .is_some_and(|n| INVOCATION_EVENTS.contains(&n));
                if self.event_source.as_deref() != Some(BEDROCK_EVENT_SOURCE) || !invocation {
                    return Record::Other;
                }
                let (arn, identity_account) = match self.user_identity {
                    Some(u) => (u.arn, u.account_id),
                    None => (None, None),
                };
                let context = DenialContext {
                    source_ip: evidence(self.source_ip, MAX_EVIDENCE_BYTES),
                    user_agent: evidence(self.user_agent, MAX_EVIDENCE_BYTES),
                    error_message: evidence(self.error_message, MAX_EVIDENCE_BYTES),
                    region: evidence(self.aws_region, MAX_EVIDENCE_BYTES),
                    operation: evidence(self.event_name, MAX_EVIDENCE_BYTES),
                };
                (
                    arn,
                    self.request_parameters.and_then(|p| p.model_id),
                    self.recipient_account_id
                        .filter(|a| !a.is_empty())
                        .or(identity_account),
                    self.event_time,
                    self.ct_request_id,
                    context,
                )
            }
            RecordKind::BedrockInvocationLog => {
                let context = DenialContext {
                    region: evidence(self.region, MAX_EVIDENCE_BYTES),
                    operation: evidence(self.operation, MAX_EVIDENCE_BYTES),
                    ..DenialContext::default()
                };
                (
                    self.identity.and_then(|i| i.arn),
                    self.model_id,
                    self.account_id,
                    self.timestamp,
                    self.request_id,
                    context,
                )
            }
        };
        let (Some(user), Some(model), Some(account), Some(time)) = (
            id(user),
            id(model),
            id(account),
            time.filter(|t| !t.is_empty()),
        ) else {
            return Record::Unusable(Unusable::MissingFields);
        };
        let Ok(event_time) = DateTime::parse_from_rfc3339(&time) else {
            return Record::Unusable(Unusable::BadTimestamp);
        };
        // CloudTrail's cross-account caller (`userIdentity.accountId` another account
        // than `recipientAccountId`) is a real call into the recipient account and
        // counts there; an invocation log is written by the account whose model was
        // called, for its own principals.
        let foreign = source == RecordKind::BedrockInvocationLog
            && principal_account(&user).is_some_and(|a| a != account);
        let denial = Denial {
            key: DenialKey::new(user, model, account),
            validation,
            event_time: event_time.timestamp(),
            request_id: evidence(request_id, MAX_REQUEST_ID_BYTES),
            source,
            context,
        };
        if foreign {
            Record::ForeignPrincipal(denial)
        } else {
            Record::Denial(denial)
        }
    }
}
