//! The one place AWS is wired up (feature `aws`): the SDK configuration and its
//! timeouts, the clients, the signed JSON client ([`json`]), the alert sinks ([`sns`],
//! [`eventbridge`], [`securityhub`]), the S3 object source ([`s3`]) and the DynamoDB
//! store's construction. The function (`lambda`) and the command line (`cli`) build
//! on it; nothing here knows either.

pub mod backfill;
pub mod eventbridge;
pub mod json;
pub mod s3;
pub mod securityhub;
pub mod sns;
pub mod store;

use crate::alert::Sink;
use crate::aws::store::DynamoStore;
use aws_config::timeout::TimeoutConfig;
use eventbridge::EventBridgeSink;
use json::JsonApi;
use securityhub::SecurityHubSink;
use sns::SnsSink;
use std::sync::Arc;
use std::time::Duration;

/// The region used when the configuration names none (the SDK's own default region
/// for endpoints is not guessed).
pub const FALLBACK_REGION: &str = "us-east-1";

/// A call to DynamoDB or SNS gives up after this long, retries included, so an attempt
/// holding an alert claim always finishes well within its lease (the detector bounds
/// each delivery the same way, `detector::SINK_TIMEOUT`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
}

/// Timeouts for request/response calls (not for streaming object bodies).
fn call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build()
}

/// S3 as configured; path-style addressing only when an endpoint override (a local
/// emulator) is set, so production keeps virtual-hosted addressing.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = sdk.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// The counter store on `table`, with bounded call timeouts.
pub fn dynamo_store(sdk: &aws_config::SdkConfig, table: &str) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .timeout_config(call_timeouts())
            .build(),
    );
    DynamoStore::new(client, table)
}

/// The SNS sink for `topic_arn`, with bounded call timeouts.
pub fn sns_sink(sdk: &aws_config::SdkConfig, topic_arn: &str) -> SnsSink {
    let client = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk)
            .timeout_config(call_timeouts())
            .build(),
    );
    SnsSink::new(client, topic_arn)
}

/// The EventBridge sink for the bus `bus` (name or ARN).
pub fn eventbridge_sink(sdk: &aws_config::SdkConfig, bus: &str, region: &str) -> EventBridgeSink {
    EventBridgeSink::new(JsonApi::new(sdk, "events", region), bus)
}

/// The Security Hub sink importing findings for `account` (the function's own).
pub fn securityhub_sink(
    sdk: &aws_config::SdkConfig,
    account: &str,
    region: &str,
) -> SecurityHubSink {
    SecurityHubSink::new(JsonApi::new(sdk, "securityhub", region), account)
}

/// Where alerts go: an SNS topic, an EventBridge bus, the Security Hub of an account.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkTargets<'a> {
    pub topic_arn: Option<&'a str>,
    pub event_bus: Option<&'a str>,
    pub security_hub_account: Option<&'a str>,
}

/// A sink for each target, in that order.
pub fn sinks(sdk: &aws_config::SdkConfig, region: &str, to: SinkTargets<'_>) -> Vec<Sink> {
    let topic = to.topic_arn.map(|t| Arc::new(sns_sink(sdk, t)) as Sink);
    let bus = to
        .event_bus
        .map(|b| Arc::new(eventbridge_sink(sdk, b, region)) as Sink);
    let hub = to
        .security_hub_account
        .map(|a| Arc::new(securityhub_sink(sdk, a, region)) as Sink);
    topic.into_iter().chain(bus).chain(hub).collect()
}

/// The region the configuration names, else [`FALLBACK_REGION`].
pub fn region(sdk: &aws_config::SdkConfig) -> String {
    sdk.region()
        .map_or_else(|| FALLBACK_REGION.to_string(), |r| r.to_string())
}
