//! Request parameters from a query string, a form body or a JSON body.
//!
//! LWA's token endpoint takes `application/x-www-form-urlencoded` (the SDK) and JSON (Amazon's
//! Java sample, several Python clients). Clients in the wild also send raw `|` in refresh tokens
//! and concatenate values without escaping; form parsing here is as lenient as the bytes allow.
//! Parameters keep their order; duplicates are detected (RFC 6749 §3.1: a parameter must not be
//! included more than once) and empty values count as missing.

use crate::oauth_error::OAuthError;

/// Largest body accepted by the API endpoints.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Ordered name/value pairs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

/// Why a body could not be read as parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamsError {
    /// JSON that is not an object of scalar values.
    BadJson,
}

impl Params {
    pub(crate) fn from_query(query: Option<&str>) -> Self {
        Self::from_form(query.unwrap_or("").as_bytes())
    }

    pub(crate) fn from_form(body: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Self { pairs }
    }

    /// JSON when the content type says so or the body looks like a JSON object; form otherwise.
    pub(crate) fn from_body(content_type: Option<&str>, body: &[u8]) -> Result<Self, ParamsError> {
        let is_json = content_type
            .map(|ct| ct.to_ascii_lowercase().contains("json"))
            .unwrap_or(false)
            || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !is_json {
            return Ok(Self::from_form(body));
        }
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Self::default());
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| ParamsError::BadJson)?;
        let serde_json::Value::Object(map) = value else {
            return Err(ParamsError::BadJson);
        };
        let pairs = map
            .into_iter()
            .filter_map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => return None,
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                Some((k, v))
            })
            .collect();
        Ok(Self { pairs })
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of `name`; `Ok(None)` when absent or empty; an `invalid_request` when repeated.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(OAuthError::duplicate(name));
        }
        Ok(first.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()))
    }

    /// The value of `name`, or `invalid_request` "…missing a required parameter : name".
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| OAuthError::missing(name))
    }

    /// The first parameter that appears more than once, if any.
    pub(crate) fn first_duplicate(&self) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, _))| {
            self.pairs[..i]
                .iter()
                .any(|(prev, _)| prev == k)
                .then_some(k.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_pipe_and_order_survive() {
        let p = Params::from_form(b"grant_type=refresh_token&refresh_token=Atzr|abc-_&client_id=x");
        assert_eq!(p.require("refresh_token").unwrap(), "Atzr|abc-_");
        assert_eq!(p.pairs()[0].0, "grant_type");
    }

    #[test]
    fn json_bodies_and_missing_values() {
        let p = Params::from_body(
            Some("application/json"),
            br#"{"grant_type":"refresh_token","n":5,"empty":""}"#,
        )
        .unwrap();
        assert_eq!(p.require("n").unwrap(), "5");
        assert!(p.require("empty").is_err());
        assert!(Params::from_body(None, b"{not json").is_err());
        assert!(Params::from_body(Some("application/json"), b"[1]").is_err());
        let sniffed = Params::from_body(None, br#" {"a":"b"}"#).unwrap();
        assert_eq!(sniffed.require("a").unwrap(), "b");
    }

    #[test]
    fn duplicates_are_refused() {
        let p = Params::from_form(b"a=1&b=2&a=3");
        assert!(p.get("a").is_err());
        assert_eq!(p.first_duplicate(), Some("a"));
        assert_eq!(p.get("b").unwrap(), Some("2"));
    }
}
