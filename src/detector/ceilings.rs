//! The alert ceilings (docs/DESIGN.md, "Alert ceilings"): what one object and one
//! account may send one by one, and the one claimed summary of the rest.

use super::*;

/// Ceiling summaries one object sends at most (one per account it names).
pub const MAX_CEILING_SUMMARIES: usize = 10;
/// The model id of a ceiling summary's claim key, whose user id is empty.
const CEILING_CLAIM_MODEL: &str = "alert-ceiling";

/// An alert found for one key of an object, not yet claimed.
pub(super) struct Pending {
    pub(super) key: DenialKey,
    pub(super) alert: Alert,
    pub(super) window_end: i64,
    pub(super) suppress_seconds: i64,
}

impl Pending {
    /// The alert held back: its account and what a summary names of it.
    pub(super) fn held(self) -> (String, HeldKey) {
        (
            self.key.account_id,
            HeldKey {
                user_id: self.key.user_id,
                model_id: self.key.model_id,
                total_denials: self.alert.total_denials,
            },
        )
    }
}

impl<S: DetectorStore> Detector<S> {
    /// Tells the team of the alerts the ceilings held back, one summary per account
    /// (at most [`MAX_CEILING_SUMMARIES`] per object) and per hour: claimed like an
    /// alert, so a redelivered object or a concurrent one sends it once, and given
    /// back when a sink fails so the retry sends it again.
    pub(super) async fn summarize(
        &self,
        object: &ObjectId,
        attempt: &str,
        held: Vec<(String, HeldKey)>,
        over_hour: bool,
    ) -> Result<Counts, DetectError> {
        let store_err = Self::store_error(object);
        let mut report = Counts::default();
        let mut by_account: std::collections::BTreeMap<String, Vec<HeldKey>> = Default::default();
        for (account, key) in held {
            by_account.entry(account).or_default().push(key);
        }
        let mut accounts: Vec<(String, Vec<HeldKey>)> = by_account.into_iter().collect();
        accounts.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        accounts.truncate(MAX_CEILING_SUMMARIES);
        let now = (self.clock)();
        let hour_start = now - now.rem_euclid(3600);
        for (account, keys) in accounts {
            let notice = Notice::Ceiling(CeilingNotice::new(
                &account,
                keys,
                &object.uri,
                over_hour.then_some(hour_start),
                (
                    self.config.max_alerts_per_object,
                    self.config.max_alerts_per_account_hour,
                ),
            ));
            // No log id is empty: this key is no principal's.
            let key = DenialKey::new("", CEILING_CLAIM_MODEL, &account);
            let claim = AlertClaim {
                object_token: object.token.clone(),
                attempt: attempt.to_string(),
                window_end: hour_start + 3600,
                suppress_seconds: 0,
                lease_seconds: CLAIM_LEASE_SECONDS,
                now,
                expires_at: now + 2 * 3600,
            };
            let claimed = match self.store.claim_alert(&key, &claim).await {
                Ok(ClaimOutcome::Claimed { .. }) => true,
                Ok(_) => false,
                Err(e) => {
                    self.release(&key, &claim).await;
                    return Err(store_err(e));
                }
            };
            if !claimed {
                continue; // Told this hour already, or being told.
            }
            if let Err(source) = self.notify(&notice).await {
                self.release(&key, &claim).await;
                return Err(DetectError::Deliver {
                    object: object.uri.clone(),
                    source,
                });
            }
            self.store
                .mark_alert_sent(&key, &claim)
                .await
                .map_err(&store_err)?;
            warn!(object = %object.uri, account = %account, "alerts over the ceilings summed up in one notice");
            report.ceiling_notices += 1;
        }
        Ok(report)
    }
}
