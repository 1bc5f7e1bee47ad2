//! Real failures and races against the AWS emulator: an unreachable endpoint, and
//! many invocations at once on shared keys.

mod common;

use bedrock_denied_models::config::Config;
use bedrock_denied_models::key::DenialKey;
use bedrock_denied_models::lambda::{aws_handler_with, sdk_loader};
use common::*;

#[tokio::test]
async fn unreachable_aws_fails_the_invocation_and_the_retry_completes() {
    let Some(s) = Stack::new("down").await else {
        return;
    };
    s.put(
        "a.json.gz",
        denials_gz(MALLORY, &[T0, T0 + 1, T0 + 2, T0 + 3]),
    )
    .await;
    let event = s.s3_event(&["a.json.gz"]);

    // Nothing listens on this port: every call fails after the SDK's retries.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let down = sdk_loader()
        .endpoint_url(format!("http://127.0.0.1:{closed}"))
        .load()
        .await;
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
    assert_eq!(
        s.count(&DenialKey::new(MALLORY, MODEL, ACCOUNT), bucket_of(T0))
            .await,
        4
    );
    assert_eq!(s.alerts().await.len(), 1);
}

#[tokio::test]
async fn sixteen_concurrent_invocations_on_four_keys() {
    let Some(s) = Stack::new("concurrent").await else {
        return;
    };
    let users: Vec<String> = (0..4)
        .map(|i| format!("arn:aws:iam::111122223333:user/racer-{i}"))
        .collect();
    let mut keys = Vec::new();
    for obj in 0..16 {
        let key = format!("obj-{obj}.json.gz");
        // Every object holds 4 denials of its own user and 1 of the next user.
        let mine = &users[obj % 4];
        let next = &users[(obj + 1) % 4];
        let body: String = (0..4)
            .map(|i| line(mine, MODEL, ACCOUNT, T0 + i, Some("AccessDeniedException")))
            .chain(std::iter::once(line(
                next,
                MODEL,
                ACCOUNT,
                T0 + 9,
                Some("AccessDenied"),
            )))
            .collect();
        s.put(&key, gzip(body.as_bytes())).await;
        keys.push(key);
    }
    let mut handlers = Vec::new();
    for _ in 0..16 {
        handlers.push(s.handler().await);
    }
    let runs = handlers
        .iter()
        .zip(&keys)
        .map(|(h, k)| h.handle(s.s3_event(&[k.as_str()])));
    for r in futures_util::future::join_all(runs).await {
        r.expect("handled");
    }
    for u in &users {
        assert_eq!(
            s.count(&DenialKey::new(u.as_str(), MODEL, ACCOUNT), bucket_of(T0))
                .await,
            4 * 4 + 4
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
