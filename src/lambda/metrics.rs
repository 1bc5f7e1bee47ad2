//! Per-invocation counters, written as one CloudWatch Embedded Metric Format line
//! (docs/DESIGN.md, "Observability"). The template's alarms and dashboard name these
//! metrics; a test checks that every name they use is one written here.

use crate::stats::Counts;
use serde_json::json;

pub const NAMESPACE: &str = "BedrockDeniedModels";
/// The one dimension of every metric: the function's name.
pub const DIMENSION: &str = "FunctionName";

/// The EMF document of what one invocation counted: every metric of
/// [`Counts::metrics`] in namespace [`NAMESPACE`], dimension [`DIMENSION`].
pub fn to_emf(counts: &Counts, function_name: &str, timestamp_ms: i64) -> String {
    let values = counts.metrics();
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": values.iter().map(|(n, _)| json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        DIMENSION: function_name,
    });
    for (name, v) in values {
        doc[name] = json!(v);
    }
    doc.to_string()
}

/// The names of every metric the function writes.
pub fn metric_names() -> Vec<&'static str> {
    Counts::default()
        .metrics()
        .iter()
        .map(|(n, _)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let m = Counts {
            objects: 2,
            denials: 5,
            alerts_published: 1,
            skipped_invalid_json: 2,
            skipped_oversized_line: 1,
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&to_emf(&m, "fn", 1000)).expect("json");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[DIMENSION]])
        );
        assert_eq!(v["Objects"], 2);
        assert_eq!(v["Denials"], 5);
        assert_eq!(v["AlertsPublished"], 1);
        assert_eq!(v["SkippedLines"], 3);
        assert_eq!(v["SkippedInvalidJson"], 2);
        assert_eq!(v["FunctionName"], "fn");
        let declared: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(declared, metric_names());
        for name in metric_names() {
            assert!(v[name].is_u64(), "{name} has a value");
        }
    }
}
