//! The detector's failures: each fails the invocation so the object is retried, and
//! says which object, and for a part of an object's keys, what the others counted.

use crate::alert::SinkError;
use crate::logs::ReadError;
use crate::stats::Counts;
use crate::store::StoreError;
use thiserror::Error;

/// A failure that must fail the invocation so the object is retried.
#[derive(Debug, Error)]
pub enum DetectError {
    #[error("{object}: reading failed")]
    Read {
        object: String,
        #[source]
        source: ReadError,
    },
    #[error("{object}: counter store failed")]
    Store {
        object: String,
        #[source]
        source: StoreError,
    },
    #[error("{object}: delivering the alert failed")]
    Deliver {
        object: String,
        #[source]
        source: SinkError,
    },
    /// Another attempt held the alert claim for longer than this one waits.
    #[error("{object}: the alert for {key} is being delivered by another attempt; retry later")]
    AlertBusy { object: String, key: String },
    /// Some keys of the object failed after every key was tried; `done` is what the
    /// others counted and alerted. The retry completes exactly what is missing.
    #[error("{object}: {failed} of {keys} keys failed{}; first: {}", groups_failed(*failed_groups, *groups), crate::error_chain(first.as_ref()))]
    Keys {
        object: String,
        failed: usize,
        keys: usize,
        /// Of the other rules' groups (docs/DESIGN.md, "Rules").
        failed_groups: usize,
        groups: usize,
        first: Box<DetectError>,
        done: Box<Counts>,
    },
}

fn groups_failed(failed: usize, groups: usize) -> String {
    if failed == 0 {
        String::new()
    } else {
        format!(" and {failed} of {groups} groups of other rules")
    }
}

impl DetectError {
    /// The failure itself, beneath a [`DetectError::Keys`] summary.
    pub fn first(&self) -> &DetectError {
        match self {
            DetectError::Keys { first, .. } => first.first(),
            other => other,
        }
    }
}
