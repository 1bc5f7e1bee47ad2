//! Detector configuration (SPEC section 7): the same settings for the Lambda (from
//! the environment) and for `scan` (from flags of the same names).

use crate::window::WindowSpec;
use thiserror::Error;

pub const DEFAULT_THRESHOLD: u64 = 3;
pub const DEFAULT_BUCKET_MINUTES: u32 = 10;
pub const DEFAULT_WINDOW_BUCKETS: u32 = 6;
pub const DEFAULT_SUPPRESS_MINUTES: u32 = 60;
pub const DEFAULT_DENIAL_CODES: &str = "AccessDeniedException,AccessDenied";

/// A configuration value that cannot be used; names the variable (or flag).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// What counts as a denial, how it is bucketed and when it alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub threshold: u64,
    pub bucket_minutes: u32,
    pub window_buckets: u32,
    pub suppress_minutes: u32,
    pub denial_codes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            bucket_minutes: DEFAULT_BUCKET_MINUTES,
            window_buckets: DEFAULT_WINDOW_BUCKETS,
            suppress_minutes: DEFAULT_SUPPRESS_MINUTES,
            denial_codes: parse_denial_codes(DEFAULT_DENIAL_CODES).unwrap_or_default(),
        }
    }
}

impl Config {
    /// Reads `THRESHOLD`, `BUCKET_MINUTES`, `WINDOW_BUCKETS`, `SUPPRESS_MINUTES` and
    /// `DENIAL_CODES` through `var`; unset or empty means the default.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let mut c = Config::default();
        if let Some(v) = get("THRESHOLD") {
            c.threshold = parse_number("THRESHOLD", &v, 0, u64::from(u32::MAX))?;
        }
        if let Some(v) = get("BUCKET_MINUTES") {
            c.bucket_minutes = parse_number("BUCKET_MINUTES", &v, 1, 1440)? as u32;
        }
        if let Some(v) = get("WINDOW_BUCKETS") {
            c.window_buckets = parse_number("WINDOW_BUCKETS", &v, 1, 1000)? as u32;
        }
        if let Some(v) = get("SUPPRESS_MINUTES") {
            c.suppress_minutes = parse_number("SUPPRESS_MINUTES", &v, 0, 525_600)? as u32;
        }
        if let Some(v) = get("DENIAL_CODES") {
            c.denial_codes = parse_denial_codes(&v)?;
        }
        Ok(c)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub fn window(&self) -> WindowSpec {
        WindowSpec::new(self.bucket_minutes, self.window_buckets)
    }

    pub fn suppress_seconds(&self) -> i64 {
        i64::from(self.suppress_minutes) * 60
    }
}

fn parse_number(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let err = |reason: String| ConfigError {
        name,
        value: value.to_string(),
        reason,
    };
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|e| err(format!("not a whole number ({e})")))?;
    if n < min || n > max {
        return Err(err(format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// Comma-separated error codes; blanks around commas are ignored, an empty entry or
/// one with characters no error code has is refused.
pub fn parse_denial_codes(value: &str) -> Result<Vec<String>, ConfigError> {
    let err = |reason: &str| ConfigError {
        name: "DENIAL_CODES",
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut codes = Vec::new();
    for code in value.split(',').map(str::trim) {
        if code.is_empty() {
            return Err(err("empty entry in the comma-separated list"));
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' || b == b':')
        {
            return Err(err("error codes are letters, digits and . _ - :"));
        }
        if !codes.iter().any(|c| c == code) {
            codes.push(code.to_string());
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = from(&[]).expect("defaults");
        assert_eq!(c.threshold, 3);
        assert_eq!(c.bucket_minutes, 10);
        assert_eq!(c.window_buckets, 6);
        assert_eq!(c.suppress_minutes, 60);
        assert_eq!(
            c.denial_codes,
            vec!["AccessDeniedException", "AccessDenied"]
        );
    }

    #[test]
    fn values_are_read() {
        let c = from(&[
            ("THRESHOLD", "5"),
            ("BUCKET_MINUTES", "5"),
            ("WINDOW_BUCKETS", "12"),
            ("SUPPRESS_MINUTES", "0"),
            (
                "DENIAL_CODES",
                " AccessDeniedException , UnauthorizedOperation ",
            ),
        ])
        .expect("config");
        assert_eq!(c.threshold, 5);
        assert_eq!(c.window().bucket_seconds(), 300);
        assert_eq!(c.window().window_buckets(), 12);
        assert_eq!(c.suppress_seconds(), 0);
        assert_eq!(
            c.denial_codes,
            vec!["AccessDeniedException", "UnauthorizedOperation"]
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("THRESHOLD", "three"),
            ("THRESHOLD", "-1"),
            ("BUCKET_MINUTES", "0"),
            ("WINDOW_BUCKETS", "1001"),
            ("SUPPRESS_MINUTES", "1.5"),
            ("DENIAL_CODES", "AccessDenied,,X"),
            ("DENIAL_CODES", "Access\"Denied"),
        ] {
            let e = from(&[(k, v)]).expect_err(k);
            assert_eq!(e.name, k);
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}
