//! The report as one self-contained HTML page: inline CSS and SVG, no script, a
//! Content-Security-Policy that forbids loading anything, and bounded lists, so the
//! file stays small whatever the scan (docs/DESIGN.md, "The investigator's report").
//!
//! Every value from logs goes through [`shown`]: the template escapes HTML, and
//! control and bidirectional-formatting characters are written out visibly as
//! `\u{..}` (the email's [`text_escape`]), each id cut to a fixed length. Ids never go
//! into attributes: links name keys by their index.

use super::chart::{chart, Chart, MAX_BARS};
use super::collect::{KeyId, KeyStats, Values};
use super::replay::{Outcome, Tuning};
use super::{ReportInput, ScanTotals};
use crate::alert::{text_escape, Alert, RULE_ID, RULE_NAME, SEVERITY};
use crate::config::Config;
use crate::exceptions::ExceptionRule;
use crate::key::DenialKey;
use crate::text::prefix_chars;
use crate::window::{Bucket, WindowSpec, WindowTotal};
use chrono::DateTime;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::{BTreeSet, HashMap};

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
const MAX_KEY_ALERTS: usize = 10;
/// Characters of an id shown in tables, and in a key's own section.
pub const TABLE_ID_CHARS: usize = 120;
pub const FULL_ID_CHARS: usize = 512;
/// Characters of an evidence value (the reader keeps 256).
const VALUE_CHARS: usize = 256;

/// Nothing may load or run: no script, no fetch, no frame, no form.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const CSS: &str = r#"
:root{--ink:#1b2230;--muted:#5c6577;--line:#e1e5ec;--bg:#f3f5f8;--card:#fff;--accent:#2c5a97;--alert:#b8232b;--alertbg:#fcebec}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 "Helvetica Neue",Helvetica,Arial,"Liberation Sans",sans-serif}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
header.top{background:#172132;color:#fff;padding:20px 0 18px}
.wrap{max-width:1180px;margin:0 auto;padding:0 20px}
.kicker{font-size:11.5px;letter-spacing:.09em;text-transform:uppercase;color:#9eb0c9}
h1{font-size:25px;margin:4px 0 4px;font-weight:700}
.sub{color:#c7d1df;margin:2px 0}
.cards{display:flex;gap:10px;margin:16px 0 0;flex-wrap:wrap}
.card{background:#22304a;border-radius:8px;padding:8px 16px;min-width:128px}
.card b{display:block;font-size:23px;color:#fff;font-variant-numeric:tabular-nums}
.card span{font-size:12px;color:#a9b8cd}
.card.hot{background:var(--alert)}
.card.hot span{color:#ffdfe0}
nav.toc{margin:12px 0 0;font-size:13px}
nav.toc a{color:#c7d1df;margin-right:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px 16px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px}
h2 small,h3 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
h3{font-size:15px;margin:14px 0 6px}
p.note{color:var(--muted);margin:6px 0 0;font-size:13px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#f8f9fb}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
table.facts th{width:150px;background:none;font-size:13px;color:var(--muted);font-weight:600}
table.facts td,table.facts th{border-bottom:1px solid #f0f2f5}
.id{font-family:"DejaVu Sans Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;overflow-wrap:anywhere}
.esc{background:#fff0bf;color:#7a4700;border-radius:3px;padding:0 2px;font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace}
.cut{color:var(--muted);font-style:italic;font-family:inherit}
.two{display:grid;grid-template-columns:1fr 1fr;gap:0 28px}
.two>div{min-width:0}
.four{display:grid;grid-template-columns:1fr 1fr;gap:6px 28px}
.four>div{min-width:0}
ul.plain{margin:0;padding:0;list-style:none}
ul.plain li{margin:0 0 2px}
.pill{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;background:#e8edf4;color:#3a4659;margin-right:6px}
.pill.hot{background:var(--alertbg);color:var(--alert)}
article.key{border-top:1px solid var(--line);padding:14px 0 6px}
article.key:first-of-type{border-top:none;padding-top:2px}
article.key h3{margin:6px 0 2px;font-size:15px}
.keymeta{color:var(--muted);margin:0 0 8px}
.keymeta .id{color:var(--ink)}
.chart{display:block;width:100%;height:auto;margin:4px 0 6px}
.chart text{font:12px "Helvetica Neue",Helvetica,Arial,"Liberation Sans",sans-serif;fill:#5c6577}
.chart text.panel{fill:#1b2230;font-weight:600}
.chart .bar{fill:#3b6db0}
.chart .area{fill:#dde7f5}
.chart .sum{fill:none;stroke:#1e3d6b;stroke-width:1.6}
.chart line.threshold{stroke:var(--alert);stroke-width:1.4;stroke-dasharray:6 4}
.chart text.threshold{fill:var(--alert);font-weight:600}
.chart .band{fill:var(--alert);opacity:.08}
.chart circle.alert{fill:var(--alert);stroke:#fff;stroke-width:1.5}
.chart text.alert{fill:var(--alert);font-weight:700}
.chart .grid{stroke:#edf0f4}
.chart .base{stroke:#9aa3b2}
dl.ev{display:grid;grid-template-columns:130px 1fr;gap:3px 12px;margin:4px 0 0}
dl.ev dt{color:var(--muted);font-weight:600;font-size:13px}
dl.ev dd{margin:0;min-width:0}
table.tune td,table.tune th{text-align:right}
table.tune th:first-child,table.tune td:first-child{text-align:left}
table.tune td.cfg{outline:2px solid var(--alert);outline-offset:-2px;background:var(--alertbg)}
table.tune b{font-size:15px}
.wo{display:block;color:var(--muted);font-size:12px}
tr.hot td:first-child{box-shadow:inset 3px 0 0 var(--alert)}
table.fixed{table-layout:fixed}
table.alerts th:nth-child(1){width:34px}
table.alerts th:nth-child(3),table.others th:nth-child(2){width:300px}
table.alerts th:nth-child(4),table.others th:nth-child(3){width:128px}
table.alerts th:nth-child(5){width:70px}
table.alerts th:nth-child(6){width:178px}
table.alerts th:nth-child(7){width:84px}
table.others th:nth-child(4){width:76px}
table.others th:nth-child(5){width:116px}
table.others th:nth-child(6){width:140px}
table.top th:nth-child(n+2){width:70px}
table.ips th:nth-child(2){width:120px}
footer{color:var(--muted);font-size:12px;max-width:1180px;margin:0 auto;padding:0 20px 30px}
@media print{body{background:#fff}section{break-inside:avoid-page;border-color:#ccc}}
"#;

/// `12,345`.
fn num(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `Skipped lines` for `skipped lines`.
fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `skipped-lines` for `skipped lines`: an id from a summary line's name.
fn slug(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// `1 alert`, `3 alerts`.
fn count(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {one}s", num(n))
    }
}

/// `2026-03-14 09:10` (UTC).
fn at(epoch_seconds: i64) -> String {
    DateTime::from_timestamp(epoch_seconds, 0).map_or_else(
        || format!("@{epoch_seconds}"),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `2026-03-14 08:20 – 09:20`, the date once when both ends share it.
fn span(start: i64, end: i64) -> String {
    let (a, b) = (at(start), at(end));
    match (a.split_once(' '), b.split_once(' ')) {
        (Some((da, _)), Some((db, tb))) if da == db => format!("{a} – {tb}"),
        _ => format!("{a} – {b}"),
    }
}

/// One piece of an escaped value: text as it is, a character written out, or a place
/// where the line may break.
enum Piece<'a> {
    Text(&'a str),
    Escape(&'a str),
    Break,
}

/// Splits [`text_escape`] output into text and `\u{..}` escapes (it escapes `\`
/// itself, so every `\u{` starts an escape).
fn pieces(escaped: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = escaped;
    while let Some(at) = rest.find("\\u{") {
        let Some(close) = rest[at..].find('}') else {
            break;
        };
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        out.push(Piece::Escape(&rest[at..at + close + 1]));
        rest = &rest[at + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Characters after the cut counted at most: an id may be megabytes long.
const COUNT_REST_BYTES: usize = 1 << 20;

/// Text between two optional line breaks at least (ARNs and paths break after `/` and
/// `:`; runs of separators get one break, so a hostile id cannot multiply them).
const MIN_BREAK_SPACING: usize = 6;

/// An untrusted value as inert text: HTML-escaped by the template, control and
/// bidirectional-formatting characters written out and marked, and cut so that at
/// most `max_chars` characters show, escapes included.
pub fn shown(value: &str, max_chars: usize) -> Markup {
    let escaped = text_escape(prefix_chars(value, max_chars));
    let mut budget = max_chars;
    let mut used_bytes = 0;
    let mut kept = Vec::new();
    for piece in pieces(&escaped) {
        match piece {
            Piece::Text(t) => {
                let part = prefix_chars(t, budget);
                budget -= part.chars().count();
                used_bytes += part.len();
                kept.push(Piece::Text(part));
                if part.len() < t.len() {
                    break;
                }
            }
            Piece::Escape(e) if e.len() <= budget => {
                budget -= e.len();
                used_bytes += value[used_bytes..].chars().next().map_or(0, char::len_utf8);
                kept.push(Piece::Escape(e));
            }
            Piece::Escape(_) | Piece::Break => break,
        }
    }
    let rest = &value[used_bytes..];
    let mut counted = rest.len().min(COUNT_REST_BYTES);
    while !rest.is_char_boundary(counted) {
        counted -= 1;
    }
    let more = rest[..counted].chars().count();
    // Where a line may break: after a separator, with some text since the last break.
    let mut shown = Vec::new();
    let mut since_break = 0;
    for piece in kept {
        match piece {
            Piece::Text(t) => {
                for part in t.split_inclusive(['/', ':']) {
                    since_break += part.len();
                    shown.push(Piece::Text(part));
                    if part.ends_with(['/', ':']) && since_break >= MIN_BREAK_SPACING {
                        shown.push(Piece::Break);
                        since_break = 0;
                    }
                }
            }
            Piece::Escape(e) => {
                since_break += e.len();
                shown.push(Piece::Escape(e));
            }
            Piece::Break => shown.push(Piece::Break),
        }
    }
    html! {
        @for piece in &shown {
            @match piece {
                Piece::Text(t) => (t),
                Piece::Escape(e) => span.esc { (e) },
                Piece::Break => wbr;,
            }
        }
        @if more > 0 {
            span.cut {
                "… (" @if rest.len() > COUNT_REST_BYTES { "over " } (num(more as u64)) " more characters)"
            }
        }
    }
}

fn id_cell(value: &str, max_chars: usize) -> Markup {
    html! { span.id { (shown(value, max_chars)) } }
}

/// An alert's window as (last bucket, total), from its RFC 3339 window end.
fn alert_window(alert: &Alert, spec: &WindowSpec) -> Option<WindowTotal> {
    let end = DateTime::parse_from_rfc3339(&alert.window.end).ok()?;
    Some(WindowTotal {
        end: spec.bucket_of(end.timestamp()) - 1,
        total: alert.total_denials,
    })
}

fn anchor(id: KeyId) -> String {
    format!("key-{id}")
}

/// What the page needs, worked out once.
struct Page<'a> {
    input: &'a ReportInput<'a>,
    spec: WindowSpec,
    tuning: &'a Tuning,
    /// Key of each alert (as the detector published them), when the scan saw it.
    alert_keys: Vec<Option<KeyId>>,
    alerts_by_key: HashMap<KeyId, Vec<usize>>,
    sections: Vec<KeyId>,
    /// Sections allowed: fewer than [`MAX_KEY_SECTIONS`] when the page had to shrink.
    sections_cap: usize,
    /// Keys in the alerts table and top tables that have a section.
    with_section: BTreeSet<KeyId>,
}

impl<'a> Page<'a> {
    fn new(input: &'a ReportInput<'a>, tuning: &'a Tuning, sections: usize) -> Self {
        let c = input.collector;
        let spec = input.config.window();
        let alert_keys: Vec<Option<KeyId>> =
            input.alerts.iter().map(|a| c.find(&a.key())).collect();
        let mut alerts_by_key: HashMap<KeyId, Vec<usize>> = HashMap::new();
        for (i, k) in alert_keys.iter().enumerate() {
            if let Some(k) = k {
                alerts_by_key.entry(*k).or_default().push(i);
            }
        }
        // Alerted keys first, then by denials; the first seen first on ties.
        let mut order: Vec<KeyId> = (0..c.keys().len() as KeyId).collect();
        order.sort_by_key(|k| {
            (
                !alerts_by_key.contains_key(k),
                std::cmp::Reverse(c.key(*k).denials),
                *k,
            )
        });
        order.truncate(sections);
        let with_section = order.iter().copied().collect();
        Self {
            input,
            spec,
            tuning,
            sections_cap: sections,
            alert_keys,
            alerts_by_key,
            sections: order,
            with_section,
        }
    }

    fn rule(&self, key: &DenialKey) -> Option<&'a ExceptionRule> {
        self.input.config.exceptions.rule_for(key, self.input.now)
    }

    fn threshold(&self, key: &DenialKey) -> u64 {
        self.rule(key)
            .and_then(|r| r.threshold)
            .unwrap_or(self.input.config.threshold)
    }

    /// The key's busiest window over the whole scan (the earliest on ties).
    fn peak(&self, k: &KeyStats) -> Option<WindowTotal> {
        let all: BTreeSet<Bucket> = k.buckets.keys().copied().collect();
        self.spec.best_window(&k.buckets, &all)
    }

    fn key_link(&self, id: Option<KeyId>, body: Markup) -> Markup {
        match id.filter(|k| self.with_section.contains(k)) {
            Some(k) => html! { a href={ "#" (anchor(k)) } { (body) } },
            None => body,
        }
    }

    fn render(&self) -> String {
        let i = self.input;
        let t = i.totals;
        let published = t.counts.alerts_published;
        let keys = t.keys.unwrap_or(i.collector.keys().len() as u64);
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="Content-Security-Policy" content=(CSP);
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { "Denied Bedrock model invocations: investigator's report" }
                    style { (PreEscaped(CSS)) }
                }
                body {
                    header.top {
                        div.wrap {
                            div.kicker { "bedrock-denied-models · investigator's report · all times UTC" }
                            h1 { "Repeated denied Amazon Bedrock model invocations" }
                            p.sub { "Rule " (RULE_NAME) " (" (RULE_ID) "), severity " (SEVERITY) "." }
                            p.sub { (self.range_text()) " · generated " (at(i.now)) }
                            div.cards {
                                div.card.hot[published > 0] id="card-alerts" { b { (num(published)) } span { "alerts" } }
                                div.card id="card-denials" { b { (num(t.counts.denials)) } span { "denials" } }
                                div.card id="card-keys" { b { (num(keys)) } span { "principal, model, account keys" } }
                                div.card id="card-records" { b { (num(t.counts.records)) } span { "records" } }
                                div.card id="card-objects" { b { (num(t.counts.objects)) } span { "objects" } }
                            }
                            nav.toc {
                                a href="#scan" { "Scan and settings" }
                                a href="#alerts" { "Alerts" }
                                a href="#keys" { "Keys" }
                                a href="#top" { "Top tables" }
                                a href="#tuning" { "Tuning" }
                            }
                        }
                    }
                    main.wrap {
                        (self.scan_section(t))
                        (self.alerts_section())
                        (self.keys_section())
                        (self.top_section())
                        (self.tuning_section())
                    }
                    footer {
                        "Written by bedrock-denied-models " (env!("CARGO_PKG_VERSION"))
                        " (scan --report). This file runs no script and loads nothing; ids from the logs are shown as text, "
                        "with control and bidirectional-formatting characters written out as "
                        span.esc { "\\u{..}" } "."
                    }
                }
            }
        }
        .into_string()
    }

    fn range_text(&self) -> String {
        match self.input.collector.span() {
            Some((first, last)) => format!(
                "Denials from {}",
                span(
                    self.spec.bucket_start(first),
                    self.spec.bucket_start(last + 1)
                )
            ),
            None => "No denials".to_string(),
        }
    }

    fn scan_section(&self, t: &ScanTotals) -> Markup {
        let i = self.input;
        let cfg = i.config;
        html! {
            section #scan {
                div.two {
                    div {
                        h2 { "What was scanned" }
                        table.facts {
                            tr { th { "Inputs" } td {
                                ul.plain {
                                    @for input in i.inputs.iter().take(MAX_LISTED) {
                                        li { (id_cell(input, TABLE_ID_CHARS)) }
                                    }
                                    @if i.inputs.len() > MAX_LISTED {
                                        li.cut { "and " (i.inputs.len() - MAX_LISTED) " more" }
                                    }
                                }
                            } }
                            @for (line, text) in t.lines(num) {
                                @if line == "records" {
                                    tr { th { "Denials" } td #scan-denials {
                                        (num(t.counts.denials))
                                        @if let Some(k) = t.keys { " in " (num(k)) " keys" }
                                        @if let Some((first, last)) = i.collector.span() {
                                            ", " (span(self.spec.bucket_start(first), self.spec.bucket_start(last + 1)))
                                        }
                                    } }
                                }
                                tr { th { (sentence_case(line)) } td id=(format!("scan-{}", slug(line))) { (text) } }
                            }
                        }
                    }
                    div {
                        h2 { "Settings" }
                        table.facts {
                            tr { th { "Threshold" } td #set-threshold { "alert when a window holds more than " b { (cfg.threshold) } " denials" } }
                            tr { th { "Window" } td #set-window {
                                (u64::from(cfg.window_buckets) * u64::from(cfg.bucket_minutes)) " minutes: "
                                (cfg.window_buckets) " buckets of " (cfg.bucket_minutes) " minutes"
                            } }
                            tr { th { "Suppression" } td { "one alert per key per " (cfg.suppress_minutes) " minutes" } }
                            tr { th { "Denial codes" } td {
                                "Bedrock invocation logs: " span.id { (shown(&cfg.denial_codes.join(", "), FULL_ID_CHARS)) } br;
                                "CloudTrail: " span.id { (shown(&cfg.cloudtrail_denial_codes.join(", "), FULL_ID_CHARS)) }
                            } }
                            tr { th { "Exceptions" } td #set-exceptions { (rules_list(cfg, i.now)) } }
                        }
                    }
                }
            }
        }
    }

    fn alerts_section(&self) -> Markup {
        let alerts = self.input.alerts;
        html! {
            section #alerts {
                h2 { "Alerts" small { (num(alerts.len() as u64)) " published by this scan, in the order it printed them" } }
                @if alerts.is_empty() {
                    p.note { "No window held more denials than its threshold." }
                } @else {
                    table.fixed.alerts {
                        tr {
                            th.n { "#" } th { "Principal (user.id)" } th { "Model" } th { "Account" }
                            th.n { "Denials" } th { "Window (UTC)" } th.n { "Threshold" }
                        }
                        @for (n, a) in alerts.iter().enumerate().take(MAX_ALERT_ROWS) {
                            @let key = self.alert_keys[n];
                            tr.hot {
                                td.n { (n + 1) }
                                td { (self.key_link(key, id_cell(&a.user_id, TABLE_ID_CHARS))) }
                                td { (id_cell(&a.model_id, TABLE_ID_CHARS)) }
                                td { (id_cell(&a.account_id, TABLE_ID_CHARS)) }
                                td.n { b { (num(a.total_denials)) } }
                                td.t { (window_text(a)) }
                                td.n { (num(a.threshold)) }
                            }
                        }
                    }
                    @if alerts.len() > MAX_ALERT_ROWS {
                        p.note { "And " (num((alerts.len() - MAX_ALERT_ROWS) as u64)) " more alerts, not listed here (the scan printed them all)." }
                    }
                }
            }
        }
    }

    fn keys_section(&self) -> Markup {
        let c = self.input.collector;
        let shown_keys: BTreeSet<KeyId> = self.sections.iter().copied().collect();
        let mut others: Vec<KeyId> = (0..c.keys().len() as KeyId)
            .filter(|k| !shown_keys.contains(k))
            .collect();
        others.sort_by_key(|k| (std::cmp::Reverse(c.key(*k).denials), *k));
        let listed = others.len().min(MAX_OTHER_KEYS);
        let rest_denials: u64 = others[listed..].iter().map(|k| c.key(*k).denials).sum();
        html! {
            section #keys {
                h2 { "Keys" small { "the alerted keys, then the others by denials: " (self.sections.len()) " of " (num(c.keys().len() as u64)) } }
                @if c.keys().is_empty() {
                    p.note { "No denials." }
                }
                @if self.sections_cap < MAX_KEY_SECTIONS {
                    p.note { "Fewer keys than usual have a section, to keep this file under " (MAX_REPORT_BYTES / (1024 * 1024)) " MB." }
                }
                @for k in &self.sections {
                    (self.key_article(*k))
                }
                @if !others.is_empty() {
                    h3 { "Other keys" small { "by denials" } }
                    table.fixed.others {
                        tr { th { "Principal (user.id)" } th { "Model" } th { "Account" } th.n { "Denials" } th.n { "Busiest window" } th { "from (UTC)" } }
                        @for k in &others[..listed] {
                            @let s = c.key(*k);
                            @let peak = self.peak(s);
                            tr {
                                td { (id_cell(&s.key.user_id, TABLE_ID_CHARS)) }
                                td { (id_cell(&s.key.model_id, TABLE_ID_CHARS)) }
                                td { (id_cell(&s.key.account_id, TABLE_ID_CHARS)) }
                                td.n { (num(s.denials)) }
                                td.n { (peak.as_ref().map_or(0, |p| p.total)) }
                                td.t { @if let Some(p) = &peak { (at(self.spec.window_bounds(p.end).0)) } }
                            }
                        }
                    }
                    @if others.len() > listed {
                        p.note { "And " (num((others.len() - listed) as u64)) " more keys with " (num(rest_denials)) " denials." }
                    }
                }
            }
        }
    }

    fn key_article(&self, k: KeyId) -> Markup {
        let c = self.input.collector;
        let s = c.key(k);
        let rule = self.rule(&s.key);
        let threshold = self.threshold(&s.key);
        let alerts: Vec<&Alert> = self
            .alerts_by_key
            .get(&k)
            .map(|v| v.iter().map(|i| &self.input.alerts[*i]).collect())
            .unwrap_or_default();
        let marks: Vec<(Bucket, u64)> = alerts
            .iter()
            .filter_map(|a| alert_window(a, &self.spec))
            .map(|w| (w.end, w.total))
            .collect();
        let peak = self.peak(s);
        let suppressed = self
            .tuning
            .configured()
            .0
            .suppressed_by_key
            .get(&k)
            .copied()
            .unwrap_or(0);
        // The scanned range, widened to the windows that hold its first and last
        // denials.
        let (first, last) = c.span().unwrap_or((0, 0));
        let (first, last) = (
            self.spec.window_first(first),
            last + self.spec.window_buckets() - 1,
        );
        let whole = Chart {
            counts: &s.buckets,
            spec: self.spec,
            first,
            last,
            threshold,
            alerts: &marks,
        };
        // A long range is drawn in wide bars: also the buckets around the first alert
        // (or the busiest window), one bar each.
        let zoom = (last - first + 1 > MAX_BARS).then(|| {
            let centre = marks
                .first()
                .map(|m| m.0)
                .or(peak.as_ref().map(|p| p.end))
                .unwrap_or(first);
            let from = (centre - MAX_BARS / 2).max(first);
            let to = (from + MAX_BARS - 1).min(last);
            Chart {
                first: (to - MAX_BARS + 1).max(first),
                last: to,
                ..whole
            }
        });
        html! {
            article.key id=(anchor(k)) {
                div {
                    @if alerts.is_empty() {
                        span.pill { "no alert" }
                    } @else {
                        span.pill.hot { (alerts.len()) @if alerts.len() == 1 { " alert" } @else { " alerts" } }
                    }
                    @if suppressed > 0 {
                        span.pill { (num(suppressed)) " suppressed" }
                    }
                    span.pill { (num(s.denials)) " denials" }
                    @if let Some(p) = &peak {
                        span.pill { "busiest " (self.spec.window_buckets() * self.spec.bucket_seconds() / 60) " minutes: " (num(p.total)) }
                    }
                    span.pill { (num(s.object_count)) @if s.object_count == 1 { " object" } @else { " objects" } }
                }
                h3 { span.id { (shown(&s.key.user_id, FULL_ID_CHARS)) } }
                p.keymeta {
                    "model " span.id { (shown(&s.key.model_id, FULL_ID_CHARS)) }
                    " · account " span.id { (shown(&s.key.account_id, FULL_ID_CHARS)) }
                    " · threshold " (threshold)
                    @if let Some(r) = rule {
                        @if r.threshold.is_some() { " (exception: " } @else { " (alerts stopped by exception: " }
                        (shown(&r.reason, TABLE_ID_CHARS)) ")"
                    }
                }
                (chart(&whole))
                @if let Some(z) = &zoom {
                    p.note { "Around " @if marks.is_empty() { "the busiest window" } @else { "the first alert" } ", one bar per bucket:" }
                    (chart(z))
                }
                dl.ev {
                    @if !alerts.is_empty() {
                        dt { "Alerts" }
                        dd {
                            ul.plain {
                                @for a in alerts.iter().take(MAX_KEY_ALERTS) {
                                    li { b { (num(a.total_denials)) } " denials, " (window_text(a)) }
                                }
                                @if alerts.len() > MAX_KEY_ALERTS {
                                    li.cut { "and " (alerts.len() - MAX_KEY_ALERTS) " more" }
                                }
                                @if suppressed > 0 {
                                    li.cut {
                                        (count(suppressed, "more window")) " above the threshold, suppressed: one alert per key per "
                                        (self.input.config.suppress_minutes) " minutes"
                                    }
                                }
                            }
                        }
                    }
                    (evidence("Source IPs", &s.source_ips))
                    (evidence("User agents", &s.user_agents))
                    (evidence("Regions", &s.regions))
                    (evidence("Operations", &s.operations))
                    (evidence("Error messages", &s.error_messages))
                    dt { "Log objects" }
                    dd {
                        ul.plain {
                            @for o in &s.objects.shown { li { (id_cell(o, VALUE_CHARS)) } }
                            @if s.object_count > s.objects.shown.len() as u64 {
                                li.cut { "and " (num(s.object_count - s.objects.shown.len() as u64)) " more" }
                            }
                        }
                    }
                }
            }
        }
    }

    fn top_section(&self) -> Markup {
        let c = self.input.collector;
        let alert_counts = |field: fn(&DenialKey) -> &str| {
            let mut by: HashMap<&str, (u64, u64, u64)> = HashMap::new();
            for (id, s) in c.keys().iter().enumerate() {
                let e = by.entry(field(&s.key)).or_default();
                e.0 += s.denials;
                e.1 += 1;
                e.2 += self
                    .alerts_by_key
                    .get(&(id as KeyId))
                    .map_or(0, |v| v.len() as u64);
            }
            let total = by.len();
            let mut rows: Vec<(&str, (u64, u64, u64))> = by.into_iter().collect();
            rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
            rows.truncate(MAX_TOP_ROWS);
            (rows, total)
        };
        let tables = [
            ("Principals", alert_counts(|k| &k.user_id)),
            ("Models", alert_counts(|k| &k.model_id)),
            ("Accounts", alert_counts(|k| &k.account_id)),
        ];
        let mut ips: Vec<(&String, &super::collect::IpStats)> = c.source_ips().iter().collect();
        ips.sort_by(|a, b| {
            (b.1.exact + b.1.shared, b.1.exact)
                .cmp(&(a.1.exact + a.1.shared, a.1.exact))
                .then(a.0.cmp(b.0))
        });
        let ip_total = ips.len();
        ips.truncate(MAX_TOP_ROWS);
        html! {
            section #top {
                h2 { "Top principals, models, accounts and source IPs" small { "by denials" } }
                div.four {
                    @for (title, (rows, total)) in &tables {
                        div {
                            h3 { (title) small { (num(*total as u64)) " in all" } }
                            table.fixed.top {
                                tr { th { "" } th.n { "Denials" } th.n { "Keys" } th.n { "Alerts" } }
                                @for (v, (d, k, a)) in rows {
                                    tr.hot[*a > 0] {
                                        td { (id_cell(v, TABLE_ID_CHARS)) }
                                        td.n { (num(*d)) } td.n { (num(*k)) } td.n { (num(*a)) }
                                    }
                                }
                            }
                        }
                    }
                    div {
                        h3 { "Source IPs" small { (num(ip_total as u64)) " in all (CloudTrail records carry them)" } }
                        @if ips.is_empty() {
                            p.note { "No denial carried a source IP." }
                        } @else {
                            table.fixed.top.ips {
                                tr { th { "" } th.n { "Denials" } th.n { "Keys" } }
                                @for (ip, st) in &ips {
                                    tr {
                                        td { (id_cell(ip, TABLE_ID_CHARS)) }
                                        td.n {
                                            (num(st.exact))
                                            @if st.shared > 0 { " to " (num(st.exact + st.shared)) }
                                        }
                                        td.n { (num(st.keys.len() as u64)) }
                                    }
                                }
                            }
                            p.note { "A log object lists the distinct source IPs of one key's denials but not how many each made: where it lists several, their denials are shared, hence a range." }
                        }
                    }
                }
            }
        }
    }

    fn tuning_section(&self) -> Markup {
        let tn = &self.tuning;
        let cfg = self.input.config;
        let (conf, conf_without) = tn.configured();
        let r = &self.input.totals.counts;
        let same = conf.published == r.alerts_published
            && conf.suppressed == r.alerts_suppressed
            && conf.excepted == r.alerts_excepted;
        html! {
            section #tuning {
                h2 { "Tuning" small { "alerts and distinct keys this scan would raise at each threshold and window" } }
                table.tune {
                    tr {
                        th { "Alert when a window holds more than" }
                        @for w in &tn.windows {
                            th { (u64::from(*w) * u64::from(tn.bucket_minutes)) "-minute window" }
                        }
                    }
                    @for th_ in &tn.thresholds {
                        tr {
                            td { b { (th_) } }
                            @for w in &tn.windows {
                                @if let Some((with, without)) = tn.cell(*th_, *w) {
                                    td.cfg[*th_ == tn.configured_threshold && *w == tn.configured_window]
                                        data-threshold=(th_) data-window-buckets=(w) {
                                        (cell(with, without))
                                    }
                                }
                            }
                        }
                    }
                }
                p.note {
                    "Outlined: the configured setting, whose alerts are this scan's ("
                    @if same { "the same " (num(conf.published)) ", replayed" } @else { "replayed: " (num(conf.published)) "; the scan published " (num(r.alerts_published)) }
                    "). Each cell replays the scan's counts in the order they were counted, with the detector's window evaluation, exception rules and "
                    (cfg.suppress_minutes) "-minute suppression."
                }
                @if let Some(without) = conf_without {
                    h3 { "What the exception rules removed" }
                    p {
                        "At the configured setting the rules leave " b { (num(conf.published)) } " on " (count(conf.keys, "key")) "; without them there would be "
                        b { (num(without.published)) } " on " (count(without.keys, "key")) ". "
                        "Windows above the threshold of a key whose alerts a rule stops: " (num(conf.excepted)) "."
                    }
                    (self.rules_effect(conf, without))
                }
            }
        }
    }

    /// Per rule: the keys it applies to in this scan and their alerts with and without
    /// the rules, at the configured setting.
    fn rules_effect(&self, with: &Outcome, without: &Outcome) -> Markup {
        let c = self.input.collector;
        let rules = self.input.config.exceptions.rules();
        let mut keys = vec![0u64; rules.len()];
        let mut denials = vec![0u64; rules.len()];
        let mut index: HashMap<KeyId, usize> = HashMap::new();
        for (id, s) in c.keys().iter().enumerate() {
            if let Some(r) = self.rule(&s.key) {
                if let Some(n) = rules.iter().position(|x| std::ptr::eq(x, r)) {
                    keys[n] += 1;
                    denials[n] += s.denials;
                    index.insert(id as KeyId, n);
                }
            }
        }
        let per_rule = |o: &Outcome| {
            let mut n = vec![0u64; rules.len()];
            for a in &o.alerts {
                if let Some(r) = index.get(&a.key) {
                    n[*r] += 1;
                }
            }
            n
        };
        let (after, before) = (per_rule(with), per_rule(without));
        html! {
            table {
                tr { th.n { "Rule" } th { "Applies to" } th { "Does" } th { "Reason" } th.n { "Keys" } th.n { "Denials" } th.n { "Alerts without rules" } th.n { "with" } }
                @for (n, rule) in rules.iter().enumerate().take(MAX_LISTED) {
                    tr {
                        td.n { (n + 1) }
                        td { (rule_fields(rule)) }
                        td { @match rule.threshold { Some(t) => { "threshold " (t) }, None => "stops alerts" } }
                        td { (shown(&rule.reason, TABLE_ID_CHARS)) }
                        td.n { (num(keys[n])) } td.n { (num(denials[n])) }
                        td.n { (num(before[n])) } td.n { (num(after[n])) }
                    }
                }
            }
            @if rules.len() > MAX_LISTED {
                p.note { "And " (rules.len() - MAX_LISTED) " more rules." }
            }
        }
    }
}

fn window_text(a: &Alert) -> String {
    match (
        DateTime::parse_from_rfc3339(&a.window.start),
        DateTime::parse_from_rfc3339(&a.window.end),
    ) {
        (Ok(s), Ok(e)) => span(s.timestamp(), e.timestamp()),
        _ => format!("{} – {}", a.window.start, a.window.end),
    }
}

fn evidence(label: &str, v: &Values) -> Markup {
    html! {
        @if !v.shown.is_empty() {
            dt { (label) }
            dd {
                ul.plain {
                    @for x in &v.shown { li { (id_cell(x, VALUE_CHARS)) } }
                    @if v.more { li.cut { "and more" } }
                }
            }
        }
    }
}

fn rule_fields(rule: &ExceptionRule) -> Markup {
    let fields = [
        ("user.id", &rule.user_id),
        ("gen_ai.request.model.id", &rule.model_id),
        ("cloud.account.id", &rule.account_id),
    ];
    let named: Vec<(&str, String)> = fields
        .into_iter()
        .filter_map(|(name, p)| p.as_ref().map(|p| (name, p.to_string())))
        .collect();
    html! {
        @for (n, (name, pattern)) in named.iter().enumerate() {
            @if n > 0 { " and " }
            (name) " = " span.id { (shown(pattern, TABLE_ID_CHARS)) }
        }
    }
}

fn rules_list(cfg: &Config, now: i64) -> Markup {
    let rules = cfg.exceptions.rules();
    html! {
        @if rules.is_empty() {
            "none"
        } @else {
            ul.plain {
                @for (n, r) in rules.iter().enumerate().take(MAX_LISTED) {
                    li {
                        (n + 1) ". " (rule_fields(r)) ": "
                        @match r.threshold { Some(t) => { "threshold " (t) }, None => "stops alerts" }
                        " (" (shown(&r.reason, TABLE_ID_CHARS)) ")"
                        @if let Some(u) = r.until {
                            " (until " (at(u)) @if !r.is_active(now) { ", ended" } ")"
                        }
                    }
                }
                @if rules.len() > MAX_LISTED {
                    li.cut { "and " (rules.len() - MAX_LISTED) " more" }
                }
            }
        }
    }
}

fn cell(with: &Outcome, without: Option<&Outcome>) -> Markup {
    html! {
        b { (num(with.published)) } @if with.published == 1 { " alert" } @else { " alerts" }
        " · " (count(with.keys, "key"))
        @if let Some(w) = without {
            @if w.published != with.published || w.keys != with.keys {
                span.wo { "without rules: " (count(w.published, "alert")) " · " (count(w.keys, "key")) }
            }
        }
    }
}

/// The report's HTML, with the tuning table worked out from the same scan: at most
/// [`MAX_REPORT_BYTES`].
pub fn render(input: &ReportInput, tuning: &Tuning) -> String {
    render_within(input, tuning, MAX_REPORT_BYTES)
}

/// The page in at most `max_bytes`, halving the key sections until it fits (the rest
/// of the page is bounded well below [`MAX_REPORT_BYTES`] by its own limits).
pub(super) fn render_within(input: &ReportInput, tuning: &Tuning, max_bytes: usize) -> String {
    let mut sections = MAX_KEY_SECTIONS;
    loop {
        let html = Page::new(input, tuning, sections).render();
        if html.len() <= max_bytes || sections == 0 {
            return html;
        }
        sections /= 2;
    }
}
