//! The token-checking part of AVS (lwa-spec §6): `GET /ping` and the downchannel
//! `GET /v20160207/directives`. A live token granted the `alexa:all` scope gets 204 / an open
//! (empty) multipart response; a missing, expired or revoked one, or one granted other scopes
//! only (a `profile` token from a CBL pair made with `scope=profile`), gets 403 with the
//! System.Exception UNAUTHORIZED_REQUEST_EXCEPTION body, which is what makes the SDK refresh at
//! once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::resource::presented_token;
use crate::oauth_error::json_response;
use crate::server::Shared;

/// The multipart boundary of the downchannel response.
const BOUNDARY: &str = "------avs-pair-lwa-emulator-boundary";

fn unauthorized() -> Response {
    let body = json!({
        "header": {
            "namespace": "System",
            "name": "Exception",
            "messageId": uuid::Uuid::new_v4().to_string(),
        },
        "payload": {
            "code": "UNAUTHORIZED_REQUEST_EXCEPTION",
            "description": "Unable to authenticate the request. Please provide a valid authorization token.",
        }
    });
    json_response(StatusCode::FORBIDDEN, body.to_string())
}

/// The scope AVS requires of every token.
const AVS_SCOPE: &str = "alexa:all";

fn token_is_live(shared: &Shared, headers: &HeaderMap, query: Option<&str>) -> bool {
    presented_token(headers, query).is_some_and(|t| {
        shared
            .lock()
            .access(&t)
            .is_ok_and(|record| record.grant.has_scope(AVS_SCOPE))
    })
}

pub(crate) async fn ping(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if token_is_live(&shared, &headers, query.as_deref()) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unauthorized()
    }
}

pub(crate) async fn directives(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !token_is_live(&shared, &headers, query.as_deref()) {
        return unauthorized();
    }
    let hold = Duration::from_secs(shared.lock().settings.directives_hold_secs);
    let shutdown = shared.shutdown.clone();
    // An empty body that stays open until the emulator stops or the hold time passes.
    let stream = futures_util::stream::unfold(false, move |done| {
        let mut shutdown = shutdown.clone();
        async move {
            if done {
                return None;
            }
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => {}
                _ = tokio::time::sleep(hold) => {}
            }
            Some((Ok::<Bytes, Infallible>(Bytes::new()), true))
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "multipart/related; boundary={BOUNDARY}; type=\"application/json\""
    )) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}
