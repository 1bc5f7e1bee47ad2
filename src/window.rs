//! Bucket and window arithmetic (docs/DESIGN.md, "Buckets and windows"), free of I/O.
//!
//! Denials are counted in buckets of `BUCKET_MINUTES` of *event* time. A window is
//! `WINDOW_BUCKETS` consecutive buckets and is named by its last bucket. After an
//! object is counted, every window that contains a bucket the object touched is
//! evaluated; the one with the largest total (earliest on ties) is reported when its
//! total is strictly greater than the threshold.

use std::collections::{BTreeMap, BTreeSet};

/// Index of a bucket: `floor(epoch_seconds / bucket_seconds)`.
pub type Bucket = i64;

/// Bucket length and window width, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    bucket_seconds: i64,
    window_buckets: i64,
}

/// A window, named by its last bucket, with the denials it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTotal {
    /// Last bucket of the window; the window covers `end - window_buckets + 1 ..= end`.
    pub end: Bucket,
    pub total: u64,
}

impl WindowSpec {
    /// `bucket_minutes` and `window_buckets` must be at least 1 (checked by `Config`).
    pub fn new(bucket_minutes: u32, window_buckets: u32) -> Self {
        Self {
            bucket_seconds: i64::from(bucket_minutes.max(1)) * 60,
            window_buckets: i64::from(window_buckets.max(1)),
        }
    }

    pub fn bucket_seconds(&self) -> i64 {
        self.bucket_seconds
    }

    pub fn window_buckets(&self) -> i64 {
        self.window_buckets
    }

    /// The bucket an event at `epoch_seconds` falls into (floor, also before 1970).
    pub fn bucket_of(&self, epoch_seconds: i64) -> Bucket {
        epoch_seconds.div_euclid(self.bucket_seconds)
    }

    /// Start of a bucket in epoch seconds.
    pub fn bucket_start(&self, bucket: Bucket) -> i64 {
        bucket.saturating_mul(self.bucket_seconds)
    }

    /// First bucket of the window that ends at `end`.
    pub fn window_first(&self, end: Bucket) -> Bucket {
        end - (self.window_buckets - 1)
    }

    /// `[start, end)` of the window ending at bucket `end`, in epoch seconds.
    pub fn window_bounds(&self, end: Bucket) -> (i64, i64) {
        (
            self.bucket_start(self.window_first(end)),
            self.bucket_start(end + 1),
        )
    }

    /// The buckets to read to evaluate every window containing one of `touched`:
    /// `min - (W-1) ..= max + (W-1)`. `None` when nothing was touched.
    pub fn query_range(&self, touched: &BTreeSet<Bucket>) -> Option<(Bucket, Bucket)> {
        let first = *touched.first()?;
        let last = *touched.last()?;
        Some((
            first - (self.window_buckets - 1),
            last + (self.window_buckets - 1),
        ))
    }

    /// The last buckets of every window that contains a touched bucket, each once, in
    /// increasing order: `t ..= t + W - 1` for each touched `t`.
    pub fn window_ends<'a>(
        &'a self,
        touched: &'a BTreeSet<Bucket>,
    ) -> impl Iterator<Item = Bucket> + 'a {
        let mut next_end = Bucket::MIN;
        touched.iter().flat_map(move |&t| {
            let from = t.max(next_end);
            let to = t + self.window_buckets - 1;
            next_end = next_end.max(to + 1);
            from..=to
        })
    }

    /// The window with the largest total among those that contain at least one
    /// touched bucket; the earliest such window on ties. `None` when nothing was touched.
    pub fn best_window(
        &self,
        counts: &BTreeMap<Bucket, u64>,
        touched: &BTreeSet<Bucket>,
    ) -> Option<WindowTotal> {
        let mut best: Option<WindowTotal> = None;
        // Ends come in increasing order, so a strict `>` keeps the earliest on ties.
        for end in self.window_ends(touched) {
            let total: u64 = counts
                .range(self.window_first(end)..=end)
                .map(|(_, n)| *n)
                .sum();
            if best.as_ref().is_none_or(|b| total > b.total) {
                best = Some(WindowTotal { end, total });
            }
        }
        best
    }

    /// The best window when its total is strictly above `threshold`.
    pub fn alert_window(
        &self,
        counts: &BTreeMap<Bucket, u64>,
        touched: &BTreeSet<Bucket>,
        threshold: u64,
    ) -> Option<WindowTotal> {
        self.best_window(counts, touched)
            .filter(|w| w.total > threshold)
    }

    /// The non-empty buckets inside the window ending at `end`, oldest first.
    pub fn buckets_in_window(
        &self,
        counts: &BTreeMap<Bucket, u64>,
        end: Bucket,
    ) -> Vec<(Bucket, u64)> {
        counts
            .range(self.window_first(end)..=end)
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| (*b, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> WindowSpec {
        WindowSpec::new(10, 6)
    }

    /// Buckets and touched set from event times (seconds), one denial each.
    fn timeline(times: &[i64], s: &WindowSpec) -> (BTreeMap<Bucket, u64>, BTreeSet<Bucket>) {
        let mut counts = BTreeMap::new();
        let mut touched = BTreeSet::new();
        for t in times {
            let b = s.bucket_of(*t);
            *counts.entry(b).or_insert(0) += 1;
            touched.insert(b);
        }
        (counts, touched)
    }

    #[test]
    fn buckets_floor_including_before_epoch() {
        let s = spec();
        assert_eq!(s.bucket_of(0), 0);
        assert_eq!(s.bucket_of(599), 0);
        assert_eq!(s.bucket_of(600), 1);
        assert_eq!(s.bucket_of(-1), -1);
        assert_eq!(s.bucket_of(-600), -1);
        assert_eq!(s.bucket_of(-601), -2);
    }

    #[test]
    fn window_bounds_match_spec_example() {
        // 2026-03-14T09:00:00Z bucket; the earliest window holding it is 08:10-09:10.
        let s = spec();
        let t = 1_773_478_800; // 2026-03-14T09:00:00Z
        let b = s.bucket_of(t);
        let (start, end) = s.window_bounds(b);
        assert_eq!(start, t - 50 * 60);
        assert_eq!(end, t + 10 * 60);
    }

    #[test]
    fn denials_55_minutes_apart_meet() {
        let s = spec();
        let base = 1_773_478_800;
        // two at 09:00:00, two at 09:55:00: 55 minutes apart, buckets 09:00 and 09:50.
        let (c, t) = timeline(&[base, base + 1, base + 55 * 60, base + 55 * 60 + 1], &s);
        let w = s.alert_window(&c, &t, 3).expect("alert");
        assert_eq!(w.total, 4);
    }

    #[test]
    fn denials_70_minutes_apart_never_meet() {
        let s = spec();
        let base = 1_773_478_800;
        let (c, t) = timeline(&[base, base + 1, base + 70 * 60, base + 70 * 60 + 1], &s);
        assert_eq!(s.best_window(&c, &t).map(|w| w.total), Some(2));
        assert!(s.alert_window(&c, &t, 3).is_none());
    }

    #[test]
    fn bucket_boundary_59_59_and_next_hour() {
        let s = spec();
        let base = 1_773_478_800; // 09:00:00
                                  // 09:00:00 and 09:59:59 are in buckets 09:00 and 09:50: one window holds both.
        let (c, t) = timeline(&[base, base, base + 3599, base + 3599], &s);
        assert_eq!(s.alert_window(&c, &t, 3).map(|w| w.total), Some(4));
        // 09:00:00 and 10:00:00 are six buckets apart: never in one window.
        let (c, t) = timeline(&[base, base, base + 3600, base + 3600], &s);
        assert!(s.alert_window(&c, &t, 3).is_none());
    }

    #[test]
    fn threshold_is_strict() {
        let s = spec();
        let (c, t) = timeline(&[0, 1, 2], &s);
        assert!(s.alert_window(&c, &t, 3).is_none());
        let (c, t) = timeline(&[0, 1, 2, 3], &s);
        assert_eq!(s.alert_window(&c, &t, 3).map(|w| w.total), Some(4));
    }

    #[test]
    fn only_windows_with_touched_buckets_count() {
        let s = spec();
        // Stored history far away from what this object touched is not evaluated.
        let mut counts = BTreeMap::from([(100, 10)]);
        counts.insert(0, 1);
        let touched = BTreeSet::from([0]);
        assert_eq!(s.best_window(&counts, &touched).map(|w| w.total), Some(1));
    }

    #[test]
    fn earliest_window_wins_ties() {
        let s = spec();
        let counts = BTreeMap::from([(10, 4)]);
        let touched = BTreeSet::from([10]);
        let w = s.best_window(&counts, &touched).expect("window");
        assert_eq!(w, WindowTotal { end: 10, total: 4 });
        assert_eq!(s.buckets_in_window(&counts, w.end), vec![(10, 4)]);
    }

    #[test]
    fn query_range_spans_neighbouring_windows() {
        let s = spec();
        assert_eq!(s.query_range(&BTreeSet::from([10, 12])), Some((5, 17)));
        assert_eq!(s.query_range(&BTreeSet::new()), None);
    }

    /// Brute force: every window end from far before to far after; keep windows
    /// containing a touched bucket; largest total, earliest end on ties.
    fn oracle(
        s: &WindowSpec,
        counts: &BTreeMap<Bucket, u64>,
        touched: &BTreeSet<Bucket>,
    ) -> Option<WindowTotal> {
        let w = s.window_buckets();
        let lo = touched.first()? - 2 * w;
        let hi = touched.last()? + 2 * w;
        let mut best: Option<WindowTotal> = None;
        for end in lo..=hi {
            let first = end - w + 1;
            if !touched.iter().any(|t| (first..=end).contains(t)) {
                continue;
            }
            let mut total = 0;
            for b in first..=end {
                total += counts.get(&b).copied().unwrap_or(0);
            }
            match &best {
                Some(bw) if bw.total >= total => {}
                _ => best = Some(WindowTotal { end, total }),
            }
        }
        best
    }

    proptest! {
        #[test]
        fn best_window_matches_brute_force(
            bucket_minutes in 1u32..30,
            window_buckets in 1u32..9,
            history in proptest::collection::vec((-50i64..50, 1u64..4), 0..30),
            touched_offsets in proptest::collection::btree_set(-50i64..50, 1..8),
            threshold in 0u64..12,
        ) {
            let s = WindowSpec::new(bucket_minutes, window_buckets);
            let mut counts = BTreeMap::new();
            for (b, n) in history {
                *counts.entry(b).or_insert(0) += n;
            }
            // Touched buckets always hold at least one denial: this object added it.
            for t in &touched_offsets {
                *counts.entry(*t).or_insert(0) += 1;
            }
            let expected = oracle(&s, &counts, &touched_offsets);
            prop_assert_eq!(s.best_window(&counts, &touched_offsets), expected.clone());
            prop_assert_eq!(
                s.alert_window(&counts, &touched_offsets, threshold),
                expected.filter(|w| w.total > threshold)
            );
            // Everything evaluated lies inside the query range.
            let (lo, hi) = s.query_range(&touched_offsets).expect("range");
            if let Some(w) = s.best_window(&counts, &touched_offsets) {
                prop_assert!(s.window_first(w.end) >= lo && w.end <= hi);
            }
        }

        #[test]
        fn event_timelines_match_brute_force(
            times in proptest::collection::vec(0i64..(6 * 3600), 1..40),
            threshold in 0u64..8,
        ) {
            let s = spec();
            let (counts, touched) = timeline(&times, &s);
            // Brute force on raw times: any 60-minute bucket-aligned window.
            let mut best_total = 0u64;
            for end in (s.bucket_of(0) - 6)..=(s.bucket_of(6 * 3600) + 6) {
                let (ws, we) = s.window_bounds(end);
                let n = times.iter().filter(|t| **t >= ws && **t < we).count() as u64;
                best_total = best_total.max(n);
            }
            let got = s.best_window(&counts, &touched).map(|w| w.total).unwrap_or(0);
            prop_assert_eq!(got, best_total);
            prop_assert_eq!(s.alert_window(&counts, &touched, threshold).is_some(), best_total > threshold);
        }
    }
}
