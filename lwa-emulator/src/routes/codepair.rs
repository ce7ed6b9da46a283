//! `POST /auth/O2/create/codepair` (lwa-spec §2.1): a CBL user code and device code.

use axum::http::{HeaderMap, StatusCode};
use shared_protocol::lwa::{CodePairResponse, ExpiresIn, SCOPE_ALEXA_ALL};

use super::authorize_request::{AlexaDevice, KNOWN_SCOPES};
use crate::oauth_error::{json_response, OAuthError};
use crate::params::Params;
use crate::registry::{Client, Registry};
use crate::server::Shared;

pub(super) fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> super::O2Result {
    let content_type = super::content_type(headers);
    let params =
        Params::from_body(content_type, body).map_err(|_| OAuthError::invalid_param("body"))?;
    let (client, scopes) = check(&shared.registry, &params)?;
    issue(shared, client, scopes)
}

/// The request, checked in this order (the first failure answers): repeated parameters,
/// `response_type`, the client, the scopes, and for `alexa:all` the device in `scope_data`.
fn check<'r>(
    registry: &'r Registry,
    params: &Params,
) -> Result<(&'r Client, Vec<String>), OAuthError> {
    // The LWA Android SDK sends one `scope` parameter per scope (lwa-spec §7).
    if let Some(dup) = params.first_duplicate().filter(|d| *d != "scope") {
        return Err(OAuthError::duplicate(dup));
    }
    if params.require("response_type")? != "device_code" {
        return Err(OAuthError::invalid_param("response_type"));
    }
    let client = registry
        .client(params.require("client_id")?)
        .ok_or_else(|| OAuthError::invalid_value("client_id"))?;
    let scopes = requested_scopes(params)?;
    if scopes.iter().any(|s| s == SCOPE_ALEXA_ALL) {
        let raw = params.require("scope_data")?;
        AlexaDevice::from_scope_data(raw, registry, client)
            .map_err(|_| OAuthError::invalid_value("scope_data"))?;
    }
    Ok((client, scopes))
}

/// Every `scope` parameter's space-separated scopes: at least one, all known.
fn requested_scopes(params: &Params) -> Result<Vec<String>, OAuthError> {
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
    Ok(scopes)
}

/// A new code pair for `client`, answered with the configured page, lifetime and interval.
fn issue(shared: &Shared, client: &Client, scopes: Vec<String>) -> super::O2Result {
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
