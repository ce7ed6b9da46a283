//! Token-checking LWA endpoints: `GET /auth/o2/tokeninfo` and `GET /user/profile`
//! (lwa-spec §6). The token may come as `?access_token=`, `Authorization: Bearer`, or
//! `x-amz-access-token`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{is_o2, not_found};
use crate::oauth_error::{json_response, OAuthError};
use crate::params::Params;
use crate::server::Shared;

/// The access token a request presents, from the query, a Bearer header or
/// `x-amz-access-token` (first found).
pub(crate) fn presented_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Ok(Some(token)) = Params::from_query(query).get("access_token") {
        return Some(token.to_owned());
    }
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = value.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim().to_owned());
            }
        }
    }
    headers
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn invalid_token(status: StatusCode) -> Response {
    let mut response = OAuthError::new(
        status,
        "invalid_token",
        "The access token provided is expired, revoked, malformed, or invalid",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

pub(crate) async fn tokeninfo(
    State(shared): State<Arc<Shared>>,
    Path(o2): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !is_o2(&o2) {
        return not_found().await;
    }
    let Some(token) = presented_token(&headers, query.as_deref()) else {
        return OAuthError::missing("access_token").into_response();
    };
    let store = shared.lock();
    let Ok(record) = store.access(&token) else {
        return invalid_token(StatusCode::BAD_REQUEST);
    };
    let body = json!({
        "iss": "https://www.amazon.com",
        "user_id": record.grant.user_id,
        "aud": record.grant.client_id,
        "app_id": record.grant.client_id,
        "exp": store.remaining(record),
        "iat": record.issued_unix,
        "scope": record.grant.scopes.join(" "),
    });
    json_response(StatusCode::OK, body.to_string())
}

pub(crate) async fn profile(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(token) = presented_token(&headers, query.as_deref()) else {
        return OAuthError::missing("access_token").into_response();
    };
    let store = shared.lock();
    let Ok(record) = store.access(&token) else {
        return invalid_token(StatusCode::UNAUTHORIZED);
    };
    let grant = record.grant.clone();
    let withhold = store.settings.withhold_profile;
    drop(store);
    let mut body = json!({ "user_id": grant.user_id });
    if let Some(user) = shared.registry.user(grant.user_id.as_str()) {
        if grant.has_scope("profile") && !withhold {
            body["name"] = json!(user.name);
            body["email"] = json!(user.email);
        }
        if grant.has_scope("postal_code") {
            if let Some(pc) = &user.postal_code {
                body["postal_code"] = json!(pc);
            }
        }
    }
    json_response(StatusCode::OK, body.to_string())
}
