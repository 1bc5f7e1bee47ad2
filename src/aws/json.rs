//! Signed JSON calls to AWS APIs for which the detector needs one operation each
//! (EventBridge PutEvents, Security Hub BatchImportFindings): SigV4 from `aws-sigv4`,
//! HTTPS from the SDK's own connector, credentials, region and endpoint settings from
//! the standard SDK configuration. Why not the service crates: see docs/DESIGN.md,
//! "Alert sinks", which records what they would cost the build.

use crate::arn::partition;
use crate::errors::lock;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_types::service_config::ServiceConfigKey;
use serde_json::Value;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Attempts per call (the first and two retries), for throttling, 5xx and network errors.
const ATTEMPTS: u32 = 3;
/// The first retry waits up to this long, each next one up to twice as long.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Cached credentials are renewed this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

/// What went wrong with a call.
#[derive(Debug, Error)]
pub enum ApiErrorKind {
    /// No credentials, or the provider failed: a retry finds the same.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The request could not be signed or built.
    #[error("signing: {0}")]
    Signing(String),
    /// No answer: connection, TLS, timeout.
    #[error("transport: {0}")]
    Transport(String),
    /// An error answer without an AWS error code.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// An AWS error answer (`x-amzn-ErrorType`, `__type`).
    #[error("HTTP {status} {code}: {message}")]
    Service {
        status: u16,
        code: String,
        message: String,
    },
    /// A success status whose answer is not JSON: not what the API answers.
    #[error("HTTP {status} answered with something other than JSON: {message}")]
    Answer { status: u16, message: String },
}

/// A failed call to `service`'s `operation`.
#[derive(Debug, Error)]
#[error("{service} {operation}: {kind}")]
pub struct ApiError {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: ApiErrorKind,
}

impl ApiError {
    /// Only what a later attempt may change is retried: the transport, throttling,
    /// and server errors.
    pub fn retryable(&self) -> bool {
        let throttling = |code: &str| {
            code.contains("Throttl")
                || code.contains("TooManyRequests")
                || code.contains("LimitExceeded")
        };
        match &self.kind {
            ApiErrorKind::Transport(_) => true,
            ApiErrorKind::Status { status, .. } => *status >= 500 || *status == 429,
            ApiErrorKind::Service { status, code, .. } => {
                *status >= 500 || *status == 429 || throttling(code)
            }
            ApiErrorKind::Credentials(_)
            | ApiErrorKind::Signing(_)
            | ApiErrorKind::Answer { .. } => false,
        }
    }
}

/// The wait before retry `attempt` (1, 2, ...): "full jitter", a random time up to
/// `BASE_BACKOFF * 2^(attempt-1)`, so that concurrent callers throttled together do
/// not retry together.
fn backoff(attempt: u32) -> Duration {
    let cap = BASE_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1));
    // A randomly keyed hash per process and call: random enough to spread retries.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let fraction = (h.finish() % 10_000) as f64 / 10_000.0;
    cap.mul_f64(fraction)
}

/// One AWS service reached with signed JSON requests.
#[derive(Clone)]
pub struct JsonApi {
    service: &'static str,
    endpoint: String,
    /// The `host` header: the endpoint's authority.
    host: String,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
    /// The provider does not cache (the SDK clients cache in front of it): without
    /// this, every call would resolve credentials again (an STS or SSO request for
    /// some providers).
    cached: Arc<Mutex<Option<Credentials>>>,
    http: Arc<aws_smithy_http_client::Connector>,
}

impl std::fmt::Debug for JsonApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonApi")
            .field("service", &self.service)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The service's id in the SDK's configuration (`AWS_ENDPOINT_URL_<ID>`, a profile's
/// `services` section) for a signing name.
fn service_id(service: &str) -> &str {
    match service {
        "events" => "EventBridge",
        "securityhub" => "SecurityHub",
        "sqs" => "SQS",
        other => other,
    }
}

/// The endpoint as the SDK's own clients choose it: an endpoint set in code; else the
/// service's own (`AWS_ENDPOINT_URL_EVENTBRIDGE`, ...); else the shared one
/// (`AWS_ENDPOINT_URL`); else the partition's, with the FIPS and dual-stack settings.
fn endpoint(sdk: &aws_config::SdkConfig, service: &str, region: &str) -> String {
    let configured = if sdk.get_origin("endpoint_url").is_client_config() {
        sdk.endpoint_url().map(str::to_string)
    } else {
        sdk.service_config()
            .and_then(|c| {
                let key = ServiceConfigKey::builder()
                    .service_id(service_id(service))
                    .env("AWS_ENDPOINT_URL")
                    .profile("endpoint_url")
                    .build()
                    .ok()?;
                c.load_config(key)
            })
            .or_else(|| sdk.endpoint_url().map(str::to_string))
    };
    if let Some(url) = configured {
        return url.trim_end_matches('/').to_string();
    }
    let (suffix, dual_stack_suffix) = match partition(region) {
        "aws-cn" => ("amazonaws.com.cn", "api.amazonwebservices.com.cn"),
        _ => ("amazonaws.com", "api.aws"),
    };
    let name = if sdk.use_fips().unwrap_or(false) {
        format!("{service}-fips")
    } else {
        service.to_string()
    };
    let suffix = if sdk.use_dual_stack().unwrap_or(false) {
        dual_stack_suffix
    } else {
        suffix
    };
    format!("https://{name}.{region}.{suffix}")
}

impl JsonApi {
    /// `service` is the signing name and endpoint prefix (`events`, `securityhub`);
    /// `region` is used when the SDK configuration names none.
    pub fn new(sdk: &aws_config::SdkConfig, service: &'static str, region: &str) -> Self {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let region = sdk
            .region()
            .map_or_else(|| region.to_string(), |r| r.to_string());
        let credentials = sdk.credentials_provider();
        let connector_settings =
            aws_smithy_runtime_api::client::http::HttpConnectorSettings::builder()
                .connect_timeout(super::CONNECT_TIMEOUT)
                .read_timeout(super::ATTEMPT_TIMEOUT)
                .build();
        let http = aws_smithy_http_client::Connector::builder()
            .connector_settings(connector_settings)
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build();
        let endpoint = endpoint(sdk, service, &region);
        let host = endpoint
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        Self {
            service,
            endpoint,
            host,
            region,
            credentials,
            cached: Arc::default(),
            http: Arc::new(http),
        }
    }

    fn error(&self, operation: &'static str, kind: ApiErrorKind) -> ApiError {
        ApiError {
            service: self.service,
            operation,
            kind,
        }
    }

    /// The cached credentials while they stay valid, else fresh ones from the provider.
    async fn credentials(&self) -> Result<Credentials, ApiErrorKind> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + CREDENTIALS_MARGIN)
        };
        if let Some(c) = lock(&self.cached).as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let Some(provider) = &self.credentials else {
            return Err(ApiErrorKind::Credentials(
                "no AWS credentials are configured".into(),
            ));
        };
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| ApiErrorKind::Credentials(crate::error_chain(&e)))?;
        *lock(&self.cached) = Some(c.clone());
        Ok(c)
    }

    /// [`call`](Self::call) to a batch API with one item, which answers 200 even when
    /// the item failed: `check` reads the answer.
    pub async fn call_one(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        check: fn(&Value) -> Result<(), String>,
    ) -> Result<(), crate::errors::BoxError> {
        let answer = self.call(operation, path, headers, body).await?;
        check(&answer)?;
        Ok(())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// POSTs `body` to `path`, retrying throttling, 5xx and network errors with
    /// jittered backoff; the JSON answer of a 2xx response.
    pub async fn call(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let (status, bytes) = self.call_raw(operation, path, headers, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.error(
                operation,
                ApiErrorKind::Answer {
                    status,
                    message: format!(
                        "{e}: {}",
                        String::from_utf8_lossy(&bytes)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ),
                },
            )
        })
    }

    /// [`call`](Self::call) for an answer that is not JSON (an API of another
    /// protocol): the status and the body of a 2xx response.
    pub async fn call_raw(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let mut attempt = 1;
        loop {
            match self.attempt(operation, path, headers, body).await {
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let fail = |kind| self.error(operation, kind);
        let signing = |e: &dyn std::fmt::Display| fail(ApiErrorKind::Signing(e.to_string()));
        let url = format!("{}{path}", self.endpoint);
        let credentials = self.credentials().await.map_err(fail)?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing(&e))?
            .into();
        let mut all_headers: Vec<(&str, &str)> = vec![("host", self.host.as_str())];
        all_headers.extend_from_slice(headers);
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            all_headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| signing(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| signing(&e))?
            .into_parts();
        let mut request = http::Request::builder().method("POST").uri(&url);
        for (name, value) in &all_headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(SdkBody::from(body.to_vec()))
            .map_err(|e| signing(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = HttpRequest::try_from(request).map_err(|e| signing(&e))?;
        let response = self
            .http
            .call(request)
            .await
            .map_err(|e| fail(ApiErrorKind::Transport(crate::error_chain(&e))))?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(|t| t.split(':').next().unwrap_or(t).to_string());
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| fail(ApiErrorKind::Transport(format!("reading the answer: {e}"))))?
            .into_bytes()
            .to_vec();
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| value.get(*n).and_then(Value::as_str))
                .map(str::to_string)
        };
        let code = error_type
            .or_else(|| field(&["__type", "Code", "code"]))
            .map(|c| c.rsplit('#').next().unwrap_or(&c).to_string());
        let message = field(&["message", "Message"])
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(500).collect());
        Err(fail(match code {
            Some(code) => ApiErrorKind::Service {
                status,
                code,
                message,
            },
            None => ApiErrorKind::Status { status, message },
        }))
    }
}

/// Batch APIs answer 200 even when an item failed: the answer's `count_field` says how
/// many did, and the first item under `failures` (a JSON pointer) why.
pub fn check_batch_answer(
    answer: &Value,
    count_field: &str,
    failures: &str,
    what: &str,
) -> Result<(), String> {
    let failed = answer.get(count_field).and_then(Value::as_u64).unwrap_or(0);
    if failed == 0 {
        return Ok(());
    }
    let why = answer
        .pointer(failures)
        .map(|f| {
            format!(
                "{}: {}",
                f.get("ErrorCode")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown"),
                f.get("ErrorMessage").and_then(Value::as_str).unwrap_or("")
            )
        })
        .unwrap_or_default();
    Err(format!("{failed} {what} failed ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Credentials expiring `valid_for` from now, counting how often it is asked.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        valid_for: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let expiry = SystemTime::now() + self.valid_for;
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "id",
                "secret",
                None,
                Some(expiry),
                "test",
            )))
        }
    }

    fn api(valid_for: Duration) -> (JsonApi, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = Counting {
            calls: calls.clone(),
            valid_for,
        };
        let sdk = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .region(aws_config::Region::new("us-east-1"))
            .build();
        (JsonApi::new(&sdk, "events", "us-east-1"), calls)
    }

    #[tokio::test]
    async fn credentials_are_resolved_once_while_they_stay_valid() {
        let (events, calls) = api(Duration::from_secs(3600));
        for _ in 0..3 {
            events.credentials().await.expect("credentials");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Clones (one per sink) share the cache.
        events.clone().credentials().await.expect("credentials");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_resolved_again() {
        let (events, calls) = api(Duration::from_secs(60));
        for _ in 0..3 {
            events.credentials().await.expect("credentials");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// Service settings as the SDK's environment loader gives them: the value of
    /// `AWS_ENDPOINT_URL_<SERVICE ID>` (upper case, spaces as underscores).
    #[derive(Debug)]
    struct ServiceVariables(Vec<(&'static str, &'static str)>);

    impl aws_types::service_config::LoadServiceConfig for ServiceVariables {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            let name = format!(
                "{}_{}",
                key.env(),
                key.service_id().to_uppercase().replace(' ', "_")
            );
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_service_endpoint_variables_win_over_the_shared_one() {
        let sdk = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:1")
            .service_config(ServiceVariables(vec![
                ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:2"),
                ("AWS_ENDPOINT_URL_SECURITYHUB", "http://127.0.0.1:3/"),
            ]))
            .build();
        assert_eq!(
            JsonApi::new(&sdk, "events", "us-east-1").endpoint,
            "http://127.0.0.1:2"
        );
        assert_eq!(
            JsonApi::new(&sdk, "securityhub", "us-east-1").endpoint,
            "http://127.0.0.1:3"
        );
        let shared_only = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:1")
            .service_config(ServiceVariables(Vec::new()))
            .build();
        assert_eq!(
            JsonApi::new(&shared_only, "events", "us-east-1").endpoint,
            "http://127.0.0.1:1"
        );
    }

    #[test]
    fn the_host_header_is_the_endpoint_authority() {
        let (events, _) = api(Duration::from_secs(3600));
        assert_eq!(events.host, "events.us-east-1.amazonaws.com");
        let sdk = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        assert_eq!(
            JsonApi::new(&sdk, "events", "cn-north-1").host,
            "127.0.0.1:5000"
        );
        let cn = JsonApi::new(
            &aws_config::SdkConfig::builder().build(),
            "events",
            "cn-north-1",
        );
        assert_eq!(cn.host, "events.cn-north-1.amazonaws.com.cn");
    }

    fn error(kind: ApiErrorKind) -> ApiError {
        ApiError {
            service: "events",
            operation: "PutEvents",
            kind,
        }
    }

    fn service(status: u16, code: &str) -> ApiError {
        error(ApiErrorKind::Service {
            status,
            code: code.into(),
            message: "m".into(),
        })
    }

    #[test]
    fn retries_throttling_server_and_transport_errors_only() {
        assert!(error(ApiErrorKind::Transport("reset".into())).retryable());
        for status in [503, 429] {
            let e = error(ApiErrorKind::Status {
                status,
                message: String::new(),
            });
            assert!(e.retryable(), "{status}");
        }
        assert!(service(400, "ThrottlingException").retryable());
        assert!(!service(400, "ResourceNotFoundException").retryable());
        assert!(!service(403, "AccessDeniedException").retryable());
        assert!(!error(ApiErrorKind::Credentials("none".into())).retryable());
        assert!(!error(ApiErrorKind::Signing("bad".into())).retryable());
        let not_json = error(ApiErrorKind::Answer {
            status: 200,
            message: "<html>".into(),
        });
        assert!(!not_json.retryable());
        assert_eq!(
            service(400, "ResourceNotFoundException").to_string(),
            "events PutEvents: HTTP 400 ResourceNotFoundException: m"
        );
    }

    #[test]
    fn backoff_is_jittered_and_grows() {
        let waits: Vec<Duration> = (0..50).map(|_| backoff(1)).collect();
        assert!(waits.iter().all(|w| *w <= BASE_BACKOFF));
        assert!(
            waits
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 10,
            "spread out, not in lockstep: {waits:?}"
        );
        assert!((0..50).map(|_| backoff(2)).all(|w| w <= BASE_BACKOFF * 2));
        assert!((0..200).map(|_| backoff(2)).any(|w| w > BASE_BACKOFF));
    }

    #[test]
    fn endpoints_follow_the_sdk_settings() {
        let sdk = |b: aws_types::sdk_config::Builder| b.build();
        let base = || aws_config::SdkConfig::builder().region(aws_config::Region::new("us-east-1"));
        assert_eq!(
            endpoint(&sdk(base()), "events", "us-east-1"),
            "https://events.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&sdk(base().use_fips(true)), "securityhub", "us-east-1"),
            "https://securityhub-fips.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&sdk(base().use_dual_stack(true)), "events", "us-east-1"),
            "https://events.us-east-1.api.aws"
        );
        assert_eq!(
            endpoint(
                &sdk(base().use_fips(true).use_dual_stack(true)),
                "events",
                "us-east-1"
            ),
            "https://events-fips.us-east-1.api.aws"
        );
        assert_eq!(
            endpoint(&sdk(base().use_dual_stack(true)), "events", "cn-north-1"),
            "https://events.cn-north-1.api.amazonwebservices.com.cn"
        );
    }
}
