//! The HTTP surface: LWA (`/ap/oa`, `/auth/o2/*`, `/user/profile`), the sign-in and consent
//! pages, the CBL `/code` page, the AVS bits (`/ping`, `/v20160207/directives`) and the control
//! API. Every non-control request passes through [`observe`] (record, log, faults).

mod authorize;
mod authorize_request;
mod avs;
mod cbl_page;
mod codepair;
mod cookies;
mod html;
mod observe;
mod page_form;
mod resource;
mod token;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Router};

use crate::oauth_error::OAuthError;
use crate::server::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ap/oa", get(authorize::start))
        .route("/ap/oa/", get(authorize::start))
        .route("/ap/signin", post(authorize::signin))
        .route(
            "/ap/consent",
            get(authorize::consent_page).post(authorize::consent_submit),
        )
        .route("/code", get(cbl_page::show).post(cbl_page::submit))
        .route("/auth/{o2}/token", o2_post(token::handle))
        .route("/auth/{o2}/create/codepair", o2_post(codepair::handle))
        .route("/auth/{o2}/tokeninfo", get(resource::tokeninfo))
        .route("/user/profile", get(resource::profile))
        .route("/ping", get(avs::ping))
        .route("/v20160207/directives", get(avs::directives))
        .merge(crate::control::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            observe::observe,
        ))
        .with_state(shared)
}

/// True for the `o2` path segment in either spelling (`/auth/o2/…`, `/auth/O2/…`).
pub(crate) fn is_o2(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("o2")
}

/// What an `/auth/o2/…` handler returns: the response, or LWA's JSON error.
pub(crate) type O2Result = Result<Response, OAuthError>;

/// The body handler of an `/auth/o2/…` POST: the request's headers and body.
type O2Handler = fn(&Shared, &HeaderMap, &[u8]) -> O2Result;

/// A POST route for an `/auth/{o2}/…` path: 404 unless the segment is `o2` in some case, and the
/// handler's [`OAuthError`] as LWA's JSON error response.
fn o2_post(handle: O2Handler) -> MethodRouter<Arc<Shared>> {
    post(
        move |State(shared): State<Arc<Shared>>,
              Path(o2): Path<String>,
              headers: HeaderMap,
              body: Bytes| async move {
            if !is_o2(&o2) {
                return not_found().await;
            }
            handle(&shared, &headers, &body).unwrap_or_else(IntoResponse::into_response)
        },
    )
}

/// A request's `Content-Type`, if readable.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

async fn index() -> Html<String> {
    html::index_page()
}
