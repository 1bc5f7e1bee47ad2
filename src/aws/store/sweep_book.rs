//! The sweep's bookkeeping: object markers with their failures, and the cursor
//! (docs/DESIGN.md, "The sweep").

use super::*;

pub(super) fn marker_pk(marker: &str) -> String {
    format!("O#{marker}")
}

pub(super) fn cursor_pk(name: &str) -> String {
    format!("W#{name}")
}

/// BatchGetItem takes at most this many keys.
pub(super) const BATCH_GET_KEYS: usize = 100;

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
