//! Per-invocation counters, written as one CloudWatch Embedded Metric Format line.

use crate::detector::ObjectReport;
use serde_json::json;

pub const NAMESPACE: &str = "BedrockDeniedModels";

/// What one invocation did, summed over its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvocationMetrics {
    pub objects: u64,
    pub objects_skipped: u64,
    pub objects_missing: u64,
    pub objects_incomplete: u64,
    pub objects_failed: u64,
    pub records: u64,
    pub denials: u64,
    pub skipped_lines: u64,
    pub alerts_published: u64,
    pub alerts_suppressed: u64,
}

impl InvocationMetrics {
    pub fn add_report(&mut self, r: &ObjectReport) {
        self.objects += 1;
        self.objects_incomplete += u64::from(r.read_error.is_some());
        self.records += r.read.records;
        self.denials += r.read.denials;
        self.skipped_lines += r.read.skipped.total();
        self.alerts_published += r.record.alerts_published;
        self.alerts_suppressed += r.record.alerts_suppressed;
    }

    /// The EMF document: metrics in namespace [`NAMESPACE`], dimension `FunctionName`.
    pub fn to_emf(&self, function_name: &str, timestamp_ms: i64) -> String {
        let values = [
            ("Objects", self.objects),
            ("ObjectsSkipped", self.objects_skipped),
            ("ObjectsMissing", self.objects_missing),
            ("ObjectsIncomplete", self.objects_incomplete),
            ("ObjectsFailed", self.objects_failed),
            ("Records", self.records),
            ("Denials", self.denials),
            ("SkippedLines", self.skipped_lines),
            ("AlertsPublished", self.alerts_published),
            ("AlertsSuppressed", self.alerts_suppressed),
        ];
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": values.iter().map(|(n, _)| json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            "FunctionName": function_name,
        });
        for (name, v) in values {
            doc[name] = json!(v);
        }
        doc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_shape() {
        let m = InvocationMetrics {
            objects: 2,
            denials: 5,
            alerts_published: 1,
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_emf("fn", 1000)).expect("json");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(v["Objects"], 2);
        assert_eq!(v["Denials"], 5);
        assert_eq!(v["AlertsPublished"], 1);
        assert_eq!(v["FunctionName"], "fn");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(Vec::len),
            Some(10)
        );
    }
}
