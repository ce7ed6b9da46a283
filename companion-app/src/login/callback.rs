//! Reading the redirect back from LWA: `?code&scope&state` or `?error&error_description&state`.
//!
//! The `state` is checked before anything else: a response that does not carry the state this
//! login sent did not come from this login (a stale tab, or someone trying to slip their own
//! authorization code in: RFC 6749 §10.12) and is refused, whatever else it says. Error codes
//! become sentences a person can act on.

use shared_protocol::ids::OAuthState;
use shared_protocol::secret::AuthorizationCode;
use url::Url;

use super::LoginError;
use crate::words::Words;

/// Longest authorization code accepted (LWA's are ~20 characters).
const MAX_CODE_LEN: usize = 2048;

/// The parameters of a redirect.
#[derive(Debug, Default)]
pub struct Callback {
    /// `code`.
    pub code: Option<AuthorizationCode>,
    /// `state`.
    pub state: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl Callback {
    /// From a query string (`code=…&state=…`, with or without the leading `?`).
    pub fn from_query(query: &str) -> Self {
        let mut cb = Callback::default();
        let query = query.trim().trim_start_matches('?');
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "code" if cb.code.is_none() => cb.code = Some(AuthorizationCode::new(v)),
                "state" if cb.state.is_none() => cb.state = Some(v.into_owned()),
                "error" if cb.error.is_none() => cb.error = Some(cut(&v, 100)),
                "error_description" if cb.error_description.is_none() => {
                    cb.error_description = Some(cut(&v, 300))
                }
                _ => {}
            }
        }
        cb
    }

    /// From what a user pasted: the full URL they landed on, or just its query.
    pub fn from_pasted(text: &str) -> Self {
        let text = text.trim();
        match Url::parse(text) {
            Ok(url) => Self::from_query(url.query().unwrap_or("")),
            Err(_) => Self::from_query(text.rsplit_once('?').map_or(text, |(_, q)| q)),
        }
    }

    /// Checks `state`, then error, then code.
    pub fn into_code(self, expected: &OAuthState) -> Result<AuthorizationCode, LoginError> {
        match &self.state {
            Some(s) if constant_time_eq(s.as_bytes(), expected.as_str().as_bytes()) => {}
            Some(_) => return Err(LoginError::StateMismatch),
            None => return Err(LoginError::StateMissing),
        }
        if let Some(error) = self.error {
            return Err(if error == "access_denied" {
                LoginError::Denied {
                    description: self.error_description,
                }
            } else {
                LoginError::Authorization {
                    error,
                    description: self.error_description,
                }
            });
        }
        match self.code {
            Some(code) if !code.is_empty() && code.len() <= MAX_CODE_LEN => Ok(code),
            _ => Err(LoginError::MissingCode),
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Compares without an early exit (the `state` and the start token are secrets).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What an OAuth `error` code from `/ap/oa` means for the user, and what to do.
pub fn explain_authorization_error(error: &str) -> Words {
    match error {
        "access_denied" => Words::from("the sign-in was declined or cancelled in the browser; nothing was linked. ")
            .retry_capital()
            .text(" and choose Allow to link the speaker"),
        "invalid_request" => "Amazon rejected the login request; check that the client id and the speaker's product id belong to the same security profile, and that the redirect URI is listed exactly in the security profile's Allowed Return URLs".into(),
        "unauthorized_client" => "this client id may not request Alexa authorization: in the Amazon developer console, enable Login with Amazon for the security profile and link it to the speaker's AVS product".into(),
        "invalid_scope" => "Amazon refused the alexa:all scope: the speaker's product id is not an AVS product of this security profile (check the product id configured on the speaker)".into(),
        "unsupported_response_type" => "Amazon refused response_type=code for this client: use a security profile with an Other devices/Web client".into(),
        "server_error" => "Amazon's login service failed; try again in a few minutes".into(),
        "temporarily_unavailable" => "Amazon's login service is temporarily unavailable; try again in a few minutes".into(),
        _ => "Amazon refused the login; check the security profile's settings (client id, Allowed Return URLs) and try again".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> OAuthState {
        OAuthState::new("s-123")
    }

    #[test]
    fn good_redirect_gives_the_code() {
        let cb = Callback::from_query("?code=ANcMJp&scope=alexa%3Aall&state=s-123");
        assert_eq!(cb.into_code(&state()).unwrap().expose_secret(), "ANcMJp");
    }

    #[test]
    fn state_is_checked_first() {
        let wrong = Callback::from_query("code=abc&state=other");
        assert!(matches!(
            wrong.into_code(&state()),
            Err(LoginError::StateMismatch)
        ));
        let none = Callback::from_query("code=abc");
        assert!(matches!(
            none.into_code(&state()),
            Err(LoginError::StateMissing)
        ));
        // Even an error response with a foreign state is a mismatch, not an error to show.
        let e = Callback::from_query("error=access_denied&state=zzz");
        assert!(matches!(
            e.into_code(&state()),
            Err(LoginError::StateMismatch)
        ));
    }

    #[test]
    fn errors_are_readable() {
        let e =
            Callback::from_query("error=access_denied&error_description=User+said+no&state=s-123")
                .into_code(&state())
                .unwrap_err();
        assert!(matches!(&e, LoginError::Denied { description: Some(d) } if d == "User said no"));
        assert!(e.to_string().contains("declined"), "{e}");
        let e = Callback::from_query("error=invalid_scope&state=s-123")
            .into_code(&state())
            .unwrap_err();
        assert!(e.to_string().contains("product id"), "{e}");
        let e = Callback::from_query("state=s-123")
            .into_code(&state())
            .unwrap_err();
        assert!(matches!(e, LoginError::MissingCode));
    }

    #[test]
    fn pasted_urls_and_queries_work() {
        for text in [
            "http://127.0.0.1:5000/authresponse?code=C1&state=s-123",
            "  amzn://app?code=C1&state=s-123 ",
            "code=C1&state=s-123",
            "/authresponse?code=C1&state=s-123",
        ] {
            let code = Callback::from_pasted(text).into_code(&state()).unwrap();
            assert_eq!(code.expose_secret(), "C1", "{text}");
        }
    }

    #[test]
    fn control_characters_are_stripped_from_descriptions() {
        let cb = Callback::from_query("error=x&error_description=a%0D%0Ab&state=s-123");
        assert_eq!(cb.error_description.as_deref(), Some("ab"));
    }
}
