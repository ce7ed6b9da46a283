//! The CBL verification page (`verification_uri`): a signed-in user types the device's code
//! and approves or denies it (lwa-spec §2.2). Same session and CSRF rules as the consent page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::cookies::{cookie_session, form_session, FormRefused, FormSession};
use super::html::{self, SigninTarget};
use super::page_form::PageForm;
use crate::server::Shared;
use crate::store::PairStatus;

#[derive(Deserialize)]
pub(crate) struct CodeQuery {
    #[serde(default)]
    user_code: String,
}

fn clean_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphabetic())
        .take(16)
        .collect::<String>()
        .to_ascii_uppercase()
}

pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<CodeQuery>,
) -> Response {
    let prefill = clean_code(&q.user_code);
    let session = cookie_session(&shared.lock(), &headers);
    match session {
        Some(FormSession { user_id, csrf, .. }) => {
            let name = shared
                .registry
                .user(user_id.as_str())
                .map(|u| u.name.clone())
                .unwrap_or_default();
            html::code_page(StatusCode::OK, &csrf, &name, &prefill, None)
        }
        None => {
            let next = if prefill.is_empty() {
                "/code".to_owned()
            } else {
                format!("/code?user_code={prefill}")
            };
            html::login_page(StatusCode::OK, SigninTarget::Next(&next), None, None, "")
        }
    }
}

pub(crate) async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: PageForm,
) -> Response {
    let mut store = shared.lock();
    let FormSession { user_id, csrf, .. } = match form_session(&store, &headers, form.field("csrf"))
    {
        Ok(session) => session,
        Err(why) => {
            let message = match why {
                FormRefused::NotSignedIn => "You are not signed in (missing or expired session).",
                FormRefused::BadCsrf => "The form could not be verified (bad CSRF token).",
            };
            return html::error_page(StatusCode::FORBIDDEN, "Request refused", message);
        }
    };
    let code = clean_code(form.field("user_code"));
    let approve = match form.field("decision") {
        "allow" => true,
        "deny" => false,
        _ => {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                "Request refused",
                "Choose Continue or Deny.",
            )
        }
    };
    match store.pending_pair_by_user_code(&code) {
        Some(pair) => {
            pair.status = if approve {
                PairStatus::Approved(user_id)
            } else {
                PairStatus::Denied
            };
            drop(store);
            html::code_result_page(approve)
        }
        None => {
            drop(store);
            let name = shared
                .registry
                .user(user_id.as_str())
                .map(|u| u.name.clone())
                .unwrap_or_default();
            html::code_page(
                StatusCode::BAD_REQUEST,
                &csrf,
                &name,
                &code,
                Some("That code is not valid or has expired. Check the code on your device."),
            )
        }
    }
}
