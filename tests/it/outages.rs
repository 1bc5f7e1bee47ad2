//! Real failures and races against the AWS emulator: an unreachable endpoint, and
//! many invocations at once on shared objects and keys.

use crate::support::*;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::lambda::aws_handler_with;

#[tokio::test]
#[ignore = "needs the emulator"]
async fn unreachable_aws_fails_the_invocation_and_the_retry_completes() {
    let s = Stack::new("down").await;
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let event = s.s3_event(&["a.json.gz"]);

    let down = unreachable_sdk().await;
    let err = aws_handler_with(&down, s.settings(Config::default()))
        .handle(event.clone())
        .await
        .expect_err("no AWS, no success");
    assert!(err.to_string().contains("GetObject"), "{err}");

    s.handler()
        .await
        .handle(event.clone())
        .await
        .expect("retry");
    s.handler().await.handle(event).await.expect("redelivery");
    assert_eq!(s.count(&mallory(), bucket_of(T0)).await, 4);
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the emulator"]
async fn sixteen_concurrent_invocations_four_deliveries_of_each_of_four_objects() {
    let s = Stack::new("concurrent").await;
    let users: Vec<String> = (0..4)
        .map(|i| format!("arn:aws:iam::111122223333:user/racer-{i}"))
        .collect();
    let mut keys = Vec::new();
    for obj in 0..4 {
        let key = format!("obj-{obj}.json.gz");
        // Every object holds 4 denials of its own user and 1 of the next user.
        let mine = &users[obj];
        let next = &users[(obj + 1) % 4];
        let body: String = (0..4)
            .map(|i| line(mine, MODEL, ACCOUNT, T0 + i, Some(DENIED)))
            .chain(std::iter::once(line(
                next,
                MODEL,
                ACCOUNT,
                T0 + 9,
                Some(DENIED),
            )))
            .collect();
        s.put(&key, gzip(body.as_bytes())).await;
        keys.push(key);
    }
    // One handler; its store holds all sixteen invocations at the counter and claim.
    let h = s.racing_handler(16, "concurrent");
    let events: Vec<_> = keys
        .iter()
        .flat_map(|k| std::iter::repeat_n(s.s3_event(&[k.as_str()]), 4))
        .collect();
    let runs = events.into_iter().map(|e| h.handle(e));
    for r in futures_util::future::join_all(runs).await {
        r.expect("handled");
    }
    for u in &users {
        assert_eq!(
            s.count(&DenialKey::new(u.as_str(), MODEL, ACCOUNT), bucket_of(T0))
                .await,
            5,
            "each object counted once: 4 own denials and 1 from the previous object"
        );
    }
    let alerts = s.alerts().await;
    let mut alerted: Vec<String> = alerts
        .iter()
        .map(|a| {
            a["Alert"]["user.id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    alerted.sort();
    assert_eq!(alerted, users, "exactly one alert per key");
}
