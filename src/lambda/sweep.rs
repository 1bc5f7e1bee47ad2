//! The sweep (docs/DESIGN.md, "The sweep"): on a schedule, list the recent hours of a
//! log bucket in Bedrock's and CloudTrail's key layouts and process every object no
//! notification brought, so the detector does not depend on every object raising one
//! (replicas in an organization's central bucket, a notification removed by hand).

use super::{Handler, HandlerError, ObjectOutcome};
use crate::alert::AlertSink;
use crate::event::{skip_reason, ObjectRef, Sweep};
use crate::key::object_marker;
use crate::metrics::InvocationMetrics;
use crate::source::{ListedObject, ObjectSource};
use crate::store::CounterStore;
use chrono::{DateTime, Datelike, Timelike};
use serde::Serialize;
use tracing::info;

/// Objects one sweep processes at most; the next sweep continues.
pub const SWEEP_MAX_OBJECTS: usize = 500;
/// Where each service writes under `AWSLogs/<account>/`, and whether its key names the
/// hour (`.../YYYY/MM/DD/HH/`) or only the day (`.../YYYY/MM/DD/`).
const LAYOUTS: [(&str, bool); 2] = [
    ("BedrockModelInvocationLogs/", true),
    ("CloudTrail/", false),
];

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub prefixes_listed: u64,
    pub objects_listed: u64,
    pub already_processed: u64,
    pub processed: u64,
    pub failed: u64,
    /// Unseen objects beyond this sweep's share, left for the next one.
    pub left_for_next_sweep: u64,
}

/// The hour (or day) prefixes under `region_prefix` that cover `[since, now]`.
pub fn time_prefixes(region_prefix: &str, since: i64, now: i64, hourly: bool) -> Vec<String> {
    let step = if hourly { 3600 } else { 86_400 };
    let mut out = Vec::new();
    let mut t = since - since.rem_euclid(step);
    while t <= now {
        if let Some(d) = DateTime::from_timestamp(t, 0) {
            let day = format!(
                "{region_prefix}{:04}/{:02}/{:02}/",
                d.year(),
                d.month(),
                d.day()
            );
            out.push(if hourly {
                format!("{day}{:02}/", d.hour())
            } else {
                day
            });
        }
        t += step;
    }
    out
}

impl<S: CounterStore, A: AlertSink, O: ObjectSource> Handler<S, A, O> {
    /// Processes the objects of the last `lookback_hours` hours that have no marker.
    pub async fn sweep(
        &self,
        req: &Sweep,
        now: i64,
        metrics: &mut InvocationMetrics,
    ) -> Result<SweepReport, HandlerError> {
        let since = now - i64::from(req.lookback_hours) * 3600;
        let mut report = SweepReport::default();
        let mut found: Vec<ListedObject> = Vec::new();
        let accounts = self.source.list(&req.bucket, &req.prefix, true).await?;
        report.prefixes_listed += 1;
        for account in &accounts.prefixes {
            for (service, hourly) in LAYOUTS {
                let regions = self
                    .source
                    .list(&req.bucket, &format!("{account}{service}"), true)
                    .await?;
                report.prefixes_listed += 1;
                for region in &regions.prefixes {
                    for prefix in time_prefixes(region, since, now, hourly) {
                        let listing = self.source.list(&req.bucket, &prefix, false).await?;
                        report.prefixes_listed += 1;
                        found.extend(listing.objects);
                    }
                }
            }
        }
        report.objects_listed = found.len() as u64;
        found.retain(|o| skip_reason(&o.key, o.size).is_none() && o.etag.is_some());
        let markers: Vec<String> = found
            .iter()
            .map(|o| object_marker(&req.bucket, &o.key, o.etag.as_deref().unwrap_or_default()))
            .collect();
        let seen = self
            .detector
            .store()
            .seen(&markers)
            .await
            .map_err(|source| {
                HandlerError::Detect(crate::detector::DetectError::Store {
                    object: format!("s3://{}/{}", req.bucket, req.prefix),
                    source,
                })
            })?;
        let unseen: Vec<ObjectRef> = found
            .into_iter()
            .zip(&markers)
            .filter(|(_, m)| !seen.contains(*m))
            .map(|(o, _)| ObjectRef {
                bucket: req.bucket.clone(),
                raw_key: o.key.clone(),
                key: o.key,
                size: Some(o.size),
                etag: o.etag,
                version_id: None,
            })
            .collect();
        report.already_processed = seen.len() as u64;
        report.left_for_next_sweep = unseen.len().saturating_sub(SWEEP_MAX_OBJECTS) as u64;
        let share = &unseen[..unseen.len().min(SWEEP_MAX_OBJECTS)];
        for r in self.process_all(share, metrics).await {
            match r {
                Ok(ObjectOutcome::Processed(_)) => report.processed += 1,
                Ok(_) => {}
                // Logged by process_all; the next sweep tries again.
                Err(_) => report.failed += 1,
            }
        }
        metrics.objects_swept += report.processed;
        info!(
            bucket = %req.bucket,
            prefixes_listed = report.prefixes_listed,
            objects_listed = report.objects_listed,
            already_processed = report.already_processed,
            processed = report.processed,
            failed = report.failed,
            left_for_next_sweep = report.left_for_next_sweep,
            "sweep done"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefixes_cover_every_hour_or_day_of_the_lookback() {
        let now = 1_773_478_800 + 30 * 60; // 2026-03-14T09:30:00Z
        let r = "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/";
        assert_eq!(
            time_prefixes(r, now - 2 * 3600, now, true),
            vec![
                format!("{r}2026/03/14/07/"),
                format!("{r}2026/03/14/08/"),
                format!("{r}2026/03/14/09/")
            ]
        );
        let r = "AWSLogs/1/CloudTrail/us-east-1/";
        assert_eq!(
            time_prefixes(r, now - 10 * 3600, now, false),
            vec![format!("{r}2026/03/13/"), format!("{r}2026/03/14/")]
        );
    }
}
