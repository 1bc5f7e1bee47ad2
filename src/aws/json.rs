//! Signed JSON calls to AWS APIs for which the detector needs one operation each
//! (EventBridge PutEvents, Security Hub BatchImportFindings): SigV4 from `aws-sigv4`,
//! HTTPS from the SDK's own connector, credentials and endpoint from the standard SDK
//! configuration. Why not the service crates: the Security Hub crate alone is larger
//! than the S3 one and would more than double the build (docs/DESIGN.md, "Alert
//! sinks").

use crate::errors::{lock, BoxError};
use crate::key::partition;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Attempts per call (the first and two retries), for throttling, 5xx and network errors.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Cached credentials are renewed this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

/// A failed call: the HTTP status and AWS error code when there was an answer.
#[derive(Debug, Error)]
#[error("{service} {operation}: {}", describe(.status, .code, .message))]
pub struct ApiError {
    pub service: &'static str,
    pub operation: &'static str,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

fn describe(status: &Option<u16>, code: &Option<String>, message: &str) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s} {c}: {message}"),
        (Some(s), None) => format!("HTTP {s}: {message}"),
        _ => message.to_string(),
    }
}

impl ApiError {
    fn retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(s) if s >= 500 || s == 429 => true,
            _ => self.code.as_deref().is_some_and(|c| {
                c.contains("Throttl")
                    || c.contains("TooManyRequests")
                    || c.contains("LimitExceeded")
            }),
        }
    }
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

/// `https://{service}.{region}.{dns suffix}`, or the configured endpoint override.
fn endpoint(sdk: &aws_config::SdkConfig, service: &str, region: &str) -> String {
    if let Some(url) = sdk.endpoint_url() {
        return url.trim_end_matches('/').to_string();
    }
    let suffix = match partition(region) {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    format!("https://{service}.{region}.{suffix}")
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

    /// The cached credentials while they stay valid, else fresh ones from the provider.
    async fn credentials(&self) -> Result<Credentials, String> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + CREDENTIALS_MARGIN)
        };
        if let Some(c) = lock(&self.cached).as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let Some(provider) = &self.credentials else {
            return Err("no AWS credentials are configured".into());
        };
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
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
    ) -> Result<(), BoxError> {
        let answer = self.call(operation, path, headers, body).await?;
        check(&answer)?;
        Ok(())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// POSTs `body` to `path`, retrying throttling, 5xx and network errors; the JSON
    /// answer of a 2xx response.
    pub async fn call(
        &self,
        operation: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.attempt(operation, path, headers, body).await {
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 3;
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
    ) -> Result<Value, ApiError> {
        let fail = |status: Option<u16>, code: Option<String>, message: String| ApiError {
            service: self.service,
            operation,
            status,
            code,
            message,
        };
        let url = format!("{}{path}", self.endpoint);
        let credentials = self
            .credentials()
            .await
            .map_err(|message| fail(None, None, message))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(None, None, format!("signing: {e}")))?
            .into();
        let mut all_headers: Vec<(&str, &str)> = vec![("host", self.host.as_str())];
        all_headers.extend_from_slice(headers);
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            all_headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail(None, None, format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| fail(None, None, format!("signing: {e}")))?
            .into_parts();
        let mut request = http::Request::builder().method("POST").uri(&url);
        for (name, value) in &all_headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(SdkBody::from(body.to_vec()))
            .map_err(|e| fail(None, None, format!("request: {e}")))?;
        instructions.apply_to_request_http1x(&mut request);
        let request = HttpRequest::try_from(request)
            .map_err(|e| fail(None, None, format!("request: {e}")))?;
        let response = self
            .http
            .call(request)
            .await
            .map_err(|e| fail(None, None, crate::error_chain(&e)))?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(|t| t.split(':').next().unwrap_or(t).to_string());
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| fail(Some(status), None, format!("reading the answer: {e}")))?
            .into_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
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
        Err(fail(Some(status), code, message))
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

    fn error(status: Option<u16>, code: Option<&str>) -> ApiError {
        ApiError {
            service: "events",
            operation: "PutEvents",
            status,
            code: code.map(str::to_string),
            message: "m".into(),
        }
    }

    #[test]
    fn retries_throttling_server_and_network_errors_only() {
        assert!(error(None, None).retryable());
        assert!(error(Some(503), None).retryable());
        assert!(error(Some(429), None).retryable());
        assert!(error(Some(400), Some("ThrottlingException")).retryable());
        assert!(!error(Some(400), Some("ResourceNotFoundException")).retryable());
        assert!(!error(Some(403), Some("AccessDeniedException")).retryable());
        assert_eq!(
            error(Some(400), Some("ResourceNotFoundException")).to_string(),
            "events PutEvents: HTTP 400 ResourceNotFoundException: m"
        );
    }
}
