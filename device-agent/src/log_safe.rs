//! Strings a peer chose, made safe for a log line.
//!
//! Before the handshake a stranger can put anything into an error message (newlines that forge
//! a second log line, ESC sequences that rewrite a terminal, megabytes of text). Every such
//! string goes into logs through [`Escaped`]: control characters are written as escapes
//! (`\n`, `\u{1b}`) and the text is cut at [`MAX_LOGGED_CHARS`] characters.

use std::fmt;

/// The most characters of a peer's text that reach a log line.
pub const MAX_LOGGED_CHARS: usize = 200;

/// Displays the inner value escaped and length-capped.
pub struct Escaped<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Debug for Escaped<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Escaped({self})")
    }
}

impl<T: fmt::Display + ?Sized> fmt::Display for Escaped<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0.to_string()))
    }
}

/// `text` with control characters escaped, cut at [`MAX_LOGGED_CHARS`] characters (`…` marks
/// a cut).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LOGGED_CHARS * 2));
    for (n, c) in text.chars().enumerate() {
        if n == MAX_LOGGED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_escapes_are_escaped_and_long_text_cut() {
        let forged = "bad\nINFO agent: linked\u{1b}[2J\r";
        let e = escape(forged);
        assert!(
            !e.contains('\n') && !e.contains('\u{1b}') && !e.contains('\r'),
            "{e}"
        );
        assert_eq!(e, "bad\\nINFO agent: linked\\u{1b}[2J\\r");
        let long = "x".repeat(10_000);
        let e = Escaped(&long).to_string();
        assert_eq!(e.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
