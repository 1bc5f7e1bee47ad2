//! The sweep (docs/DESIGN.md, "The sweep"): on a schedule, list the recent hours of a
//! log bucket in Bedrock's and CloudTrail's key layouts and process every object no
//! notification brought, so the detector does not depend on every object raising one
//! (replicas in an organization's central bucket, a notification removed by hand).
//!
//! Accounts are listed a few at once while the objects already found are processed.
//! Every account folder gets a share of the sweep: at most
//! [`SWEEP_MAX_OBJECTS_PER_ACCOUNT`] objects and [`MAX_REGION_FOLDERS`] Region folders
//! per service, listed a few at once; an account with more keeps the rest for the next
//! sweep while the sweep moves on to the others. A sweep that runs out of time or of
//! its objects records where it stopped, and the next one continues there. An object
//! the sweep fails to process [`SWEEP_MAX_FAILURES`] times is given up (and counted),
//! so it cannot take every later sweep's time.

use super::{Handler, HandlerError, ObjectOutcome};
use crate::event::{skip_reason, ObjectRef, Sweep};
use crate::identity::{attempt_id, object_marker};
use crate::log_keys::{is_account_id, is_organization_id};
use crate::objects::{KeyRange, ListedObject, ObjectSource, SourceError};
use crate::silence::{due, QuietAccounts, SourceNotice, SourceStatus, WATCHED_FOR_SECONDS};
use crate::stats::Counts;
use crate::store::{FunctionStore, Marker, StoreError};
use chrono::{DateTime, Datelike, Timelike};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use std::time::Instant;
use tracing::{info, warn};

/// Objects one sweep processes at most; the next sweep continues.
pub const SWEEP_MAX_OBJECTS: usize = 500;
/// Objects of one account folder one sweep processes at most: one account's flood
/// cannot take the others' share; the rest waits for the next sweep.
pub const SWEEP_MAX_OBJECTS_PER_ACCOUNT: usize = 50;
/// Region folders of one service below an account that the sweep lists at most (AWS
/// has fewer than 40 Regions): made-up folders cannot grow an account's listing.
pub const MAX_REGION_FOLDERS: usize = 64;
/// Account folders listed at once.
pub const LIST_CONCURRENCY: usize = 8;
/// Region folders of one account listed at once.
pub const REGION_LIST_CONCURRENCY: usize = 4;
/// The sweep gives up an object it failed to process this many times.
pub const SWEEP_MAX_FAILURES: u32 = 3;
/// Notices about log sources one sweep sends at most.
pub const MAX_NOTICES_PER_SWEEP: u64 = 20;
/// How long a process remembers an account's Region folders.
pub const REGIONS_KEPT: std::time::Duration = std::time::Duration::from_secs(3600);
/// Account folders whose Regions a process remembers at most.
const REGION_FOLDERS_KEPT: usize = 20_000;
/// How long the sweep's cursor and failure counts are kept.
const BOOKKEEPING_SECONDS: i64 = 3 * 86_400;
/// Where each service writes below an account, and whether its key names the hour
/// (`.../YYYY/MM/DD/HH/`) or only the day (`.../YYYY/MM/DD/`).
const LAYOUTS: [(&str, bool); 2] = [
    ("BedrockModelInvocationLogs/", true),
    ("CloudTrail/", false),
];

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// List requests made (every page counts).
    pub prefixes_listed: u64,
    /// Account folders found (organization trails' included).
    pub accounts: u64,
    /// Account folders whose recent objects were all handled by this sweep.
    pub accounts_swept: u64,
    pub objects_listed: u64,
    pub already_processed: u64,
    pub processed: u64,
    pub failed: u64,
    /// Objects skipped because the sweep failed to process them too often.
    pub given_up: u64,
    /// Unseen objects beyond this sweep's share or time, left for the next one.
    pub left_for_next_sweep: u64,
    /// The account folder the next sweep starts from, when this one stopped early.
    pub continues_at: Option<String>,
    /// Accounts whose log delivery is watched (not quiet, seen within the week).
    pub sources_watched: u64,
    /// Watched accounts known silent after this sweep.
    pub sources_silent: u64,
    /// Notices sent: accounts gone silent, or delivering again.
    pub source_notices: u64,
    /// Accounts with more objects in the lookback than one sweep lists of an account,
    /// or more Region folders than [`MAX_REGION_FOLDERS`]: only the first were checked.
    pub listings_cut: u64,
    /// Accounts with more unseen objects than their share of this sweep
    /// ([`SWEEP_MAX_OBJECTS_PER_ACCOUNT`]): the rest is left for the next.
    pub accounts_over_share: u64,
    /// Notices due but left for a later sweep: one sweep sends at most
    /// [`MAX_NOTICES_PER_SWEEP`].
    pub notices_left: u64,
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

/// A failure of the sweep of `req`'s bucket and prefix, at `step`.
fn sweep_error(
    req: &Sweep,
    step: &'static str,
    source: impl Into<crate::errors::BoxError>,
) -> HandlerError {
    HandlerError::Sweep {
        bucket: req.bucket.clone(),
        prefix: req.prefix.clone(),
        step,
        source: source.into(),
    }
}

/// What the sweep of one process remembers between its invocations: each account
/// folder's Region folders, for [`REGIONS_KEPT`], for at most [`REGION_FOLDERS_KEPT`]
/// folders.
/// An account folder's Region folders: when they were listed, each with whether its
/// keys name the hour, and whether folders were left out.
type KeptRegions = (Instant, Vec<(String, bool)>, bool);

#[derive(Debug, Default)]
pub struct SweepCache {
    region_folders: std::sync::Mutex<std::collections::HashMap<String, KeptRegions>>,
}

impl SweepCache {
    /// The Region folders of `folder` listed within [`REGIONS_KEPT`], if any.
    fn regions(&self, folder: &str) -> Option<(Vec<(String, bool)>, bool)> {
        let kept = crate::errors::lock(&self.region_folders);
        let (at, regions, cut) = kept.get(folder)?;
        (at.elapsed() < REGIONS_KEPT).then(|| (regions.clone(), *cut))
    }

    fn keep_regions(&self, folder: String, regions: Vec<(String, bool)>, cut: bool) {
        let mut kept = crate::errors::lock(&self.region_folders);
        if kept.len() >= REGION_FOLDERS_KEPT {
            kept.clear();
        }
        kept.insert(folder, (Instant::now(), regions, cut));
    }
}

/// What one sweep did with an account folder's unseen objects.
enum Swept {
    /// Every one was handled.
    All,
    /// Its share was handled; the rest waits for the next sweep.
    OverShare,
    /// The sweep's budget ran out: the next sweep starts at this account.
    OutOfBudget,
}

/// What listing one account folder found.
struct AccountListing {
    folder: String,
    objects: Vec<ListedObject>,
    requests: u64,
    /// More objects were in the lookback than one sweep lists of an account.
    cut: bool,
}

impl<S: FunctionStore, O: ObjectSource> Handler<S, O> {
    /// Processes the objects of the last `lookback_hours` hours that have no marker,
    /// starting at the account folder where the last sweep stopped; stops early at
    /// `cutoff` or after [`SWEEP_MAX_OBJECTS`] objects.
    pub async fn sweep(
        &self,
        req: &Sweep,
        now: i64,
        metrics: &mut Counts,
        cutoff: Option<Instant>,
    ) -> Result<SweepReport, HandlerError> {
        let store = self.detector.store();
        let name = format!("{}/{}", req.bucket, req.prefix);
        let store_error = |source: StoreError| sweep_error(req, "its bookkeeping", source);
        let since = now - i64::from(req.lookback_hours) * 3600;
        let mut report = SweepReport::default();
        let mut folders = self.account_folders(req, &mut report).await?;
        report.accounts = folders.len() as u64;
        if let Some(cursor) = store.sweep_cursor(&name).await.map_err(store_error)? {
            let at = folders.partition_point(|f| *f < cursor);
            folders.rotate_left(at);
        }

        // Listing runs ahead, a few folders at once, while found objects are processed.
        let (found, mut listings) = tokio::sync::mpsc::channel(LIST_CONCURRENCY);
        let list = async move {
            let mut listed = stream::iter(folders)
                .map(|folder| self.list_account(req, folder, since, now))
                .buffered(LIST_CONCURRENCY);
            while let Some(listing) = listed.next().await {
                // The receiver is gone when the sweep stopped early: stop listing.
                if found.send(listing).await.is_err() {
                    break;
                }
            }
        };
        let process = async {
            let mut budget = SWEEP_MAX_OBJECTS;
            let mut stopped_at = None;
            while let Some(listing) = listings.recv().await {
                let listing = listing?;
                report.prefixes_listed += listing.requests;
                report.objects_listed += listing.objects.len() as u64;
                report.listings_cut += u64::from(listing.cut);
                let out_of_time = cutoff.is_some_and(|c| Instant::now() >= c);
                if budget == 0 || out_of_time {
                    stopped_at = Some(listing.folder);
                    break;
                }
                let done = self
                    .sweep_objects(
                        req,
                        listing.objects,
                        &mut budget,
                        cutoff,
                        &mut report,
                        metrics,
                    )
                    .await
                    .map_err(store_error)?;
                match done {
                    Swept::All => report.accounts_swept += 1,
                    Swept::OverShare => {}
                    Swept::OutOfBudget => {
                        stopped_at = Some(listing.folder);
                        break;
                    }
                }
            }
            listings.close();
            Ok::<_, HandlerError>(stopped_at)
        };
        let ((), stopped_at) = futures_util::join!(list, process);
        let stopped_at = stopped_at?;
        let expires_at = now + BOOKKEEPING_SECONDS;
        store
            .set_sweep_cursor(&name, stopped_at.as_deref(), expires_at)
            .await
            .map_err(store_error)?;
        report.continues_at = stopped_at;
        metrics.objects_swept += report.processed;
        metrics.objects_given_up += report.given_up;
        metrics.sweep_listings_cut += report.listings_cut;
        if req.silent_after_hours > 0 {
            self.watch_sources(req, now, &mut report).await?;
            metrics.log_sources_silent += report.sources_silent;
            metrics.log_source_notices += report.source_notices;
        }
        info!(
            bucket = %req.bucket,
            prefixes_listed = report.prefixes_listed,
            accounts = report.accounts,
            accounts_swept = report.accounts_swept,
            objects_listed = report.objects_listed,
            already_processed = report.already_processed,
            processed = report.processed,
            failed = report.failed,
            given_up = report.given_up,
            left_for_next_sweep = report.left_for_next_sweep,
            continues_at = report.continues_at.as_deref().unwrap_or_default(),
            sources_watched = report.sources_watched,
            sources_silent = report.sources_silent,
            source_notices = report.source_notices,
            listings_cut = report.listings_cut,
            accounts_over_share = report.accounts_over_share,
            notices_left = report.notices_left,
            "sweep done"
        );
        Ok(report)
    }

    /// The account folders below the sweep's prefix, sorted: `<prefix><account>/`, and
    /// an organization trail's `<prefix><org-id>/<account>/`.
    async fn account_folders(
        &self,
        req: &Sweep,
        report: &mut SweepReport,
    ) -> Result<Vec<String>, HandlerError> {
        let top = self
            .source
            .list(&req.bucket, &req.prefix, true, KeyRange::default())
            .await?;
        report.prefixes_listed += 1;
        let name = |folder: &str| {
            folder
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let organizations: Vec<&String> = top
            .prefixes
            .iter()
            .filter(|f| is_organization_id(&name(f)))
            .collect();
        let mut folders: Vec<String> = top
            .prefixes
            .iter()
            .filter(|f| is_account_id(&name(f)))
            .cloned()
            .collect();
        let below: Vec<Result<_, SourceError>> = stream::iter(organizations)
            .map(|org| {
                self.source
                    .list(&req.bucket, org, true, KeyRange::default())
            })
            .buffered(LIST_CONCURRENCY)
            .collect()
            .await;
        for listing in below {
            report.prefixes_listed += 1;
            folders.extend(
                listing?
                    .prefixes
                    .into_iter()
                    .filter(|f| is_account_id(&name(f))),
            );
        }
        folders.sort();
        Ok(folders)
    }

    /// The objects of `[since, now]` in one account folder: its services' folders,
    /// their Regions, and in each Region the keys after the first hour (or day) of the
    /// period, in one listing (keys sort by time within a Region).
    async fn list_account(
        &self,
        req: &Sweep,
        folder: String,
        since: i64,
        now: i64,
    ) -> Result<AccountListing, HandlerError> {
        let bucket = &req.bucket;
        let (regions, mut requests, mut cut) = self.region_folders(bucket, &folder).await?;
        let max = req.max_listed_per_account;
        let listed = std::sync::atomic::AtomicUsize::new(0);
        let mut listings = stream::iter(regions)
            .map(|(region, hourly)| {
                let listed = &listed;
                async move {
                    let periods = time_prefixes(&region, since, now, hourly);
                    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
                        return Ok(None);
                    };
                    // Keys sort by time within a Region: everything after `.../HH` of
                    // the first hour and before the end of the last (`/` sorts before
                    // `0`), so keys a writer dates in the future are not listed.
                    let end = format!("{}0", last.trim_end_matches('/'));
                    let left =
                        max.saturating_sub(listed.load(std::sync::atomic::Ordering::Relaxed));
                    let range = KeyRange {
                        start_after: Some(first.trim_end_matches('/')),
                        end_before: Some(&end),
                        max_objects: Some(left),
                    };
                    self.source
                        .list(bucket, &region, false, range)
                        .await
                        .map(Some)
                }
            })
            .buffered(REGION_LIST_CONCURRENCY);
        let mut objects = Vec::new();
        while let Some(listing) = listings.next().await {
            let Some(listing) = listing? else { continue };
            requests += 1;
            cut |= listing.cut;
            objects.extend(listing.objects);
            listed.store(objects.len(), std::sync::atomic::Ordering::Relaxed);
        }
        if objects.len() > max {
            objects.truncate(max);
            cut = true;
        }
        if cut {
            warn!(
                bucket = %bucket,
                folder = %folder,
                max = req.max_listed_per_account,
                "more objects in the lookback than one sweep lists of an account: only the first were checked"
            );
        }
        Ok(AccountListing {
            folder,
            objects,
            requests,
            cut,
        })
    }

    /// The Region folders of each service below an account folder (at most
    /// [`MAX_REGION_FOLDERS`] each, named as Regions are), with whether its keys name
    /// the hour; the list requests it took; and whether folders were left out.
    /// Remembered by this process for [`REGIONS_KEPT`]: an account's Regions rarely
    /// change, and a new one's objects are found within the lookback all the same.
    async fn region_folders(
        &self,
        bucket: &str,
        folder: &str,
    ) -> Result<(Vec<(String, bool)>, u64, bool), HandlerError> {
        let key = format!("{bucket}/{folder}");
        if let Some((regions, cut)) = self.sweep_cache.regions(&key) {
            return Ok((regions, 0, cut));
        }
        let mut requests = 1;
        // Only the services' folders matter: a few, whatever else the folder holds.
        let services = self
            .source
            .list(
                bucket,
                folder,
                true,
                KeyRange {
                    max_objects: Some(1000),
                    ..KeyRange::default()
                },
            )
            .await?;
        let mut regions = Vec::new();
        let mut cut = false;
        for (service, hourly) in LAYOUTS {
            let service_folder = format!("{folder}{service}");
            if services.prefixes.contains(&service_folder) {
                let range = KeyRange {
                    max_objects: Some(MAX_REGION_FOLDERS),
                    ..KeyRange::default()
                };
                let listed = self
                    .source
                    .list(bucket, &service_folder, true, range)
                    .await?;
                requests += 1;
                cut |= listed.cut;
                regions.extend(
                    listed
                        .prefixes
                        .into_iter()
                        .filter(|r| {
                            let name = r[service_folder.len()..].trim_end_matches('/');
                            crate::log_keys::is_region_name(name)
                        })
                        .map(|r| (r, hourly)),
                );
            }
        }
        if cut {
            warn!(bucket = %bucket, folder = %folder, max = MAX_REGION_FOLDERS, "more Region folders below a service than the sweep lists: only the first were checked");
        }
        self.sweep_cache.keep_regions(key, regions.clone(), cut);
        Ok((regions, requests, cut))
    }

    /// Processes the unseen objects of one account folder within `budget` and the
    /// account's share; says whether every one was handled (processed, known, given up
    /// or failed).
    async fn sweep_objects(
        &self,
        req: &Sweep,
        mut found: Vec<ListedObject>,
        budget: &mut usize,
        cutoff: Option<Instant>,
        report: &mut SweepReport,
        metrics: &mut Counts,
    ) -> Result<Swept, StoreError> {
        let store = self.detector.store();
        found.retain(|o| skip_reason(&o.key, o.size).is_none() && o.etag.is_some());
        let markers: Vec<String> = found
            .iter()
            .map(|o| object_marker(&req.bucket, &o.key, o.etag.as_deref().unwrap_or_default()))
            .collect();
        let known = store.markers(&markers).await?;
        let mut unseen = Vec::new();
        for (o, marker) in found.into_iter().zip(markers) {
            match known.get(&marker) {
                Some(Marker::Processed) => report.already_processed += 1,
                Some(Marker::Failed(n)) if *n >= SWEEP_MAX_FAILURES => report.given_up += 1,
                _ => unseen.push((
                    ObjectRef {
                        bucket: req.bucket.clone(),
                        raw_key: o.key.clone(),
                        key: o.key,
                        size: Some(o.size),
                        etag: o.etag,
                        version_id: None,
                    },
                    marker,
                )),
            }
        }
        let share = unseen.len().min(*budget).min(SWEEP_MAX_OBJECTS_PER_ACCOUNT);
        report.left_for_next_sweep += (unseen.len() - share) as u64;
        let over_share = unseen.len() > SWEEP_MAX_OBJECTS_PER_ACCOUNT
            && *budget >= SWEEP_MAX_OBJECTS_PER_ACCOUNT;
        report.accounts_over_share += u64::from(over_share);
        *budget -= share;
        let objects: Vec<ObjectRef> = unseen[..share].iter().map(|(o, _)| o.clone()).collect();
        let results = self.process_all(&objects, metrics, cutoff).await;
        let expires_at = chrono::Utc::now().timestamp() + BOOKKEEPING_SECONDS;
        for (r, (object, marker)) in results.iter().zip(&unseen) {
            match r {
                Ok(ObjectOutcome::Processed(_)) => report.processed += 1,
                Ok(_) => {}
                // Logged by process_all; the next sweep tries again, a few times.
                Err(_) => {
                    report.failed += 1;
                    let failures = store.mark_failed(marker, expires_at).await?;
                    if failures >= SWEEP_MAX_FAILURES {
                        warn!(bucket = %object.bucket, key = %object.key, failures, "the sweep failed to process this object too often and gives it up; replay it once the cause is fixed (README, Runbook)");
                    }
                }
            }
        }
        // An account over its share is done for this sweep; one the sweep's budget
        // cut is where the next sweep starts.
        Ok(if share == unseen.len() {
            Swept::All
        } else if over_share {
            Swept::OverShare
        } else {
            Swept::OutOfBudget
        })
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
        let store_error = |source: StoreError| sweep_error(req, "reading the log sources", source);
        let mut failed = None;
        let sources = store.log_sources().await.map_err(store_error)?;
        if sources.len() >= crate::store::MAX_LOG_SOURCES {
            warn!(
                bucket = %req.bucket,
                max = crate::store::MAX_LOG_SOURCES,
                "more log sources (account and Region) have delivered than the sweep watches; only the first are watched"
            );
        }
        for source in sources {
            if quiet.contains(&source.account) || source.last_seen < now - WATCHED_FOR_SECONDS {
                continue;
            }
            report.sources_watched += 1;
            let Some(status) = due(&source, now, expect) else {
                report.sources_silent += u64::from(source.silent_since.is_some());
                continue;
            };
            // Fake account folders must not turn into a flood of notices: the rest
            // are told by the next sweeps.
            if report.source_notices >= MAX_NOTICES_PER_SWEEP {
                report.notices_left += 1;
                continue;
            }
            let attempt = attempt_id();
            if !store
                .claim_notice(&source, status, &attempt, now)
                .await
                .map_err(store_error)?
            {
                continue; // Another sweep is telling, or the account changed meanwhile.
            }
            let notice = SourceNotice::new(status, &source, now, expect, &req.bucket);
            let delivered = self
                .detector
                .notify(&crate::alert::Notice::Source(notice.clone()))
                .await;
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
        if report.notices_left > 0 {
            warn!(
                bucket = %req.bucket,
                told = report.source_notices,
                left = report.notices_left,
                "more log sources to tell of than one sweep sends; the next sweeps send the rest"
            );
        }
        match failed {
            None => Ok(()),
            Some(source) => Err(sweep_error(req, "telling of a log source", source)),
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
