//! The Lambda function: settings from the environment, AWS clients built once, and
//! the [`Handler`] that turns one invocation event into processed objects.
//!
//! Failure policy (SPEC section 6): bad objects (corrupt, truncated, missing,
//! housekeeping) are logged, counted and acknowledged; dependency failures (S3,
//! DynamoDB, SNS) fail the invocation, or for SQS only the messages they hit.

use crate::aggregate::scan_object;
use crate::alert::sns::SnsSink;
use crate::alert::AlertSink;
use crate::config::{Config, ConfigError};
use crate::detector::{DetectError, Detector, ObjectReport};
use crate::event::{parse_invocation, Invocation, ObjectRef};
use crate::key::ObjectId;
use crate::logs::skip_reason;
use crate::metrics::InvocationMetrics;
use crate::source::s3::S3Source;
use crate::source::{ObjectSource, SourceError};
use crate::store::dynamodb::DynamoStore;
use crate::store::CounterStore;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use futures_util::stream::{self, StreamExt};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::Arc;
use thiserror::Error;
use tracing::{error, info, warn};

/// Objects of one invocation processed at once.
pub const OBJECT_CONCURRENCY: usize = 4;

/// Everything the deployed function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaSettings {
    pub table: String,
    pub topic_arn: String,
    pub config: Config,
    pub function_name: String,
}

impl LambdaSettings {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError {
                    name,
                    value: String::new(),
                    reason: "required".into(),
                })
        };
        Ok(Self {
            table: required("COUNTER_TABLE")?,
            topic_arn: required("ALERT_TOPIC_ARN")?,
            config: Config::from_vars(&var)?,
            function_name: var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "bedrock-denied-models".into()),
        })
    }
}

/// A failure that makes Lambda retry the event (or the SQS message).
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("reading s3://{bucket}/{key} stopped unexpectedly: {message}")]
    Reader {
        bucket: String,
        key: String,
        message: String,
    },
    #[error("{failed} of {total} objects failed; first: {first}")]
    Objects {
        failed: usize,
        total: usize,
        first: Box<HandlerError>,
    },
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Source(_) => "S3Error",
            HandlerError::Detect(DetectError::Read { .. }) => "S3Error",
            HandlerError::Detect(DetectError::Store { .. }) => "DynamoDBError",
            HandlerError::Detect(DetectError::Publish { .. }) => "SNSError",
            HandlerError::Reader { .. } => "ReaderError",
            HandlerError::Objects { .. } => "ObjectsFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// What became of one object.
#[derive(Debug)]
pub enum ObjectOutcome {
    Processed(ObjectReport),
    /// Housekeeping objects (SPEC section 6), with the reason.
    Skipped(&'static str),
    /// NoSuchKey: deleted before it could be read.
    Missing,
}

pub struct Handler<S, A, O> {
    detector: Arc<Detector<S, A>>,
    source: O,
    function_name: String,
}

impl<S: CounterStore, A: AlertSink, O: ObjectSource> Handler<S, A, O> {
    pub fn new(detector: Detector<S, A>, source: O, function_name: impl Into<String>) -> Self {
        Self {
            detector: Arc::new(detector),
            source,
            function_name: function_name.into(),
        }
    }

    pub fn detector(&self) -> &Detector<S, A> {
        &self.detector
    }

    /// Handles one invocation event. S3 and EventBridge: `Err` when any object hit a
    /// dependency failure. SQS: `Ok` with `batchItemFailures`.
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        let mut metrics = InvocationMetrics::default();
        let result = match parse_invocation(&event) {
            Invocation::Ignored(reason) => {
                info!(reason = %reason, "event ignored");
                Ok(json!({"ignored": reason}))
            }
            Invocation::Objects(objects) => {
                let total = objects.len();
                let results = self.process_all(&objects, &mut metrics).await;
                let mut failures = results.into_iter().filter_map(Result::err);
                match failures.next() {
                    None => Ok(json!({"objects": total})),
                    Some(first) => Err(HandlerError::Objects {
                        failed: 1 + failures.count(),
                        total,
                        first: Box::new(first),
                    }),
                }
            }
            Invocation::Sqs(messages) => {
                let mut response = SqsBatchResponse::default();
                for m in messages {
                    let failed = match &m.objects {
                        Err(reason) => {
                            warn!(message_id = %m.message_id, reason = %reason, "SQS message ignored");
                            false
                        }
                        Ok(objects) => self
                            .process_all(objects, &mut metrics)
                            .await
                            .iter()
                            .any(Result::is_err),
                    };
                    if failed {
                        let mut f = BatchItemFailure::default();
                        f.item_identifier = m.message_id.clone();
                        response.batch_item_failures.push(f);
                    }
                }
                Ok(serde_json::to_value(&response).unwrap_or_else(|_| json!({})))
            }
        };
        println!(
            "{}",
            metrics.to_emf(&self.function_name, chrono::Utc::now().timestamp_millis())
        );
        result
    }

    async fn process_all(
        &self,
        objects: &[ObjectRef],
        metrics: &mut InvocationMetrics,
    ) -> Vec<Result<ObjectOutcome, HandlerError>> {
        let results: Vec<_> = stream::iter(objects)
            .map(|o| self.process_object(o))
            .buffered(OBJECT_CONCURRENCY)
            .collect()
            .await;
        for (o, r) in objects.iter().zip(&results) {
            match r {
                Ok(ObjectOutcome::Processed(report)) => metrics.add_report(report),
                Ok(ObjectOutcome::Skipped(_)) => metrics.objects_skipped += 1,
                Ok(ObjectOutcome::Missing) => metrics.objects_missing += 1,
                Err(e) => {
                    metrics.objects_failed += 1;
                    error!(bucket = %o.bucket, key = %o.key, error = %e, "object failed; will be retried");
                }
            }
        }
        results
    }

    /// Reads, counts and alerts for one object.
    pub async fn process_object(&self, object: &ObjectRef) -> Result<ObjectOutcome, HandlerError> {
        if let Some(reason) = skip_reason(&object.key, object.size.unwrap_or(u64::MAX)) {
            info!(bucket = %object.bucket, key = %object.key, reason, "object skipped");
            return Ok(ObjectOutcome::Skipped(reason));
        }
        let Some(opened) = self.source.open(object).await? else {
            warn!(bucket = %object.bucket, key = %object.key, "object not found (NoSuchKey); skipped");
            return Ok(ObjectOutcome::Missing);
        };
        if opened.size == Some(0) {
            info!(bucket = %object.bucket, key = %object.key, "empty object skipped");
            return Ok(ObjectOutcome::Skipped("empty object"));
        }
        let version = object
            .version_id
            .clone()
            .unwrap_or_else(|| opened.version.clone());
        let id = ObjectId::s3(&object.bucket, &object.key, &version);

        let matcher = self.detector.matcher().clone();
        let spec = *self.detector.spec();
        let body = opened.body;
        let (agg, outcome) =
            tokio::task::spawn_blocking(move || scan_object(body, &matcher, &spec))
                .await
                .map_err(|e| HandlerError::Reader {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    message: e.to_string(),
                })?;
        let report = self
            .detector
            .finish(&id, agg, outcome.stats, outcome.error)
            .await?;
        let r = &report.read;
        let k = &report.record;
        if let Some(e) = &report.read_error {
            warn!(object = %report.object, error = %e, "object read only in part; what was read is counted");
        }
        info!(
            object = %report.object,
            format = ?r.format,
            gzip = r.gzip,
            source_bytes = r.source_bytes,
            log_bytes = r.log_bytes,
            records = r.records,
            denials = r.denials,
            skipped_invalid_json = r.skipped.invalid_json,
            skipped_missing_fields = r.skipped.missing_fields,
            skipped_bad_timestamp = r.skipped.bad_timestamp,
            skipped_oversized_line = r.skipped.oversized_line,
            keys = k.keys,
            counters_added = k.counters_added,
            counters_already_counted = k.counters_already_counted,
            alerts_published = k.alerts_published,
            alerts_suppressed = k.alerts_suppressed,
            alerts_in_progress = k.alerts_in_progress,
            "object processed"
        );
        Ok(ObjectOutcome::Processed(report))
    }
}

/// The deployed handler: DynamoDB counters, SNS alerts, S3 objects.
pub type AwsHandler = Handler<DynamoStore, SnsSink, S3Source>;

/// The standard SDK configuration (environment, profile, container or instance
/// credentials; `AWS_ENDPOINT_URL`) over rustls with the ring provider.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`sdk_config`], for callers that override part of it.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http)
}

/// S3 with path-style addressing, so endpoints like `http://localhost:PORT` work.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// AWS clients from the standard SDK configuration (so `AWS_ENDPOINT_URL` redirects
/// all of them), with path-style S3 addressing for endpoints like `localhost:PORT`.
pub async fn aws_handler(settings: LambdaSettings) -> AwsHandler {
    aws_handler_with(&sdk_config().await, settings)
}

/// The deployed handler over a given SDK configuration.
pub fn aws_handler_with(sdk: &aws_config::SdkConfig, settings: LambdaSettings) -> AwsHandler {
    let s3 = s3_client(sdk);
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let detector = Detector::new(
        settings.config,
        DynamoStore::new(dynamodb, settings.table),
        SnsSink::new(sns, settings.topic_arn),
    );
    Handler::new(detector, S3Source::new(s3), settings.function_name)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}

/// Serves invocations from the Lambda Runtime API until the runtime stops.
pub fn main() -> ExitCode {
    init_logging();
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
            async move { handler.handle(event.payload).await }
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
