//! What `scan` reads: local files found under the paths given, S3 objects under the
//! `s3://` prefixes given, and the time filter that selects among them.

use crate::event::ObjectRef;
use crate::objects::{file_key, walk_files};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use std::path::{Path, PathBuf};

/// One input, in the order it is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File {
        path: PathBuf,
        /// The folder it was found in: its "bucket" (`source::FileSource`).
        root: String,
        /// Path below the folder it was found in, '/'-separated, with a leading '/':
        /// its "key", what housekeeping rules and key dates are matched against.
        relative: String,
        size: u64,
        /// Modification time, epoch seconds.
        modified: i64,
    },
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    S3 {
        bucket: String,
        key: String,
        size: u64,
        modified: i64,
    },
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    /// The key or relative path, for housekeeping rules and key dates.
    pub fn key(&self) -> &str {
        match self {
            Input::File { relative, .. } => relative,
            Input::S3 { key, .. } => key,
        }
    }

    /// The object to read: a file below its folder, or an S3 object.
    pub fn object(&self) -> ObjectRef {
        let (bucket, key) = match self {
            Input::File { root, relative, .. } => (root, relative),
            Input::S3 { bucket, key, .. } => (bucket, key),
        };
        ObjectRef {
            bucket: bucket.clone(),
            key: key.clone(),
            raw_key: key.clone(),
            size: Some(self.size()),
            etag: None,
            version_id: None,
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            Input::File { size, .. } | Input::S3 { size, .. } => *size,
        }
    }

    fn modified(&self) -> i64 {
        match self {
            Input::File { modified, .. } | Input::S3 { modified, .. } => *modified,
        }
    }
}

/// An `s3://bucket/prefix` argument.
pub fn parse_s3_uri(arg: &str) -> Option<(String, String)> {
    let rest = arg.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

/// Files under `path` (or `path` itself), sorted, never following a directory twice
/// (a symlink cycle ends there, with a note).
pub fn collect_files(path: &Path, notes: &mut Vec<String>) -> std::io::Result<Vec<Input>> {
    let root = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new("")).to_path_buf()
    };
    // A file is named by strings, as an S3 object is.
    let Some(root_name) = root.to_str() else {
        notes.push(format!(
            "{}: the path is not UTF-8; skipped",
            root.display()
        ));
        return Ok(Vec::new());
    };
    Ok(walk_files(path, notes)?
        .into_iter()
        .map(|f| Input::File {
            relative: file_key(&root, &f.path),
            path: f.path,
            root: root_name.to_string(),
            size: f.size,
            modified: f.modified,
        })
        .collect())
}

/// `--since` / `--until`: RFC 3339, a date (midnight UTC), or `<N>h` / `<N>d` back
/// from `now`.
pub fn parse_time(value: &str, now: i64) -> Result<i64, String> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()));
    }
    let (number, unit) = v.split_at(v.len().saturating_sub(1));
    let seconds = match unit {
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if seconds > 0 && n >= 0 => Ok(now - n * seconds),
        _ => Err(format!(
            "{value:?} is not RFC 3339, YYYY-MM-DD, or a span such as 36h or 7d"
        )),
    }
}

/// `--since` and `--until` as epoch seconds; the error names the flag.
pub fn parse_period(
    since: Option<&str>,
    until: Option<&str>,
    now: i64,
) -> Result<[Option<i64>; 2], String> {
    let one = |name: &str, value: Option<&str>| {
        value
            .map(|v| parse_time(v, now).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    Ok([one("--since", since)?, one("--until", until)?])
}

/// The hour or day a key's `.../YYYY/MM/DD[/HH]/...` names, as `[start, end)`.
pub fn key_period(key: &str) -> Option<(i64, i64)> {
    let parts: Vec<&str> = key.split('/').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    for i in 0..parts.len().saturating_sub(3) {
        let (Some(y), Some(m), Some(d)) = (
            number(parts[i], 4),
            number(parts[i + 1], 2),
            number(parts[i + 2], 2),
        ) else {
            continue;
        };
        // The part after the day is an hour only when another part follows it.
        let hour = parts
            .get(i + 3)
            .filter(|_| i + 4 < parts.len())
            .and_then(|h| number(h, 2))
            .filter(|h| *h < 24);
        let start = Utc
            .with_ymd_and_hms(y as i32, m, d, hour.unwrap_or(0), 0, 0)
            .single()?
            .timestamp();
        let length = if hour.is_some() { 3600 } else { 86_400 };
        return Some((start, start + length));
    }
    None
}

/// Keeps inputs whose period (from the key, else the modification time) overlaps
/// `[since, until)`.
pub fn in_period(input: &Input, since: Option<i64>, until: Option<i64>) -> bool {
    if since.is_none() && until.is_none() {
        return true;
    }
    let (start, end) = key_period(input.key()).unwrap_or((input.modified(), input.modified() + 1));
    since.is_none_or(|s| end > s) && until.is_none_or(|u| start < u)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_773_478_800; // 2026-03-14T09:00:00Z

    #[test]
    fn times_in_three_forms() {
        assert_eq!(parse_time("2026-03-14T09:00:00Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2026-03-14", NOW), Ok(NOW - 9 * 3600));
        assert_eq!(parse_time("36h", NOW), Ok(NOW - 36 * 3600));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * 86_400));
        assert!(parse_time("yesterday", NOW).is_err());
        assert!(parse_time("-3d", NOW).is_err());
    }

    #[test]
    fn periods_from_bedrock_and_cloudtrail_keys() {
        let bedrock = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/20260314T091000Z_x.json.gz";
        assert_eq!(key_period(bedrock), Some((NOW, NOW + 3600)));
        let trail = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/14/111122223333_CloudTrail_us-east-1_20260314T0920Z_x.json.gz";
        assert_eq!(key_period(trail), Some((NOW - 9 * 3600, NOW + 15 * 3600)));
        assert_eq!(key_period("exports/team a/bedrock.json"), None);
        assert_eq!(key_period("2026/13/40/x.json"), None);
    }

    #[test]
    fn selection_by_key_date_else_modification_time() {
        let file = |relative: &str, modified: i64| Input::File {
            path: PathBuf::from("x"),
            root: ".".into(),
            relative: relative.into(),
            size: 1,
            modified,
        };
        let dated = file(
            "/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/a.json.gz",
            0,
        );
        assert!(in_period(&dated, Some(NOW + 3599), None));
        assert!(!in_period(&dated, Some(NOW + 3600), None));
        assert!(in_period(&dated, None, Some(NOW + 1)));
        assert!(!in_period(&dated, None, Some(NOW)));
        let plain = file("/plain/a.json", NOW);
        assert!(in_period(&plain, Some(NOW), Some(NOW + 1)));
        assert!(!in_period(&plain, Some(NOW + 1), None));
    }

    #[test]
    fn s3_uris() {
        assert_eq!(
            parse_s3_uri("s3://b/AWSLogs/"),
            Some(("b".into(), "AWSLogs/".into()))
        );
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_uri("s3:///k"), None);
        assert_eq!(parse_s3_uri("/tmp/x"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_cycle_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("a")).expect("mkdir");
        std::fs::write(dir.path().join("a/log.json"), b"{}\n").expect("write");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).expect("symlink");
        let mut notes = Vec::new();
        let found = collect_files(dir.path(), &mut notes).expect("collect");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
    }
}
