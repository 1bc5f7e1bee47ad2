//! Shared set-up for the tests that run against the AWS emulator (moto server on
//! loopback, started by `scripts/test`): real SDK clients, one fresh bucket, table,
//! topic and subscribed queue per test.
#![allow(dead_code)]

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use bedrock_denied_models::config::Config;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::lambda::{
    aws_handler, s3_client, sdk_config, AwsHandler, LambdaSettings,
};
use bedrock_denied_models::store::dynamodb::{PARTITION_KEY, SORT_KEY};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

pub const T0: i64 = 1_773_478_800; // 2026-03-14T09:00:00Z
pub const ACCOUNT: &str = "111122223333";
pub const MALLORY: &str = "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory";
pub const MODEL: &str = "anthropic.claude-3-opus-20240229-v1:0";

/// The emulator endpoint, or `None` (skip) outside `scripts/test`. Under
/// `scripts/test` or CI a missing emulator fails the test instead.
pub fn emulator() -> Option<String> {
    let required =
        std::env::var_os("BDM_REQUIRE_EMULATOR").is_some() || std::env::var_os("CI").is_some();
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(u) if u.starts_with("http://127.0.0.1:") || u.starts_with("http://localhost:") => {
            Some(u)
        }
        Ok(u) => {
            panic!("AWS_ENDPOINT_URL={u} is not a loopback emulator; refusing to run against it")
        }
        Err(_) if required => panic!("the AWS emulator is required: run ./scripts/test"),
        Err(_) => {
            eprintln!("skipped: no AWS emulator (run ./scripts/test)");
            None
        }
    }
}

pub struct Stack {
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

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl Stack {
    /// Fresh resources for one test, or `None` when there is no emulator.
    pub async fn new(name: &str) -> Option<Stack> {
        emulator()?;
        let sdk = sdk_config().await;
        let id = unique(name).to_lowercase();
        let stack = Stack {
            s3: s3_client(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            bucket: format!("logs-{id}"),
            table: format!("counters-{id}"),
            topic_name: format!("alerts-{id}"),
            topic_arn: String::new(),
            queue_url: String::new(),
        };
        Some(stack.create().await)
    }

    async fn create(mut self) -> Self {
        self.s3
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("create bucket");
        self.create_table().await;
        self.queue_url = self
            .sqs
            .create_queue()
            .queue_name(format!("q-{}", self.topic_name))
            .send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_string();
        self.create_topic().await;
        self
    }

    /// The table exactly as template.yaml defines its key schema.
    pub async fn create_table(&self) {
        self.ddb
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PARTITION_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attr"),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(SORT_KEY)
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .expect("attr"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PARTITION_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(SORT_KEY)
                    .key_type(KeyType::Range)
                    .build()
                    .expect("key"),
            )
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
        let queue_arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
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
        }
    }

    /// The deployed handler (real clients from the environment) for this stack.
    pub async fn handler(&self) -> AwsHandler {
        aws_handler(self.settings(Config::default())).await
    }

    pub async fn handler_with(&self, config: Config) -> AwsHandler {
        aws_handler(self.settings(config)).await
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("put object");
    }

    /// Every alert delivered to the subscribed queue since the last call: the SNS
    /// envelope (Subject, MessageAttributes) with the alert JSON parsed into "Alert".
    pub async fn alerts(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let msgs = got.messages();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                let mut envelope: Value =
                    serde_json::from_str(m.body().expect("body")).expect("SNS envelope");
                let alert: Value =
                    serde_json::from_str(envelope["Message"].as_str().expect("Message"))
                        .expect("alert JSON");
                envelope["Alert"] = alert;
                out.push(envelope);
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().expect("handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// The stored count of one (key, bucket), read straight from the table.
    pub async fn count(&self, key: &DenialKey, bucket: i64) -> u64 {
        let item = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(
                PARTITION_KEY,
                AttributeValue::S(format!("C#{}", key.digest())),
            )
            .key(SORT_KEY, AttributeValue::N(bucket.to_string()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item");
        item.item()
            .and_then(|i| i.get("denials"))
            .and_then(|v| v.as_n().ok())
            .map_or(0, |n| n.parse().expect("number"))
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

/// One Bedrock invocation-log line.
pub fn line(user: &str, model: &str, account: &str, t: i64, code: Option<&str>) -> String {
    let mut v = json!({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": bedrock_denied_models::alert::rfc3339(t), "accountId": account,
        "identity": {"arn": user}, "region": "us-east-1", "requestId": format!("req-{t}"),
        "operation": "InvokeModel", "modelId": model,
        "input": {"inputBodyJson": {"prompt": "a prompt that must never be logged"}},
    });
    if let Some(c) = code {
        v["errorCode"] = json!(c);
    }
    v.to_string() + "\n"
}

/// Denials by `user` for MODEL at the given times, as a gzip log body.
pub fn denials_gz(user: &str, times: &[i64]) -> Vec<u8> {
    let body: String = times
        .iter()
        .map(|t| line(user, MODEL, ACCOUNT, *t, Some("AccessDeniedException")))
        .collect();
    gzip(body.as_bytes())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn bucket_of(t: i64) -> i64 {
    t.div_euclid(600)
}
