//! [`CounterStore`] on one DynamoDB table (key schema `pk` S, `sk` N; TTL attribute
//! `expires_at`), the table `template.yaml` defines (docs/DESIGN.md, "The DynamoDB
//! item layout").
//!
//! - Counter item per (key, bucket): `pk = "C#" + key digest`, `sk = bucket`, the
//!   three ids, `denials`, and `objects`: the set of object tokens already added. One
//!   conditional UpdateItem adds the count and the token, failing its condition when
//!   the token is already there: exactly-once per object.
//! - Alert state per key: `pk = "A#" + key digest`, `sk = 0`, `last_sent_end`, a
//!   pending claim (`pending_object`, `pending_attempt`, `pending_end`, `claimed_at`)
//!   and `delivered` (`sink@window_end` strings). The claim is one conditional
//!   UpdateItem whose condition is [`decide_claim`](super::decide_claim) written as a
//!   ConditionExpression; the conformance suite runs both against the same cases.
//! - Object marker: `pk = "O#" + marker`, `sk = 0`: an object already processed, which
//!   the sweep need not read again.

use super::{
    decide_claim, AddOutcome, AlertClaim, AlertState, ClaimOutcome, CounterStore, PendingClaim,
    StoreError,
};
use crate::errors::BoxError;
use crate::key::{DenialKey, ObjectId};
use crate::window::Bucket;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

const COUNTER_UPDATE: &str =
    "SET #user = :user, #model = :model, #account = :account, #exp = :exp \
     ADD #denials :count, #objects :token_set";
const COUNTER_CONDITION: &str = "NOT contains(#objects, :token)";

const CLAIM_UPDATE: &str = "SET #user = :user, #model = :model, #account = :account, #exp = :exp, \
     #pobj = :obj, #patt = :att, #pend = :end, #cat = :now";
/// [`decide_claim`](super::decide_claim): not suppressed, and no fresh claim of another attempt.
const CLAIM_CONDITION: &str =
    "(attribute_not_exists(#last) OR (#last <> :end AND (#last <= :lo OR #last >= :hi))) \
     AND (attribute_not_exists(#patt) OR #patt = :att OR #cat <= :stale)";

const HOLDING: &str = "#patt = :att";
const DELIVERY_UPDATE: &str = "ADD #delivered :sink";
const RELEASE_UPDATE: &str = "REMOVE #pobj, #patt, #pend, #cat";
const MARK_UPDATE: &str = "SET #last = :end REMOVE #pobj, #patt, #pend, #cat, #delivered";

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

fn marker_pk(marker: &str) -> String {
    format!("O#{marker}")
}

/// BatchGetItem takes at most this many keys.
const BATCH_GET_KEYS: usize = 100;

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// The alert state as stored in its item.
fn alert_state(item: &HashMap<String, AttributeValue>) -> AlertState {
    AlertState {
        last_sent_end: number(item, "last_sent_end"),
        pending: text(item, "pending_attempt").map(|attempt| PendingClaim {
            object_token: text(item, "pending_object").unwrap_or_default(),
            attempt,
            window_end: number(item, "pending_end").unwrap_or_default(),
            claimed_at: number(item, "claimed_at").unwrap_or_default(),
        }),
        delivered: item
            .get("delivered")
            .and_then(|v| v.as_ss().ok())
            .map(|set| set.iter().filter_map(|d| parse_delivery(d)).collect())
            .unwrap_or_default(),
    }
}

fn delivery(sink: &str, window_end: i64) -> String {
    format!("{sink}@{window_end}")
}

fn parse_delivery(d: &str) -> Option<(String, i64)> {
    let (sink, end) = d.rsplit_once('@')?;
    Some((sink.to_string(), end.parse().ok()?))
}

fn condition_failed(e: &SdkError<UpdateItemError, impl std::fmt::Debug>) -> bool {
    e.as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
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

/// The names of the pending claim's attributes other than its attempt.
fn pending_names(b: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#pobj", "pending_object")
        .expression_attribute_names("#pend", "pending_end")
        .expression_attribute_names("#cat", "claimed_at")
}

/// The claim's attempt, under the condition "this attempt holds the claim".
fn holding(b: UpdateItemFluentBuilder, claim: &AlertClaim) -> UpdateItemFluentBuilder {
    b.condition_expression(HOLDING)
        .expression_attribute_names("#patt", "pending_attempt")
        .expression_attribute_values(":att", s(&claim.attempt))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn update(&self, pk: String, sk: i64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(pk))
            .key(SORT_KEY, n(sk))
    }

    fn error(
        &self,
        operation: &'static str,
        key: &DenialKey,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError {
            operation,
            target: format!("{key} in table {}", self.table),
            source: Box::new(e),
        }
    }

    /// A failure of an operation on the table rather than on one key's items.
    fn table_error(&self, operation: &'static str, e: impl Into<BoxError>) -> StoreError {
        StoreError {
            operation,
            target: format!("table {}", self.table),
            source: e.into(),
        }
    }

    /// An update of the alert-state item made only while this attempt holds the claim;
    /// a failed condition means the claim was taken over or is gone: nothing to do.
    async fn while_holding(
        &self,
        operation: &'static str,
        key: &DenialKey,
        claim: &AlertClaim,
        update: UpdateItemFluentBuilder,
    ) -> Result<(), StoreError> {
        match holding(update, claim).send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(self.error(operation, key, e)),
        }
    }

    async fn read_alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
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
        Ok(out.item().map(alert_state))
    }
}

impl DynamoStore {
    /// The markers of one batch that exist, fetching what DynamoDB left unprocessed.
    async fn seen_batch(&self, markers: &[String]) -> Result<BTreeSet<String>, StoreError> {
        const OPERATION: &str = "BatchGetItem (object markers)";
        let mut keys: Vec<HashMap<String, AttributeValue>> = markers
            .iter()
            .map(|m| {
                HashMap::from([
                    (PARTITION_KEY.to_string(), s(marker_pk(m))),
                    (SORT_KEY.to_string(), n(0)),
                ])
            })
            .collect();
        let mut found = BTreeSet::new();
        let mut backoff = std::time::Duration::from_millis(50);
        for _ in 0..6 {
            if keys.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .projection_expression("#pk")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .build()
                .map_err(|e| self.table_error(OPERATION, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.table_error(OPERATION, e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let Some(m) = text(item, PARTITION_KEY)
                    .and_then(|pk| pk.strip_prefix("O#").map(str::to_string))
                {
                    found.insert(m);
                }
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if !keys.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(self.table_error(OPERATION, "DynamoDB kept leaving keys unprocessed"))
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
            Err(e) if condition_failed(&e) => Ok(AddOutcome::AlreadyCounted),
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
        let update = with_ids(self.update(alert_pk(key), 0), key, claim.expires_at);
        let result = pending_names(update)
            .update_expression(CLAIM_UPDATE)
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#last", "last_sent_end")
            .expression_attribute_names("#patt", "pending_attempt")
            .expression_attribute_values(":obj", s(&claim.object_token))
            .expression_attribute_values(":att", s(&claim.attempt))
            .expression_attribute_values(":end", n(claim.window_end))
            .expression_attribute_values(":now", n(claim.now))
            .expression_attribute_values(":lo", n(claim.window_end - claim.suppress_seconds))
            .expression_attribute_values(":hi", n(claim.window_end + claim.suppress_seconds))
            .expression_attribute_values(":stale", n(claim.now - claim.lease_seconds))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let state = match result {
            Ok(out) => {
                let delivered = out
                    .attributes()
                    .map(alert_state)
                    .unwrap_or_default()
                    .delivered_for(claim.window_end);
                return Ok(ClaimOutcome::Claimed { delivered });
            }
            Err(e) if condition_failed(&e) => {
                // Why it failed decides what to report; the write itself did not happen.
                let old = e
                    .as_service_error()
                    .and_then(|s| match s {
                        UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    })
                    .map(alert_state);
                match old {
                    Some(state) => Some(state),
                    None => self.read_alert_state(key).await?,
                }
            }
            Err(e) => return Err(self.error("UpdateItem (alert claim)", key, e)),
        };
        Ok(match decide_claim(state.as_ref(), claim) {
            // The item changed between the write and the read: another attempt won.
            ClaimOutcome::Claimed { .. } => ClaimOutcome::Busy {
                holder_object: String::new(),
                claimed_at: claim.now,
            },
            other => other,
        })
    }

    async fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> Result<(), StoreError> {
        let update = self
            .update(alert_pk(key), 0)
            .update_expression(DELIVERY_UPDATE)
            .expression_attribute_names("#delivered", "delivered")
            .expression_attribute_values(
                ":sink",
                AttributeValue::Ss(vec![delivery(sink, claim.window_end)]),
            );
        self.while_holding("UpdateItem (alert delivered)", key, claim, update)
            .await
    }

    async fn release_claim(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        let update = pending_names(self.update(alert_pk(key), 0)).update_expression(RELEASE_UPDATE);
        self.while_holding("UpdateItem (alert release)", key, claim, update)
            .await
    }

    async fn seen(&self, markers: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let mut found = BTreeSet::new();
        for batch in markers.chunks(BATCH_GET_KEYS) {
            found.extend(self.seen_batch(batch).await?);
        }
        Ok(found)
    }

    async fn mark_seen(&self, marker: &str, expires_at: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(marker_pk(marker)))
            .item(SORT_KEY, n(0))
            .item(TTL_ATTRIBUTE, n(expires_at))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.table_error("PutItem (object marker)", e))
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        let update = pending_names(self.update(alert_pk(key), 0))
            .update_expression(MARK_UPDATE)
            .expression_attribute_names("#last", "last_sent_end")
            .expression_attribute_names("#delivered", "delivered")
            .expression_attribute_values(":end", n(claim.window_end));
        self.while_holding("UpdateItem (alert sent)", key, claim, update)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_round_trip_through_their_stored_form() {
        assert_eq!(
            parse_delivery(&delivery("securityhub", 1_773_482_400)),
            Some(("securityhub".to_string(), 1_773_482_400))
        );
        assert_eq!(parse_delivery("no-window"), None);
    }
}
