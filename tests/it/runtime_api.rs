//! The built binary served through the Lambda Runtime API: a small runtime-API
//! emulator here hands it events and collects its answers; AWS is the emulator.

use crate::support::*;
use bedrock_denied_models::testing::runtime_api::{function_command, Answer, Function, RuntimeApi};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn bin() -> &'static Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(detector_bin)
}

/// The next answer; fails the test after `secs`.
fn next_answer(api: &RuntimeApi, secs: u64) -> Answer {
    api.recv(Duration::from_secs(secs))
        .expect("an answer from the function")
        .answer
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn binary_serves_invocations_through_the_runtime_api() {
    let s = Stack::new("runtime").await;
    s.put(
        "burst.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let sqs = json!({"Records": [
        {"messageId": "m1", "eventSource": "aws:sqs", "body": s.s3_event(&["burst.json.gz"]).to_string()},
        {"messageId": "m2", "eventSource": "aws:sqs",
         "body": json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "bucket-that-does-not-exist"}, "object": {"key": "k"}}}]}).to_string()},
    ]});
    let api = RuntimeApi::start(vec![
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        s.s3_event(&["burst.json.gz"]),
        sqs,
    ]);
    let f = s.function(bin(), &api);

    let mut answers = Vec::new();
    for _ in 0..3 {
        match api.recv(Duration::from_secs(60)) {
            Ok(a) => answers.push((a.request_id, a.answer)),
            Err(e) => panic!("no answer from the function ({e}); output:\n{}", f.stop()),
        }
    }
    let logs = f.stop();
    // Logs: JSON lines, one per object with its statistics, and one EMF line per
    // invocation; never the prompt text the log objects carry.
    assert!(logs.contains("\"message\":\"object processed\""), "{logs}");
    assert!(logs.contains("\"CloudWatchMetrics\""), "{logs}");
    assert!(
        logs.contains("\"requestId\":\"req-1\""),
        "logs carry the Lambda request id: {logs}"
    );
    assert!(
        !logs.contains(PROMPT_MARKER),
        "prompt text leaked into the function's output: {logs}"
    );
    for l in logs.lines() {
        serde_json::from_str::<Value>(l)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"));
    }
    assert!(
        matches!(&answers[0], (id, Answer::Response(v)) if id == "req-0" && v["ignored"] == "s3:TestEvent"),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[1], (id, Answer::Response(v)) if id == "req-1" && *v == json!({"objects": 1})),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[2], (_, Answer::Response(v)) if *v == json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})),
        "{answers:?}"
    );
    // The burst was delivered twice (S3 event, then SQS): counted and alerted once.
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn dependency_failure_is_reported_as_an_invocation_error() {
    let s = Stack::new("runtimeerr").await;
    s.put("a.json.gz", denials_gz(MALLORY, &[T0])).await;
    s.delete_table().await;
    let api = RuntimeApi::start(vec![s.s3_event(&["a.json.gz"])]);
    let f = s.function(bin(), &api);
    let answer = next_answer(&api, 60);
    drop(f);
    let Answer::Error(e) = answer else {
        panic!("expected an error, got {answer:?}")
    };
    assert_eq!(e["errorType"], "ObjectsFailed");
    assert!(
        e["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("DynamoDB") || m.contains("PutItem (counter contribution)")),
        "{e}"
    );
}

#[test]
fn bad_configuration_stops_at_startup_naming_the_variable() {
    let api = RuntimeApi::start(Vec::new());
    let out = function_command(
        bin(),
        &api,
        &[
            ("COUNTER_TABLE", "t"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
            ("THRESHOLD", "-3"),
        ],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("invalid THRESHOLD"), "{text}");

    let out = function_command(bin(), &api, &[("ALERT_TOPIC_ARN", "x")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("COUNTER_TABLE"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn a_large_object_is_streamed_in_bounded_memory() {
    let s = Stack::new("large").await;
    // 160 MB of plain log: far more than the function may hold at once.
    let filler = line(
        "arn:aws:iam::111122223333:user/busy",
        "amazon.titan-text-express-v1",
        ACCOUNT,
        T0,
        None,
    );
    let filler = filler.replace(PROMPT_MARKER, &"lorem ipsum ".repeat(300));
    let mut body = String::with_capacity(160 << 20);
    while body.len() < 160 << 20 {
        body.push_str(&filler);
    }
    for t in [T0, T0 + 1, T0 + 2, T0 + 3] {
        body.push_str(&line(MALLORY, MODEL, ACCOUNT, t, Some(DENIED)));
    }
    let size = body.len();
    s.put("big.json", body.into_bytes()).await;

    let api = RuntimeApi::start(vec![s.s3_event(&["big.json"])]);
    let f = s.function(bin(), &api);
    let answer = next_answer(&api, 120);
    let peak_mib = f.peak_rss_kib() / 1024;
    println!(
        "peak RSS {peak_mib} MiB reading a {} MiB object",
        size >> 20
    );
    let logs = f.stop();
    assert!(
        matches!(answer, Answer::Response(ref v) if *v == json!({"objects": 1})),
        "{answer:?}\n{logs}"
    );
    assert_eq!(s.alerts().await.len(), 1);
    assert!(
        peak_mib < 64,
        "peak RSS {peak_mib} MiB while reading a {} MiB object",
        size >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn binary_counts_a_cloudwatch_logs_payload_once() {
    let s = Stack::new("runtimecw").await;
    let messages = bedrock_messages(&[T0, T0 + 1, T0 + 2, T0 + 3]);
    let event = logs_event("/aws/bedrock/modelinvocations", "stream-1", &messages);
    // Delivered twice, as CloudWatch Logs and Lambda may.
    let api = RuntimeApi::start(vec![event.clone(), event]);
    let f = s.function(bin(), &api);
    for _ in 0..2 {
        let answer = next_answer(&api, 60);
        assert!(
            matches!(answer, Answer::Response(ref v) if *v == json!({"log_events": 4})),
            "{answer:?}"
        );
    }
    let logs = f.stop();
    assert!(!logs.contains(PROMPT_MARKER), "{logs}");
    assert!(logs.contains("log-stream:stream-1"), "{logs}");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn four_processes_given_the_same_event_at_once_alert_once() {
    let s = Stack::new("runtimerace").await;
    for round in 0..5 {
        let user = format!("arn:aws:iam::111122223333:user/process-racer-{round}");
        let key = format!("round-{round}.json.gz");
        s.put(&key, denials_gz(&user, &[T0, T0 + 1, T0 + 2, T0 + 3]))
            .await;
        let event = s.s3_event(&[key.as_str()]);
        let apis: Vec<RuntimeApi> = (0..4).map(|_| RuntimeApi::start(Vec::new())).collect();
        let functions: Vec<Function> = apis.iter().map(|api| s.function(bin(), api)).collect();
        // Every process is up and asking for an event before any gets one.
        let ready = std::time::Instant::now();
        while apis.iter().any(|api| api.waiting() == 0) {
            assert!(
                ready.elapsed() < Duration::from_secs(30),
                "round {round}: functions not ready"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for api in &apis {
            api.push(event.clone());
        }
        let answered: Vec<_> = apis
            .iter()
            .map(|api| api.recv(Duration::from_secs(60)).expect("an answer"))
            .collect();
        for a in &answered {
            assert!(
                matches!(a.answer, Answer::Response(ref v) if *v == json!({"objects": 1})),
                "round {round}: {:?}",
                a.answer
            );
        }
        // They ran at the same time: every one started before any finished.
        let last_start = answered.iter().map(|a| a.handed_out).max().expect("four");
        let first_end = answered.iter().map(|a| a.answered).min().expect("four");
        assert!(
            last_start < first_end,
            "round {round}: the four invocations did not overlap, so this round shows nothing"
        );
        let logs: String = functions.into_iter().map(Function::stop).collect();
        assert_eq!(
            logs.matches("\"counters_added\":1").count(),
            1,
            "round {round}: counted by exactly one process:\n{logs}"
        );
        assert_eq!(
            s.count(
                &bedrock_denied_models::key::DenialKey::new(user.as_str(), MODEL, ACCOUNT),
                bucket_of(T0)
            )
            .await,
            4
        );
        let alerts = s.alerts().await;
        assert_eq!(
            alerts.len(),
            1,
            "round {round}: one alert for four deliveries"
        );
    }
}
