//! The alert as an AWS Security Finding Format (ASFF) finding, for Security Hub's
//! BatchImportFindings (docs/DESIGN.md, "Alert sinks").
//!
//! Security Hub takes a finding from the default product of an account only when the
//! finding's `AwsAccountId` is that account, so the finding belongs to the detector's
//! account; the denied principal's account is in `Resources` and `ProductFields`.

use super::{Alert, NEXT_STEPS};
use crate::arn::partition;
use crate::text::prefix_chars;
use serde_json::{json, Map, Value};

pub const SCHEMA_VERSION: &str = "2018-10-08";
/// ASFF types for probing for models outside policy (AML.T0015) and running up costs
/// (AML.T0034) by one principal.
/// The seed rule's; each rule has its own (`Rule::finding_types`).
pub const TYPES: &[&str] = crate::rule::SEED.finding_types;

const MAX_ID: usize = 512;
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 1024;
const MAX_FIELD_VALUE: usize = 2048;
const MAX_RECOMMENDATION: usize = 512;
const _: () = assert!(NEXT_STEPS.len() <= MAX_RECOMMENDATION);

fn cut(s: &str, max_chars: usize) -> String {
    prefix_chars(s, max_chars).to_string()
}

/// The product ARN of an account's own findings in a region.
pub fn product_arn(region: &str, account: &str) -> String {
    format!(
        "arn:{}:securityhub:{region}:{account}:product/{account}/default",
        partition(region)
    )
}

/// The ASFF resource for a principal: its IAM role or user, else `Other`.
pub fn principal_resource(principal: &str, region: &str) -> Value {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    let (ty, id) = match parts.as_slice() {
        [_, part, "sts", _, account, resource] if resource.starts_with("assumed-role/") => {
            let role = resource
                .trim_start_matches("assumed-role/")
                .split('/')
                .next()
                .unwrap_or_default();
            (
                "AwsIamRole",
                format!("arn:{part}:iam::{account}:role/{role}"),
            )
        }
        [_, _, "iam", _, _, resource] if resource.starts_with("role/") => {
            ("AwsIamRole", principal.to_string())
        }
        [_, _, "iam", _, _, resource] if resource.starts_with("user/") => {
            ("AwsIamUser", principal.to_string())
        }
        _ => ("Other", principal.to_string()),
    };
    resource(ty, &id, region)
}

/// The finding's resources: the principal, unless its ARN names another account than
/// the alert's (a cross-account caller in CloudTrail: an automated response acting on
/// finding resources must never act in an account the log did not come from), and
/// the model.
fn resources(alert: &Alert, region: &str) -> Vec<Value> {
    let foreign =
        crate::arn::principal_account(&alert.user_id).is_some_and(|a| a != alert.account_id);
    let mut out = Vec::with_capacity(2);
    if !foreign {
        out.push(principal_resource(&alert.user_id, region));
    }
    out.push(resource("Other", &alert.model_id, region));
    out
}

/// An ASFF resource of type `ty`.
fn resource(ty: &str, id: &str, region: &str) -> Value {
    json!({
        "Type": ty,
        "Id": cut(id, MAX_FIELD_VALUE),
        "Partition": partition(region),
        "Region": region,
    })
}

/// The finding for `alert`, imported from `account` in `region` at `now` (RFC 3339).
/// Its id depends only on the key and the window, so a retried or repeated import
/// updates the same finding.
pub fn finding(alert: &Alert, account: &str, region: &str, now: &str) -> Value {
    let key = alert.key();
    let rule = alert.rule.rule();
    let id = cut(
        &format!(
            "bedrock-denied-models/{}/{}",
            key.digest(),
            alert.window.end
        ),
        MAX_ID,
    );
    let title = cut(&format!("{} by {}", rule.what, alert.user_id), MAX_TITLE);
    let description = cut(
        &format!(
            "{} denied invocations of model {} by {} in account {} between {} and {} \
             (threshold {}). Rule: {} ({}).",
            alert.total_denials,
            alert.model_id,
            alert.user_id,
            alert.account_id,
            alert.window.start,
            alert.window.end,
            alert.threshold,
            rule.name,
            rule.id,
        ),
        MAX_DESCRIPTION,
    );
    let mut fields = Map::new();
    for (name, value) in [
        ("user.id", alert.user_id.clone()),
        ("gen_ai.request.model.id", alert.model_id.clone()),
        ("cloud.account.id", alert.account_id.clone()),
        ("total_denials", alert.total_denials.to_string()),
        ("threshold", alert.threshold.to_string()),
        ("rule.id", rule.id.to_string()),
    ] {
        fields.insert(name.into(), Value::String(cut(&value, MAX_FIELD_VALUE)));
    }
    if let Some(object) = alert.evidence.objects.first() {
        fields.insert(
            "evidence.object".into(),
            Value::String(cut(object, MAX_FIELD_VALUE)),
        );
    }
    let severity = json!({"Label": "HIGH", "Original": alert.rule.risk_score.to_string()});
    json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": id,
        "ProductArn": product_arn(region, account),
        "GeneratorId": rule.id,
        "AwsAccountId": account,
        "Types": rule.finding_types,
        "CreatedAt": alert.window.start,
        "UpdatedAt": now,
        "FirstObservedAt": alert.window.start,
        "LastObservedAt": alert.window.end,
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": rule.finding_types},
        "Title": title,
        "Description": description,
        "Resources": resources(alert, region),
        "ProductFields": fields,
        "Remediation": {"Recommendation": {"Text": NEXT_STEPS}},
        "RecordState": "ACTIVE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(user: &str) -> Alert {
        serde_json::from_value(json!({
            "rule": crate::alert::RuleInfo::default(),
            "user.id": user, "gen_ai.request.model.id": "anthropic.claude-3-opus-20240229-v1:0",
            "cloud.account.id": "444455556666", "total_denials": 5, "threshold": 3,
            "window": {"start": "2026-03-14T08:20:00Z", "end": "2026-03-14T09:20:00Z"},
            "buckets": [], "evidence": {"objects": ["s3://b/k"], "request_ids": []}
        }))
        .expect("alert")
    }

    #[test]
    fn the_finding_belongs_to_the_importing_account_and_names_the_principal() {
        let f = finding(
            &alert("arn:aws:sts::444455556666:assumed-role/ContractorAccess/mallory"),
            "111122223333",
            "eu-west-1",
            "2026-03-14T09:21:00Z",
        );
        assert_eq!(f["AwsAccountId"], "111122223333");
        assert_eq!(
            f["ProductArn"],
            "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
        );
        assert_eq!(f["GeneratorId"], crate::rule::RULE_ID);
        assert_eq!(f["Severity"]["Label"], "HIGH");
        assert_eq!(f["FirstObservedAt"], "2026-03-14T08:20:00Z");
        assert_eq!(f["LastObservedAt"], "2026-03-14T09:20:00Z");
        assert_eq!(f["Resources"][0]["Type"], "AwsIamRole");
        assert_eq!(
            f["Resources"][0]["Id"],
            "arn:aws:iam::444455556666:role/ContractorAccess"
        );
        assert_eq!(f["ProductFields"]["cloud.account.id"], "444455556666");
        assert_eq!(
            f["ProductFields"]["user.id"],
            "arn:aws:sts::444455556666:assumed-role/ContractorAccess/mallory"
        );
        assert_eq!(f["ProductFields"]["total_denials"], "5");
        assert!(f["Remediation"]["Recommendation"]["Text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Confirm who uses this principal")));
    }

    #[test]
    fn a_principal_of_another_account_is_never_a_resource() {
        let f = finding(
            &alert("arn:aws:sts::999988887777:assumed-role/OrgAdmin/x"),
            "111122223333",
            "us-east-1",
            "t",
        );
        let resources = f["Resources"].as_array().expect("resources");
        assert_eq!(resources.len(), 1, "{f}");
        assert_eq!(resources[0]["Type"], "Other");
        assert!(!f["Resources"].to_string().contains("999988887777"));
        // The principal is still named in the finding's fields, for the analyst.
        assert_eq!(
            f["ProductFields"]["user.id"],
            "arn:aws:sts::999988887777:assumed-role/OrgAdmin/x"
        );
    }

    #[test]
    fn the_id_depends_on_the_key_and_window_only() {
        let a = finding(&alert("arn:aws:iam::1:user/bob"), "1", "us-east-1", "t1");
        let b = finding(&alert("arn:aws:iam::1:user/bob"), "1", "us-east-1", "t2");
        let c = finding(&alert("arn:aws:iam::1:user/eve"), "1", "us-east-1", "t1");
        assert_eq!(a["Id"], b["Id"]);
        assert_ne!(a["Id"], c["Id"]);
        assert_ne!(a["UpdatedAt"], b["UpdatedAt"]);
    }

    #[test]
    fn principals_map_to_resource_types() {
        for (arn, ty) in [
            ("arn:aws:iam::1:user/bob", "AwsIamUser"),
            ("arn:aws:iam::1:role/path/Role", "AwsIamRole"),
            ("arn:aws-us-gov:sts::1:assumed-role/R/s", "AwsIamRole"),
            ("arn:aws:sts::1:federated-user/x", "Other"),
            ("not an arn", "Other"),
        ] {
            assert_eq!(principal_resource(arn, "us-east-1")["Type"], ty, "{arn}");
        }
    }

    #[test]
    fn every_text_field_stays_within_its_limit() {
        let long = format!("arn:aws:iam::1:user/{}", "x".repeat(100_000));
        let f = finding(&alert(&long), "1", "us-east-1", "t");
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        assert!(len(&f["Title"]) <= MAX_TITLE);
        assert!(len(&f["Description"]) <= MAX_DESCRIPTION);
        assert!(len(&f["Id"]) <= MAX_ID);
        assert!(len(&f["ProductFields"]["user.id"]) <= MAX_FIELD_VALUE);
        assert!(len(&f["Resources"][0]["Id"]) <= MAX_FIELD_VALUE);
        assert!(f.to_string().len() < 240 * 1024);
    }
}
