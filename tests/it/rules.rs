//! The rules beside the seed rule, through the function's handler on the emulator:
//! each fires at its threshold + 1 and stays quiet at it, raises one alert however
//! often and however concurrently an object is delivered, and is quiet when switched
//! off (docs/DESIGN.md, "Rules").

use crate::support::*;
use bedrock_denied_models::config::Config;
use bedrock_denied_models::rule::{MANY_MODELS, ROLE_SESSIONS, SEED};
use serde_json::{json, Value};

const KEY_CHECKER: &str = "arn:aws:iam::111122223333:user/ci-deployer";
const SONNET: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

/// One denial per model, each model spelled another way, as a key checker calls them.
fn one_denial_per_model(user: &str, models: &[&str], t: i64) -> Vec<u8> {
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            record(
                user,
                m,
                ACCOUNT,
                t + i as i64,
                Some(DENIED),
                &format!("{user}-{t}-{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

fn models(n: usize) -> Vec<String> {
    let spellings = [
        SONNET.to_string(),
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
            .to_string(),
        "us.meta.llama3-1-70b-instruct-v1:0".to_string(),
        "arn:aws:bedrock:us-west-2:111122223333:inference-profile/eu.mistral.mistral-large-2402-v1:0"
            .to_string(),
        "amazon.titan-text-express-v1".to_string(),
    ];
    spellings[..n].to_vec()
}

fn of_rule(alerts: &[Value], id: &str) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| a["Alert"]["rule"]["id"] == id)
        .cloned()
        .collect()
}

/// Hands `event` to the handler four times at once, as concurrent deliveries would.
async fn four_at_once(h: &bedrock_denied_models::lambda::AwsHandler, event: &Value) {
    let runs = (0..4).map(|_| h.handle(event.clone()));
    for r in futures_util::future::join_all(runs).await {
        r.expect("concurrent delivery");
    }
}

fn only(rules: &str) -> Config {
    Config::from_vars(|k| (k == "RULES").then(|| rules.to_string())).expect("config")
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_model_rule_fires_past_three_models_and_not_at_three() {
    let s = Stack::new("many-models").await;
    let h = s.handler().await;
    let all = models(4);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    // Three models, in two objects: quiet.
    s.put("a.json", one_denial_per_model(KEY_CHECKER, &all[..2], T0))
        .await;
    s.put(
        "b.json",
        one_denial_per_model(KEY_CHECKER, &all[2..3], T0 + 60),
    )
    .await;
    h.handle(s.s3_event(&["a.json", "b.json"]))
        .await
        .expect("handled");
    assert!(
        s.alerts().await.is_empty(),
        "three models are not more than three"
    );
    // The same model again, spelled as its inference profile: still three.
    s.put(
        "c.json",
        one_denial_per_model(KEY_CHECKER, &[&format!("us.{SONNET}")], T0 + 120),
    )
    .await;
    h.handle(s.s3_event(&["c.json"])).await.expect("handled");
    assert!(
        s.alerts().await.is_empty(),
        "one model, however it is spelled"
    );
    // A fourth model: one alert of the model rule, and none of the seed rule.
    s.put(
        "d.json",
        one_denial_per_model(KEY_CHECKER, &all[3..4], T0 + 180),
    )
    .await;
    h.handle(s.s3_event(&["d.json"])).await.expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["Alert"];
    assert_eq!(a["rule"]["id"], MANY_MODELS.id);
    assert_eq!(a["rule"]["name"], MANY_MODELS.name);
    assert_eq!(a["user.id"], KEY_CHECKER);
    assert_eq!(a["cloud.account.id"], ACCOUNT);
    assert_eq!(a["total_denials"], 5, "five denied calls");
    assert_eq!(
        a["models"],
        json!([
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "mistral.mistral-large-2402-v1:0"
        ])
    );
    let subject = alerts[0]["Subject"].as_str().expect("subject");
    assert!(
        subject.starts_with(
            "[HIGH] Bedrock: 4 models denied to arn:aws:iam::111122223333:user/ci-deployer"
        ),
        "{subject}"
    );
    // Delivered again, and four times at once: nothing new.
    let again = s.s3_event(&["a.json", "b.json", "c.json", "d.json"]);
    h.handle(again.clone()).await.expect("again");
    four_at_once(&h, &again).await;
    assert_eq!(s.alerts().await.len(), 0, "exactly one alert, already read");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_role_rule_fires_across_sessions_and_leaves_one_session_to_the_seed_rule() {
    let s = Stack::new("role-sessions").await;
    let h = s.handler().await;
    let session = |n: &str| format!("arn:aws:sts::111122223333:assumed-role/BedrockProbe/{n}");
    // Two sessions, two denials each on one model (two spellings): four calls, no
    // session over the seed rule's threshold.
    let mut body = one_denial_per_model(&session("s1"), &[SONNET, SONNET], T0);
    body.extend(one_denial_per_model(&session("s2"), &[SONNET], T0 + 30));
    s.put("a.json", body).await;
    h.handle(s.s3_event(&["a.json"])).await.expect("handled");
    assert!(
        s.alerts().await.is_empty(),
        "three calls are not more than three"
    );
    s.put(
        "b.json",
        one_denial_per_model(&session("s2"), &[&format!("us.{SONNET}")], T0 + 60),
    )
    .await;
    let event = s.s3_event(&["b.json"]);
    four_at_once(&h, &event).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["Alert"];
    assert_eq!(a["rule"]["id"], ROLE_SESSIONS.id);
    assert_eq!(
        a["user.id"],
        "arn:aws:sts::111122223333:assumed-role/BedrockProbe"
    );
    assert_eq!(a["gen_ai.request.model.id"], SONNET);
    assert_eq!(a["total_denials"], 4);
    assert_eq!(a["sessions"], json!(["s1", "s2"]));
    h.handle(s.s3_event(&["a.json", "b.json"]))
        .await
        .expect("redelivered");
    assert!(
        s.alerts().await.is_empty(),
        "one alert however often delivered"
    );

    // One session denied five times on one model: the seed rule's alert only.
    let one = "arn:aws:sts::111122223333:assumed-role/BatchJob/only-session";
    s.put(
        "c.json",
        one_denial_per_model(one, &[MODEL, MODEL, MODEL, MODEL, MODEL], T0),
    )
    .await;
    h.handle(s.s3_event(&["c.json"])).await.expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["Alert"]["rule"]["id"], SEED.id);
    assert_eq!(alerts[0]["Alert"]["user.id"], one);
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn rules_switched_off_stay_quiet() {
    let s = Stack::new("rules-off").await;
    let h = s.handler_with(only(SEED.id)).await;
    let all = models(5);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let role = |n: &str| format!("arn:aws:sts::111122223333:assumed-role/Probe/{n}");
    let mut body = one_denial_per_model(KEY_CHECKER, &all, T0);
    for i in 0..4 {
        body.extend(one_denial_per_model(
            &role(&format!("s{i}")),
            &[MODEL],
            T0 + i,
        ));
    }
    s.put("a.json", body).await;
    h.handle(s.s3_event(&["a.json"])).await.expect("handled");
    assert!(s.alerts().await.is_empty(), "only the seed rule is on");
    // The same content with every rule on alerts on both.
    s.handler()
        .await
        .handle(s.s3_event(&["a.json"]))
        .await
        .expect("handled");
    let alerts = s.alerts().await;
    assert_eq!(of_rule(&alerts, MANY_MODELS.id).len(), 1, "{alerts:?}");
    assert_eq!(of_rule(&alerts, ROLE_SESSIONS.id).len(), 1, "{alerts:?}");
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    // An unknown id stops start-up, naming the value.
    let err = Config::from_vars(|k| (k == "RULES").then(|| "all,nope".to_string()))
        .expect_err("unknown id");
    assert!(err.to_string().contains("RULES"), "{err}");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_stolen_key_sequence_in_cloudtrail_raises_the_model_role_and_validation_rules_not_the_seed(
) {
    let s = Stack::new("stolen-key").await;
    let key = "AWSLogs/444455556666/CloudTrail/us-east-1/2026/03/14/444455556666_CloudTrail_us-east-1_20260314T1010Z_St0lenK3yCheck01.json.gz";
    let body = std::fs::read(format!("events/logs/{key}")).expect("the sample");
    s.put(key, body).await;
    s.handler()
        .await
        .handle(s.s3_event(&[key]))
        .await
        .expect("handled");
    let alerts = s.alerts().await;
    assert!(of_rule(&alerts, SEED.id).is_empty(), "{alerts:?}");
    let models = of_rule(&alerts, MANY_MODELS.id);
    assert_eq!(models.len(), 1, "{alerts:?}");
    assert!(
        models[0]["Alert"]["models"]
            .as_array()
            .expect("models")
            .len()
            > 3
    );
    let roles = of_rule(&alerts, ROLE_SESSIONS.id);
    assert_eq!(roles.len(), 1, "{alerts:?}");
    let role = &roles[0]["Alert"];
    assert_eq!(
        role["user.id"],
        "arn:aws:sts::444455556666:assumed-role/bedrock-app-role"
    );
    assert_eq!(role["gen_ai.request.model.id"], SONNET);
    assert_eq!(role["sessions"].as_array().expect("sessions").len(), 4);
    // One session's four validation-error probes within a minute: the validation rule.
    let probes = of_rule(&alerts, bedrock_denied_models::rule::VALIDATION.id);
    assert_eq!(probes.len(), 1, "{alerts:?}");
    assert_eq!(probes[0]["Alert"]["total_denials"], 4);
    assert_eq!(alerts.len(), 3, "{alerts:?}");
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn the_validation_rule_fires_past_three_in_one_clock_minute() {
    let s = Stack::new("validation").await;
    let h = s.handler().await;
    let prober = "arn:aws:iam::111122223333:user/prober";
    let errors = |times: &[i64], tag: &str| -> Vec<u8> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                record(
                    prober,
                    SONNET,
                    ACCOUNT,
                    *t,
                    Some("ValidationException"),
                    &format!("{tag}-{i}"),
                )
                .to_string()
                    + "\n"
            })
            .collect::<String>()
            .into_bytes()
    };
    // T0 is on a minute: three in its minute and two in the next is no minute over 3.
    s.put(
        "a.json",
        errors(&[T0, T0 + 20, T0 + 59, T0 + 60, T0 + 61], "a"),
    )
    .await;
    h.handle(s.s3_event(&["a.json"])).await.expect("handled");
    assert!(s.alerts().await.is_empty(), "tumbling minutes of 3 and 2");
    // A CloudTrail validation error of a model invocation in the first minute: the
    // fourth of that minute.
    let trail = json!({"Records": [{
        "eventVersion": "1.09", "eventSource": "bedrock.amazonaws.com",
        "eventName": "InvokeModel", "eventTime": "2026-03-14T09:00:30Z",
        "awsRegion": "us-east-1", "errorCode": "ValidationException",
        "userIdentity": {"type": "IAMUser", "arn": prober, "accountId": ACCOUNT},
        "recipientAccountId": ACCOUNT, "requestParameters": {"modelId": SONNET},
        "requestID": "ct-validation-1"
    }]});
    s.put("trail.json", trail.to_string().into_bytes()).await;
    let event = s.s3_event(&["trail.json"]);
    four_at_once(&h, &event).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0]["Alert"];
    assert_eq!(a["rule"]["id"], bedrock_denied_models::rule::VALIDATION.id);
    assert_eq!(a["user.id"], prober);
    assert_eq!(a["gen_ai.request.model.id"], "");
    assert_eq!(a["total_denials"], 4);
    assert_eq!(
        a["window"],
        json!({"start": "2026-03-14T09:00:00Z", "end": "2026-03-14T09:01:00Z"})
    );
    let subject = alerts[0]["Subject"].as_str().expect("subject");
    assert_eq!(
        subject,
        "[HIGH] Bedrock: 4 validation errors in a minute by arn:aws:iam::111122223333:user/prober"
    );
    h.handle(s.s3_event(&["a.json", "trail.json"]))
        .await
        .expect("redelivered");
    assert!(
        s.alerts().await.is_empty(),
        "one alert however often delivered"
    );
    // Validation errors are no denials: the seed rule counted none.
    assert_eq!(
        s.count(
            &bedrock_denied_models::key::DenialKey::new(prober, SONNET, ACCOUNT),
            bucket_of(T0)
        )
        .await,
        0
    );
    // Switched off, the same minute of another user stays quiet.
    let off = s
        .handler_with(only(&format!("{},{}", SEED.id, MANY_MODELS.id)))
        .await;
    let other = "arn:aws:iam::111122223333:user/prober-2";
    let body: String = (0..6)
        .map(|i| {
            record(
                other,
                SONNET,
                ACCOUNT,
                T0 + i,
                Some("ValidationException"),
                &format!("o-{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect();
    s.put("off.json", body.into_bytes()).await;
    off.handle(s.s3_event(&["off.json"]))
        .await
        .expect("handled");
    assert!(s.alerts().await.is_empty(), "the validation rule is off");
}

/// Denials of `user` on [`SONNET`] as invocation-log lines, request ids `call-<i>`.
fn told_by_the_log(user: &str, calls: &[i64], code: &str) -> Vec<u8> {
    calls
        .iter()
        .map(|i| {
            record(
                user,
                SONNET,
                ACCOUNT,
                T0 + i,
                Some(code),
                &format!("call-{i}"),
            )
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

/// The same calls as a CloudTrail log file.
fn told_by_the_trail(user: &str, calls: &[i64], code: &str) -> Vec<u8> {
    let records: Vec<Value> = calls
        .iter()
        .map(|i| {
            let mut r = cloudtrail_record(
                user,
                SONNET,
                T0 + i,
                "InvokeModel",
                Some(code),
                &format!("call-{i}"),
            );
            r["userIdentity"]["type"] = json!("IAMUser");
            r
        })
        .collect();
    json!({ "Records": records }).to_string().into_bytes()
}

#[tokio::test]
#[ignore = "needs the emulator"]
async fn a_call_told_by_both_logs_counts_once() {
    use bedrock_denied_models::key::{DenialKey, RuleTag};
    let s = Stack::new("one-call").await;
    let h = s.handler().await;
    let user = "arn:aws:iam::111122223333:user/told-twice";
    let seed_key = DenialKey::new(user, SONNET, ACCOUNT);
    // Two denied calls, each in the invocation log and in CloudTrail, delivered four
    // times at once: two calls, no alert (counted by record they would make 4).
    s.put("log-1.json", told_by_the_log(user, &[0, 1], DENIED))
        .await;
    s.put(
        "trail-1.json",
        told_by_the_trail(user, &[0, 1], "AccessDenied"),
    )
    .await;
    four_at_once(&h, &s.s3_event(&["log-1.json", "trail-1.json"])).await;
    assert!(s.alerts().await.is_empty(), "two calls are not more than 3");
    assert_eq!(s.count(&seed_key, bucket_of(T0)).await, 2);
    // Two more calls, told by both: four calls, one alert of 4.
    s.put("log-2.json", told_by_the_log(user, &[2, 3], DENIED))
        .await;
    s.put(
        "trail-2.json",
        told_by_the_trail(user, &[2, 3], "AccessDenied"),
    )
    .await;
    four_at_once(&h, &s.s3_event(&["trail-2.json", "log-2.json"])).await;
    let alerts = s.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["Alert"]["rule"]["id"], SEED.id);
    assert_eq!(alerts[0]["Alert"]["total_denials"], 4);
    // Everything again: nothing new.
    let all = ["log-1.json", "trail-1.json", "log-2.json", "trail-2.json"];
    h.handle(s.s3_event(&all)).await.expect("redelivered");
    assert!(s.alerts().await.is_empty());
    assert_eq!(s.count(&seed_key, bucket_of(T0)).await, 4);

    // The records of one log all count, as the rule counts records: CloudTrail
    // delivering one record twice (in two files) counts twice.
    let other = "arn:aws:iam::111122223333:user/one-log";
    s.put("dup-1.json", told_by_the_trail(other, &[7], "AccessDenied"))
        .await;
    s.put("dup-2.json", told_by_the_trail(other, &[7], "AccessDenied"))
        .await;
    h.handle(s.s3_event(&["dup-1.json", "dup-2.json"]))
        .await
        .expect("handled");
    let other_key = DenialKey::new(other, SONNET, ACCOUNT);
    assert_eq!(s.count(&other_key, bucket_of(T0)).await, 2);

    // The validation rule too: two validation errors told by both logs are two.
    let prober = "arn:aws:iam::111122223333:user/told-twice-prober";
    let code = "ValidationException";
    s.put("v-log.json", told_by_the_log(prober, &[0, 1], code))
        .await;
    s.put("v-trail.json", told_by_the_trail(prober, &[0, 1], code))
        .await;
    four_at_once(&h, &s.s3_event(&["v-log.json", "v-trail.json"])).await;
    assert!(s.alerts().await.is_empty(), "two validation errors");
    let minute = DenialKey::new(prober, "", ACCOUNT).for_rule(RuleTag::Validation);
    assert_eq!(s.count(&minute, T0.div_euclid(60)).await, 2);
}
