//! The distinct sets of the rules that count distinct values: one item per (key,
//! bucket), `pk = "D#" + key digest`, `sk = bucket`, with string sets `calls`,
//! `values` and `regions` (docs/DESIGN.md, "Distinct counting").
//!
//! Adding is `ADD` of string sets, a union: an object added twice, or by two
//! invocations at once, adds nothing twice. Each set stops growing at its bound: the
//! update's condition lets it through only while every set it adds to is below its
//! bound, so a set holds at most its bound plus what one object brings (each
//! object's sets are themselves bounded); a full set is read and only the sets with
//! room are added to.

use super::*;
use crate::store::{DistinctSets, Members, MAX_CALLS, MAX_VALUES};
use std::collections::BTreeSet;

pub(super) fn distinct_pk(key: &DenialKey) -> String {
    format!("D#{}", key.digest())
}

/// Tries to add what is missing this many times before leaving it: each failed
/// condition means another writer filled a set meanwhile.
const ATTEMPTS: usize = 4;

fn sets(members: &Members) -> [(&'static str, &BTreeSet<String>, usize); 3] {
    [
        (attr::CALLS, &members.calls, MAX_CALLS),
        (attr::VALUES, &members.values, MAX_VALUES),
        (attr::REGIONS, &members.regions, MAX_VALUES),
    ]
}

fn members_of(item: &Item) -> Members {
    let set = |name: &str| -> BTreeSet<String> {
        item.get(name)
            .and_then(|v| v.as_ss().ok())
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    };
    Members {
        calls: set(attr::CALLS),
        values: set(attr::VALUES),
        regions: set(attr::REGIONS),
    }
}

impl DistinctSets for DynamoStore {
    async fn add_members(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        members: &Members,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "UpdateItem (distinct sets)";
        let mut adding = members.clone();
        for _ in 0..ATTEMPTS {
            if adding.is_empty() {
                return Ok(());
            }
            let mut adds = Vec::new();
            let mut conditions = Vec::new();
            let mut update = self
                .update(distinct_pk(key), bucket)
                .expression_attribute_names("#exp", attr::EXPIRES_AT)
                .expression_attribute_values(":exp", n(expires_at));
            for (i, (name, set, max)) in sets(&adding).into_iter().enumerate() {
                if set.is_empty() {
                    continue;
                }
                adds.push(format!("#s{i} :s{i}"));
                conditions.push(format!(
                    "(attribute_not_exists(#s{i}) OR size(#s{i}) < :max{i})"
                ));
                update = update
                    .expression_attribute_names(format!("#s{i}"), name)
                    .expression_attribute_values(
                        format!(":s{i}"),
                        AttributeValue::Ss(set.iter().cloned().collect()),
                    )
                    .expression_attribute_values(format!(":max{i}"), n(max));
            }
            let update = update
                .update_expression(format!("SET #exp = :exp ADD {}", adds.join(", ")))
                .condition_expression(conditions.join(" AND "));
            if self.send_update(OPERATION, key, update).await? {
                return Ok(());
            }
            // A set is full: add only to the sets with room, what they lack.
            let stored = self.read_members(key, bucket, bucket).await?;
            let stored = stored.get(&bucket).cloned().unwrap_or_default();
            adding = stored.missing_from(&adding);
        }
        Ok(())
    }

    async fn members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, Members>, StoreError> {
        self.read_members(key, first, last).await
    }
}

impl DynamoStore {
    async fn read_members(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
    ) -> Result<BTreeMap<Bucket, Members>, StoreError> {
        const OPERATION: &str = "Query (distinct sets)";
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", s(distinct_pk(key)))
                .expression_attribute_values(":lo", n(first))
                .expression_attribute_values(":hi", n(last))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let page = self
                .counted(OPERATION, Units::Read, page)
                .map_err(|e| self.error(OPERATION, key, e))?;
            for item in page.items() {
                if let Some(bucket) = number(item, SORT_KEY) {
                    out.insert(bucket, members_of(item));
                }
            }
            match page.last_evaluated_key().filter(|k| !k.is_empty()) {
                Some(next) => start = Some(next.clone()),
                None => return Ok(out),
            }
        }
    }
}
