//! The signed JSON client against an independent implementation: its requests to
//! EventBridge and Security Hub, with a session token, carry the signature botocore's
//! SigV4 signer (from the test tools' virtualenv) computes for the same request; and
//! the deployed function sends EventBridge calls where `AWS_ENDPOINT_URL_EVENTBRIDGE`
//! points, while every other service stays on the emulator.

use crate::support::*;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use bedrock_denied_models::aws::json::JsonApi;
use bedrock_denied_models::testing::runtime_api::{function_command, Answer, Function, RuntimeApi};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One HTTP request as it arrived.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    path: String,
    /// Header names in lower case.
    headers: BTreeMap<String, String>,
    body: String,
}

/// A server on loopback that answers every request with `answer` (a JSON body) and
/// hands each request over.
fn capture_server(answer: &'static str) -> (String, mpsc::Receiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_lowercase(), v.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = conn.write_all(reply.as_bytes());
            let _ = tx.send(Captured {
                method,
                path,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    });
    (addr, rx)
}

/// The signature botocore computes for `request`, over the headers it names as
/// signed, at the time it carries.
fn botocore_signature(
    request: &Captured,
    url: &str,
    service: &str,
    region: &str,
    creds: &Credentials,
) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "needs the test tools' virtualenv with botocore: run ./scripts/test"
    );
    let authorization = &request.headers["authorization"];
    let signed: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("SignedHeaders")
        .split(';')
        .collect();
    let input = json!({
        "method": request.method, "url": url, "body": request.body,
        "headers": signed.iter().map(|h| (h.to_string(), request.headers[*h].clone())).collect::<BTreeMap<_, _>>(),
        "amz_date": request.headers["x-amz-date"],
        "key": creds.access_key_id(), "secret": creds.secret_access_key(),
        "token": creds.session_token(), "service": service, "region": region,
    });
    const SCRIPT: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
r = json.load(sys.stdin)
request = AWSRequest(method=r["method"], url=r["url"], data=r["body"].encode(), headers=r["headers"])
request.context["timestamp"] = r["amz_date"]
auth = SigV4Auth(Credentials(r["key"], r["secret"], r["token"]), r["service"], r["region"])
canonical = auth.canonical_request(request)
print(auth.signature(auth.string_to_sign(request, canonical), request))
"#;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run botocore");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("botocore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
#[ignore = "needs the test tools"]
async fn requests_carry_the_signature_botocore_computes_for_both_services() {
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("FwoGZXIvYXdzEXAMPLE//session+token=".into()),
        None,
        "test",
    );
    for (service, path, target) in [
        ("events", "/", Some("AWSEvents.PutEvents")),
        ("securityhub", "/findings/import", None),
    ] {
        let (url, requests) = capture_server("{}");
        let sdk = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(creds.clone()))
            .region(aws_config::Region::new("eu-west-3"))
            .endpoint_url(&url)
            .build();
        let api = JsonApi::new(&sdk, service, "eu-west-3");
        let mut headers = vec![("content-type", "application/x-amz-json-1.1")];
        if let Some(t) = target {
            headers.push(("x-amz-target", t));
        }
        let body = json!({"Entries": [{"Detail": "{\"a\": \"b c/d?e=f\"}"}]}).to_string();
        api.call("Test", path, &headers, body.as_bytes())
            .await
            .expect("call");
        let request = requests
            .recv_timeout(Duration::from_secs(10))
            .expect("captured");
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", path)
        );
        assert_eq!(
            request
                .headers
                .get("x-amz-security-token")
                .map(String::as_str),
            creds.session_token(),
            "{service}: the session token is sent"
        );
        let authorization = &request.headers["authorization"];
        assert!(
            authorization.contains("/eu-west-3/")
                && authorization.contains(&format!("/{service}/aws4_request")),
            "{authorization}"
        );
        assert!(
            authorization.contains("x-amz-security-token"),
            "signed: {authorization}"
        );
        let ours = authorization
            .rsplit("Signature=")
            .next()
            .expect("signature");
        let theirs = botocore_signature(
            &request,
            &format!("{url}{path}"),
            service,
            "eu-west-3",
            &creds,
        );
        assert_eq!(ours, theirs, "{service}: {authorization}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the emulator"]
async fn the_function_puts_events_where_its_eventbridge_endpoint_variable_points() {
    let s = Stack::new("endpoint-vars").await;
    let (eventbridge, calls) =
        capture_server(r#"{"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}"#);
    let key = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/a.json.gz";
    s.put(key, denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]))
        .await;
    let api = RuntimeApi::start(vec![s.s3_event(&[key])]);
    let f = Function::spawn(function_command(
        &detector_bin(),
        &api,
        &[
            ("COUNTER_TABLE", &s.table),
            ("ALERT_TOPIC_ARN", &s.topic_arn),
            ("EVENT_BUS_NAME", "alerts"),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", &eventbridge),
        ],
    ));
    let answer = api.recv(Duration::from_secs(60)).expect("an answer").answer;
    drop(f);
    assert!(
        matches!(answer, Answer::Response(ref v) if v["objects"] == 1),
        "{answer:?}"
    );
    let call = calls
        .recv_timeout(Duration::from_secs(5))
        .expect("PutEvents reached the variable's endpoint");
    assert_eq!(
        call.headers.get("x-amz-target").map(String::as_str),
        Some("AWSEvents.PutEvents")
    );
    let entry: Value = serde_json::from_str(&call.body).expect("json");
    let detail: Value =
        serde_json::from_str(entry["Entries"][0]["Detail"].as_str().expect("detail"))
            .expect("alert");
    assert_eq!(detail["user.id"], MALLORY);
    // Everything else stayed on the emulator: the alert reached SNS there.
    assert_eq!(s.alerts().await.len(), 1);
}
