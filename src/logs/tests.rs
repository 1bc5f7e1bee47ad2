use super::*;
use crate::testing::{cloudtrail_record, gzip, Chunked, FailingSource, ACCOUNT, ALICE as USER};
use proptest::prelude::*;
use std::collections::BTreeMap;

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const TS: &str = "2026-03-14T09:01:02Z";
const TS_EPOCH: i64 = 1_773_478_862;

/// The default codes: `AccessDeniedException` in invocation logs; CloudTrail's
/// `AccessDenied` and `AccessDeniedException`.
fn matcher() -> DenialMatcher {
    let c = crate::config::Config::default();
    DenialMatcher::new(&c.denial_codes, &c.cloudtrail_denial_codes)
}

fn bedrock_line(user: &str, model: &str, code: Option<&str>, prompt: &str) -> String {
    let mut v = serde_json::json!({
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": TS,
        "accountId": ACCOUNT,
        "identity": {"arn": user},
        "region": "us-east-1",
        "requestId": "req-1",
        "operation": "InvokeModel",
        "modelId": model,
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user", "content": prompt}]}},
    });
    if let Some(c) = code {
        v["errorCode"] = serde_json::Value::String(c.to_string());
    }
    v.to_string()
}

fn denial_line() -> String {
    bedrock_line(USER, MODEL, Some("AccessDeniedException"), "hello")
}

fn read(bytes: &[u8]) -> (Vec<Denial>, ReadOutcome) {
    let mut out = Vec::new();
    let r = read_log(bytes, &matcher(), None, |d| out.push(d));
    (out, r)
}

fn lines(ls: &[String]) -> Vec<u8> {
    let mut s = ls.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// (user, model, time) of each denial, in order.
fn who(ds: &[Denial]) -> Vec<(String, String, i64)> {
    ds.iter()
        .map(|d| (d.key.user_id.clone(), d.key.model_id.clone(), d.event_time))
        .collect()
}

#[test]
fn plain_json_lines() {
    let data = lines(&[
        denial_line(),
        bedrock_line(USER, MODEL, None, "a normal prompt"),
        bedrock_line(USER, MODEL, Some("ValidationException"), "bad request"),
        bedrock_line(USER, MODEL, Some("ThrottlingException"), "slow down"),
    ]);
    let (d, r) = read(&data);
    assert!(r.error.is_none());
    assert_eq!(r.stats.format, LogFormat::JsonLines);
    assert!(!r.stats.gzip);
    assert_eq!(r.stats.counts.records, 4);
    assert_eq!(r.stats.counts.denials, 1);
    assert_eq!(r.stats.counts.log_bytes, data.len() as u64);
    assert_eq!(r.stats.counts.skipped_lines(), 0);
    assert_eq!(
        d,
        vec![Denial {
            key: DenialKey::new(USER, MODEL, ACCOUNT),
            validation: false,
            event_time: TS_EPOCH,
            request_id: Some("req-1".into()),
            source: RecordKind::BedrockInvocationLog,
            context: DenialContext {
                region: Some("us-east-1".into()),
                operation: Some("InvokeModel".into()),
                ..DenialContext::default()
            },
        }]
    );
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let data = gzip(&lines(&[denial_line(), denial_line()]));
    let (d, r) = read(&data);
    assert!(r.error.is_none());
    assert!(r.stats.gzip);
    assert_eq!(d.len(), 2);
    assert_eq!(r.stats.counts.source_bytes, data.len() as u64);
}

#[test]
fn every_gzip_member_is_read() {
    let mut data = gzip(&lines(&[denial_line()]));
    data.extend(gzip(&lines(&[bedrock_line(USER, MODEL, None, "ok")])));
    data.extend(gzip(&lines(&[denial_line(), denial_line()])));
    let (d, r) = read(&data);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.stats.counts.records, 4);
    assert_eq!(d.len(), 3);
}

#[test]
fn accessdenied_inside_a_prompt_does_not_count() {
    let tricky = r#"{"errorCode":"AccessDeniedException","modelId":"x"} AccessDenied"#;
    let data = lines(&[bedrock_line(USER, MODEL, None, tricky)]);
    let (d, r) = read(&data);
    assert!(d.is_empty());
    assert_eq!(r.stats.counts.records, 1);
    assert_eq!(r.stats.counts.skipped_lines(), 0);
}

#[test]
fn each_source_counts_only_its_own_codes() {
    // Invocation logs: exactly the rule's AccessDeniedException. CloudTrail: also the
    // AccessDenied IAM writes for bedrock:InvokeModel.
    let data = lines(&[
        bedrock_line(USER, MODEL, Some("AccessDeniedException"), "a"),
        bedrock_line(USER, MODEL, Some("AccessDenied"), "b"),
        cloudtrail_record(
            USER,
            MODEL,
            TS_EPOCH,
            "InvokeModel",
            Some("AccessDenied"),
            "c1",
        )
        .to_string(),
        cloudtrail_record(
            USER,
            MODEL,
            TS_EPOCH,
            "InvokeModel",
            Some("AccessDeniedException"),
            "c2",
        )
        .to_string(),
    ]);
    let (d, r) = read(&data);
    let ids: Vec<_> = d
        .iter()
        .map(|x| x.request_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["req-1", "c1", "c2"]);
    assert_eq!(r.stats.counts.skipped_lines(), 0);
}

#[test]
fn configured_codes_replace_the_defaults() {
    let m = DenialMatcher::new(&["UnauthorizedOperation".to_string()], &[]);
    let data = lines(&[
        denial_line(),
        bedrock_line(USER, MODEL, Some("UnauthorizedOperation"), "x"),
        cloudtrail_record(
            USER,
            MODEL,
            TS_EPOCH,
            "InvokeModel",
            Some("AccessDenied"),
            "c",
        )
        .to_string(),
    ]);
    let mut out = Vec::new();
    let r = read_log(&data[..], &m, None, |d| out.push(d));
    assert_eq!(r.stats.counts.denials, 1);
    assert_eq!(out.len(), 1);
}

/// The rule, as Elastic runs it: each invocation-log record mapped with Elastic's
/// fields (`user.id` = identity.arn, `gen_ai.request.model.id` = modelId,
/// `cloud.account.id` = accountId, `gen_ai.response.error_code` = errorCode), then
/// `where error_code == "AccessDeniedException" | stats count(*) by user, model, account`.
fn rule_counts(data: &[u8]) -> BTreeMap<(String, String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let field = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
        if field("/errorCode").as_deref() != Some("AccessDeniedException") {
            continue;
        }
        if let (Some(u), Some(m), Some(a)) = (
            field("/identity/arn"),
            field("/modelId"),
            field("/accountId"),
        ) {
            *counts.entry((u, m, a)).or_insert(0) += 1;
        }
    }
    counts
}

fn reader_counts(data: &[u8]) -> BTreeMap<(String, String, String), u64> {
    let mut counts = BTreeMap::new();
    let r = read_log(data, &matcher(), None, |d| {
        *counts
            .entry((d.key.user_id, d.key.model_id, d.key.account_id))
            .or_insert(0) += 1;
    });
    assert!(r.error.is_none());
    counts
}

#[test]
fn default_totals_equal_the_rules_on_a_log_with_both_codes() {
    // One principal: 28 AccessDeniedException and 2 AccessDenied (which the rule does
    // not count in invocation logs), among successes and other errors.
    let mut ls = Vec::new();
    for (n, code) in [
        (28, Some("AccessDeniedException")),
        (2, Some("AccessDenied")),
        (5, None),
        (3, Some("ThrottlingException")),
    ] {
        for _ in 0..n {
            ls.push(bedrock_line(USER, MODEL, code, "p"));
        }
    }
    ls.rotate_left(28); // the two AccessDenied lines first
    let data = lines(&ls);
    let want = rule_counts(&data);
    assert_eq!(want.values().copied().collect::<Vec<_>>(), vec![28]);
    assert_eq!(reader_counts(&data), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn default_totals_equal_the_rules(
        records in proptest::collection::vec((0usize..3, 0usize..2, 0usize..2, 0usize..6), 1..80),
    ) {
        let users = [USER, "arn:aws:iam::111122223333:user/bob", "arn:aws:sts::444455556666:assumed-role/R/s"];
        let models = [MODEL, "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.meta.llama3-70b"];
        let accounts = [ACCOUNT, "444455556666"];
        let codes = [Some("AccessDeniedException"), Some("AccessDenied"), None, Some("ValidationException"), Some("AccessDeniedException"), Some("accessdeniedexception")];
        let ls: Vec<String> = records.iter().map(|(u, m, a, c)| {
            let mut v: serde_json::Value = serde_json::from_str(&bedrock_line(users[*u], models[*m], codes[*c], "p")).expect("json");
            v["accountId"] = accounts[*a].into();
            v.to_string()
        }).collect();
        let data = lines(&ls);
        prop_assert_eq!(reader_counts(&data), rule_counts(&data));
    }
}

#[test]
fn missing_fields_are_skipped_and_counted() {
    let mut no_identity: serde_json::Value = serde_json::from_str(&denial_line()).expect("json");
    no_identity
        .as_object_mut()
        .expect("object")
        .remove("identity");
    let mut empty_model: serde_json::Value = serde_json::from_str(&denial_line()).expect("json");
    empty_model["modelId"] = "".into();
    let mut bad_time: serde_json::Value = serde_json::from_str(&denial_line()).expect("json");
    bad_time["timestamp"] = "yesterday".into();
    let data = lines(&[
        no_identity.to_string(),
        empty_model.to_string(),
        bad_time.to_string(),
        denial_line(),
    ]);
    let (d, r) = read(&data);
    assert_eq!(d.len(), 1);
    assert_eq!(r.stats.counts.skipped_missing_fields, 2);
    assert_eq!(r.stats.counts.skipped_bad_timestamp, 1);
    assert!(r.error.is_none());
}

#[test]
fn non_json_and_incomplete_lines_are_skipped_and_counted() {
    let full = denial_line();
    let cut = &full[..full.len() / 2];
    let mut wrong_type: serde_json::Value = serde_json::from_str(&full).expect("json");
    wrong_type["modelId"] = 42.into();
    let data = lines(&[
        "not json at all".to_string(),
        cut.to_string(),
        wrong_type.to_string(),
        "{\"errorCode\":\"AccessDenied\", broken}".to_string(),
        full.clone(),
        String::new(),
        cut.to_string(), // last line cut short, no newline after it
    ]);
    let data = &data[..data.len() - 1];
    let (d, r) = read(data);
    assert_eq!(d.len(), 1);
    assert_eq!(r.stats.counts.records, 6);
    assert_eq!(r.stats.counts.skipped_invalid_json, 5);
    assert!(r.error.is_none());
}

#[test]
fn non_utf8_bytes_never_panic() {
    let mut data = Vec::new();
    // A success line with invalid UTF-8 in its prompt: counted, not parsed.
    data.extend_from_slice(b"{\"modelId\":\"m\",\"input\":\"\xff\xfe\"}\n");
    // A denial line with invalid UTF-8 in an id: cannot be trusted, skipped.
    data.extend_from_slice(
        format!(
            "{{\"errorCode\":\"AccessDeniedException\",\"timestamp\":\"{TS}\",\"accountId\":\"1\",\"modelId\":\"m\",\"identity\":{{\"arn\":\"a"
        )
        .as_bytes(),
    );
    data.extend_from_slice(b"\xff\"}}\n");
    data.extend_from_slice(b"\xff\xff\n");
    data.extend_from_slice(denial_line().as_bytes());
    let (d, r) = read(&data);
    assert_eq!(d.len(), 1);
    assert_eq!(r.stats.counts.records, 4);
    assert_eq!(r.stats.counts.skipped_invalid_json, 2);
}

#[test]
fn ids_are_kept_byte_for_byte() {
    let user = "arn:aws:sts::111122223333:assumed-role/R+o=l,e.@-_/sessión ünïcødé 🚀";
    let model = "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
    let data = lines(&[bedrock_line(
        user,
        model,
        Some("AccessDeniedException"),
        "x",
    )]);
    let (d, _) = read(&data);
    assert_eq!(d[0].key.user_id, user);
    assert_eq!(d[0].key.model_id, model);
    // JSON escapes are decoded, nothing else changes: no trim, no case folding.
    let escaped = format!(
        "{{\"errorCode\":\"AccessDeniedException\",\"timestamp\":\"{TS}\",\"accountId\":\" 1 \",\"modelId\":\"M\\u00e9\",\"identity\":{{\"arn\":\"A\\/b\"}}}}\n"
    );
    let (d, _) = read(escaped.as_bytes());
    assert_eq!(d[0].key, DenialKey::new("A/b", "Mé", " 1 "));
}

#[test]
fn ids_longer_than_any_aws_limit_are_cut_marked_and_kept_apart() {
    let long = |tail: &str| format!("arn:aws:iam::{ACCOUNT}:user/{}{tail}", "x".repeat(1 << 20));
    let data = lines(&[
        bedrock_line(&long("a"), MODEL, Some("AccessDeniedException"), "p"),
        bedrock_line(&long("b"), MODEL, Some("AccessDeniedException"), "p"),
        bedrock_line(&long("a"), MODEL, Some("AccessDeniedException"), "p"),
    ]);
    let (d, r) = read(&data);
    assert_eq!(r.stats.counts.denials, 3);
    for denial in &d {
        assert!(
            denial.key.user_id.len() <= 400,
            "{}",
            denial.key.user_id.len()
        );
        assert!(denial.key.user_id.contains("sha256"), "marked");
    }
    assert_eq!(d[0].key, d[2].key, "the same id keys the same");
    assert_ne!(d[0].key, d[1].key, "different ids stay apart");
}

#[test]
fn evidence_is_cut_to_its_display_length_as_it_is_read() {
    let mut record = cloudtrail_record(
        USER,
        MODEL,
        TS_EPOCH,
        "InvokeModel",
        Some("AccessDenied"),
        "r",
    );
    record["requestID"] = serde_json::json!("q".repeat(1 << 20));
    record["userAgent"] = serde_json::json!("é".repeat(1 << 19));
    let data = format!("{{\"Records\": [{record}]}}");
    let (d, _) = read(data.as_bytes());
    let request_id = d[0].request_id.as_deref().unwrap_or_default();
    assert_eq!(request_id.len(), record::MAX_REQUEST_ID_BYTES);
    let agent = d[0].context.user_agent.as_deref().unwrap_or_default();
    assert!(agent.len() <= record::MAX_EVIDENCE_BYTES && agent.starts_with('é'));
}

#[test]
fn a_denial_of_another_account_than_the_folders_is_skipped_and_named() {
    let other = |account: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&denial_line()).expect("line");
        v["accountId"] = serde_json::json!(account);
        v.to_string()
    };
    let data = lines(&[
        denial_line(),
        other("444455556666"),
        other("999988887777"),
        denial_line(),
    ]);
    let mut out = Vec::new();
    let r = read_log(&data[..], &matcher(), Some(ACCOUNT), |d| out.push(d));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| d.key.account_id == ACCOUNT));
    assert_eq!(r.stats.counts.denials, 2);
    assert_eq!(r.stats.counts.skipped_account_mismatch, 2);
    assert_eq!(r.mismatched_account.as_deref(), Some("444455556666"));
    // Without a folder account every denial counts, as before.
    let (d, r) = read(&data);
    assert_eq!((d.len(), r.stats.counts.skipped_account_mismatch), (4, 0));
    // CloudTrail's account (recipientAccountId) is checked the same way.
    let ct = cloudtrail_record(
        USER,
        MODEL,
        TS_EPOCH,
        "InvokeModel",
        Some("AccessDenied"),
        "r",
    );
    let doc = format!("{{\"Records\": [{ct}]}}");
    let r = read_log(doc.as_bytes(), &matcher(), Some("444455556666"), |_| {});
    assert_eq!(
        (
            r.stats.counts.denials,
            r.stats.counts.skipped_account_mismatch
        ),
        (0, 1)
    );
}

#[test]
fn a_principal_of_another_account_speaks_only_where_no_location_names_one() {
    let foreign = "arn:aws:sts::999988887777:assumed-role/OrgAdmin/x";
    let data = lines(&[
        denial_line(),
        bedrock_line(foreign, MODEL, Some("AccessDeniedException"), "hi"),
        // An ARN that names no account is no claim of another account.
        bedrock_line("not-an-arn", MODEL, Some("AccessDeniedException"), "hi"),
    ]);
    let mut out = Vec::new();
    let r = read_log(&data[..], &matcher(), Some(ACCOUNT), |d| out.push(d));
    assert_eq!(out.len(), 2, "{:?}", who(&out));
    assert!(out.iter().all(|d| d.key.user_id != foreign));
    assert_eq!(r.stats.counts.skipped_account_mismatch, 1);
    assert_eq!(r.mismatched_account.as_deref(), Some("999988887777"));
    // A bare file names no account: the rule counts every record, as the ES|QL does.
    let (d, r) = read(&data);
    assert_eq!((d.len(), r.stats.counts.skipped_account_mismatch), (3, 0));
    // CloudTrail's cross-account caller is a call into the recipient account: counted
    // there (the finding then names no resource of the caller's account).
    let mut ct = cloudtrail_record(
        foreign,
        MODEL,
        TS_EPOCH,
        "InvokeModel",
        Some("AccessDenied"),
        "r",
    );
    ct["userIdentity"]["accountId"] = serde_json::json!("999988887777");
    let doc = format!("{{\"Records\": [{ct}]}}");
    let r = read_log(doc.as_bytes(), &matcher(), Some(ACCOUNT), |_| {});
    assert_eq!(
        (
            r.stats.counts.denials,
            r.stats.counts.skipped_account_mismatch
        ),
        (1, 0)
    );
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_reports() {
    let many: Vec<String> = (0..5000).map(|_| denial_line()).collect();
    let data = gzip(&lines(&many));
    let cut = &data[..data.len() / 2];
    let (d, r) = read(cut);
    let err = r.error.expect("truncation is reported");
    assert!(!err.is_retryable(), "{err}");
    assert!(matches!(err, ReadError::CorruptGzip { .. }), "{err}");
    assert!(!d.is_empty() && d.len() < 5000, "{}", d.len());
    assert_eq!(r.stats.counts.denials as usize, d.len());
}

#[test]
fn corrupt_gzip_is_reported_not_panicked() {
    let mut data = gzip(&lines(&[denial_line(), denial_line()]));
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let (_, r) = read(&data);
    assert!(matches!(r.error, Some(ReadError::CorruptGzip { .. })));
}

#[test]
fn oversized_line_is_skipped_without_buffering_it() {
    let mut data = Vec::with_capacity(MAX_LINE_BYTES + 4096);
    data.extend_from_slice(denial_line().as_bytes());
    data.push(b'\n');
    data.extend_from_slice(b"{\"errorCode\":\"AccessDeniedException\",\"input\":\"");
    data.resize(data.len() + MAX_LINE_BYTES + 10, b'a');
    data.extend_from_slice(b"\"}\n");
    data.extend_from_slice(denial_line().as_bytes());
    data.push(b'\n');
    let (d, r) = read(&data);
    assert_eq!(d.len(), 2);
    assert_eq!(r.stats.counts.skipped_oversized_line, 1);
    assert_eq!(r.stats.counts.records, 3);
}

#[test]
fn long_line_under_the_cap_is_parsed() {
    let big = "word ".repeat(400_000); // 2 MB prompt, beyond one block
    let data = lines(&[
        bedrock_line(USER, MODEL, Some("AccessDeniedException"), &big),
        denial_line(),
    ]);
    let (d, r) = read(&data);
    assert_eq!(d.len(), 2);
    assert_eq!(r.stats.counts.skipped_lines(), 0);
}

#[test]
fn crlf_line_ends() {
    let data = format!("{}\r\n{}\r\n", denial_line(), denial_line());
    let (d, r) = read(data.as_bytes());
    assert_eq!(d.len(), 2);
    assert_eq!(r.stats.counts.skipped_lines(), 0);
}

#[test]
fn empty_object() {
    let (d, r) = read(b"");
    assert!(d.is_empty());
    assert_eq!(r.stats.format, LogFormat::Empty);
    assert!(r.error.is_none());
    let (_, r) = read(&gzip(b""));
    assert_eq!(r.stats.format, LogFormat::Empty);
    assert!(r.error.is_none());
    let (_, r) = read(b"  \n\n ");
    assert_eq!(r.stats.format, LogFormat::Empty);
}

fn ct(source: &str, name: &str, code: Option<&str>, recipient: bool) -> serde_json::Value {
    let mut v = cloudtrail_record(USER, MODEL, TS_EPOCH, name, code, "ct-req");
    v["eventSource"] = source.into();
    if !recipient {
        v.as_object_mut()
            .expect("object")
            .remove("recipientAccountId");
    }
    v
}

#[test]
fn cloudtrail_counts_only_bedrock_invocations() {
    let doc = serde_json::json!({"Records": [
        ct("bedrock.amazonaws.com", "InvokeModel", Some("AccessDenied"), true),
        ct("bedrock.amazonaws.com", "Converse", Some("AccessDeniedException"), false),
        ct("bedrock.amazonaws.com", "InvokeModelWithResponseStream", Some("AccessDenied"), true),
        ct("bedrock.amazonaws.com", "ConverseStream", Some("AccessDenied"), true),
        ct("bedrock.amazonaws.com", "ListFoundationModels", Some("AccessDenied"), true),
        ct("s3.amazonaws.com", "GetObject", Some("AccessDenied"), true),
        ct("bedrock.amazonaws.com", "InvokeModel", None, true),
        ct("bedrock.amazonaws.com", "InvokeModel", Some("ValidationException"), true),
    ]});
    for data in [
        doc.to_string().into_bytes(),
        gzip(doc.to_string().as_bytes()),
    ] {
        let (d, r) = read(&data);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.stats.format, LogFormat::CloudTrail);
        assert_eq!(r.stats.counts.records, 8);
        assert_eq!(r.stats.counts.log_bytes, doc.to_string().len() as u64);
        assert_eq!(d.len(), 4);
        for x in &d {
            // recipientAccountId, else userIdentity.accountId
            assert_eq!(x.key, DenialKey::new(USER, MODEL, ACCOUNT));
            assert_eq!(x.request_id.as_deref(), Some("ct-req"));
            assert_eq!(x.event_time, TS_EPOCH);
            assert_eq!(x.context.source_ip.as_deref(), Some("203.0.113.7"));
            assert_eq!(x.context.region.as_deref(), Some("us-east-1"));
            assert!(x
                .context
                .user_agent
                .as_deref()
                .is_some_and(|u| u.starts_with("aws-cli/")));
            assert!(x
                .context
                .error_message
                .as_deref()
                .is_some_and(|m| m.contains("not authorized")));
        }
        let ops: Vec<_> = d
            .iter()
            .filter_map(|x| x.context.operation.clone())
            .collect();
        assert_eq!(
            ops,
            [
                "InvokeModel",
                "Converse",
                "InvokeModelWithResponseStream",
                "ConverseStream"
            ]
        );
    }
}

#[test]
fn pretty_printed_cloudtrail_with_other_keys() {
    // CloudTrail writes `Records` first; other keys after it are skipped.
    let rec = serde_json::to_string_pretty(&ct(
        "bedrock.amazonaws.com",
        "InvokeModel",
        Some("AccessDenied"),
        true,
    ))
    .expect("json");
    let text = format!("{{\n  \"Records\" : [\n{rec}\n  ],\n  \"Other\": {{\"x\": [1, 2, 3]}}\n}}");
    let (d, r) = read(format!("\n  {text}\n").as_bytes());
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.stats.format, LogFormat::CloudTrail);
    assert_eq!(d.len(), 1);
}

/// 15 CloudTrail records, 4 of them denied invocations.
fn fifteen_records() -> Vec<serde_json::Value> {
    (0..15)
        .map(|i| {
            let code = (i % 4 == 0).then_some("AccessDenied");
            cloudtrail_record(
                USER,
                MODEL,
                TS_EPOCH + i,
                "InvokeModel",
                code,
                &format!("id-{i}"),
            )
        })
        .collect()
}

fn expect_fifteen(data: &[u8], format: LogFormat) {
    for bytes in [data.to_vec(), gzip(data)] {
        let (d, r) = read(&bytes);
        assert!(r.error.is_none(), "{format:?}: {:?}", r.error);
        assert_eq!(r.stats.format, format);
        assert_eq!(r.stats.counts.records, 15, "{format:?}");
        assert_eq!(r.stats.counts.skipped_lines(), 0, "{format:?}");
        let ids: Vec<_> = d.iter().filter_map(|x| x.request_id.clone()).collect();
        assert_eq!(ids, ["id-0", "id-4", "id-8", "id-12"], "{format:?}");
    }
}

#[test]
fn a_top_level_array_of_records() {
    let array = serde_json::Value::Array(fifteen_records());
    expect_fifteen(array.to_string().as_bytes(), LogFormat::JsonArray);
    let pretty = serde_json::to_string_pretty(&array).expect("json");
    expect_fifteen(pretty.as_bytes(), LogFormat::JsonArray);
}

#[test]
fn lookup_events_output() {
    // `aws cloudtrail lookup-events`: each record is a JSON string in CloudTrailEvent.
    let events: Vec<_> = fifteen_records()
        .into_iter()
        .map(|r| {
            serde_json::json!({"EventId": r["eventID"], "EventName": "InvokeModel",
                "ReadOnly": "false", "EventTime": "2026-03-14T09:01:02+00:00",
                "EventSource": "bedrock.amazonaws.com", "Username": "alice",
                "Resources": [], "CloudTrailEvent": r.to_string()})
        })
        .collect();
    let doc = serde_json::json!({"Events": events, "NextToken": "abc"});
    expect_fifteen(
        serde_json::to_string_pretty(&doc).expect("json").as_bytes(),
        LogFormat::LookupEvents,
    );
    expect_fifteen(doc.to_string().as_bytes(), LogFormat::LookupEvents);
}

#[test]
fn records_pretty_printed_one_after_another() {
    let text: String = fifteen_records()
        .iter()
        .map(|r| serde_json::to_string_pretty(r).expect("json") + "\n")
        .collect();
    expect_fifteen(text.as_bytes(), LogFormat::JsonValues);
}

#[test]
fn a_record_over_the_cap_in_a_document_stops_the_object() {
    let mut big = cloudtrail_record(
        USER,
        MODEL,
        TS_EPOCH,
        "InvokeModel",
        Some("AccessDenied"),
        "big",
    );
    big["requestParameters"]["prompt"] = "x".repeat(MAX_LINE_BYTES + 1).into();
    let small = cloudtrail_record(
        USER,
        MODEL,
        TS_EPOCH,
        "InvokeModel",
        Some("AccessDenied"),
        "small",
    );
    let doc = serde_json::json!({"Records": [small.clone(), big, small]});
    let (d, r) = read(doc.to_string().as_bytes());
    assert_eq!(d.len(), 1, "the record before the big one counts");
    assert_eq!(r.stats.counts.skipped_oversized_line, 1);
    assert!(
        matches!(r.error, Some(ReadError::MalformedDocument { .. })),
        "{:?}",
        r.error
    );
}

#[test]
fn truncated_cloudtrail_keeps_records_before_the_cut() {
    let recs: Vec<_> = (0..50)
        .map(|_| {
            ct(
                "bedrock.amazonaws.com",
                "InvokeModel",
                Some("AccessDenied"),
                true,
            )
        })
        .collect();
    let text = serde_json::json!({ "Records": recs }).to_string();
    let cut = &text.as_bytes()[..text.len() * 3 / 4];
    let (d, r) = read(cut);
    assert!(
        matches!(
            r.error,
            Some(ReadError::MalformedDocument {
                format: LogFormat::CloudTrail,
                ..
            })
        ),
        "{:?}",
        r.error
    );
    assert!(d.len() >= 30 && d.len() < 50, "{}", d.len());
    // Gzip cut: the gzip error is what is reported.
    let (d2, r2) = read(&gzip(text.as_bytes())[..200]);
    assert!(r2.error.is_some());
    assert!(d2.len() < 50);
}

#[test]
fn cloudtrail_record_of_wrong_shape_is_skipped() {
    let mut bad = ct(
        "bedrock.amazonaws.com",
        "InvokeModel",
        Some("AccessDenied"),
        true,
    );
    bad["userIdentity"] = "not an object".into();
    let doc = serde_json::json!({"Records": [
        bad,
        ct("bedrock.amazonaws.com", "InvokeModel", Some("AccessDenied"), true),
        7,
    ]});
    let (d, r) = read(doc.to_string().as_bytes());
    assert_eq!(d.len(), 1);
    assert_eq!(r.stats.counts.records, 3);
    assert_eq!(r.stats.counts.skipped_invalid_json, 2);
}

#[test]
fn deeply_nested_json_is_rejected_not_overflowed() {
    let deep = format!(
        "{{\"errorCode\":\"AccessDeniedException\",\"identity\":{}{}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (d, r) = read(deep.as_bytes());
    assert!(d.is_empty());
    assert_eq!(r.stats.counts.skipped_invalid_json, 1);
}

#[test]
fn messages_are_records_one_each() {
    let messages = [
        denial_line(),
        "not json at all".to_string(),
        bedrock_line(USER, MODEL, None, "fine"),
        cloudtrail_record(
            USER,
            MODEL,
            TS_EPOCH,
            "Converse",
            Some("AccessDenied"),
            "ct",
        )
        .to_string(),
    ];
    let mut out = Vec::new();
    let stats = read_messages(messages.iter().map(String::as_str), &matcher(), None, |d| {
        out.push(d)
    })
    .stats;
    assert_eq!(stats.counts.records, 4);
    assert_eq!(stats.counts.denials, 2);
    assert_eq!(stats.counts.skipped_invalid_json, 1);
    assert_eq!(out[1].request_id.as_deref(), Some("ct"));
}

#[test]
fn source_failure_is_retryable_not_corruption() {
    let many: Vec<String> = (0..2000).map(|_| denial_line()).collect();
    for data in [lines(&many), gzip(&lines(&many))] {
        let src = FailingSource {
            data: &data,
            fail_at: data.len() / 2,
        };
        let r = read_log(src, &matcher(), None, |_| {});
        let err = r.error.expect("failure reported");
        assert!(err.is_retryable(), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_read_sizes_give_the_same_denials(
        kinds in proptest::collection::vec(0u8..5, 1..60),
        sizes in proptest::collection::vec(1usize..5000, 1..8),
        compress in any::<bool>(),
    ) {
        let ls: Vec<String> = kinds.iter().enumerate().map(|(i, k)| match k {
            0 => bedrock_line(&format!("{USER}-{i}"), MODEL, Some("AccessDeniedException"), "p"),
            1 => bedrock_line(USER, MODEL, None, &"long prompt text ".repeat(i * 40)),
            2 => bedrock_line(USER, MODEL, None, "mentions \"AccessDenied\" in text"),
            3 => "garbage".to_string(),
            // AccessDenied is not a denial in an invocation log.
            _ => bedrock_line(USER, &format!("{MODEL}-{i}"), Some("AccessDenied"), "p"),
        }).collect();
        let data = lines(&ls);
        let data = if compress { gzip(&data) } else { data };
        let expected: Vec<(String, String, i64)> = kinds.iter().enumerate()
            .filter(|(_, k)| **k == 0)
            .map(|(i, _)| (format!("{USER}-{i}"), MODEL.to_string(), TS_EPOCH))
            .collect();
        let mut got = Vec::new();
        let r = read_log(Chunked::new(&data, sizes), &matcher(), None, |d| got.push(d));
        prop_assert!(r.error.is_none());
        prop_assert_eq!(r.stats.counts.records, kinds.len() as u64);
        prop_assert_eq!(who(&got), expected);
        prop_assert_eq!(r.stats.counts.skipped_invalid_json, kinds.iter().filter(|k| **k == 3).count() as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), gz in any::<bool>()) {
        let data = if gz { gzip(&data) } else { data };
        let _ = read_log(&data[..], &matcher(), None, |_| {});
        // Also when cut anywhere.
        let _ = read_log(&data[..data.len() / 2], &matcher(), None, |_| {});
    }
}
