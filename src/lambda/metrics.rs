//! Per-invocation counters, written as one CloudWatch Embedded Metric Format line
//! (docs/DESIGN.md, "Observability"). The template's alarms and dashboard name these
//! metrics; a test checks that every name they use is one written here.

use crate::detector::{ObjectReport, RecordReport};
use crate::logs::Skipped;
use serde_json::json;

pub const NAMESPACE: &str = "BedrockDeniedModels";
/// The one dimension of every metric: the function's name.
pub const DIMENSION: &str = "FunctionName";

/// What one invocation did, summed over its objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvocationMetrics {
    pub objects: u64,
    pub objects_skipped: u64,
    pub objects_missing: u64,
    pub objects_incomplete: u64,
    pub objects_failed: u64,
    pub events_malformed: u64,
    pub records: u64,
    pub denials: u64,
    pub skipped: Skipped,
    pub alerts_published: u64,
    pub alerts_suppressed: u64,
    pub alerts_excepted: u64,
    pub alerts_in_progress: u64,
    /// Objects the sweep found unprocessed and processed.
    pub objects_swept: u64,
    /// Denials not counted because their object was over a per-object limit.
    pub denials_over_limit: u64,
    /// Watched accounts known silent (a sweep's count).
    pub log_sources_silent: u64,
    /// Notices sent about accounts gone silent or delivering again.
    pub log_source_notices: u64,
    /// SQS messages left for redelivery because the invocation's time was nearly out.
    pub messages_deferred: u64,
    /// Objects the sweep no longer tries: it failed to process them too often.
    pub objects_given_up: u64,
}

impl InvocationMetrics {
    pub fn add_report(&mut self, r: &ObjectReport) {
        self.objects += 1;
        self.objects_incomplete += u64::from(r.read_error.is_some());
        self.records += r.read.records;
        self.denials += r.read.denials;
        self.skipped.add(&r.read.skipped);
        self.add_record(&r.record);
        self.denials_over_limit += r.over_limit.denials;
    }

    /// The alerts of keys counted, also those of an object that failed on other keys.
    pub fn add_record(&mut self, r: &RecordReport) {
        self.alerts_published += r.alerts_published;
        self.alerts_suppressed += r.alerts_suppressed;
        self.alerts_excepted += r.alerts_excepted;
        self.alerts_in_progress += r.alerts_in_progress;
    }

    /// Every metric, by name.
    pub fn values(&self) -> [(&'static str, u64); 24] {
        [
            ("Objects", self.objects),
            ("ObjectsSkipped", self.objects_skipped),
            ("ObjectsMissing", self.objects_missing),
            ("ObjectsIncomplete", self.objects_incomplete),
            ("ObjectsFailed", self.objects_failed),
            ("EventsMalformed", self.events_malformed),
            ("Records", self.records),
            ("Denials", self.denials),
            ("SkippedLines", self.skipped.total()),
            ("SkippedInvalidJson", self.skipped.invalid_json),
            ("SkippedMissingFields", self.skipped.missing_fields),
            ("SkippedBadTimestamp", self.skipped.bad_timestamp),
            ("SkippedOversized", self.skipped.oversized_line),
            ("SkippedAccountMismatch", self.skipped.account_mismatch),
            ("AlertsPublished", self.alerts_published),
            ("AlertsSuppressed", self.alerts_suppressed),
            ("AlertsExcepted", self.alerts_excepted),
            ("AlertsInProgress", self.alerts_in_progress),
            ("ObjectsSwept", self.objects_swept),
            ("DenialsOverLimit", self.denials_over_limit),
            ("LogSourcesSilent", self.log_sources_silent),
            ("LogSourceNotices", self.log_source_notices),
            ("MessagesDeferred", self.messages_deferred),
            ("ObjectsGivenUp", self.objects_given_up),
        ]
    }

    /// The EMF document: metrics in namespace [`NAMESPACE`], dimension [`DIMENSION`].
    pub fn to_emf(&self, function_name: &str, timestamp_ms: i64) -> String {
        let values = self.values();
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
}

/// The names of every metric the function writes.
pub fn metric_names() -> Vec<&'static str> {
    InvocationMetrics::default()
        .values()
        .iter()
        .map(|(n, _)| *n)
        .collect()
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
            skipped: Skipped {
                invalid_json: 2,
                oversized_line: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_emf("fn", 1000)).expect("json");
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
