//! Call claims: which log counted each denied call of a (key, bucket), so a call told
//! by both the invocation log and CloudTrail counts once (docs/DESIGN.md, "One call,
//! one count"). One item per (key, bucket), `pk = "R#" + key digest`, `sk = bucket`,
//! one attribute per call (`c_` + its 16-hex id) holding the log that claimed it
//! first (`i` or `t`), and `offered`, the calls offered so far.
//!
//! One UpdateItem claims an object's calls of a (key, bucket): `SET c_x =
//! if_not_exists(c_x, :log)` for each keeps the first log's claim, and
//! `ReturnValues = ALL_NEW` answers with every call's owner, atomically (the item is a
//! few KB at most; `UPDATED_NEW` leaves out, in moto, what `if_not_exists` kept). The
//! condition `offered < 64` bounds the item: past it nothing is claimed, and the
//! object counts its records as they are.

use super::*;
use crate::logs::RecordKind;
use crate::store::{CallOwners, MAX_CLAIMED_CALLS};

const CALL_PREFIX: &str = "c_";

pub(super) fn call_claims_pk(key: &DenialKey) -> String {
    format!("R#{}", key.digest())
}

impl DynamoStore {
    pub(super) async fn claim_calls_item(
        &self,
        key: &DenialKey,
        bucket: Bucket,
        calls: &BTreeMap<String, RecordKind>,
        expires_at: i64,
    ) -> Result<Option<CallOwners>, StoreError> {
        const OPERATION: &str = "UpdateItem (call claims)";
        let mut sets = vec!["#exp = :exp".to_string()];
        let mut update = self
            .update(call_claims_pk(key), bucket)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_names("#offered", attr::OFFERED)
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":k", n(calls.len()))
            .expression_attribute_values(":max", n(MAX_CLAIMED_CALLS))
            .return_values(ReturnValue::AllNew);
        // One value per log the calls name (`:i`, `:t`): an unused value is refused.
        let logs: std::collections::BTreeSet<&str> = calls.values().map(|l| l.tag()).collect();
        for tag in logs {
            update = update.expression_attribute_values(format!(":{tag}"), s(tag));
        }
        for (i, (id, source)) in calls.iter().enumerate() {
            let log = source.tag();
            sets.push(format!("#c{i} = if_not_exists(#c{i}, :{log})"));
            update =
                update.expression_attribute_names(format!("#c{i}"), format!("{CALL_PREFIX}{id}"));
        }
        let update = update
            .update_expression(format!("SET {} ADD #offered :k", sets.join(", ")))
            .condition_expression("attribute_not_exists(#offered) OR #offered < :max");
        match update.send().await {
            Ok(out) => {
                self.account(OPERATION, Units::Write, out.consumed_capacity(), false);
                let owners = out
                    .attributes()
                    .into_iter()
                    .flatten()
                    .filter(|(name, _)| calls.contains_key(name.trim_start_matches(CALL_PREFIX)))
                    .filter_map(|(name, value)| {
                        let id = name.strip_prefix(CALL_PREFIX)?;
                        let owner = RecordKind::from_tag(value.as_s().ok()?)?;
                        Some((id.to_string(), owner))
                    })
                    .collect();
                Ok(Some(owners))
            }
            Err(e) if condition_failed(&e) => {
                self.account(OPERATION, Units::Write, None, true);
                Ok(None)
            }
            Err(e) => {
                self.account(OPERATION, Units::Write, None, false);
                Err(self.error(OPERATION, key, e))
            }
        }
    }
}
