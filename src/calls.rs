//! One call, one count (docs/DESIGN.md, "One call, one count"): the calls a
//! contribution tells, by request id and log, and what a (key, bucket)'s
//! contributions count when a call is told by both the invocation log and CloudTrail.
//!
//! A contribution keeps all its records and the calls they tell; a window read counts
//! each call as often as the log telling it more times does. The rule is applied when
//! reading, so no write waits for another, and it only grows as contributions land:
//! a read of part of a (key, bucket)'s contributions never counts more than a read of
//! them all.

use crate::logs::RecordKind;
use std::collections::HashMap;

/// Calls tracked by request id per (key, bucket) of one object: its contribution
/// lists them all, so this bounds the item. Records of further calls count as
/// records.
pub const MAX_CALLS_PER_COUNTER: usize = 32;
/// Calls a [`CallTally`] keeps, per (key, bucket): far past any threshold, so a
/// window read, `scan`'s store and its report hold at most this many whatever the
/// logs' authors write. The records of further calls count as records.
pub const MAX_TALLIED_CALLS: usize = 1_024;

/// Records telling one call, by log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallRecords {
    pub invocation_log: u64,
    pub cloudtrail: u64,
}

impl CallRecords {
    pub fn of(&self, log: RecordKind) -> u64 {
        match log {
            RecordKind::BedrockInvocationLog => self.invocation_log,
            RecordKind::CloudTrail => self.cloudtrail,
        }
    }

    pub fn add(&mut self, log: RecordKind, records: u64) {
        let n = match log {
            RecordKind::BedrockInvocationLog => &mut self.invocation_log,
            RecordKind::CloudTrail => &mut self.cloudtrail,
        };
        *n = n.saturating_add(records);
    }

    pub fn merge(&mut self, other: &CallRecords) {
        self.add(RecordKind::BedrockInvocationLog, other.invocation_log);
        self.add(RecordKind::CloudTrail, other.cloudtrail);
    }

    /// Records not counted: the call counts as often as the log telling it more
    /// times, so the other log's records are already counted (one log's own
    /// duplicates all count, as the rule counts records).
    pub fn told_twice(&self) -> u64 {
        self.invocation_log.min(self.cloudtrail)
    }
}

/// The calls one contribution tells, each by its
/// [`call_number`](crate::key::call_number), first seen first: a few (at most
/// [`MAX_CALLS_PER_COUNTER`]), so a list costs least.
pub type Calls = Vec<(u64, CallRecords)>;

/// Adds `records` of `log` to call `n` of `calls`; a call not listed yet is listed
/// only when `room`. Returns whether it was listed anew.
pub fn tell(calls: &mut Calls, n: u64, log: RecordKind, records: u64, room: bool) -> bool {
    match calls.iter_mut().find(|(m, _)| *m == n) {
        Some((_, c)) => c.add(log, records),
        None if room => {
            let mut c = CallRecords::default();
            c.add(log, records);
            calls.push((n, c));
            return true;
        }
        None => {}
    }
    false
}

/// What one object adds to one (key, bucket): its records, and the calls among them
/// with a request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution<'a> {
    pub records: u64,
    pub calls: &'a [(u64, CallRecords)],
}

impl Contribution<'_> {
    /// Records without request ids: each counts.
    pub fn records(records: u64) -> Contribution<'static> {
        Contribution {
            records,
            calls: &[],
        }
    }
}

/// The calls of a (key, bucket) across its contributions, at most
/// [`MAX_TALLIED_CALLS`], and the records of them not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTally {
    calls: HashMap<u64, CallRecords>,
    told_twice: u64,
}

impl CallTally {
    /// Adds one contribution's calls; returns how many of its records are not counted,
    /// because the other log tells their calls at least as often.
    pub fn add(&mut self, calls: &[(u64, CallRecords)]) -> u64 {
        let before = self.told_twice;
        for (n, records) in calls {
            let room = self.calls.len() < MAX_TALLIED_CALLS;
            let call = match self.calls.get_mut(n) {
                Some(call) => call,
                None if room => self.calls.entry(*n).or_default(),
                None => continue,
            };
            let was = call.told_twice();
            call.merge(records);
            self.told_twice += call.told_twice() - was;
        }
        self.told_twice - before
    }

    /// Records of these contributions not counted.
    pub fn told_twice(&self) -> u64 {
        self.told_twice
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RecordKind::{BedrockInvocationLog as Log, CloudTrail as Trail};

    fn calls(list: &[(u64, RecordKind, u64)]) -> Calls {
        let mut out: Calls = Vec::new();
        for &(n, log, records) in list {
            tell(&mut out, n, log, records, true);
        }
        out
    }

    /// The count of contributions, each `(records, calls)`, as a window read makes it.
    fn count(contributions: &[(u64, Calls)]) -> u64 {
        let mut tally = CallTally::default();
        let records: u64 = contributions.iter().map(|(r, _)| r).sum();
        for (_, c) in contributions {
            tally.add(c);
        }
        records - tally.told_twice()
    }

    #[test]
    fn a_call_told_by_both_logs_counts_once() {
        let log = (1, calls(&[(7, Log, 1)]));
        let trail = (1, calls(&[(7, Trail, 1)]));
        assert_eq!(count(&[log.clone(), trail.clone()]), 1);
        assert_eq!(count(&[trail, log]), 1);
    }

    #[test]
    fn one_logs_duplicates_count_and_the_call_counts_as_the_log_telling_it_more() {
        let trail_twice = [(1, calls(&[(7, Trail, 1)])), (1, calls(&[(7, Trail, 1)]))];
        assert_eq!(count(&trail_twice), 2);
        let mut both = trail_twice.to_vec();
        both.push((1, calls(&[(7, Log, 1)])));
        assert_eq!(count(&both), 2);
    }

    #[test]
    fn one_contribution_telling_a_call_in_both_logs_counts_it_once() {
        let c = calls(&[(7, Log, 1), (7, Trail, 1), (8, Trail, 1)]);
        let told_twice: u64 = c.iter().map(|(_, r)| r.told_twice()).sum();
        assert_eq!(told_twice, 1);
        assert_eq!(count(&[(3, c)]), 2);
    }

    #[test]
    fn records_of_different_calls_and_records_without_ids_all_count() {
        let a = (3, calls(&[(1, Log, 1), (2, Log, 1)]));
        let b = (2, calls(&[(3, Trail, 1)]));
        assert_eq!(count(&[a, b]), 5);
    }

    #[test]
    fn the_tally_of_a_bucket_is_bounded() {
        // A new request id on every line, in both logs: the tally keeps its bound, and
        // the calls past it count as records.
        let n = 2 * MAX_TALLIED_CALLS as u64;
        let log = calls(&(0..n).map(|i| (i, Log, 1)).collect::<Vec<_>>());
        let trail = calls(&(0..n).map(|i| (i, Trail, 1)).collect::<Vec<_>>());
        let mut tally = CallTally::default();
        tally.add(&log);
        tally.add(&trail);
        assert_eq!(tally.calls.len(), MAX_TALLIED_CALLS);
        assert_eq!(tally.told_twice(), MAX_TALLIED_CALLS as u64);
    }

    fn contribution() -> impl Strategy<Value = (u64, Calls)> {
        (
            0..4u64,
            prop::collection::vec((0..6u64, prop::bool::ANY, 1..3u64), 0..6),
        )
            .prop_map(|(plain, list)| {
                let list: Vec<_> = list
                    .into_iter()
                    .map(|(n, t, r)| (n, if t { Log } else { Trail }, r))
                    .collect();
                let c = calls(&list);
                let told: u64 = c.iter().map(|(_, r)| r.invocation_log + r.cloudtrail).sum();
                (plain + told, c)
            })
    }

    proptest! {
        /// Contributions land in any order, and a read sees any part of them: the
        /// count does not depend on the order, and a part never counts more than the
        /// whole (a read cut short stays a lower bound).
        #[test]
        fn the_count_ignores_order_and_grows_with_what_is_read(
            mut list in prop::collection::vec(contribution(), 0..8),
            cut in 0..8usize,
        ) {
            let whole = count(&list);
            let part = count(&list[..cut.min(list.len())]);
            prop_assert!(part <= whole);
            list.reverse();
            prop_assert_eq!(count(&list), whole);
        }

        /// Each call counts as often as the log telling it more times: what a
        /// separate count per log of each call gives.
        #[test]
        fn each_call_counts_as_its_busier_log(list in prop::collection::vec(contribution(), 0..8)) {
            let mut per_call: HashMap<u64, CallRecords> = HashMap::new();
            let mut plain = 0;
            for (records, c) in &list {
                let told: u64 = c.iter().map(|(_, r)| r.invocation_log + r.cloudtrail).sum();
                plain += records - told;
                for (n, r) in c {
                    per_call.entry(*n).or_default().merge(r);
                }
            }
            let expected = plain
                + per_call
                    .values()
                    .map(|r| r.invocation_log.max(r.cloudtrail))
                    .sum::<u64>();
            prop_assert_eq!(count(&list), expected);
        }
    }
}
