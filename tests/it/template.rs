//! The templates and the code agree: table key schema, environment, defaults, metric
//! names, the central bucket and the member template's replication; every permission
//! stays least-privilege.

use bedrock_denied_models::config::Config;
use bedrock_denied_models::lambda::LambdaSettings;
use bedrock_denied_models::metrics::{metric_names, DIMENSION, NAMESPACE};
use bedrock_denied_models::store::dynamodb::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
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
/// parameters) resolved, and `!If` by the given conditions ("true" or "false"), as
/// JSON; `AWS::NoValue` leaves a list, other intrinsic functions become null.
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
                "!Sub" => {
                    let mut out = name.to_string();
                    for (k, v) in params {
                        out = out.replace(&format!("${{{k}}}"), v);
                    }
                    J::String(out)
                }
                _ => J::Null,
            }
        }
    }
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
                "SECURITY_HUB" => "true",
                "ACCOUNT_ID" => "111122223333",
                "EXCEPTIONS" => "[]",
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
    // The function's own grants are exactly these.
    let t = template();
    let f = function(&t);
    let mut own = Vec::new();
    walk(f, "DetectorFunction", &mut own);
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
    assert_eq!(filter["Properties"]["FilterPattern"].as_str(), Some(""));
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

#[test]
fn member_replication_and_the_central_bucket_policy_agree() {
    let params = BTreeMap::from([
        ("AWS::Partition", "aws"),
        ("AWS::AccountId", "444455556666"),
        ("AWS::Region", "eu-west-1"),
        ("CentralBucketName", "central-logs"),
        ("CentralAccountId", "111122223333"),
        ("LogBucket", "central-logs"),
        ("OrganizationId", "o-abcdefghij"),
        ("HasOrganization", "true"),
    ]);
    let m = member();
    let rule = &m["Resources"]["LogBucket"]["Properties"]["ReplicationConfiguration"]["Rules"][0];
    let dest = resolve(&rule["Destination"], &params);
    assert_eq!(dest["Bucket"], "arn:aws:s3:::central-logs");
    assert_eq!(dest["Account"], "111122223333");
    assert_eq!(dest["AccessControlTranslation"]["Owner"], "Destination");
    assert_eq!(
        m["Resources"]["LogBucket"]["Properties"]["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled")
    );
    // What the member's replication role does to the central bucket's objects ...
    let role = &m["Resources"]["ReplicationRole"]["Properties"]["Policies"][0]["PolicyDocument"];
    let writes = role["Statement"]
        .as_sequence()
        .expect("statements")
        .iter()
        .find(|st| st["Sid"].as_str() == Some("WriteReplicas"))
        .expect("WriteReplicas");
    let needed: BTreeSet<String> = strings(&writes["Action"]).into_iter().collect();
    assert_eq!(
        resolve(&writes["Resource"], &params),
        serde_json::json!("arn:aws:s3:::central-logs/*")
    );
    // ... the central bucket's policy lets the organization do, on the same objects.
    let t = template();
    let policy = resolve(
        &t["Resources"]["LogBucketPolicy"]["Properties"]["PolicyDocument"],
        &params,
    );
    let org_statements: Vec<&serde_json::Value> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|st| st["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == "o-abcdefghij")
        .collect();
    let granted: BTreeSet<String> = org_statements
        .iter()
        .filter(|st| st["Resource"] == "arn:aws:s3:::central-logs/*" && st["Effect"] == "Allow")
        .flat_map(|st| strings_of(&st["Action"]))
        .collect();
    assert!(
        needed.is_subset(&granted),
        "{needed:?} not within {granted:?}"
    );
    assert!(org_statements
        .iter()
        .any(|st| st["Resource"] == "arn:aws:s3:::central-logs"
            && strings_of(&st["Action"]).contains(&"s3:GetBucketVersioning".to_string())));
    // The central bucket is versioned when it takes replicas, and notifies for the
    // suffixes Bedrock writes.
    let bucket = &t["Resources"]["LogBucket"]["Properties"];
    assert!(
        matches!(&bucket["VersioningConfiguration"], Value::Tagged(t) if t.tag == "!If"
        && t.value[0].as_str() == Some("HasOrganization"))
    );
    assert_eq!(rule["Filter"]["Prefix"].as_str(), Some("AWSLogs/"));
}
