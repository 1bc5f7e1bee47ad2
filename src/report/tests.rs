use super::*;
use crate::aggregate::Aggregate;
use crate::alert::{rfc3339, MemorySink};
use crate::detector::Detector;
use crate::exceptions::Exceptions;
use crate::identity::ObjectId;
use crate::key::{DenialKey, RuleTag};
use crate::logs::{Denial, DenialContext, RecordKind};
use crate::store::memory::MemoryStore;
use crate::testing::{memory_detector_with, ACCOUNT, MODEL, T0};
use crate::window::WindowSpec;
use proptest::prelude::*;
use scraper::{Html, Selector};
use std::collections::BTreeSet;

/// One denial: (user index, seconds after T0, source IP index).
type Planned = (usize, i64, usize);

fn user(i: usize) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/u{i}")
}

fn aggregate(denials: &[Planned], spec: &WindowSpec) -> Aggregate {
    let mut a = Aggregate::default();
    for (n, (u, t, ip)) in denials.iter().enumerate() {
        a.add(
            Denial {
                key: DenialKey::new(user(*u), MODEL, ACCOUNT),
                validation: false,
                event_time: T0 + t,
                request_id: Some(format!("r{n}")),
                source: RecordKind::BedrockInvocationLog,
                context: DenialContext {
                    source_ip: Some(format!("10.0.0.{ip}")),
                    region: Some("us-east-1".into()),
                    ..DenialContext::default()
                },
            },
            spec,
        );
    }
    a
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the detector over `objects` (an object named like an earlier one is a
/// redelivery) and records them as `scan --report` does.
fn detect(config: &Config, objects: &[(usize, Vec<Planned>)]) -> (Collector, Counts, Vec<Alert>) {
    let (c, r, a, _) = detect_with_store(config, objects);
    (c, r, a)
}

/// The store's counters, by (key, bucket).
type Counters = std::collections::BTreeMap<(DenialKey, i64), u64>;

/// [`detect`], and the store's counters at the end.
fn detect_with_store(
    config: &Config,
    objects: &[(usize, Vec<Planned>)],
) -> (Collector, Counts, Vec<Alert>, Counters) {
    let d = memory_detector_with(config.clone());
    let spec = config.window();
    let mut collector = Collector::new();
    let mut total = Counts::default();
    runtime().block_on(async {
        for (name, denials) in objects {
            let id = ObjectId::s3("logs", &format!("o{name}"), "e1");
            let agg = aggregate(denials, &spec);
            let report = d.record(&id, &agg).await.expect("memory never fails");
            collector.add(&id, &agg);
            total.add(&report);
        }
    });
    (collector, total, d.sink().alerts(), d.store().snapshot())
}

/// (user, window end, total, threshold) of each alert, sorted.
fn detector_alerts(alerts: &[Alert]) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.user_id.clone(),
                a.window.end.clone(),
                a.total_denials,
                a.threshold,
            )
        })
        .collect();
    v.sort();
    v
}

fn replayed_alerts(
    c: &Collector,
    spec: &WindowSpec,
    o: &Outcome,
) -> Vec<(String, String, u64, u64)> {
    let mut v: Vec<_> = o
        .alerts
        .iter()
        .map(|a| {
            (
                c.key(a.key).key.user_id.clone(),
                rfc3339(spec.window_bounds(a.window.end).1),
                a.window.total,
                a.threshold,
            )
        })
        .collect();
    v.sort();
    v
}

fn configured(config: &Config) -> Setting {
    Setting {
        threshold: config.threshold,
        window_buckets: config.window_buckets,
        exceptions: true,
        list: true,
    }
}

const RULES: &str = r#"[
  {"user.id": "arn:aws:iam::111122223333:user/u0", "reason": "known scanner"},
  {"user.id": "arn:aws:iam::111122223333:user/u1", "threshold": 6, "reason": "QA"}
]"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The replay of the configured setting is the detector's run: the same alerts
    /// (key, window, total, threshold), the same suppressed and excepted counts, on
    /// objects in any order (late logs included), redeliveries and exception rules.
    #[test]
    fn the_replay_of_the_configured_setting_is_the_detectors_run(
        objects in proptest::collection::vec(
            (0usize..12, proptest::collection::vec((0usize..4, 0i64..(8 * 3600), 0usize..3), 1..12)),
            1..14,
        ),
        threshold in 0u64..6,
        window_buckets in 1u32..9,
        bucket_minutes in prop_oneof![Just(1u32), Just(5), Just(10), Just(15)],
        suppress_minutes in prop_oneof![Just(0u32), Just(10), Just(60), Just(180)],
        rules in any::<bool>(),
    ) {
        let config = Config {
            threshold,
            window_buckets,
            bucket_minutes,
            suppress_minutes,
            exceptions: if rules { Exceptions::parse(RULES).expect("rules") } else { Exceptions::default() },
            // The replay decides what the rule raises; the alert ceilings only bound
            // how many of those a flood may send one by one.
            max_alerts_per_object: u32::MAX,
            max_alerts_per_account_hour: u32::MAX,
            ..Config::default()
        };
        // An object named again is the same content delivered again.
        let mut seen = std::collections::HashMap::new();
        let objects: Vec<(usize, Vec<Planned>)> = objects
            .into_iter()
            .map(|(name, denials)| (name, seen.entry(name).or_insert(denials).clone()))
            .collect();
        let (collector, report, alerts, store) = detect_with_store(&config, &objects);
        let out = runtime().block_on(replay(&collector, &config, T0, &[configured(&config)]));
        let spec = config.window();
        prop_assert_eq!(replayed_alerts(&collector, &spec, &out[0]), detector_alerts(&alerts));
        prop_assert_eq!(out[0].published, report.alerts_published);
        prop_assert_eq!(out[0].suppressed, report.alerts_suppressed);
        prop_assert_eq!(out[0].suppressed_by_key.values().sum::<u64>(), report.alerts_suppressed);
        prop_assert_eq!(out[0].excepted, report.alerts_excepted);
        let keys: BTreeSet<String> = alerts.iter().map(|a| a.user_id.clone()).collect();
        prop_assert_eq!(out[0].keys, keys.len() as u64);
        // What the collector kept per key is what the store holds.
        let kept: Counters = collector
            .keys()
            .iter()
            .flat_map(|k| k.buckets.iter().map(move |(b, n)| ((k.key.clone(), *b), *n)))
            .collect();
        prop_assert_eq!(kept, store);
    }

    /// Each cell of the tuning table is what a detector configured that way raises.
    #[test]
    fn every_cell_of_the_tuning_table_is_a_detector_run(
        objects in proptest::collection::vec(
            proptest::collection::vec((0usize..3, 0i64..(5 * 3600), 0usize..2), 1..10),
            1..8,
        ),
        rules in any::<bool>(),
    ) {
        let base = Config {
            exceptions: if rules { Exceptions::parse(RULES).expect("rules") } else { Exceptions::default() },
            ..Config::default()
        };
        let objects: Vec<(usize, Vec<Planned>)> = objects.into_iter().enumerate().collect();
        let (collector, _, _) = detect(&base, &objects);
        let tuning = runtime().block_on(Tuning::compute(&collector, &base, T0));
        prop_assert_eq!(&tuning.thresholds, &vec![1, 2, 3, 5, 10, 20, 50]);
        prop_assert_eq!(&tuning.windows, &vec![3, 6, 12]);
        prop_assert_eq!(tuning.without.is_some(), rules);
        for &t in &[1u64, 3, 10] {
            for &w in &[3u32, 12] {
                let config = Config { threshold: t, window_buckets: w, ..base.clone() };
                let (_, report, alerts) = detect(&config, &objects);
                let (with, without) = tuning.cell(t, w).expect("cell");
                prop_assert_eq!(with.published, report.alerts_published);
                let keys: BTreeSet<String> = alerts.iter().map(|a| a.user_id.clone()).collect();
                prop_assert_eq!(with.keys, keys.len() as u64);
                if let Some(without) = without {
                    let bare = Config { exceptions: Exceptions::default(), ..config };
                    let (_, report, _) = detect(&bare, &objects);
                    prop_assert_eq!(without.published, report.alerts_published);
                }
            }
        }
        // A key that alerts at a threshold alerts at every lower one.
        for w in 0..tuning.windows.len() {
            let keys: Vec<u64> = (0..tuning.thresholds.len()).map(|t| tuning.with[t * tuning.windows.len() + w].keys).collect();
            prop_assert!(keys.windows(2).all(|p| p[0] >= p[1]), "{:?}", keys);
        }
    }
}

/// Late logs, then the later object delivered again: the suppression that follows
/// depends on how the store keeps the last window it sent, and the replay keeps it
/// the store's way.
#[test]
fn a_late_object_then_a_redelivery_replay_as_the_store_decides() {
    let cases = [
        (
            Config {
                threshold: 0,
                window_buckets: 1,
                bucket_minutes: 1,
                suppress_minutes: 0,
                ..Config::default()
            },
            vec![
                (1, vec![(2, 21_600, 0), (2, 5400, 0), (2, 21_300, 0)]),
                (0, vec![(2, 5100, 0)]),
                (0, vec![(2, 5100, 0)]),
            ],
        ),
        (
            Config {
                threshold: 1,
                window_buckets: 12,
                ..Config::default()
            },
            vec![
                (0, vec![(0, 8400, 0)]),
                (1, vec![(0, 12_000, 0)]),
                (2, vec![(0, 1800, 0)]),
                (3, vec![(0, 1800, 0)]),
            ],
        ),
    ];
    for (config, objects) in cases {
        let (collector, report, alerts) = detect(&config, &objects);
        let out = runtime().block_on(replay(&collector, &config, T0, &[configured(&config)]));
        let spec = config.window();
        assert_eq!(
            replayed_alerts(&collector, &spec, &out[0]),
            detector_alerts(&alerts)
        );
        assert_eq!(
            (out[0].published, out[0].suppressed),
            (report.alerts_published, report.alerts_suppressed)
        );
    }
}

#[test]
fn a_redelivered_object_adds_nothing_but_is_evaluated() {
    let config = Config::default();
    let spec = config.window();
    let mut c = Collector::new();
    let id = ObjectId::s3("logs", "a", "e1");
    let agg = aggregate(&[(0, 0, 0), (0, 60, 1), (1, 0, 0)], &spec);
    c.add(&id, &agg);
    c.add(&id, &agg);
    assert_eq!(c.denials(), 3);
    assert_eq!(c.record().len(), 2);
    let counts: Vec<u64> = c
        .record()
        .objects()
        .map(|o| o.iter().map(|e| e.count).sum())
        .collect();
    assert_eq!(counts, vec![3, 0]);
    let k0 = c.key(0);
    assert_eq!(k0.object_count, 1);
    assert_eq!(k0.source_ips.shown, vec!["10.0.0.0", "10.0.0.1"]);
    // u0's two IPs share its denials; u1's one IP has its denial for sure.
    let ip0 = &c.source_ips()["10.0.0.0"];
    assert_eq!((ip0.exact, ip0.shared, ip0.keys.len()), (1, 2, 2));
}

#[test]
fn evidence_is_bounded_per_key() {
    let spec = WindowSpec::new(10, 6);
    let mut c = Collector::new();
    for i in 0..40 {
        let agg = aggregate(&[(0, i * 60, i as usize)], &spec);
        c.add(&ObjectId::s3("logs", &format!("o{i}"), "e"), &agg);
    }
    let k = c.key(0);
    assert_eq!(k.source_ips.shown.len(), MAX_EVIDENCE_VALUES);
    assert!(k.source_ips.more);
    assert_eq!(k.objects.shown.len(), MAX_KEY_OBJECTS);
    assert_eq!(k.object_count, 40);
    assert_eq!(k.denials, 40);
}

fn totals_of(c: &Collector, report: Counts, objects: u64) -> ScanTotals {
    let denials = c.denials();
    let mut counts = report;
    counts.objects = objects;
    counts.records = denials;
    counts.denials = denials;
    ScanTotals {
        counts,
        keys: Some(c.keys().len() as u64),
    }
}

fn page(config: &Config, objects: &[(usize, Vec<Planned>)]) -> (String, Vec<Alert>) {
    let (collector, report, alerts) = detect(config, objects);
    let totals = totals_of(&collector, report, objects.len() as u64);
    let inputs = vec!["logs/".to_string()];
    let html = html_of(&ReportInput {
        inputs: &inputs,
        config,
        totals: &totals,
        alerts: &alerts,
        collector: &collector,
        now: T0,
    });
    (html, alerts)
}

/// The page, with its tuning table, as `scan --report` writes it.
fn html_of(input: &ReportInput) -> String {
    let tuning = runtime().block_on(Tuning::compute(input.collector, input.config, input.now));
    render(input, &tuning)
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    let s = Selector::parse(css).expect("selector");
    doc.select(&s).collect()
}

fn text(e: &scraper::ElementRef) -> String {
    e.text().collect::<String>()
}

#[test]
fn the_page_is_self_contained_html_with_every_alert_linked_to_its_key() {
    let objects = vec![
        (0, vec![(0, 0, 0), (0, 60, 0), (0, 120, 1), (0, 180, 0)]),
        (1, vec![(1, 0, 2), (1, 1, 2), (2, 5, 0)]),
        (2, vec![(1, 1200, 2), (1, 1300, 2), (0, 4 * 3600, 0)]),
    ];
    let (html, alerts) = page(&Config::default(), &objects);
    assert_eq!(alerts.len(), 2);
    let doc = Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    assert!(select(&doc, "script").is_empty());
    let csp = select(&doc, r#"meta[http-equiv="Content-Security-Policy"]"#);
    assert_eq!(csp.len(), 1);
    assert_eq!(csp[0].value().attr("content"), Some(CSP));
    assert!(CSP.contains("default-src 'none'"));
    // Nothing is loaded from anywhere.
    for (tag, attr) in [("link", "href"), ("img", "src"), ("iframe", "src")] {
        assert!(select(&doc, &format!("{tag}[{attr}]")).is_empty(), "{tag}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    // One row per alert, each linking to a key section that exists.
    let rows = select(&doc, "#alerts tr.hot");
    assert_eq!(rows.len(), 2);
    let links = select(&doc, "#alerts tr.hot a");
    assert_eq!(links.len(), 2);
    for link in &links {
        let target = link.value().attr("href").expect("href");
        assert_eq!(select(&doc, target).len(), 1, "{target}");
    }
    // A section per key with denials, alerted keys first, each with its chart.
    let sections = select(&doc, "article.key");
    assert_eq!(sections.len(), 3);
    assert!(text(&sections[0]).contains("u0") || text(&sections[0]).contains("u1"));
    assert_eq!(select(&doc, "article.key svg.chart").len(), 3);
    // The threshold line and the alert marks are drawn.
    assert_eq!(select(&doc, "article.key line.threshold").len(), 3);
    assert_eq!(select(&doc, "article.key circle.alert").len(), 2);
    // The configured cell of the tuning table says what the run did.
    let cfg = select(&doc, "#tuning td.cfg");
    assert_eq!(cfg.len(), 1);
    assert!(
        text(&cfg[0]).starts_with("2 alerts · 2 keys"),
        "{}",
        text(&cfg[0])
    );
}

/// An id an attacker chose.
const HOSTILE: &str = "<script>alert(1)</script>\u{202E}gnp.exe\u{2066}x\u{2069}\u{200B}\"'><img src=x onerror=alert(2)>\u{7}";

fn is_bidi_or_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[test]
fn hostile_ids_render_as_inert_visible_text() {
    let config = Config {
        threshold: 1,
        exceptions: Exceptions::parse(&format!(
            r#"[{{"gen_ai.request.model.id": {}, "threshold": 1, "reason": {}}}]"#,
            serde_json::to_string(HOSTILE).expect("json"),
            serde_json::to_string(HOSTILE).expect("json")
        ))
        .expect("rules"),
        ..Config::default()
    };
    let spec = config.window();
    let key = DenialKey::new(HOSTILE, HOSTILE, HOSTILE);
    let mut agg = Aggregate::default();
    for t in 0..3 {
        agg.add(
            Denial {
                key: key.clone(),
                validation: false,
                event_time: T0 + t,
                request_id: Some(HOSTILE.into()),
                source: RecordKind::CloudTrail,
                context: DenialContext {
                    source_ip: Some(HOSTILE.into()),
                    user_agent: Some(HOSTILE.into()),
                    error_message: Some(HOSTILE.into()),
                    region: Some(HOSTILE.into()),
                    operation: Some(HOSTILE.into()),
                },
            },
            &spec,
        );
    }
    let d = memory_detector_with(config.clone());
    let id = ObjectId::s3("logs", HOSTILE, "e");
    let report = runtime().block_on(d.record(&id, &agg)).expect("ok");
    let mut collector = Collector::new();
    collector.add(&id, &agg);
    let alerts = d.sink().alerts();
    assert_eq!(alerts.len(), 1);
    let totals = totals_of(&collector, report, 1);
    let inputs = vec![HOSTILE.to_string()];
    let html = html_of(&ReportInput {
        inputs: &inputs,
        config: &config,
        totals: &totals,
        alerts: &alerts,
        collector: &collector,
        now: T0,
    });
    let doc = Html::parse_document(&html);
    assert!(select(&doc, "script").is_empty());
    assert!(select(&doc, "img").is_empty());
    assert!(!html.contains("<script") && !html.contains("<img"));
    let all: String = doc.root_element().text().collect();
    assert!(
        !all.chars().any(is_bidi_or_control),
        "raw control or bidi character"
    );
    assert!(!html.chars().any(is_bidi_or_control));
    // Shown, as text: the markup, and the formatting characters written out.
    assert!(all.contains("<script>alert(1)</script>"));
    assert!(all.contains("\\u{202e}gnp.exe\\u{2066}x\\u{2069}\\u{200b}"));
    assert!(all.contains("\\u{7}"));
    // No attribute carries an id.
    for e in doc
        .root_element()
        .descendants()
        .filter_map(scraper::ElementRef::wrap)
    {
        for (name, value) in e.value().attrs() {
            assert!(
                !value.contains("script") && !value.contains("gnp"),
                "{name}={value}"
            );
        }
    }
}

#[test]
fn shown_cuts_long_values_and_marks_escapes() {
    let long = "a".repeat(1000);
    let s = shown(&long, 100).into_string();
    assert!(s.contains(&"a".repeat(100)) && !s.contains(&"a".repeat(101)));
    assert!(s.contains("900 more characters"), "{s}");
    // Breaks after separators, at most one per few characters; escapes marked.
    let s = shown("arn:aws:iam::1:user/\u{202E}x", 100).into_string();
    assert_eq!(
        s,
        "arn:aws:<wbr>iam::1:<wbr>user/<span class=\"esc\">\\u{202e}</span>x"
    );
    assert_eq!(
        shown("////////////////////////", 100)
            .into_string()
            .matches("<wbr>")
            .count(),
        4
    );
    // A backslash is written out too, so no text can pose as an escape.
    assert_eq!(
        shown("a\\u{41}", 20).into_string(),
        "a<span class=\"esc\">\\u{5c}</span>u{41}"
    );
    // Escapes count towards the cut: 20 characters show at most.
    let s = shown(&"\u{202E}".repeat(100), 20).into_string();
    assert_eq!(s.matches("class=\"esc\"").count(), 2, "{s}");
    assert!(s.contains("98 more characters"), "{s}");
}

#[test]
fn a_year_long_range_is_drawn_in_a_bounded_number_of_bars() {
    // One denial a day for a year, and a burst: the chart keeps at most MAX_BARS bars,
    // and a second chart shows the burst one bucket per bar.
    let mut objects = Vec::new();
    for day in 0..365 {
        objects.push((day, vec![(0, day as i64 * 86_400, 0)]));
    }
    objects.push((999, (0..6).map(|i| (0, 100 * 86_400 + i * 60, 0)).collect()));
    let (html, alerts) = page(&Config::default(), &objects);
    assert_eq!(alerts.len(), 1);
    let doc = Html::parse_document(&html);
    let charts = select(&doc, "article.key svg.chart");
    assert_eq!(charts.len(), 2);
    // The bars are one path of rectangles, each closed by `z`.
    let bars = |svg: &scraper::ElementRef| {
        svg.descendants()
            .filter_map(scraper::ElementRef::wrap)
            .filter(|e| e.value().classes().any(|c| c == "bar"))
            .map(|e| e.value().attr("d").unwrap_or_default().matches('z').count())
            .sum::<usize>()
    };
    assert!(bars(&charts[0]) <= 288, "{}", bars(&charts[0]));
    assert!(bars(&charts[1]) >= 1);
    assert!(html.len() < 200_000, "{}", html.len());
}

#[test]
fn the_report_stays_small_for_thousands_of_hostile_keys() {
    // 2,900 keys whose ids, evidence and object names are long and hostile, over a
    // month: 20 keys with a burst every two hours (360 alerts each, dense charts with
    // a zoom), 1,440 more keys that alert once, 1,440 that never do.
    // Quotes and ampersands take the most bytes per character shown (`&quot;`).
    let long = format!("{}{}", HOSTILE, "\"&\u{202E}".repeat(400));
    // Every alert is delivered, beyond the ceilings that bound a real inbox: the report
    // must take them all.
    let config = Config {
        threshold: 1,
        max_alerts_per_object: u32::MAX,
        max_alerts_per_account_hour: u32::MAX,
        ..Config::default()
    };
    let spec = config.window();
    let sink = MemorySink::new();
    let d = Detector::new(config.clone(), MemoryStore::new(), sink.clone()).with_clock(|| T0);
    let mut collector = Collector::new();
    let mut total = Counts::default();
    let denial = |who: &str, n: i64, t: i64| Denial {
        key: DenialKey::new(who, format!("{long}m{n}"), format!("{long}a{n}")),
        validation: false,
        event_time: t,
        request_id: None,
        source: RecordKind::CloudTrail,
        context: DenialContext {
            source_ip: Some(format!("{long}ip{}", t % 7)),
            user_agent: Some(format!("{long}{}", t % 7)),
            error_message: Some(format!("{long}{}", t % 7)),
            region: Some(format!("{long}{}", t % 7)),
            operation: Some(format!("{long}{}", t % 7)),
        },
    };
    runtime().block_on(async {
        // One object every two hours for 30 days.
        for o in 0..360i64 {
            let at = T0 + o * 7200;
            let mut agg = Aggregate::default();
            for n in 0..20i64 {
                for i in 0..3 {
                    agg.add(denial(&format!("{long}{n}"), n, at + n * 60 + i), &spec);
                }
            }
            for k in 0..8i64 {
                let n = 100 + o * 8 + k;
                for i in 0..(1 + n % 2) {
                    agg.add(denial(&format!("{long}{n}"), n, at + k * 600 + i), &spec);
                }
            }
            let id = ObjectId::s3("logs", &format!("{long}{o}"), "e");
            let r = d.record(&id, &agg).await.expect("ok");
            collector.add(&id, &agg);
            total.add(&r);
        }
    });
    let alerts = sink.alerts();
    assert_eq!(collector.keys().len(), 20 + 360 * 8);
    assert_eq!(alerts.len(), 20 * 360 + 360 * 4);
    let totals = totals_of(&collector, total, 360);
    let inputs: Vec<String> = (0..100).map(|i| format!("{long}{i}")).collect();
    let html = html_of(&ReportInput {
        inputs: &inputs,
        config: &config,
        totals: &totals,
        alerts: &alerts,
        collector: &collector,
        now: T0,
    });
    assert!(html.len() < MAX_REPORT_BYTES, "{} bytes", html.len());
    // Asked for less, the page keeps fewer key sections and says so.
    let tuning = runtime().block_on(Tuning::compute(&collector, &config, T0));
    let input = ReportInput {
        inputs: &inputs,
        config: &config,
        totals: &totals,
        alerts: &alerts,
        collector: &collector,
        now: T0,
    };
    let small = html::render_within(&input, &tuning, html.len() / 2);
    assert!(small.len() <= html.len() / 2, "{}", small.len());
    let doc = Html::parse_document(&small);
    let kept = select(&doc, "article.key").len();
    assert!(kept < MAX_KEY_SECTIONS && kept > 0, "{kept}");
    assert!(text(&select(&doc, "#keys")[0]).contains("Fewer keys than usual"));
    let doc = Html::parse_document(&html);
    assert_eq!(select(&doc, "article.key").len(), MAX_KEY_SECTIONS);
    // Every section key is one of the busy ones, drawn with a zoom.
    assert_eq!(
        select(&doc, "article.key svg.chart").len(),
        2 * MAX_KEY_SECTIONS
    );
    assert!(select(&doc, "article.key circle.alert").len() <= 2 * MAX_KEY_SECTIONS * 60);
    assert_eq!(select(&doc, "#alerts tr.hot").len(), MAX_ALERT_ROWS);
    assert_eq!(
        select(&doc, "#keys > table tr").len(),
        MAX_OTHER_KEYS + 1,
        "header and rows"
    );
    assert!(select(&doc, "script").is_empty());
    let all: String = doc.root_element().text().collect();
    assert!(!all.chars().any(is_bidi_or_control));
    eprintln!(
        "{} keys, {} alerts: {} bytes",
        collector.keys().len(),
        alerts.len(),
        html.len()
    );
    for sec in select(&doc, "section") {
        eprintln!(
            "  section {:?}: {} bytes",
            sec.value().attr("id"),
            sec.html().len()
        );
    }
}

#[test]
fn the_other_rules_record_is_bounded_and_then_not_replayed() {
    let config = Config::default();
    let spec = config.window();
    let mut c = Collector::new();
    // Objects of a thousand new principals each, every one denied once: a group per
    // principal for the model rule, and for each role's model for the role rule.
    let objects = MAX_REPLAYED_ENTRIES / 1000 + 2;
    for o in 0..objects {
        let mut agg = Aggregate::default();
        for i in 0..1000 {
            agg.take(
                Denial {
                    key: DenialKey::new(
                        format!("arn:aws:iam::{ACCOUNT}:user/u{o}-{i}"),
                        MODEL,
                        ACCOUNT,
                    ),
                    validation: false,
                    event_time: T0,
                    request_id: Some(format!("r{o}-{i}")),
                    source: RecordKind::BedrockInvocationLog,
                    context: DenialContext::default(),
                },
                &spec,
                &config.rules,
            );
        }
        c.add(&ObjectId::s3("logs", &format!("o{o}"), "e"), &agg);
    }
    let record = c
        .rule_record(RuleTag::ManyModels)
        .expect("the model rule's record");
    assert!(record.is_cut());
    assert!(record.record().objects().map(<[Entry]>::len).sum::<usize>() <= MAX_REPLAYED_ENTRIES);
    assert!(record.members().len() <= MAX_REPLAYED_ENTRIES);
    let tuning = runtime().block_on(Tuning::compute(&c, &config, T0));
    let many = tuning
        .others
        .iter()
        .find(|(t, _)| *t == RuleTag::ManyModels);
    assert!(matches!(many, Some((_, None))), "not replayed");
}
