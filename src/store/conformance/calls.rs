//! The one-call-one-count cases of the [`Counters`] part: a call told by both logs
//! counts once in every read, whatever the order, redeliveries and concurrency
//! (docs/DESIGN.md, "One call, one count").

use super::{all_counts, key, T};
use crate::calls::{CallRecords, Calls, Contribution, MAX_CALLS_PER_COUNTER};
use crate::identity::ObjectId;
use crate::key::call_number;
use crate::logs::RecordKind::{self, BedrockInvocationLog as Log, CloudTrail as Trail};
use crate::store::{AddOutcome, Counters, WindowRead};

/// One record of each of `ids` in `log`.
fn told(ids: &[&str], log: RecordKind) -> Calls {
    ids.iter()
        .map(|id| {
            let mut c = CallRecords::default();
            c.add(log, 1);
            (call_number(id), c)
        })
        .collect()
}

async fn add<S: Counters>(
    store: &S,
    object: &str,
    k: &crate::key::DenialKey,
    bucket: i64,
    records: u64,
    calls: &Calls,
) -> AddOutcome {
    let o = ObjectId::s3("logs", object, "v1");
    store
        .add(&o, k, bucket, Contribution { records, calls }, T)
        .await
        .expect("add")
}

pub async fn a_call_told_by_both_logs_counts_once<S: Counters>(store: &S) {
    let k = key("calls-once");
    // The invocation log: calls a and b, and a record without a request id.
    add(store, "calls-once-log", &k, 5, 3, &told(&["a", "b"], Log)).await;
    assert_eq!(all_counts(store, &k, 5, 5).await, vec![(5, 3)]);
    // CloudTrail tells a again, and c.
    add(
        store,
        "calls-once-trail",
        &k,
        5,
        2,
        &told(&["a", "c"], Trail),
    )
    .await;
    assert_eq!(all_counts(store, &k, 5, 5).await, vec![(5, 4)]);
    // Delivered again, it adds nothing.
    let again = add(
        store,
        "calls-once-trail",
        &k,
        5,
        2,
        &told(&["a", "c"], Trail),
    )
    .await;
    assert_eq!(again, AddOutcome::AlreadyCounted);
    assert_eq!(all_counts(store, &k, 4, 6).await, vec![(5, 4)]);
    // Another bucket and another key are their own.
    add(store, "calls-once-trail", &k, 6, 1, &told(&["a"], Trail)).await;
    assert_eq!(all_counts(store, &k, 5, 6).await, vec![(5, 4), (6, 1)]);
    let other = key("calls-once-other");
    add(
        store,
        "calls-once-trail",
        &other,
        5,
        1,
        &told(&["a"], Trail),
    )
    .await;
    assert_eq!(all_counts(store, &other, 5, 5).await, vec![(5, 1)]);
}

pub async fn a_call_counts_as_often_as_the_log_telling_it_more<S: Counters>(store: &S) {
    let k = key("calls-busier");
    // CloudTrail delivering one event twice: two records, both count.
    add(store, "busier-trail-1", &k, 7, 1, &told(&["a"], Trail)).await;
    add(store, "busier-trail-2", &k, 7, 1, &told(&["a"], Trail)).await;
    assert_eq!(all_counts(store, &k, 7, 7).await, vec![(7, 2)]);
    // The invocation log's one record of that call adds nothing.
    add(store, "busier-log", &k, 7, 1, &told(&["a"], Log)).await;
    assert_eq!(all_counts(store, &k, 7, 7).await, vec![(7, 2)]);
    // One object telling a call in both logs counts it once.
    let mut both = told(&["b"], Log);
    both[0].1.add(Trail, 1);
    add(store, "busier-both", &k, 7, 2, &both).await;
    assert_eq!(all_counts(store, &k, 7, 7).await, vec![(7, 3)]);
}

pub async fn concurrent_contributions_of_both_logs_count_each_call_once<S: Counters>(store: &S) {
    let k = key("calls-concurrent");
    let ids = ["x", "y", "z"];
    let (log, trail) = (told(&ids, Log), told(&ids, Trail));
    // Each log's object delivered twice, all four at once.
    let adds = [
        ("concurrent-log", &log),
        ("concurrent-trail", &trail),
        ("concurrent-log", &log),
        ("concurrent-trail", &trail),
    ]
    .map(|(object, calls)| add(store, object, &k, 9, 3, calls));
    let outcomes = futures_util::future::join_all(adds).await;
    let added = outcomes.iter().filter(|o| **o == AddOutcome::Added).count();
    assert_eq!(added, 2, "each object counts once: {outcomes:?}");
    assert_eq!(all_counts(store, &k, 9, 9).await, vec![(9, 3)]);
}

pub async fn a_contribution_holds_its_most_calls<S: Counters>(store: &S) {
    let k = key("calls-most");
    // As many calls as a contribution lists, each told by both logs in one object,
    // with ids as long as AWS's.
    let ids: Vec<String> = (0..MAX_CALLS_PER_COUNTER)
        .map(|i| format!("6f5e4d3c-2b1a-4098-8765-{i:012}"))
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut calls = told(&refs, Log);
    for (_, c) in &mut calls {
        c.add(Trail, 1);
    }
    let records = 2 * MAX_CALLS_PER_COUNTER as u64;
    add(store, "most-calls", &k, 11, records, &calls).await;
    let whole = MAX_CALLS_PER_COUNTER as u64;
    assert_eq!(all_counts(store, &k, 11, 11).await, vec![(11, whole)]);
    // Another object of one log telling each call again (CloudTrail delivering its
    // events twice): that log now tells each call twice, and twice it counts.
    let again = told(&refs, Trail);
    add(store, "most-calls-trail", &k, 11, whole, &again).await;
    assert_eq!(all_counts(store, &k, 11, 11).await, vec![(11, 2 * whole)]);
}

pub async fn a_bounded_read_of_calls_told_twice_counts_no_more_than_the_whole<S: Counters>(
    store: &S,
) {
    let k = key("calls-bounded");
    for (object, log) in [
        ("b-t1", Trail),
        ("b-t2", Trail),
        ("b-l1", Log),
        ("b-l2", Log),
    ] {
        add(store, object, &k, 13, 1, &told(&["a"], log)).await;
    }
    let whole = all_counts(store, &k, 13, 13).await;
    assert_eq!(whole, vec![(13, 2)]);
    for max in 0..4 {
        let read = WindowRead {
            max_contributions: Some(max),
        };
        let part = store.counts(&k, 13, 13, read).await.expect("counts");
        assert!(!part.complete);
        assert!(part.buckets.values().sum::<u64>() <= 2, "{max}: {part:?}");
    }
}
