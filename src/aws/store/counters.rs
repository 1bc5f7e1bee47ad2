//! The counter contributions: one item per (object, key, bucket) with its records
//! and its calls by log, read back in bounded pages and counted one call once, and
//! the earlier layout's per-bucket items honoured (docs/DESIGN.md, "Exactly-once
//! counting", "One call, one count", "The DynamoDB item layout").

use super::*;
use crate::calls::{tell, CallRecords, CallTally, Calls, Contribution, MAX_CALLS_PER_COUNTER};
use crate::logs::RecordKind;
use std::collections::{BTreeSet, HashMap};

/// The map attribute of `log`'s calls.
fn calls_attribute(log: RecordKind) -> &'static str {
    match log {
        RecordKind::BedrockInvocationLog => attr::LOG_CALLS,
        RecordKind::CloudTrail => attr::TRAIL_CALLS,
    }
}

const LOGS: [RecordKind; 2] = [RecordKind::BedrockInvocationLog, RecordKind::CloudTrail];

/// `log`'s calls of a contribution as a map of call id (16 hex digits) to records;
/// `None` when the log tells none (DynamoDB refuses no empty map, but it costs bytes).
fn stored_calls_of(calls: &[(u64, CallRecords)], log: RecordKind) -> Option<AttributeValue> {
    let map: HashMap<String, AttributeValue> = calls
        .iter()
        .filter(|(_, c)| c.of(log) > 0)
        .map(|(id, c)| (format!("{id:016x}"), n(c.of(log))))
        .collect();
    (!map.is_empty()).then_some(AttributeValue::M(map))
}

/// A contribution item's calls, as written by [`Counters::add`]: at most
/// [`MAX_CALLS_PER_COUNTER`] of each log, entries that are not a call id and a count
/// skipped.
pub(super) fn stored_calls(item: &Item) -> Calls {
    let mut calls: Calls = Vec::new();
    for log in LOGS {
        let Some(map) = item.get(calls_attribute(log)).and_then(|v| v.as_m().ok()) else {
            continue;
        };
        let entries = map.iter().filter_map(|(id, records)| {
            let id = u64::from_str_radix(id, 16).ok()?;
            let records = records.as_n().ok()?.parse::<u64>().ok()?;
            Some((id, records))
        });
        for (id, records) in entries.take(MAX_CALLS_PER_COUNTER) {
            tell(&mut calls, id, log, records, true);
        }
    }
    calls
}

pub(super) const CONTRIBUTION_CONDITION: &str = "attribute_not_exists(#pk)";

pub(super) fn counter_pk(key: &DenialKey) -> String {
    format!("C#{}", key.digest())
}

/// Digits after the point of a contribution's sort key. With the bucket's digits (at
/// most 10, for one-minute buckets in year 9999) this stays within DynamoDB's 38
/// significant digits of a number.
pub(super) const FRACTION_DIGITS: usize = 28;

pub(super) const SCALE: i128 = 10_i128.pow(FRACTION_DIGITS as u32);

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
pub(super) fn bucket_range(first: Bucket, last: Bucket) -> (String, String) {
    (
        format_scaled(i128::from(first) * SCALE),
        format_scaled(i128::from(last) * SCALE + SCALE - 1),
    )
}

/// `value / SCALE` as a plain decimal string (no exponent, no trailing zeros).
pub(super) fn format_scaled(value: i128) -> String {
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
pub(super) fn parse_scaled(number: &str) -> Option<i128> {
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
pub(super) fn bucket_of_sk(sk: &str) -> Option<(Bucket, bool)> {
    let scaled = parse_scaled(sk)?;
    let bucket = Bucket::try_from(scaled.div_euclid(SCALE)).ok()?;
    Some((bucket, scaled.rem_euclid(SCALE) == 0))
}

impl Counters for DynamoStore {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        const OPERATION: &str = "PutItem (counter contribution)";
        // The contribution's calls, one map per log that tells any.
        let calls: Item = LOGS
            .into_iter()
            .filter_map(|log| {
                let map = stored_calls_of(contribution.calls, log)?;
                Some((calls_attribute(log).to_string(), map))
            })
            .collect();
        let result = self
            .client
            .put_item()
            .set_item(Some(calls))
            .table_name(&self.table)
            .item(PARTITION_KEY, s(counter_pk(key)))
            .item(
                SORT_KEY,
                AttributeValue::N(contribution_sk(bucket, &object.token)),
            )
            .item(attr::DENIALS, n(contribution.records))
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
        read: WindowRead,
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
        let items = without_what_the_earlier_layout_counted(items);
        let mut read: BTreeMap<Bucket, (u64, CallTally)> = BTreeMap::new();
        for item in &items {
            if let Some((bucket, _)) = bucket_of_sk(&item.sk) {
                let (records, calls) = read.entry(bucket).or_default();
                *records += item.denials;
                calls.add(&item.calls);
            }
        }
        let buckets = read
            .into_iter()
            .map(|(bucket, (records, calls))| (bucket, records.saturating_sub(calls.told_twice())))
            .filter(|(_, count)| *count > 0)
            .collect();
        Ok(WindowCounts { buckets, complete })
    }
}

/// The counter items less the contributions of objects that an earlier-layout item of
/// the same bucket already counted (content counted before the upgrade, delivered
/// again after it): such a contribution's sort key is the one its object's token
/// draws in that bucket, and the earlier item lists the token. Reads never delete:
/// every read leaves such a contribution out for as long as the earlier item lives,
/// and once it has expired the contribution, which expires later, counts its object
/// alone.
pub(super) fn without_what_the_earlier_layout_counted(items: Vec<CounterItem>) -> Vec<CounterItem> {
    let twice: BTreeSet<i128> = items
        .iter()
        .filter_map(|i| {
            let (bucket, earlier) = bucket_of_sk(&i.sk)?;
            earlier.then_some((bucket, &i.tokens))
        })
        .flat_map(|(bucket, tokens)| {
            tokens
                .iter()
                .filter_map(move |t| parse_scaled(&contribution_sk(bucket, t)))
        })
        .collect();
    if twice.is_empty() {
        return items;
    }
    items
        .into_iter()
        .filter(|i| !parse_scaled(&i.sk).is_some_and(|sk| twice.contains(&sk)))
        .collect()
}
