//! Untrusted text cut to size and made inert: ids and values from logs reach log
//! lines, error messages, alerts, notices and findings, and none of them may be
//! flooded or spoofed by one value; and times as those texts write them (RFC 3339).

use chrono::DateTime;
use std::fmt;
use std::fmt::Write as _;

/// The first `max_chars` characters of `s` (all of it when shorter).
pub fn prefix_chars(s: &str, max_chars: usize) -> &str {
    s.char_indices()
        .nth(max_chars)
        .map_or(s, |(at, _)| &s[..at])
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character
/// boundary.
pub fn prefix_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A value as log lines and error messages show it: quoted, escaped, and cut at
/// `MAX` characters, with `...` after the quote when cut.
pub struct Quoted<'a, const MAX: usize>(pub &'a str);

impl<const MAX: usize> fmt::Display for Quoted<'_, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = prefix_chars(self.0, MAX);
        write!(f, "{kept:?}")?;
        if kept.len() < self.0.len() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Longest rendering of one id in text for people (emails, notices).
const MAX_TEXT_ID_CHARS: usize = 2048;

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width and directional marks
            | '\u{2028}'..='\u{202E}' // separators and bidi embeddings/overrides
            | '\u{2060}'..='\u{2069}' // word joiner, bidi isolates
            | '\u{FEFF}')
}

/// Escapes control and bidi-formatting characters as `\u{..}`, bounded in length.
pub fn text_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT_ID_CHARS));
    for (n, c) in s.chars().enumerate() {
        if n == MAX_TEXT_ID_CHARS {
            let _ = write!(out, "... [{} more characters]", s.chars().count() - n);
            break;
        }
        if is_dangerous(c) || c == '\\' {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 3339 UTC with seconds, e.g. `2026-03-14T09:00:00Z`.
pub fn rfc3339(epoch_seconds: i64) -> String {
    match DateTime::from_timestamp(epoch_seconds, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{epoch_seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(prefix_chars("héllo", 2), "hé");
        assert_eq!(prefix_chars("hé", 5), "hé");
        assert_eq!(Quoted::<3>("a\"bcd").to_string(), r#""a\"b"..."#);
        assert_eq!(Quoted::<3>("abc").to_string(), r#""abc""#);
        assert_eq!(prefix_bytes("héllo", 2), "h");
        assert_eq!(prefix_bytes("héllo", 3), "hé");
        assert_eq!(prefix_bytes("hé", 10), "hé");
    }
}
