use super::*;
use crate::window::WindowSpec;

fn sample(user: &str, model: &str) -> Alert {
    let spec = WindowSpec::new(10, 6);
    let t = 1_773_478_800; // 2026-03-14T09:00:00Z
    let b = spec.bucket_of(t);
    let counts = BTreeMap::from([(b, 4)]);
    let key = DenialKey::new(user, model, "111122223333");
    let mut denials = KeyDenials {
        buckets: counts.clone(),
        request_ids: vec!["r-1".into()],
        ..KeyDenials::default()
    };
    denials.context.add(crate::logs::DenialContext {
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("aws-cli/2.15.0".into()),
        error_message: Some("not authorized".into()),
        region: Some("us-east-1".into()),
        operation: Some("InvokeModel".into()),
    });
    Alert::build(
        &key,
        &WindowTotal { end: b, total: 4 },
        &counts,
        &spec,
        3,
        &ObjectId::s3("bucket", "key", "etag"),
        &denials,
    )
}

#[test]
fn json_matches_the_spec_example() {
    let a = sample(
        "arn:aws:sts::111122223333:assumed-role/Role/session",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    );
    let v: serde_json::Value = serde_json::from_str(&a.to_json()).expect("json");
    let expected = serde_json::json!({
      "rule": {"id": "17261da3-a6d0-463c-aac8-ea1718afcd20",
               "name": "AWS Bedrock Detected Multiple Attempts to use Denied Models by a Single User",
               "severity": "high", "risk_score": 73,
               "threat": ["AML.T0015", "AML.T0034"]},
      "user.id": "arn:aws:sts::111122223333:assumed-role/Role/session",
      "gen_ai.request.model.id": "anthropic.claude-3-5-sonnet-20240620-v1:0",
      "cloud.account.id": "111122223333",
      "total_denials": 4,
      "threshold": 3,
      "window": {"start": "2026-03-14T08:10:00Z", "end": "2026-03-14T09:10:00Z"},
      "buckets": [{"start": "2026-03-14T09:00:00Z", "denials": 4}],
      "evidence": {"objects": ["s3://bucket/key"], "request_ids": ["r-1"],
                   "source_ips": ["203.0.113.7"], "user_agents": ["aws-cli/2.15.0"],
                   "error_messages": ["not authorized"], "regions": ["us-east-1"],
                   "operations": ["InvokeModel"]}
    });
    assert_eq!(v, expected);
}

#[test]
fn email_text_shows_region_and_the_context_analysts_ask_for() {
    let t = sample("arn:aws:iam::111122223333:user/bob", "m").email_text();
    for line in [
        "Account (cloud.account.id):  111122223333",
        "Region:  us-east-1",
        "  log object: s3://bucket/key",
        "  operation: InvokeModel",
        "  source IP: 203.0.113.7",
        "  user agent: aws-cli/2.15.0",
        "  error message: not authorized",
        "  request id: r-1",
    ] {
        assert!(t.contains(line), "{line:?} missing from:\n{t}");
    }
}

#[test]
fn subject_is_short_printable_ascii() {
    let cases = [
        ("arn:aws:sts::1:assumed-role/R/s", "m"),
        (&*"u".repeat(10_000), &*"m".repeat(10_000)),
        ("evil\r\nBcc: x@example.com\u{202e}", "model\u{0}\u{7}"),
        ("ünïcødé 🚀", "模型"),
        ("<script>alert(1)</script>", "m"),
    ];
    for (u, m) in cases {
        let s = sample(u, m).subject();
        assert!(s.len() <= MAX_SUBJECT_CHARS, "{} {s}", s.len());
        assert!(s.chars().all(|c| (' '..='~').contains(&c)), "{s:?}");
        assert!(s.starts_with("[HIGH] Bedrock: 4 denied calls to "), "{s}");
    }
    let s = sample("arn:aws:sts::1:assumed-role/R/s", "m").subject();
    assert_eq!(
        s,
        "[HIGH] Bedrock: 4 denied calls to m by arn:aws:sts::1:assumed-role/R/s"
    );
    // A long principal keeps its informative end (role and session).
    let long = format!("arn:aws:sts::1:assumed-role/{}/session-x", "R".repeat(200));
    assert!(sample(&long, "m").subject().ends_with("/session-x"));
    let s = sample("evil\r\nBcc: x", "m").subject();
    assert!(s.contains("evil\\u{d}\\u{a}Bcc: x"), "{s}");
}

#[test]
fn email_text_escapes_and_bounds_ids() {
    let a = sample(&format!("a\u{202e}b\nc{}", "x".repeat(20_000)), "<b>m</b>");
    let t = a.email_text();
    assert!(t.contains("a\\u{202e}b\\u{a}c"), "{t}");
    assert!(!t.contains('\u{202e}'));
    assert!(t.contains("more characters]"));
    assert!(t.len() < 10_000);
    assert!(t.contains("4 between 2026-03-14T08:10:00Z and 2026-03-14T09:10:00Z"));
    // The JSON keeps the id exactly.
    let back: Alert = serde_json::from_str(&a.to_json()).expect("json");
    assert_eq!(back.user_id, a.user_id);
}

#[test]
fn json_is_bounded_by_dropping_evidence() {
    let mut a = sample("u", "m");
    a.evidence.request_ids = (0..1000).map(|i| format!("{i:0>100}")).collect();
    a.evidence.user_agents = (0..5).map(|i| format!("{i:x>256}")).collect();
    let full = a.to_json();
    let bounded = a.to_json_within(10_000);
    assert!(full.len() > 10_000);
    assert!(bounded.len() <= 10_000);
    let back: Alert = serde_json::from_str(&bounded).expect("json");
    assert_eq!(back.total_denials, 4);
    assert_eq!(back.user_id, "u");
}

#[test]
fn timestamps_out_of_range_do_not_panic() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert!(rfc3339(i64::MAX).starts_with('@'));
}
