//! One key's timeline as inline SVG, written through the template like the rest of
//! the page: denials per bucket above, the sum of the window ending at each bucket
//! below, with the threshold as a dashed line and the alerts marked on their windows.
//!
//! A long range is drawn in at most [`MAX_BARS`] bars of several buckets each (a bar
//! holds their sum, the line the largest window sum among them), the bars as one
//! path, and at most [`MAX_MARKS`] alerts, so a chart's size is bounded whatever the
//! range and however many alerts.

use crate::window::{Bucket, WindowSpec};
use chrono::{DateTime, Timelike};
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Bars per chart at most.
pub const MAX_BARS: i64 = 288;
/// Alerts marked per chart at most (the largest; one per bar).
pub const MAX_MARKS: usize = 60;
/// Alerts labelled with their total at most (more are marked only).
const MAX_LABELLED_ALERTS: usize = 30;
/// Room an alert's label takes, in chart units.
const LABEL_WIDTH: f64 = 52.0;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 14.0;
const BARS_TOP: f64 = 24.0;
const BARS_HEIGHT: f64 = 60.0;
const SUMS_TOP: f64 = 128.0;
const SUMS_HEIGHT: f64 = 96.0;
const HEIGHT: f64 = 250.0;

/// What one chart shows.
#[derive(Debug)]
pub struct Chart<'a> {
    /// Denials per bucket of this key.
    pub counts: &'a BTreeMap<Bucket, u64>,
    pub spec: WindowSpec,
    /// First and last bucket shown.
    pub first: Bucket,
    pub last: Bucket,
    /// The key's threshold.
    pub threshold: u64,
    /// Alerts as (window's last bucket, total).
    pub alerts: &'a [(Bucket, u64)],
}

/// Sums of the windows ending at each bucket of `first..=last` that holds any.
fn window_sums(
    counts: &BTreeMap<Bucket, u64>,
    spec: &WindowSpec,
    first: Bucket,
    last: Bucket,
) -> BTreeMap<Bucket, u64> {
    let w = spec.window_buckets();
    let mut ends = BTreeSet::new();
    for (&b, _) in counts.range(first.saturating_sub(w - 1)..=last) {
        ends.extend(b.max(first)..=(b + w - 1).min(last));
    }
    ends.into_iter()
        .map(|end| {
            let sum = counts
                .range(spec.window_first(end)..=end)
                .map(|(_, n)| n)
                .sum();
            (end, sum)
        })
        .collect()
}

/// Minutes between two time labels: the first of these that leaves at most 8 labels.
const TICK_MINUTES: [i64; 14] = [
    10, 20, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200, 525_600,
];

fn tick_label(t: i64, step_minutes: i64, with_date: bool) -> String {
    let Some(d) = DateTime::from_timestamp(t, 0) else {
        return String::new();
    };
    if step_minutes >= 1440 {
        d.format("%Y-%m-%d").to_string()
    } else if with_date || (d.hour() == 0 && d.minute() == 0) {
        d.format("%m-%d %H:%M").to_string()
    } else {
        d.format("%H:%M").to_string()
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The chart's SVG.
pub fn chart(c: &Chart) -> Markup {
    let spec = &c.spec;
    let buckets = (c.last - c.first + 1).max(1);
    let per = (buckets + MAX_BARS - 1) / MAX_BARS;
    let bins = ((buckets + per - 1) / per) as usize;
    let plot = WIDTH - LEFT - RIGHT;
    let bar_w = plot / bins as f64;
    let bin_of = |b: Bucket| ((b - c.first) / per) as usize;
    let x_of_bin = |i: usize| LEFT + i as f64 * bar_w;

    let mut bars = vec![0u64; bins];
    for (&b, &n) in c.counts.range(c.first..=c.last) {
        bars[bin_of(b)] += n;
    }
    let mut sums = vec![0u64; bins];
    for (end, s) in window_sums(c.counts, spec, c.first, c.last) {
        let v = &mut sums[bin_of(end)];
        *v = (*v).max(s);
    }
    let bars_max = bars.iter().copied().max().unwrap_or(0).max(1);
    let sums_top = sums
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(c.threshold.saturating_add(1))
        .max(1);
    // A little headroom so the highest alert's label stays inside the chart.
    let sums_scale = sums_top as f64 * 1.15;
    let y_sum = |v: u64| SUMS_TOP + SUMS_HEIGHT - v as f64 / sums_scale * SUMS_HEIGHT;

    // The window sums as a step line, and the area under it.
    let mut steps = String::new();
    for (i, v) in sums.iter().enumerate() {
        let (x, y) = (round1(x_of_bin(i)), round1(y_sum(*v)));
        if i == 0 {
            let _ = write!(steps, "M{x} {y}");
        } else {
            let _ = write!(steps, "H{x}V{y}");
        }
    }
    let _ = write!(steps, "H{}", round1(LEFT + plot));
    let area = format!(
        "{steps}V{}H{}Z",
        round1(SUMS_TOP + SUMS_HEIGHT),
        round1(LEFT)
    );

    // One mark per bar (its largest alert), the largest MAX_MARKS of them, and their
    // windows as bands, merged where they overlap.
    let mut by_bin: BTreeMap<usize, (Bucket, u64)> = BTreeMap::new();
    for &(end, total) in c.alerts {
        if end >= c.first && end <= c.last {
            let m = by_bin.entry(bin_of(end)).or_insert((end, total));
            if total > m.1 {
                *m = (end, total);
            }
        }
    }
    let mut marks: Vec<(usize, Bucket, u64)> = by_bin
        .into_iter()
        .map(|(bin, (end, total))| (bin, end, total))
        .collect();
    if marks.len() > MAX_MARKS {
        marks.sort_by_key(|m| (std::cmp::Reverse(m.2), m.0));
        marks.truncate(MAX_MARKS);
        marks.sort_unstable();
    }
    let mut bands: Vec<(usize, usize)> = Vec::new();
    for &(bin, end, _) in &marks {
        let from = bin_of(spec.window_first(end).max(c.first));
        match bands.last_mut() {
            Some(last) if from <= last.1 + 1 => last.1 = last.1.max(bin),
            _ => bands.push((from, bin)),
        }
    }
    // Labels where they do not run into the previous one.
    let mut labelled = Vec::with_capacity(marks.len());
    let mut last_label = f64::MIN;
    for &(bin, _, _) in &marks {
        let x = x_of_bin(bin) + bar_w / 2.0;
        let room = marks.len() <= MAX_LABELLED_ALERTS && x - last_label >= LABEL_WIDTH;
        if room {
            last_label = x;
        }
        labelled.push(room);
    }

    // The bars, as one path of rectangles.
    let bars_base = BARS_TOP + BARS_HEIGHT;
    let gap = if bar_w > 3.0 { 1.0 } else { 0.0 };
    let width = round1((bar_w - gap).max(0.8));
    let mut bar_path = String::new();
    for (i, v) in bars.iter().enumerate() {
        if *v > 0 {
            let h = round1((*v as f64 / bars_max as f64 * BARS_HEIGHT).max(1.5));
            let _ = write!(
                bar_path,
                "M{} {}h{width}v-{h}h-{width}z",
                round1(x_of_bin(i)),
                round1(bars_base)
            );
        }
    }

    // Time labels.
    let bucket_seconds = spec.bucket_seconds();
    let start = spec.bucket_start(c.first);
    let span = buckets * bucket_seconds;
    let step = TICK_MINUTES
        .iter()
        .copied()
        .find(|m| span / (m * 60) <= 8 && m * 60 >= bucket_seconds)
        .unwrap_or(525_600);
    let step_s = step * 60;
    let mut ticks = Vec::new();
    let mut t = start.div_euclid(step_s) * step_s;
    if t < start {
        t += step_s;
    }
    while t <= start + span && ticks.len() < 16 {
        let x = LEFT + (t - start) as f64 / span as f64 * plot;
        ticks.push((round1(x), tick_label(t, step, ticks.is_empty())));
        t += step_s;
    }

    let bucket_minutes = bucket_seconds / 60;
    let window_minutes = bucket_minutes * spec.window_buckets();
    let bar_label = if per == 1 {
        format!("Denials per {bucket_minutes} minutes")
    } else {
        format!(
            "Denials per {} minutes (each bar {per} buckets)",
            per * bucket_minutes
        )
    };
    let sum_label = format!(
        "Denials in the {window_minutes} minutes ending at each bucket{}",
        if per == 1 {
            ""
        } else {
            " (each step the largest in its bar)"
        }
    );
    let sums_base = SUMS_TOP + SUMS_HEIGHT;
    let y_threshold = round1(y_sum(c.threshold));
    let plot_right = round1(LEFT + plot);

    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT)
            role="img" aria-label={ (bar_label) "; " (sum_label) } {
            // Grid and time labels.
            @for (x, label) in &ticks {
                line.grid x1=(x) x2=(x) y1=(BARS_TOP) y2=(sums_base) {}
                text.tick x=(x) y=(HEIGHT - 8.0) text-anchor="middle" { (label) }
            }
            // Alert windows, across both panels.
            @for (from, to) in &bands {
                rect.band x=(round1(x_of_bin(*from))) y=(BARS_TOP)
                    width=(round1(x_of_bin(*to) + bar_w - x_of_bin(*from))) height=(sums_base - BARS_TOP) {}
            }
            text.panel x=(LEFT) y=(BARS_TOP - 8.0) { (bar_label) }
            text.axis x=(LEFT - 6.0) y=(BARS_TOP + 4.0) text-anchor="end" { (bars_max) }
            text.axis x=(LEFT - 6.0) y=(bars_base) text-anchor="end" { "0" }
            path.bar d=(bar_path) {}
            line.base x1=(LEFT) x2=(plot_right) y1=(bars_base) y2=(bars_base) {}

            text.panel x=(LEFT) y=(SUMS_TOP - 8.0) { (sum_label) }
            text.axis x=(LEFT - 6.0) y=(SUMS_TOP + 4.0) text-anchor="end" { (sums_top) }
            text.axis x=(LEFT - 6.0) y=(sums_base) text-anchor="end" { "0" }
            path.area d=(area) {}
            path.sum d=(steps) {}
            line.base x1=(LEFT) x2=(plot_right) y1=(sums_base) y2=(sums_base) {}
            line.threshold x1=(LEFT) x2=(plot_right) y1=(y_threshold) y2=(y_threshold) {}
            text.threshold x=(plot_right) y=(y_threshold - 4.0) text-anchor="end" {
                "threshold " (c.threshold) " (alerts above)"
            }
            @for (i, (bin, _, total)) in marks.iter().enumerate() {
                @let x = round1(x_of_bin(*bin) + bar_w / 2.0);
                @let y = round1(y_sum(*total));
                circle.alert cx=(x) cy=(y) r="4.5" {}
                @if labelled[i] {
                    text.alert x=(x) y=(y - 8.0) text-anchor="middle" { "alert " (total) }
                }
            }
        }
    }
}
