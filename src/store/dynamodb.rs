//! [`CounterStore`] on one DynamoDB table (key schema `pk` S, `sk` N; TTL attribute
//! `expires_at`), the table `template.yaml` defines.
//!
//! - Counter item per (key, bucket): `pk = "C#" + key digest`, `sk = bucket`, the
//!   three ids, `denials`, and `objects`: the set of object tokens already added. One
//!   conditional UpdateItem adds the count and the token, failing its condition when
//!   the token is already there: exactly-once per object.
//! - Alert state per key: `pk = "A#" + key digest`, `sk = 0`, `last_sent_end`, and a
//!   pending claim (`pending_object`, `pending_end`, `claimed_at`). The claim is one
//!   conditional UpdateItem whose condition is [`decide_claim`](super::decide_claim)
//!   written as a ConditionExpression.

use super::{
    decide_claim, AddOutcome, AlertClaim, AlertState, ClaimOutcome, CounterStore, PendingClaim,
    StoreError,
};
use crate::key::{DenialKey, ObjectId};
use crate::window::Bucket;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

const COUNTER_UPDATE: &str =
    "SET #user = :user, #model = :model, #account = :account, #exp = :exp \
     ADD #denials :count, #objects :token_set";
const COUNTER_CONDITION: &str = "NOT contains(#objects, :token)";

const CLAIM_UPDATE: &str = "SET #user = :user, #model = :model, #account = :account, #exp = :exp, \
     #pobj = :obj, #pend = :end, #cat = :now";
const CLAIM_CONDITION: &str =
    "(attribute_not_exists(#last) OR (#last <> :end AND (#last <= :lo OR #last >= :hi))) \
     AND (attribute_not_exists(#pobj) OR #pobj = :obj OR #cat <= :stale)";

const MARK_UPDATE: &str = "SET #last = :end REMOVE #pobj, #pend, #cat";
const MARK_CONDITION: &str = "#pobj = :obj";

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn counter_pk(key: &DenialKey) -> String {
    format!("C#{}", key.digest())
}

fn alert_pk(key: &DenialKey) -> String {
    format!("A#{}", key.digest())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// Longest id kept in an item's readable attributes. The key is the digest of the
/// full ids; these copies are for people reading the table, and an oversized id from
/// a hostile log must not push an item past DynamoDB's 400 KB and fail forever.
pub const MAX_STORED_ID_BYTES: usize = 2048;

fn readable(id: &str) -> &str {
    let mut end = id.len().min(MAX_STORED_ID_BYTES);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

/// Names and values every written item carries: the three ids (readable next to
/// the digest in its key) and the expiry.
fn with_ids(
    b: UpdateItemFluentBuilder,
    key: &DenialKey,
    expires_at: i64,
) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#user", "user_id")
        .expression_attribute_names("#model", "model_id")
        .expression_attribute_names("#account", "account_id")
        .expression_attribute_names("#exp", TTL_ATTRIBUTE)
        .expression_attribute_values(":user", s(readable(&key.user_id)))
        .expression_attribute_values(":model", s(readable(&key.model_id)))
        .expression_attribute_values(":account", s(readable(&key.account_id)))
        .expression_attribute_values(":exp", n(expires_at))
}

/// Names of the alert-state attributes, and the claim's object token.
fn with_alert_state(b: UpdateItemFluentBuilder, claim: &AlertClaim) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#last", "last_sent_end")
        .expression_attribute_names("#pobj", "pending_object")
        .expression_attribute_names("#pend", "pending_end")
        .expression_attribute_names("#cat", "claimed_at")
        .expression_attribute_values(":obj", s(&claim.object_token))
        .expression_attribute_values(":end", n(claim.window_end))
}

impl DynamoStore {
    fn update(&self, pk: String, sk: i64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(pk))
            .key(SORT_KEY, n(sk))
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn error(
        &self,
        operation: &'static str,
        key: &DenialKey,
        e: impl std::error::Error,
    ) -> StoreError {
        StoreError {
            operation,
            target: format!("{key} in table {}", self.table),
            message: DisplayErrorContext(e).to_string(),
        }
    }

    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(alert_pk(key)))
            .key(SORT_KEY, n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem (alert state)", key, e))?;
        Ok(out.item().map(|item| AlertState {
            last_sent_end: number(item, "last_sent_end"),
            pending: item
                .get("pending_object")
                .and_then(|v| v.as_s().ok())
                .map(|obj| PendingClaim {
                    object_token: obj.clone(),
                    window_end: number(item, "pending_end").unwrap_or_default(),
                    claimed_at: number(item, "claimed_at").unwrap_or_default(),
                }),
        }))
    }
}

impl CounterStore for DynamoStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        count: u64,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        let result = with_ids(self.update(counter_pk(key), bucket), key, expires_at)
            .update_expression(COUNTER_UPDATE)
            .condition_expression(COUNTER_CONDITION)
            .expression_attribute_names("#denials", "denials")
            .expression_attribute_names("#objects", "objects")
            .expression_attribute_values(":count", n(count))
            .expression_attribute_values(
                ":token_set",
                AttributeValue::Ss(vec![object.token.clone()]),
            )
            .expression_attribute_values(":token", s(&object.token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(AddOutcome::Added),
            Err(e) if is_condition_failure(&e) => Ok(AddOutcome::AlreadyCounted),
            Err(e) => Err(self.error("UpdateItem (counter)", key, e)),
        }
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, u64>, StoreError> {
        let mut counts = BTreeMap::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .projection_expression("#sk, #denials")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_names("#denials", "denials")
                .expression_attribute_values(":pk", s(counter_pk(key)))
                .expression_attribute_values(":lo", n(first))
                .expression_attribute_values(":hi", n(last))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("Query (window)", key, e))?;
            for item in out.items() {
                if let (Some(b), Some(c)) = (number(item, SORT_KEY), number(item, "denials")) {
                    if c > 0 {
                        counts.insert(b, c as u64);
                    }
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(counts),
            }
        }
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        let item = with_ids(self.update(alert_pk(key), 0), key, claim.expires_at);
        let result = with_alert_state(item, claim)
            .update_expression(CLAIM_UPDATE)
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":now", n(claim.now))
            .expression_attribute_values(":lo", n(claim.window_end - claim.suppress_seconds))
            .expression_attribute_values(":hi", n(claim.window_end + claim.suppress_seconds))
            .expression_attribute_values(":stale", n(claim.now - claim.lease_seconds))
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(e) if is_condition_failure(&e) => {
                // Why it failed decides what to report; the write itself did not happen.
                let state = self.alert_state(key).await?;
                Ok(match decide_claim(state.as_ref(), claim) {
                    ClaimOutcome::Claimed => ClaimOutcome::InProgress, // changed since: lost the race
                    other => other,
                })
            }
            Err(e) => Err(self.error("UpdateItem (alert claim)", key, e)),
        }
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        let result = with_alert_state(self.update(alert_pk(key), 0), claim)
            .update_expression(MARK_UPDATE)
            .condition_expression(MARK_CONDITION)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Taken over after our lease ran out: the new holder records its own alert.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.error("UpdateItem (alert sent)", key, e)),
        }
    }
}
