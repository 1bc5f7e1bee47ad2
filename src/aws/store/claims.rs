//! The alert state of each key with its conditional claim, and each account's hourly
//! alert allowance (docs/DESIGN.md, "The alert claim", "Alert ceilings").

use super::*;

pub(super) const CLAIM_UPDATE: &str =
    "SET #user = :user, #model = :model, #account = :account, #exp = :exp, \
     #pobj = :obj, #patt = :att, #pend = :end, #cat = :now";

/// [`decide_claim`](crate::store::decide_claim): not suppressed, and no fresh claim of another attempt.
pub(super) const CLAIM_CONDITION: &str =
    "(attribute_not_exists(#last) OR (#last <> :end AND (#last <= :lo OR #last >= :hi))) \
     AND (attribute_not_exists(#earlier) OR (#earlier <> :end AND (#earlier <= :lo OR #earlier >= :hi))) \
     AND (attribute_not_exists(#patt) OR #patt = :att OR #cat <= :stale)";

pub(super) const HOLDING: &str = "#patt = :att";

pub(super) const DELIVERY_UPDATE: &str = "ADD #delivered :sink";

pub(super) const RELEASE_UPDATE: &str = "REMOVE #pobj, #patt, #pend, #cat";

/// Marks the alert sent, in one of three updates ([`AlertState::mark_sent`](crate::store::AlertState::mark_sent)),
/// each conditioned on this attempt holding the claim. A later window than the last
/// sent: it becomes the last, the last the earlier one.
pub(super) const MARK_LATER: (&str, &str) = (
    "SET #earlier = if_not_exists(#last, :end), #last = :end \
     REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att AND (attribute_not_exists(#last) OR #last < :end)",
);

/// An older window than the last sent (a late log): remembered as the earlier one.
pub(super) const MARK_OLDER: (&str, &str) = (
    "SET #earlier = :end REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att AND #last > :end",
);

/// The last sent window again: the claim is cleared.
pub(super) const MARK_SAME: (&str, &str) = (
    "REMOVE #pobj, #patt, #pend, #cat, #delivered",
    "#patt = :att",
);

pub(super) fn alert_pk(key: &DenialKey) -> String {
    format!("A#{}", key.digest())
}

/// The alert allowance of one account: its hours are the sort keys.
pub(super) fn allowance_pk(account: &str) -> String {
    format!(
        "H#{}",
        &crate::key::digest_parts(&[b"alert-allowance", account.as_bytes()])[..32]
    )
}

/// The alert state as stored in its item.
pub(super) fn alert_state(item: &Item) -> AlertState {
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

pub(super) fn delivery(sink: &str, window_end: i64) -> String {
    format!("{sink}@{window_end}")
}

pub(super) fn parse_delivery(d: &str) -> Option<(String, i64)> {
    let (sink, end) = d.rsplit_once('@')?;
    Some((sink.to_string(), end.parse().ok()?))
}

/// Longest id kept in the alert state's readable attributes. The key is the digest of
/// the full ids; these copies are for people reading the table.
pub const MAX_STORED_ID_BYTES: usize = 2048;

pub(super) fn readable(id: &str) -> &str {
    crate::text::prefix_bytes(id, MAX_STORED_ID_BYTES)
}

/// Names and values the alert state carries: the three ids (readable next to the
/// digest in its key) and the expiry.
pub(super) fn with_ids(
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
pub(super) fn pending_names(b: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
    b.expression_attribute_names("#pobj", attr::PENDING_OBJECT)
        .expression_attribute_names("#pend", attr::PENDING_END)
        .expression_attribute_names("#cat", attr::CLAIMED_AT)
}

/// The claim's attempt, under the condition "this attempt holds the claim".
pub(super) fn holding(b: UpdateItemFluentBuilder, claim: &AlertClaim) -> UpdateItemFluentBuilder {
    b.condition_expression(HOLDING)
        .expression_attribute_names("#patt", attr::PENDING_ATTEMPT)
        .expression_attribute_values(":att", s(&claim.attempt))
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
