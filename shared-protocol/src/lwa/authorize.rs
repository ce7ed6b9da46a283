//! The authorization request (`GET /ap/oa`), lwa-spec §1.4.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::ids::{ClientId, DeviceSerialNumber, OAuthState, ProductId, RedirectUri};
use crate::pkce::PkceCodeChallenge;

/// The AVS scope.
pub const SCOPE_ALEXA_ALL: &str = "alexa:all";
/// The customer-profile scope: `/user/profile` then answers `name` and `email` besides
/// `user_id` (lwa-spec §6), so the companion can show who the speaker is linked to.
pub const SCOPE_PROFILE: &str = "profile";
/// What the companion asks for at `/ap/oa`: `alexa:all profile`, as the AVS SDK does when it
/// wants the customer profile (lwa-spec §2.1, §5.4). Only `alexa:all` takes `scope_data`.
pub const AUTHORIZE_SCOPE: &str = "alexa:all profile";

/// `scope_data` for `alexa:all`: `{"alexa:all":{"productID":…,"productInstanceAttributes":
/// {"deviceSerialNumber":…}}}`, serialized compactly with the SDK's key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeData {
    /// The one scope avs-pair asks data for.
    #[serde(rename = "alexa:all")]
    pub alexa_all: AlexaAllScopeData,
}

/// The `alexa:all` entry of [`ScopeData`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlexaAllScopeData {
    /// AVS product id.
    #[serde(rename = "productID")]
    pub product_id: ProductId,
    /// Per-device attributes.
    #[serde(rename = "productInstanceAttributes")]
    pub product_instance_attributes: ProductInstanceAttributes,
}

/// `productInstanceAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInstanceAttributes {
    /// The speaker's serial number, unique per device of this product.
    #[serde(rename = "deviceSerialNumber")]
    pub device_serial_number: DeviceSerialNumber,
}

impl ScopeData {
    /// Scope data for a product and serial number.
    pub fn new(product_id: ProductId, dsn: DeviceSerialNumber) -> Self {
        Self {
            alexa_all: AlexaAllScopeData {
                product_id,
                product_instance_attributes: ProductInstanceAttributes {
                    device_serial_number: dsn,
                },
            },
        }
    }

    /// Compact JSON, as it goes into the `scope_data` parameter.
    pub fn to_json(&self) -> String {
        // Serializing plain strings into JSON cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Everything that goes into an `/ap/oa` URL.
///
/// ```
/// use shared_protocol::lwa::AuthorizeRequest;
/// use shared_protocol::pkce::PkcePair;
/// let pair = PkcePair::generate();
/// let req = AuthorizeRequest {
///     client_id: "amzn1.application-oa2-client.abc".into(),
///     redirect_uri: "http://127.0.0.1:9745/authresponse".into(),
///     product_id: "my_device".into(),
///     dsn: "123456".into(),
///     state: "8e4a".into(),
///     code_challenge: pair.challenge.clone(),
/// };
/// let url = req.to_url(&"https://www.amazon.com/ap/oa".parse().unwrap());
/// assert!(url.as_str().contains("code_challenge_method=S256"));
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The companion's LWA client id.
    pub client_id: ClientId,
    /// Where LWA sends the browser back.
    pub redirect_uri: RedirectUri,
    /// From the speaker's `DeviceInfo`.
    pub product_id: ProductId,
    /// From the speaker's `DeviceInfo`.
    pub dsn: DeviceSerialNumber,
    /// Fresh per login; checked on the redirect.
    pub state: OAuthState,
    /// From the speaker's `DeviceInfo`.
    pub code_challenge: PkceCodeChallenge,
}

impl AuthorizeRequest {
    /// The query parameters in the order lwa-spec §1.4 shows them.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", self.client_id.to_string()),
            ("scope", AUTHORIZE_SCOPE.to_owned()),
            (
                "scope_data",
                ScopeData::new(self.product_id.clone(), self.dsn.clone()).to_json(),
            ),
            ("response_type", "code".to_owned()),
            ("redirect_uri", self.redirect_uri.to_string()),
            ("state", self.state.to_string()),
            ("code_challenge", self.code_challenge.as_str().to_owned()),
            (
                "code_challenge_method",
                self.code_challenge.method().as_str().to_owned(),
            ),
        ]
    }

    /// The full URL: `authorize_endpoint` (e.g. `https://www.amazon.com/ap/oa`) plus the query.
    pub fn to_url(&self, authorize_endpoint: &Url) -> Url {
        let mut url = authorize_endpoint.clone();
        url.set_query(None);
        url.query_pairs_mut().extend_pairs(self.query_pairs());
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkce::{CodeChallengeMethod, PkceCodeChallenge};

    /// lwa-spec §1.4 example, with `state` shortened as in the spec and the `profile` scope
    /// added (issue 15.4: the companion shows the account's name).
    #[test]
    fn matches_the_spec_example() {
        let req = AuthorizeRequest {
            client_id: "amzn1.application-oa2-client.abc".into(),
            redirect_uri: "https://app.example.com/authresponse".into(),
            product_id: "my_device".into(),
            dsn: "123456".into(),
            state: "8e4a".into(),
            code_challenge: PkceCodeChallenge::from_parts(
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                CodeChallengeMethod::S256,
            )
            .unwrap(),
        };
        let url = req.to_url(&"https://www.amazon.com/ap/oa".parse().unwrap());
        // `url` encodes with form rules (space as '+', ':' as %3A, '{' as %7B ...), which is what
        // the spec example shows.
        let expected = "https://www.amazon.com/ap/oa?client_id=amzn1.application-oa2-client.abc\
            &scope=alexa%3Aall+profile\
            &scope_data=%7B%22alexa%3Aall%22%3A%7B%22productID%22%3A%22my_device%22%2C%22productInstanceAttributes%22%3A%7B%22deviceSerialNumber%22%3A%22123456%22%7D%7D%7D\
            &response_type=code\
            &redirect_uri=https%3A%2F%2Fapp.example.com%2Fauthresponse\
            &state=8e4a&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
        assert_eq!(url.as_str(), expected);
    }

    #[test]
    fn scope_data_key_order_is_the_sdks() {
        let json = ScopeData::new("p".into(), "d".into()).to_json();
        assert_eq!(
            json,
            r#"{"alexa:all":{"productID":"p","productInstanceAttributes":{"deviceSerialNumber":"d"}}}"#
        );
    }
}
