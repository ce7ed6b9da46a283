//! The control API: what tests and demos do to the emulator that no real client can (revoke,
//! approve a CBL code without a browser, inject faults, read the request record, bend time).
//!
//! The same operations back the Rust handle ([`crate::RunningEmulator`]) and the JSON routes
//! under `/_emulator/…` for out-of-process tests:
//!
//! | route | body | effect |
//! |---|---|---|
//! | `GET /_emulator/health` | – | `{"ok":true}` |
//! | `GET /_emulator/requests` / `DELETE` | – | the request record / clear it |
//! | `POST /_emulator/faults` / `DELETE` | `{"endpoint":"token","fault":{"kind":"status","status":503,"retry_after":2},"count":1}` | queue / clear faults |
//! | `POST /_emulator/users/{user}/revoke` | – | revoke the user's tokens |
//! | `POST /_emulator/refresh-tokens/revoke` | `{"refresh_token":"Atzr|…"}` | revoke one refresh token |
//! | `POST /_emulator/codepairs/{user_code}/approve` | `{"user":"alice@example.com"}` | approve a CBL code |
//! | `POST /_emulator/codepairs/{user_code}/deny` | – | deny it |
//! | `POST /_emulator/access-token-lifetime` | `{"seconds":5}` | lifetime of new access tokens |
//! | `POST /_emulator/refresh-token-mode` | `{"mode":"omit"}` | what refresh answers carry as `refresh_token` (`same`, `rotate`, `omit`) |
//! | `POST /_emulator/access-tokens/expire` | – | expire every live access token |
//! | `POST /_emulator/clock/advance` | `{"seconds":301}` | age everything |
//! | `POST /_emulator/tokens/mint` | `{"user":"alice@example.com","client_id":"…"}` | tokens without a login |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared_protocol::lwa::{ExpiresIn, TokenResponse, SCOPE_ALEXA_ALL};

use crate::config::RefreshTokenMode;
use crate::fault::{Endpoint, Fault};
use crate::redact::REDACTED;
use crate::server::Shared;
use crate::store::PairStatus;

/// How many tokens a revocation hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeSummary {
    /// Refresh tokens revoked.
    pub refresh_tokens: usize,
    /// Access tokens revoked.
    pub access_tokens: usize,
}

/// A control request that names something that does not exist.
///
/// The messages (also the control API's JSON `error`) and `Debug` do not repeat an e-mail
/// address or a user code: the caller holds the value (the field, in process), and a message
/// or a failed test's `unwrap` may end up in a log.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such user (email or user id).
    #[error("unknown user: no account has that e-mail address or user id")]
    UnknownUser(String),
    /// No such client.
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    /// No pending, unexpired code pair has this user code.
    #[error("no pending code pair has that user code")]
    UnknownUserCode(String),
}

impl std::fmt::Debug for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownUser(_) => f.debug_tuple("UnknownUser").field(&REDACTED).finish(),
            Self::UnknownClient(id) => f.debug_tuple("UnknownClient").field(id).finish(),
            Self::UnknownUserCode(_) => f.debug_tuple("UnknownUserCode").field(&REDACTED).finish(),
        }
    }
}

impl Shared {
    pub(crate) fn revoke_user(&self, user: &str) -> Result<RevokeSummary, ControlError> {
        let user = self
            .registry
            .user(user)
            .ok_or_else(|| ControlError::UnknownUser(user.to_owned()))?;
        let (refresh_tokens, access_tokens) = self.lock().revoke_user(&user.user_id);
        Ok(RevokeSummary {
            refresh_tokens,
            access_tokens,
        })
    }

    /// `Some(user)` approves as that user, `None` denies.
    pub(crate) fn decide_user_code(
        &self,
        user_code: &str,
        approve_as: Option<&str>,
    ) -> Result<(), ControlError> {
        let status = match approve_as {
            Some(user) => PairStatus::Approved(
                self.registry
                    .user(user)
                    .ok_or_else(|| ControlError::UnknownUser(user.to_owned()))?
                    .user_id
                    .clone(),
            ),
            None => PairStatus::Denied,
        };
        let mut store = self.lock();
        let pair = store
            .pending_pair_by_user_code(user_code)
            .ok_or_else(|| ControlError::UnknownUserCode(user_code.to_owned()))?;
        pair.status = status;
        Ok(())
    }

    pub(crate) fn mint_tokens(
        &self,
        user: &str,
        client_id: &str,
    ) -> Result<TokenResponse, ControlError> {
        let user = self
            .registry
            .user(user)
            .ok_or_else(|| ControlError::UnknownUser(user.to_owned()))?;
        let client = self
            .registry
            .client(client_id)
            .ok_or_else(|| ControlError::UnknownClient(client_id.to_owned()))?;
        let mut store = self.lock();
        let grant = store.new_grant(
            user.user_id.clone(),
            client.client_id.clone(),
            vec![SCOPE_ALEXA_ALL.to_owned()],
        );
        let minted = store.mint(&grant, true);
        Ok(TokenResponse {
            access_token: minted.access,
            refresh_token: minted.refresh,
            token_type: "bearer".into(),
            expires_in: ExpiresIn(minted.expires_in),
        })
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/health", get(health))
        .route(
            "/_emulator/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/_emulator/faults", post(add_fault).delete(clear_faults))
        .route("/_emulator/users/{user}/revoke", post(revoke_user))
        .route("/_emulator/refresh-tokens/revoke", post(revoke_refresh))
        .route("/_emulator/codepairs/{user_code}/approve", post(approve))
        .route("/_emulator/codepairs/{user_code}/deny", post(deny))
        .route("/_emulator/access-token-lifetime", post(set_lifetime))
        .route("/_emulator/refresh-token-mode", post(set_mode))
        .route("/_emulator/access-tokens/expire", post(expire))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/tokens/mint", post(mint))
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().requests()).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().clear_requests();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    endpoint: Endpoint,
    fault: Fault,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn add_fault(State(shared): State<Arc<Shared>>, Json(req): Json<FaultRequest>) -> Response {
    if let Fault::Status { status, .. } = &req.fault {
        if !(400..=599).contains(status) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "fault status must be 400..=599" })),
            )
                .into_response();
        }
    }
    shared
        .lock()
        .faults
        .push(req.endpoint, req.fault, req.count);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn revoke_user(State(shared): State<Arc<Shared>>, Path(user): Path<String>) -> Response {
    match shared.revoke_user(&user) {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRefresh {
    refresh_token: String,
}

async fn revoke_refresh(
    State(shared): State<Arc<Shared>>,
    Json(req): Json<RevokeRefresh>,
) -> Response {
    let revoked = shared.lock().revoke_refresh_token(&req.refresh_token);
    Json(json!({ "revoked": revoked })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {
    user: String,
}

async fn approve(
    State(shared): State<Arc<Shared>>,
    Path(user_code): Path<String>,
    Json(req): Json<Approve>,
) -> Response {
    match shared.decide_user_code(&user_code, Some(&req.user)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn deny(State(shared): State<Arc<Shared>>, Path(user_code): Path<String>) -> Response {
    match shared.decide_user_code(&user_code, None) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u64,
}

/// The body of `refresh-token-mode`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mode {
    mode: RefreshTokenMode,
}

async fn set_lifetime(State(shared): State<Arc<Shared>>, Json(req): Json<Seconds>) -> StatusCode {
    shared.lock().settings.access_token_lifetime_secs = req.seconds.max(1);
    StatusCode::NO_CONTENT
}

async fn set_mode(State(shared): State<Arc<Shared>>, Json(req): Json<Mode>) -> StatusCode {
    shared.lock().settings.refresh_token_mode = req.mode;
    StatusCode::NO_CONTENT
}

async fn expire(State(shared): State<Arc<Shared>>) -> Response {
    let expired = shared.lock().expire_access_tokens();
    Json(json!({ "expired": expired })).into_response()
}

async fn advance_clock(State(shared): State<Arc<Shared>>, Json(req): Json<Seconds>) -> StatusCode {
    shared
        .lock()
        .advance_clock(Duration::from_secs(req.seconds.min(10 * 365 * 24 * 3600)));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mint {
    user: String,
    client_id: String,
}

async fn mint(State(shared): State<Arc<Shared>>, Json(req): Json<Mint>) -> Response {
    match shared.mint_tokens(&req.user, &req.client_id) {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => e.into_response(),
    }
}
