//! Untrusted text cut to size: ids and values from logs reach log lines, error
//! messages, alerts and findings, and none of them may be flooded by one value.

use std::fmt;

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
