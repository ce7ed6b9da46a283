//! A failure's sentence in pieces, so the terminal and the desktop window each get their own
//! wording and nobody rewrites finished text.
//!
//! The core writes one sentence per failure: what happened and what to do. Parts of it only
//! make sense in a terminal: a command to type ("`avs-companion config --client-id ID`"), "run
//! pair again" (in the window its button is the retry), a protocol word in backticks. Other
//! parts are Amazon's own words, which a developer needs and a person can't act on. The window
//! used to cut those out of the finished text by searching it, which a reworded sentence broke
//! silently. Instead each error builds its sentence from typed pieces ([`Words`]) and each
//! audience renders the pieces it needs:
//!
//! - [`Words::terminal`] (also `Display`): every piece in order, the CLI's sentence;
//! - [`Words::plain`]: no command, no backticks, no quote of Amazon, "try again" for the retry;
//! - [`Words::lwa`]: what Amazon (LWA) said, as data: its error code and description.
//!
//! The CLI prints exactly what it printed before this type existed: an error's `Display` is its
//! [`Words::terminal`] (the tests of `error.rs`, `handover.rs` and `login/` pin the sentences).

use std::borrow::Cow;
use std::fmt;

/// A sentence for two audiences (see the module docs). Build it with the chained methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    pieces: Vec<Piece>,
    lwa: Option<LwaSaid>,
}

/// What Login with Amazon said about a failure, in its own words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LwaSaid {
    /// Its OAuth error code (`invalid_scope`), when it gave one.
    pub error: Option<String>,
    /// Its description, or the words of its error page.
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Words for everyone.
    Text(Cow<'static, str>),
    /// A literal word (a URL parameter): in backticks in a terminal, bare in the window.
    Code(Cow<'static, str>),
    /// Only for a terminal: a command or a flag to type, with its own spacing and brackets.
    Terminal(Cow<'static, str>),
    /// Start over: "run pair again" in a terminal, "try again" in the window (its button).
    Retry {
        /// At the start of a sentence.
        capital: bool,
    },
    /// Amazon's words as the terminal sentence quotes them (" LWA said: …"): only in a terminal.
    Lwa(String),
}

impl Words {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds words for everyone.
    pub fn text(mut self, s: impl Into<Cow<'static, str>>) -> Self {
        self.pieces.push(Piece::Text(s.into()));
        self
    }

    /// Adds a literal word: `state` in a terminal, state in the window.
    pub fn code(mut self, s: impl Into<Cow<'static, str>>) -> Self {
        self.pieces.push(Piece::Code(s.into()));
        self
    }

    /// Adds words only a terminal shows: a command or a flag to type, with its own spacing
    /// (" (`avs-companion config --client-id ID`)").
    pub fn terminal_only(mut self, s: impl Into<Cow<'static, str>>) -> Self {
        self.pieces.push(Piece::Terminal(s.into()));
        self
    }

    /// Adds "run pair again" (terminal) / "try again" (window).
    pub fn retry(mut self) -> Self {
        self.pieces.push(Piece::Retry { capital: false });
        self
    }

    /// Adds "Run pair again" / "Try again", to start a sentence.
    pub fn retry_capital(mut self) -> Self {
        self.pieces.push(Piece::Retry { capital: true });
        self
    }

    /// Adds Amazon's words as the terminal sentence quotes them (`quote`), and keeps them as
    /// data (`said`; the first kept wins).
    pub fn lwa_quote(mut self, quote: String, said: LwaSaid) -> Self {
        self.pieces.push(Piece::Lwa(quote));
        self.lwa.get_or_insert(said);
        self
    }

    /// Keeps Amazon's words as data without quoting them here (another piece quotes them).
    pub fn lwa_said(mut self, said: LwaSaid) -> Self {
        self.lwa.get_or_insert(said);
        self
    }

    /// Appends `more`'s pieces (and its Amazon words, unless some are kept already).
    pub fn then(mut self, more: Words) -> Self {
        self.pieces.extend(more.pieces);
        if self.lwa.is_none() {
            self.lwa = more.lwa;
        }
        self
    }

    /// The CLI's sentence: every piece.
    pub fn terminal(&self) -> String {
        self.render(true)
    }

    /// The window's sentence: no command, no backticks, no quote of Amazon.
    pub fn plain(&self) -> String {
        self.render(false)
    }

    /// What Amazon said, when it said something.
    pub fn lwa(&self) -> Option<&LwaSaid> {
        self.lwa.as_ref()
    }

    fn render(&self, terminal: bool) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match (piece, terminal) {
                (Piece::Text(s), _) => out.push_str(s),
                (Piece::Code(s), true) => {
                    out.push('`');
                    out.push_str(s);
                    out.push('`');
                }
                (Piece::Code(s), false) => out.push_str(s),
                (Piece::Terminal(s), true) => out.push_str(s),
                (Piece::Lwa(s), true) => out.push_str(s),
                (Piece::Terminal(_) | Piece::Lwa(_), false) => {}
                (Piece::Retry { capital }, true) => {
                    out.push_str(if *capital { "Run" } else { "run" });
                    out.push_str(" pair again");
                }
                (Piece::Retry { capital }, false) => {
                    out.push_str(if *capital { "Try" } else { "try" });
                    out.push_str(" again");
                }
            }
        }
        out
    }
}

impl From<String> for Words {
    fn from(s: String) -> Self {
        Words::new().text(s)
    }
}

impl From<&'static str> for Words {
    fn from(s: &'static str) -> Self {
        Words::new().text(s)
    }
}

/// The terminal's sentence.
impl fmt::Display for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.terminal())
    }
}

/// As the terminal's sentence (the CLI's `--json` events carry the words it prints).
impl serde::Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.terminal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_piece_is_rendered_for_its_audience() {
        let said = LwaSaid {
            error: Some("invalid_client".into()),
            description: None,
        };
        let w = Words::new()
            .text("the response has no ")
            .code("state")
            .text(": ")
            .retry()
            .terminal_only(" (`avs-companion config`)")
            .text(". ")
            .retry_capital()
            .lwa_quote(". LWA said: invalid_client".into(), said.clone());
        assert_eq!(
            w.terminal(),
            "the response has no `state`: run pair again (`avs-companion config`). Run pair again. LWA said: invalid_client"
        );
        assert_eq!(w.to_string(), w.terminal());
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::Value::String(w.terminal())
        );
        assert_eq!(w.plain(), "the response has no state: try again. Try again");
        assert_eq!(w.lwa(), Some(&said));

        let same = Words::from("wrong setup code");
        assert_eq!(
            (same.plain(), same.terminal()),
            (same.to_string(), same.to_string())
        );
        assert_eq!(same.lwa(), None);
    }

    #[test]
    fn appended_words_keep_the_first_amazon_words() {
        let first = LwaSaid {
            error: Some("access_denied".into()),
            description: None,
        };
        let second = LwaSaid {
            error: None,
            description: Some("page".into()),
        };
        let w = Words::from("a")
            .lwa_said(first.clone())
            .then(Words::from("b").lwa_quote(" c".into(), second.clone()));
        assert_eq!((w.terminal().as_str(), w.plain().as_str()), ("ab c", "ab"));
        assert_eq!(w.lwa(), Some(&first));
        let w = Words::from("a").then(Words::new().lwa_said(second.clone()));
        assert_eq!(w.lwa(), Some(&second));
    }
}
