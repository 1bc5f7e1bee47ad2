use super::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;

const USER: &str = "arn:aws:sts::111122223333:assumed-role/Analyst/alice";
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const ACCOUNT: &str = "111122223333";
const TS: &str = "2026-03-14T09:01:02Z";
const TS_EPOCH: i64 = 1_773_478_862;

fn matcher() -> DenialMatcher {
    DenialMatcher::new(&[
        "AccessDeniedException".to_string(),
        "AccessDenied".to_string(),
    ])
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

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn read(bytes: &[u8]) -> (Vec<Denial>, ReadOutcome) {
    let mut out = Vec::new();
    let r = read_log(bytes, &matcher(), |d| out.push(d));
    (out, r)
}

fn lines(ls: &[String]) -> Vec<u8> {
    let mut s = ls.join("\n");
    s.push('\n');
    s.into_bytes()
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
    assert_eq!(r.stats.records, 4);
    assert_eq!(r.stats.denials, 1);
    assert_eq!(r.stats.skipped, Skipped::default());
    assert_eq!(
        d,
        vec![Denial {
            key: DenialKey::new(USER, MODEL, ACCOUNT),
            event_time: TS_EPOCH,
            request_id: Some("req-1".into()),
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
    assert_eq!(r.stats.source_bytes, data.len() as u64);
}

#[test]
fn every_gzip_member_is_read() {
    let mut data = gzip(&lines(&[denial_line()]));
    data.extend(gzip(&lines(&[bedrock_line(USER, MODEL, None, "ok")])));
    data.extend(gzip(&lines(&[denial_line(), denial_line()])));
    let (d, r) = read(&data);
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.stats.records, 4);
    assert_eq!(d.len(), 3);
}

#[test]
fn accessdenied_inside_a_prompt_does_not_count() {
    let tricky = r#"{"errorCode":"AccessDeniedException","modelId":"x"} AccessDenied"#;
    let data = lines(&[bedrock_line(USER, MODEL, None, tricky)]);
    let (d, r) = read(&data);
    assert!(d.is_empty());
    assert_eq!(r.stats.records, 1);
    assert_eq!(r.stats.skipped.total(), 0);
}

#[test]
fn configured_codes_replace_the_defaults() {
    let m = DenialMatcher::new(&["UnauthorizedOperation".to_string()]);
    let data = lines(&[
        denial_line(),
        bedrock_line(USER, MODEL, Some("UnauthorizedOperation"), "x"),
    ]);
    let mut out = Vec::new();
    let r = read_log(&data[..], &m, |d| out.push(d));
    assert_eq!(r.stats.denials, 1);
    assert_eq!(out.len(), 1);
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
    assert_eq!(r.stats.skipped.missing_fields, 2);
    assert_eq!(r.stats.skipped.bad_timestamp, 1);
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
    assert_eq!(r.stats.records, 6);
    assert_eq!(r.stats.skipped.invalid_json, 5);
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
    assert_eq!(r.stats.records, 4);
    assert_eq!(r.stats.skipped.invalid_json, 2);
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
fn truncated_gzip_keeps_what_was_read_and_reports() {
    let many: Vec<String> = (0..5000).map(|_| denial_line()).collect();
    let data = gzip(&lines(&many));
    let cut = &data[..data.len() / 2];
    let (d, r) = read(cut);
    let err = r.error.expect("truncation is reported");
    assert!(!err.is_retryable(), "{err}");
    assert!(matches!(err, ReadError::CorruptGzip { .. }), "{err}");
    assert!(!d.is_empty() && d.len() < 5000, "{}", d.len());
    assert_eq!(r.stats.denials as usize, d.len());
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
    assert_eq!(r.stats.skipped.oversized_line, 1);
    assert_eq!(r.stats.records, 3);
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
    assert_eq!(r.stats.skipped, Skipped::default());
}

#[test]
fn crlf_line_ends() {
    let data = format!("{}\r\n{}\r\n", denial_line(), denial_line());
    let (d, r) = read(data.as_bytes());
    assert_eq!(d.len(), 2);
    assert_eq!(r.stats.skipped.total(), 0);
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
}

fn cloudtrail_record(
    source: &str,
    name: &str,
    code: Option<&str>,
    recipient: bool,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "arn": USER, "accountId": ACCOUNT,
                         "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
        "eventTime": TS,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": {"modelId": MODEL},
        "responseElements": null,
        "requestID": "ct-req",
        "eventID": "e1",
    });
    if let Some(c) = code {
        v["errorCode"] = c.into();
        v["errorMessage"] = "User is not authorized".into();
    }
    if recipient {
        v["recipientAccountId"] = ACCOUNT.into();
    }
    v
}

#[test]
fn cloudtrail_counts_only_bedrock_invocations() {
    let doc = serde_json::json!({"Records": [
        cloudtrail_record("bedrock.amazonaws.com", "InvokeModel", Some("AccessDenied"), true),
        cloudtrail_record("bedrock.amazonaws.com", "Converse", Some("AccessDeniedException"), false),
        cloudtrail_record("bedrock.amazonaws.com", "InvokeModelWithResponseStream", Some("AccessDenied"), true),
        cloudtrail_record("bedrock.amazonaws.com", "ConverseStream", Some("AccessDenied"), true),
        cloudtrail_record("bedrock.amazonaws.com", "ListFoundationModels", Some("AccessDenied"), true),
        cloudtrail_record("s3.amazonaws.com", "GetObject", Some("AccessDenied"), true),
        cloudtrail_record("bedrock.amazonaws.com", "InvokeModel", None, true),
        cloudtrail_record("bedrock.amazonaws.com", "InvokeModel", Some("ValidationException"), true),
    ]});
    for data in [
        doc.to_string().into_bytes(),
        gzip(doc.to_string().as_bytes()),
    ] {
        let (d, r) = read(&data);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.stats.format, LogFormat::CloudTrail);
        assert_eq!(r.stats.records, 8);
        assert_eq!(d.len(), 4);
        for x in &d {
            // recipientAccountId, else userIdentity.accountId
            assert_eq!(x.key, DenialKey::new(USER, MODEL, ACCOUNT));
            assert_eq!(x.request_id.as_deref(), Some("ct-req"));
            assert_eq!(x.event_time, TS_EPOCH);
        }
    }
}

#[test]
fn pretty_printed_cloudtrail_with_other_keys() {
    // CloudTrail writes `Records` first; other keys after it are skipped.
    let rec = serde_json::to_string_pretty(&cloudtrail_record(
        "bedrock.amazonaws.com",
        "InvokeModel",
        Some("AccessDenied"),
        true,
    ))
    .expect("json");
    let text = format!("{{\n  \"Records\" : [\n{rec}\n  ],\n  \"Other\": {{\"x\": [1, 2, 3]}}\n}}");
    let (d, r) = read(format!("\n  {text}\n").as_bytes());
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(d.len(), 1);
}

#[test]
fn truncated_cloudtrail_keeps_records_before_the_cut() {
    let recs: Vec<_> = (0..50)
        .map(|_| {
            cloudtrail_record(
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
        matches!(r.error, Some(ReadError::MalformedCloudTrail { .. })),
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
    let mut bad = cloudtrail_record(
        "bedrock.amazonaws.com",
        "InvokeModel",
        Some("AccessDenied"),
        true,
    );
    bad["userIdentity"] = "not an object".into();
    let doc = serde_json::json!({"Records": [
        bad,
        cloudtrail_record("bedrock.amazonaws.com", "InvokeModel", Some("AccessDenied"), true),
    ]});
    let (d, r) = read(doc.to_string().as_bytes());
    assert_eq!(d.len(), 1);
    assert_eq!(r.stats.skipped.invalid_json, 1);
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
    assert_eq!(r.stats.skipped.invalid_json, 1);
}

/// A source that fails after some bytes, like a dropped S3 connection.
pub(crate) struct FailingSource<'a> {
    pub data: &'a [u8],
    pub fail_at: usize,
}

impl Read for FailingSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_at == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(self.fail_at).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.fail_at -= n;
        Ok(n)
    }
}

#[test]
fn source_failure_is_retryable_not_corruption() {
    let many: Vec<String> = (0..2000).map(|_| denial_line()).collect();
    for data in [lines(&many), gzip(&lines(&many))] {
        let src = FailingSource {
            data: &data,
            fail_at: data.len() / 2,
        };
        let r = read_log(src, &matcher(), |_| {});
        let err = r.error.expect("failure reported");
        assert!(err.is_retryable(), "{err}");
    }
}

/// Hands out at most `sizes[i]` bytes per read, cycling: exercises every boundary.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
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
            _ => bedrock_line(USER, &format!("{MODEL}-{i}"), Some("AccessDenied"), "p"),
        }).collect();
        let data = lines(&ls);
        let data = if compress { gzip(&data) } else { data };
        let expected: Vec<String> = kinds.iter().enumerate()
            .filter(|(_, k)| **k == 0 || **k == 4)
            .map(|(i, _)| ls[i].clone()).collect();
        let mut got = Vec::new();
        let r = read_log(Chunked { data: &data, sizes, i: 0 }, &matcher(), |d| got.push(d));
        prop_assert!(r.error.is_none());
        prop_assert_eq!(r.stats.records, kinds.len() as u64);
        prop_assert_eq!(got.len(), expected.len());
        prop_assert_eq!(r.stats.skipped.invalid_json, kinds.iter().filter(|k| **k == 3).count() as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), gz in any::<bool>()) {
        let data = if gz { gzip(&data) } else { data };
        let _ = read_log(&data[..], &matcher(), |_| {});
        // Also when cut anywhere.
        let _ = read_log(&data[..data.len() / 2], &matcher(), |_| {});
    }
}

#[test]
fn housekeeping_objects_are_skipped() {
    assert_eq!(skip_reason("AWSLogs/1/x.json.gz", 0), Some("empty object"));
    assert!(skip_reason(
        "AWSLogs/1/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        10
    )
    .is_some());
    assert!(skip_reason(
        "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/data/abc.json.gz",
        10
    )
    .is_some());
    assert_eq!(
        skip_reason(
            "AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz",
            10
        ),
        None
    );
}
