//! The Lambda function: settings from the environment, the deployed handler built
//! once from `crate::aws`, the runtime entry, and the [`Handler`] that turns one
//! invocation event into processed objects; the scheduled [`sweep`] and the
//! invocation's [`metrics`].
//!
//! Failure policy (docs/DESIGN.md, "Failure policy"): bad input (corrupt, truncated,
//! missing or housekeeping objects, malformed payloads) is logged, counted and
//! acknowledged; dependency failures (S3, DynamoDB, the alert sinks) fail the
//! invocation, or for SQS only the messages they hit.

pub mod metrics;
mod settings;
mod sqs;
pub mod sweep;

pub use settings::{Attribution, LambdaSettings, VARIABLES};

use crate::aws::s3::S3Source;
use crate::aws::store::DynamoStore;
use crate::aws::{dynamo_store, s3_client, sdk_config, sinks, SinkTargets};
use crate::detector::{DetectError, Detector, ObjectReport};
use crate::errors::error_chain;
use crate::event::{parse_invocation, Invocation, LogPayload, ObjectRef};
use crate::identity::{object_marker, ObjectId};
use crate::objects::{ObjectSource, SourceError};
use crate::pipeline::{process, PipelineError, Processed};
use crate::stats::Counts;
use crate::store::FunctionStore;
use aws_lambda_events::sqs::SqsBatchResponse;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{error, info, warn};

/// Objects of one invocation processed at once.
pub const OBJECT_CONCURRENCY: usize = 4;
/// SQS messages of one batch processed at once (each with its objects).
pub const MESSAGE_CONCURRENCY: usize = 4;
/// How long an object's marker is kept: longer than any sweep looks back.
pub const MARKER_SECONDS: i64 = 3 * 86_400;

/// A failure that makes Lambda retry the event (or the SQS message).
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("reading {object} stopped unexpectedly: {message}")]
    Reader { object: String, message: String },
    #[error("{failed} of {total} objects failed; first: {}", error_chain(first.as_ref()))]
    Objects {
        failed: usize,
        total: usize,
        first: Box<HandlerError>,
    },
    /// The sweep's own bookkeeping (markers, cursor, log sources) or a notice failed.
    #[error("the sweep of s3://{bucket}/{prefix}: {step} failed")]
    Sweep {
        bucket: String,
        prefix: String,
        step: &'static str,
        #[source]
        source: crate::errors::BoxError,
    },
}

impl From<PipelineError> for HandlerError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Source(e) => HandlerError::Source(e),
            PipelineError::Reader { object, message } => HandlerError::Reader { object, message },
            PipelineError::Detect(e) => HandlerError::Detect(e),
        }
    }
}

impl HandlerError {
    fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Source(_) => "S3Error",
            HandlerError::Detect(e) => match e.first() {
                DetectError::Read { .. } => "S3Error",
                DetectError::Store { .. } => "DynamoDBError",
                DetectError::Deliver { .. } => "AlertDeliveryError",
                DetectError::AlertBusy { .. } => "AlertBusy",
                DetectError::Keys { .. } => "KeysFailed",
            },
            HandlerError::Reader { .. } => "ReaderError",
            HandlerError::Objects { .. } => "ObjectsFailed",
            HandlerError::Sweep { .. } => "SweepFailed",
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type().into(),
            error_message: error_chain(&e),
        }
    }
}

/// The function's answer. SQS batches get exactly the typed batch response; the
/// others a small summary.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Response {
    Objects { objects: usize },
    LogEvents { log_events: usize },
    Ignored { ignored: String },
    Malformed { malformed: String },
    Sweep { sweep: sweep::SweepReport },
    Sqs(SqsBatchResponse),
}

/// What became of one object.
#[derive(Debug)]
pub enum ObjectOutcome {
    Processed(Box<ObjectReport>),
    /// Housekeeping objects, with the reason.
    Skipped(&'static str),
    /// A key in no AWS log layout where only those are read ([`Attribution`]).
    OutsideLayout,
    /// NoSuchKey or NoSuchVersion: deleted before it could be read.
    Missing,
}

pub struct Handler<S, O> {
    detector: Arc<Detector<S>>,
    source: O,
    function_name: String,
    region: String,
    attribution: Attribution,
    /// The log sources this process recorded as seen within the hour.
    seen_sources: crate::silence::RecentlySeen,
    /// What the sweep remembers between invocations of this process.
    sweep_cache: sweep::SweepCache,
}

impl<S: FunctionStore, O: ObjectSource> Handler<S, O> {
    pub fn new(detector: Detector<S>, source: O, function_name: impl Into<String>) -> Self {
        Self {
            detector: Arc::new(detector),
            source,
            function_name: function_name.into(),
            region: crate::aws::FALLBACK_REGION.into(),
            attribution: Attribution::default(),
            seen_sources: Default::default(),
            sweep_cache: Default::default(),
        }
    }

    /// Records that a log object with records of `account` in `region` was read, at most
    /// once an hour per source and process. Only the silence check depends on it: a
    /// failure is logged.
    async fn source_seen(&self, account: &str, region: &str) {
        let Some(name) = crate::silence::source_name(account, region) else {
            return;
        };
        let now = chrono::Utc::now().timestamp();
        if !self.seen_sources.first_within_the_hour(&name, now) {
            return;
        }
        if let Err(e) = self.detector.store().source_seen(&name, now).await {
            self.seen_sources.forget(&name);
            warn!(source = %name, error = %error_chain(&e), "could not record the log source as seen");
        }
    }

    /// Which accounts inputs may speak for, beyond their location.
    pub fn with_attribution(mut self, attribution: Attribution) -> Self {
        self.attribution = attribution;
        self
    }

    /// The region named in CloudWatch Logs stream ARNs.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The detector, for tests to look at its store.
    #[cfg(any(test, feature = "testing"))]
    pub fn detector(&self) -> &Detector<S> {
        &self.detector
    }

    /// Handles one invocation event with no deadline ([`handle_until`](Self::handle_until)),
    /// as tests do.
    #[cfg(any(test, feature = "testing"))]
    pub async fn handle(&self, event: Value) -> Result<Response, HandlerError> {
        self.handle_until(event, None).await
    }

    /// Handles one invocation event. S3 and EventBridge: `Err` when any object hit a
    /// dependency failure. SQS: `Ok` with `batchItemFailures`, messages processed a few
    /// at once; when the invocation's `deadline` draws near, messages not yet counting
    /// are returned as failures, to be redelivered, rather than let the whole batch
    /// time out (docs/DESIGN.md, "A queue for busy buckets").
    pub async fn handle_until(
        &self,
        event: Value,
        deadline: Option<Instant>,
    ) -> Result<Response, HandlerError> {
        let cutoff = deadline.map(cutoff_before);
        let mut metrics = Counts::default();
        let result = match parse_invocation(&event) {
            Invocation::Ignored(reason) => {
                info!(reason = %reason, "event ignored");
                Ok(Response::Ignored { ignored: reason })
            }
            Invocation::Malformed(reason) => {
                warn!(reason = %reason, "malformed event acknowledged; a retry would not fix it");
                metrics.events_malformed += 1;
                Ok(Response::Malformed { malformed: reason })
            }
            Invocation::Sweep(req) => {
                let now = chrono::Utc::now().timestamp();
                match self.sweep(&req, now, &mut metrics, cutoff).await {
                    Ok(report) => Ok(Response::Sweep { sweep: report }),
                    Err(e) => {
                        error!(bucket = %req.bucket, error = %error_chain(&e), "sweep failed; the next one tries again");
                        Err(e)
                    }
                }
            }
            Invocation::LogEvents(payload) => {
                let n = payload.log_events.len();
                match self.process_log_events(&payload).await {
                    Ok(report) => {
                        metrics.add(&report.counts);
                        Ok(Response::LogEvents { log_events: n })
                    }
                    Err(e) => {
                        metrics.objects_failed += 1;
                        error!(log_group = %payload.log_group, log_stream = %payload.log_stream, error = %error_chain(&e), "log events failed; will be retried");
                        Err(e)
                    }
                }
            }
            Invocation::Objects(objects) => {
                let total = objects.len();
                let results = self.process_all(&objects, &mut metrics, None).await;
                let mut failures = results.into_iter().filter_map(Result::err);
                match failures.next() {
                    None => Ok(Response::Objects { objects: total }),
                    Some(first) => Err(HandlerError::Objects {
                        failed: 1 + failures.count(),
                        total,
                        first: Box::new(first),
                    }),
                }
            }
            Invocation::Sqs(messages) => Ok(Response::Sqs(
                self.handle_sqs(&messages, cutoff, &mut metrics).await,
            )),
        };
        println!(
            "{}",
            metrics::to_emf(
                &metrics,
                &self.function_name,
                chrono::Utc::now().timestamp_millis()
            )
        );
        result
    }

    /// Processes `objects` a few at once, adding what happened to `metrics`.
    async fn process_all(
        &self,
        objects: &[ObjectRef],
        metrics: &mut Counts,
        cutoff: Option<Instant>,
    ) -> Vec<Result<ObjectOutcome, HandlerError>> {
        let results = self.process_objects(objects, cutoff).await;
        account_objects(objects, &results, metrics);
        results
    }

    /// Processes `objects` a few at once; reading stops at `cutoff`.
    async fn process_objects(
        &self,
        objects: &[ObjectRef],
        cutoff: Option<Instant>,
    ) -> Vec<Result<ObjectOutcome, HandlerError>> {
        stream::iter(objects)
            .map(|o| self.process_object(o, cutoff))
            .buffered(OBJECT_CONCURRENCY)
            .collect()
            .await
    }

    /// Reads, counts and alerts for one object. A read still going at `cutoff` stops
    /// and fails the object before anything is counted, so it is retried whole.
    pub async fn process_object(
        &self,
        object: &ObjectRef,
        cutoff: Option<Instant>,
    ) -> Result<ObjectOutcome, HandlerError> {
        let layout = crate::log_keys::parse(&object.key);
        if layout.is_none() && self.attribution.require_log_layout {
            warn!(bucket = %object.bucket, key = %object.key, "object outside AWS's log layouts skipped: only Bedrock's and CloudTrail's keys are read here (REQUIRE_LOG_LAYOUT)");
            return Ok(ObjectOutcome::OutsideLayout);
        }
        let (report, version, etag) = match process(&self.source, &self.detector, object, cutoff)
            .await?
        {
            Processed::Skipped(reason) => {
                info!(bucket = %object.bucket, key = %object.key, reason, "object skipped");
                return Ok(ObjectOutcome::Skipped(reason));
            }
            Processed::Missing => {
                warn!(bucket = %object.bucket, key = %object.key, version = object.version_id.as_deref().unwrap_or("current"), "object not found (NoSuchKey or NoSuchVersion); skipped");
                return Ok(ObjectOutcome::Missing);
            }
            Processed::Counted {
                report,
                version,
                etag,
            } => (report, version, etag),
        };
        log_report(&report, Some(&version));
        // Two writes that depend on nothing but the object's report, at once: neither
        // waits for the other, and a failure of either is only logged.
        let seen = async {
            let key = layout.filter(|_| delivers(&report));
            if let Some((key, region)) = key.and_then(|k| Some((k, crate::log_keys::region(&k)?))) {
                self.source_seen(key.account, region).await;
            }
        };
        let marked = async {
            let Some(etag) = &etag else { return };
            // Only saves the sweep a read: a failure here costs nothing else.
            let marker = object_marker(&object.bucket, &object.key, etag);
            let expires_at = chrono::Utc::now().timestamp() + MARKER_SECONDS;
            if let Err(e) = self.detector.store().mark_seen(&marker, expires_at).await {
                warn!(object = %report.object, error = %error_chain(&e), "could not record the object as processed");
            }
        };
        tokio::join!(seen, marked);
        Ok(ObjectOutcome::Processed(report))
    }

    /// Counts the records of one CloudWatch Logs payload: one unit, like an object.
    pub async fn process_log_events(
        &self,
        payload: &LogPayload,
    ) -> Result<ObjectReport, HandlerError> {
        let (account, region) = self.attribution.of_payload(payload, &self.region);
        let id = ObjectId::log_events(
            &payload.owner,
            &self.region,
            &payload.log_group,
            &payload.log_stream,
            payload.log_events.iter().map(|e| e.id.as_str()),
        );
        let read = self.detector.reader().read_messages(
            payload.log_events.iter().map(|e| e.message.as_str()),
            account,
        );
        let report = self.detector.count(&id, read).await?;
        log_report(&report, None);
        if let Some(account) = account.filter(|_| delivers(&report)) {
            self.source_seen(account, region).await;
        }
        Ok(report)
    }
}

/// What became of each of `objects`, into `metrics` and the log.
fn account_objects(
    objects: &[ObjectRef],
    results: &[Result<ObjectOutcome, HandlerError>],
    metrics: &mut Counts,
) {
    for (o, r) in objects.iter().zip(results) {
        match r {
            Ok(ObjectOutcome::Processed(report)) => metrics.add(&report.counts),
            Ok(ObjectOutcome::Skipped(_)) => metrics.objects_skipped += 1,
            Ok(ObjectOutcome::OutsideLayout) => metrics.objects_outside_layout += 1,
            Ok(ObjectOutcome::Missing) => metrics.objects_missing += 1,
            Err(e) => {
                metrics.objects_failed += 1;
                if let HandlerError::Detect(DetectError::Keys { done, .. }) = e {
                    metrics.add(done);
                }
                error!(bucket = %o.bucket, key = %o.key, error = %error_chain(e), "object failed; will be retried");
            }
        }
    }
}

/// Whether what was read shows its source delivering logs: at least one record that
/// is a JSON object, not only a key, an empty object or garbage.
fn delivers(report: &ObjectReport) -> bool {
    let c = &report.counts;
    c.records > c.skipped_invalid_json + c.skipped_oversized_line
}

/// When to stop starting or reading objects, before `deadline`: the time left for
/// what has started to count and deliver (a fifth of the invocation's time left at
/// its start, between 10 s and 60 s).
fn cutoff_before(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline
        - (left / 5)
            .clamp(Duration::from_secs(10), Duration::from_secs(60))
            .min(left)
}

/// The one log line per object: what was read and what was counted and alerted.
fn log_report(report: &ObjectReport, version: Option<&str>) {
    let c = &report.counts;
    for warning in report.warnings() {
        warn!(object = %report.object, "{warning}");
    }
    c.log_object(
        &report.object,
        version.unwrap_or_default(),
        &format!("{:?}", report.format),
        report.gzip,
    );
}

/// The deployed handler: DynamoDB counters, alerts to the configured sinks, S3 objects.
pub type AwsHandler = Handler<DynamoStore, S3Source>;

/// The deployed handler, with AWS clients from the standard SDK configuration (so
/// `AWS_ENDPOINT_URL` redirects all of them).
pub async fn aws_handler(settings: LambdaSettings) -> AwsHandler {
    aws_handler_with(&sdk_config().await, settings)
}

/// The deployed handler over a given SDK configuration: SNS always; EventBridge and
/// Security Hub when set.
pub fn aws_handler_with(sdk: &aws_config::SdkConfig, settings: LambdaSettings) -> AwsHandler {
    let targets = SinkTargets {
        topic_arn: Some(&settings.topic_arn),
        event_bus: settings.event_bus.as_deref(),
        security_hub_account: settings.security_hub_account.as_deref(),
    };
    let sinks = sinks(sdk, &settings.region, targets);
    let detector = Detector::with_sinks(settings.config, dynamo_store(sdk, &settings.table), sinks);
    Handler::new(
        detector,
        S3Source::new(s3_client(sdk)),
        settings.function_name,
    )
    .with_region(settings.region)
    .with_attribution(settings.attribution)
}

/// The invocation's deadline (milliseconds since the epoch, from the runtime) as an
/// instant of this process.
fn deadline_of(epoch_ms: u64) -> Option<Instant> {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(epoch_ms);
    let left = at.duration_since(std::time::SystemTime::now()).ok()?;
    Some(Instant::now() + left)
}

/// Serves invocations from the Lambda Runtime API until the runtime stops.
pub fn main() -> ExitCode {
    // JSON when the function's LoggingConfig says so (AWS_LAMBDA_LOG_FORMAT), at
    // AWS_LAMBDA_LOG_LEVEL; the runtime adds the request id to every line.
    lambda_runtime::tracing::init_default_subscriber();
    let settings = match LambdaSettings::from_vars(|name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, variable = e.name, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let handler = Arc::new(aws_handler(settings).await);
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let handler = handler.clone();
            let deadline = deadline_of(event.context.deadline);
            async move { handler.handle_until(event.payload, deadline).await }
        }))
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
