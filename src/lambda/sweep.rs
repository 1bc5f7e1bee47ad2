//! The sweep (docs/DESIGN.md, "The sweep"): on a schedule, list the recent hours of a
//! log bucket in Bedrock's and CloudTrail's key layouts and process every object no
//! notification brought, so the detector does not depend on every object raising one
//! (replicas in an organization's central bucket, a notification removed by hand).

use super::{Handler, HandlerError, ObjectOutcome};
use crate::alert::AlertSink;
use crate::detector::DetectError;
use crate::event::{skip_reason, ObjectRef, Sweep};
use crate::key::attempt_id;
use crate::key::object_marker;
use crate::metrics::InvocationMetrics;
use crate::source::{ListedObject, ObjectSource};
use crate::sources::{due, QuietAccounts, SourceNotice, SourceStatus, WATCHED_FOR_SECONDS};
use crate::store::CounterStore;
use chrono::{DateTime, Datelike, Timelike};
use serde::Serialize;
use tracing::{info, warn};

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
    /// Accounts whose log delivery is watched (not quiet, seen within the week).
    pub sources_watched: u64,
    /// Watched accounts known silent after this sweep.
    pub sources_silent: u64,
    /// Notices sent: accounts gone silent, or delivering again.
    pub source_notices: u64,
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
                HandlerError::Detect(DetectError::Store {
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
        if req.silent_after_hours > 0 {
            self.watch_sources(req, now, &mut report).await?;
            metrics.log_sources_silent += report.sources_silent;
            metrics.log_source_notices += report.source_notices;
        }
        info!(
            bucket = %req.bucket,
            prefixes_listed = report.prefixes_listed,
            objects_listed = report.objects_listed,
            already_processed = report.already_processed,
            processed = report.processed,
            failed = report.failed,
            left_for_next_sweep = report.left_for_next_sweep,
            sources_watched = report.sources_watched,
            sources_silent = report.sources_silent,
            source_notices = report.source_notices,
            "sweep done"
        );
        Ok(report)
    }

    /// Tells the team of every watched account that went silent, or delivers again
    /// (docs/DESIGN.md, "Log sources"): one notice each, claimed in the store so that
    /// concurrent sweeps send it once, and given back when a sink fails so the next
    /// sweep sends it again.
    async fn watch_sources(
        &self,
        req: &Sweep,
        now: i64,
        report: &mut SweepReport,
    ) -> Result<(), HandlerError> {
        let store = self.detector.store();
        let expect = i64::from(req.silent_after_hours) * 3600;
        let quiet = QuietAccounts::parse(&req.quiet_accounts);
        let target = format!("log sources of s3://{}", req.bucket);
        let store_error = |source| {
            HandlerError::Detect(DetectError::Store {
                object: target.clone(),
                source,
            })
        };
        let mut failed = None;
        for source in store.log_sources().await.map_err(store_error)? {
            if quiet.contains(&source.account) || source.last_seen < now - WATCHED_FOR_SECONDS {
                continue;
            }
            report.sources_watched += 1;
            let Some(status) = due(&source, now, expect) else {
                report.sources_silent += u64::from(source.silent_since.is_some());
                continue;
            };
            let attempt = attempt_id();
            if !store
                .claim_notice(&source, status, &attempt, now)
                .await
                .map_err(store_error)?
            {
                continue; // Another sweep is telling, or the account changed meanwhile.
            }
            let notice = SourceNotice::new(status, &source, now, expect, &req.bucket);
            let delivered = self.detector.notify(&notice).await;
            store
                .finish_notice(&source, status, &attempt, delivered.is_ok())
                .await
                .map_err(store_error)?;
            match delivered {
                Ok(()) => {
                    report.source_notices += 1;
                    report.sources_silent += u64::from(status == SourceStatus::Silent);
                    warn!(
                        account = %source.account,
                        status = ?status,
                        last_seen = %notice.last_seen,
                        hours_since_last_seen = notice.hours_since_last_seen,
                        "log source notice sent"
                    );
                }
                Err(e) => {
                    report.sources_silent += u64::from(source.silent_since.is_some());
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            None => Ok(()),
            Some(source) => Err(HandlerError::Detect(DetectError::Deliver {
                object: target,
                source,
            })),
        }
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
