//! The README's one-line deploys: one `samconfig.toml` environment per way of
//! deploying, each deploying without a question, and each README line naming every
//! parameter its mode needs, with values the template accepts (README, "Deploy").
//!
//! SAM CLI reads an environment's values as the defaults of its options, so a
//! `--parameter-overrides` on the command line replaces the environment's own
//! instead of adding to them: the environments must hold none, and the line all.

use crate::template::template;
use std::collections::BTreeMap;

/// A parameter a mode needs, with the value it must have (or any non-empty one).
type Needed = (&'static str, Option<&'static str>);

/// The modes, and the parameters each needs on its line.
const MODES: [(&str, &[Needed]); 4] = [
    ("new-bucket", &[("AlertEmail", None)]),
    (
        "existing-bucket",
        &[
            ("AlertEmail", None),
            ("ExistingLogBucketName", None),
            ("ExistingBucketDelivery", Some("EventBridge")),
        ],
    ),
    (
        "busy-bucket",
        &[("AlertEmail", None), ("UseQueue", Some("true"))],
    ),
    (
        "organization",
        &[
            ("AlertEmail", None),
            ("OrganizationId", None),
            ("UseQueue", Some("true")),
        ],
    ),
];

/// `samconfig.toml` as (section, key) -> raw value: its tables and `key = value` lines.
fn samconfig() -> BTreeMap<(String, String), String> {
    let path = format!("{}/samconfig.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("samconfig.toml");
    let mut section = String::new();
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        out.insert(
            (section.clone(), key.trim().to_string()),
            value.trim().to_string(),
        );
    }
    out
}

/// The README's deploy line of `mode`: its `--parameter-overrides` as name -> value.
fn readme_line(mode: &str) -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README");
    let marker = format!("sam deploy --config-env {mode} ");
    let line = readme
        .lines()
        .find(|l| l.starts_with("sam build && ") && l.contains(&marker))
        .unwrap_or_else(|| panic!("README has no deploy line for {mode}"));
    let overrides = line
        .split_once("--parameter-overrides ")
        .map(|(_, o)| o)
        .unwrap_or_else(|| panic!("{mode}: no --parameter-overrides: {line}"));
    overrides
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("{mode}: {pair} is not Name=value"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn each_mode_deploys_in_one_line_with_every_parameter_it_needs() {
    let config = samconfig();
    let t = template();
    let params = t["Parameters"].as_mapping().expect("Parameters");
    for (mode, needs) in MODES {
        // The environment deploys without a question, and holds no parameters the
        // command line would silently replace.
        let deploy = format!("{mode}.deploy.parameters");
        let get = |section: &str, key: &str| config.get(&(section.to_string(), key.to_string()));
        assert_eq!(
            get(&deploy, "confirm_changeset").map(String::as_str),
            Some("false"),
            "{mode}"
        );
        assert_eq!(
            get(&deploy, "capabilities").map(String::as_str),
            Some("\"CAPABILITY_IAM\""),
            "{mode}"
        );
        assert_eq!(
            get(&deploy, "resolve_s3").map(String::as_str),
            Some("true"),
            "{mode}"
        );
        assert!(
            get(&format!("{mode}.global.parameters"), "stack_name").is_some(),
            "{mode}: a stack name"
        );
        assert!(
            !config
                .keys()
                .any(|(s, k)| s.starts_with(&format!("{mode}.")) && k == "parameter_overrides"),
            "{mode}: the command line's overrides would replace these"
        );
        let line = readme_line(mode);
        for (name, value) in needs {
            let given = line
                .get(*name)
                .unwrap_or_else(|| panic!("{mode}: the README's line lacks {name}"));
            assert!(!given.is_empty(), "{mode}: {name} is empty");
            if let Some(v) = value {
                assert_eq!(given, v, "{mode}: {name}");
            }
        }
        // Every parameter named is the template's, with a value it allows.
        for (name, value) in &line {
            let p = params
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{mode}: {name} is no parameter of the template"));
            if let Some(allowed) = p["AllowedValues"].as_sequence() {
                assert!(
                    allowed.iter().any(|a| a.as_str() == Some(value.as_str())),
                    "{mode}: {name}={value} is not one of {allowed:?}"
                );
            }
        }
        if let Some(org) = line.get("OrganizationId") {
            assert!(
                bedrock_denied_models::log_keys::is_organization_id(org),
                "{org}"
            );
        }
        // Only the organization's mode sets an organization.
        assert_eq!(line.contains_key("OrganizationId"), mode == "organization");
    }
    // Every environment of the file is a mode the README deploys, or the default.
    let envs: std::collections::BTreeSet<&str> = config
        .keys()
        .filter_map(|(s, _)| s.split('.').next())
        .filter(|s| !s.is_empty())
        .collect();
    let mut expected: std::collections::BTreeSet<&str> = MODES.iter().map(|(m, _)| *m).collect();
    expected.insert("default");
    assert_eq!(envs, expected);
}
