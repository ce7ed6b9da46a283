//! A value parsed where it is read (TOML file, environment, flag), so the rest of the agent
//! sees the type and not a string. A value that does not parse is kept as the text it was, so
//! [`super::AgentConfig::resolve`] reports it the same way for all three sources: with the
//! key's name and the fix, at start.

use std::convert::Infallible;
use std::str::FromStr;

/// `T` parsed from text, or the text that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The value.
    Ok(T),
    /// Text that is not a `T` (kept to be named in the error).
    Bad(String),
}

impl<T: FromStr> Parsed<T> {
    /// Parses `text`, trimmed.
    pub fn parse(text: &str) -> Self {
        match text.trim().parse() {
            Ok(v) => Parsed::Ok(v),
            Err(_) => Parsed::Bad(text.to_owned()),
        }
    }
}

/// For clap: parsing never fails here; `resolve` judges.
impl<T: FromStr> FromStr for Parsed<T> {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self::parse(s))
    }
}

impl<T: FromStr> From<&str> for Parsed<T> {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl<'de, T: FromStr> serde::Deserialize<'de> for Parsed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}
