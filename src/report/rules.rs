//! The report's section of the rules beside the seed rule (docs/DESIGN.md, "Rules"):
//! per rule, its alerts and its most denied groups. The key sections, top tables and
//! tuning table before and after it are the seed rule's.

use super::collect::GroupStats;
use super::collect::MAX_REPLAYED_ENTRIES;
use super::limits::{MAX_RULE_ALERTS, MAX_TOP_ROWS, TABLE_ID_CHARS};
use super::values::{count, id_cell, num, slug, tuning_table, window_text};
use super::{ReportInput, Tuning};
use crate::alert::Alert;
use crate::key::{DenialKey, RuleTag};
use crate::rule::{rule, Rule};
use maud::{html, Markup};

/// One `section#rules`, with an `article.rule` per rule other than the seed rule.
pub(super) fn rules_section(input: &ReportInput, tuning: &Tuning) -> Markup {
    let others = RuleTag::ALL.into_iter().filter(|t| *t != RuleTag::Seed);
    html! {
        section #rules {
            h2 { "Other rules" small { "the rules beside the ported one: their alerts and most denied groups" } }
            @for tag in others {
                (rule_article(input, tag, tuning.others.iter().find(|(t, _)| *t == tag).map(|(_, tn)| tn.as_ref())))
            }
        }
    }
}

fn rule_article(input: &ReportInput, tag: RuleTag, tuning: Option<Option<&Tuning>>) -> Markup {
    let r: &Rule = rule(tag);
    let on = input.config.rules.has(tag);
    let alerts: Vec<&Alert> = input
        .alerts
        .iter()
        .filter(|a| a.key().rule == tag)
        .collect();
    let groups = input.collector.groups(tag);
    let denials: u64 = groups.iter().map(|(_, g)| g.denials).sum();
    let what = if tag == RuleTag::Validation {
        "validation errors"
    } else {
        "denials"
    };
    html! {
        article.rule id={ "rule-" (slug(r.id)) } data-rule=(r.id) {
            h3 { (r.name) small { (r.id) " · severity " (r.severity) } }
            p.note { "Takes " (r.takes) "; groups by " (r.groups_by) "; fires when " (r.fires_when) "." }
            @if !on {
                p.note { "Off in this scan (RULES, --rules)." }
            } @else {
                p.count {
                    (count(alerts.len() as u64, "alert")) " · "
                    (count(groups.len() as u64, "group")) " · " (num(denials)) " " (what)
                }
                @if !alerts.is_empty() {
                    table.fixed.alerts {
                        tr {
                            th.n { "#" } th { "Principal (user.id)" } th { "Model, models or sessions" }
                            th { "Account" } th.n { "Total" } th { "Window (UTC)" }
                        }
                        @for (n, a) in alerts.iter().enumerate().take(MAX_RULE_ALERTS) {
                            tr.hot {
                                td.n { (n + 1) }
                                td { (id_cell(&a.user_id, TABLE_ID_CHARS)) }
                                td { (what_of(a)) }
                                td { (id_cell(&a.account_id, TABLE_ID_CHARS)) }
                                td.n { b { (num(a.total_denials)) } }
                                td.t { (window_text(a)) }
                            }
                        }
                    }
                    @if alerts.len() > MAX_RULE_ALERTS {
                        p.note { "And " (num((alerts.len() - MAX_RULE_ALERTS) as u64)) " more alerts of this rule." }
                    }
                }
                @if !groups.is_empty() {
                    h4 { "Most denied groups" small { (num(groups.len() as u64)) " in all" } }
                    table.fixed.groups {
                        tr { th { "Principal" } th { "Model" } th { "Account" } th.n { (what) } th.n { "Objects" } th.n { "Alerts" } }
                        @for (key, g) in groups.iter().take(MAX_TOP_ROWS) {
                            (group_row(key, g, &alerts))
                        }
                    }
                }
                @match tuning {
                    Some(Some(tn)) => {
                        h4 { "Tuning" small { "alerts and groups this scan would raise at each threshold and window" } }
                        div.tuning { (tuning_table(tn, corner(tag))) }
                        p.note {
                            "Outlined: the rule's setting. Each cell replays the scan's "
                            @if tag == RuleTag::Validation { "counts" } @else { "sets" }
                            " in the order they were counted, with the rule's own decision, exception rules and "
                            (r.suppress_minutes) "-minute suppression."
                        }
                    }
                    Some(None) => {
                        p.note { "Not replayed: the scan held more than " (num(MAX_REPLAYED_ENTRIES as u64)) " (group, bucket) entries of this rule." }
                    }
                    None => {}
                }
            }
        }
    }
}

/// What a threshold of `tag` counts, for its tuning table.
fn corner(tag: RuleTag) -> &'static str {
    match tag {
        RuleTag::Validation => "Alert when a window holds more validation errors than",
        RuleTag::RoleSessions => {
            "Alert when a window holds more denied calls, from 2 sessions or more, than"
        }
        RuleTag::ManyModels => "Alert when a window holds more distinct models than",
        RuleTag::Seed => "Alert when a window holds more than",
    }
}

/// What an alert names beside its principal: the role rule's model and sessions, the
/// model rule's models, the validation rule's nothing.
fn what_of(a: &Alert) -> Markup {
    html! {
        @if !a.models.is_empty() {
            (num(a.models.len() as u64)) " models: " (a.models.join(", "))
        } @else if !a.sessions.is_empty() {
            (id_cell(&a.model_id, TABLE_ID_CHARS)) " · " (num(a.sessions.len() as u64)) " sessions"
        } @else {
            (id_cell(&a.model_id, TABLE_ID_CHARS))
        }
    }
}

fn group_row(key: &DenialKey, g: &GroupStats, alerts: &[&Alert]) -> Markup {
    let alerted = alerts.iter().filter(|a| a.key() == *key).count() as u64;
    html! {
        tr.hot[alerted > 0] {
            td { (id_cell(&key.user_id, TABLE_ID_CHARS)) }
            td { (id_cell(&key.model_id, TABLE_ID_CHARS)) }
            td { (id_cell(&key.account_id, TABLE_ID_CHARS)) }
            td.n { (num(g.denials)) }
            td.n { (num(g.objects)) }
            td.n { (num(alerted)) }
        }
    }
}
