//! How much the report shows, at most: every list and id of the page is cut to these,
//! so the file stays under [`MAX_REPORT_BYTES`] whatever the scan (docs/DESIGN.md,
//! "The investigator's report").

/// Keys shown with a chart and their evidence: the alerted keys, then the others by
/// denials.
pub const MAX_KEY_SECTIONS: usize = 20;
/// The file's size at most. The limits here keep a report well under it; should
/// values that escape to the most bytes still take it over, fewer keys get a section.
pub const MAX_REPORT_BYTES: usize = 3 * 1024 * 1024;
/// Rows of the alerts table.
pub const MAX_ALERT_ROWS: usize = 200;
/// Rows of the table of keys without a section.
pub const MAX_OTHER_KEYS: usize = 100;
/// Rows of each top table (principals, models, accounts, source IPs).
pub const MAX_TOP_ROWS: usize = 15;
/// Inputs and exception rules listed.
pub const MAX_LISTED: usize = 20;
/// Alerts listed in a key's section.
pub(super) const MAX_KEY_ALERTS: usize = 10;
/// Characters of an id shown in tables, and in a key's own section.
pub const TABLE_ID_CHARS: usize = 120;
pub const FULL_ID_CHARS: usize = 512;
/// Characters of an evidence value (the reader keeps 256).
pub(super) const VALUE_CHARS: usize = 256;
/// Alerts listed per rule beside the seed rule.
pub const MAX_RULE_ALERTS: usize = 50;
