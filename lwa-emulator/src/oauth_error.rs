//! LWA-style JSON error responses: `{"error_description":"…","error":"…"}` (description first,
//! as LWA writes it), `Content-Type: application/json;charset=UTF-8`, never cached.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shared_protocol::lwa::LwaErrorBody;

/// An error answer from an API endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: String,
    pub(crate) description: String,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            description: description.into(),
        }
    }

    /// 400 `invalid_request` "The request is missing a required parameter : name".
    pub(crate) fn missing(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The request is missing a required parameter : {name}"),
        )
    }

    /// 400 `invalid_request` "The request has a duplicate parameter : name".
    pub(crate) fn duplicate(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The request has a duplicate parameter : {name}"),
        )
    }

    /// 400 `invalid_request` "The request has an invalid parameter : name".
    pub(crate) fn invalid_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The request has an invalid parameter : {name}"),
        )
    }

    /// 400 `invalid_grant` "The request has an invalid grant parameter : name".
    pub(crate) fn invalid_grant(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            format!("The request has an invalid grant parameter : {name}"),
        )
    }

    /// 400 `InvalidValue` "The request has an invalid parameter : name" (code-pair endpoint).
    pub(crate) fn invalid_value(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            format!("The request has an invalid parameter : {name}"),
        )
    }

    /// 400 `invalid_client`.
    pub(crate) fn invalid_client() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Client authentication failed",
        )
    }

    /// 400 `unauthorized_client`.
    pub(crate) fn unauthorized_client(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("The client is not authorized for {what}"),
        )
    }

    /// A CBL polling answer (`authorization_pending`, `slow_down`, `invalid_code_pair`).
    pub(crate) fn cbl(error: &str) -> Self {
        let description = match error {
            "authorization_pending" => "The authorization request is still pending",
            "slow_down" => "The client is polling too quickly",
            "invalid_code_pair" => "The code pair is invalid or has expired",
            _ => "The code pair was not approved",
        };
        Self::new(StatusCode::BAD_REQUEST, error, description)
    }

    pub(crate) fn body(&self) -> LwaErrorBody {
        LwaErrorBody::new(self.error.clone(), self.description.clone())
    }
}

/// `application/json;charset=UTF-8`, as in LWA's documentation examples.
pub(crate) const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// A JSON response with LWA's content type and no-store caching (RFC 6749 §5.1).
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&self.body()).unwrap_or_default();
        json_response(self.status, body)
    }
}
