//! The counters of what the detector did: the one list from which the function's
//! metrics, its log line per object and the `scan` summary (and the report's header)
//! are all produced. A new counter is one line in [`counters!`] below.

use serde::Serialize;

/// How a counter appears in a summary line.
///
/// A phrase holds `{}` for the value. `?` first: shown only when not zero. In
/// parentheses: a qualifier of the phrase before it; qualifiers in a row share one
/// pair of parentheses (`3 scanned (2 gzip, 1 CloudTrail)`).
type Phrase = Option<(&'static str, &'static str)>;

/// One counter: its field, its CloudWatch metric (if it is one), and its summary line
/// and phrase (if it is shown).
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    pub name: &'static str,
    pub metric: Option<&'static str>,
    pub line: Option<&'static str>,
    pub phrase: &'static str,
}

/// A summary line whose value is the sum of its counters, shown before their
/// qualifiers (`skipped lines: 3 (invalid_json 2, ...)`).
const SUM_LINES: &[&str] = &["skipped lines"];
/// The metric of a sum line.
const SUM_METRICS: &[(&str, &str)] = &[("skipped lines", "SkippedLines")];

/// Defines [`Counts`] from entries `scope field => metric, phrase;`: `scope` is
/// `object` (a field of the object's log line) or `invocation` (summed over objects
/// only); `metric` the CloudWatch metric name, if it is one; `phrase` its summary line
/// and [`Phrase`], if it is shown.
macro_rules! counters {
    ( $( $(#[doc = $doc:literal])* $scope:ident $field:ident => $metric:expr, $phrase:expr; )* ) => {
        /// What was read, counted and alerted, for one object or summed over many.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct Counts {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl Counts {
            /// Every counter, in summary order.
            pub const COUNTERS: &'static [Counter] = &[
                $( counter(stringify!($field), $metric, $phrase), )*
            ];

            /// Every counter's value, in [`Counts::COUNTERS`] order.
            pub fn values(&self) -> Vec<u64> {
                vec![ $( self.$field, )* ]
            }

            pub fn add(&mut self, o: &Counts) {
                $( self.$field += o.$field; )*
            }

            /// The one log line of a processed object: its per-object counters.
            pub fn log_object(&self, object: &str, version: &str, format: &str, gzip: bool) {
                object_line!(@fields [] self, object, version, format, gzip; $( $scope $field, )*);
            }
        }
    };
}

/// The object log line, with the fields of the per-object counters only.
macro_rules! object_line {
    (@fields [$($acc:tt)*] $s:ident, $o:ident, $v:ident, $f:ident, $g:ident;) => {
        tracing::info!(object = $o, version = $v, format = $f, gzip = $g, $($acc)* "object processed")
    };
    (@fields [$($acc:tt)*] $s:ident, $o:ident, $v:ident, $f:ident, $g:ident; object $field:ident, $($rest:tt)*) => {
        object_line!(@fields [$($acc)* $field = $s.$field,] $s, $o, $v, $f, $g; $($rest)*)
    };
    (@fields [$($acc:tt)*] $s:ident, $o:ident, $v:ident, $f:ident, $g:ident; invocation $field:ident, $($rest:tt)*) => {
        object_line!(@fields [$($acc)*] $s, $o, $v, $f, $g; $($rest)*)
    };
}

const fn counter(name: &'static str, metric: Option<&'static str>, phrase: Phrase) -> Counter {
    let (line, phrase) = match phrase {
        Some((line, phrase)) => (Some(line), phrase),
        None => (None, ""),
    };
    Counter {
        name,
        metric,
        line,
        phrase,
    }
}

counters! {
    /// Objects counted (read, whole or in part).
    invocation objects => Some("Objects"), Some(("objects", "{} scanned"));
    /// Objects gzip-compressed.
    invocation gzip => None, Some(("objects", "({} gzip)"));
    /// Objects by format beyond JSON lines.
    invocation cloudtrail => None, Some(("objects", "({} CloudTrail)"));
    invocation json_array => None, Some(("objects", "?({} JSON array)"));
    invocation lookup_events => None, Some(("objects", "?({} lookup-events)"));
    invocation json_values => None, Some(("objects", "?({} multi-line JSON)"));
    /// Housekeeping objects not read (permission checks, large payloads, empty).
    invocation objects_skipped => Some("ObjectsSkipped"), Some(("objects", "{} housekeeping skipped"));
    /// Objects whose key is in no AWS log layout, skipped where only those are read
    /// (`REQUIRE_LOG_LAYOUT`, an organization).
    invocation objects_outside_layout => Some("ObjectsOutsideLayout"), Some(("objects", "?{} outside AWS's log layouts"));
    /// Inputs outside `scan --since/--until`.
    invocation objects_not_selected => None, Some(("objects", "?{} outside --since/--until"));
    /// Objects gone before they could be read (NoSuchKey, NoSuchVersion).
    invocation objects_missing => Some("ObjectsMissing"), Some(("objects", "?{} missing"));
    /// Objects read only in part, cut short by the object itself: what was read counts.
    invocation objects_incomplete => Some("ObjectsIncomplete"), Some(("objects", "{} incomplete"));
    /// Objects that failed, to be retried.
    invocation objects_failed => Some("ObjectsFailed"), Some(("objects", "{} failed"));
    /// Bytes read from the source (compressed size for gzip).
    object source_bytes => None, None;
    /// Log lines or records seen.
    object records => Some("Records"), Some(("records", "{}"));
    /// Bytes of log text after decompression.
    object log_bytes => None, Some(("records", "({} bytes of log)"));
    object denials => Some("Denials"), Some(("records", "denials: {}"));
    /// Not a JSON object, cut short, or a field of the wrong type.
    object skipped_invalid_json => Some("SkippedInvalidJson"), Some(("skipped lines", "(invalid_json {})"));
    /// A denial without user, model, account or time.
    object skipped_missing_fields => Some("SkippedMissingFields"), Some(("skipped lines", "(missing_fields {})"));
    /// A denial whose time is not RFC 3339.
    object skipped_bad_timestamp => Some("SkippedBadTimestamp"), Some(("skipped lines", "(bad_timestamp {})"));
    /// A line or record longer than `logs::MAX_LINE_BYTES`.
    object skipped_oversized_line => Some("SkippedOversized"), Some(("skipped lines", "(oversized_line {})"));
    /// A denial of another account than the one whose folder (or CloudWatch Logs
    /// owner) holds it (docs/DESIGN.md, "A record speaks only for its own account").
    object skipped_account_mismatch => Some("SkippedAccountMismatch"), Some(("skipped lines", "(account_mismatch {})"));
    /// Keys (user, model, account) with denials.
    object keys => None, None;
    /// (key, bucket) counters added to.
    object counters_added => None, Some(("counters", "{} added"));
    /// (group, bucket) sets of the rules that count distinct values added to.
    object distinct_sets_added => None, Some(("other rules", "?{} distinct sets added"));
    /// Validation errors read (the validation rule's records), when it is on.
    object validation_errors => Some("ValidationErrors"), Some(("other rules", "?{} validation errors"));
    /// (key, minute) counters of the validation rule added to.
    object validation_counters_added => None, Some(("other rules", "?{} validation counters added"));
    /// (key, bucket) counters this object had already added to (a redelivery).
    object counters_already_counted => None, Some(("counters", "{} already counted"));
    /// Records of calls told by both the invocation log and CloudTrail that no window
    /// counts, a call counting once (docs/DESIGN.md, "One call, one count"): `scan`
    /// reads it from its store once every object is counted.
    invocation records_told_twice => None, Some(("counters", "?{} records of calls told by both logs left out"));
    object alerts_published => Some("AlertsPublished"), Some(("alerts", "{} published"));
    object alerts_suppressed => Some("AlertsSuppressed"), Some(("alerts", "{} suppressed"));
    /// Alerts not raised because an exception rule stops them.
    object alerts_excepted => Some("AlertsExcepted"), Some(("alerts", "{} excepted"));
    /// Keys over the threshold whose alert the ceilings held back (docs/DESIGN.md,
    /// "Alert ceilings").
    object alerts_over_ceiling => Some("AlertsOverCeiling"), Some(("alerts", "?{} held back by the ceilings"));
    /// Summaries of the alerts held back, sent.
    object ceiling_notices => Some("CeilingNotices"), Some(("alerts", "?{} ceiling summaries sent"));
    /// Keys whose alert another attempt was delivering: this one waited for it.
    object alerts_in_progress => Some("AlertsInProgress"), Some(("alerts", "?{} waited for another attempt"));
    /// Alerts shown but not delivered (a replay that counts only).
    object alerts_not_delivered => None, Some(("alerts", "?{} shown but not delivered"));
    /// Denials not counted because their object was over a per-object limit.
    object denials_over_limit => Some("DenialsOverLimit"), Some(("denials over the per-object limits (not counted)", "?{}"));
    /// Keys let go because their object was over a per-object limit.
    object keys_over_limit => None, None;
    /// Denials the rules that count distinct values did not take because their object
    /// held more of those rules' groups than it may (the seed rule still counts them).
    object distinct_over_limit => Some("DistinctOverLimit"), Some(("other rules", "?{} denials over their per-object limit (not taken)"));
    /// Events or messages that are not a known notification.
    invocation events_malformed => Some("EventsMalformed"), None;
    /// Objects the sweep found unprocessed and processed.
    invocation objects_swept => Some("ObjectsSwept"), None;
    /// Watched accounts known silent (a sweep's count).
    invocation log_sources_silent => Some("LogSourcesSilent"), None;
    /// Notices sent about accounts gone silent or delivering again.
    invocation log_source_notices => Some("LogSourceNotices"), None;
    /// SQS messages left for redelivery because the invocation's time was nearly out.
    invocation messages_deferred => Some("MessagesDeferred"), None;
    /// Objects the sweep no longer tries: it failed to process them too often.
    invocation objects_given_up => Some("ObjectsGivenUp"), None;
    /// Account folders with more objects in the sweep's lookback than it lists.
    invocation sweep_listings_cut => Some("SweepListingsCut"), None;
}

impl Counts {
    /// Each counter with its value.
    pub fn each(&self) -> impl Iterator<Item = (&'static Counter, u64)> {
        Self::COUNTERS.iter().zip(self.values())
    }

    /// The sum of the counters of a summary line.
    pub fn line_sum(&self, line: &str) -> u64 {
        self.each()
            .filter(|(c, _)| c.line == Some(line))
            .map(|(_, v)| v)
            .sum()
    }

    /// Lines skipped, for every reason.
    pub fn skipped_lines(&self) -> u64 {
        self.line_sum("skipped lines")
    }

    /// Every metric, by name: the counters that are metrics, and the sums of lines.
    pub fn metrics(&self) -> Vec<(&'static str, u64)> {
        let sums = SUM_METRICS
            .iter()
            .map(|(line, metric)| (*metric, self.line_sum(line)));
        self.each()
            .filter_map(|(c, v)| c.metric.map(|m| (m, v)))
            .chain(sums)
            .collect()
    }

    /// The summary, line by line: (line, text after `line: `). `extra` phrases are
    /// added at the end of their line. A line with nothing to show is left out.
    pub fn summary_lines(&self, extra: &[(&str, String)]) -> Vec<(&'static str, String)> {
        self.summary_lines_with(extra, |n| n.to_string())
    }

    /// [`Counts::summary_lines`] with numbers written by `number`.
    pub fn summary_lines_with(
        &self,
        extra: &[(&str, String)],
        number: impl Fn(u64) -> String,
    ) -> Vec<(&'static str, String)> {
        let mut lines: Vec<&'static str> = Vec::new();
        for c in Self::COUNTERS {
            if let Some(line) = c.line {
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
        }
        let mut out = Vec::new();
        for line in lines {
            let mut text = Phrases::default();
            if SUM_LINES.contains(&line) {
                text.push(&number(self.line_sum(line)));
            }
            for (c, v) in self.each().filter(|(c, _)| c.line == Some(line)) {
                let (optional, phrase) = match c.phrase.strip_prefix('?') {
                    Some(p) => (true, p),
                    None => (false, c.phrase),
                };
                if !(optional && v == 0) {
                    text.push(&phrase.replace("{}", &number(v)));
                }
            }
            for (_, phrase) in extra.iter().filter(|(l, _)| *l == line) {
                text.push(phrase);
            }
            if let Some(text) = text.finish() {
                out.push((line, text));
            }
        }
        out
    }

    /// The summary: `line: phrase, phrase (qualifier, qualifier), ...`, one per line.
    pub fn summary(&self, extra: &[(&str, String)]) -> String {
        self.summary_lines(extra)
            .iter()
            .map(|(line, text)| format!("{line}: {text}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Phrases joined by commas, qualifiers in a row within one pair of parentheses.
#[derive(Default)]
struct Phrases {
    text: String,
    open: bool,
}

impl Phrases {
    fn push(&mut self, phrase: &str) {
        match phrase.strip_prefix('(').and_then(|p| p.strip_suffix(')')) {
            Some(inner) => {
                self.text.push_str(if self.open { ", " } else { " (" });
                self.text.push_str(inner);
                self.open = true;
            }
            None => {
                self.close();
                if !self.text.is_empty() {
                    self.text.push_str(", ");
                }
                self.text.push_str(phrase);
            }
        }
    }

    fn close(&mut self) {
        if self.open {
            self.text.push(')');
            self.open = false;
        }
    }

    fn finish(mut self) -> Option<String> {
        self.close();
        (!self.text.is_empty()).then_some(self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_a_unique_name_and_metric() {
        let mut names: Vec<&str> = Counts::COUNTERS.iter().map(|c| c.name).collect();
        let mut metrics: Vec<&str> = Counts::default().metrics().iter().map(|m| m.0).collect();
        let (n, m) = (names.len(), metrics.len());
        names.sort_unstable();
        names.dedup();
        metrics.sort_unstable();
        metrics.dedup();
        assert_eq!((names.len(), metrics.len()), (n, m));
    }

    #[test]
    fn the_summary_is_made_from_the_counters() {
        let mut c = Counts {
            objects: 2,
            gzip: 2,
            cloudtrail: 1,
            ..Counts::default()
        };
        c.records = 12;
        c.log_bytes = 3456;
        c.denials = 7;
        c.skipped_invalid_json = 2;
        c.skipped_account_mismatch = 1;
        c.counters_added = 5;
        c.alerts_published = 1;
        c.alerts_not_delivered = 1;
        let extra = [("records", "keys with denials: 2".to_string())];
        assert_eq!(
            c.summary(&extra),
            "objects: 2 scanned (2 gzip, 1 CloudTrail), 0 housekeeping skipped, 0 incomplete, 0 failed\n\
             records: 12 (3456 bytes of log), denials: 7, keys with denials: 2\n\
             skipped lines: 3 (invalid_json 2, missing_fields 0, bad_timestamp 0, oversized_line 0, account_mismatch 1)\n\
             counters: 5 added, 0 already counted\n\
             alerts: 1 published, 0 suppressed, 0 excepted, 1 shown but not delivered"
        );
        c.denials_over_limit = 9;
        assert!(c
            .summary(&[])
            .ends_with("\ndenials over the per-object limits (not counted): 9"));
        assert_eq!(c.skipped_lines(), 3);
        let metrics = c.metrics();
        assert!(metrics.contains(&("SkippedLines", 3)));
        assert!(metrics.contains(&("Objects", 2)));
        assert!(!metrics.iter().any(|(m, _)| *m == "gzip"));
    }
}
