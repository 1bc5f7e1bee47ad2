//! The real `scan` binary over the shipped sample logs, investigators' file formats,
//! hostile folders, and an emulated S3 bucket.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn scan(args: &[&str]) -> Output {
    let mut cmd = Command::new(detector_bin());
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

/// The seed rule's alerts.
fn of_seed(alerts: &[Value]) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["rule"]["id"] == bedrock_denied_models::rule::SEED.id)
        .cloned()
        .collect()
}

/// The other rules' alerts, as (rule id, user.id, total).
fn of_other_rules(alerts: &[Value]) -> Vec<(String, String, u64)> {
    alerts
        .iter()
        .filter(|a| a["rule"]["id"] != bedrock_denied_models::rule::SEED.id)
        .map(|a| {
            (
                a["rule"]["id"].as_str().unwrap_or_default().to_string(),
                a["user.id"].as_str().unwrap_or_default().to_string(),
                a["total_denials"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// [`the_stolen_keys_alerts`] in the rules' order.
fn the_stolen_keys_alerts_in_rule_order() -> Vec<(String, String, u64)> {
    let all = the_stolen_keys_alerts();
    bedrock_denied_models::rule::RULES[1..]
        .iter()
        .filter_map(|r| all.iter().find(|a| a.0 == r.id).cloned())
        .collect()
}

/// The text of each element under `root` that `css` selects.
fn select_in(root: &scraper::ElementRef, css: &str) -> Vec<String> {
    let s = scraper::Selector::parse(css).expect("selector");
    root.select(&s).map(|e| e.text().collect()).collect()
}

/// The stolen key's alerts in the sample logs, one per rule beside the seed.
fn the_stolen_keys_alerts() -> Vec<(String, String, u64)> {
    use bedrock_denied_models::rule::{MANY_MODELS, ROLE_SESSIONS, VALIDATION};
    let role = "arn:aws:sts::444455556666:assumed-role/bedrock-app-role";
    vec![
        (MANY_MODELS.id.to_string(), role.to_string(), 8),
        (ROLE_SESSIONS.id.to_string(), role.to_string(), 4),
        (
            VALIDATION.id.to_string(),
            format!("{role}/botocore-session-1773482497"),
            4,
        ),
    ]
}

#[test]
fn sample_logs_give_the_seed_rules_three_alerts_and_one_of_each_other_rule() {
    let out = scan(&[&samples()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = alerts(&out);
    let a = of_seed(&all);
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
    // The stolen key's check in the other account: one alert of each other rule, and
    // none of the seed rule.
    let mut others = of_other_rules(&all);
    others.sort();
    let mut expected = the_stolen_keys_alerts();
    expected.sort();
    assert_eq!(others, expected);
    let err = stderr(&out);
    assert!(
        err.contains("objects: 4 scanned (3 gzip, 2 CloudTrail)"),
        "{err}"
    );
    assert!(err.contains("denials: 25, keys with denials: 11"), "{err}");
    assert!(
        err.contains("alerts: 6 published, 1 suppressed, 0 excepted"),
        "{err}"
    );
}

#[test]
fn flags_change_the_configuration() {
    // The seed rule's settings; the other rules' alerts stay as they are.
    let seed_alerts = |args: &[&str]| of_seed(&alerts(&scan(args))).len();
    assert_eq!(
        seed_alerts(&["--threshold", "4", &samples()]),
        2,
        "bob's 4 is not above 4"
    );
    assert_eq!(
        seed_alerts(&[
            "--cloudtrail-denial-codes",
            "AccessDeniedException",
            &samples(),
        ]),
        2,
        "CloudTrail's AccessDenied no longer counts"
    );
    assert_eq!(
        seed_alerts(&["--denial-codes", "ThrottlingException", &samples()]),
        1,
        "only the CloudTrail burst is left"
    );
    assert_eq!(
        seed_alerts(&["--suppress-minutes", "0", &samples()]),
        4,
        "mallory's second burst alerts too"
    );
    // Only the seed rule: its three alerts and nothing else.
    let out = scan(&["--rules", bedrock_denied_models::rule::SEED.id, &samples()]);
    assert_eq!(of_seed(&alerts(&out)).len(), 3);
    assert_eq!(alerts(&out).len(), 3);
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
        // Exceptions without a rules field apply to the seed rule only.
        let all = alerts(&out);
        let who: Vec<String> = who(&of_seed(&all)).into_iter().map(|(u, _)| u).collect();
        assert_eq!(
            who,
            vec!["arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory"]
        );
        assert_eq!(of_other_rules(&all).len(), 3);
        assert!(
            stderr(&out).contains("alerts: 4 published, 1 suppressed, 1 excepted"),
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
        6,
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
    // The stolen key's CloudTrail file is of 10:10.
    let out = scan(&["--since", "2026-03-14T10:00:00Z", &samples()]);
    let err = stderr(&out);
    assert!(err.contains("objects: 3 scanned"), "{err}");
    assert!(err.contains("1 outside --since/--until"), "{err}");
    let out = scan(&[
        "--until",
        "2026-03-14T09:00:00Z",
        "--since",
        "2026-03-13",
        &samples(),
    ]);
    // Both CloudTrail files are under .../2026/03/14/, a day that ends after 09:00.
    let err = stderr(&out);
    assert!(
        err.contains("objects: 2 scanned (2 gzip, 2 CloudTrail)"),
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

/// Runs `scan --report` into a temporary file; the output and the report's text.
fn scan_with_report(args: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("report.html");
    let mut all = vec!["--report", path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = scan(&all);
    let html = std::fs::read_to_string(&path).unwrap_or_default();
    (out, html)
}

fn select<'a>(doc: &'a scraper::Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    let s = scraper::Selector::parse(css).expect("selector");
    doc.select(&s).collect()
}

fn text_of(doc: &scraper::Html, css: &str) -> String {
    select(doc, css)
        .first()
        .map(|e| e.text().collect::<String>())
        .unwrap_or_default()
}

/// A number as the summary prints it: the report writes `587,932`.
fn plain(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    c.iter()
        .enumerate()
        .filter(|(i, ch)| {
            !(**ch == ','
                && *i > 0
                && c[i - 1].is_ascii_digit()
                && c.get(i + 1).is_some_and(char::is_ascii_digit))
        })
        .map(|(_, ch)| *ch)
        .collect()
}

/// The summary line that starts with `name: `, without it.
fn summary_line(err: &str, name: &str) -> String {
    err.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_string()
}

/// Alerts of the seed rule's tuning table's cell for (threshold, window buckets).
fn cell_alerts(doc: &scraper::Html, threshold: u64, window: u32) -> u64 {
    rule_cell_alerts(doc, "#tuning", threshold, window)
}

/// Alerts of the cell for (threshold, window buckets) of the tuning table under `scope`.
fn rule_cell_alerts(doc: &scraper::Html, scope: &str, threshold: u64, window: u32) -> u64 {
    let t = text_of(
        doc,
        &format!(r#"{scope} td[data-threshold="{threshold}"][data-window-buckets="{window}"] b"#),
    );
    plain(&t).parse().unwrap_or(u64::MAX)
}

#[test]
fn the_report_shows_what_the_scan_printed_and_tunes_like_separate_scans() {
    let (out, html) = scan_with_report(&[&samples()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = alerts(&out);
    assert_eq!(printed.len(), 6);
    assert_eq!(of_seed(&printed).len(), 3);
    let doc = scraper::Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    assert!(select(&doc, "script").is_empty());
    assert_eq!(
        select(&doc, r#"meta[http-equiv="Content-Security-Policy"]"#)[0]
            .value()
            .attr("content"),
        Some(bedrock_denied_models::report::CSP)
    );
    // The header's numbers are those of the sample files, counted here on their own:
    // objects, how many are gzip and CloudTrail, records and bytes of log.
    let (mut files, mut gz, mut trails, mut records, mut bytes) = (0, 0, 0, 0, 0);
    let mut dirs = vec![std::path::PathBuf::from(samples())];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let raw = std::fs::read(&path).expect("read");
            let text = if path.extension().is_some_and(|e| e == "gz") {
                gz += 1;
                let mut t = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::MultiGzDecoder::new(&raw[..]),
                    &mut t,
                )
                .expect("gunzip");
                t
            } else {
                String::from_utf8(raw).expect("utf-8")
            };
            files += 1;
            bytes += text.len();
            let doc: Option<Value> = serde_json::from_str(&text).ok();
            match doc.as_ref().and_then(|d| d["Records"].as_array()) {
                Some(r) => {
                    trails += 1;
                    records += r.len();
                }
                None => records += text.lines().filter(|l| !l.trim().is_empty()).count(),
            }
        }
    }
    assert_eq!((files, gz, trails), (4, 3, 2), "the shipped samples");
    let header_objects = plain(&text_of(&doc, "#scan-objects"));
    assert!(
        header_objects.starts_with(&format!("{files} scanned ({gz} gzip, {trails} CloudTrail)")),
        "{header_objects}"
    );
    let header_records = plain(&text_of(&doc, "#scan-records"));
    assert!(
        header_records.starts_with(&format!("{records} ({bytes} bytes of log)")),
        "{header_records}: {records} records, {bytes} bytes counted here"
    );
    // And the summary's, line for line; no line is missing from both.
    let err = stderr(&out);
    for (line, id) in [
        ("objects", "#scan-objects"),
        ("records", "#scan-records"),
        ("skipped lines", "#scan-skipped-lines"),
        ("counters", "#scan-counters"),
        ("alerts", "#scan-alerts"),
    ] {
        let printed = summary_line(&err, line);
        assert!(
            !printed.is_empty(),
            "the summary has no {line} line:\n{err}"
        );
        assert_eq!(plain(&text_of(&doc, id)), printed, "{line}");
    }
    let records = summary_line(&err, "records");
    assert!(text_of(&doc, "#scan-denials").starts_with("25 in 11 keys"));
    assert!(records.ends_with("denials: 25, keys with denials: 11"));
    assert_eq!(text_of(&doc, "#card-alerts b"), "6");
    assert_eq!(text_of(&doc, "#card-denials b"), "25");
    // One row per printed alert, in order, linking to the key's section.
    let rows = select(&doc, "#alerts tr.hot");
    assert_eq!(rows.len(), printed.len());
    for (row, alert) in rows.iter().zip(&printed) {
        let cells: Vec<String> = row
            .child_elements()
            .map(|c| c.text().collect::<String>())
            .collect();
        assert_eq!(cells[1], alert["user.id"].as_str().unwrap_or_default());
        assert_eq!(cells[4], alert["total_denials"].to_string());
        // The key sections are the seed rule's; another rule's row names its rule.
        if alert["rule"]["id"] != bedrock_denied_models::rule::SEED.id {
            let id = alert["rule"]["id"].as_str().unwrap_or_default();
            let rule = bedrock_denied_models::rule::RULES
                .iter()
                .find(|r| r.id == id)
                .expect("a known rule");
            assert_eq!(cells[7], rule.what);
            continue;
        }
        let link = row
            .descendants()
            .filter_map(scraper::ElementRef::wrap)
            .find_map(|e| e.value().attr("href"))
            .expect("a link to the key");
        assert_eq!(select(&doc, link).len(), 1, "{link}");
    }
    // The other rules: an article each, with its alert and its groups.
    let rules = select(&doc, "#rules article.rule");
    assert_eq!(rules.len(), 3);
    for (article, (id, user, total)) in rules.iter().zip(the_stolen_keys_alerts_in_rule_order()) {
        let text: String = article.text().collect();
        assert!(text.contains(&id) && text.contains("1 alert ·"), "{text}");
        let row: String = select_in(article, "table.alerts tr.hot").concat();
        assert!(
            row.contains(&user) && row.contains(&total.to_string()),
            "{row}"
        );
    }
    // Mallory's second burst was suppressed, and her section says so.
    let mallory = text_of(&doc, "article.key");
    assert!(
        mallory.contains("ContractorAccess/mallory") && mallory.contains("1 suppressed"),
        "{mallory}"
    );
    // The tuning table tunes the seed rule: its configured cell is this run's seed
    // alerts; other cells are the seed alerts scans with those settings print.
    assert_eq!(cell_alerts(&doc, 3, 6), 3);
    assert!(text_of(&doc, "#tuning td.cfg").starts_with("3 alerts · 3 keys"));
    for (threshold, window) in [(1u64, 3u32), (2, 12), (4, 6), (5, 6), (1, 12)] {
        let t = threshold.to_string();
        let w = window.to_string();
        let other = scan(&["--threshold", &t, "--window-buckets", &w, &samples()]);
        let (_, other_html) =
            scan_with_report(&["--threshold", &t, "--window-buckets", &w, &samples()]);
        let other_doc = scraper::Html::parse_document(&other_html);
        let expected = of_seed(&alerts(&other)).len() as u64;
        assert_eq!(cell_alerts(&other_doc, threshold, window), expected);
        if threshold != 4 {
            assert_eq!(cell_alerts(&doc, threshold, window), expected, "{t} {w}");
        }
    }
    // Each other rule's table too: its configured cell is this run's alerts of the
    // rule, and other cells what scans with those settings (`--rule-settings`) print.
    for r in &bedrock_denied_models::rule::RULES[1..] {
        let scope = format!(r#"article[data-rule="{}"]"#, r.id);
        let printed_of_rule = printed.iter().filter(|a| a["rule"]["id"] == r.id).count() as u64;
        assert_eq!(
            rule_cell_alerts(&doc, &scope, r.threshold, r.window_buckets),
            printed_of_rule,
            "{}",
            r.id
        );
        let windows: &[u32] = if r.bucket_minutes == 1 {
            &[1, 5, 10]
        } else {
            &[3, 6, 12]
        };
        for &threshold in &[1u64, 2, 3, 5] {
            for &window in windows {
                let settings = format!("{}:threshold={threshold}:window_buckets={window}", r.id);
                let other = scan(&["--rule-settings", &settings, &samples()]);
                assert!(other.status.success(), "{}", stderr(&other));
                let expected = alerts(&other)
                    .iter()
                    .filter(|a| a["rule"]["id"] == r.id)
                    .count() as u64;
                assert_eq!(
                    rule_cell_alerts(&doc, &scope, threshold, window),
                    expected,
                    "{} threshold {threshold} window {window}",
                    r.id
                );
            }
        }
    }
}

#[test]
fn the_report_shows_what_exceptions_removed() {
    let rules = r#"[{"user.id": "arn:aws:sts::*:assumed-role/LegacyApp/*", "reason": "legacy batch, ticket SEC-42"},
                    {"user.id": "arn:aws:iam::111122223333:user/bob.smith", "threshold": 4, "reason": "QA account"}]"#;
    let (out, html) = scan_with_report(&["--exceptions", rules, &samples()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(of_seed(&alerts(&out)).len(), 1);
    let doc = scraper::Html::parse_document(&html);
    let cfg = text_of(&doc, "#tuning td.cfg");
    assert!(
        cfg.starts_with("1 alert · 1 key") && cfg.contains("without rules: 3 alerts · 3 keys"),
        "{cfg}"
    );
    let exceptions = text_of(&doc, "#set-exceptions");
    assert!(
        exceptions.contains("legacy batch, ticket SEC-42"),
        "{exceptions}"
    );
    let effect = text_of(&doc, "#tuning table:not(.tune)");
    assert!(effect.contains("stops alerts") && effect.contains("threshold 4"));
}

#[test]
fn a_hostile_principal_is_shown_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hostile = "arn:aws:iam::1:user/<script>alert(1)</script>\u{202E}fdp.exe\u{2066}";
    let body: String = (0..4)
        .map(|i| line(hostile, MODEL, ACCOUNT, T0 + i, Some(DENIED)))
        .collect();
    std::fs::write(dir.path().join("log.json"), body).expect("write");
    let (out, html) = scan_with_report(&[&dir.path().to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alerts(&out).len(), 1);
    let doc = scraper::Html::parse_document(&html);
    assert!(select(&doc, "script").is_empty());
    assert!(!html.contains("<script"));
    let text: String = doc.root_element().text().collect();
    assert!(!text.contains(['\u{202E}', '\u{2066}']));
    assert!(text.contains("<script>alert(1)</script>\\u{202e}fdp.exe\\u{2066}"));
}

#[test]
fn the_report_of_thousands_of_keys_stays_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::new();
    for k in 0..5000 {
        let who = format!(
            "arn:aws:sts::111122223333:assumed-role/Team{}/session-{k}",
            k % 40
        );
        for i in 0..(1 + k % 5) {
            body += &line(
                &who,
                MODEL,
                ACCOUNT,
                T0 + (k * 37 % 86_400) + i,
                Some(DENIED),
            );
        }
    }
    // Two objects: one object holds at most 4000 keys (docs/DESIGN.md, "Bounded memory").
    let half = body.len() / 2;
    let cut = half + body[half..].find('\n').map_or(0, |i| i + 1);
    std::fs::write(dir.path().join("log-1.json"), &body[..cut]).expect("write");
    std::fs::write(dir.path().join("log-2.json"), &body[cut..]).expect("write");
    let (out, html) = scan_with_report(&[&dir.path().to_string_lossy()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("keys with denials: 5000"),
        "{}",
        stderr(&out)
    );
    assert!(html.len() < 2 * 1024 * 1024, "{} bytes", html.len());
    let doc = scraper::Html::parse_document(&html);
    assert_eq!(
        select(&doc, "article.key").len(),
        bedrock_denied_models::report::MAX_KEY_SECTIONS
    );
    assert!(text_of(&doc, "#keys").contains("more keys with"));
}

#[test]
fn report_refuses_the_table_and_a_bad_path() {
    let out = scan(&["--report", "r.html", "--table", "t", &samples()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--report"), "{}", stderr(&out));
    let out = scan(&["--report", "/nonexistent/dir/r.html", &samples()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--report /nonexistent/dir/r.html"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "nothing scanned");
}

#[test]
fn a_call_told_by_both_logs_counts_once_in_scan_and_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = [0, 1, 2];
    let log: String = calls
        .iter()
        .map(|i| {
            record(
                MALLORY,
                MODEL,
                ACCOUNT,
                T0 + i,
                Some(DENIED),
                &format!("c{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect();
    let trail = json!({"Records": calls
        .iter()
        .map(|i| cloudtrail_record(MALLORY, MODEL, T0 + i, "InvokeModel", Some("AccessDenied"), &format!("c{i}")))
        .collect::<Vec<_>>()});
    std::fs::write(dir.path().join("a-invocations.json"), log).expect("write");
    std::fs::write(dir.path().join("b-trail.json"), trail.to_string()).expect("write");
    let (out, html) = scan_with_report(&[dir.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Six records, three calls: no alert (counted by record, 6 would alert).
    assert!(alerts(&out).is_empty(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("denials: 6, keys with denials: 1"), "{err}");
    assert!(
        err.contains("3 records of calls told by both logs left out"),
        "{err}"
    );
    // The report reads 6 denial records, and its key counts the 3 the store counted.
    let doc = scraper::Html::parse_document(&html);
    assert_eq!(text_of(&doc, "#card-denials b"), "6");
    let key = text_of(&doc, "article.key");
    assert!(key.contains("3 denials"), "{key}");
}
