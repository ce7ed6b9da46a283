//! A config file that does not parse, said without quoting it.
//!
//! The `--config` file holds passwords and client secrets. The `toml` crate's error quotes the
//! offending line in full (`3 | password = "…" oops`), serde's messages quote the value they
//! refused (`invalid type: string "…", expected u64`, ``unknown variant `…` ``), and the
//! error's `Debug` carries the whole file. A start-up error ends up in a terminal, a CI log or a
//! bug report, so none of that is kept: [`ConfigParseError`] holds the position (line,
//! column), the key path (`users.password`) and the problem with any quoted value taken out.
//!
//! The file is parsed twice to tell the two kinds of problem apart: first as a plain TOML table,
//! whose errors are the parser's own descriptions of what it expected (`invalid literal string,
//! expected '`), never the text it read; then into the config types, whose errors are serde's,
//! rewritten by `problem_without_value`.

use std::fmt;

/// Where and why a config file failed to parse; never the text at that place.
///
/// Shown as ``at line 2, column 30 (key `settings.access_token_lifetime_secs`): invalid type:
/// string, expected u64``; the parts the parser could not give are left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigParseError {
    /// 1-based line of the problem, when the parser gave a position.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem, when the parser gave a position.
    pub column: Option<usize>,
    /// The dotted key path (`users.password`), for a problem with a value or key rather than
    /// with the TOML syntax.
    pub key: Option<String>,
    /// What is wrong, e.g. `invalid type: string, expected u64`.
    pub problem: String,
}

/// What an unreadable problem description becomes.
const INVALID_VALUE: &str = "invalid value";

impl ConfigParseError {
    /// The parse of `text` into `T`: the value, or the error without the file's text.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Self> {
        if let Err(syntax) = toml::from_str::<toml::Table>(text) {
            return Err(Self::at(text, &syntax, None, syntax.message().to_owned()));
        }
        toml::from_str::<T>(text).map_err(|e| {
            let value = e.span().and_then(|s| text.get(s)).unwrap_or_default();
            let problem = problem_without_value(e.message(), value);
            Self::at(text, &e, key_path(&e), problem)
        })
    }

    fn at(text: &str, error: &toml::de::Error, key: Option<String>, problem: String) -> Self {
        let (line, column) = match error.span() {
            Some(span) => {
                let (line, column) = position(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Self {
            line,
            column,
            key,
            problem,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted key path the `toml` error was raised under, if any: its `Display` without the
/// document ends in ``in `users.password` ``.
fn key_path(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let path = shown
        .strip_prefix(error.message())?
        .trim()
        .strip_prefix("in `")?
        .strip_suffix('`')?;
    (!path.is_empty()).then(|| path.to_owned())
}

/// serde's `message` with the refused value taken out: the standard forms that quote a value
/// keep its kind (`invalid type: string, expected u64`, `unknown variant, expected …`); the ones
/// that quote a key (`unknown field`, `missing field`, `duplicate field`) stay; any other text
/// that quotes something becomes [`INVALID_VALUE`]. Last, whatever is left must not contain the
/// value's text (`value`, the document at the error's span, with its quotes).
pub(crate) fn problem_without_value(message: &str, value: &str) -> String {
    if names_a_key(message) {
        // The span is the key here, not a value.
        return message.to_owned();
    }
    let problem = rewrite(message);
    let unquoted = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if unquoted.chars().count() >= 4 && problem.contains(unquoted) {
        return INVALID_VALUE.to_owned();
    }
    problem
}

/// serde's messages about a key (its name quoted, no value).
fn names_a_key(message: &str) -> bool {
    ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .any(|p| message.starts_with(p))
}

fn rewrite(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            // `string "…", expected u64`: the kind is the first word (`floating point` two).
            let kind = match rest.split_whitespace().next() {
                Some("floating") => "floating point",
                Some(word) => word.trim_end_matches(','),
                None => "value",
            };
            let expected = rest
                .rsplit_once(", expected ")
                .map(|(_, e)| format!(", expected {e}"))
                .unwrap_or_default();
            return format!("{prefix}{kind}{expected}");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let expected = rest
            .split_once("`, expected ")
            .map(|(_, e)| format!(", expected {e}"))
            .unwrap_or_default();
        return format!("unknown variant{expected}");
    }
    if !message.contains(['"', '`', '\'']) {
        return message.to_owned();
    }
    INVALID_VALUE.to_owned()
}

impl fmt::Display for ConfigParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        match (self.line, self.column) {
            (Some(line), Some(column)) => place.push(format!("at line {line}, column {column}")),
            (Some(line), None) => place.push(format!("at line {line}")),
            _ => {}
        }
        if let Some(key) = &self.key {
            place.push(format!("(key `{key}`)"));
        }
        if !place.is_empty() {
            write!(f, "{}: ", place.join(" "))?;
        }
        f.write_str(&self.problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_the_value_and_keep_its_kind() {
        let cases = [
            (
                r#"invalid type: string "hunter2-secret", expected u64"#,
                "invalid type: string, expected u64",
            ),
            (
                "invalid type: integer `12345678`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: floating point `1.5`, expected u64",
                "invalid value: floating point, expected u64",
            ),
            (
                "unknown variant `hunter4-secret`, expected `device` or `web`",
                "unknown variant, expected `device` or `web`",
            ),
            (
                "unknown field `pasword`, expected one of `email`, `password`",
                "unknown field `pasword`, expected one of `email`, `password`",
            ),
            ("missing field `password`", "missing field `password`"),
            ("wanted string or table", "wanted string or table"),
            ("some custom text quoting \"it\"", "invalid value"),
        ];
        for (message, shown) in cases {
            assert_eq!(problem_without_value(message, ""), shown, "{message}");
        }
        // Whatever form: the value's own text never survives.
        assert_eq!(
            problem_without_value("wanted hunter5-secret", "\"hunter5-secret\""),
            "invalid value"
        );
    }

    #[test]
    fn the_words_leave_out_what_is_not_known() {
        let mut e = ConfigParseError {
            line: Some(2),
            column: Some(30),
            key: Some("settings.x".into()),
            problem: "p".into(),
        };
        assert_eq!(e.to_string(), "at line 2, column 30 (key `settings.x`): p");
        e.key = None;
        assert_eq!(e.to_string(), "at line 2, column 30: p");
        (e.line, e.column, e.key) = (None, None, Some("k".into()));
        assert_eq!(e.to_string(), "(key `k`): p");
        e.key = None;
        assert_eq!(e.to_string(), "p");
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\" oops\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, text.find("oops").unwrap()), (2, 10));
        assert_eq!(position(text, text.len() + 5), (3, 1));
    }
}
