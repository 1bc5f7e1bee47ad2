//! template.yaml and the code agree: table key schema, environment, defaults, and the
//! function's permissions stay least-privilege.

use bedrock_denied_models::config::Config;
use bedrock_denied_models::lambda::LambdaSettings;
use bedrock_denied_models::store::dynamodb::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use serde_yaml_ng::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let text = std::fs::read_to_string(path).expect("read template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
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
    let p = &t["Parameters"];
    let num = |name: &str| {
        p[name]["Default"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} default"))
    };
    assert_eq!(num("Threshold"), d.threshold);
    assert_eq!(num("BucketMinutes"), u64::from(d.bucket_minutes));
    assert_eq!(num("WindowBuckets"), u64::from(d.window_buckets));
    assert_eq!(num("SuppressMinutes"), u64::from(d.suppress_minutes));
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
    let t = template();
    let all = statements(&t);
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
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "events:PutEvents",
        "securityhub:BatchImportFindings",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(granted, expected);
}
