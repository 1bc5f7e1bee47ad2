//! Hostile input through the whole detector: ids built to break renderings, extreme
//! timestamps, huge key counts, malformed structure.

use crate::support::*;
use bedrock_denied_models::aggregate::MAX_KEYS_PER_OBJECT;
use bedrock_denied_models::alert::MAX_SUBJECT_CHARS;
use bedrock_denied_models::detector::{Detector, ObjectReport};
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::key::{bounded_id, MAX_ID_BYTES};
use bedrock_denied_models::store::memory::MemoryStore;
use serde_json::json;

fn denial(user: &str, model: &str, ts: &str) -> String {
    json!({"timestamp": ts, "accountId": "111122223333", "identity": {"arn": user},
           "modelId": model, "errorCode": "AccessDeniedException"})
    .to_string()
        + "\n"
}

async fn run(d: &Detector<MemoryStore>, body: &str) -> ObjectReport {
    d.process(&ObjectId::s3("b", "k", "e"), body.as_bytes())
        .await
        .expect("processed")
}

#[tokio::test]
async fn ids_built_to_break_renderings_stay_exact_in_json_and_safe_in_text() {
    let nasty_users = [
        "x".repeat(10_240),
        "line1\nline2\r\nBcc: attacker@example.com".to_string(),
        "\u{202e}nimda\u{202c} \u{2066}role\u{2069} \u{200b}zero\u{feff}width".to_string(),
        "<script>alert(1)</script><img src=x onerror=alert(2)>&amp;".to_string(),
        "\u{0}\u{1}\u{7}\u{1b}[31mred\u{1b}[0m\u{7f}".to_string(),
        "ünïcødé 🚀 模型 ".to_string(),
    ];
    for user in &nasty_users {
        let d = memory_detector();
        let body: String = (0..4)
            .map(|_| denial(user, "m<b>\u{1b}", "2026-03-14T09:00:00Z"))
            .collect();
        run(&d, &body).await;
        let alerts = d.sink().alerts();
        assert_eq!(alerts.len(), 1, "{user:?}");
        let a = &alerts[0];
        // Ids up to AWS's own limits are kept byte for byte; a longer one is cut and
        // marked with its length and digest as it is read.
        let kept = bounded_id(user);
        if user.len() <= MAX_ID_BYTES {
            assert_eq!(&kept, user);
        } else {
            assert!(kept.len() < 400 && kept.contains("sha256"), "{kept}");
        }
        assert_eq!(a.user_id, kept, "JSON keeps the id as read");
        let back: serde_json::Value = serde_json::from_str(&a.to_json()).expect("valid JSON");
        assert_eq!(back["user.id"].as_str(), Some(kept.as_str()));

        let subject = a.subject();
        assert!(subject.len() <= MAX_SUBJECT_CHARS, "{subject}");
        assert!(
            subject.chars().all(|c| (' '..='~').contains(&c)),
            "{subject:?}"
        );

        let text = a.email_text();
        assert!(
            !text.chars().any(|c| (c.is_control() && c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')),
            "raw control or bidi characters in the email text"
        );
        // Each rendered line is one of ours: an id cannot add lines or headers.
        assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
        assert!(text.len() < 20_000, "bounded: {}", text.len());
    }
}

#[tokio::test]
async fn extreme_timestamps_are_counted_where_they_belong() {
    for ts in [
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
    ] {
        let d = memory_detector();
        let body: String = (0..4).map(|_| denial("u", "m", ts)).collect();
        run(&d, &body).await;
        let alerts = d.sink().alerts();
        assert_eq!(alerts.len(), 1, "{ts}");
        assert_eq!(alerts[0].buckets.len(), 1);
        assert!(
            alerts[0].buckets[0].start.starts_with(&ts[..13]),
            "{ts}: {:?}",
            alerts[0].buckets
        );
    }
    // Unparseable or out-of-range times are skipped and counted, not guessed.
    let d = memory_detector();
    let body =
        denial("u", "m", "10000-01-01T00:00:00Z") + &denial("u", "m", "2026-02-30T00:00:00Z");
    let r = run(&d, &body).await;
    assert_eq!(r.counts.skipped_bad_timestamp, 2);
}

#[tokio::test]
async fn a_window_spanning_midnight() {
    let d = memory_detector();
    let body = denial("u", "m", "2026-03-14T23:55:00Z")
        + &denial("u", "m", "2026-03-14T23:59:59Z")
        + &denial("u", "m", "2026-03-15T00:00:00Z")
        + &denial("u", "m", "2026-03-15T00:05:00Z");
    run(&d, &body).await;
    let a = d.sink().alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].total_denials, 4);
    assert_eq!(a[0].window.start, "2026-03-14T23:10:00Z");
    assert_eq!(a[0].window.end, "2026-03-15T00:10:00Z");
}

#[tokio::test]
async fn a_hundred_thousand_keys_in_one_object_stay_bounded_and_the_hammering_key_alerts() {
    let d = memory_detector();
    let hammering = "arn:aws:iam::111122223333:user/u7";
    let mut body = String::with_capacity(100_000 * 150);
    // The hammering key is denied twice, then a flood of keys denied once each, then
    // twice more: more keys than an object may hold.
    for _ in 0..2 {
        body += &denial(hammering, "m", "2026-03-14T09:00:00Z");
    }
    for i in 0..100_000 {
        body += &denial(
            &format!("arn:aws:iam::111122223333:user/flood-{i}"),
            "m",
            "2026-03-14T09:00:00Z",
        );
    }
    for _ in 0..2 {
        body += &denial(hammering, "m", "2026-03-14T09:01:00Z");
    }
    let r = run(&d, &body).await;
    assert!(
        r.counts.keys as usize <= MAX_KEYS_PER_OBJECT,
        "{}",
        r.counts.keys
    );
    assert_eq!(
        r.counts.alerts_published, 1,
        "the hammering key still alerts"
    );
    assert_eq!(d.sink().alerts()[0].user_id, hammering);
    assert_eq!(d.sink().alerts()[0].total_denials, 4);
    // Everything past the limits is reported, nothing is lost silently.
    assert_eq!(r.counts.denials, 100_004);
    assert_eq!(
        r.counts.denials_over_limit + d.store().snapshot().values().sum::<u64>(),
        100_004
    );
    assert!(r.counts.keys_over_limit >= 96_000, "{:?}", r.counts);
    // And so is the work: one store write and one query per key held.
    let ops = d.store().ops();
    assert!(ops.adds as usize <= MAX_KEYS_PER_OBJECT, "{ops:?}");
    assert!(ops.queries as usize <= MAX_KEYS_PER_OBJECT, "{ops:?}");
}

#[tokio::test]
async fn structure_attacks_are_skipped_and_counted() {
    let d = memory_detector();
    let deep = format!(
        "{{\"errorCode\":\"AccessDeniedException\",\"identity\":{}{}}}\n",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    let numbers = "{\"errorCode\":\"AccessDeniedException\",\"timestamp\":1,\"accountId\":2,\"identity\":{\"arn\":3},\"modelId\":4}\n";
    let arrays = "{\"errorCode\":[\"AccessDeniedException\"],\"identity\":[],\"modelId\":{}}\n";
    let dupes =
        "{\"errorCode\":\"AccessDeniedException\",\"errorCode\":\"AccessDeniedException\"}\n";
    let body = format!("{deep}{numbers}{arrays}{dupes}");
    let r = run(&d, &body).await;
    assert_eq!(r.counts.records, 4);
    assert_eq!(r.counts.denials, 0);
    assert_eq!(r.counts.skipped_lines(), 4, "{:?}", r.counts);
    assert!(r.counts.skipped_invalid_json >= 3, "{:?}", r.counts);
}
