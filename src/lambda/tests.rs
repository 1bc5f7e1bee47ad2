use super::*;
use crate::alert::MemorySink;
use crate::config::Config;
use crate::errors::Context;
use crate::key::DenialKey;
use crate::objects::{KeyRange, MemorySource, OpenedObject};
use crate::store::memory::MemoryStore;
use crate::store::SourceWatch;
use crate::testing::{answer, denials, record, ACCOUNT, DENIED, MALLORY, MODEL, T0};
use serde_json::json;
use std::time::{Duration, Instant};

fn s3_event(keys: &[&str]) -> Value {
    json!({"Records": keys.iter().map(|k| json!({
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "logs"}, "object": {"key": k, "size": 100, "eTag": "e"}}
    })).collect::<Vec<_>>()})
}

fn versioned_event(key: &str, version: &str) -> Value {
    let mut e = s3_event(&[key]);
    e["Records"][0]["s3"]["object"]["versionId"] = json!(version);
    e
}

/// A handler over memory, and what its one sink delivered.
struct Tested<O> {
    handler: Handler<MemoryStore, O>,
    sink: MemorySink,
}

impl<O> std::ops::Deref for Tested<O> {
    type Target = Handler<MemoryStore, O>;

    fn deref(&self) -> &Self::Target {
        &self.handler
    }
}

impl<O> Tested<O> {
    fn sink(&self) -> &MemorySink {
        &self.sink
    }
}

fn handler<O: ObjectSource>(source: O) -> Tested<O> {
    let sink = MemorySink::new();
    let d = Detector::new(Config::default(), MemoryStore::new(), sink.clone()).with_clock(|| T0);
    Tested {
        handler: Handler::new(d, source, "test"),
        sink,
    }
}

#[tokio::test]
async fn s3_event_with_encoded_key_alerts() {
    let src = MemorySource::new();
    src.put("logs", "AWSLogs/1/a b+c.json", denials(MALLORY, &[T0; 4]));
    let h = handler(src);
    let out = h
        .handle(s3_event(&["AWSLogs/1/a+b%2Bc.json"]))
        .await
        .expect("ok");
    assert_eq!(answer(out), json!({"objects": 1}));
    assert_eq!(h.sink().alerts().len(), 1);
}

#[tokio::test]
async fn each_version_is_read_as_the_event_names_it_and_counted_once() {
    // v1: 2 denials at 08:00; v2: 1 denial at 08:01, in the same bucket. Events for
    // each, twice, any order.
    let src = MemorySource::new();
    let v1 = src.put("logs", "k.json", denials(MALLORY, &[T0 - 3600, T0 - 3599]));
    let v2 = src.put("logs", "k.json", denials(MALLORY, &[T0 - 3540]));
    let h = handler(src);
    for v in [&v2, &v1, &v1, &v2] {
        h.handle(versioned_event("k.json", v)).await.expect("ok");
    }
    let key = DenialKey::new(MALLORY, MODEL, ACCOUNT);
    let store = h.detector().store();
    assert_eq!(store.count(&key, crate::testing::bucket_of(T0 - 3600)), 3);
    assert!(h.sink().alerts().is_empty());
}

#[tokio::test]
async fn a_version_that_no_longer_exists_is_acknowledged_as_missing() {
    let src = MemorySource::new();
    src.put("logs", "k.json", denials(MALLORY, &[T0]));
    let h = handler(src);
    let out = h.handle(versioned_event("k.json", "v9")).await.expect("ok");
    assert_eq!(answer(out), json!({"objects": 1}));
    assert!(h.detector().store().snapshot().is_empty());
}

#[tokio::test]
async fn missing_and_housekeeping_objects_are_acknowledged() {
    let h = handler(MemorySource::new());
    let out = h
        .handle(s3_event(&[
            "gone.json",
            "x/amazon-bedrock-logs-permission-check",
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data/big.json.gz",
        ]))
        .await
        .expect("bad objects do not fail the invocation");
    assert_eq!(answer(out), json!({"objects": 3}));
}

#[tokio::test]
async fn malformed_and_control_payloads_are_acknowledged() {
    let h = handler(MemorySource::new());
    let out = h
        .handle(json!({"awslogs": {"data": "not base64 !"}}))
        .await
        .expect("acknowledged");
    assert!(answer(out)["malformed"]
        .as_str()
        .is_some_and(|m| m.contains("base64")));
    let control = crate::testing::awslogs_data(
        &json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
                "logGroup": "", "logStream": "", "subscriptionFilters": [],
                "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda."}]})
            .to_string(),
    );
    let out = h
        .handle(json!({"awslogs": {"data": control}}))
        .await
        .expect("acknowledged");
    assert_eq!(
        answer(out),
        json!({"ignored": "CloudWatch Logs control message"})
    );
}

/// JSON lines of four denials by a principal of `account` that claim `account`.
fn claiming(account: &str) -> String {
    let mallory = MALLORY.replace(ACCOUNT, account);
    (0..4)
        .map(|i| {
            record(
                &mallory,
                MODEL,
                account,
                T0 + i,
                Some(DENIED),
                &format!("r{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect()
}

#[tokio::test]
async fn a_record_speaks_only_for_the_account_whose_folder_holds_it() {
    let victim = "444455556666";
    let src = MemorySource::new();
    // Written into account 111122223333's folder, claiming another account.
    let forged =
        "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/forged.json";
    src.put("logs", forged, claiming(victim));
    let real =
        format!("AWSLogs/{victim}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/real.json");
    src.put("logs", &real, claiming(victim));
    let h = handler(src);
    h.handle(s3_event(&[forged])).await.expect("ok");
    assert!(h.sink().alerts().is_empty(), "no forged alert");
    assert!(
        h.detector().store().snapshot().is_empty(),
        "nothing counted"
    );
    // The victim's real burst is neither suppressed nor inflated by the forgery.
    h.handle(s3_event(&[&real])).await.expect("ok");
    let alerts = h.sink().alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].account_id.as_str(), alerts[0].total_denials),
        (victim, 4)
    );
}

#[tokio::test]
async fn a_members_records_cannot_make_another_accounts_calls_count_less() {
    let victim = "444455556666";
    let victims_principal = MALLORY.replace(ACCOUNT, victim);
    let src = MemorySource::new();
    // The member copies the victim's four calls (request ids r0..r3) into CloudTrail
    // files of its own folder: once as the victim's records, once as its own
    // principal's.
    let trail = |user: &str, account: &str| {
        let records: Vec<Value> = (0..4)
            .map(|i| {
                let mut r = crate::testing::trail_denial(user, i);
                r["userIdentity"]["accountId"] = json!(account);
                r["recipientAccountId"] = json!(account);
                r
            })
            .collect();
        json!({ "Records": records }).to_string()
    };
    let folder = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/14";
    let forged = format!("{folder}/111122223333_CloudTrail_us-east-1_20260314T0900Z_a.json");
    src.put("logs", &forged, trail(&victims_principal, victim));
    let copied = format!("{folder}/111122223333_CloudTrail_us-east-1_20260314T0900Z_b.json");
    src.put("logs", &copied, trail(MALLORY, ACCOUNT));
    let real =
        format!("AWSLogs/{victim}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/real.json");
    src.put("logs", &real, claiming(victim));
    let h = handler(src);
    h.handle(s3_event(&[&forged, &copied])).await.expect("ok");
    // The victim's invocation log still counts its four calls: one alert of 4.
    h.handle(s3_event(&[&real])).await.expect("ok");
    let alerts = h.sink().alerts();
    let of_victim: Vec<_> = alerts.iter().filter(|a| a.account_id == victim).collect();
    assert_eq!(of_victim.len(), 1, "{alerts:?}");
    assert_eq!(of_victim[0].total_denials, 4);
}

#[tokio::test]
async fn a_cloudwatch_logs_payload_speaks_only_for_its_owner() {
    let messages: Vec<Value> = (0..4)
        .map(|i| {
            json!({"id": format!("{i}"), "timestamp": 0,
                   "message": record(MALLORY, MODEL, "444455556666", T0 + i, Some(DENIED), "r").to_string()})
        })
        .collect();
    let payload = json!({"messageType": "DATA_MESSAGE", "owner": ACCOUNT,
        "logGroup": "/aws/bedrock", "logStream": "s", "subscriptionFilters": [],
        "logEvents": messages});
    let h = handler(MemorySource::new());
    h.handle(json!({"awslogs": {"data": crate::testing::awslogs_data(&payload.to_string())}}))
        .await
        .expect("ok");
    assert!(h.sink().alerts().is_empty());
    assert!(h.detector().store().snapshot().is_empty());
}

#[test]
fn settings_require_table_and_topic() {
    let e = LambdaSettings::from_vars(|_| None).expect_err("missing");
    assert_eq!(e.name, "COUNTER_TABLE");
    let e = LambdaSettings::from_vars(|k| (k == "COUNTER_TABLE").then(|| "t".to_string()))
        .expect_err("missing");
    assert_eq!(e.name, "ALERT_TOPIC_ARN");
    let e = LambdaSettings::from_vars(|k| match k {
        "COUNTER_TABLE" | "ALERT_TOPIC_ARN" => Some("x".into()),
        "WINDOW_BUCKETS" => Some("zero".into()),
        _ => None,
    })
    .expect_err("bad");
    assert_eq!(e.name, "WINDOW_BUCKETS");
}

#[tokio::test]
async fn dependency_failures_fail_the_invocation_or_the_sqs_message() {
    let src = MemorySource::new();
    src.put("logs", "ok.json", denials(MALLORY, &[T0, T0]));
    let h = handler(FailingKeys(src, "fail"));
    let err = h
        .handle(s3_event(&["ok.json", "fail.json"]))
        .await
        .expect_err("fails");
    let text = error_chain(&err);
    assert!(text.contains("1 of 2 objects failed"), "{text}");
    assert!(text.contains("s3://logs/fail.json"), "{text}");
    assert!(text.contains("Access Denied"), "the cause is kept: {text}");

    let sqs = json!({"Records": [
        {"messageId": "m-ok", "eventSource": "aws:sqs", "body": s3_event(&["ok.json"]).to_string()},
        {"messageId": "m-fail", "eventSource": "aws:sqs", "body": s3_event(&["fail.json"]).to_string()},
        {"messageId": "m-junk", "eventSource": "aws:sqs", "body": "junk"},
    ]});
    let out = h
        .handle(sqs)
        .await
        .expect("SQS batches answer with failures");
    assert_eq!(
        answer(out),
        json!({"batchItemFailures": [{"itemIdentifier": "m-fail"}]})
    );
}

#[test]
fn the_listed_variables_are_the_ones_the_settings_read() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let settings = LambdaSettings::from_vars(|name| {
        asked.borrow_mut().insert(name.to_string());
        match name {
            "SECURITY_HUB" => Some("true".into()),
            "ACCOUNT_ID" => Some("111122223333".into()),
            "COUNTER_TABLE" | "ALERT_TOPIC_ARN" | "EVENT_BUS_NAME" => Some("x".into()),
            _ => None,
        }
    });
    assert!(settings.is_ok(), "{settings:?}");
    let runtime = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION"];
    let expected: std::collections::BTreeSet<String> = VARIABLES
        .iter()
        .chain(&crate::config::VARIABLES)
        .chain(&runtime)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(asked.into_inner(), expected);
}

fn watching(quiet: &str) -> crate::event::Sweep {
    crate::event::Sweep {
        bucket: "logs".into(),
        prefix: "AWSLogs/".into(),
        lookback_hours: 1,
        silent_after_hours: 6,
        quiet_accounts: quiet.into(),
        max_listed_per_account: crate::event::SWEEP_MAX_LISTED_PER_ACCOUNT,
    }
}

#[tokio::test]
async fn an_account_gone_silent_is_told_once_then_resumed_and_a_quiet_one_never() {
    let h = handler(MemorySource::new());
    let store = h.detector().store();
    let (watched, quiet) = ("111122223333", "444455556666");
    let (watched_source, quiet_source) =
        (format!("{watched}:us-east-1"), format!("{quiet}:us-east-1"));
    store.source_seen(&watched_source, T0).await.expect("seen");
    store.source_seen(&quiet_source, T0).await.expect("seen");
    let req = watching(quiet);
    let sweep = |now| {
        let (h, req) = (&h, &req);
        async move { h.sweep(req, now, &mut Counts::default(), None).await }
    };

    let r = sweep(T0 + 5 * 3600).await.expect("sweep");
    assert_eq!((r.sources_watched, r.source_notices), (1, 0), "not yet");
    let r = sweep(T0 + 6 * 3600).await.expect("sweep");
    assert_eq!((r.sources_silent, r.source_notices), (1, 1));
    let notices = h.sink().notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].account_id, watched);
    assert_eq!(notices[0].status, crate::silence::SourceStatus::Silent);
    let r = sweep(T0 + 9 * 3600).await.expect("sweep");
    assert_eq!((r.sources_silent, r.source_notices), (1, 0), "told once");

    store
        .source_seen(&watched_source, T0 + 10 * 3600)
        .await
        .expect("seen again");
    let r = sweep(T0 + 10 * 3600 + 60).await.expect("sweep");
    assert_eq!((r.sources_silent, r.source_notices), (0, 1));
    let notices = h.sink().notices();
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[1].status, crate::silence::SourceStatus::Resumed);
    assert!(
        notices.iter().all(|n| n.account_id != quiet),
        "a quiet account is never reported"
    );
}

#[tokio::test]
async fn objects_with_records_mark_their_account_and_region_as_seen() {
    let src = MemorySource::new();
    let trail = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/14/t.json";
    let record = crate::testing::cloudtrail_record(MALLORY, MODEL, T0, "InvokeModel", None, "r");
    src.put("logs", trail, json!({"Records": [record]}).to_string());
    // Keys alone, empty documents and garbage say nothing of a Region delivering.
    let nothing = [
        (
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/14/e.json",
            "{\"Records\": []}".to_string(),
        ),
        (
            "AWSLogs/111122223333/BedrockModelInvocationLogs/eu-west-1/2026/03/14/09/g.json",
            "not json\n".to_string(),
        ),
        (
            "AWSLogs/111122223333/notes/us-west-2/x.json",
            denials(MALLORY, &[T0]),
        ),
    ];
    for (key, body) in &nothing {
        src.put("logs", key, body.clone());
    }
    let h = handler(src);
    h.handle(s3_event(&[trail])).await.expect("ok");
    for (key, _) in &nothing {
        h.handle(s3_event(&[key])).await.expect("ok");
    }
    let sources = h.detector().store().log_sources().await.expect("sources");
    let names: Vec<&str> = sources.iter().map(|s| s.account.as_str()).collect();
    assert_eq!(names, ["111122223333:us-east-1"]);
    assert!(sources[0].last_seen > 0);
}

#[tokio::test]
async fn one_region_that_stops_is_told_while_the_accounts_others_deliver() {
    let h = handler(MemorySource::new());
    let store = h.detector().store();
    store
        .source_seen("111122223333:us-east-1", T0)
        .await
        .expect("seen");
    store
        .source_seen("111122223333:eu-west-1", T0)
        .await
        .expect("seen");
    // us-east-1 keeps delivering; eu-west-1 stops.
    for hour in 1..=6 {
        store
            .source_seen("111122223333:us-east-1", T0 + hour * 3600)
            .await
            .expect("seen");
    }
    let r = h
        .sweep(
            &watching(""),
            T0 + 6 * 3600 + 60,
            &mut Counts::default(),
            None,
        )
        .await
        .expect("sweep");
    assert_eq!((r.sources_watched, r.source_notices), (2, 1), "{r:?}");
    let notices = h.sink().notices();
    assert_eq!(
        (notices[0].account_id.as_str(), notices[0].region.as_str()),
        ("111122223333", "eu-west-1")
    );
    assert!(notices[0].subject().contains("eu-west-1"));
    // A Region expected to be quiet is named as `account:region`.
    let h = handler(MemorySource::new());
    let store = h.detector().store();
    store
        .source_seen("111122223333:eu-west-1", T0)
        .await
        .expect("seen");
    let r = h
        .sweep(
            &watching("111122223333:eu-west-1"),
            T0 + 7 * 3600,
            &mut Counts::default(),
            None,
        )
        .await
        .expect("sweep");
    assert_eq!((r.sources_watched, r.source_notices), (0, 0), "{r:?}");
}

/// A sweep request over the last `hours` hours, watching no account.
fn sweep_of(hours: u32) -> crate::event::Sweep {
    crate::event::Sweep {
        lookback_hours: hours,
        silent_after_hours: 0,
        ..watching("")
    }
}

/// `AWSLogs/<account>/BedrockModelInvocationLogs/us-east-1/<hour of now>/<name>`.
fn recent_key(folder: &str, name: &str) -> String {
    let t = chrono::Utc::now();
    format!(
        "{folder}BedrockModelInvocationLogs/us-east-1/{}/{name}",
        t.format("%Y/%m/%d/%H")
    )
}

#[tokio::test]
async fn a_sweep_that_stops_early_continues_where_it_left_off() {
    // Twelve accounts with 60 new objects each: 720, over one sweep's 500, and each
    // over an account's share of 50.
    let src = MemorySource::new();
    let accounts: Vec<String> = (1..=12).map(|i| format!("{:012}", i * 1_000_000)).collect();
    for account in &accounts {
        for i in 0..60 {
            let key = recent_key(&format!("AWSLogs/{account}/"), &format!("{i:03}.json"));
            src.put("logs", &key, denials(MALLORY, &[T0]));
        }
    }
    assert_eq!(sweep::SWEEP_MAX_OBJECTS_PER_ACCOUNT, 50);
    let h = handler(src);
    let now = chrono::Utc::now().timestamp();
    let mut metrics = Counts::default();
    let first = h
        .sweep(&sweep_of(1), now, &mut metrics, None)
        .await
        .expect("sweep");
    assert_eq!(first.accounts, 12);
    assert_eq!(first.processed as usize, sweep::SWEEP_MAX_OBJECTS);
    assert_eq!(
        (first.accounts_over_share, first.left_for_next_sweep),
        (10, 100),
        "ten accounts had their share: {first:?}"
    );
    assert_eq!(first.accounts_swept, 0);
    let eleventh = format!("AWSLogs/{}/", accounts[10]);
    assert_eq!(first.continues_at.as_deref(), Some(eleventh.as_str()));
    let second = h
        .sweep(&sweep_of(1), now, &mut metrics, None)
        .await
        .expect("sweep");
    assert_eq!(
        second.processed, 200,
        "the two not reached get their share, then the ten the rest: {second:?}"
    );
    assert_eq!((second.accounts_swept, second.accounts_over_share), (10, 2));
    assert_eq!(second.continues_at, None, "went through");
    let third = h
        .sweep(&sweep_of(1), now, &mut metrics, None)
        .await
        .expect("sweep");
    assert_eq!((third.processed, third.already_processed), (20, 700));
    assert_eq!(third.accounts_swept, 12);
    // Out of time before anything: nothing processed, and the next sweep starts where
    // this one would have.
    let src = MemorySource::new();
    src.put(
        "logs",
        &recent_key("AWSLogs/111111111111/", "a.json"),
        denials(MALLORY, &[T0]),
    );
    let h = handler(src);
    let past = Instant::now();
    let r = h
        .sweep(&sweep_of(1), now, &mut metrics, Some(past))
        .await
        .expect("sweep");
    assert_eq!(
        (r.processed, r.continues_at.as_deref()),
        (0, Some("AWSLogs/111111111111/"))
    );
}

#[tokio::test]
async fn an_account_flooding_its_folder_cannot_hold_the_sweep_up() {
    // One account writes more objects than a sweep lists of an account, and some dated
    // in the future; another account has one object the sweep must reach.
    let src = MemorySource::new();
    let flooded = "AWSLogs/111111111111/";
    for i in 0..5 {
        let key = recent_key(flooded, &format!("{i}.json"));
        src.put("logs", &key, denials(MALLORY, &[T0]));
    }
    let future = format!("{flooded}BedrockModelInvocationLogs/us-east-1/2099/01/01/00/x.json");
    src.put("logs", &future, denials(MALLORY, &[T0]));
    let other = recent_key("AWSLogs/222222222222/", "a.json");
    src.put("logs", &other, denials(MALLORY, &[T0]));
    let h = handler(src);
    let now = chrono::Utc::now().timestamp();
    let req = crate::event::Sweep {
        max_listed_per_account: 3,
        ..sweep_of(1)
    };
    let mut metrics = Counts::default();
    let r = h.sweep(&req, now, &mut metrics, None).await.expect("sweep");
    assert_eq!(r.listings_cut, 1, "{r:?}");
    assert_eq!(metrics.sweep_listings_cut, 1);
    assert_eq!(
        r.objects_listed, 4,
        "3 of the flooded account, 1 of the other: {r:?}"
    );
    assert_eq!((r.accounts_swept, r.processed), (2, 4), "{r:?}");
    assert_eq!(r.continues_at, None);
}

#[tokio::test]
async fn one_sweep_sends_a_bounded_number_of_notices_and_the_next_the_rest() {
    let h = handler(MemorySource::new());
    let store = h.detector().store();
    let total = sweep::MAX_NOTICES_PER_SWEEP + 5;
    for i in 0..total {
        store
            .source_seen(&format!("{:012}:us-east-1", 100_000_000_000 + i), T0)
            .await
            .expect("seen");
    }
    let req = watching("");
    let now = T0 + 7 * 3600;
    let first = h
        .sweep(&req, now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!(
        (first.source_notices, first.notices_left),
        (sweep::MAX_NOTICES_PER_SWEEP, 5)
    );
    let second = h
        .sweep(&req, now + 900, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!((second.source_notices, second.notices_left), (5, 0));
    assert_eq!(
        h.sink().notices().len() as u64,
        total,
        "each account told once"
    );
}

#[tokio::test]
async fn the_sweep_lists_organization_trails_too() {
    let src = MemorySource::new();
    let day = chrono::Utc::now().format("%Y/%m/%d");
    let key = format!("AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail/us-east-1/{day}/trail.json");
    let trail = json!({"Records": [crate::testing::cloudtrail_record(MALLORY, MODEL, T0, "InvokeModel", Some("AccessDenied"), "c")]});
    src.put("logs", &key, trail.to_string());
    let h = handler(src);
    let now = chrono::Utc::now().timestamp();
    let r = h
        .sweep(&sweep_of(1), now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!((r.accounts, r.processed), (1, 1), "{r:?}");
    let key = DenialKey::new(MALLORY, MODEL, ACCOUNT);
    assert_eq!(
        h.detector()
            .store()
            .count(&key, crate::testing::bucket_of(T0)),
        1
    );
    // The next sweep knows the account's Region folders: it lists only their objects.
    let again = h
        .sweep(&sweep_of(1), now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!((again.processed, again.already_processed), (0, 1));
    assert_eq!(
        r.prefixes_listed, 5,
        "top, organization, account, service, Region"
    );
    assert_eq!(again.prefixes_listed, 3, "top, organization, Region");
}

#[tokio::test]
async fn an_object_the_sweep_keeps_failing_on_is_given_up_after_three_tries() {
    let src = MemorySource::new();
    let folder = format!("AWSLogs/{ACCOUNT}/");
    src.put(
        "logs",
        &recent_key(&folder, "fail-x.json"),
        denials(MALLORY, &[T0]),
    );
    src.put(
        "logs",
        &recent_key(&folder, "ok.json"),
        denials(MALLORY, &[T0]),
    );
    let h = handler(FailingKeys(src, "fail-x"));
    let now = chrono::Utc::now().timestamp();
    let mut metrics = Counts::default();
    for attempt in 1..=3 {
        let r = h
            .sweep(&sweep_of(1), now, &mut metrics, None)
            .await
            .expect("sweep");
        assert_eq!((r.failed, r.given_up), (1, 0), "attempt {attempt}");
    }
    let r = h
        .sweep(&sweep_of(1), now, &mut metrics, None)
        .await
        .expect("sweep");
    assert_eq!(
        (r.failed, r.given_up, r.processed, r.already_processed),
        (0, 1, 0, 1),
        "given up, not tried again"
    );
    assert_eq!(metrics.objects_given_up, 1);
}

/// Fails to open keys that contain a given text.
struct FailingKeys(MemorySource, &'static str);

impl ObjectSource for FailingKeys {
    async fn open(&self, o: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        if o.key.contains(self.1) {
            return Err(SourceError::s3(
                "GetObject",
                &o.bucket,
                &o.key,
                Context::new("AccessDenied", "Access Denied"),
            ));
        }
        self.0.open(o).await
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        folders: bool,
        range: KeyRange<'_>,
    ) -> Result<crate::objects::Listing, SourceError> {
        self.0.list(bucket, prefix, folders, range).await
    }
}

#[tokio::test]
async fn messages_not_started_before_the_deadline_are_left_for_redelivery() {
    let src = MemorySource::new();
    src.put("logs", "ok.json", denials(MALLORY, &[T0, T0]));
    let h = handler(src);
    let sqs = json!({"Records": (0..6).map(|i| json!({
        "messageId": format!("m{i}"), "eventSource": "aws:sqs",
        "body": s3_event(&["ok.json"]).to_string()})).collect::<Vec<_>>()});
    // The deadline has come: every message is returned, none is counted.
    let out = h
        .handle_until(sqs.clone(), Some(Instant::now()))
        .await
        .expect("answers");
    let failures = answer(out)["batchItemFailures"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(failures, 6);
    assert!(h.detector().store().snapshot().is_empty());
    // With time enough, all are processed.
    let out = h
        .handle_until(sqs, Some(Instant::now() + Duration::from_secs(300)))
        .await
        .expect("answers");
    assert_eq!(answer(out), json!({"batchItemFailures": []}));
}

/// A body that yields a little at a time, slowly: a large object still being read.
struct Slow(usize);

impl std::io::Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(20));
        self.0 -= 1;
        let line = b"{\"a\":1}\n";
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        Ok(n)
    }
}

struct SlowSource;

impl ObjectSource for SlowSource {
    async fn open(&self, _: &ObjectRef) -> Result<Option<OpenedObject>, SourceError> {
        Ok(Some(OpenedObject {
            id: ObjectId::s3("logs", "big.json", "v1"),
            body: Box::new(Slow(10_000)),
            version: "v1".into(),
            etag: None,
            size: None,
        }))
    }

    async fn list(
        &self,
        _: &str,
        _: &str,
        _: bool,
        _: KeyRange<'_>,
    ) -> Result<crate::objects::Listing, SourceError> {
        Ok(crate::objects::Listing::default())
    }
}

#[tokio::test]
async fn a_read_still_going_near_the_deadline_stops_and_its_message_is_redelivered() {
    let h = handler(SlowSource);
    let sqs = json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs",
        "body": s3_event(&["big.json"]).to_string()}]});
    let started = Instant::now();
    // 12 s left: the cutoff leaves 10 s for counting, so reading stops after ~2 s
    // (the body would take 200 s).
    let out = h
        .handle_until(sqs, Some(started + Duration::from_secs(12)))
        .await
        .expect("answers");
    assert_eq!(
        answer(out),
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
