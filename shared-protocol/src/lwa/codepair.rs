//! CBL code-pair request and response (`POST /auth/O2/create/codepair`), lwa-spec §2.1.

use serde::{Deserialize, Serialize};

use super::authorize::{ScopeData, SCOPE_ALEXA_ALL};
use super::token::ExpiresIn;
use crate::ids::{ClientId, DeviceSerialNumber, ProductId};
use crate::secret::DeviceCode;

/// The code-pair request body.
#[derive(Debug, Clone)]
pub struct CodePairRequest {
    /// The "Other devices and platforms" client id.
    pub client_id: ClientId,
    /// The AVS product id (`scope_data.productID`).
    pub product_id: ProductId,
    /// The device serial number (`productInstanceAttributes.deviceSerialNumber`).
    pub dsn: DeviceSerialNumber,
}

impl CodePairRequest {
    /// The urlencoded body: `response_type=device_code&client_id&scope&scope_data`.
    pub fn to_form_body(&self) -> String {
        let scope_data = ScopeData::new(self.product_id.clone(), self.dsn.clone()).to_json();
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "device_code")
            .append_pair("client_id", self.client_id.as_str())
            .append_pair("scope", SCOPE_ALEXA_ALL)
            .append_pair("scope_data", &scope_data)
            .finish()
    }
}

/// The code-pair response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodePairResponse {
    /// Six upper-case letters the user types at `verification_uri`.
    pub user_code: String,
    /// Secret handle the device polls with.
    pub device_code: DeviceCode,
    /// Where the user goes (`https://amazon.com/us/code`).
    pub verification_uri: String,
    /// Life of the pair in seconds (600).
    pub expires_in: ExpiresIn,
    /// Server's suggested poll interval; the SDK ignores it and polls every 5 s.
    #[serde(default)]
    pub interval: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_captured_response() {
        let r: CodePairResponse = serde_json::from_str(
            r#"{"device_code":"d1e4836b-2799-4294-9379-0025b37ec06c","expires_in":600,"interval":30,"user_code":"BEYHYS","verification_uri":"https://amazon.com/us/code"}"#,
        )
        .unwrap();
        assert_eq!(r.user_code, "BEYHYS");
        assert_eq!(r.expires_in, ExpiresIn(600));
        assert_eq!(r.interval, Some(30));
    }

    #[test]
    fn request_body_matches_spec() {
        let body = CodePairRequest {
            client_id: "amzn1.application-oa2-client.abc".into(),
            product_id: "my_device".into(),
            dsn: "123456".into(),
        }
        .to_form_body();
        assert_eq!(
            body,
            "response_type=device_code&client_id=amzn1.application-oa2-client.abc&scope=alexa%3Aall&scope_data=%7B%22alexa%3Aall%22%3A%7B%22productID%22%3A%22my_device%22%2C%22productInstanceAttributes%22%3A%7B%22deviceSerialNumber%22%3A%22123456%22%7D%7D%7D"
        );
    }
}
