//! The real `scan` binary over the shipped sample logs, investigators' file formats,
//! hostile folders, and an emulated S3 bucket.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn scan(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bedrock-denied-models"));
    cmd.arg("scan").args(args);
    for v in bedrock_denied_models::config::VARIABLES {
        cmd.env_remove(v);
    }
    cmd.output().expect("run scan")
}

fn alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is an alert JSON object"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn samples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events/logs")
        .to_string_lossy()
        .into_owned()
}

fn who(alerts: &[Value]) -> Vec<(String, u64)> {
    alerts
        .iter()
        .map(|x| {
            (
                x["user.id"].as_str().unwrap_or_default().to_string(),
                x["total_denials"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn sample_logs_give_three_alerts() {
    let out = scan(&[&samples()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a = alerts(&out);
    assert_eq!(
        who(&a),
        vec![
            (
                "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory".to_string(),
                5
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/LegacyApp/i-0a1b2c3d4e5f67890".to_string(),
                5
            ),
            ("arn:aws:iam::111122223333:user/bob.smith".to_string(), 4),
        ]
    );
    for x in &a {
        assert_eq!(
            x["gen_ai.request.model.id"],
            "anthropic.claude-3-opus-20240229-v1:0"
        );
        assert_eq!(x["cloud.account.id"], "111122223333");
        assert_eq!(x["evidence"]["regions"], json!(["us-east-1"]));
    }
    // The CloudTrail alert carries what CloudTrail says about the caller.
    assert_eq!(a[1]["evidence"]["operations"], json!(["InvokeModel"]));
    assert_eq!(
        a[1]["evidence"]["source_ips"].as_array().map(Vec::len),
        Some(1)
    );
    let err = stderr(&out);
    assert!(
        err.contains("objects: 3 scanned (2 gzip, 1 CloudTrail)"),
        "{err}"
    );
    assert!(err.contains("denials: 17, keys with denials: 3"), "{err}");
    assert!(
        err.contains("alerts: 3 published, 1 suppressed, 0 excepted"),
        "{err}"
    );
}

#[test]
fn flags_change_the_configuration() {
    let out = scan(&["--threshold", "4", &samples()]);
    assert_eq!(alerts(&out).len(), 2, "bob's 4 is not above 4");
    let out = scan(&[
        "--cloudtrail-denial-codes",
        "AccessDeniedException",
        &samples(),
    ]);
    assert_eq!(
        alerts(&out).len(),
        2,
        "CloudTrail's AccessDenied no longer counts"
    );
    let out = scan(&["--denial-codes", "ThrottlingException", &samples()]);
    assert_eq!(alerts(&out).len(), 1, "only the CloudTrail burst is left");
    let out = scan(&["--suppress-minutes", "0", &samples()]);
    assert_eq!(alerts(&out).len(), 4, "mallory's second burst alerts too");
}

#[test]
fn exceptions_from_a_file_or_inline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("exceptions.json");
    std::fs::write(
        &rules,
        r#"[{"user.id": "arn:aws:sts::*:assumed-role/LegacyApp/*", "reason": "legacy batch, ticket SEC-42"},
            {"user.id": "arn:aws:iam::111122223333:user/bob.smith", "threshold": 4, "reason": "QA account"}]"#,
    )
    .expect("write");
    for arg in [
        rules.to_string_lossy().into_owned(),
        std::fs::read_to_string(&rules).expect("read"),
    ] {
        let out = scan(&["--exceptions", &arg, &samples()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let who: Vec<String> = who(&alerts(&out)).into_iter().map(|(u, _)| u).collect();
        assert_eq!(
            who,
            vec!["arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory"]
        );
        assert!(
            stderr(&out).contains("alerts: 1 published, 1 suppressed, 1 excepted"),
            "{}",
            stderr(&out)
        );
    }
    let out = scan(&["--exceptions", r#"[{"reason": "no field"}]"#, &samples()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("EXCEPTIONS"), "{}", stderr(&out));
}

#[test]
fn email_output_shows_what_the_inbox_gets() {
    let out = scan(&["--output", "email", &samples()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("Subject: [HIGH] Bedrock: ").count(),
        3,
        "{text}"
    );
    assert!(
        text.contains("Principal (user.id):  arn:aws:iam::111122223333:user/bob.smith"),
        "{text}"
    );
    assert!(text.contains("Region:  us-east-1"), "{text}");
}

#[test]
fn bad_flag_values_and_paths_exit_2_naming_them() {
    let out = scan(&["--threshold", "lots", &samples()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--threshold") && err.contains("THRESHOLD"),
        "{err}"
    );
    let out = scan(&["/nonexistent/path/for/scan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/path/for/scan"));
    let out = scan(&["--since", "last tuesday", &samples()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
}

#[test]
fn since_and_until_select_by_the_date_in_the_key() {
    // The Bedrock log is under .../2026/03/14/09/, the CloudTrail file under
    // .../2026/03/14/; the plain log has no date in its path.
    let out = scan(&["--since", "2026-03-14T10:00:00Z", &samples()]);
    let err = stderr(&out);
    assert!(err.contains("objects: 2 scanned"), "{err}");
    assert!(err.contains("1 outside --since/--until"), "{err}");
    let out = scan(&[
        "--until",
        "2026-03-14T09:00:00Z",
        "--since",
        "2026-03-13",
        &samples(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("objects: 1 scanned (1 gzip, 1 CloudTrail)"),
        "{err}"
    );
}

#[test]
fn bad_objects_are_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    std::fs::create_dir_all(
        base.join("AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data"),
    )
    .expect("mkdir");
    let denial = |t: &str| {
        format!(
            "{{\"timestamp\":\"{t}\",\"accountId\":\"1\",\"identity\":{{\"arn\":\"u\"}},\"modelId\":\"m\",\"errorCode\":\"AccessDeniedException\"}}\n"
        )
    };
    let four: String = (0..4).map(|_| denial("2026-03-14T09:00:00Z")).collect();
    // Large-payload and permission-check objects are housekeeping: never read.
    std::fs::write(
        base.join(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data/big.json",
        ),
        &four,
    )
    .expect("write");
    std::fs::write(
        base.join(
            "AWSLogs/111122223333/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        ),
        &four,
    )
    .expect("write");
    std::fs::write(base.join("empty.json.gz"), b"").expect("write");
    // A truncated gzip: reported, what was read still counts.
    let many: String = (0..3000).map(|_| denial("2026-03-14T09:00:00Z")).collect();
    let gz = gzip(many.as_bytes());
    std::fs::write(base.join("cut.json.gz"), &gz[..gz.len() / 2]).expect("write");
    std::fs::write(
        base.join("junk.json"),
        b"\xff\xfe garbage\n{\"errorCode\":\"AccessDenied\"\n",
    )
    .expect("write");

    let out = scan(&[&base.to_string_lossy()]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cut.json.gz: corrupt or truncated gzip"),
        "{err}"
    );
    assert!(
        err.contains("3 housekeeping skipped, 1 incomplete"),
        "{err}"
    );
    assert!(err.contains("invalid_json 2"), "{err}");
    let a = alerts(&out);
    assert_eq!(a.len(), 1);
    assert!(a[0]["total_denials"]
        .as_u64()
        .is_some_and(|n| n > 3 && n < 3000));
}

#[test]
fn the_files_investigators_have() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recs: Vec<Value> = (0..15)
        .map(|i| {
            let code = (i % 4 == 0).then_some("AccessDenied");
            cloudtrail_record(
                MALLORY,
                MODEL,
                T0 + i,
                "InvokeModel",
                code,
                &format!("id-{i}"),
            )
        })
        .collect();
    // A top-level JSON array of 15 CloudTrail records, pretty-printed.
    std::fs::write(
        dir.path().join("array.json"),
        serde_json::to_string_pretty(&recs).expect("json"),
    )
    .expect("write");
    let out = scan(&[&dir.path().to_string_lossy()]);
    let err = stderr(&out);
    assert!(err.contains("1 JSON array"), "{err}");
    assert!(err.contains("records: 15"), "{err}");
    assert!(err.contains("denials: 4"), "{err}");
    assert!(err.contains("skipped lines: 0"), "{err}");
    assert_eq!(alerts(&out).len(), 1);
    // The same records as `aws cloudtrail lookup-events` prints them.
    std::fs::remove_file(dir.path().join("array.json")).expect("rm");
    let events: Vec<Value> = recs
        .iter()
        .map(|r| json!({"EventId": r["eventID"], "EventName": "InvokeModel", "CloudTrailEvent": r.to_string()}))
        .collect();
    std::fs::write(
        dir.path().join("lookup.json"),
        serde_json::to_string_pretty(&json!({"Events": events})).expect("json"),
    )
    .expect("write");
    let out = scan(&[&dir.path().to_string_lossy()]);
    assert!(stderr(&out).contains("1 lookup-events"), "{}", stderr(&out));
    assert_eq!(alerts(&out).len(), 1);
}

#[test]
fn many_objects_on_all_cores_read_exactly_as_one_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 objects, bursts that span objects, some objects gzip, some with noise.
    for i in 0..40i64 {
        let mut body = String::new();
        for j in 0..((i % 5) + 1) {
            let user = format!("arn:aws:iam::111122223333:user/u{}", (i + j) % 7);
            body += &line(&user, MODEL, ACCOUNT, T0 + i * 300 + j, Some(DENIED));
            body += &line(&user, MODEL, ACCOUNT, T0 + i * 300 + j, None);
        }
        let path = dir
            .path()
            .join(format!("2026/03/14/{:02}/part-{i:03}.json", i / 10));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        if i % 3 == 0 {
            std::fs::write(path.with_extension("json.gz"), gzip(body.as_bytes())).expect("write");
        } else {
            std::fs::write(path, body).expect("write");
        }
    }
    let folder = dir.path().to_string_lossy().into_owned();
    let one = scan(&["--jobs", "1", &folder]);
    let many = scan(&["--jobs", "4", &folder]);
    assert!(one.status.success() && many.status.success());
    assert!(!alerts(&one).is_empty());
    assert_eq!(
        String::from_utf8_lossy(&one.stdout),
        String::from_utf8_lossy(&many.stdout),
        "same alerts, same order"
    );
    assert_eq!(stderr(&one), stderr(&many), "same summary");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn backfill_from_s3_into_the_table_twice_adds_nothing_the_second_time() {
    let s = Stack::new("backfill").await;
    let prefix = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14";
    s.put(
        &format!("{prefix}/09/a.json.gz"),
        denials_gz(MALLORY, &[T0, T0 + 1]),
    )
    .await;
    s.put(
        &format!("{prefix}/09/b.json.gz"),
        denials_gz(MALLORY, &[T0 + 2, T0 + 3]),
    )
    .await;
    s.put(
        &format!("{prefix}/23/late.json.gz"),
        denials_gz(MALLORY, &[T0 + 14 * 3600]),
    )
    .await;
    s.put(
        "AWSLogs/111122223333/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        b"x".to_vec(),
    )
    .await;
    let uri = format!("s3://{}/AWSLogs/", s.bucket);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--table",
            s.table.as_str(),
            "--until",
            "2026-03-14T12:00:00Z",
        ];
        args.extend_from_slice(extra);
        args.push(uri.as_str());
        scan(&args)
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let err = stderr(&first);
    assert!(err.contains("objects: 2 scanned"), "{err}");
    // The permission check has no date in its key and was written now: outside too.
    assert!(
        err.contains("0 housekeeping skipped, 2 outside --since/--until"),
        "{err}"
    );
    assert!(
        err.contains("counters: 2 added, 0 already counted"),
        "{err}"
    );
    let shown = alerts(&first);
    assert_eq!(shown.len(), 1, "printed, not published, without --topic");
    assert_eq!(shown[0]["delivered"], false, "and marked as not delivered");
    assert!(err.contains("1 shown but not delivered"), "{err}");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert!(s.alerts().await.is_empty());

    // Replaying with the topic counts nothing again; the alert the first run only
    // showed is delivered now, once.
    let second = run(&["--topic", s.topic_arn.as_str()]);
    assert!(second.status.success(), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(
        err.contains("counters: 0 added, 2 already counted"),
        "{err}"
    );
    assert!(err.contains("alerts: 1 published, 1 suppressed"), "{err}");
    assert_eq!(s.alerts().await.len(), 1);
    let third = run(&["--topic", s.topic_arn.as_str()]);
    let err = stderr(&third);
    assert!(err.contains("alerts: 0 published, 2 suppressed"), "{err}");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert!(s.alerts().await.is_empty());

    // What the function already counted is not counted again either.
    let h = s.handler().await;
    h.handle(s.s3_event(&[&format!("{prefix}/09/a.json.gz")]))
        .await
        .expect("handled");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_replay_without_a_destination_never_silences_the_functions_next_alert() {
    let s = Stack::new("replay").await;
    // An incident: the team replays the hour into the deployed table, printing only.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("replay.json");
    std::fs::write(&file, denials(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3])).expect("write");
    let out = scan(&["--table", &s.table, &file.to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = alerts(&out);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["delivered"], false);
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4, "counted");
    // The deployed function's next object on the key alerts, through SNS.
    let key = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/next.json";
    s.put(key, denials(MALLORY, &[T0 + 4]).into_bytes()).await;
    s.handler()
        .await
        .handle(s.s3_event(&[key]))
        .await
        .expect("handled");
    let sent = s.alerts().await;
    assert_eq!(sent.len(), 1, "not silenced by the replay");
    assert_eq!(sent[0]["Alert"]["total_denials"], 5);
}
