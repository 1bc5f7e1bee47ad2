//! Error plumbing shared by the library: context that keeps the cause as its
//! `source`, and one-line renderings of a whole error chain for logs and answers.

use std::error::Error;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// What was being done when `source` failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Context {
    what: String,
    #[source]
    source: BoxError,
}

impl Context {
    pub fn new(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// `error: cause: cause of the cause`, skipping a cause whose text the previous
/// line already shows.
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            next = e.source();
        }
        Ok(())
    }
}

/// [`Chain`] as a string.
pub fn error_chain(e: &(dyn Error + '_)) -> String {
    Chain(e).to_string()
}

/// Locks `m` even when a thread panicked while holding it: every update made under
/// these locks is one statement, so a panic cannot leave one half-applied.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_shows_every_distinct_cause() {
        let io = std::io::Error::other("connection reset");
        let e = Context::new("GetObject s3://b/k", Context::new("dispatch failure", io));
        assert_eq!(
            error_chain(&e),
            "GetObject s3://b/k: dispatch failure: connection reset"
        );
    }
}
