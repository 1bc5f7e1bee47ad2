//! The store's five traits on one DynamoDB table (key schema `pk` S, `sk` N; TTL attribute
//! `expires_at`), the table `template.yaml` defines (docs/DESIGN.md, "The DynamoDB
//! item layout").
//!
//! - Counter contribution per (object, key, bucket): `pk = "C#" + key digest`, `sk =
//!   bucket + a fraction drawn from the object token` (a decimal in `[bucket, bucket +
//!   1)`), `denials`. One conditional PutItem (`attribute_not_exists`) writes it: it
//!   exists exactly when this object's count for this (key, bucket) is in, so counting
//!   is exactly once, and no item grows with the number of objects. A key's windows
//!   are read with one Query over the sort-key range of their buckets.
//! - Counters written by the earlier layout (`sk = bucket`, `denials` and the set
//!   `objects` of the tokens added) are read in the same Query, and their tokens
//!   honoured without a write ([`counters::without_what_the_earlier_layout_counted`]).
//! - Distinct sets per (key, bucket) of the rules that count distinct values: `pk =
//!   "D#" + key digest`, `sk = bucket`, string sets `calls`, `values`, `regions`
//!   (`distinct_sets.rs`).
//! - Alert state per key: `pk = "A#" + key digest`, `sk = 0`, `last_sent_end`, a
//!   pending claim (`pending_object`, `pending_attempt`, `pending_end`, `claimed_at`)
//!   and `delivered` (`sink@window_end` strings). The claim is one conditional
//!   UpdateItem whose condition is [`decide_claim`](crate::store::decide_claim) written as a
//!   ConditionExpression; the conformance suite runs both against the same cases.
//! - Object marker: `pk = "O#" + marker`, `sk = 0`: an object already processed, which
//!   the sweep need not read again, or (with `failures`) one the sweep failed to
//!   process that many times.
//! - Sweep cursor: `pk = "W#" + bucket/prefix`, `sk = 0`, `cursor`: the account
//!   prefix a sweep that stopped early continues from.
//! - Log source per account: `pk = "L#log-sources"`, `sk = account id` (as a number;
//!   the exact id is in `account`), `last_seen`, `silent_since`, and while a notice is
//!   delivered `notice_attempt`, `notice_claimed_at` (docs/DESIGN.md, "Log sources").
//!
//! Every request asks for its consumed capacity, kept in [`Usage`] for the benchmark.

use crate::errors::{lock, BoxError};
use crate::identity::ObjectId;
use crate::key::DenialKey;
use crate::silence::{
    LogSource, SourceStatus, NOTICE_LEASE_SECONDS, SEEN_EVERY_SECONDS, WATCHED_FOR_SECONDS,
};
use crate::store::{
    decide_claim, AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters, Marker,
    PendingClaim, SourceWatch, StoreError, SweepBook, WindowCounts, WindowRead,
};
use crate::window::Bucket;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

mod claims;
mod counters;
mod distinct_sets;
mod log_sources;
mod sweep_book;

pub use claims::MAX_STORED_ID_BYTES;
use claims::*;
pub use counters::contribution_sk;
use counters::*;
use log_sources::*;
use sweep_book::*;

/// Attribute names, as stored.
pub mod attr {
    pub const PARTITION_KEY: &str = "pk";
    pub const SORT_KEY: &str = "sk";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const DENIALS: &str = "denials";
    /// The earlier layout's token set (read, never written).
    pub const OBJECTS: &str = "objects";
    pub const USER_ID: &str = "user_id";
    pub const MODEL_ID: &str = "model_id";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const LAST_SENT_END: &str = "last_sent_end";
    pub const EARLIER_SENT_END: &str = "earlier_sent_end";
    pub const PENDING_OBJECT: &str = "pending_object";
    pub const PENDING_ATTEMPT: &str = "pending_attempt";
    pub const PENDING_END: &str = "pending_end";
    pub const CLAIMED_AT: &str = "claimed_at";
    pub const DELIVERED: &str = "delivered";
    pub const ACCOUNT: &str = "account";
    pub const LAST_SEEN: &str = "last_seen";
    pub const SILENT_SINCE: &str = "silent_since";
    pub const NOTICE_ATTEMPT: &str = "notice_attempt";
    pub const NOTICE_CLAIMED_AT: &str = "notice_claimed_at";
    pub const FAILURES: &str = "failures";
    pub const CURSOR: &str = "cursor";
    pub const ALERTS_SENT: &str = "alerts_sent";
    pub const CALLS: &str = "calls";
    pub const VALUES: &str = "values";
    pub const REGIONS: &str = "regions";
    /// A contribution's calls told by the invocation log, and by CloudTrail: maps of
    /// call id to records (short names: they are in every contribution).
    pub const LOG_CALLS: &str = "ci";
    pub const TRAIL_CALLS: &str = "ct";
}

pub use attr::{EXPIRES_AT as TTL_ATTRIBUTE, PARTITION_KEY, SORT_KEY};

/// Capacity consumed and requests made, per operation (from `ReturnConsumedCapacity`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OperationUsage {
    pub requests: u64,
    /// Requests answered with a failed condition (their capacity is charged by
    /// DynamoDB but not reported in the answer).
    pub conditions_failed: u64,
    pub read_units: f64,
    pub write_units: f64,
}

/// What the store asked of DynamoDB, by operation.
pub type Usage = BTreeMap<&'static str, OperationUsage>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    usage: Arc<Mutex<Usage>>,
    /// Log sources read at most ([`crate::store::MAX_LOG_SOURCES`]).
    max_log_sources: usize,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A log-source item as stored.
/// An answer that says what it consumed.
trait Consumed {
    fn consumed(&self) -> Option<&ConsumedCapacity>;
}

macro_rules! consumed {
    ($($output:ty),*) => {$(
        impl Consumed for $output {
            fn consumed(&self) -> Option<&ConsumedCapacity> {
                self.consumed_capacity()
            }
        }
    )*};
}

consumed!(
    aws_sdk_dynamodb::operation::get_item::GetItemOutput,
    aws_sdk_dynamodb::operation::put_item::PutItemOutput,
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    aws_sdk_dynamodb::operation::query::QueryOutput
);

/// One item, by attribute name.
type Item = HashMap<String, AttributeValue>;

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn condition_failed(e: &SdkError<UpdateItemError, impl std::fmt::Debug>) -> bool {
    e.as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

/// Whether an operation reads or writes, for [`OperationUsage`].
#[derive(Clone, Copy)]
enum Units {
    Read,
    Write,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            usage: Arc::default(),
            max_log_sources: crate::store::MAX_LOG_SOURCES,
        }
    }

    /// Reads at most `max` log sources (tests reach the bound with a few).
    pub fn with_max_log_sources(mut self, max: usize) -> Self {
        self.max_log_sources = max;
        self
    }

    /// Requests and consumed capacity so far, by operation.
    pub fn usage(&self) -> Usage {
        lock(&self.usage).clone()
    }

    /// Reads the item `pk` (sort key 0) consistently, accounting for it.
    async fn get_item(
        &self,
        operation: &'static str,
        pk: String,
    ) -> Result<Option<Item>, SdkError<GetItemError>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(pk))
            .key(SORT_KEY, n(0))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.counted(operation, Units::Read, out).map(|o| o.item)
    }

    /// Accounts for a request that has no condition, whatever its outcome.
    fn counted<T: Consumed, E>(
        &self,
        operation: &'static str,
        units: Units,
        out: Result<T, E>,
    ) -> Result<T, E> {
        let capacity = out.as_ref().ok().and_then(Consumed::consumed);
        self.account(operation, units, capacity, false);
        out
    }

    fn account(
        &self,
        operation: &'static str,
        units: Units,
        capacity: Option<&ConsumedCapacity>,
        condition_failed: bool,
    ) {
        let mut usage = lock(&self.usage);
        let u = usage.entry(operation).or_default();
        u.requests += 1;
        u.conditions_failed += u64::from(condition_failed);
        let consumed = capacity
            .and_then(ConsumedCapacity::capacity_units)
            .unwrap_or(0.0);
        match units {
            Units::Read => u.read_units += consumed,
            Units::Write => u.write_units += consumed,
        }
    }

    /// An update of one account's log-source item.
    fn source_update(&self, name: &str) -> Result<UpdateItemFluentBuilder, StoreError> {
        if crate::silence::parse_source_name(name).is_none() {
            return Err(self.table_error(
                "UpdateItem (log source)",
                format!("{name:?} is not a log source (<account>:<region>)"),
            ));
        }
        Ok(self.update(SOURCES_PK.to_string(), source_sort_key(name)))
    }

    /// An update of the notice claim of one account's log-source item.
    fn notice_update(&self, account: &str) -> Result<UpdateItemFluentBuilder, StoreError> {
        Ok(self
            .source_update(account)?
            .expression_attribute_names("#natt", attr::NOTICE_ATTEMPT)
            .expression_attribute_names("#nat", attr::NOTICE_CLAIMED_AT))
    }

    fn update(&self, pk: String, sk: i64) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(pk))
            .key(SORT_KEY, n(sk))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// Sends an update; `Ok(false)` when its condition failed.
    async fn send_update(
        &self,
        operation: &'static str,
        key: &DenialKey,
        update: UpdateItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        match update.send().await {
            Ok(out) => {
                self.account(operation, Units::Write, out.consumed_capacity(), false);
                Ok(true)
            }
            Err(e) if condition_failed(&e) => {
                self.account(operation, Units::Write, None, true);
                Ok(false)
            }
            Err(e) => {
                self.account(operation, Units::Write, None, false);
                Err(self.error(operation, key, e))
            }
        }
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
        self.send_update(operation, key, holding(update, claim))
            .await
            .map(|_| ())
    }

    /// One page of a key's counter items in a sort-key range: (sk, denials, earlier
    /// layout's tokens) and where the next page starts.
    async fn counter_page(
        &self,
        key: &DenialKey,
        (lo, hi): (&str, &str),
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<CounterItem>, Option<Item>), StoreError> {
        const OPERATION: &str = "Query (window)";
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .projection_expression("#sk, #denials, #objects, #ci, #ct")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_names("#denials", attr::DENIALS)
            .expression_attribute_names("#objects", attr::OBJECTS)
            .expression_attribute_names("#ci", attr::LOG_CALLS)
            .expression_attribute_names("#ct", attr::TRAIL_CALLS)
            .expression_attribute_values(":pk", s(counter_pk(key)))
            .expression_attribute_values(":lo", AttributeValue::N(lo.to_string()))
            .expression_attribute_values(":hi", AttributeValue::N(hi.to_string()))
            .consistent_read(true)
            .set_limit(limit.and_then(|l| i32::try_from(l).ok()))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let out = self
            .counted(OPERATION, Units::Read, out)
            .map_err(|e| self.error(OPERATION, key, e))?;
        let items = out
            .items()
            .iter()
            .filter_map(|item| {
                let sk = item.get(SORT_KEY)?.as_n().ok()?.clone();
                Some(CounterItem {
                    denials: number(item, attr::DENIALS).and_then(|c| u64::try_from(c).ok())?,
                    tokens: item
                        .get(attr::OBJECTS)
                        .and_then(|v| v.as_ss().ok())
                        .cloned()
                        .unwrap_or_default(),
                    calls: stored_calls(item),
                    sk,
                })
            })
            .collect();
        let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((items, next))
    }

    async fn read_alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        const OPERATION: &str = "GetItem (alert state)";
        match self.get_item(OPERATION, alert_pk(key)).await {
            Ok(item) => Ok(item.as_ref().map(alert_state)),
            Err(e) => Err(self.error(OPERATION, key, e)),
        }
    }

    /// What is recorded of one batch of markers, fetching what DynamoDB left
    /// unprocessed.
    async fn markers_batch(
        &self,
        markers: &[String],
    ) -> Result<BTreeMap<String, Marker>, StoreError> {
        const OPERATION: &str = "BatchGetItem (object markers)";
        let mut keys: Vec<Item> = markers
            .iter()
            .map(|m| {
                HashMap::from([
                    (PARTITION_KEY.to_string(), s(marker_pk(m))),
                    (SORT_KEY.to_string(), n(0)),
                ])
            })
            .collect();
        let mut found = BTreeMap::new();
        let mut backoff = std::time::Duration::from_millis(50);
        for _ in 0..6 {
            if keys.is_empty() {
                return Ok(found);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .projection_expression("#pk, #failures")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#failures", attr::FAILURES)
                .build()
                .map_err(|e| self.table_error(OPERATION, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let out = match out {
                Ok(out) => {
                    self.account(
                        OPERATION,
                        Units::Read,
                        out.consumed_capacity().first(),
                        false,
                    );
                    out
                }
                Err(e) => {
                    self.account(OPERATION, Units::Read, None, false);
                    return Err(self.table_error(OPERATION, e));
                }
            };
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                let Some(m) = text(item, PARTITION_KEY)
                    .and_then(|pk| pk.strip_prefix("O#").map(str::to_string))
                else {
                    continue;
                };
                // A marker without failures is a processed object (as every marker
                // written before failures were kept).
                let state = match number(item, attr::FAILURES) {
                    Some(n) => Marker::Failed(u32::try_from(n).unwrap_or(u32::MAX)),
                    None => Marker::Processed,
                };
                found.insert(m, state);
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

/// One counter item of a key, as a window read sees it.
#[derive(Debug, Clone)]
struct CounterItem {
    /// The sort key exactly as stored.
    sk: String,
    denials: u64,
    /// The earlier layout's token set; empty for contributions.
    tokens: Vec<String>,
    /// The contribution's calls (none in the earlier layout's items).
    calls: crate::calls::Calls,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn contribution_keys_stay_inside_their_bucket_and_apart() {
        let token = |i: u32| ObjectId::s3("b", &format!("k{i}"), "v").token;
        for bucket in [0, 1, 2_957_283, -103_559_328, 421_000_000, -1] {
            let (lo, hi) = bucket_range(bucket, bucket);
            let (lo, hi) = (
                parse_scaled(&lo).expect("lo"),
                parse_scaled(&hi).expect("hi"),
            );
            let mut seen = BTreeSet::new();
            for i in 0..200 {
                let sk = contribution_sk(bucket, &token(i));
                let scaled = parse_scaled(&sk).expect("parses back");
                assert!(lo < scaled && scaled <= hi, "{sk} in bucket {bucket}");
                assert_eq!(bucket_of_sk(&sk), Some((bucket, false)), "{sk}");
                let significant = sk.trim_start_matches('-').replace('.', "");
                assert!(significant.trim_start_matches('0').len() <= 38, "{sk}");
                assert!(seen.insert(scaled), "distinct objects, distinct keys");
            }
            assert_eq!(
                contribution_sk(bucket, &token(7)),
                contribution_sk(bucket, &token(7))
            );
            // The earlier layout's integer key is the bucket's first key.
            assert_eq!(bucket_of_sk(&bucket.to_string()), Some((bucket, true)));
        }
    }

    #[test]
    fn numbers_parse_as_dynamodb_writes_them() {
        assert_eq!(parse_scaled("12"), Some(12 * SCALE));
        assert_eq!(parse_scaled("-1.5"), Some(-15 * SCALE / 10));
        assert_eq!(parse_scaled("1.5E2"), Some(150 * SCALE));
        assert_eq!(parse_scaled("2.5e-1"), Some(SCALE / 4));
        assert_eq!(parse_scaled("x"), None);
        assert_eq!(parse_scaled(""), None);
        assert_eq!(format_scaled(-15 * SCALE / 10), "-1.5");
        assert_eq!(format_scaled(3 * SCALE), "3");
    }

    #[test]
    fn deliveries_round_trip_through_their_stored_form() {
        assert_eq!(
            parse_delivery(&delivery("securityhub", 1_773_482_400)),
            Some(("securityhub".to_string(), 1_773_482_400))
        );
        assert_eq!(parse_delivery("no-window"), None);
    }
}
