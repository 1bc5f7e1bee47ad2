//! The DynamoDB store against the emulator runs the same conformance suite as the
//! in-memory store: its ConditionExpressions decide exactly as `decide_claim` does.

use crate::support::*;
use bedrock_denied_models::aws::dynamo_store;
use bedrock_denied_models::calls::Contribution;
use bedrock_denied_models::identity::ObjectId;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::store::{conformance, Counters};

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_keeps_counters() {
    let s = Stack::new("conformance").await;
    conformance::counters(&dynamo_store(&s.sdk, &s.table)).await;
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_keeps_distinct_sets() {
    let s = Stack::new("conformance").await;
    conformance::distinct_sets(&dynamo_store(&s.sdk, &s.table)).await;
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_claims_alerts() {
    let s = Stack::new("conformance").await;
    conformance::alert_claims(&dynamo_store(&s.sdk, &s.table)).await;
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_keeps_the_sweeps_book() {
    let s = Stack::new("conformance").await;
    conformance::sweep_book(&dynamo_store(&s.sdk, &s.table)).await;
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_dynamodb_store_watches_log_sources() {
    let s = Stack::new("conformance").await;
    conformance::source_watch(&dynamo_store(&s.sdk, &s.table)).await;
}

/// A counter item as the earlier layout wrote it: one item per (key, bucket) with the
/// set of the tokens of the objects it holds.
async fn put_earlier_counter(
    s: &Stack,
    key: &DenialKey,
    bucket: i64,
    denials: u64,
    tokens: &[&str],
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    s.ddb
        .put_item()
        .table_name(&s.table)
        .item("pk", AttributeValue::S(format!("C#{}", key.digest())))
        .item("sk", AttributeValue::N(bucket.to_string()))
        .item("denials", AttributeValue::N(denials.to_string()))
        .item(
            "objects",
            AttributeValue::Ss(tokens.iter().map(|t| t.to_string()).collect()),
        )
        .item("user_id", AttributeValue::S(key.user_id.clone()))
        .item("expires_at", AttributeValue::N((T0 + 86_400).to_string()))
        .send()
        .await
        .expect("put an earlier-layout counter");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn counters_of_the_earlier_layout_are_read_and_their_objects_not_counted_again() {
    let s = Stack::new("upgrade").await;
    let key = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/a.json";
    s.put(key, denials(MALLORY, &[T0, T0 + 1]).into_bytes())
        .await;
    // The earlier version counted this object (2 denials) and another one (1).
    let head =
        s.s3.head_object()
            .bucket(&s.bucket)
            .key(key)
            .send()
            .await
            .expect("head");
    let counted = ObjectId::s3(&s.bucket, key, head.e_tag().expect("etag"));
    let other = ObjectId::s3(&s.bucket, "other.json", "etag");
    put_earlier_counter(
        &s,
        &mallory(),
        bucket_of(T0),
        3,
        &[&counted.token, &other.token],
    )
    .await;
    assert_eq!(
        s.count(&mallory(), bucket_of(T0)).await,
        3,
        "read as before"
    );

    // What the store reads of the key's bucket, as every object's evaluation reads it.
    let read = || async {
        let window = bedrock_denied_models::store::WindowRead {
            max_contributions: None,
        };
        dynamo_store(&s.sdk, &s.table)
            .counts(&mallory(), bucket_of(T0), bucket_of(T0), window)
            .await
            .expect("counts")
            .buckets
            .values()
            .sum::<u64>()
    };

    // The object is delivered again after the upgrade: its contribution is written,
    // and every read leaves it out (reads never delete it).
    let h = s.handler().await;
    h.handle(s.s3_event(&[key])).await.expect("redelivery");
    assert_eq!(read().await, 3, "not counted again");
    assert_eq!(
        s.count(&mallory(), bucket_of(T0)).await,
        5,
        "the table keeps the contribution"
    );
    assert!(s.alerts().await.is_empty());

    // A new object adds to the earlier count, and the sum alerts.
    let next = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/b.json";
    s.put(next, denials(MALLORY, &[T0 + 2]).into_bytes()).await;
    h.handle(s.s3_event(&[next])).await.expect("new object");
    assert_eq!(read().await, 4);
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["Alert"]["total_denials"], 4);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn no_counter_item_grows_with_the_objects_counted() {
    let s = Stack::new("bounded-items").await;
    let store = dynamo_store(&s.sdk, &s.table);
    let key = mallory();
    for i in 0..300 {
        let o = ObjectId::s3(&s.bucket, &format!("k{i}.json"), "v1");
        store
            .add(&o, &key, 7, Contribution::records(1), T0 + 86_400)
            .await
            .expect("add");
    }
    let items = s
        .ddb
        .scan()
        .table_name(&s.table)
        .send()
        .await
        .expect("scan");
    assert_eq!(items.count(), 300, "one small item per counted object");
    let largest = items
        .items()
        .iter()
        .map(item_size)
        .max()
        .unwrap_or_default();
    assert!(largest < 200, "largest item {largest} bytes");
}

/// Under `scripts/test` the emulator tests run twice, the second time with
/// `AWS_ENDPOINT_URL_DYNAMODB` naming dynalite: every DynamoDB client must then reach
/// it and nothing else, or that run would test moto twice and say nothing.
#[tokio::test]
#[ignore = "needs the emulator"]
async fn dynamodb_requests_go_to_the_emulator_named_for_dynamodb() {
    let s = Stack::new("routing").await;
    let has_table_at = |url: String| {
        let config = aws_sdk_dynamodb::config::Builder::from(&s.sdk)
            .endpoint_url(url)
            .build();
        let table = s.table.clone();
        async move {
            aws_sdk_dynamodb::Client::from_conf(config)
                .describe_table()
                .table_name(table)
                .send()
                .await
                .is_ok()
        }
    };
    let everything = emulator();
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(dynamodb) => {
            assert!(dynamodb.starts_with("http://127.0.0.1:"), "{dynamodb}");
            assert!(has_table_at(dynamodb).await);
            assert!(!has_table_at(everything).await);
            // dynalite enforces DynamoDB's item limit, which moto does not.
            let big = s
                .ddb
                .put_item()
                .table_name(&s.table)
                .item(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("big".into()),
                )
                .item("sk", aws_sdk_dynamodb::types::AttributeValue::N("0".into()))
                .item(
                    "blob",
                    aws_sdk_dynamodb::types::AttributeValue::S("x".repeat(410 * 1024)),
                )
                .send()
                .await;
            assert!(big.is_err(), "an item over 400 KB is refused");
        }
        Err(_) => assert!(has_table_at(everything).await),
    }
}
