//! One conformance suite for every store, a part per trait: the in-memory store runs it in the
//! unit tests, the DynamoDB store against the emulator in the integration tests, so
//! the ConditionExpressions are checked against the policy they encode
//! ([`decide_claim`](super::decide_claim)), edge by edge.

use super::{
    AddOutcome, AlertClaim, AlertClaims, ClaimOutcome, Counters, DistinctSets, FunctionStore,
    Marker, Members, SourceWatch, SweepBook, WindowCounts, WindowRead, MAX_CALLS, MAX_VALUES,
};
mod calls;

use crate::calls::Contribution;
use crate::identity::ObjectId;
use crate::key::DenialKey;
pub use calls::*;
use std::collections::{BTreeMap, BTreeSet};

const SUPPRESS: i64 = 3600;
const LEASE: i64 = 60;
const T: i64 = 1_773_478_800;

fn claim(attempt: &str, object: &str, window_end: i64, now: i64) -> AlertClaim {
    AlertClaim {
        object_token: object.to_string(),
        attempt: attempt.to_string(),
        window_end,
        suppress_seconds: SUPPRESS,
        lease_seconds: LEASE,
        now,
        expires_at: now + 86_400,
    }
}

fn key(case: &str) -> DenialKey {
    DenialKey::new(
        format!("arn:aws:iam::111122223333:user/{case}"),
        "anthropic.claude-3-opus-20240229-v1:0",
        "111122223333",
    )
}

/// Every count of buckets `first ..= last`, read whole.
async fn all_counts<S: Counters>(
    store: &S,
    k: &DenialKey,
    first: i64,
    last: i64,
) -> Vec<(i64, u64)> {
    let read = WindowRead {
        max_contributions: None,
    };
    let counts = store.counts(k, first, last, read).await.expect("counts");
    assert!(counts.complete);
    counts.buckets.into_iter().collect()
}

fn is_claimed(o: &ClaimOutcome) -> bool {
    matches!(o, ClaimOutcome::Claimed { .. })
}

/// Runs every case of every part; panics naming the first that fails.
pub async fn run_all<S: FunctionStore>(store: &S) {
    counters(store).await;
    distinct_sets(store).await;
    alert_claims(store).await;
    sweep_book(store).await;
    source_watch(store).await;
}

/// The [`Counters`] cases.
pub async fn counters<S: Counters>(store: &S) {
    counts_each_object_once(store).await;
    reads_the_inclusive_bucket_range(store).await;
    a_bounded_read_says_it_is_partial(store).await;
    many_objects_in_one_bucket_count_once_each(store).await;
    a_call_told_by_both_logs_counts_once(store).await;
    a_call_counts_as_often_as_the_log_telling_it_more(store).await;
    concurrent_contributions_of_both_logs_count_each_call_once(store).await;
    a_contribution_holds_its_most_calls(store).await;
    a_bounded_read_of_calls_told_twice_counts_no_more_than_the_whole(store).await;
}

/// The [`DistinctSets`] cases.
pub async fn distinct_sets<S: DistinctSets>(store: &S) {
    adding_a_set_twice_adds_nothing(store).await;
    concurrent_adds_make_the_union(store).await;
    a_set_stops_at_its_bound(store).await;
}

fn distinct_key(case: &str) -> DenialKey {
    key(case).for_rule(crate::key::RuleTag::ManyModels)
}

fn some_members(calls: std::ops::Range<usize>, values: &[&str]) -> Members {
    let mut m = Members::default();
    for (i, c) in calls.enumerate() {
        m.add(
            &format!("req-{c}"),
            values[i % values.len()],
            Some("us-east-1"),
        );
    }
    m
}

pub async fn adding_a_set_twice_adds_nothing<S: DistinctSets>(store: &S) {
    let k = distinct_key("distinct-twice");
    let m = some_members(0..3, &["a.m1", "b.m2"]);
    for _ in 0..2 {
        store.add_members(&k, 10, &m, T).await.expect("add");
    }
    store
        .add_members(&k, 12, &some_members(3..4, &["c.m3"]), T)
        .await
        .expect("add");
    let read = store.members(&k, 9, 11).await.expect("read");
    assert_eq!(
        read,
        BTreeMap::from([(10, m.clone())]),
        "bucket 12 is outside 9..=11"
    );
    let read = store.members(&k, 10, 12).await.expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!(read[&12].values, BTreeSet::from(["c.m3".to_string()]));
    // Another key's sets are its own.
    let other = key("distinct-twice");
    assert!(store.members(&other, 0, 20).await.expect("read").is_empty());
}

pub async fn concurrent_adds_make_the_union<S: DistinctSets>(store: &S) {
    let k = distinct_key("distinct-concurrent");
    let parts: Vec<Members> = (0..4)
        .map(|i| some_members(i * 2..i * 2 + 2, &[&format!("p.model-{i}")]))
        .collect();
    futures_util::future::join_all(parts.iter().map(|m| store.add_members(&k, 7, m, T)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("adds");
    let read = store.members(&k, 7, 7).await.expect("read");
    let mut want = Members::default();
    for m in &parts {
        want.union(m);
    }
    assert_eq!(read.get(&7), Some(&want), "no concurrent add is lost");
}

pub async fn a_set_stops_at_its_bound<S: DistinctSets>(store: &S) {
    let k = distinct_key("distinct-bound");
    let values: Vec<String> = (0..MAX_VALUES * 4).map(|i| format!("p.m{i}")).collect();
    for chunk in values.chunks(MAX_VALUES / 2) {
        let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let m = some_members(0..names.len(), &names);
        store.add_members(&k, 3, &m, T).await.expect("add");
    }
    let read = store.members(&k, 3, 3).await.expect("read");
    let stored = &read[&3];
    assert!(
        stored.values.len() >= MAX_VALUES && stored.values.len() < 2 * MAX_VALUES,
        "{} values",
        stored.values.len()
    );
    assert!(stored.calls.len() <= 2 * MAX_CALLS);
}

/// The [`AlertClaims`] cases.
pub async fn alert_claims<S: AlertClaims>(store: &S) {
    the_last_sent_window_never_moves_back(store).await;
    suppresses_within_the_period_and_not_at_its_end(store).await;
    suppresses_the_same_window_without_suppression(store).await;
    a_fresh_claim_is_busy_until_its_lease_ends(store).await;
    the_holder_may_claim_again(store).await;
    a_released_claim_is_free_at_once(store).await;
    only_the_holder_marks_releases_or_records(store).await;
    deliveries_carry_over_to_the_next_attempt_of_that_window(store).await;
    an_accounts_alerts_of_an_hour_are_taken_up_to_the_allowance(store).await;
}

/// The [`SweepBook`] cases.
pub async fn sweep_book<S: SweepBook>(store: &S) {
    object_markers_are_remembered(store).await;
}

/// The [`SourceWatch`] cases.
pub async fn source_watch<S: SourceWatch>(store: &S) {
    log_sources_are_seen_hourly_and_told_once(store).await;
}

pub async fn an_accounts_alerts_of_an_hour_are_taken_up_to_the_allowance<S: AlertClaims>(
    store: &S,
) {
    // An account of its own per run: the emulator's table may be shared.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 100_000_000_000);
    let account = format!("9{nanos:011}");
    let hour = T - T.rem_euclid(3600);
    // Eight attempts at once for an allowance of three: exactly three get one.
    let taken = futures_util::future::join_all(
        (0..8).map(|_| store.take_alert_slot(&account, hour, 3, T + 7200)),
    )
    .await;
    let granted = taken
        .into_iter()
        .map(|r| r.expect("slot"))
        .filter(|t| *t)
        .count();
    assert_eq!(granted, 3, "the allowance, even under concurrent takers");
    assert!(!store
        .take_alert_slot(&account, hour, 3, T + 7200)
        .await
        .expect("slot"));
    // Another hour, another account: their own allowances.
    assert!(store
        .take_alert_slot(&account, hour + 3600, 3, T + 7200)
        .await
        .expect("slot"));
    assert!(store
        .take_alert_slot(&format!("{account}x"), hour, 3, T + 7200)
        .await
        .expect("slot"));
}

async fn claim_ok<S: AlertClaims>(store: &S, k: &DenialKey, c: &AlertClaim) -> ClaimOutcome {
    store.claim_alert(k, c).await.expect("claim")
}

pub async fn counts_each_object_once<S: Counters>(store: &S) {
    let k = key("counts-once");
    let a = ObjectId::s3("logs", "a.json.gz", "v1");
    let b = ObjectId::s3("logs", "b.json.gz", "v1");
    let add = |o: &ObjectId, bucket: i64, n: u64| {
        let (o, k) = (o.clone(), k.clone());
        async move {
            store
                .add(&o, &k, bucket, Contribution::records(n), T)
                .await
                .expect("add")
        }
    };
    assert_eq!(add(&a, 10, 3).await, AddOutcome::Added);
    assert_eq!(
        add(&a, 10, 3).await,
        AddOutcome::AlreadyCounted,
        "same object again"
    );
    assert_eq!(add(&b, 10, 2).await, AddOutcome::Added, "another object");
    assert_eq!(
        add(&a, 11, 1).await,
        AddOutcome::Added,
        "same object, next bucket"
    );
    assert_eq!(all_counts(store, &k, 10, 11).await, vec![(10, 5), (11, 1)]);
}

pub async fn reads_the_inclusive_bucket_range<S: Counters>(store: &S) {
    let k = key("range");
    let other = key("range-other");
    let o = ObjectId::s3("logs", "r.json.gz", "v1");
    for bucket in [4, 5, 9, 10] {
        store
            .add(&o, &k, bucket, Contribution::records(1), T)
            .await
            .expect("add");
    }
    store
        .add(&o, &other, 7, Contribution::records(5), T)
        .await
        .expect("add");
    assert_eq!(all_counts(store, &k, 5, 9).await, vec![(5, 1), (9, 1)]);
    assert!(all_counts(store, &key("range-none"), 0, 100)
        .await
        .is_empty());
    // Buckets far from 1970, both ways.
    let far = key("range-far");
    for bucket in [-103_559_328, 421_000_000] {
        store
            .add(&o, &far, bucket, Contribution::records(2), T)
            .await
            .expect("add");
        assert_eq!(
            all_counts(store, &far, bucket, bucket).await,
            vec![(bucket, 2)]
        );
    }
}

pub async fn a_bounded_read_says_it_is_partial<S: Counters>(store: &S) {
    let k = key("bounded");
    for i in 0..5 {
        let o = ObjectId::s3("logs", &format!("bounded-{i}.json.gz"), "v1");
        store
            .add(&o, &k, 20 + i, Contribution::records(1), T)
            .await
            .expect("add");
    }
    let read = |max| WindowRead {
        max_contributions: Some(max),
    };
    let part = store.counts(&k, 20, 24, read(3)).await.expect("counts");
    assert!(!part.complete, "5 objects counted, 3 read: {part:?}");
    assert!(part.buckets.values().sum::<u64>() <= 5);
    assert!(part.buckets.keys().all(|b| (20..=24).contains(b)));
    let whole = store.counts(&k, 20, 24, read(5)).await.expect("counts");
    assert_eq!(
        whole,
        WindowCounts {
            buckets: (20..=24).map(|b| (b, 1)).collect(),
            complete: true
        }
    );
}

pub async fn many_objects_in_one_bucket_count_once_each<S: Counters>(store: &S) {
    let k = key("many-objects");
    for round in 0..2 {
        for i in 0..150 {
            let o = ObjectId::s3("logs", &format!("many-{i}.json.gz"), "v1");
            let outcome = store
                .add(&o, &k, 30, Contribution::records(2), T)
                .await
                .expect("add");
            let expected = if round == 0 {
                AddOutcome::Added
            } else {
                AddOutcome::AlreadyCounted
            };
            assert_eq!(outcome, expected, "object {i}, round {round}");
        }
    }
    assert_eq!(all_counts(store, &k, 25, 35).await, vec![(30, 300)]);
}

pub async fn the_last_sent_window_never_moves_back<S: AlertClaims>(store: &S) {
    let k = key("never-back");
    let newer = claim("a", "o1", T + 4 * SUPPRESS, T);
    assert!(is_claimed(&claim_ok(store, &k, &newer).await));
    store.mark_alert_sent(&k, &newer).await.expect("mark");
    // A late alert for a window long before: claimed (outside the suppression
    // period), delivered, marked; the newer window stays the last sent.
    let older = claim("b", "o2", T, T + 1);
    assert!(is_claimed(&claim_ok(store, &k, &older).await));
    store.mark_alert_sent(&k, &older).await.expect("mark");
    let state = store.alert_state(&k).await.expect("state").expect("exists");
    assert_eq!(state.last_sent_end, Some(T + 4 * SUPPRESS));
    assert_eq!(state.pending, None, "the claim is cleared all the same");
    let again = claim("c", "o3", T + 4 * SUPPRESS + 600, T + 2);
    assert_eq!(
        claim_ok(store, &k, &again).await,
        ClaimOutcome::Suppressed {
            last_sent_end: T + 4 * SUPPRESS
        },
        "suppression of the newer window holds"
    );
    // The late burst evaluated again (more of its late logs): not alerted twice.
    let late_again = claim("d", "o4", T + 600, T + 3);
    assert!(
        matches!(
            claim_ok(store, &k, &late_again).await,
            ClaimOutcome::Suppressed { .. }
        ),
        "the late window is remembered beside the newer one"
    );
    let state = store.alert_state(&k).await.expect("state").expect("exists");
    assert_eq!(
        (state.last_sent_end, state.earlier_sent_end),
        (Some(T + 4 * SUPPRESS), Some(T))
    );
    // A newer alert again moves the last forward and remembers the one before.
    let newest = claim("e", "o5", T + 8 * SUPPRESS, T + 4);
    assert!(is_claimed(&claim_ok(store, &k, &newest).await));
    store.mark_alert_sent(&k, &newest).await.expect("mark");
    let state = store.alert_state(&k).await.expect("state").expect("exists");
    assert_eq!(
        (state.last_sent_end, state.earlier_sent_end),
        (Some(T + 8 * SUPPRESS), Some(T + 4 * SUPPRESS))
    );
}

pub async fn suppresses_within_the_period_and_not_at_its_end<S: AlertClaims>(store: &S) {
    for (case, offset, suppressed) in [
        ("suppress-plus-period", SUPPRESS, false),
        ("suppress-plus-period-less-1", SUPPRESS - 1, true),
        ("suppress-minus-period", -SUPPRESS, false),
        ("suppress-minus-period-plus-1", -SUPPRESS + 1, true),
    ] {
        let k = key(case);
        let first = claim("a", "o1", T, T);
        assert!(
            is_claimed(&claim_ok(store, &k, &first).await),
            "{case}: first"
        );
        store.mark_alert_sent(&k, &first).await.expect("mark");
        let next = claim("b", "o2", T + offset, T + 10);
        let outcome = claim_ok(store, &k, &next).await;
        if suppressed {
            assert_eq!(
                outcome,
                ClaimOutcome::Suppressed { last_sent_end: T },
                "{case}: window ends {offset} s from the last sent"
            );
        } else {
            assert!(is_claimed(&outcome), "{case}: {outcome:?}");
        }
    }
}

pub async fn suppresses_the_same_window_without_suppression<S: AlertClaims>(store: &S) {
    let k = key("same-window");
    let mut first = claim("a", "o1", T, T);
    first.suppress_seconds = 0;
    assert!(is_claimed(&claim_ok(store, &k, &first).await));
    store.mark_alert_sent(&k, &first).await.expect("mark");
    let mut again = claim("b", "o2", T, T + 5);
    again.suppress_seconds = 0;
    assert!(matches!(
        claim_ok(store, &k, &again).await,
        ClaimOutcome::Suppressed { .. }
    ));
    let mut next = claim("c", "o2", T + 600, T + 5);
    next.suppress_seconds = 0;
    assert!(is_claimed(&claim_ok(store, &k, &next).await));
}

pub async fn a_fresh_claim_is_busy_until_its_lease_ends<S: AlertClaims>(store: &S) {
    // A concurrent attempt on the same object, and one on another object.
    for (case, object) in [("lease-same-object", "o1"), ("lease-other-object", "o2")] {
        let k = key(case);
        assert!(is_claimed(
            &claim_ok(store, &k, &claim("a", "o1", T, T)).await
        ));
        let outcome = claim_ok(store, &k, &claim("b", object, T, T + LEASE - 1)).await;
        assert!(
            matches!(outcome, ClaimOutcome::Busy { claimed_at: T, .. }),
            "{case}: one second before the lease ends: {outcome:?}"
        );
        let outcome = claim_ok(store, &k, &claim("b", object, T, T + LEASE)).await;
        assert!(
            is_claimed(&outcome),
            "{case}: taken over at the lease end: {outcome:?}"
        );
    }
}

pub async fn the_holder_may_claim_again<S: AlertClaims>(store: &S) {
    let k = key("holder-again");
    assert!(is_claimed(
        &claim_ok(store, &k, &claim("a", "o1", T, T)).await
    ));
    assert!(is_claimed(
        &claim_ok(store, &k, &claim("a", "o1", T, T + 1)).await
    ));
}

pub async fn a_released_claim_is_free_at_once<S: AlertClaims>(store: &S) {
    let k = key("release");
    let a = claim("a", "o1", T, T);
    assert!(is_claimed(&claim_ok(store, &k, &a).await));
    store.release_claim(&k, &a).await.expect("release");
    assert!(is_claimed(
        &claim_ok(store, &k, &claim("b", "o1", T, T + 1)).await
    ));
}

pub async fn only_the_holder_marks_releases_or_records<S: AlertClaims>(store: &S) {
    let k = key("holder-only");
    let a = claim("a", "o1", T, T);
    assert!(is_claimed(&claim_ok(store, &k, &a).await));
    let b = claim("b", "o1", T, T + LEASE);
    assert!(is_claimed(&claim_ok(store, &k, &b).await), "b takes over");
    // The old holder's late calls change nothing.
    store.mark_alert_sent(&k, &a).await.expect("mark");
    store.release_claim(&k, &a).await.expect("release");
    store.record_delivery(&k, &a, "sns").await.expect("record");
    let c = claim("c", "o2", T, T + LEASE + 1);
    assert!(
        matches!(claim_ok(store, &k, &c).await, ClaimOutcome::Busy { .. }),
        "b still holds the claim, nothing was sent"
    );
    store.mark_alert_sent(&k, &b).await.expect("mark");
    assert_eq!(
        claim_ok(store, &k, &c).await,
        ClaimOutcome::Suppressed { last_sent_end: T }
    );
}

pub async fn deliveries_carry_over_to_the_next_attempt_of_that_window<S: AlertClaims>(store: &S) {
    let k = key("deliveries");
    let a = claim("a", "o1", T, T);
    assert!(is_claimed(&claim_ok(store, &k, &a).await));
    store.record_delivery(&k, &a, "sns").await.expect("record");
    store.release_claim(&k, &a).await.expect("release");
    let b = claim("b", "o1", T, T + 1);
    assert_eq!(
        claim_ok(store, &k, &b).await,
        ClaimOutcome::Claimed {
            delivered: BTreeSet::from(["sns".to_string()])
        }
    );
    store
        .record_delivery(&k, &b, "events")
        .await
        .expect("record");
    store.mark_alert_sent(&k, &b).await.expect("mark");
    // The next alert starts from nothing delivered.
    let c = claim("c", "o2", T + SUPPRESS, T + 2);
    assert_eq!(
        claim_ok(store, &k, &c).await,
        ClaimOutcome::Claimed {
            delivered: BTreeSet::new()
        }
    );
}

pub async fn object_markers_are_remembered<S: SweepBook>(store: &S) {
    let case = format!("{:?}", std::time::SystemTime::now());
    let markers: Vec<String> = (0..250)
        .map(|i| crate::identity::object_marker("logs", &format!("k-{i}"), &case))
        .collect();
    assert!(store.markers(&markers).await.expect("markers").is_empty());
    for m in markers.iter().step_by(7) {
        store.mark_seen(m, T + 86_400).await.expect("mark");
    }
    let known = store.markers(&markers).await.expect("markers");
    let expected: BTreeMap<String, Marker> = markers
        .iter()
        .step_by(7)
        .map(|m| (m.clone(), Marker::Processed))
        .collect();
    assert_eq!(known, expected, "more markers than one batch request takes");
    // Failures are counted until the object is processed, and never after.
    let failing = &markers[1];
    for n in 1..=3 {
        assert_eq!(
            store
                .mark_failed(failing, T + 86_400)
                .await
                .expect("failed"),
            n
        );
    }
    let known = store
        .markers(std::slice::from_ref(failing))
        .await
        .expect("markers");
    assert_eq!(known.get(failing), Some(&Marker::Failed(3)));
    store.mark_seen(failing, T + 86_400).await.expect("mark");
    assert_eq!(
        store
            .mark_failed(failing, T + 86_400)
            .await
            .expect("failed"),
        0
    );
    let known = store
        .markers(std::slice::from_ref(failing))
        .await
        .expect("markers");
    assert_eq!(known.get(failing), Some(&Marker::Processed));
    // A sweep's cursor, set and cleared.
    let name = format!("logs/{case}");
    assert_eq!(store.sweep_cursor(&name).await.expect("cursor"), None);
    store
        .set_sweep_cursor(&name, Some("AWSLogs/111122223333/"), T + 86_400)
        .await
        .expect("set");
    assert_eq!(
        store.sweep_cursor(&name).await.expect("cursor").as_deref(),
        Some("AWSLogs/111122223333/")
    );
    store.set_sweep_cursor(&name, None, T).await.expect("clear");
    assert_eq!(store.sweep_cursor(&name).await.expect("cursor"), None);
}

pub async fn log_sources_are_seen_hourly_and_told_once<S: SourceWatch>(store: &S) {
    use crate::silence::{due, SourceStatus, NOTICE_LEASE_SECONDS, SEEN_EVERY_SECONDS};
    // An account id of its own per run: the emulator's table may be shared.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 100_000_000_000);
    let account = format!("0{nanos:011}:eu-west-1");
    let find = |all: Vec<crate::silence::LogSource>| {
        all.into_iter()
            .find(|s| s.account == account)
            .expect("the account is listed, its id exact")
    };
    store.source_seen(&account, T).await.expect("seen");
    store.source_seen(&account, T + 600).await.expect("seen");
    let read = find(store.log_sources().await.expect("sources"));
    assert_eq!(read.last_seen, T, "written at most once an hour");
    let six = 6 * 3600;
    let now = T + six;
    assert_eq!(due(&read, now, six), Some(SourceStatus::Silent));
    assert!(store
        .claim_notice(&read, SourceStatus::Silent, "a", now)
        .await
        .expect("claim"));
    assert!(
        !store
            .claim_notice(&read, SourceStatus::Silent, "b", now + 1)
            .await
            .expect("claim"),
        "another attempt holds a fresh claim"
    );
    store
        .finish_notice(&read, SourceStatus::Silent, "b", true)
        .await
        .expect("not the holder: nothing changes");
    assert_eq!(
        find(store.log_sources().await.expect("sources")).silent_since,
        None
    );
    // The holder gave up; the claim is free at once, then told.
    store
        .finish_notice(&read, SourceStatus::Silent, "a", false)
        .await
        .expect("release");
    assert!(store
        .claim_notice(&read, SourceStatus::Silent, "b", now + 2)
        .await
        .expect("claim"));
    store
        .finish_notice(&read, SourceStatus::Silent, "b", true)
        .await
        .expect("told");
    let silent = find(store.log_sources().await.expect("sources"));
    assert_eq!(silent.silent_since, Some(T));
    assert_eq!(silent.claim, None);
    assert_eq!(due(&silent, now + 3600, six), None, "told once");
    // Seen again: resumed, told once.
    let back_at = now + SEEN_EVERY_SECONDS;
    store.source_seen(&account, back_at).await.expect("seen");
    let back = find(store.log_sources().await.expect("sources"));
    assert_eq!(due(&back, back_at + 60, six), Some(SourceStatus::Resumed));
    assert!(
        !store
            .claim_notice(&silent, SourceStatus::Resumed, "c", back_at + 60)
            .await
            .expect("claim"),
        "read before the account changed: refused"
    );
    assert!(store
        .claim_notice(&back, SourceStatus::Resumed, "c", back_at + 60)
        .await
        .expect("claim"));
    // A claim never finished is taken over after its lease.
    assert!(store
        .claim_notice(
            &back,
            SourceStatus::Resumed,
            "d",
            back_at + 60 + NOTICE_LEASE_SECONDS
        )
        .await
        .expect("claim"));
    store
        .finish_notice(&back, SourceStatus::Resumed, "d", true)
        .await
        .expect("told");
    let done = find(store.log_sources().await.expect("sources"));
    assert_eq!((done.silent_since, &done.claim), (None, &None));
    assert_eq!(due(&done, back_at + 120, six), None);
}

#[cfg(test)]
mod tests {
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn the_memory_store_keeps_counters() {
        super::counters(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn the_memory_store_keeps_distinct_sets() {
        super::distinct_sets(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn the_memory_store_claims_alerts() {
        super::alert_claims(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn the_memory_store_keeps_the_sweeps_book() {
        super::sweep_book(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn the_memory_store_watches_log_sources() {
        super::source_watch(&MemoryStore::new()).await;
    }
}
