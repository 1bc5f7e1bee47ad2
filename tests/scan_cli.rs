//! The real `scan` binary over the shipped sample logs and over hostile folders.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn scan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bedrock-denied-models"))
        .arg("scan")
        .args(args)
        .env_remove("THRESHOLD")
        .env_remove("BUCKET_MINUTES")
        .env_remove("WINDOW_BUCKETS")
        .env_remove("SUPPRESS_MINUTES")
        .env_remove("DENIAL_CODES")
        .output()
        .expect("run scan")
}

fn alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is an alert JSON object"))
        .collect()
}

fn samples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events/logs")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn sample_logs_give_three_alerts() {
    let out = scan(&[&samples()]);
    assert!(out.status.success());
    let a = alerts(&out);
    let who: Vec<(&str, u64)> = a
        .iter()
        .map(|x| {
            (
                x["user.id"].as_str().unwrap_or_default(),
                x["total_denials"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            (
                "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory",
                5
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/LegacyApp/i-0a1b2c3d4e5f67890",
                5
            ),
            ("arn:aws:iam::111122223333:user/bob.smith", 4),
        ]
    );
    for x in &a {
        assert_eq!(
            x["gen_ai.request.model.id"],
            "anthropic.claude-3-opus-20240229-v1:0"
        );
        assert_eq!(x["cloud.account.id"], "111122223333");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("objects: 3 scanned (2 gzip, 1 CloudTrail)"),
        "{err}"
    );
    assert!(err.contains("denials: 17, keys with denials: 3"), "{err}");
    assert!(err.contains("alerts: 3 published, 1 suppressed"), "{err}");
}

#[test]
fn flags_change_the_configuration() {
    let out = scan(&["--threshold", "4", &samples()]);
    assert_eq!(alerts(&out).len(), 2, "bob's 4 is not above 4");
    let out = scan(&["--denial-codes", "AccessDeniedException", &samples()]);
    assert_eq!(
        alerts(&out).len(),
        2,
        "CloudTrail's AccessDenied no longer counts"
    );
    let out = scan(&["--suppress-minutes", "0", &samples()]);
    assert_eq!(alerts(&out).len(), 4, "mallory's second burst alerts too");
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
}

#[test]
fn bad_flag_values_and_paths_exit_2_naming_them() {
    let out = scan(&["--threshold", "lots", &samples()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--threshold") && err.contains("THRESHOLD"),
        "{err}"
    );
    let out = scan(&["/nonexistent/path/for/scan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/path/for/scan"));
}

#[test]
fn bad_objects_are_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    std::fs::create_dir_all(base.join("AWSLogs/1/BedrockModelInvocationLogs/x/data"))
        .expect("mkdir");
    let denial = |t: &str| {
        format!(
            "{{\"timestamp\":\"{t}\",\"accountId\":\"1\",\"identity\":{{\"arn\":\"u\"}},\"modelId\":\"m\",\"errorCode\":\"AccessDeniedException\"}}\n"
        )
    };
    let four: String = (0..4).map(|_| denial("2026-03-14T09:00:00Z")).collect();
    // Large-payload and permission-check objects are housekeeping: never read.
    std::fs::write(
        base.join("AWSLogs/1/BedrockModelInvocationLogs/x/data/big.json"),
        &four,
    )
    .expect("write");
    std::fs::write(
        base.join("AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check"),
        &four,
    )
    .expect("write");
    std::fs::write(base.join("empty.json.gz"), b"").expect("write");
    // A truncated gzip: reported, what was read still counts.
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let many: String = (0..3000).map(|_| denial("2026-03-14T09:00:00Z")).collect();
        e.write_all(many.as_bytes()).expect("gzip");
        e.finish().expect("gzip")
    };
    std::fs::write(base.join("cut.json.gz"), &gz[..gz.len() / 2]).expect("write");
    std::fs::write(
        base.join("junk.json"),
        b"\xff\xfe garbage\n{\"errorCode\":\"AccessDenied\"\n",
    )
    .expect("write");

    let out = scan(&[&base.to_string_lossy()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
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
