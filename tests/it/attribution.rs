//! What a member account can make the detector say, and what it cannot, through the
//! function's handler against the emulators (docs/DESIGN.md, "A record speaks only for
//! its own account", "The sweep", "Log sources", "Alert ceilings"): a key speaks only
//! for its account whatever follows it, a principal only for its own account, one
//! account's flood neither starves the sweep nor buries the others' alerts, a Region
//! counts as delivering only from what was read, and an organization trail's log
//! group speaks per stream.

use crate::support::*;
use bedrock_denied_models::aws::dynamo_store;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::event::Sweep;
use bedrock_denied_models::lambda::{aws_handler_with, Attribution, LambdaSettings, ObjectOutcome};
use bedrock_denied_models::objects::{KeyRange, ObjectSource};
use bedrock_denied_models::stats::Counts;
use bedrock_denied_models::store::SourceWatch;
use serde_json::{json, Value};

const MEMBER: &str = "111122223333";
const VICTIM: &str = "444455556666";

/// Four denials, as one JSON-lines object, of a principal of `principal_account` in
/// records that claim `record_account`.
fn burst(principal_account: &str, record_account: &str) -> Vec<u8> {
    let who = format!("arn:aws:sts::{principal_account}:assumed-role/OrgAdmin/x");
    (0..4)
        .map(|i| {
            record(
                &who,
                MODEL,
                record_account,
                T0 + i,
                Some(DENIED),
                &format!("r{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

fn victim_key() -> bedrock_denied_models::key::DenialKey {
    bedrock_denied_models::key::DenialKey::new(
        format!("arn:aws:sts::{VICTIM}:assumed-role/OrgAdmin/x"),
        MODEL,
        VICTIM,
    )
}

/// A handler of `s` with `attribution`.
fn handler_with(s: &Stack, attribution: Attribution) -> bedrock_denied_models::lambda::AwsHandler {
    aws_handler_with(
        &s.sdk,
        LambdaSettings {
            attribution,
            ..s.settings(Config::default())
        },
    )
}

/// Alerts (not notices) among the messages of the stack's queue.
fn only_alerts(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m["Alert"]["rule"]["id"].is_string())
        .collect()
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_key_outside_the_layouts_speaks_only_for_its_folders_account() {
    let s = Stack::new("outsidelayout").await;
    let h = s.handler().await;
    // The member writes the victim's denials outside the services' folders, and below
    // a second account pair nested in its own folder.
    let forged = [
        format!("AWSLogs/{MEMBER}/notes/x.json"),
        format!("AWSLogs/{MEMBER}/AWSLogs/{VICTIM}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/y.json"),
    ];
    for key in &forged {
        s.put(key, burst(VICTIM, VICTIM)).await;
        h.handle(s.s3_event(&[key])).await.expect("acknowledged");
    }
    assert!(s.alerts().await.is_empty(), "no forged alert");
    assert_eq!(s.count(&victim_key(), bucket_of(T0)).await, 0);
    // The victim's real burst, in its own folder, alerts.
    let real =
        format!("AWSLogs/{VICTIM}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/z.json");
    s.put(&real, burst(VICTIM, VICTIM)).await;
    h.handle(s.s3_event(&[&real])).await.expect("ok");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["Alert"]["cloud.account.id"], VICTIM);
    assert_eq!(alerts[0]["Alert"]["total_denials"], 4);

    // Where only AWS's layouts are read (an organization), such a key is not read at
    // all, even for the member's own denials.
    let strict = handler_with(
        &s,
        Attribution {
            require_log_layout: true,
            ..Attribution::default()
        },
    );
    let own = format!("AWSLogs/{MEMBER}/notes/own.json");
    s.put(&own, burst(MEMBER, MEMBER)).await;
    let outcome = strict
        .process_object(
            &bedrock_denied_models::event::ObjectRef {
                bucket: s.bucket.clone(),
                key: own.clone(),
                raw_key: own.clone(),
                size: Some(1),
                etag: None,
                version_id: None,
            },
            None,
        )
        .await
        .expect("acknowledged");
    assert!(
        matches!(outcome, ObjectOutcome::OutsideLayout),
        "{outcome:?}"
    );
    strict
        .handle(s.s3_event(&[&own]))
        .await
        .expect("acknowledged");
    assert!(s.alerts().await.is_empty());
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_principal_of_another_account_in_a_members_folder_is_skipped() {
    let s = Stack::new("foreignprincipal").await;
    let h = s.handler().await;
    // In the member's own Bedrock folder, records of the member's account naming the
    // victim's role.
    let key = format!("AWSLogs/{MEMBER}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/f.json");
    s.put(&key, burst(VICTIM, MEMBER)).await;
    h.handle(s.s3_event(&[&key])).await.expect("acknowledged");
    assert!(
        s.alerts().await.is_empty(),
        "no alert names the victim's role"
    );
    let named = bedrock_denied_models::key::DenialKey::new(
        format!("arn:aws:sts::{VICTIM}:assumed-role/OrgAdmin/x"),
        MODEL,
        MEMBER,
    );
    assert_eq!(s.count(&named, bucket_of(T0)).await, 0);
}

/// `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/<this hour>/<name>`.
fn this_hour(account: &str, region: &str, name: &str) -> String {
    let t = chrono::Utc::now();
    format!(
        "AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{}/{name}",
        t.format("%Y/%m/%d/%H")
    )
}

fn sweep_request(s: &Stack, silent_after_hours: u32, max_listed: usize) -> Sweep {
    Sweep {
        bucket: s.bucket.clone(),
        prefix: "AWSLogs/".into(),
        lookback_hours: 1,
        silent_after_hours,
        quiet_accounts: String::new(),
        max_listed_per_account: max_listed,
    }
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn one_flooding_account_cannot_starve_the_sweep() {
    use bedrock_denied_models::lambda::sweep::{
        MAX_REGION_FOLDERS, SWEEP_MAX_OBJECTS, SWEEP_MAX_OBJECTS_PER_ACCOUNT,
    };
    let s = Stack::new("flood").await;
    // The flooder sorts first and writes more objects than one sweep processes, and
    // more Region folders than the sweep lists; three honest accounts one object each.
    let flooder = "000000000001";
    let body = denials(MALLORY, &[T0]).into_bytes();
    for i in 0..(SWEEP_MAX_OBJECTS + 20) {
        s.put(
            &this_hour(flooder, "us-east-1", &format!("{i:04}.json")),
            body.clone(),
        )
        .await;
    }
    for i in 0..(MAX_REGION_FOLDERS + 6) {
        s.put(
            &this_hour(flooder, &format!("zz-fake-{i:03}"), "x.json"),
            body.clone(),
        )
        .await;
    }
    let honest = ["222222222222", "333333333333", "444444444444"];
    for account in honest {
        let mallory = MALLORY.replace(ACCOUNT, account);
        let body = (0..4)
            .map(|i| record(&mallory, MODEL, account, T0 + i, Some(DENIED), "r").to_string() + "\n")
            .collect::<String>();
        s.put(
            &this_hour(account, "us-east-1", "honest.json"),
            body.into_bytes(),
        )
        .await;
    }
    let h = s.handler().await;
    let now = chrono::Utc::now().timestamp();
    let req = sweep_request(
        &s,
        0,
        bedrock_denied_models::event::SWEEP_MAX_LISTED_PER_ACCOUNT,
    );
    let first = h
        .sweep(&req, now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!(first.accounts, 4);
    assert_eq!(
        first.processed as usize,
        SWEEP_MAX_OBJECTS_PER_ACCOUNT + honest.len(),
        "the flooder's share and every honest object: {first:?}"
    );
    assert_eq!(first.accounts_over_share, 1, "{first:?}");
    assert_eq!(first.accounts_swept, 3, "{first:?}");
    assert!(
        first.listings_cut >= 1,
        "the fake Region folders are cut: {first:?}"
    );
    let alerts = only_alerts(&s.alerts().await)
        .iter()
        .map(|a| {
            a["Alert"]["cloud.account.id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(alerts, honest.iter().map(|a| a.to_string()).collect());
    // The next sweep continues with the flooder's rest, its share at a time.
    let second = h
        .sweep(&req, now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!(
        second.processed as usize, SWEEP_MAX_OBJECTS_PER_ACCOUNT,
        "{second:?}"
    );
    assert_eq!(
        second.already_processed as usize,
        SWEEP_MAX_OBJECTS_PER_ACCOUNT + 3
    );
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_sweeps_listing_stops_at_the_end_of_the_hour_and_at_its_bound() {
    let s = Stack::new("listbounds").await;
    let account = "555555555555";
    let body = denials(MALLORY, &[T0]).into_bytes();
    for i in 0..5 {
        s.put(
            &this_hour(account, "us-east-1", &format!("{i}.json")),
            body.clone(),
        )
        .await;
    }
    // Keys a writer dates in the future are never listed.
    let future =
        format!("AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/2099/01/01/00/f.json");
    s.put(&future, body.clone()).await;
    let h = s.handler().await;
    let now = chrono::Utc::now().timestamp();
    let r = h
        .sweep(&sweep_request(&s, 0, 3), now, &mut Counts::default(), None)
        .await
        .expect("sweep");
    assert_eq!(
        (r.objects_listed, r.listings_cut, r.processed),
        (3, 1, 3),
        "{r:?}"
    );
    let r = h
        .sweep(
            &sweep_request(&s, 0, 100),
            now,
            &mut Counts::default(),
            None,
        )
        .await
        .expect("sweep");
    assert_eq!(
        (r.objects_listed, r.listings_cut),
        (5, 0),
        "not the future key: {r:?}"
    );

    // The S3 source's own bounds, as the sweep uses them.
    let source = bedrock_denied_models::aws::s3::S3Source::new(
        bedrock_denied_models::aws::s3_client(&s.sdk),
    );
    let region = format!("AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/");
    let hour = chrono::Utc::now().format("%Y/%m/%d/%H").to_string();
    let end = format!("{region}{hour}0");
    let listed = source
        .list(
            &s.bucket,
            &region,
            false,
            KeyRange {
                end_before: Some(&end),
                ..KeyRange::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.objects.len(), 5);
    assert!(!listed.cut);
    let capped = source
        .list(
            &s.bucket,
            &region,
            false,
            KeyRange {
                max_objects: Some(2),
                ..KeyRange::default()
            },
        )
        .await
        .expect("list");
    assert_eq!((capped.objects.len(), capped.cut), (2, true));
    let folders = source
        .list(
            &s.bucket,
            &format!("AWSLogs/{account}/"),
            true,
            KeyRange {
                max_objects: Some(0),
                ..KeyRange::default()
            },
        )
        .await
        .expect("list");
    assert_eq!((folders.prefixes.len(), folders.cut), (0, true));
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_region_delivers_only_with_records_read_and_one_that_stops_is_told() {
    let s = Stack::new("regions").await;
    let h = s.handler().await;
    let good = this_hour(MEMBER, "us-east-1", "real.json");
    s.put(&good, denials(MALLORY, &[T0]).into_bytes()).await;
    // A key alone says nothing: garbage, and Bedrock's permission check.
    let tiny = this_hour(MEMBER, "eu-west-1", "tiny.json");
    s.put(&tiny, b"x".to_vec()).await;
    let check =
        format!("AWSLogs/{MEMBER}/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check");
    s.put(&check, b"ok".to_vec()).await;
    h.handle(s.s3_event(&[&good, &tiny, &check]))
        .await
        .expect("ok");
    let store = dynamo_store(&s.sdk, &s.table);
    let names: Vec<String> = store
        .log_sources()
        .await
        .expect("sources")
        .into_iter()
        .map(|l| l.account)
        .collect();
    assert_eq!(names, [format!("{MEMBER}:us-east-1")]);

    // Two Regions deliver; one stops, and only it is told.
    let now = chrono::Utc::now().timestamp();
    let then = now - now.rem_euclid(3600);
    store
        .source_seen(&format!("{MEMBER}:eu-west-1"), then)
        .await
        .expect("seen");
    store
        .source_seen(&format!("{MEMBER}:us-east-1"), then + 6 * 3600)
        .await
        .expect("seen");
    let r = h
        .sweep(
            &sweep_request(&s, 6, 10),
            then + 6 * 3600 + 60,
            &mut Counts::default(),
            None,
        )
        .await
        .expect("sweep");
    assert_eq!((r.sources_watched, r.source_notices), (2, 1), "{r:?}");
    let mail: Vec<Value> = s
        .drain(&s.queue_url)
        .await
        .into_iter()
        .filter(|m| {
            m["Subject"]
                .as_str()
                .is_some_and(|t| t.contains("Bedrock logs"))
        })
        .collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(
        mail[0]["Subject"],
        format!("[WARNING] Bedrock logs: account {MEMBER} in eu-west-1 silent for 6 h")
    );

    // The watched sources are bounded; the bound is reached on the emulator.
    let capped = dynamo_store(&s.sdk, &s.table).with_max_log_sources(1);
    assert_eq!(capped.log_sources().await.expect("sources").len(), 1);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_flood_of_keys_sends_ten_alerts_and_one_summary_once() {
    let s = Stack::new("ceiling").await;
    let h = s.handler().await;
    let key =
        format!("AWSLogs/{MEMBER}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/flood.json");
    let body: String = (0..14)
        .map(|i| {
            let user = format!("arn:aws:iam::{MEMBER}:user/flood{i:02}");
            (0..4 + i)
                .map(|t| record(&user, MODEL, MEMBER, T0 + t, Some(DENIED), "r").to_string() + "\n")
                .collect::<String>()
        })
        .collect();
    s.put(&key, body.into_bytes()).await;
    h.handle(s.s3_event(&[&key])).await.expect("ok");
    h.handle(s.s3_event(&[&key])).await.expect("redelivered");
    let messages = s.alerts().await;
    assert_eq!(only_alerts(&messages).len(), 10, "the most denied, once");
    let summaries: Vec<&Value> = messages
        .iter()
        .filter(|m| m["Alert"]["keys_over_threshold"].is_number())
        .collect();
    assert_eq!(summaries.len(), 1, "{messages:?}");
    assert_eq!(summaries[0]["Alert"]["keys_over_threshold"], 4);
    assert_eq!(summaries[0]["Alert"]["cloud.account.id"], MEMBER);
    assert_eq!(
        summaries[0]["MessageAttributes"]["notice"]["Value"],
        "Bedrock Denied Models Alert Ceiling"
    );
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn an_organization_trails_log_group_speaks_for_each_streams_account() {
    let s = Stack::new("orggroup").await;
    let group = "aws-cloudtrail-logs-o-a1b2c3d4e5";
    let stream = format!("o-a1b2c3d4e5_{VICTIM}_CloudTrail_us-east-1");
    let victim_role = format!("arn:aws:sts::{VICTIM}:assumed-role/OrgAdmin/x");
    let trail = |account: &str, t: i64, id: &str| {
        let mut r = cloudtrail_record(
            &victim_role,
            MODEL,
            t,
            "InvokeModel",
            Some("AccessDenied"),
            id,
        );
        r["recipientAccountId"] = json!(account);
        r["userIdentity"]["accountId"] = json!(account);
        r.to_string()
    };
    let mut messages: Vec<(String, String)> = (0..4)
        .map(|i| (format!("{i}"), trail(VICTIM, T0 + i, &format!("ct-{i}"))))
        .collect();
    // A record in the victim's stream that claims a third account is not counted.
    messages.push(("9".into(), trail("999988887777", T0, "ct-9")));

    // A group not named as the organization's: its owner is the central account, and
    // every record of the members is skipped, as before.
    let plain = s.handler().await;
    plain
        .handle(logs_event(group, &stream, &messages))
        .await
        .expect("ok");
    assert!(only_alerts(&s.alerts().await).is_empty());

    let h = handler_with(
        &s,
        Attribution {
            organization_log_groups: vec![group.to_string()],
            ..Attribution::default()
        },
    );
    let payload = logs_event(group, &stream, &messages);
    h.handle(payload).await.expect("ok");
    let messages = s.alerts().await;
    let alerts = only_alerts(&messages);
    assert_eq!(alerts.len(), 1, "{messages:?}");
    assert_eq!(alerts[0]["Alert"]["cloud.account.id"], VICTIM);
    assert_eq!(alerts[0]["Alert"]["total_denials"], 4);
    let third =
        bedrock_denied_models::key::DenialKey::new(victim_role.clone(), MODEL, "999988887777");
    assert_eq!(s.count(&third, bucket_of(T0)).await, 0);
}
