//! The store's four traits on one DynamoDB table (key schema `pk` S, `sk` N; TTL attribute
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
//!   honoured ([`reconcile_earlier_layout`]).
//! - Alert state per key: `pk = "A#" + key digest`, `sk = 0`, `last_sent_end`, a
//!   pending claim (`pending_object`, `pending_attempt`, `pending_end`, `claimed_at`)
//!   and `delivered` (`sink@window_end` strings). The claim is one conditional
//!   UpdateItem whose condition is [`decide_claim`](super::decide_claim) written as a
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

use super::{
    decide_claim, AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters, Marker,
    PendingClaim, SourceWatch, StoreError, SweepBook, WindowCounts, WindowRead,
};
use crate::errors::{lock, BoxError};
use crate::key::{DenialKey, ObjectId};
use crate::silence::{
    LogSource, SourceStatus, NOTICE_LEASE_SECONDS, SEEN_EVERY_SECONDS, WATCHED_FOR_SECONDS,
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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

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
}
pub use attr::{EXPIRES_AT as TTL_ATTRIBUTE, PARTITION_KEY, SORT_KEY};

const CONTRIBUTION_CONDITION: &str = "attribute_not_exists(#pk)";

const CLAIM_UPDATE: &str = "SET #user = :user, #model = :model, #account = :account, #exp = :exp, \
     #pobj = :obj, #patt = :att, #pend = :end, #cat = :now";
/// [`decide_claim`](super::decide_claim): not suppressed, and no fresh claim of another attempt.
const CLAIM_CONDITION: &str =
    "(attribute_not_exists(#last) OR (#last <> :end AND (#last <= :lo OR #last >= :hi))) \
     AND (attribute_not_exists(#earlier) OR (#earlier <> :end AND (#earlier <= :lo OR #earlier >= :hi))) \
     AND (attribute_not_exists(#patt) OR #patt = :att OR #cat <= :stale)";

const HOLDING: &str = "#patt = :att";
const DELIVERY_UPDATE: &str = "ADD #delivered :sink";
const RELEASE_UPDATE: &str = "REMOVE #pobj, #patt, #pend, #cat";
/// Marks the alert sent, in one of three updates ([`AlertState::mark_sent`](super::AlertState::mark_sent)),
/// each conditioned on this attempt holding the claim. A later window than the last
/// sent: it becomes the last, the last the earlier one.
const MARK_LATER: (&str, &str) = (
    "SET #earlier = if_not_exists(#last, :end), #last = :end \
     REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att AND (attribute_not_exists(#last) OR #last < :end)",
);
/// An older window than the last sent (a late log): remembered as the earlier one.
const MARK_OLDER: (&str, &str) = (
    "SET #earlier = :end REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att AND #last > :end",
);
/// The last sent window again: the claim is cleared.
const MARK_SAME: (&str, &str) = (
    "REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att",
);

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
    /// Log sources read at most ([`super::MAX_LOG_SOURCES`]).
    max_log_sources: usize,
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

/// The alert allowance of one account: its hours are the sort keys.
fn allowance_pk(account: &str) -> String {
    format!(
        "H#{}",
        &crate::key::digest_parts(&[b"alert-allowance", account.as_bytes()])[..32]
    )
}

fn cursor_pk(name: &str) -> String {
    format!("W#{name}")
}

/// The one partition of every account's log-source item.
const SOURCES_PK: &str = "L#log-sources";

const SEEN_UPDATE: &str = "SET #seen = :now, #account = :account, #exp = :exp";
const SEEN_CONDITION: &str =
    "(attribute_not_exists(#account) OR #account = :account) AND (attribute_not_exists(#seen) OR #seen <= :stale)";
const NOTICE_CLAIM_UPDATE: &str = "SET #natt = :att, #nat = :now";
const NOTICE_FREE: &str = "(attribute_not_exists(#natt) OR #natt = :att OR #nat <= :stale)";
const NOTICE_HOLDING: &str = "#natt = :att";

/// The sort key of a log source's item: 62 bits of the digest of its name (its name is
/// in the item, and every write is conditioned on it, so two names that share a key
/// cannot overwrite each other).
fn source_sort_key(name: &str) -> i64 {
    let digest = crate::key::digest_parts(&[b"log-source", name.as_bytes()]);
    i64::from_str_radix(&digest[..15], 16).unwrap_or_default() >> 2
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

fn log_source(item: &Item) -> Option<LogSource> {
    Some(LogSource {
        account: text(item, attr::ACCOUNT)?,
        last_seen: number(item, attr::LAST_SEEN)?,
        silent_since: number(item, attr::SILENT_SINCE),
        claim: text(item, attr::NOTICE_ATTEMPT)
            .map(|a| (a, number(item, attr::NOTICE_CLAIMED_AT).unwrap_or_default())),
    })
}

/// BatchGetItem takes at most this many keys.
const BATCH_GET_KEYS: usize = 100;

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// Digits after the point of a contribution's sort key. With the bucket's digits (at
/// most 10, for one-minute buckets in year 9999) this stays within DynamoDB's 38
/// significant digits of a number.
const FRACTION_DIGITS: usize = 28;
const SCALE: i128 = 10_i128.pow(FRACTION_DIGITS as u32);

/// The sort key of `object`'s contribution to `bucket`: `bucket` plus a fraction in
/// `(0, 1)` drawn from the object's token, exactly, as a decimal string. Distinct
/// objects get distinct keys (a 93-bit draw from the token's 128).
pub fn contribution_sk(bucket: Bucket, token: &str) -> String {
    let draw = u128::from_str_radix(token.get(..32).unwrap_or(token), 16).unwrap_or(0);
    let fraction = (draw % (SCALE as u128 - 1)) as i128 + 1;
    format_scaled(i128::from(bucket) * SCALE + fraction)
}

/// The sort-key range of buckets `first ..= last`: the earlier layout's integer keys
/// and every contribution.
fn bucket_range(first: Bucket, last: Bucket) -> (String, String) {
    (
        format_scaled(i128::from(first) * SCALE),
        format_scaled(i128::from(last) * SCALE + SCALE - 1),
    )
}

/// `value / SCALE` as a plain decimal string (no exponent, no trailing zeros).
fn format_scaled(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let (whole, fraction) = (abs / SCALE as u128, abs % SCALE as u128);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:0width$}", width = FRACTION_DIGITS);
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// A DynamoDB number (as DynamoDB writes it back: sign, digits, point, exponent)
/// times `SCALE`, when exact.
fn parse_scaled(number: &str) -> Option<i128> {
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (number, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let shift = FRACTION_DIGITS as i32 - fraction.len() as i32 + exponent;
    if shift >= 0 {
        value = value.checked_mul(10_i128.checked_pow(shift as u32)?)?;
    } else {
        let divisor = 10_i128.checked_pow(shift.unsigned_abs())?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
}

/// The bucket a counter item's sort key belongs to, and whether it is the earlier
/// layout's per-bucket item.
fn bucket_of_sk(sk: &str) -> Option<(Bucket, bool)> {
    let scaled = parse_scaled(sk)?;
    let bucket = Bucket::try_from(scaled.div_euclid(SCALE)).ok()?;
    Some((bucket, scaled.rem_euclid(SCALE) == 0))
}

/// The alert state as stored in its item.
fn alert_state(item: &Item) -> AlertState {
    AlertState {
        last_sent_end: number(item, attr::LAST_SENT_END),
        earlier_sent_end: number(item, attr::EARLIER_SENT_END),
        pending: text(item, attr::PENDING_ATTEMPT).map(|attempt| PendingClaim {
            object_token: text(item, attr::PENDING_OBJECT).unwrap_or_default(),
            attempt,
            window_end: number(item, attr::PENDING_END).unwrap_or_default(),
            claimed_at: number(item, attr::CLAIMED_AT).unwrap_or_default(),
        }),
        delivered: item
            .get(attr::DELIVERED)
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

/// Longest id kept in the alert state's readable attributes. The key is the digest of
/// the full ids; these copies are for people reading the table.
pub const MAX_STORED_ID_BYTES: usize = 2048;

fn readable(id: &str) -> &str {
    crate::text::prefix_bytes(id, MAX_STORED_ID_BYTES)
}

/// Names and values the alert state carries: the three ids (readable next to the
/// digest in its key) and the expiry.
fn with_ids(
    b: UpdateItemFluentBuilder,
    key: &DenialKey,
    expires_at: i64,
) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#user", attr::USER_ID)
        .expression_attribute_names("#model", attr::MODEL_ID)
        .expression_attribute_names("#account", attr::ACCOUNT_ID)
        .expression_attribute_names("#exp", attr::EXPIRES_AT)
        .expression_attribute_values(":user", s(readable(&key.user_id)))
        .expression_attribute_values(":model", s(readable(&key.model_id)))
        .expression_attribute_values(":account", s(readable(&key.account_id)))
        .expression_attribute_values(":exp", n(expires_at))
}

/// The names of the pending claim's attributes other than its attempt.
fn pending_names(b: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#pobj", attr::PENDING_OBJECT)
        .expression_attribute_names("#pend", attr::PENDING_END)
        .expression_attribute_names("#cat", attr::CLAIMED_AT)
}

/// The claim's attempt, under the condition "this attempt holds the claim".
fn holding(b: UpdateItemFluentBuilder, claim: &AlertClaim) -> UpdateItemFluentBuilder {
    b.condition_expression(HOLDING)
        .expression_attribute_names("#patt", attr::PENDING_ATTEMPT)
        .expression_attribute_values(":att", s(&claim.attempt))
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
            max_log_sources: super::MAX_LOG_SOURCES,
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
            .projection_expression("#sk, #denials, #objects")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_names("#denials", attr::DENIALS)
            .expression_attribute_names("#objects", attr::OBJECTS)
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
                    sk,
                })
            })
            .collect();
        let next = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
        Ok((items, next))
    }

    /// Removes `object`'s contributions to buckets whose earlier-layout counter already
    /// holds its token: content counted before the upgrade is not counted again.
    /// Returns the counter items that remain.
    async fn reconcile_earlier_layout(
        &self,
        key: &DenialKey,
        object: &ObjectId,
        items: Vec<CounterItem>,
    ) -> Result<Vec<CounterItem>, StoreError> {
        let earlier: BTreeSet<Bucket> = items
            .iter()
            .filter(|i| i.tokens.contains(&object.token))
            .filter_map(|i| {
                bucket_of_sk(&i.sk)
                    .filter(|(_, earlier)| *earlier)
                    .map(|(b, _)| b)
            })
            .collect();
        if earlier.is_empty() {
            return Ok(items);
        }
        let twice: BTreeSet<i128> = earlier
            .iter()
            .filter_map(|b| parse_scaled(&contribution_sk(*b, &object.token)))
            .collect();
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if !parse_scaled(&item.sk).is_some_and(|sk| twice.contains(&sk)) {
                kept.push(item);
                continue;
            }
            const OPERATION: &str = "DeleteItem (counted twice across the upgrade)";
            let out = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(counter_pk(key)))
                .key(SORT_KEY, AttributeValue::N(item.sk.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match out {
                Ok(out) => self.account(OPERATION, Units::Write, out.consumed_capacity(), false),
                Err(e) => {
                    self.account(OPERATION, Units::Write, None, false);
                    return Err(self.error(OPERATION, key, e));
                }
            }
        }
        Ok(kept)
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
}

impl Counters for DynamoStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        count: u64,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        const OPERATION: &str = "PutItem (counter contribution)";
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(counter_pk(key)))
            .item(
                SORT_KEY,
                AttributeValue::N(contribution_sk(bucket, &object.token)),
            )
            .item(attr::DENIALS, n(count))
            .item(attr::EXPIRES_AT, n(expires_at))
            .condition_expression(CONTRIBUTION_CONDITION)
            .expression_attribute_names("#pk", PARTITION_KEY)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.account(OPERATION, Units::Write, out.consumed_capacity(), false);
                Ok(AddOutcome::Added)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                self.account(OPERATION, Units::Write, None, true);
                Ok(AddOutcome::AlreadyCounted)
            }
            Err(e) => {
                self.account(OPERATION, Units::Write, None, false);
                Err(self.error(OPERATION, key, e))
            }
        }
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        read: WindowRead<'_>,
    ) -> Result<WindowCounts, StoreError> {
        let (lo, hi) = bucket_range(first, last);
        let mut items = Vec::new();
        let mut start = None;
        // One item past the most asked for tells "more" from "exactly that many",
        // which a page that stops at its limit does not.
        let limit = read.max_contributions.map(|m| m + 1);
        let complete = loop {
            let left = limit.map(|l| l.saturating_sub(items.len()));
            let (page, next) = self
                .counter_page(key, (&lo, &hi), left, start.take())
                .await?;
            items.extend(page);
            if limit.is_some_and(|l| items.len() >= l) {
                break false;
            }
            match next {
                None => break true,
                Some(next) => start = Some(next),
            }
        };
        if complete {
            items = self
                .reconcile_earlier_layout(key, read.object, items)
                .await?;
        }
        let mut buckets = BTreeMap::new();
        for item in &items {
            if let Some((bucket, _)) = bucket_of_sk(&item.sk) {
                if item.denials > 0 {
                    *buckets.entry(bucket).or_insert(0) += item.denials;
                }
            }
        }
        Ok(WindowCounts { buckets, complete })
    }
}

impl AlertClaims for DynamoStore {
    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        self.read_alert_state(key).await
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        const OPERATION: &str = "UpdateItem (alert claim)";
        let update = with_ids(self.update(alert_pk(key), 0), key, claim.expires_at);
        let result = pending_names(update)
            .update_expression(CLAIM_UPDATE)
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#last", attr::LAST_SENT_END)
            .expression_attribute_names("#earlier", attr::EARLIER_SENT_END)
            .expression_attribute_names("#patt", attr::PENDING_ATTEMPT)
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
                self.account(OPERATION, Units::Write, out.consumed_capacity(), false);
                let delivered = out
                    .attributes()
                    .map(alert_state)
                    .unwrap_or_default()
                    .delivered_for(claim.window_end);
                return Ok(ClaimOutcome::Claimed { delivered });
            }
            Err(e) if condition_failed(&e) => {
                self.account(OPERATION, Units::Write, None, true);
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
            Err(e) => {
                self.account(OPERATION, Units::Write, None, false);
                return Err(self.error(OPERATION, key, e));
            }
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
            .expression_attribute_names("#delivered", attr::DELIVERED)
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

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        const OPERATION: &str = "UpdateItem (alert allowance)";
        let update = self
            .update(allowance_pk(account), hour_start)
            .update_expression("ADD #sent :one SET #exp = :exp")
            .condition_expression("attribute_not_exists(#sent) OR #sent < :max")
            .expression_attribute_names("#sent", attr::ALERTS_SENT)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":exp", n(expires_at));
        self.send_update(OPERATION, &DenialKey::new("", "", account), update)
            .await
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem (alert sent)";
        // The usual case, a later window, takes one request; a condition that fails
        // because of the stored ends leads to the next case, and one that fails
        // because the claim was taken over to none (the last case is conditioned on
        // holding alone).
        for (i, (update, condition)) in [MARK_LATER, MARK_OLDER, MARK_SAME].into_iter().enumerate()
        {
            let mut request = pending_names(self.update(alert_pk(key), 0))
                .update_expression(update)
                .condition_expression(condition)
                .expression_attribute_names("#patt", attr::PENDING_ATTEMPT)
                .expression_attribute_names("#delivered", attr::DELIVERED)
                .expression_attribute_values(":att", s(&claim.attempt));
            if i < 2 {
                request = request
                    .expression_attribute_names("#last", attr::LAST_SENT_END)
                    .expression_attribute_names("#earlier", attr::EARLIER_SENT_END)
                    .expression_attribute_values(":end", n(claim.window_end));
            }
            if self.send_update(OPERATION, key, request).await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

impl SweepBook for DynamoStore {
    async fn markers(&self, markers: &[String]) -> Result<BTreeMap<String, Marker>, StoreError> {
        let mut found = BTreeMap::new();
        for batch in markers.chunks(BATCH_GET_KEYS) {
            found.extend(self.markers_batch(batch).await?);
        }
        Ok(found)
    }

    async fn mark_failed(&self, marker: &str, expires_at: i64) -> Result<u32, StoreError> {
        const OPERATION: &str = "UpdateItem (object failed)";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(marker_pk(marker)))
            .key(SORT_KEY, n(0))
            .update_expression("ADD #failures :one SET #exp = :exp")
            .condition_expression("attribute_not_exists(#pk) OR attribute_exists(#failures)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#failures", attr::FAILURES)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.account(OPERATION, Units::Write, out.consumed_capacity(), false);
                Ok(out
                    .attributes()
                    .and_then(|a| number(a, attr::FAILURES))
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1))
            }
            // Processed meanwhile: nothing to count.
            Err(e) if condition_failed(&e) => {
                self.account(OPERATION, Units::Write, None, true);
                Ok(0)
            }
            Err(e) => {
                self.account(OPERATION, Units::Write, None, false);
                Err(self.table_error(OPERATION, e))
            }
        }
    }

    async fn sweep_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        const OPERATION: &str = "GetItem (sweep cursor)";
        match self.get_item(OPERATION, cursor_pk(name)).await {
            Ok(item) => Ok(item.and_then(|i| text(&i, attr::CURSOR))),
            Err(e) => Err(self.table_error(OPERATION, e)),
        }
    }

    async fn set_sweep_cursor(
        &self,
        name: &str,
        cursor: Option<&str>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem (sweep cursor)";
        let update = self.update(cursor_pk(name), 0);
        let update = match cursor {
            Some(c) => update
                .update_expression("SET #cursor = :cursor, #exp = :exp")
                .expression_attribute_names("#exp", attr::EXPIRES_AT)
                .expression_attribute_values(":cursor", s(c))
                .expression_attribute_values(":exp", n(expires_at)),
            None => update.update_expression("REMOVE #cursor"),
        }
        .expression_attribute_names("#cursor", attr::CURSOR);
        let out = update.send().await;
        self.counted(OPERATION, Units::Write, out)
            .map(|_| ())
            .map_err(|e| self.table_error(OPERATION, e))
    }

    async fn mark_seen(&self, marker: &str, expires_at: i64) -> Result<(), StoreError> {
        const OPERATION: &str = "PutItem (object marker)";
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(marker_pk(marker)))
            .item(SORT_KEY, n(0))
            .item(TTL_ATTRIBUTE, n(expires_at))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.counted(OPERATION, Units::Write, out)
            .map(|_| ())
            .map_err(|e| self.table_error(OPERATION, e))
    }
}

impl SourceWatch for DynamoStore {
    async fn source_seen(&self, account: &str, now: i64) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem (log source seen)";
        if crate::silence::parse_source_name(account).is_none() {
            return Ok(());
        }
        let update = self
            .source_update(account)?
            .update_expression(SEEN_UPDATE)
            .condition_expression(SEEN_CONDITION)
            .expression_attribute_names("#seen", attr::LAST_SEEN)
            .expression_attribute_names("#account", attr::ACCOUNT)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":account", s(account))
            .expression_attribute_values(":exp", n(now + WATCHED_FOR_SECONDS + 86_400))
            .expression_attribute_values(":stale", n(now - SEEN_EVERY_SECONDS));
        // A failed condition: seen within the hour, nothing to write.
        self.send_update(OPERATION, &DenialKey::new("", "", account), update)
            .await
            .map(|_| ())
    }

    async fn log_sources(&self) -> Result<Vec<LogSource>, StoreError> {
        const OPERATION: &str = "Query (log sources)";
        let mut sources = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":pk", s(SOURCES_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let out = self
                .counted(OPERATION, Units::Read, out)
                .map_err(|e| self.table_error(OPERATION, e))?;
            // Items of the earlier, account-wide layout name no Region: not watched
            // any more, they expire within WATCHED_FOR_SECONDS and a day.
            sources.extend(
                out.items()
                    .iter()
                    .filter_map(log_source)
                    .filter(|s| crate::silence::parse_source_name(&s.account).is_some()),
            );
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && sources.len() < self.max_log_sources => {
                    start = Some(k.clone());
                }
                _ => {
                    sources.truncate(self.max_log_sources);
                    return Ok(sources);
                }
            }
        }
    }

    async fn claim_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let unchanged = match status {
            SourceStatus::Silent => "#seen = :seen AND attribute_not_exists(#since)",
            SourceStatus::Resumed => "#seen = :seen AND #since = :since",
        };
        let mut update = self
            .notice_update(&source.account)?
            .update_expression(NOTICE_CLAIM_UPDATE)
            .condition_expression(format!("{unchanged} AND {NOTICE_FREE}"))
            .expression_attribute_names("#seen", attr::LAST_SEEN)
            .expression_attribute_names("#since", attr::SILENT_SINCE)
            .expression_attribute_values(":seen", n(source.last_seen))
            .expression_attribute_values(":att", s(attempt))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":stale", n(now - NOTICE_LEASE_SECONDS));
        if status == SourceStatus::Resumed {
            update = update
                .expression_attribute_values(":since", n(source.silent_since.unwrap_or_default()));
        }
        let key = DenialKey::new("", "", &source.account);
        self.send_update("UpdateItem (log source notice claim)", &key, update)
            .await
    }

    async fn finish_notice(
        &self,
        source: &LogSource,
        status: SourceStatus,
        attempt: &str,
        delivered: bool,
    ) -> Result<(), StoreError> {
        let mut update = self
            .notice_update(&source.account)?
            .condition_expression(NOTICE_HOLDING)
            .expression_attribute_values(":att", s(attempt));
        update = match (delivered, status) {
            (false, _) => update.update_expression("REMOVE #natt, #nat"),
            (true, SourceStatus::Silent) => update
                .update_expression("SET #since = :seen REMOVE #natt, #nat")
                .expression_attribute_names("#since", attr::SILENT_SINCE)
                .expression_attribute_values(":seen", n(source.last_seen)),
            (true, SourceStatus::Resumed) => update
                .update_expression("REMOVE #since, #natt, #nat")
                .expression_attribute_names("#since", attr::SILENT_SINCE),
        };
        let key = DenialKey::new("", "", &source.account);
        self.send_update("UpdateItem (log source notice)", &key, update)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
