//! `POST /auth/O2/create/codepair` (lwa-spec §2.1): a CBL user code and device code.

use axum::http::{HeaderMap, StatusCode};
use shared_protocol::lwa::{CodePairResponse, ExpiresIn, ScopeData, SCOPE_ALEXA_ALL};

use super::authorize_request::KNOWN_SCOPES;
use crate::oauth_error::{json_response, OAuthError};
use crate::params::Params;
use crate::server::Shared;

pub(super) fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> super::O2Result {
    let content_type = super::content_type(headers);
    let params =
        Params::from_body(content_type, body).map_err(|_| OAuthError::invalid_param("body"))?;
    // The LWA Android SDK sends one `scope` parameter per scope (lwa-spec §7).
    if let Some(dup) = params.first_duplicate().filter(|d| *d != "scope") {
        return Err(OAuthError::duplicate(dup));
    }
    match params.require("response_type")? {
        "device_code" => {}
        _ => return Err(OAuthError::invalid_param("response_type")),
    }
    let client_id = params.require("client_id")?;
    let client = shared
        .registry
        .client(client_id)
        .ok_or_else(|| OAuthError::invalid_value("client_id"))?;
    let scopes: Vec<String> = params
        .pairs()
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split_whitespace())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(OAuthError::missing("scope"));
    }
    if scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(OAuthError::invalid_value("scope"));
    }
    if scopes.iter().any(|s| s == SCOPE_ALEXA_ALL) {
        let raw = params.require("scope_data")?;
        let data: ScopeData =
            serde_json::from_str(raw).map_err(|_| OAuthError::invalid_value("scope_data"))?;
        let bound = shared
            .registry
            .product(data.alexa_all.product_id.as_str())
            .is_some_and(|p| p.client_ids.contains(&client.client_id));
        if !bound
            || data
                .alexa_all
                .product_instance_attributes
                .device_serial_number
                .as_str()
                .is_empty()
        {
            return Err(OAuthError::invalid_value("scope_data"));
        }
    }

    let mut store = shared.lock();
    let settings = store.settings.clone();
    let (user_code, device_code) = store.new_pair(client.client_id.clone(), scopes);
    drop(store);
    let response = CodePairResponse {
        user_code,
        device_code,
        verification_uri: settings
            .verification_uri
            .unwrap_or_else(|| format!("{}/code", shared.base_url)),
        expires_in: ExpiresIn(settings.codepair_lifetime_secs),
        interval: Some(settings.codepair_interval_secs),
    };
    let body = serde_json::to_string(&response).unwrap_or_default();
    Ok(json_response(StatusCode::OK, body))
}
