//! Token endpoint request bodies and the token response, lwa-spec §1.6, §2.3, §3.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{ClientId, RedirectUri};
use crate::pkce::PkceCodeVerifier;
use crate::secret::{AccessToken, AuthorizationCode, ClientSecret, DeviceCode, RefreshToken};

/// A `POST /auth/o2/token` body, one variant per grant.
///
/// Bodies are sent `application/x-www-form-urlencoded` (what the AVS SDK sends); the emulator
/// also accepts JSON. [`TokenRequest::form_pairs`] gives the pairs in the SDK's order, with the
/// secrets exposed only into the returned vector, which the caller hands straight to the HTTP
/// client.
#[derive(Debug)]
pub enum TokenRequest<'a> {
    /// Companion-app flow: the code the companion captured plus the device's verifier.
    AuthorizationCode {
        /// From the redirect.
        code: &'a AuthorizationCode,
        /// Exactly the one used at `/ap/oa`.
        redirect_uri: &'a RedirectUri,
        /// The companion's client id.
        client_id: &'a ClientId,
        /// The verifier whose challenge went into the authorize URL.
        code_verifier: &'a PkceCodeVerifier,
    },
    /// Refresh, with a secret only for web-kind clients.
    RefreshToken {
        /// The stored refresh token.
        refresh_token: &'a RefreshToken,
        /// The client the token was issued to.
        client_id: &'a ClientId,
        /// Web-kind clients only.
        client_secret: Option<&'a ClientSecret>,
    },
    /// CBL polling (`grant_type=device_code`, not the RFC 8628 URN; no client id).
    DeviceCode {
        /// From the code-pair response.
        device_code: &'a DeviceCode,
        /// From the code-pair response.
        user_code: &'a str,
    },
}

impl TokenRequest<'_> {
    /// The `grant_type` value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
            Self::DeviceCode { .. } => "device_code",
        }
    }

    /// Form fields in the order Amazon's clients send them. Contains secrets: never log it.
    pub fn form_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![("grant_type", self.grant_type())];
        match self {
            Self::AuthorizationCode {
                code,
                redirect_uri,
                client_id,
                code_verifier,
            } => pairs.extend([
                ("code", code.expose_secret()),
                ("redirect_uri", redirect_uri.as_str()),
                ("client_id", client_id.as_str()),
                ("code_verifier", code_verifier.expose_secret()),
            ]),
            Self::RefreshToken {
                refresh_token,
                client_id,
                client_secret,
            } => {
                pairs.extend([
                    ("refresh_token", refresh_token.expose_secret()),
                    ("client_id", client_id.as_str()),
                ]);
                pairs.extend(client_secret.map(|s| ("client_secret", s.expose_secret())));
            }
            Self::DeviceCode {
                device_code,
                user_code,
            } => pairs.extend([
                ("device_code", device_code.expose_secret()),
                ("user_code", user_code),
            ]),
        }
        pairs
    }

    /// The urlencoded body.
    pub fn to_form_body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.form_pairs())
            .finish()
    }
}

/// `expires_in` as LWA sends it: a number, though some Amazon docs show a numeric string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ExpiresIn(pub u64);

impl<'de> Deserialize<'de> for ExpiresIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrString {
            Number(u64),
            String(String),
        }
        match NumberOrString::deserialize(deserializer)? {
            NumberOrString::Number(n) => Ok(Self(n)),
            NumberOrString::String(s) => s.trim().parse().map(Self).map_err(|_| {
                serde::de::Error::custom(format!(
                    "expires_in must be a whole number of seconds, got {s:?}"
                ))
            }),
        }
    }
}

/// A successful token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// `Atza|…`.
    pub access_token: AccessToken,
    /// `Atzr|…`. LWA always sends one to device clients; kept optional so a response without
    /// one can be reported precisely instead of failing to parse.
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Always `bearer` (compared case-insensitively by [`TokenResponse::validate`]).
    pub token_type: String,
    /// Seconds from when the request was sent.
    pub expires_in: ExpiresIn,
}

impl TokenResponse {
    /// The SDK's success checks (lwa-spec §5.2.4), so a half-valid answer is an error, not a
    /// token that fails later.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.access_token.is_empty() {
            return Err("access_token is empty");
        }
        if !self.token_type.eq_ignore_ascii_case("bearer") {
            return Err("token_type is not bearer");
        }
        if self.expires_in.0 == 0 {
            return Err("expires_in is zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_accepts_number_and_numeric_string() {
        let a: TokenResponse = serde_json::from_str(
            r#"{"access_token":"Atza|x","token_type":"bearer","expires_in":3600,"refresh_token":"Atzr|y"}"#,
        )
        .unwrap();
        let b: TokenResponse = serde_json::from_str(
            r#"{"access_token":"Atza|x","token_type":"bearer","expires_in":"3600","refresh_token":"Atzr|y"}"#,
        )
        .unwrap();
        assert_eq!(a.expires_in, ExpiresIn(3600));
        assert_eq!(b.expires_in, ExpiresIn(3600));
        assert!(serde_json::from_str::<ExpiresIn>(r#""soon""#).is_err());
        assert!(serde_json::from_str::<ExpiresIn>("-1").is_err());
    }

    #[test]
    fn authorization_code_body_has_the_five_fields_in_order() {
        let code = AuthorizationCode::new("ANcMJpTtVktKiZvfdYaV");
        let verifier =
            PkceCodeVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into())
                .unwrap();
        let body = TokenRequest::AuthorizationCode {
            code: &code,
            redirect_uri: &"https://localhost:9745/authresponse".into(),
            client_id: &"amzn1.application-oa2-client.abc".into(),
            code_verifier: &verifier,
        }
        .to_form_body();
        assert_eq!(
            body,
            "grant_type=authorization_code&code=ANcMJpTtVktKiZvfdYaV\
             &redirect_uri=https%3A%2F%2Flocalhost%3A9745%2Fauthresponse\
             &client_id=amzn1.application-oa2-client.abc\
             &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    /// The refresh body for token `Atzr|abc` issued to client `cid`.
    fn refresh_body(client_secret: Option<&ClientSecret>) -> String {
        TokenRequest::RefreshToken {
            refresh_token: &RefreshToken::new("Atzr|abc"),
            client_id: &"cid".into(),
            client_secret,
        }
        .to_form_body()
    }

    #[test]
    fn refresh_body_escapes_the_pipe() {
        assert_eq!(
            refresh_body(None),
            "grant_type=refresh_token&refresh_token=Atzr%7Cabc&client_id=cid"
        );
    }

    #[test]
    fn a_web_clients_refresh_body_ends_with_its_secret() {
        assert_eq!(
            refresh_body(Some(&ClientSecret::new("s3&cret"))),
            "grant_type=refresh_token&refresh_token=Atzr%7Cabc&client_id=cid&client_secret=s3%26cret"
        );
    }

    #[test]
    fn device_code_body_has_no_client_id() {
        let dc = DeviceCode::new("d1e4836b-2799-4294-9379-0025b37ec06c");
        let body = TokenRequest::DeviceCode {
            device_code: &dc,
            user_code: "BEYHYS",
        }
        .to_form_body();
        assert_eq!(
            body,
            "grant_type=device_code&device_code=d1e4836b-2799-4294-9379-0025b37ec06c&user_code=BEYHYS"
        );
    }

    #[test]
    fn validate_rejects_what_the_sdk_rejects() {
        let mut r: TokenResponse = serde_json::from_str(
            r#"{"access_token":"Atza|x","token_type":"Bearer","expires_in":3600}"#,
        )
        .unwrap();
        assert!(r.validate().is_ok());
        r.token_type = "mac".into();
        assert!(r.validate().is_err());
    }
}
