//! How the report shows values: numbers, times and spans, and every value from logs as
//! inert text ([`shown`]), cut to a fixed length; the small renderings of an alert's
//! window, its evidence and an exception rule.

use super::collect::{KeyId, Values};
use super::limits::{MAX_LISTED, TABLE_ID_CHARS, VALUE_CHARS};
use super::replay::Outcome;
use crate::alert::{text_escape, Alert};
use crate::config::Config;
use crate::exceptions::ExceptionRule;
use crate::text::prefix_chars;
use crate::window::{WindowSpec, WindowTotal};
use chrono::DateTime;
use maud::{html, Markup};

/// `12,345`.
pub(super) fn num(n: u64) -> String {
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
pub(super) fn sentence_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `skipped-lines` for `skipped lines`: an id from a summary line's name.
pub(super) fn slug(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// `1 alert`, `3 alerts`.
pub(super) fn count(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {one}s", num(n))
    }
}

/// `2026-03-14 09:10` (UTC).
pub(super) fn at(epoch_seconds: i64) -> String {
    DateTime::from_timestamp(epoch_seconds, 0).map_or_else(
        || format!("@{epoch_seconds}"),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `2026-03-14 08:20 – 09:20`, the date once when both ends share it.
pub(super) fn span(start: i64, end: i64) -> String {
    let (a, b) = (at(start), at(end));
    match (a.split_once(' '), b.split_once(' ')) {
        (Some((da, _)), Some((db, tb))) if da == db => format!("{a} – {tb}"),
        _ => format!("{a} – {b}"),
    }
}

/// One piece of an escaped value: text as it is, a character written out, or a place
/// where the line may break.
pub(super) enum Piece<'a> {
    Text(&'a str),
    Escape(&'a str),
    Break,
}

/// Splits [`text_escape`] output into text and `\u{..}` escapes (it escapes `\`
/// itself, so every `\u{` starts an escape).
pub(super) fn pieces(escaped: &str) -> Vec<Piece<'_>> {
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
pub(super) const COUNT_REST_BYTES: usize = 1 << 20;

/// Text between two optional line breaks at least (ARNs and paths break after `/` and
/// `:`; runs of separators get one break, so a hostile id cannot multiply them).
pub(super) const MIN_BREAK_SPACING: usize = 6;

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

pub(super) fn id_cell(value: &str, max_chars: usize) -> Markup {
    html! { span.id { (shown(value, max_chars)) } }
}

/// An alert's window as (last bucket, total), from its RFC 3339 window end.
pub(super) fn alert_window(alert: &Alert, spec: &WindowSpec) -> Option<WindowTotal> {
    let end = DateTime::parse_from_rfc3339(&alert.window.end).ok()?;
    Some(WindowTotal {
        end: spec.bucket_of(end.timestamp()) - 1,
        total: alert.total_denials,
    })
}

pub(super) fn anchor(id: KeyId) -> String {
    format!("key-{id}")
}

pub(super) fn window_text(a: &Alert) -> String {
    match (
        DateTime::parse_from_rfc3339(&a.window.start),
        DateTime::parse_from_rfc3339(&a.window.end),
    ) {
        (Ok(s), Ok(e)) => span(s.timestamp(), e.timestamp()),
        _ => format!("{} – {}", a.window.start, a.window.end),
    }
}

pub(super) fn evidence(label: &str, v: &Values) -> Markup {
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

pub(super) fn rule_fields(rule: &ExceptionRule) -> Markup {
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

pub(super) fn rules_list(cfg: &Config, now: i64) -> Markup {
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

pub(super) fn cell(with: &Outcome, without: Option<&Outcome>) -> Markup {
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

/// A tuning table: a row per threshold, a column per window, the configured cell
/// outlined; `corner` says what a threshold counts.
pub(super) fn tuning_table(tn: &super::Tuning, corner: &str) -> Markup {
    html! {
        table.tune {
            tr {
                th { (corner) }
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
    }
}
