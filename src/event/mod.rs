//! The invocation events the function accepts (docs/DESIGN.md, "Inputs and formats"):
//! S3 notifications (direct, or through SNS), EventBridge "Object Created" events, SQS
//! batches of either, CloudWatch Logs subscription payloads, and `s3:TestEvent`.
//! Parsed leniently: emulators and older senders omit fields the detector does not
//! need.

pub mod cloudwatch_logs;
pub mod housekeeping;

pub use cloudwatch_logs::LogPayload;
pub use housekeeping::skip_reason;

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::Value;

/// One log object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The decoded key, as GetObject wants it.
    pub key: String,
    /// The key as the event spelled it (URL-encoded for S3 notifications).
    pub raw_key: String,
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// The version the event is about (versioned buckets); the read is pinned to it.
    pub version_id: Option<String>,
}

/// One SQS message and the objects its body names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    pub message_id: String,
    /// `Err` with a reason when the body is not an S3 notification.
    pub objects: Result<Vec<ObjectRef>, String>,
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// S3 notification or EventBridge event: fail the invocation on a dependency error.
    Objects(Vec<ObjectRef>),
    /// SQS batch: report failed messages in `batchItemFailures`.
    Sqs(Vec<SqsMessage>),
    /// A CloudWatch Logs subscription payload: its records, one per log event.
    LogEvents(LogPayload),
    /// The scheduled sweep of a log bucket (docs/DESIGN.md, "The sweep").
    Sweep(Sweep),
    /// Acknowledged and ignored (test events, other event types), with the reason.
    Ignored(String),
    /// Acknowledged as bad input (a retry would not fix it), with the reason.
    Malformed(String),
}

/// What the sweep's schedule sends: `{"sweep": {"bucket": ..., "prefix": ...,
/// "lookback_hours": ..., "silent_after_hours": ..., "quiet_accounts": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sweep {
    pub bucket: String,
    #[serde(default = "default_sweep_prefix")]
    pub prefix: String,
    #[serde(default = "default_lookback_hours")]
    pub lookback_hours: u32,
    /// An account that delivered logs but none for this many hours is silent; 0 (the
    /// default) watches no account (docs/DESIGN.md, "Log sources").
    #[serde(default)]
    pub silent_after_hours: u32,
    /// Comma-separated accounts (`*` patterns) expected to be quiet: never silent.
    #[serde(default)]
    pub quiet_accounts: String,
    /// Objects of one account folder one sweep lists at most (docs/DESIGN.md, "The
    /// sweep"): what a member writes into its own folder cannot hold the sweep up.
    #[serde(default = "default_max_listed_per_account")]
    pub max_listed_per_account: usize,
}

/// Objects of one account folder one sweep lists at most, unless the request says.
pub const SWEEP_MAX_LISTED_PER_ACCOUNT: usize = 10_000;

fn default_max_listed_per_account() -> usize {
    SWEEP_MAX_LISTED_PER_ACCOUNT
}

fn default_sweep_prefix() -> String {
    "AWSLogs/".into()
}

fn default_lookback_hours() -> u32 {
    6
}

/// S3 notification keys are URL-encoded: `+` is a space, then `%XX` escapes.
pub fn decode_s3_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Option<Named>,
    object: Option<S3Object>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct S3Object {
    key: Option<String>,
    size: Option<u64>,
    #[serde(rename = "eTag", alias = "etag")]
    etag: Option<String>,
    #[serde(rename = "versionId", alias = "version-id")]
    version_id: Option<String>,
}

#[derive(Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: Option<String>,
    body: Option<String>,
}

/// Classifies and parses one invocation event.
pub fn parse_invocation(event: &Value) -> Invocation {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Invocation::Ignored("s3:TestEvent".into());
    }
    if let Some(detail_type) = event.get("detail-type").and_then(Value::as_str) {
        return parse_eventbridge(event, detail_type);
    }
    if let Some(awslogs) = event.get("awslogs") {
        return parse_awslogs(awslogs);
    }
    if let Some(sweep) = event.get("sweep") {
        return match Sweep::deserialize(sweep) {
            Ok(s)
                if !s.bucket.is_empty()
                    && (1..=168).contains(&s.lookback_hours)
                    && s.silent_after_hours <= 24 * 7 =>
            {
                Invocation::Sweep(s)
            }
            Ok(_) => Invocation::Malformed(
                "sweep needs a bucket, 1 to 168 lookback hours and at most 168 silent hours".into(),
            ),
            Err(e) => Invocation::Malformed(format!("malformed sweep request: {e}")),
        };
    }
    if event.get("Type").and_then(Value::as_str) == Some("Notification") {
        return parse_sns_message(event.get("Message"));
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Invocation::Ignored(
            "not an S3, EventBridge, SQS, SNS or CloudWatch Logs event".into(),
        );
    };
    let first = records.first();
    let source = |name: &str| first.and_then(|r| r.get(name)).and_then(Value::as_str);
    if source("eventSource") == Some("aws:sqs") {
        return Invocation::Sqs(records.iter().map(parse_sqs_record).collect());
    }
    if source("EventSource") == Some("aws:sns") {
        // S3 notifications fanned out through an SNS topic: one message per record.
        let mut objects = Vec::new();
        for r in records {
            match parse_sns_message(r.pointer("/Sns/Message")) {
                Invocation::Objects(o) => objects.extend(o),
                Invocation::Ignored(_) => {}
                other => return other,
            }
        }
        return if objects.is_empty() {
            Invocation::Ignored("SNS messages without object-created records".into())
        } else {
            Invocation::Objects(objects)
        };
    }
    match parse_s3_records(records) {
        Ok(objects) if objects.is_empty() => {
            Invocation::Ignored("no object-created records".into())
        }
        Ok(objects) => Invocation::Objects(objects),
        Err(reason) => Invocation::Ignored(reason),
    }
}

/// The S3 notification inside an SNS message (`Message` is a JSON string).
fn parse_sns_message(message: Option<&Value>) -> Invocation {
    let Some(text) = message.and_then(Value::as_str) else {
        return Invocation::Malformed("SNS notification without a Message".into());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(inner) if inner.get("Type").is_none() => parse_invocation(&inner),
        Ok(_) => Invocation::Malformed("nested SNS notification".into()),
        Err(e) => Invocation::Ignored(format!("SNS message is not JSON: {e}")),
    }
}

fn parse_awslogs(awslogs: &Value) -> Invocation {
    let Some(data) = awslogs.get("data").and_then(Value::as_str) else {
        return Invocation::Malformed("awslogs without data".into());
    };
    match cloudwatch_logs::decode(data) {
        Ok(p) if p.is_control_message() => {
            Invocation::Ignored("CloudWatch Logs control message".into())
        }
        Ok(p) => Invocation::LogEvents(p),
        Err(reason) => Invocation::Malformed(reason),
    }
}

fn parse_eventbridge(event: &Value, detail_type: &str) -> Invocation {
    if event.get("source").and_then(Value::as_str) != Some("aws.s3")
        || detail_type != "Object Created"
    {
        return Invocation::Ignored(format!("EventBridge event {detail_type:?} ignored"));
    }
    let detail = event.get("detail");
    let bucket = detail
        .and_then(|d| d.pointer("/bucket/name"))
        .and_then(Value::as_str);
    let object = detail
        .and_then(|d| d.get("object"))
        .and_then(|o| S3Object::deserialize(o).ok());
    match (bucket, object) {
        (Some(bucket), Some(o)) => match object_ref(bucket.to_string(), o) {
            Some(r) => Invocation::Objects(vec![r]),
            None => Invocation::Ignored("EventBridge event without object key".into()),
        },
        _ => Invocation::Ignored("EventBridge event without bucket or object".into()),
    }
}

fn object_ref(bucket: String, o: S3Object) -> Option<ObjectRef> {
    let raw_key = o.key.filter(|k| !k.is_empty())?;
    Some(ObjectRef {
        bucket,
        key: decode_s3_key(&raw_key),
        raw_key,
        size: o.size,
        etag: o.etag.filter(|e| !e.is_empty()),
        // "null" names the null version of an unversioned or suspended bucket: the read
        // is then not pinned and its identity is the ETag read.
        version_id: o.version_id.filter(|v| !v.is_empty() && v != "null"),
    })
}

/// Object-created records of an S3 notification; other event names are dropped.
fn parse_s3_records(records: &[Value]) -> Result<Vec<ObjectRef>, String> {
    let mut out = Vec::new();
    for r in records {
        let rec = S3Record::deserialize(r).map_err(|e| format!("malformed S3 record: {e}"))?;
        if rec.event_source.as_deref().is_some_and(|s| s != "aws:s3") {
            return Err(format!("records from {:?} ignored", rec.event_source));
        }
        if rec
            .event_name
            .as_deref()
            .is_some_and(|n| !n.starts_with("ObjectCreated"))
        {
            continue;
        }
        let Some(s3) = rec.s3 else {
            return Err("S3 record without s3 entity".into());
        };
        let bucket = s3.bucket.and_then(|b| b.name).filter(|b| !b.is_empty());
        match (bucket, s3.object) {
            (Some(bucket), Some(o)) => match object_ref(bucket, o) {
                Some(r) => out.push(r),
                None => return Err("S3 record without object key".into()),
            },
            _ => return Err("S3 record without bucket or object".into()),
        }
    }
    Ok(out)
}

fn parse_sqs_record(r: &Value) -> SqsMessage {
    let rec = SqsRecord::deserialize(r).ok();
    let message_id = rec
        .as_ref()
        .and_then(|r| r.message_id.clone())
        .unwrap_or_default();
    let objects = match rec.and_then(|r| r.body) {
        None => Err("SQS message without body".to_string()),
        Some(body) => match serde_json::from_str::<Value>(&body) {
            Err(e) => Err(format!("SQS body is not JSON: {e}")),
            Ok(v) => match parse_invocation(&v) {
                Invocation::Objects(o) => Ok(o),
                Invocation::Ignored(reason) | Invocation::Malformed(reason) => Err(reason),
                Invocation::Sqs(_) => Err("nested SQS event".to_string()),
                Invocation::LogEvents(_) => Err("CloudWatch Logs payload in SQS".to_string()),
                Invocation::Sweep(_) => Err("sweep request in SQS".to_string()),
            },
        },
    };
    SqsMessage {
        message_id,
        objects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-03-14T09:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:X"},
            "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": "logs", "arn": "arn:aws:s3:::logs"},
                   "object": {"key": key, "size": 10, "eTag": "abc", "sequencer": "1"}}
        }]})
    }

    #[test]
    fn keys_are_url_decoded() {
        assert_eq!(decode_s3_key("a+b%2Bc%20d%3A%40%C3%A9"), "a b+c d:@é");
        assert_eq!(decode_s3_key("plain/key.json.gz"), "plain/key.json.gz");
        assert_eq!(decode_s3_key("bad%ZZ%"), "bad%ZZ%");
    }

    #[test]
    fn s3_notification() {
        let inv = parse_invocation(&s3_event("AWSLogs/1/x+y%3D1.json.gz"));
        let Invocation::Objects(o) = inv else {
            panic!("{inv:?}")
        };
        assert_eq!(o[0].bucket, "logs");
        assert_eq!(o[0].key, "AWSLogs/1/x y=1.json.gz");
        assert_eq!(o[0].raw_key, "AWSLogs/1/x+y%3D1.json.gz");
        assert_eq!(o[0].etag.as_deref(), Some("abc"));
        assert_eq!(o[0].size, Some(10));
    }

    #[test]
    fn minimal_records_from_emulators() {
        let ev = json!({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        let Invocation::Objects(o) = parse_invocation(&ev) else {
            panic!()
        };
        assert_eq!((o[0].bucket.as_str(), o[0].key.as_str()), ("b", "k"));
        assert_eq!(o[0].etag, None);
    }

    #[test]
    fn eventbridge_object_created() {
        let ev = json!({"version": "0", "id": "1", "detail-type": "Object Created",
            "source": "aws.s3", "account": "1", "time": "2026-03-14T09:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:s3:::logs"],
            "detail": {"version": "0", "bucket": {"name": "logs"},
                       "object": {"key": "a/b.json.gz", "size": 5, "etag": "e", "version-id": "v1"},
                       "reason": "PutObject"}});
        let Invocation::Objects(o) = parse_invocation(&ev) else {
            panic!()
        };
        assert_eq!(o[0].key, "a/b.json.gz");
        assert_eq!(o[0].version_id.as_deref(), Some("v1"));
        let other = json!({"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}});
        assert!(matches!(parse_invocation(&other), Invocation::Ignored(_)));
    }

    #[test]
    fn sqs_batch_with_a_bad_message() {
        let ev = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": s3_event("k1").to_string()},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": "not json"},
            {"messageId": "m3", "eventSource": "aws:sqs",
             "body": json!({"Event": "s3:TestEvent", "Bucket": "b"}).to_string()},
        ]});
        let Invocation::Sqs(m) = parse_invocation(&ev) else {
            panic!()
        };
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0].objects.as_ref().map(|o| o[0].key.clone()),
            Ok("k1".into())
        );
        assert!(m[1].objects.is_err());
        assert_eq!(m[2].objects, Err("s3:TestEvent".into()));
    }

    #[test]
    fn shipped_sample_events_parse() {
        let fixture = |text: &str| serde_json::from_str::<Value>(text).expect("fixture JSON");
        let Invocation::Objects(o) =
            parse_invocation(&fixture(include_str!("../../events/s3-put.json")))
        else {
            panic!("s3-put.json")
        };
        assert!(o[0]
            .key
            .ends_with("20260314T091000Z_5d3c1a9e7b2f4e68.json.gz"));
        let Invocation::Objects(o) = parse_invocation(&fixture(include_str!(
            "../../events/s3-put-encoded-key.json"
        ))) else {
            panic!("s3-put-encoded-key.json")
        };
        assert_eq!(
            o[0].key,
            "exports/team a/b/bedrock invocations:2026-03-14.json"
        );
        let Invocation::Objects(o) = parse_invocation(&fixture(include_str!(
            "../../events/eventbridge-object-created.json"
        ))) else {
            panic!("eventbridge-object-created.json")
        };
        assert_eq!(o[0].bucket, "cloudtrail-logs-111122223333");
        let Invocation::Sqs(m) =
            parse_invocation(&fixture(include_str!("../../events/sqs-batch.json")))
        else {
            panic!("sqs-batch.json")
        };
        assert_eq!(m.len(), 3);
        assert!(m[0].objects.is_ok() && m[1].objects.is_ok());
        assert_eq!(m[2].objects, Err("s3:TestEvent".into()));
        assert_eq!(
            parse_invocation(&fixture(include_str!("../../events/s3-test-event.json"))),
            Invocation::Ignored("s3:TestEvent".into())
        );
    }

    #[test]
    fn s3_notifications_through_sns_directly_or_through_sqs() {
        let envelope = json!({"Type": "Notification", "MessageId": "1",
            "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": s3_event("k1").to_string()});
        let Invocation::Objects(o) = parse_invocation(&envelope) else {
            panic!("envelope")
        };
        assert_eq!(o[0].key, "k1");
        let direct = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": s3_event("k2").to_string()}}]});
        let Invocation::Objects(o) = parse_invocation(&direct) else {
            panic!("direct")
        };
        assert_eq!(o[0].key, "k2");
        let via_sqs = json!({"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": envelope.to_string()}]});
        let Invocation::Sqs(m) = parse_invocation(&via_sqs) else {
            panic!("sqs")
        };
        assert_eq!(
            m[0].objects.as_ref().map(|o| o[0].key.clone()),
            Ok("k1".into())
        );
    }

    #[test]
    fn a_null_version_id_is_no_version() {
        let mut e = s3_event("k");
        e["Records"][0]["s3"]["object"]["versionId"] = json!("null");
        let Invocation::Objects(o) = parse_invocation(&e) else {
            panic!()
        };
        assert_eq!(o[0].version_id, None);
        e["Records"][0]["s3"]["object"]["versionId"] = json!("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY");
        let Invocation::Objects(o) = parse_invocation(&e) else {
            panic!()
        };
        assert_eq!(
            o[0].version_id.as_deref(),
            Some("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
        );
    }

    #[test]
    fn sweep_requests() {
        assert_eq!(
            parse_invocation(&json!({"sweep": {"bucket": "logs", "lookback_hours": 3}})),
            Invocation::Sweep(Sweep {
                bucket: "logs".into(),
                prefix: "AWSLogs/".into(),
                lookback_hours: 3,
                silent_after_hours: 0,
                quiet_accounts: String::new(),
                max_listed_per_account: SWEEP_MAX_LISTED_PER_ACCOUNT,
            })
        );
        assert!(matches!(
            parse_invocation(&json!({"sweep": {"bucket": ""}})),
            Invocation::Malformed(_)
        ));
        assert!(matches!(
            parse_invocation(&json!({"sweep": "all"})),
            Invocation::Malformed(_)
        ));
    }

    #[test]
    fn test_event_and_others_are_ignored() {
        let t = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        assert_eq!(
            parse_invocation(&t),
            Invocation::Ignored("s3:TestEvent".into())
        );
        assert!(matches!(
            parse_invocation(&json!({"hello": 1})),
            Invocation::Ignored(_)
        ));
        assert!(matches!(
            parse_invocation(&json!([1, 2])),
            Invocation::Ignored(_)
        ));
        let removed = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        assert!(matches!(parse_invocation(&removed), Invocation::Ignored(_)));
    }
}
