//! The rules that count distinct values, in the detector: add an object's sets to the
//! store, read the windows it touched, and the alert they raise, delivered like the
//! seed rule's within the same ceilings (docs/DESIGN.md, "Distinct counting").

use super::*;
use crate::aggregate::DistinctDenials;
use crate::rule::distinct::{decide_distinct, DistinctDecision};

impl<S: DetectorStore> Detector<S> {
    /// Adds one group's sets and evaluates its windows: the alert it would raise, if
    /// any, for [`Detector::record`] to deliver within the ceilings.
    pub(super) async fn record_distinct(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        group: &DistinctDenials,
    ) -> Result<(Counts, Option<Pending>), DetectError> {
        let store_err = Self::store_error(object);
        let rule = crate::rule::rule(key.rule);
        let settings = self.config.rule_settings(key.rule);
        let (spec, suppress_seconds) = (settings.spec, settings.suppress_seconds);
        let counted_at = (self.clock)();
        let expires_at = counted_at
            + spec.bucket_seconds() * spec.window_buckets()
            + suppress_seconds
            + LATE_LOG_MARGIN_SECONDS;
        let mut report = Counts::default();
        for (&bucket, members) in &group.members {
            self.store
                .add_members(key, bucket, members, expires_at)
                .await
                .map_err(&store_err)?;
            report.distinct_sets_added += 1;
        }
        let touched = group.members.keys().copied().collect();
        let Some((first, last)) = spec.query_range(&touched) else {
            return Ok((report, None));
        };
        let stored = self
            .store
            .members(key, first, last)
            .await
            .map_err(&store_err)?;
        let exception = self.config.exceptions.rule_for(key, counted_at);
        let threshold = settings.threshold;
        let (end, union, threshold) =
            match decide_distinct(rule, &spec, &stored, &touched, exception, threshold) {
                DistinctDecision::Quiet => return Ok((report, None)),
                DistinctDecision::Excepted { calls } => {
                    let reason = exception.map_or("", |r| r.reason.as_str());
                    info!(key = %key, calls, reason = %reason, "alert excepted");
                    report.alerts_excepted += 1;
                    return Ok((report, None));
                }
                DistinctDecision::Alert {
                    end,
                    union,
                    threshold,
                } => (end, union, threshold),
            };
        let calls_per_bucket = stored
            .iter()
            .map(|(b, m)| (*b, m.calls.len() as u64))
            .collect();
        let alert = Alert::build_distinct(
            key,
            end,
            &union,
            &calls_per_bucket,
            &spec,
            threshold,
            object,
            &group.denials,
        );
        let window_end = spec.window_bounds(end).1;
        self.found(object, key, alert, window_end, suppress_seconds, report)
            .await
    }
}
