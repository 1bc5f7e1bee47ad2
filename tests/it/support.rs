//! Shared set-up for the tests that run against the AWS emulator (moto server on
//! loopback, started by `scripts/test`): real SDK clients, one fresh bucket, table,
//! topic and subscribed queue per test. Log builders come from the crate's own
//! `testing` module.
//!
//! Tests that need the emulator are `#[ignore = "needs the emulator"]`: plain
//! `cargo test` lists them as ignored, `scripts/test` runs them with
//! `--include-ignored`, and then a missing emulator fails them.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use bedrock_denied_models::aws::s3::S3Source;
use bedrock_denied_models::aws::store::{DynamoStore, PARTITION_KEY, SORT_KEY};
use bedrock_denied_models::aws::{dynamo_store, s3_client, sdk_config, sdk_loader, sns_sink};
use bedrock_denied_models::calls::Contribution;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::detector::Detector;
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::lambda::{aws_handler_with, AwsHandler, Handler, LambdaSettings};
use bedrock_denied_models::store::{
    AddOutcome, AlertClaim, AlertClaims, AlertState, ClaimOutcome, Counters, FunctionStore,
    StoreError, WindowCounts, WindowRead,
};
use bedrock_denied_models::testing::runtime_api::{function_command, Function, RuntimeApi};
use bedrock_denied_models::window::Bucket;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub use bedrock_denied_models::testing::*;

/// The emulator endpoint. Panics, saying how to get one, when there is none.
pub fn emulator() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(u) if u.starts_with("http://127.0.0.1:") || u.starts_with("http://localhost:") => u,
        Ok(u) => {
            panic!("AWS_ENDPOINT_URL={u} is not a loopback emulator; refusing to run against it")
        }
        Err(_) => panic!("this test needs the AWS emulator: run ./scripts/test"),
    }
}

pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub bucket: String,
    pub table: String,
    pub topic_name: String,
    pub topic_arn: String,
    pub queue_url: String,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name no other test of this run uses.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
    .to_lowercase()
}

impl Stack {
    /// Fresh resources for one test.
    pub async fn new(name: &str) -> Stack {
        emulator();
        let sdk = sdk_config().await;
        let id = unique(name);
        let stack = Stack {
            s3: s3_client(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
            bucket: format!("logs-{id}"),
            table: format!("counters-{id}"),
            topic_name: format!("alerts-{id}"),
            topic_arn: String::new(),
            queue_url: String::new(),
        };
        stack.create().await
    }

    async fn create(mut self) -> Self {
        self.s3
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("create bucket");
        self.create_table().await;
        self.queue_url = self.create_queue(&format!("q-{}", self.topic_name)).await;
        self.create_topic().await;
        self
    }

    /// Turns on versioning for the stack's bucket.
    pub async fn version_bucket(&self) {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.s3
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }

    pub async fn create_queue(&self, name: &str) -> String {
        self.sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_string()
    }

    pub async fn queue_arn(&self, url: &str) -> String {
        self.sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn")
    }

    /// The table exactly as template.yaml defines its key schema.
    pub async fn create_table(&self) {
        let attr = |name: &str, ty| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ty)
                .build()
                .expect("attr")
        };
        let key = |name: &str, ty| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(ty)
                .build()
                .expect("key")
        };
        self.ddb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PARTITION_KEY, ScalarAttributeType::S))
            .attribute_definitions(attr(SORT_KEY, ScalarAttributeType::N))
            .key_schema(key(PARTITION_KEY, KeyType::Hash))
            .key_schema(key(SORT_KEY, KeyType::Range))
            .send()
            .await
            .expect("create table");
    }

    /// Creates the topic (again) and subscribes the queue to it.
    pub async fn create_topic(&mut self) {
        self.topic_arn = self
            .sns
            .create_topic()
            .name(&self.topic_name)
            .send()
            .await
            .expect("create topic")
            .topic_arn()
            .expect("topic arn")
            .to_string();
        let queue_arn = self.queue_arn(&self.queue_url).await;
        self.sns
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
    }

    /// Takes the counter table away, as an outage or a mistaken deletion would.
    pub async fn delete_table(&self) {
        self.ddb
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .expect("delete table");
    }

    pub fn settings(&self, config: Config) -> LambdaSettings {
        LambdaSettings {
            table: self.table.clone(),
            topic_arn: self.topic_arn.clone(),
            config,
            function_name: "bedrock-denied-models-test".into(),
            region: "us-east-1".into(),
            event_bus: None,
            security_hub_account: None,
            attribution: Default::default(),
        }
    }

    /// The deployed handler (real clients from the environment) for this stack.
    pub async fn handler(&self) -> AwsHandler {
        self.handler_with(Config::default()).await
    }

    pub async fn handler_with(&self, config: Config) -> AwsHandler {
        aws_handler_with(&self.sdk, self.settings(config))
    }

    /// The built function, served by `api`, wired to this stack's table and topic.
    pub fn function(&self, bin: &std::path::Path, api: &RuntimeApi) -> Function {
        self.function_with(bin, api, &[])
    }

    /// [`Stack::function`] with more of its environment.
    pub fn function_with(
        &self,
        bin: &std::path::Path,
        api: &RuntimeApi,
        env: &[(&str, &str)],
    ) -> Function {
        let mut all = vec![
            ("COUNTER_TABLE", self.table.as_str()),
            ("ALERT_TOPIC_ARN", self.topic_arn.as_str()),
        ];
        all.extend_from_slice(env);
        Function::spawn(function_command(bin, api, &all))
    }

    /// A handler whose store holds `parties` callers at the counter and at the claim.
    pub fn racing_handler(
        &self,
        parties: usize,
        function_name: &str,
    ) -> Handler<BarrierStore<DynamoStore>, S3Source> {
        let store = BarrierStore::new(dynamo_store(&self.sdk, &self.table), parties);
        self.handler_over(store, function_name)
    }

    /// A handler over `store` (this stack's table behind a test wrapper), alerting
    /// through this stack's topic.
    pub fn handler_over<S: FunctionStore>(
        &self,
        store: S,
        function_name: &str,
    ) -> Handler<S, S3Source> {
        let detector = Detector::new(
            Config::default(),
            store,
            sns_sink(&self.sdk, &self.topic_arn),
        );
        Handler::new(detector, S3Source::new(s3_client(&self.sdk)), function_name)
    }

    /// Writes an object; returns its version id (versioned buckets).
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Option<String> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("put object")
            .version_id()
            .map(str::to_string)
    }

    /// Every message in the queue at `url` since the last call, deleted as read.
    pub async fn drain(&self, url: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let msgs = got.messages();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                out.push(serde_json::from_str(m.body().expect("body")).expect("JSON message"));
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().expect("handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// Every alert delivered to the subscribed queue since the last call: the SNS
    /// envelope (Subject, MessageAttributes) with the alert JSON parsed into "Alert".
    pub async fn alerts(&self) -> Vec<Value> {
        let mut out = self.drain(&self.queue_url).await;
        for envelope in &mut out {
            let alert: Value = serde_json::from_str(envelope["Message"].as_str().expect("Message"))
                .expect("alert JSON");
            envelope["Alert"] = alert;
        }
        out
    }

    /// The stored count of one (key, bucket), read straight from the table: the sum of
    /// its counter items, whose sort keys lie in `[bucket, bucket + 1)`, less, for each
    /// call their `ci` (invocation log) and `ct` (CloudTrail) maps both tell, the
    /// records of the log telling it fewer times.
    pub async fn count(&self, key: &DenialKey, bucket: i64) -> u64 {
        let nines = "9".repeat(28);
        let hi = if bucket >= 0 {
            format!("{bucket}.{nines}")
        } else {
            format!("-{}.{}1", -bucket - 1, "0".repeat(27))
        };
        let out = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", AttributeValue::S(format!("C#{}", key.digest())))
            .expression_attribute_values(":lo", AttributeValue::N(bucket.to_string()))
            .expression_attribute_values(":hi", AttributeValue::N(hi))
            .consistent_read(true)
            .send()
            .await
            .expect("query");
        let records: u64 = out
            .items()
            .iter()
            .filter_map(|i| i.get("denials").and_then(|v| v.as_n().ok()))
            .map(|n| n.parse::<u64>().expect("number"))
            .sum();
        let mut calls: BTreeMap<String, [u64; 2]> = BTreeMap::new();
        for item in out.items() {
            for (log, name) in ["ci", "ct"].into_iter().enumerate() {
                let Some(map) = item.get(name).and_then(|v| v.as_m().ok()) else {
                    continue;
                };
                for (id, n) in map {
                    let n: u64 = n.as_n().expect("a number").parse().expect("number");
                    calls.entry(id.clone()).or_default()[log] += n;
                }
            }
        }
        records - calls.values().map(|[i, t]| i.min(t)).sum::<u64>()
    }

    /// An S3 notification for keys of this stack's bucket, URL-encoded like S3 does.
    pub fn s3_event(&self, keys: &[&str]) -> Value {
        json!({"Records": keys.iter().map(|k| json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-03-14T09:10:05.123Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": self.bucket},
                   "object": {"key": url_encode(k), "size": 1}}
        })).collect::<Vec<_>>()})
    }

    /// The notification for one version of an object of a versioned bucket.
    pub fn versioned_event(&self, key: &str, version: &str) -> Value {
        let mut e = self.s3_event(&[key]);
        e["Records"][0]["s3"]["object"]["versionId"] = json!(version);
        e
    }
}

/// An item's size as DynamoDB counts it: attribute names and values in bytes
/// (numbers approximately: one byte per two significant digits, plus one).
pub fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
            AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>()
            }
            AttributeValue::B(b) => b.as_ref().len(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// S3's notification encoding: space as `+`, reserved characters as `%XX`.
pub fn url_encode(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A CloudWatch Logs subscription event, built as CloudWatch Logs builds it:
/// base64(gzip(JSON)) with one log event per message.
pub fn logs_event(group: &str, stream: &str, messages: &[(String, String)]) -> Value {
    let payload = json!({
        "messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["bedrock-denied-models"],
        "logEvents": messages.iter().enumerate().map(|(i, (id, m))| json!({
            "id": id, "timestamp": (T0 + i as i64) * 1000, "message": m
        })).collect::<Vec<_>>(),
    });
    json!({"awslogs": {"data": awslogs_data(&payload.to_string())}})
}

/// CloudWatch Logs messages of one Bedrock denial by Mallory at each of `times`.
pub fn bedrock_messages(times: &[i64]) -> Vec<(String, String)> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                format!("3795310660696698337880902507980421114328961542429822156{i}"),
                record(
                    MALLORY,
                    MODEL,
                    ACCOUNT,
                    *t,
                    Some(DENIED),
                    &format!("cw-{i}"),
                )
                .to_string(),
            )
        })
        .collect()
}

/// An SDK configuration whose endpoint nothing listens on: every call fails after
/// the SDK's retries.
pub async fn unreachable_sdk() -> aws_config::SdkConfig {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    sdk_loader()
        .endpoint_url(format!("http://127.0.0.1:{closed}"))
        .load()
        .await
}

pub fn mallory() -> DenialKey {
    DenialKey::new(MALLORY, MODEL, ACCOUNT)
}

/// One EventBridge API call (the detector's signed JSON client; the tests need no SDK
/// crate for EventBridge either).
pub async fn events_call(sdk: &aws_config::SdkConfig, target: &'static str, body: Value) -> Value {
    let events = bedrock_denied_models::aws::json::JsonApi::new(sdk, "events", "us-east-1");
    events
        .call(
            "test",
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            body.to_string().as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"))
}

/// A rule on `bus` with `pattern`, delivering to a new queue; returns the queue URL.
pub async fn rule_to_queue(s: &Stack, bus: &str, pattern: &Value) -> String {
    let name = unique("rule");
    events_call(
        &s.sdk,
        "AWSEvents.PutRule",
        json!({"Name": name, "EventBusName": bus, "EventPattern": pattern.to_string()}),
    )
    .await;
    let queue = s.create_queue(&unique("target")).await;
    let arn = s.queue_arn(&queue).await;
    events_call(
        &s.sdk,
        "AWSEvents.PutTargets",
        json!({"Rule": name, "EventBusName": bus, "Targets": [{"Id": "q", "Arn": arn}]}),
    )
    .await;
    queue
}

/// A store whose counter writes fail for one principal while `failing` is set, as a
/// counter that DynamoDB keeps refusing would; every other call goes through.
pub struct OneKeyFails<S> {
    pub inner: S,
    pub user: String,
    pub failing: std::sync::atomic::AtomicBool,
}

impl<S> OneKeyFails<S> {
    pub fn new(inner: S, user: &str) -> Self {
        Self {
            inner,
            user: user.to_string(),
            failing: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl<S: Counters> Counters for OneKeyFails<S> {
    async fn add(
        &self,
        object: &ObjectId,
        key: &DenialKey,
        bucket: Bucket,
        contribution: Contribution<'_>,
        expires_at: i64,
    ) -> Result<AddOutcome, StoreError> {
        if key.user_id == self.user && self.failing.load(Ordering::SeqCst) {
            return Err(StoreError {
                operation: "PutItem (counter contribution)",
                target: key.to_string(),
                source: "ValidationException: the item is refused".into(),
            });
        }
        self.inner
            .add(object, key, bucket, contribution, expires_at)
            .await
    }

    async fn counts(
        &self,
        key: &DenialKey,
        first: Bucket,
        last: Bucket,
        read: WindowRead,
    ) -> Result<WindowCounts, StoreError> {
        self.inner.counts(key, first, last, read).await
    }
}

impl<S: AlertClaims> AlertClaims for OneKeyFails<S> {
    async fn alert_state(&self, key: &DenialKey) -> Result<Option<AlertState>, StoreError> {
        self.inner.alert_state(key).await
    }

    async fn claim_alert(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        self.inner.claim_alert(key, claim).await
    }

    async fn record_delivery(
        &self,
        key: &DenialKey,
        claim: &AlertClaim,
        sink: &str,
    ) -> Result<(), StoreError> {
        self.inner.record_delivery(key, claim, sink).await
    }

    async fn release_claim(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.inner.release_claim(key, claim).await
    }

    async fn mark_alert_sent(&self, key: &DenialKey, claim: &AlertClaim) -> Result<(), StoreError> {
        self.inner.mark_alert_sent(key, claim).await
    }

    async fn take_alert_slot(
        &self,
        account: &str,
        hour_start: i64,
        max: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .take_alert_slot(account, hour_start, max, expires_at)
            .await
    }
}

bedrock_denied_models::forward_sweep_book_and_source_watch!(OneKeyFails);
bedrock_denied_models::forward_distinct_sets!(OneKeyFails);

/// The function's binary, as built with these tests; `DETECTOR_BIN` names a copy of it
/// (the test command copies it away before another build of the crate replaces it).
pub fn detector_bin() -> std::path::PathBuf {
    std::env::var_os("DETECTOR_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bedrock-denied-models").into())
}
