//! `POST /auth/o2/token` for every grant (lwa-spec §1.6, §2.3, §3, §4, §8.5–§8.7).
//!
//! - `authorization_code`: single use (any redemption attempt consumes the code; a second one
//!   also revokes the tokens issued from it), 5-minute life, bound to the client, the exact
//!   `redirect_uri` and the PKCE challenge; every mismatch is `invalid_grant` "…: code".
//!   Web clients without a `code_verifier` must authenticate with their secret; a web client
//!   that exchanges without its secret (PKCE only) gets an access token and **no refresh
//!   token**, as Amazon documents (lwa-spec §11): one hour of access, then nothing.
//! - `refresh_token`: the same refresh token back, a rotated one, or none (the presented one
//!   stays valid; `RefreshTokenMode::Omit`); web clients must send their secret
//!   (`invalid_request` "…: client_secret", which the SDK reports as INVALID_CBL_CLIENT_ID).
//! - `device_code`: CBL polling; no client id (lwa-spec §2.3).
//! - `client_credentials`: web clients with their secret; an access token only.
//!
//! Client secrets come in the body or as HTTP Basic (`client_id:client_secret`).

use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use shared_protocol::lwa::{ExpiresIn, TokenResponse};
use shared_protocol::pkce::PkceCodeVerifier;
use shared_protocol::secret::RefreshToken;
use subtle::ConstantTimeEq as _;

use crate::config::RefreshTokenMode;
use crate::oauth_error::{json_response, OAuthError};
use crate::params::Params;
use crate::registry::{Client, ClientKind};
use crate::server::Shared;
use crate::store::{Minted, PairStatus};

pub(super) fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> super::O2Result {
    let content_type = super::content_type(headers);
    let params = Params::from_body(content_type, body).map_err(|_| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is not a JSON object",
        )
    })?;
    if let Some(dup) = params.first_duplicate() {
        return Err(OAuthError::duplicate(dup));
    }
    let req = TokenRequest {
        shared,
        basic: basic_auth(headers)?,
        params,
    };
    match req.params.require("grant_type")? {
        "authorization_code" => authorization_code(&req),
        "refresh_token" => refresh(&req),
        "device_code" => device_code(&req),
        "client_credentials" => client_credentials(&req),
        _ => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        )),
    }
}

/// `Authorization: Basic base64(client_id:client_secret)`, if present.
fn basic_auth(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A client identified by a token request.
struct Caller<'a> {
    client: &'a Client,
    /// It sent its (right) secret.
    with_secret: bool,
}

/// One token request, as every grant reads it.
struct TokenRequest<'a> {
    shared: &'a Shared,
    params: Params,
    /// HTTP Basic credentials (`client_id`, `client_secret`), if sent.
    basic: Option<(String, String)>,
}

impl<'a> TokenRequest<'a> {
    /// Identifies the client and checks its secret. `secret_required_for_web`: a web client
    /// that sends no secret gets `invalid_request` "…missing a required parameter :
    /// client_secret".
    fn authenticate(&self, secret_required_for_web: bool) -> Result<Caller<'a>, OAuthError> {
        let (shared, params) = (self.shared, &self.params);
        let body_id = params.get("client_id")?;
        let body_secret = params.get("client_secret")?;
        let (client_id, secret) = match (&self.basic, body_id) {
            (Some((id, _)), Some(body)) if id != body => return Err(OAuthError::invalid_client()),
            // `client_id:` with an empty secret (what some libraries send for public clients)
            // authenticates nothing.
            (Some((id, secret)), _) => {
                (id.as_str(), Some(secret.as_str()).filter(|s| !s.is_empty()))
            }
            (None, Some(id)) => (id, body_secret),
            (None, None) => return Err(OAuthError::missing("client_id")),
        };
        let client = shared
            .registry
            .client(client_id)
            .ok_or_else(OAuthError::invalid_client)?;
        match (secret, &client.client_secret) {
            (Some(given), Some(expected)) => {
                if !bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
                    return Err(OAuthError::invalid_client());
                }
            }
            // A device client has no secret to check.
            (Some(_), None) => return Err(OAuthError::invalid_client()),
            (None, _) if client.kind == ClientKind::Web && secret_required_for_web => {
                return Err(OAuthError::missing("client_secret"))
            }
            (None, _) => {}
        }
        Ok(Caller {
            client,
            with_secret: secret.is_some(),
        })
    }
}

/// The token response; without a refresh token the key is absent, as LWA sends it.
fn token_response(minted: Minted) -> Response {
    let body = TokenResponse {
        access_token: minted.access,
        refresh_token: minted.refresh,
        token_type: "bearer".into(),
        expires_in: ExpiresIn(minted.expires_in),
    };
    let mut json = serde_json::to_value(&body).unwrap_or_default();
    if let Some(fields) = json.as_object_mut() {
        fields.retain(|_, v| !v.is_null());
    }
    json_response(StatusCode::OK, json.to_string())
}

fn authorization_code(req: &TokenRequest) -> Result<Response, OAuthError> {
    let code = req.params.require("code")?;
    let redirect_uri = req.params.require("redirect_uri")?;
    let verifier = req.params.get("code_verifier")?;
    let Caller {
        client,
        with_secret,
    } = req.authenticate(verifier.is_none())?;
    let invalid = || OAuthError::invalid_grant("code");

    let mut store = req.shared.lock();
    let now = store.now();
    let record = store.code_mut(code).ok_or_else(invalid)?;
    if record.used {
        // RFC 6749 §4.1.2: a reused code revokes what was issued from it.
        let grant_id = record.grant.id;
        store.revoke_grant(grant_id);
        return Err(invalid());
    }
    record.used = true;
    if now >= record.expires_at
        || record.grant.client_id != client.client_id
        || record.redirect_uri != redirect_uri
    {
        return Err(invalid());
    }
    if let Some(challenge) = &record.challenge {
        let verifier = verifier
            .and_then(|v| PkceCodeVerifier::from_string(v.to_owned()).ok())
            .ok_or_else(invalid)?;
        if !verifier.matches(challenge) {
            return Err(invalid());
        }
    }
    let grant = record.grant.clone();
    let with_refresh = client.kind == ClientKind::Device || with_secret;
    let minted = store.mint(&grant, with_refresh);
    Ok(token_response(minted))
}

fn refresh(req: &TokenRequest) -> Result<Response, OAuthError> {
    let presented = req.params.require("refresh_token")?;
    let client = req.authenticate(true)?.client;
    let invalid = || OAuthError::invalid_grant("refresh_token");

    let mut store = req.shared.lock();
    let grant = store.refresh(presented).map_err(|_| invalid())?;
    if grant.client_id != client.client_id {
        return Err(invalid());
    }
    let mut minted = store.mint(&grant, false);
    minted.refresh = match store.settings.refresh_token_mode {
        RefreshTokenMode::Same => Some(RefreshToken::new(presented)),
        // The presented token is left as it is: still valid, as RFC 6749 §6 has it.
        RefreshTokenMode::Omit => None,
        RefreshTokenMode::Rotate => {
            let grace = Duration::from_secs(store.settings.refresh_token_grace_secs);
            let fresh = store.mint_refresh(&grant);
            store.retire_refresh(presented, grace);
            Some(fresh)
        }
    };
    drop(store);
    Ok(token_response(minted))
}

fn device_code(req: &TokenRequest) -> Result<Response, OAuthError> {
    let device_code = req.params.require("device_code")?;
    let user_code = req.params.require("user_code")?;
    let invalid = || OAuthError::cbl("invalid_code_pair");

    let mut store = req.shared.lock();
    let now = store.now();
    let settings = store.settings.clone();
    let pair = store.pair_mut(device_code).ok_or_else(invalid)?;
    if !pair.user_code.eq_ignore_ascii_case(user_code.trim()) || now >= pair.expires_at {
        return Err(invalid());
    }
    let previous_poll = pair.last_poll.replace(now);
    match pair.status.clone() {
        PairStatus::Pending => {
            let too_fast = previous_poll.is_some_and(|prev| {
                now.saturating_duration_since(prev)
                    < Duration::from_secs(settings.codepair_interval_secs)
            });
            if settings.slow_down && too_fast {
                Err(OAuthError::cbl("slow_down"))
            } else {
                Err(OAuthError::cbl("authorization_pending"))
            }
        }
        PairStatus::Denied => Err(OAuthError::cbl(&settings.denied_code_pair_error)),
        PairStatus::Redeemed => Err(invalid()),
        PairStatus::Approved(user_id) => {
            pair.status = PairStatus::Redeemed;
            let client_id = pair.client_id.clone();
            let scopes = pair.scopes.clone();
            let grant = store.new_grant(user_id, client_id, scopes);
            let minted = store.mint(&grant, true);
            Ok(token_response(minted))
        }
    }
}

fn client_credentials(req: &TokenRequest) -> Result<Response, OAuthError> {
    let client = req.authenticate(true)?.client;
    if client.kind != ClientKind::Web {
        return Err(OAuthError::unauthorized_client("client_credentials"));
    }
    let scopes: Vec<String> = req
        .params
        .get("scope")?
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut store = req.shared.lock();
    let grant = store.new_grant(
        format!("amzn1.application.{}", client.client_id).into(),
        client.client_id.clone(),
        scopes.clone(),
    );
    let minted = store.mint(&grant, false);
    drop(store);
    let mut body = json!({
        "access_token": minted.access.expose_secret(),
        "token_type": "bearer",
        "expires_in": minted.expires_in,
    });
    if !scopes.is_empty() {
        body["scope"] = json!(scopes.join(" "));
    }
    Ok(json_response(StatusCode::OK, body.to_string()))
}
