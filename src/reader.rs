//! Reading one object into its aggregate: the synchronous half of the detector. A
//! [`Reader`] holds no store and no sink, and runs on blocking threads (shared with
//! them through an `Arc`).

use crate::aggregate::Aggregate;
use crate::config::Config;
use crate::logs::{read_log, read_messages, DenialMatcher, ReadError, ReadOutcome, ReadStats};
use crate::rule::RuleSet;
use crate::window::WindowSpec;
use std::io::Read;

/// What reading one object gave.
#[derive(Debug, Default)]
pub struct ObjectRead {
    pub aggregate: Aggregate,
    pub stats: ReadStats,
    /// The error that ended reading early, if any; what was read before is in `aggregate`.
    pub error: Option<ReadError>,
    /// The account the object speaks for (its folder's, or its CloudWatch Logs owner),
    /// and the first other account a denial in it named, if any.
    pub accounts: Accounts,
}

/// Whose logs an object holds, by its location, and the first denial that claimed
/// another account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub folder: Option<String>,
    pub mismatched: Option<String>,
}

/// Reads objects into aggregates with the configured denial codes and buckets.
#[derive(Debug, Clone)]
pub struct Reader {
    matcher: DenialMatcher,
    spec: WindowSpec,
    rules: RuleSet,
}

impl Reader {
    pub fn new(config: &Config) -> Self {
        Self {
            matcher: DenialMatcher::with_validation(
                &config.denial_codes,
                &config.cloudtrail_denial_codes,
                &if config.rules.has(crate::rule::RuleTag::Validation) {
                    vec![crate::rule::VALIDATION_CODE.to_string()]
                } else {
                    Vec::new()
                },
            ),
            spec: config.window(),
            rules: config.rules,
        }
    }

    pub fn spec(&self) -> &WindowSpec {
        &self.spec
    }

    /// Reads one object (blocking: call it from a blocking thread). With `account`
    /// (the account whose folder holds the object), denials of other accounts are
    /// skipped.
    pub fn read(&self, input: impl Read, account: Option<&str>) -> ObjectRead {
        let mut aggregate = Aggregate::default();
        let outcome = read_log(input, &self.matcher, account, |d| {
            aggregate.take(d, &self.spec, &self.rules)
        });
        Self::read_of(aggregate, outcome, account)
    }

    /// Reads records delivered one per message (CloudWatch Logs events), as sent by
    /// the log group of `account`.
    pub fn read_messages<'m>(
        &self,
        messages: impl IntoIterator<Item = &'m str>,
        account: Option<&str>,
    ) -> ObjectRead {
        let mut aggregate = Aggregate::default();
        let outcome = read_messages(messages, &self.matcher, account, |d| {
            aggregate.take(d, &self.spec, &self.rules)
        });
        Self::read_of(aggregate, outcome, account)
    }

    fn read_of(aggregate: Aggregate, outcome: ReadOutcome, account: Option<&str>) -> ObjectRead {
        ObjectRead {
            aggregate,
            stats: outcome.stats,
            error: outcome.error,
            accounts: Accounts {
                folder: account.map(str::to_string),
                mismatched: outcome.mismatched_account,
            },
        }
    }
}
