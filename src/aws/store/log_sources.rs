//! When each log source last delivered, in one partition, and the notices claimed on
//! its item (docs/DESIGN.md, "Log sources").

use super::*;

/// The one partition of every account's log-source item.
pub(super) const SOURCES_PK: &str = "L#log-sources";

pub(super) const SEEN_UPDATE: &str = "SET #seen = :now, #account = :account, #exp = :exp";

pub(super) const SEEN_CONDITION: &str =
    "(attribute_not_exists(#account) OR #account = :account) AND (attribute_not_exists(#seen) OR #seen <= :stale)";

pub(super) const NOTICE_CLAIM_UPDATE: &str = "SET #natt = :att, #nat = :now";

pub(super) const NOTICE_FREE: &str =
    "(attribute_not_exists(#natt) OR #natt = :att OR #nat <= :stale)";

pub(super) const NOTICE_HOLDING: &str = "#natt = :att";

/// The sort key of a log source's item: 62 bits of the digest of its name (its name is
/// in the item, and every write is conditioned on it, so two names that share a key
/// cannot overwrite each other).
pub(super) fn source_sort_key(name: &str) -> i64 {
    let digest = crate::key::digest_parts(&[b"log-source", name.as_bytes()]);
    i64::from_str_radix(&digest[..15], 16).unwrap_or_default() >> 2
}

pub(super) fn log_source(item: &Item) -> Option<LogSource> {
    Some(LogSource {
        account: text(item, attr::ACCOUNT)?,
        last_seen: number(item, attr::LAST_SEEN)?,
        silent_since: number(item, attr::SILENT_SINCE),
        claim: text(item, attr::NOTICE_ATTEMPT)
            .map(|a| (a, number(item, attr::NOTICE_CLAIMED_AT).unwrap_or_default())),
    })
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
