//! The report as one self-contained HTML page: inline CSS and SVG, no script, a
//! Content-Security-Policy that forbids loading anything, and bounded lists, so the
//! file stays small whatever the scan (docs/DESIGN.md, "The investigator's report").
//!
//! Every value from logs goes through [`shown`]: the template escapes HTML, and
//! control and bidirectional-formatting characters are written out visibly as
//! `\u{..}` (the email's [`text_escape`]), each id cut to a fixed length. Ids never go
//! into attributes: links name keys by their index.

use super::chart::{chart, Chart, MAX_BARS};
use super::collect::{KeyId, KeyStats};
use super::limits::*;
use super::replay::{Outcome, Tuning};
use super::style::CSS;
use super::values::*;
use super::{ReportInput, ScanTotals};
use crate::alert::{Alert, RULE_ID, RULE_NAME, SEVERITY};
use crate::exceptions::ExceptionRule;
use crate::key::DenialKey;
use crate::window::{Bucket, WindowSpec, WindowTotal};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::{BTreeSet, HashMap};

/// Nothing may load or run: no script, no fetch, no frame, no form.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

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
                                a href="#rules" { "Other rules" }
                                a href="#keys" { "Keys" }
                                a href="#top" { "Top tables" }
                                a href="#tuning" { "Tuning" }
                            }
                        }
                    }
                    main.wrap {
                        (self.scan_section(t))
                        (self.alerts_section())
                        (super::rules::rules_section(i, self.tuning))
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
                            th.n { "Denials" } th { "Window (UTC)" } th.n { "Threshold" } th { "Rule" }
                        }
                        @for (n, a) in alerts.iter().enumerate().take(MAX_ALERT_ROWS) {
                            @let key = self.alert_keys[n];
                            tr.hot {
                                td.n { (n + 1) }
                                td { (self.key_link(key, id_cell(&a.user_id, TABLE_ID_CHARS))) }
                                td {
                                    @if a.model_id.is_empty() && !a.models.is_empty() {
                                        (num(a.models.len() as u64)) " models"
                                    } @else {
                                        (id_cell(&a.model_id, TABLE_ID_CHARS))
                                    }
                                }
                                td { (id_cell(&a.account_id, TABLE_ID_CHARS)) }
                                td.n { b { (num(a.total_denials)) } }
                                td.t { (window_text(a)) }
                                td.n { (num(a.threshold)) }
                                td { (a.rule.rule().what) }
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
                (tuning_table(tn, "Alert when a window holds more than"))
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
