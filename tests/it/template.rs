//! The templates and the code agree: table key schema, environment, defaults, metric
//! names, the central bucket and the member template's replication; every permission
//! stays least-privilege.

use bedrock_denied_models::aws::store::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use bedrock_denied_models::config::Config;
use bedrock_denied_models::lambda::metrics::{metric_names, DIMENSION, NAMESPACE};
use bedrock_denied_models::lambda::LambdaSettings;
use serde_yaml_ng::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

fn load(file: &str) -> Value {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

pub fn template() -> Value {
    load("template.yaml")
}

fn member() -> Value {
    load("deploy/member-account.yaml")
}

/// A template value with `!Ref` and `!Sub` of the given parameters (and pseudo
/// parameters) resolved, `!Join` and `!Split` applied, and `!If` by the given
/// conditions ("true" or "false"), as JSON; `AWS::NoValue` leaves a list, other
/// intrinsic functions become null. `${!name}` in a `!Sub` stays `${name}`, as
/// CloudFormation writes it.
pub fn resolve(v: &Value, params: &BTreeMap<&str, &str>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => serde_json::to_value(n).unwrap_or(J::Null),
        Value::String(s) => J::String(s.clone()),
        Value::Sequence(seq) => J::Array(
            seq.iter()
                .filter(|x| !is_no_value(x, params))
                .map(|x| resolve(x, params))
                .collect(),
        ),
        Value::Tagged(t) if t.tag == "!If" => resolve(if_branch(t, params), params),
        Value::Mapping(m) => J::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.as_str().unwrap_or_default().to_string(),
                        resolve(x, params),
                    )
                })
                .collect(),
        ),
        Value::Tagged(t) => {
            let name = t.value.as_str().unwrap_or_default();
            match t.tag.to_string().as_str() {
                "!Ref" => params
                    .get(name)
                    .map_or(J::Null, |v| J::String(v.to_string())),
                "!Sub" => J::String(substitute(&t.value, params)),
                "!Join" => {
                    let parts = resolve(&t.value[1], params);
                    let parts: Vec<&str> = parts
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    J::String(parts.join(t.value[0].as_str().unwrap_or_default()))
                }
                "!Split" => {
                    let text = resolve(&t.value[1], params);
                    J::Array(
                        text.as_str()
                            .unwrap_or_default()
                            .split(t.value[0].as_str().unwrap_or_default())
                            .map(|x| J::String(x.to_string()))
                            .collect(),
                    )
                }
                _ => J::Null,
            }
        }
    }
}

/// `!Sub "text"` or `!Sub [text, {name: value}]`: the named values (resolved) and
/// `params` put in, then `${!name}` written as `${name}`.
fn substitute(sub: &Value, params: &BTreeMap<&str, &str>) -> String {
    let (mut out, own) = match sub {
        Value::Sequence(form) => (
            form[0].as_str().unwrap_or_default().to_string(),
            form[1].as_mapping().cloned().unwrap_or_default(),
        ),
        _ => (
            sub.as_str().unwrap_or_default().to_string(),
            Default::default(),
        ),
    };
    for (k, v) in &own {
        let value = resolve(v, params);
        out = out.replace(
            &format!("${{{}}}", k.as_str().unwrap_or_default()),
            value.as_str().unwrap_or_default(),
        );
    }
    for (k, v) in params {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out.replace("${!", "${")
}

/// The branch of `!If [condition, then, else]` that `params` choose.
fn if_branch<'a>(
    t: &'a serde_yaml_ng::value::TaggedValue,
    params: &BTreeMap<&str, &str>,
) -> &'a Value {
    let cond = t.value[0].as_str().unwrap_or_default();
    if params.get(cond) == Some(&"true") {
        &t.value[1]
    } else {
        &t.value[2]
    }
}

/// `!Ref AWS::NoValue`, directly or as the chosen branch of an `!If`.
fn is_no_value(v: &Value, params: &BTreeMap<&str, &str>) -> bool {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str() == Some("AWS::NoValue"),
        Value::Tagged(t) if t.tag == "!If" => is_no_value(if_branch(t, params), params),
        _ => false,
    }
}

/// The default of a numeric template parameter.
fn default_number(t: &Value, name: &str) -> u64 {
    t["Parameters"][name]["Default"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} default"))
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap_or_default(), r))
        .collect()
}

fn function(t: &Value) -> &Value {
    let f = resources_of_type(t, "AWS::Serverless::Function");
    assert_eq!(f.len(), 1, "one function");
    f[0].1
}

#[test]
fn exactly_one_table_with_the_key_schema_the_store_uses() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(
        tables.len(),
        1,
        "exactly one table (docs/DESIGN.md, \"The DynamoDB item layout\")"
    );
    let p = &tables[0].1["Properties"];
    let keys: Vec<(&str, &str)> = p["KeySchema"]
        .as_sequence()
        .expect("KeySchema")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap_or_default(),
                k["KeyType"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(keys, vec![(PARTITION_KEY, "HASH"), (SORT_KEY, "RANGE")]);
    let attrs: BTreeSet<(&str, &str)> = p["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap_or_default(),
                a["AttributeType"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        BTreeSet::from([(PARTITION_KEY, "S"), (SORT_KEY, "N")])
    );
    assert_eq!(
        p["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(TTL_ATTRIBUTE)
    );
    assert_eq!(
        p["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn environment_names_are_those_the_code_reads() {
    let t = template();
    let env: BTreeSet<String> = function(&t)["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Variables")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let read = RefCell::new(BTreeSet::new());
    let settings = LambdaSettings::from_vars(|name| {
        read.borrow_mut().insert(name.to_string());
        Some(
            match name {
                "SECURITY_HUB" | "REQUIRE_LOG_LAYOUT" => "true",
                "ACCOUNT_ID" => "111122223333",
                "EXCEPTIONS" => "[]",
                "RULES" => "all",
                "RULE_SETTINGS" => "5ccff5be-bfdf-4b36-91f2-0e122eb0a8db:threshold=4",
                _ => "1",
            }
            .into(),
        )
    });
    assert!(settings.is_ok(), "{settings:?}");
    let mut read = read.into_inner();
    // Set by Lambda itself.
    read.remove("AWS_LAMBDA_FUNCTION_NAME");
    read.remove("AWS_REGION");
    assert_eq!(
        env, read,
        "template environment vs variables the code reads"
    );
}

#[test]
fn logs_are_json_at_info_so_the_runtime_logger_writes_json_lines() {
    let t = template();
    let logging = &function(&t)["Properties"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(logging["ApplicationLogLevel"].as_str(), Some("INFO"));
}

#[test]
fn sam_build_enables_the_aws_feature() {
    // SAM runs cargo-lambda with no cargo flags; cargo-lambda reads its features here.
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    assert!(
        manifest.contains("[package.metadata.lambda.build]\nfeatures = [\"aws\"]"),
        "cargo-lambda must build with the aws feature"
    );
}

#[test]
fn parameter_defaults_match_the_code() {
    let t = template();
    let d = Config::default();
    let num = |name: &str| default_number(&t, name);
    assert_eq!(num("Threshold"), d.threshold);
    assert_eq!(num("BucketMinutes"), u64::from(d.bucket_minutes));
    assert_eq!(num("WindowBuckets"), u64::from(d.window_buckets));
    assert_eq!(num("SuppressMinutes"), u64::from(d.suppress_minutes));
    let p = &t["Parameters"];
    assert_eq!(
        p["DenialCodes"]["Default"].as_str(),
        Some(d.denial_codes.join(",").as_str())
    );
    assert_eq!(
        p["CloudTrailDenialCodes"]["Default"].as_str(),
        Some(d.cloudtrail_denial_codes.join(",").as_str())
    );
    assert_eq!(p["Exceptions"]["Default"].as_str(), Some(""));
    assert_eq!(p["EventBusName"]["Default"].as_str(), Some(""));
    assert_eq!(p["SecurityHub"]["Default"].as_str(), Some("false"));
}

#[test]
fn the_queue_is_visible_long_enough_for_the_function() {
    // AWS: a visibility timeout of at least six times the function timeout plus the
    // batching window.
    let t = template();
    let num = |name: &str| default_number(&t, name);
    assert!(
        num("QueueVisibilityTimeoutSeconds")
            >= 6 * num("FunctionTimeout") + num("QueueBatchingWindowSeconds")
    );
    let mapping = &resources_of_type(&t, "AWS::Lambda::EventSourceMapping")[0].1["Properties"];
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures"),
        "the function answers SQS batches with batchItemFailures"
    );
}

#[test]
fn function_is_the_custom_runtime_on_arm64() {
    let t = template();
    let f = function(&t);
    let props = &f["Properties"];
    assert_eq!(props["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(props["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(props["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(
        f["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml"))
        .expect("read");
    assert!(!text.contains("target-cpu=native"));
}

/// IAM-style statements (maps with Effect and Action) anywhere below `v`.
fn walk(v: &Value, owner: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Mapping(m) => {
            if m.contains_key("Effect") && m.contains_key("Action") {
                out.push((owner.to_string(), v.clone()));
            }
            for (_, child) in m {
                walk(child, owner, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|c| walk(c, owner, out)),
        Value::Tagged(t) => walk(&t.value, owner, out),
        _ => {}
    }
}

/// Every statement in the template: (resource name, statement).
fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, r) in t["Resources"].as_mapping().expect("Resources") {
        walk(r, name.as_str().unwrap_or_default(), &mut out);
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn no_wildcard_resources_for_data_plane_actions() {
    let mut all = statements(&template());
    all.extend(statements(&member()));
    assert!(all.len() >= 8, "statements found: {}", all.len());
    for (owner, st) in &all {
        let actions = strings(&st["Action"]);
        let data_plane = actions.iter().any(|a| {
            [
                "s3:",
                "dynamodb:",
                "sns:",
                "sqs:",
                "events:",
                "securityhub:",
            ]
            .iter()
            .any(|p| a.starts_with(p))
        });
        if !data_plane {
            continue;
        }
        let resources = strings(&st["Resource"]);
        assert!(
            !resources.iter().any(|r| r == "*"),
            "{owner}: {actions:?} on Resource \"*\""
        );
        if st["Effect"].as_str() == Some("Allow") {
            assert!(
                !actions.iter().any(|a| a.ends_with(":*")),
                "{owner}: wildcard action {actions:?} allowed"
            );
        }
    }
    // The function's own grants are exactly these: its policies, and the policies
    // attached to its role.
    let t = template();
    let f = function(&t);
    let mut own = Vec::new();
    walk(f, "DetectorFunction", &mut own);
    for (name, policy) in resources_of_type(&t, "AWS::IAM::Policy") {
        let roles = &policy["Properties"]["Roles"];
        let to_function = roles.as_sequence().is_some_and(|r| {
            r.iter().any(|role| match role {
                Value::Tagged(tag) => {
                    tag.tag == "!Ref" && tag.value.as_str() == Some("DetectorFunctionRole")
                }
                _ => false,
            })
        });
        if to_function {
            walk(policy, name, &mut own);
        }
    }
    let granted: BTreeSet<String> = own
        .into_iter()
        .filter(|(_, s)| s["Effect"].as_str() == Some("Allow"))
        .flat_map(|(_, s)| strings(&s["Action"]))
        .collect();
    let expected: BTreeSet<String> = [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
        "s3:ListBucket",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "events:PutEvents",
        "securityhub:BatchImportFindings",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(granted, expected);
}

/// Every (namespace, metric, dimension names) the template's alarms and dashboard use.
fn metrics_used(t: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut used = Vec::new();
    for (_, alarm) in resources_of_type(t, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let dims = p["Dimensions"]
            .as_sequence()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x["Name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        used.push((
            p["Namespace"].as_str().unwrap_or_default().to_string(),
            p["MetricName"].as_str().unwrap_or_default().to_string(),
            dims,
        ));
    }
    for (_, dashboard) in resources_of_type(t, "AWS::CloudWatch::Dashboard") {
        let Value::Tagged(sub) = &dashboard["Properties"]["DashboardBody"] else {
            panic!("DashboardBody is a !Sub")
        };
        let text = sub.value[0].as_str().expect("body text");
        let mut body = text.to_string();
        for (k, v) in [
            ("AWS::Region", "us-east-1"),
            ("Function", "f"),
            ("DeadLetterQueue", "q"),
            ("Table", "t"),
        ] {
            body = body.replace(&format!("${{{k}}}"), v);
        }
        assert!(
            !body.contains("${"),
            "unresolved placeholder in the dashboard: {body}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).expect("dashboard body is JSON");
        for widget in json["widgets"].as_array().expect("widgets") {
            for m in widget["properties"]["metrics"].as_array().expect("metrics") {
                let parts: Vec<&str> = m
                    .as_array()
                    .expect("metric")
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect();
                let dims = parts[2..]
                    .iter()
                    .step_by(2)
                    .map(|d| d.to_string())
                    .collect();
                used.push((parts[0].to_string(), parts[1].to_string(), dims));
            }
        }
    }
    used
}

#[test]
fn every_metric_the_alarms_and_dashboard_use_is_one_the_function_writes() {
    let t = template();
    let used = metrics_used(&t);
    let ours: Vec<_> = used.iter().filter(|(ns, _, _)| ns == NAMESPACE).collect();
    assert!(ours.len() >= 19, "{used:?}");
    let names = metric_names();
    for (_, metric, dims) in &ours {
        assert!(
            names.contains(&metric.as_str()),
            "{metric} is not a metric the code writes"
        );
        assert_eq!(dims, &vec![DIMENSION.to_string()], "{metric}: dimensions");
    }
    // The dashboard shows every metric the function writes but the total of skipped lines.
    for name in names.iter().filter(|n| **n != "SkippedLines") {
        assert!(
            ours.iter().any(|(_, m, _)| m == name),
            "{name} missing from the dashboard"
        );
    }
    // Every namespace used is ours or AWS's own.
    for (ns, metric, _) in &used {
        assert!(ns == NAMESPACE || ns.starts_with("AWS/"), "{ns}/{metric}");
    }
}

#[test]
fn every_alarm_tells_the_team_when_it_fires_and_when_it_recovers() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 7, "{}", alarms.len());
    for (name, alarm) in alarms {
        let p = &alarm["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            assert_eq!(
                p[actions].as_sequence().map(Vec::len),
                Some(1),
                "{name}: {actions}"
            );
        }
        assert!(
            p["AlarmDescription"].as_str().is_some()
                || matches!(p["AlarmDescription"], Value::Tagged(_)),
            "{name}: what to check"
        );
    }
    let blind = &t["Resources"]["NoLogsAlarm"]["Properties"];
    assert_eq!(
        blind["TreatMissingData"].as_str(),
        Some("breaching"),
        "no data is no logs"
    );
    assert_eq!(blind["MetricName"].as_str(), Some("Objects"));
}

#[test]
fn an_existing_bucket_is_wired_through_an_eventbridge_rule_for_log_objects_only() {
    let t = template();
    let rule = &t["Resources"]["ExistingBucketRule"];
    let params = BTreeMap::from([
        ("ExistingLogBucketName", "logs"),
        ("LogKeyPrefix", "AWSLogs/"),
    ]);
    let pattern = resolve(&rule["Properties"]["EventPattern"], &params);
    assert_eq!(
        pattern,
        serde_json::json!({"source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": ["logs"]},
                       "object": {"key": [{"wildcard": "AWSLogs/*.json"}, {"wildcard": "AWSLogs/*.gz"}]}}})
    );
    // The function may be invoked by exactly this rule.
    let permission = &t["Resources"]["ExistingBucketRulePermission"]["Properties"];
    assert_eq!(
        permission["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    assert!(
        matches!(&permission["SourceArn"], Value::Tagged(t) if t.tag == "!GetAtt"
        && t.value.as_str() == Some("ExistingBucketRule.Arn"))
    );
}

#[test]
fn a_log_group_is_subscribed_to_the_function_with_a_scoped_permission() {
    let t = template();
    let filter = &t["Resources"]["LogGroupSubscription"];
    assert_eq!(
        filter["Type"].as_str(),
        Some("AWS::Logs::SubscriptionFilter")
    );
    assert_eq!(
        subscription_pattern(&[("DenialCodes", "A"), ("CloudTrailDenialCodes", "B")]),
        r#"{ ($.errorCode = "A") || ($.errorCode = "B") }"#,
        "only denials are delivered"
    );
    let permission = &t["Resources"]["LogGroupInvokePermission"]["Properties"];
    assert_eq!(permission["Principal"].as_str(), Some("logs.amazonaws.com"));
    let arn = resolve(
        &permission["SourceArn"],
        &BTreeMap::from([("InvocationLogGroupName", "/aws/bedrock/invocations")]),
    );
    assert!(
        arn.as_str()
            .is_some_and(|a| a.ends_with(":log-group:/aws/bedrock/invocations:*")),
        "{arn}"
    );
}

/// The subscription filter's pattern as CloudFormation builds it from the template for
/// these parameters (the defaults for any not given).
fn subscription_pattern(given: &[(&str, &str)]) -> String {
    let t = template();
    let mut values: BTreeMap<String, String> = ["DenialCodes", "CloudTrailDenialCodes"]
        .into_iter()
        .map(|name| {
            let value = t["Parameters"][name]["Default"].as_str().expect(name);
            (name.to_string(), value.to_string())
        })
        .collect();
    // The validation rule is off unless a test turns it on: only denials then.
    values.insert("ValidationRuleOn".into(), "false".into());
    for (k, v) in given {
        values.insert(k.to_string(), v.to_string());
    }
    let params: BTreeMap<&str, &str> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let pattern = resolve(
        &t["Resources"]["LogGroupSubscription"]["Properties"]["FilterPattern"],
        &params,
    );
    pattern.as_str().expect("a pattern").to_string()
}

/// Whether a CloudWatch Logs JSON filter pattern matches a log event's message, as
/// AWS documents the syntax (FilterAndPatternSyntax): `{ expression }` over property
/// selectors `$.a.b`, `=` with a quoted string (exact and case-sensitive), `&&`,
/// `||` and parentheses; an event that is not a JSON object, or whose selected value
/// is missing or not a string, does not match. Anything else in the pattern fails the
/// test instead of being guessed at.
///
/// Independent of the emulator on purpose: the pinned moto (5.2.5) does not evaluate
/// JSON patterns. Its `EventMessageFilter` (`moto/logs/utils.py`) treats a pattern
/// that starts with neither a letter nor a quote as `UnsupportedFilterPattern`, which
/// matches every event, so `FilterLogEvents` returns everything; `PutLogEvents`
/// delivers every event to a subscription's Lambda function whatever its pattern
/// (`LogStream.put_log_events` in `moto/logs/models.py`); and it has no
/// `TestMetricFilter`. An emulator test could not fail on a wrong pattern.
fn filter_matches(pattern: &str, message: &str) -> bool {
    let tokens = filter_tokens(pattern);
    assert!(
        tokens.first().map(String::as_str) == Some("{")
            && tokens.last().map(String::as_str) == Some("}"),
        "not a JSON filter pattern: {pattern}"
    );
    let event: Option<serde_json::Value> = serde_json::from_str(message)
        .ok()
        .filter(serde_json::Value::is_object);
    let mut at = 1;
    let matched = filter_or(&tokens, &mut at, event.as_ref());
    assert_eq!(at, tokens.len() - 1, "trailing tokens in {pattern}");
    matched
}

fn filter_tokens(pattern: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '{' | '}' | '(' | ')' | '=' => tokens.push(c.to_string()),
            '|' | '&' => {
                assert_eq!(chars.next(), Some(c), "single {c} in {pattern}");
                tokens.push(format!("{c}{c}"));
            }
            '"' => {
                let text: String = chars.by_ref().take_while(|&x| x != '"').collect();
                assert!(!text.contains('*'), "wildcards are not evaluated: {text}");
                tokens.push(format!("\"{text}"));
            }
            '$' => {
                let mut selector = String::from("$");
                while let Some(&x) = chars.peek() {
                    if !(x.is_ascii_alphanumeric() || x == '.' || x == '_' || x == '-') {
                        break;
                    }
                    selector.push(x);
                    chars.next();
                }
                tokens.push(selector);
            }
            other => panic!("{other:?} in a filter pattern is not evaluated: {pattern}"),
        }
    }
    tokens
}

fn filter_or(tokens: &[String], at: &mut usize, event: Option<&serde_json::Value>) -> bool {
    let mut matched = filter_and(tokens, at, event);
    while tokens.get(*at).map(String::as_str) == Some("||") {
        *at += 1;
        matched |= filter_and(tokens, at, event);
    }
    matched
}

fn filter_and(tokens: &[String], at: &mut usize, event: Option<&serde_json::Value>) -> bool {
    let mut matched = filter_term(tokens, at, event);
    while tokens.get(*at).map(String::as_str) == Some("&&") {
        *at += 1;
        matched &= filter_term(tokens, at, event);
    }
    matched
}

fn filter_term(tokens: &[String], at: &mut usize, event: Option<&serde_json::Value>) -> bool {
    if tokens[*at] == "(" {
        *at += 1;
        let matched = filter_or(tokens, at, event);
        assert_eq!(tokens[*at], ")", "unbalanced parentheses");
        *at += 1;
        return matched;
    }
    let selector = tokens[*at].strip_prefix("$.").expect("a property selector");
    assert_eq!(tokens[*at + 1], "=", "only = is evaluated");
    let wanted = tokens[*at + 2].strip_prefix('"').expect("a quoted string");
    *at += 3;
    let value = event.and_then(|e| selector.split('.').try_fold(e, |v, name| v.get(name)));
    value.and_then(serde_json::Value::as_str) == Some(wanted)
}

/// A Bedrock model-invocation log record as Bedrock writes it to CloudWatch Logs.
fn invocation_record(error_code: Option<&str>, prompt: &str) -> String {
    let mut record = serde_json::json!({
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": "2026-03-14T09:01:12Z", "accountId": "111122223333",
        "identity": {"arn": "arn:aws:sts::111122223333:assumed-role/ContractorAccess/mallory"},
        "region": "us-east-1", "requestId": "c4c443b3-b129-2567-2d28-c94b5b2908e0",
        "operation": "Converse", "modelId": "anthropic.claude-3-opus-20240229-v1:0",
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": prompt}]}]}}
    });
    if let Some(code) = error_code {
        record["errorCode"] = code.into();
    } else {
        record["output"] = serde_json::json!({"outputContentType": "application/json",
            "outputBodyJson": {"output": {"message": {"content": [{"text": "a completion"}]}}}});
    }
    record.to_string()
}

/// A CloudTrail record of a Bedrock invocation, as a trail writes it to CloudWatch Logs.
fn cloudtrail_record(error_code: Option<&str>) -> String {
    let mut record = serde_json::json!({
        "eventVersion": "1.09", "eventTime": "2026-03-14T09:12:01Z",
        "userIdentity": {"type": "AssumedRole", "accountId": "111122223333",
                         "arn": "arn:aws:sts::111122223333:assumed-role/LegacyApp/i-0a1b2c3d4e5f67890"},
        "eventSource": "bedrock.amazonaws.com", "eventName": "InvokeModel",
        "awsRegion": "us-east-1", "requestParameters": {"modelId": "anthropic.claude-3-opus-20240229-v1:0"},
        "recipientAccountId": "111122223333"
    });
    if let Some(code) = error_code {
        record["errorCode"] = code.into();
        record["errorMessage"] = "User is not authorized to perform: bedrock:InvokeModel".into();
    }
    record.to_string()
}

#[test]
fn the_log_group_subscription_delivers_only_denials() {
    let defaults = subscription_pattern(&[]);
    assert_eq!(
        defaults,
        r#"{ ($.errorCode = "AccessDeniedException") || ($.errorCode = "AccessDenied") || ($.errorCode = "AccessDeniedException") }"#
    );
    let denial = invocation_record(Some("AccessDeniedException"), "a prompt");
    let trail_denial = cloudtrail_record(Some("AccessDenied"));
    let trail_other_denial = cloudtrail_record(Some("AccessDeniedException"));
    let success = invocation_record(None, "Summarize the quarterly budget risks.");
    let invalid = invocation_record(Some("ValidationException"), "a prompt");
    let trail_success = cloudtrail_record(None);
    // The denial codes only as text inside a prompt, or below the top level.
    let quoted = invocation_record(
        None,
        r#"Explain this log line: {"errorCode": "AccessDeniedException"} and "AccessDenied""#,
    );
    let nested = serde_json::json!({"schemaType": "ModelInvocationLog",
        "output": {"errorCode": "AccessDeniedException"}})
    .to_string();
    let not_json = r#"ERROR errorCode="AccessDeniedException" AccessDenied"#;
    let lower_case = invocation_record(Some("accessdeniedexception"), "a prompt");
    for denied in [&denial, &trail_denial, &trail_other_denial] {
        assert!(filter_matches(&defaults, denied), "{denied}");
    }
    // With the validation rule on, its records are delivered too, and nothing else.
    let with_validation = subscription_pattern(&[("ValidationRuleOn", "true")]);
    assert_eq!(
        with_validation,
        r#"{ ($.errorCode = "AccessDeniedException") || ($.errorCode = "AccessDenied") || ($.errorCode = "AccessDeniedException") || ($.errorCode = "ValidationException") }"#
    );
    assert!(filter_matches(&with_validation, &invalid));
    for other in [
        &success,
        &trail_success,
        &quoted,
        &nested,
        not_json,
        &lower_case,
    ] {
        assert!(!filter_matches(&with_validation, other), "{other}");
    }
    for other in [
        &success,
        &invalid,
        &trail_success,
        &quoted,
        &nested,
        not_json,
        &lower_case,
    ] {
        assert!(!filter_matches(&defaults, other), "{other}");
    }
    // Two codes of the invocation log, one of the trail: exactly those.
    let two = subscription_pattern(&[
        (
            "DenialCodes",
            "AccessDeniedException,ServiceQuotaExceededException",
        ),
        ("CloudTrailDenialCodes", "AccessDenied"),
    ]);
    assert_eq!(
        two,
        r#"{ ($.errorCode = "AccessDeniedException") || ($.errorCode = "ServiceQuotaExceededException") || ($.errorCode = "AccessDenied") }"#
    );
    let quota = invocation_record(Some("ServiceQuotaExceededException"), "a prompt");
    for denied in [&denial, &quota, &trail_denial] {
        assert!(filter_matches(&two, denied), "{denied}");
    }
    for other in [
        &cloudtrail_record(Some("ThrottlingException")),
        &invalid,
        &success,
        &quoted,
    ] {
        assert!(!filter_matches(&two, other), "{other}");
    }
    // A pattern is at most 1024 characters: 23 codes as long as AccessDeniedException
    // fit, in both parameters together (docs/DESIGN.md, "Inputs and formats").
    let codes = |n: usize| vec!["AccessDeniedException"; n].join(",");
    let (one_side, other_side) = (codes(12), codes(11));
    assert!(
        subscription_pattern(&[
            ("DenialCodes", &one_side),
            ("CloudTrailDenialCodes", &other_side)
        ])
        .len()
            <= 1024
    );
    let other_side = codes(12);
    assert!(
        subscription_pattern(&[
            ("DenialCodes", &one_side),
            ("CloudTrailDenialCodes", &other_side)
        ])
        .len()
            > 1024
    );
}

#[test]
fn the_filter_evaluator_follows_the_documented_syntax() {
    // AWS's own examples (FilterAndPatternSyntax, compound expressions).
    let event =
        r#"{"user": {"id": 1, "email": "John.Stiles@example.com"}, "eventType": "UpdateTrail"}"#;
    assert!(filter_matches(r#"{ $.eventType = "UpdateTrail" }"#, event));
    assert!(filter_matches(
        r#"{ $.user.email = "John.Stiles@example.com" }"#,
        event
    ));
    assert!(!filter_matches(
        r#"{ $.user.email = "john.stiles@example.com" }"#,
        event
    ));
    assert!(filter_matches(
        r#"{ ($.eventType = "x") || ($.user.email = "John.Stiles@example.com") }"#,
        event
    ));
    assert!(!filter_matches(
        r#"{ ($.eventType = "UpdateTrail") && ($.user.email = "x") }"#,
        event
    ));
    assert!(
        !filter_matches(r#"{ $.user = "x" }"#, event),
        "an object is no string"
    );
    assert!(!filter_matches(r#"{ $.missing = "UpdateTrail" }"#, event));
}

/// A rule condition or assertion of the template's Rules section, evaluated as
/// CloudFormation does for these parameter values: the rule-specific functions
/// the template uses (`Fn::And`, `Fn::Or`, `Fn::Not`, `Fn::Equals`, `Fn::Contains`,
/// `Ref`) over strings. Any other function fails the test.
fn rule_value(v: &Value, params: &BTreeMap<&str, &str>) -> serde_json::Value {
    use serde_json::Value as J;
    let truth = |x: &Value| rule_value(x, params).as_bool().expect("a condition");
    match v {
        Value::String(s) => J::String(s.clone()),
        Value::Number(n) => J::String(n.to_string()),
        Value::Sequence(items) => J::Array(items.iter().map(|x| rule_value(x, params)).collect()),
        Value::Tagged(t) => {
            let args = || t.value.as_sequence().expect("arguments");
            match t.tag.to_string().as_str() {
                "!Ref" => {
                    let name = t.value.as_str().expect("a parameter");
                    J::String(
                        params
                            .get(name)
                            .unwrap_or_else(|| panic!("no value for {name}"))
                            .to_string(),
                    )
                }
                "!And" => J::Bool(args().iter().all(truth)),
                "!Or" => J::Bool(args().iter().any(truth)),
                "!Not" => J::Bool(!truth(&args()[0])),
                "!Equals" => {
                    J::Bool(rule_value(&args()[0], params) == rule_value(&args()[1], params))
                }
                "!Contains" => {
                    let list = rule_value(&args()[0], params);
                    let value = rule_value(&args()[1], params);
                    J::Bool(list.as_array().expect("a list").contains(&value))
                }
                other => panic!("rule function {other} not evaluated"),
            }
        }
        other => panic!("{other:?} in a rule"),
    }
}

/// The AssertDescriptions of the rules whose assertions fail for these parameters.
fn broken_rules(params: &BTreeMap<&str, &str>) -> Vec<String> {
    let t = template();
    let mut broken = Vec::new();
    for (name, rule) in t["Rules"].as_mapping().expect("Rules") {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| rule_value(c, params).as_bool().expect("a condition"));
        if !applies {
            continue;
        }
        for assertion in rule["Assertions"].as_sequence().expect("Assertions") {
            if rule_value(&assertion["Assert"], params) != serde_json::Value::Bool(true) {
                broken.push(format!(
                    "{}: {}",
                    name.as_str().unwrap_or_default(),
                    assertion["AssertDescription"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    broken
}

#[test]
fn the_rules_refuse_a_queue_batch_the_function_cannot_take() {
    let t = template();
    let names: Vec<&str> = t["Rules"]
        .as_mapping()
        .expect("Rules")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, ["AtLeastOneRule", "QueueBatchNeedsWindow"]);
    let params = |queue, window, batch| {
        BTreeMap::from([
            ("UseQueue", queue),
            ("QueueBatchingWindowSeconds", window),
            ("QueueBatchSize", batch),
            ("RuleDeniedModels", "true"),
            ("RuleValidationErrors", "true"),
            ("RuleRoleSessions", "true"),
            ("RuleManyModels", "true"),
        ])
    };
    // The defaults, then good and bad combinations.
    let num = |name: &str| default_number(&t, name).to_string();
    let (window, batch) = (num("QueueBatchingWindowSeconds"), num("QueueBatchSize"));
    assert!(broken_rules(&params("true", &window, &batch)).is_empty());
    for ok in [
        params("true", "0", "10"),
        params("true", "0", "1"),
        params("true", "1", "11"),
        params("true", "300", "10000"),
        params("false", "0", "11"),
    ] {
        assert!(broken_rules(&ok).is_empty(), "{ok:?}");
    }
    for bad in [params("true", "0", "11"), params("true", "0", "10000")] {
        let broken = broken_rules(&bad);
        assert_eq!(broken.len(), 1, "{bad:?}");
        assert!(
            broken[0]
                .contains("QueueBatchSize above 10 needs QueueBatchingWindowSeconds of at least 1"),
            "{broken:?}"
        );
    }
}

#[test]
fn the_rules_refuse_a_stack_with_no_detection_rule_and_the_function_gets_those_on() {
    let t = template();
    let rules = |on: [&'static str; 4]| {
        BTreeMap::from([
            ("UseQueue", "false"),
            ("QueueBatchingWindowSeconds", "0"),
            ("QueueBatchSize", "10"),
            ("RuleDeniedModels", on[0]),
            ("RuleValidationErrors", on[1]),
            ("RuleRoleSessions", on[2]),
            ("RuleManyModels", on[3]),
        ])
    };
    let broken = broken_rules(&rules(["false"; 4]));
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].starts_with("AtLeastOneRule"), "{broken:?}");
    assert!(broken_rules(&rules(["false", "false", "false", "true"])).is_empty());
    // RULES names exactly the rules switched on, in a form the function reads.
    let env =
        &t["Resources"]["DetectorFunction"]["Properties"]["Environment"]["Variables"]["RULES"];
    for (on, want) in [
        (
            ["true", "true", "true", "true"],
            bedrock_denied_models::rule::RuleSet::default(),
        ),
        (
            ["false", "true", "false", "true"],
            bedrock_denied_models::rule::RuleSet::only(&[
                bedrock_denied_models::rule::RuleTag::Validation,
                bedrock_denied_models::rule::RuleTag::ManyModels,
            ]),
        ),
    ] {
        let conditions = BTreeMap::from([
            ("DeniedModelsRuleOn", on[0]),
            ("ValidationRuleOn", on[1]),
            ("RoleSessionsRuleOn", on[2]),
            ("ManyModelsRuleOn", on[3]),
        ]);
        let value = resolve(env, &conditions);
        let value = value.as_str().expect("a string");
        assert_eq!(
            bedrock_denied_models::rule::RuleSet::parse(value),
            Ok(want),
            "{value}"
        );
    }
}

#[test]
fn queue_settings_that_need_arithmetic_are_checked_before_the_queue_invokes() {
    // tests/deploy/test_queue_settings_check.py runs the check's code.
    let t = template();
    let r = &t["Resources"];
    for name in [
        "QueueSettingsCheck",
        "QueueSettingsCheckFunction",
        "QueueSettingsCheckLogGroup",
        "QueueSettingsCheckRole",
    ] {
        assert_eq!(r[name]["Condition"].as_str(), Some("UseQueue"), "{name}");
    }
    assert_eq!(
        r["QueueEventSourceMapping"]["DependsOn"].as_str(),
        Some("QueueSettingsCheck"),
        "the queue invokes the function only once its settings are known to work"
    );
    let props = r["QueueSettingsCheck"]["Properties"]
        .as_mapping()
        .expect("properties");
    for name in [
        "FunctionTimeout",
        "ReservedConcurrency",
        "QueueMaximumConcurrency",
        "QueueVisibilityTimeoutSeconds",
        "QueueBatchingWindowSeconds",
        "QueueBatchSize",
    ] {
        assert!(
            matches!(&props[name], Value::Tagged(t) if t.tag == "!Ref" && t.value.as_str() == Some(name)),
            "{name}"
        );
    }
    // The check may only write its own log.
    let mut own = Vec::new();
    walk(
        &r["QueueSettingsCheckRole"],
        "QueueSettingsCheckRole",
        &mut own,
    );
    let actions: Vec<String> = own
        .iter()
        .flat_map(|(_, s)| strings(&s["Action"]))
        .collect();
    assert_eq!(
        actions,
        [
            "sts:AssumeRole",
            "logs:CreateLogStream",
            "logs:PutLogEvents"
        ]
    );
}

#[test]
fn the_member_template_is_plain_cloudformation() {
    // Service-managed StackSets refuse templates with transforms (macros).
    let m = member();
    assert!(
        m.get("Transform").is_none(),
        "no Transform in the member template"
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/member-account.yaml"
    ))
    .expect("read");
    assert!(!text.contains("AWS::Serverless") && !text.contains("AWS::Include"));
}

fn strings_of(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().flat_map(strings_of).collect(),
        _ => Vec::new(),
    }
}

/// `pattern` with IAM's wildcards (`*` any run of characters, `?` one) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // matched[j]: pattern[..i] matches text[..j]
    let mut matched = vec![false; t.len() + 1];
    matched[0] = true;
    for &c in &p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                _ => j > 0 && matched[j - 1] && t[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[t.len()]
}

/// One request to S3, as a bucket policy sees it: the principal (an IAM principal of
/// an account, or an AWS service principal), the action, the resource and the
/// request context keys.
struct Request<'a> {
    principal: Principal<'a>,
    action: &'a str,
    resource: &'a str,
    context: BTreeMap<&'a str, &'a str>,
}

enum Principal<'a> {
    /// An IAM role of an account: (account, role name), in the organization or not.
    Role(&'a str, &'a str, Option<&'a str>),
    /// An AWS service principal such as `bedrock.amazonaws.com`.
    Service(&'a str),
}

#[derive(Debug, PartialEq)]
enum Decision {
    /// An explicit Deny matches.
    Denied,
    /// An Allow matches and no Deny does.
    Allowed,
    /// Neither: allowed only if the principal's own account grants it (same account).
    NotGranted,
}

impl<'a> Request<'a> {
    fn role(account: &'a str, role: &'a str, org: Option<&'a str>) -> Self {
        Self {
            principal: Principal::Role(account, role, org),
            action: "",
            resource: "",
            context: BTreeMap::from([("aws:SecureTransport", "true")]),
        }
    }

    fn service(service: &'a str) -> Self {
        Self {
            principal: Principal::Service(service),
            action: "",
            resource: "",
            context: BTreeMap::from([("aws:SecureTransport", "true")]),
        }
    }

    fn to(mut self, action: &'a str, resource: &'a str) -> Self {
        self.action = action;
        self.resource = resource;
        self
    }

    fn with(mut self, key: &'a str, value: &'a str) -> Self {
        self.context.insert(key, value);
        self
    }

    /// The request context as IAM builds it: principal keys, then the request's own.
    fn keys(&self) -> BTreeMap<String, String> {
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        match self.principal {
            Principal::Role(account, role, org) => {
                keys.insert("aws:PrincipalAccount".into(), account.into());
                keys.insert(
                    "aws:PrincipalArn".into(),
                    format!("arn:aws:iam::{account}:role/{role}"),
                );
                keys.insert("aws:PrincipalIsAWSService".into(), "false".into());
                if let Some(org) = org {
                    keys.insert("aws:PrincipalOrgID".into(), org.into());
                }
            }
            Principal::Service(_) => {
                keys.insert("aws:PrincipalIsAWSService".into(), "true".into());
            }
        }
        for (k, v) in &self.context {
            keys.insert((*k).into(), (*v).into());
        }
        keys
    }

    fn principal_matches(&self, principal: &serde_json::Value) -> bool {
        if principal == "*" {
            return true;
        }
        match self.principal {
            Principal::Service(service) => {
                strings_of(&principal["Service"]).contains(&service.into())
            }
            Principal::Role(account, role, _) => strings_of(&principal["AWS"]).iter().any(|p| {
                p == account
                    || *p == format!("arn:aws:iam::{account}:root")
                    || *p == format!("arn:aws:iam::{account}:role/{role}")
            }),
        }
    }

    /// The conditions of one statement hold. An operator the evaluator does not
    /// know fails the test rather than being skipped.
    fn conditions_hold(&self, conditions: &serde_json::Value) -> bool {
        let keys = self.keys();
        let Some(conditions) = conditions.as_object() else {
            return true;
        };
        conditions.iter().all(|(operator, tests)| {
            tests
                .as_object()
                .expect("condition block")
                .iter()
                .all(|(key, wanted)| {
                    let wanted = strings_of(wanted);
                    let have = keys.get(key.as_str());
                    match operator.as_str() {
                        "StringEquals" | "Bool" => have.is_some_and(|h| wanted.contains(h)),
                        "StringNotEquals" => have.is_none_or(|h| !wanted.contains(h)),
                        "BoolIfExists" => have.is_none_or(|h| wanted.contains(h)),
                        "ArnLike" | "StringLike" => {
                            have.is_some_and(|h| wanted.iter().any(|w| glob(w, h)))
                        }
                        other => panic!("condition operator {other} not evaluated"),
                    }
                })
        })
    }

    /// The resource pattern, its policy variables put in, matches the request's.
    fn resource_matches(&self, resources: &serde_json::Value) -> bool {
        let keys = self.keys();
        strings_of(resources).iter().any(|pattern| {
            let mut pattern = pattern.clone();
            while let Some(start) = pattern.find("${") {
                let end = start + pattern[start..].find('}').expect("closed variable");
                let Some(value) = keys.get(&pattern[start + 2..end]) else {
                    return false; // a variable with no value matches nothing
                };
                pattern.replace_range(start..=end, value);
            }
            glob(&pattern, self.resource)
        })
    }

    fn against(&self, policy: &serde_json::Value) -> Decision {
        let matching = |effect: &str| {
            policy["Statement"]
                .as_array()
                .expect("statements")
                .iter()
                .filter(|st| st["Effect"] == effect)
                .any(|st| {
                    self.principal_matches(&st["Principal"])
                        && strings_of(&st["Action"])
                            .iter()
                            .any(|a| glob(a, self.action))
                        && self.resource_matches(&st["Resource"])
                        && self.conditions_hold(&st["Condition"])
                })
        };
        if matching("Deny") {
            Decision::Denied
        } else if matching("Allow") {
            Decision::Allowed
        } else {
            Decision::NotGranted
        }
    }
}

const CENTRAL_ACCOUNT: &str = "111122223333";
const MEMBER_ACCOUNT: &str = "444455556666";
const OTHER_MEMBER: &str = "777788889999";
const ORG: &str = "o-abcdefghij";

/// Parameters of a central stack in an organization and of a member stack.
fn organization_params() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("AWS::Partition", "aws"),
        ("AWS::AccountId", CENTRAL_ACCOUNT),
        ("AWS::Region", "us-east-1"),
        ("LogBucket", "central-logs"),
        ("OrganizationId", ORG),
        ("HasOrganization", "true"),
    ])
}

fn member_params() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("AWS::Partition", "aws"),
        ("AWS::AccountId", MEMBER_ACCOUNT),
        ("AWS::Region", "eu-west-1"),
        ("CentralBucketName", "central-logs"),
        ("CentralAccountId", CENTRAL_ACCOUNT),
    ])
}

fn central_policy(params: &BTreeMap<&str, &str>) -> serde_json::Value {
    resolve(
        &template()["Resources"]["LogBucketPolicy"]["Properties"]["PolicyDocument"],
        params,
    )
}

/// The actions no principal of another account may take on the central bucket.
const ADMINISTRATIVE_AND_DESTRUCTIVE: [&str; 18] = [
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutBucketNotification",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketAcl",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateDelete",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:ObjectOwnerOverrideToBucketOwner",
];

#[test]
fn the_central_bucket_policy_statement_by_statement() {
    let policy = central_policy(&organization_params());
    let statements = policy["Statement"].as_array().expect("statements");
    let sids: Vec<&str> = statements
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        [
            "BedrockInvocationLogging",
            "MemberReplicationRoleWritesOwnFolder",
            "MemberReplicationRoleReadsVersioning",
            "OnlyThisAccountAdministersOrDeletes",
            "DenyInsecureTransport"
        ]
    );
    let by_sid = |sid: &str| statements.iter().find(|s| s["Sid"] == sid).expect(sid);
    let member_role = serde_json::json!({
        "StringEquals": {"aws:PrincipalOrgID": ORG},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/bedrock-denied-models-replication-*"}
    });
    assert_eq!(
        by_sid("BedrockInvocationLogging"),
        &serde_json::json!({
            "Sid": "BedrockInvocationLogging", "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("arn:aws:s3:::central-logs/AWSLogs/{CENTRAL_ACCOUNT}/BedrockModelInvocationLogs/*"),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": CENTRAL_ACCOUNT},
                "ArnLike": {"aws:SourceArn": format!("arn:aws:bedrock:us-east-1:{CENTRAL_ACCOUNT}:*")}
            }
        })
    );
    // Replicas: one action, into the writer's own account folder, from the member
    // template's role in the organization.
    assert_eq!(
        by_sid("MemberReplicationRoleWritesOwnFolder"),
        &serde_json::json!({
            "Sid": "MemberReplicationRoleWritesOwnFolder", "Effect": "Allow", "Principal": "*",
            "Action": "s3:ReplicateObject",
            "Resource": "arn:aws:s3:::central-logs/AWSLogs/${aws:PrincipalAccount}/*",
            "Condition": member_role
        })
    );
    assert_eq!(
        by_sid("MemberReplicationRoleReadsVersioning"),
        &serde_json::json!({
            "Sid": "MemberReplicationRoleReadsVersioning", "Effect": "Allow", "Principal": "*",
            "Action": "s3:GetBucketVersioning",
            "Resource": "arn:aws:s3:::central-logs",
            "Condition": member_role
        })
    );
    assert_eq!(
        by_sid("OnlyThisAccountAdministersOrDeletes"),
        &serde_json::json!({
            "Sid": "OnlyThisAccountAdministersOrDeletes", "Effect": "Deny", "Principal": "*",
            "Action": ADMINISTRATIVE_AND_DESTRUCTIVE,
            "Resource": ["arn:aws:s3:::central-logs", "arn:aws:s3:::central-logs/*"],
            "Condition": {
                "StringNotEquals": {"aws:PrincipalAccount": CENTRAL_ACCOUNT},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}
            }
        })
    );
    assert_eq!(
        by_sid("DenyInsecureTransport")["Condition"],
        serde_json::json!({"Bool": {"aws:SecureTransport": "false"}})
    );
    // No statement grants anything to every principal without conditions, and
    // only Bedrock's statement names a principal.
    for st in statements {
        assert!(st["Principal"] == "*" || st["Sid"] == "BedrockInvocationLogging");
        assert!(st["Condition"].is_object(), "{st}");
    }
    // One account: no organization statements, the deny stays.
    let mut single = organization_params();
    single.insert("HasOrganization", "false");
    let policy = central_policy(&single);
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        [
            "BedrockInvocationLogging",
            "OnlyThisAccountAdministersOrDeletes",
            "DenyInsecureTransport"
        ]
    );
}

#[test]
fn requests_against_the_central_bucket_policy() {
    let policy = central_policy(&organization_params());
    let replication_role = "bedrock-denied-models-replication-eu-west-1";
    let own = format!(
        "arn:aws:s3:::central-logs/AWSLogs/{MEMBER_ACCOUNT}/BedrockModelInvocationLogs/eu-west-1/2026/03/14/09/a.json.gz"
    );
    let others = format!(
        "arn:aws:s3:::central-logs/AWSLogs/{OTHER_MEMBER}/BedrockModelInvocationLogs/eu-west-1/2026/03/14/09/a.json.gz"
    );
    let top = "arn:aws:s3:::central-logs/a.json.gz";
    let bucket = "arn:aws:s3:::central-logs";
    let member = || Request::role(MEMBER_ACCOUNT, replication_role, Some(ORG));
    use Decision::*;
    // The member's replication role replicates into its own folder, and only there.
    assert_eq!(
        member().to("s3:ReplicateObject", &own).against(&policy),
        Allowed
    );
    assert_eq!(
        member().to("s3:ReplicateObject", &others).against(&policy),
        NotGranted
    );
    assert_eq!(
        member().to("s3:ReplicateObject", top).against(&policy),
        NotGranted
    );
    assert_eq!(
        member()
            .to("s3:GetBucketVersioning", bucket)
            .against(&policy),
        Allowed
    );
    // Nothing else, whatever it tries.
    for action in [
        "s3:PutObject",
        "s3:ReplicateTags",
        "s3:GetObject",
        "s3:ListBucket",
    ] {
        for resource in [own.as_str(), bucket] {
            assert_eq!(
                member().to(action, resource).against(&policy),
                NotGranted,
                "{action}"
            );
        }
    }
    for action in ADMINISTRATIVE_AND_DESTRUCTIVE {
        for resource in [own.as_str(), others.as_str(), bucket] {
            assert_eq!(
                member().to(action, resource).against(&policy),
                Denied,
                "{action}"
            );
            // Any other principal of another account, in the organization or not.
            let admin = Request::role(OTHER_MEMBER, "OrganizationAccountAccessRole", Some(ORG));
            assert_eq!(
                admin.to(action, resource).against(&policy),
                Denied,
                "{action}"
            );
        }
    }
    // Another role of a member account, or the role name outside the organization.
    let other_role = Request::role(MEMBER_ACCOUNT, "Admin", Some(ORG));
    assert_eq!(
        other_role.to("s3:ReplicateObject", &own).against(&policy),
        NotGranted
    );
    let outsider = Request::role("999999999999", replication_role, Some("o-zzzzzzzzzz"));
    let outsiders_own = "arn:aws:s3:::central-logs/AWSLogs/999999999999/x.json";
    assert_eq!(
        outsider
            .to("s3:ReplicateObject", outsiders_own)
            .against(&policy),
        NotGranted
    );
    let no_org = Request::role("999999999999", replication_role, None);
    assert_eq!(
        no_org
            .to("s3:ReplicateObject", outsiders_own)
            .against(&policy),
        NotGranted
    );
    // The central account (CloudFormation, its administrators) is never denied;
    // its own IAM policies decide.
    for action in ADMINISTRATIVE_AND_DESTRUCTIVE {
        let central = Request::role(CENTRAL_ACCOUNT, "cloudformation-deployer", Some(ORG));
        assert_eq!(
            central.to(action, bucket).against(&policy),
            NotGranted,
            "{action}"
        );
    }
    // Bedrock's logging writes in the central account's folder, and is not caught by
    // the deny (a service principal belongs to no account).
    let bedrock = || {
        Request::service("bedrock.amazonaws.com")
            .with("aws:SourceAccount", CENTRAL_ACCOUNT)
            .with(
                "aws:SourceArn",
                "arn:aws:bedrock:us-east-1:111122223333:model-invocation-logging",
            )
    };
    let log = "arn:aws:s3:::central-logs/AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/x.json.gz";
    assert_eq!(bedrock().to("s3:PutObject", log).against(&policy), Allowed);
    assert_eq!(
        bedrock().to("s3:DeleteObject", log).against(&policy),
        NotGranted
    );
    let confused = Request::service("bedrock.amazonaws.com")
        .with("aws:SourceAccount", OTHER_MEMBER)
        .with(
            "aws:SourceArn",
            "arn:aws:bedrock:us-east-1:777788889999:model-invocation-logging",
        );
    assert_eq!(
        confused.to("s3:PutObject", log).against(&policy),
        NotGranted
    );
    // Plain HTTP is refused to everyone.
    let insecure = member().with("aws:SecureTransport", "false");
    assert_eq!(
        insecure.to("s3:ReplicateObject", &own).against(&policy),
        Denied
    );
}

#[test]
fn member_replication_and_the_central_bucket_policy_agree() {
    let params = member_params();
    let m = member();
    let rule = &m["Resources"]["LogBucket"]["Properties"]["ReplicationConfiguration"]["Rules"][0];
    let dest = resolve(&rule["Destination"], &params);
    assert_eq!(dest["Bucket"], "arn:aws:s3:::central-logs");
    assert_eq!(dest["Account"], CENTRAL_ACCOUNT);
    assert_eq!(
        m["Resources"]["LogBucket"]["Properties"]["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled")
    );
    // Only this account's folder is replicated, delete markers are not, and the
    // replicas are the central account's through its bucket's Object Ownership,
    // not through an owner override.
    assert_eq!(
        resolve(&rule["Filter"]["Prefix"], &params),
        serde_json::json!(format!("AWSLogs/{MEMBER_ACCOUNT}/"))
    );
    assert_eq!(
        rule["DeleteMarkerReplication"]["Status"].as_str(),
        Some("Disabled")
    );
    assert!(dest.get("AccessControlTranslation").is_none(), "{dest}");
    let t = template();
    let bucket = &t["Resources"]["LogBucket"]["Properties"];
    assert_eq!(
        bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"].as_str(),
        Some("BucketOwnerEnforced")
    );
    // The role has the fixed name the central policy matches, one per Region.
    let role = &m["Resources"]["ReplicationRole"]["Properties"];
    let role_name = resolve(&role["RoleName"], &params);
    assert_eq!(role_name, "bedrock-denied-models-replication-eu-west-1");
    // What the role may do to the central bucket is exactly what replication needs...
    let statements: Vec<serde_json::Value> = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements")
        .iter()
        .map(|st| resolve(st, &params))
        .collect();
    let on_central: Vec<(String, String)> = statements
        .iter()
        .flat_map(|st| {
            let resources = strings_of(&st["Resource"]);
            strings_of(&st["Action"]).into_iter().flat_map(move |a| {
                resources
                    .clone()
                    .into_iter()
                    .filter(|r| r.starts_with("arn:aws:s3:::central-logs"))
                    .map(move |r| (a.clone(), r))
            })
        })
        .collect();
    assert_eq!(
        on_central,
        [
            (
                "s3:ReplicateObject".to_string(),
                format!("arn:aws:s3:::central-logs/AWSLogs/{MEMBER_ACCOUNT}/*")
            ),
            (
                "s3:GetBucketVersioning".to_string(),
                "arn:aws:s3:::central-logs".to_string()
            )
        ]
    );
    // ... and, on its source bucket, what AWS's minimum replication role reads, without
    // tags.
    let on_source: BTreeSet<String> = statements
        .iter()
        .filter(|st| {
            strings_of(&st["Resource"])
                .iter()
                .all(|r| r.contains("bedrock-logs-444455556666-eu-west-1"))
        })
        .flat_map(|st| strings_of(&st["Action"]))
        .collect();
    assert_eq!(
        on_source,
        BTreeSet::from(
            [
                "s3:GetReplicationConfiguration",
                "s3:ListBucket",
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl"
            ]
            .map(String::from)
        )
    );
    // The central bucket's policy lets this role do exactly that, for an object the
    // rule replicates.
    let policy = central_policy(&organization_params());
    let object = format!(
        "arn:aws:s3:::central-logs/AWSLogs/{MEMBER_ACCOUNT}/BedrockModelInvocationLogs/eu-west-1/2026/03/14/09/x.json.gz"
    );
    for (action, resource) in [
        ("s3:ReplicateObject", object.as_str()),
        ("s3:GetBucketVersioning", "arn:aws:s3:::central-logs"),
    ] {
        let request = Request::role(
            MEMBER_ACCOUNT,
            role_name.as_str().unwrap_or_default(),
            Some(ORG),
        );
        assert_eq!(
            request.to(action, resource).against(&policy),
            Decision::Allowed,
            "{action}"
        );
    }
    // The central bucket is versioned when it takes replicas.
    assert!(
        matches!(&bucket["VersioningConfiguration"], Value::Tagged(t) if t.tag == "!If"
        && t.value[0].as_str() == Some("HasOrganization"))
    );
}

#[test]
fn the_policy_evaluator_matches_like_iam() {
    assert!(glob(
        "arn:aws:s3:::b/AWSLogs/1/*",
        "arn:aws:s3:::b/AWSLogs/1/x/y.json"
    ));
    assert!(!glob(
        "arn:aws:s3:::b/AWSLogs/1/*",
        "arn:aws:s3:::b/AWSLogs/12/x"
    ));
    assert!(glob("a?c*", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(glob("*", ""));
    assert!(!glob("s3:Put*", "s3:GetObject"));
}
