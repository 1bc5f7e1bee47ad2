//! The built binary served through the Lambda Runtime API: a small runtime-API
//! emulator here hands it events and collects its answers; AWS is the emulator.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the function posted back for one invocation.
#[derive(Debug)]
enum Answer {
    Response(Value),
    Error(Value),
}

/// Serves `events` one by one on `next`; parks further `next` calls.
struct RuntimeApi {
    addr: String,
    answers: mpsc::Receiver<(String, Answer)>,
}

impl RuntimeApi {
    fn start(events: Vec<Value>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let queue = Arc::new(Mutex::new(
            events.into_iter().enumerate().collect::<Vec<_>>(),
        ));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let queue = queue.clone();
                let tx = tx.clone();
                thread::spawn(move || serve(conn, queue, tx));
            }
        });
        RuntimeApi { addr, answers: rx }
    }
}

fn serve(
    conn: TcpStream,
    queue: Arc<Mutex<Vec<(usize, Value)>>>,
    tx: mpsc::Sender<(String, Answer)>,
) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if path.ends_with("/invocation/next") {
            let next = {
                let mut q = queue.lock().expect("queue");
                (!q.is_empty()).then(|| q.remove(0))
            };
            let Some((i, event)) = next else {
                thread::sleep(Duration::from_secs(3600)); // no more work: park the poll
                return;
            };
            let payload = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: req-{i}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:111122223333:function:bedrock-denied-models\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                payload.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(payload.as_bytes());
        } else {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = path.split('/').nth(4).unwrap_or_default().to_string();
            let answer = if path.ends_with("/response") {
                Answer::Response(value)
            } else {
                Answer::Error(value)
            };
            let _ = tx.send((id, answer));
            let _ = conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}");
        }
    }
}

/// The running function; its stdout (logs and metrics) is collected as it comes.
struct Function(Child, Arc<Mutex<String>>);

impl Function {
    /// Peak resident memory of the running function, in KiB (Linux).
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .expect("VmHWM of the function")
    }

    /// Stops the function and returns everything it printed.
    fn stop(mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        thread::sleep(Duration::from_millis(100));
        let out = self.1.lock().expect("output").clone();
        out
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn function_command(api: &RuntimeApi, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bedrock-denied-models"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bedrock-denied-models")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env_remove("COUNTER_TABLE")
        .env_remove("ALERT_TOPIC_ARN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The function wired to a test stack's table and topic.
fn start_for_stack(api: &RuntimeApi, s: &Stack) -> Function {
    start_function(
        api,
        &[
            ("COUNTER_TABLE", &s.table),
            ("ALERT_TOPIC_ARN", &s.topic_arn),
        ],
    )
}

fn start_function(api: &RuntimeApi, env: &[(&str, &str)]) -> Function {
    let mut child = function_command(api, env)
        .spawn()
        .expect("start the function");
    let output = Arc::new(Mutex::new(String::new()));
    if let Some(stdout) = child.stdout.take() {
        let output = output.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut o = output.lock().expect("output");
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    Function(child, output)
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_serves_invocations_through_the_runtime_api() {
    let Some(s) = Stack::new("runtime").await else {
        return;
    };
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
    let f = start_for_stack(&api, &s);

    let mut answers = Vec::new();
    for _ in 0..3 {
        match api.answers.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => answers.push(a),
            Err(e) => panic!("no answer from the function ({e}); output:\n{}", f.stop()),
        }
    }
    let logs = f.stop();
    // Logs: JSON lines, one per object with its statistics, and one EMF line per
    // invocation; never the prompt text the log objects carry.
    assert!(logs.contains("\"message\":\"object processed\""), "{logs}");
    assert!(logs.contains("\"CloudWatchMetrics\""), "{logs}");
    assert!(
        logs.contains("req-1"),
        "logs carry the Lambda request id: {logs}"
    );
    assert!(
        !logs.contains("must never be logged"),
        "prompt text leaked into logs: {logs}"
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
    assert_eq!(
        s.count(
            &bedrock_denied_models::key::DenialKey::new(MALLORY, MODEL, ACCOUNT),
            bucket_of(T0)
        )
        .await,
        4
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn dependency_failure_is_reported_as_an_invocation_error() {
    let Some(s) = Stack::new("runtimeerr").await else {
        return;
    };
    s.put("a.json.gz", denials_gz(MALLORY, &[T0])).await;
    s.delete_table().await;
    let api = RuntimeApi::start(vec![s.s3_event(&["a.json.gz"])]);
    let f = start_for_stack(&api, &s);
    let (_, answer) = api
        .answers
        .recv_timeout(Duration::from_secs(60))
        .expect("answer");
    drop(f);
    let Answer::Error(e) = answer else {
        panic!("expected an error, got {answer:?}")
    };
    assert_eq!(e["errorType"], "ObjectsFailed");
    assert!(
        e["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("DynamoDB") || m.contains("UpdateItem")),
        "{e}"
    );
}

#[test]
fn bad_configuration_stops_at_startup_naming_the_variable() {
    let api = RuntimeApi::start(Vec::new());
    let out = function_command(
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

    let out = function_command(&api, &[("ALERT_TOPIC_ARN", "x")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("COUNTER_TABLE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_object_is_streamed_in_bounded_memory() {
    let Some(s) = Stack::new("large").await else {
        return;
    };
    // 160 MB of plain log: far more than the function may hold at once.
    let filler = line(
        "arn:aws:iam::111122223333:user/busy",
        "amazon.titan-text-express-v1",
        ACCOUNT,
        T0,
        None,
    );
    let filler = filler.replace(
        "a prompt that must never be logged",
        &"lorem ipsum ".repeat(300),
    );
    let mut body = String::with_capacity(160 << 20);
    while body.len() < 160 << 20 {
        body.push_str(&filler);
    }
    for t in [T0, T0 + 1, T0 + 2, T0 + 3] {
        body.push_str(&line(
            MALLORY,
            MODEL,
            ACCOUNT,
            t,
            Some("AccessDeniedException"),
        ));
    }
    let size = body.len();
    s.put("big.json", body.into_bytes()).await;

    let api = RuntimeApi::start(vec![s.s3_event(&["big.json"])]);
    let f = start_for_stack(&api, &s);
    let (_, answer) = api
        .answers
        .recv_timeout(Duration::from_secs(120))
        .expect("answer");
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
