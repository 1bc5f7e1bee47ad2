//! The call-claim cases of the [`Counters`] part: one call, one count across the two
//! logs (docs/DESIGN.md, "One call, one count").

use super::{key, T};
use crate::key::call_id;
use crate::logs::RecordKind::{self, BedrockInvocationLog as Log, CloudTrail as Trail};
use crate::store::{CallOwners, Counters, MAX_CLAIMED_CALLS};
use std::collections::BTreeMap;

fn calls(ids: &[&str], log: RecordKind) -> BTreeMap<String, RecordKind> {
    ids.iter().map(|id| (call_id(id), log)).collect()
}

fn owners(pairs: &[(&str, RecordKind)]) -> CallOwners {
    pairs.iter().map(|(id, log)| (call_id(id), *log)).collect()
}

async fn claim<S: Counters>(
    store: &S,
    k: &crate::key::DenialKey,
    bucket: i64,
    c: &BTreeMap<String, RecordKind>,
) -> Option<CallOwners> {
    store.claim_calls(k, bucket, c, T).await.expect("claim")
}

pub async fn the_first_log_to_claim_a_call_owns_it<S: Counters>(store: &S) {
    let k = key("calls-first");
    let first = claim(store, &k, 5, &calls(&["a", "b"], Log)).await;
    assert_eq!(first, Some(owners(&[("a", Log), ("b", Log)])));
    // The same log again (a redelivery, a retry, a duplicate record) owns them still.
    let again = claim(store, &k, 5, &calls(&["a", "b"], Log)).await;
    assert_eq!(again, first);
    // The other log finds "a" taken and claims "c".
    let trail = claim(store, &k, 5, &calls(&["a", "c"], Trail)).await;
    assert_eq!(trail, Some(owners(&[("a", Log), ("c", Trail)])));
    // Another bucket and another key are their own.
    let other_bucket = claim(store, &k, 6, &calls(&["a"], Trail)).await;
    assert_eq!(other_bucket, Some(owners(&[("a", Trail)])));
    let other_key = store
        .claim_calls(&key("calls-first-other"), 5, &calls(&["a"], Trail), T)
        .await
        .expect("claim");
    assert_eq!(other_key, Some(owners(&[("a", Trail)])));
}

pub async fn concurrent_claims_of_two_logs_agree_on_one_owner<S: Counters>(store: &S) {
    let k = key("calls-concurrent");
    let ids = ["x", "y", "z"];
    let offers = [
        calls(&ids, Log),
        calls(&ids, Trail),
        calls(&ids, Log),
        calls(&ids, Trail),
    ];
    let answers =
        futures_util::future::join_all(offers.iter().map(|c| store.claim_calls(&k, 9, c, T)))
            .await
            .into_iter()
            .map(|r| r.expect("claim").expect("room"))
            .collect::<Vec<_>>();
    for id in ids {
        let owner = answers[0][&call_id(id)];
        assert!(
            answers.iter().all(|a| a[&call_id(id)] == owner),
            "every claim of {id} names one owner: {answers:?}"
        );
    }
}

pub async fn call_claims_stop_when_full<S: Counters>(store: &S) {
    let k = key("calls-full");
    let half = (MAX_CLAIMED_CALLS / 2) as usize;
    let ids: Vec<String> = (0..2 * half).map(|i| format!("req-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for part in refs.chunks(half) {
        let owned = store
            .claim_calls(&k, 3, &calls(part, Log), T)
            .await
            .expect("claim");
        assert_eq!(owned.map(|o| o.len()), Some(part.len()));
    }
    // Offered its bound: nothing more is claimed, whichever log asks.
    let full = store
        .claim_calls(&k, 3, &calls(&["late"], Trail), T)
        .await
        .expect("claim");
    assert_eq!(full, None);
}
