//! The investigator's report, `scan --report FILE.html` (docs/DESIGN.md, "The
//! investigator's report"): what the scan saw, kept while it counts ([`Collector`]);
//! the tuning table, replayed from that record with the detector's own decisions
//! ([`Tuning`]); and one self-contained HTML file rendered from both ([`render`]).
//!
//! It holds no AWS types: `scan` hands it the objects it counted, the alerts it
//! printed and its summary's numbers.

mod chart;
mod collect;
mod html;
mod limits;
mod replay;
mod rules;
mod style;
#[cfg(test)]
mod tests;
mod values;

pub use collect::{
    Collector, Entry, GroupStats, IpStats, KeyId, KeyStats, Record, RuleRecord, Values,
    MAX_EVIDENCE_VALUES, MAX_KEY_OBJECTS, MAX_REPLAYED_ENTRIES,
};
pub use html::{render, CSP};
pub use limits::{
    FULL_ID_CHARS, MAX_ALERT_ROWS, MAX_KEY_SECTIONS, MAX_LISTED, MAX_OTHER_KEYS, MAX_REPORT_BYTES,
    MAX_TOP_ROWS, TABLE_ID_CHARS,
};
pub use replay::{
    replay, replay_rule, Outcome, ReplayedAlert, RuleInput, Setting, Tuning, THRESHOLDS,
    VALIDATION_WINDOW_MINUTES, WINDOW_MINUTES,
};
pub use values::shown;

use crate::alert::Alert;
use crate::config::Config;
use crate::stats::Counts;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The scan's own numbers, as its summary prints them.
#[derive(Debug, Clone, Default)]
pub struct ScanTotals {
    /// What the scan counted (`crate::stats`).
    pub counts: Counts,
    /// Keys with denials, when the store knows.
    pub keys: Option<u64>,
}

impl ScanTotals {
    /// The summary's lines (`crate::stats`), numbers written by `number`, with the
    /// keys with denials when known.
    pub fn lines(&self, number: impl Fn(u64) -> String) -> Vec<(&'static str, String)> {
        let keys: Vec<_> = self
            .keys
            .map(|k| ("records", format!("keys with denials: {}", number(k))))
            .into_iter()
            .collect();
        self.counts.summary_lines_with(&keys, number)
    }
}

/// Everything the report shows.
#[derive(Debug)]
pub struct ReportInput<'a> {
    /// The inputs as given on the command line.
    pub inputs: &'a [String],
    pub config: &'a Config,
    pub totals: &'a ScanTotals,
    /// The alerts the scan published, in order.
    pub alerts: &'a [Alert],
    pub collector: &'a Collector,
    /// When the report is written; exception rules are judged at this time.
    pub now: i64,
}

/// The report file could not be written.
#[derive(Debug, Error)]
#[error("--report {}: {what}", path.display())]
pub struct ReportError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// The report's file, created before the scan so that a bad path fails before any
/// reading, and written once at the end.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    pub fn create(path: &Path) -> Result<Self, ReportError> {
        let file = File::create(path).map_err(|source| ReportError {
            path: path.to_path_buf(),
            what: "cannot create the file",
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Replays the tuning table, renders and writes the report; returns its size in
    /// bytes.
    pub async fn write(mut self, input: &ReportInput<'_>) -> Result<usize, ReportError> {
        let tuning = Tuning::compute(input.collector, input.config, input.now).await;
        let html = render(input, &tuning);
        self.file
            .write_all(html.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| ReportError {
                path: self.path.clone(),
                what: "cannot write the report",
                source,
            })?;
        Ok(html.len())
    }
}
