//! `GET /ap/oa` and the sign-in and consent pages behind it (lwa-spec §1.4, §1.5).
//!
//! The request is validated like LWA does: an unknown client or an unregistered redirect URI
//! gets an error page and no redirect (redirecting there would make the emulator an open
//! redirector); every other problem is redirected back with `error`, `error_description` and
//! `state` (RFC 6749 §4.1.2.1). A valid request becomes a server-side sign-in transaction; the
//! browser carries only its id. Signing in creates a server-side session (HttpOnly cookie) with
//! a CSRF token; the consent POST must come from that session, with that token, for a
//! transaction that session signed in for. Only then is a code issued and the browser sent to
//! `redirect_uri?code=…&scope=…&state=…`.

use std::sync::Arc;

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_protocol::lwa::{ScopeData, SCOPE_ALEXA_ALL};
use shared_protocol::pkce::{CodeChallengeMethod, PkceCodeChallenge};
use url::Url;

use super::cookies::{form_session, session_cookie, set_session_cookie, FormRefused, FormSession};
use super::html::{self, ConsentView, SigninTarget};
use super::page_form::PageForm;
use crate::params::Params;
use crate::server::Shared;
use crate::store::AuthTxn;

/// Scopes the emulator knows.
pub(crate) const KNOWN_SCOPES: &[&str] = &[
    SCOPE_ALEXA_ALL,
    "alexa:voice_service:pre_auth",
    "profile",
    "profile:user_id",
    "postal_code",
];

/// A 302 to `location`, never cached.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `redirect_uri` with extra query parameters appended.
fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The error redirect of RFC 6749 §4.1.2.1.
fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect(&with_query(redirect_uri, &pairs))
}

pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let bad = |msg: &str| html::error_page(StatusCode::BAD_REQUEST, "We cannot sign you in", msg);

    // Problems that must not redirect.
    let client = match params.get("client_id") {
        Ok(Some(id)) => match shared.registry.client(id) {
            Some(client) => client,
            None => return bad("The client_id is not registered with Login with Amazon."),
        },
        Ok(None) => return bad("The request is missing a required parameter : client_id"),
        Err(_) => return bad("The request has a duplicate parameter : client_id"),
    };
    let redirect_uri = match params.get("redirect_uri") {
        Ok(Some(uri)) if client.allows_return_url(uri) => uri.to_owned(),
        Ok(Some(_)) => {
            return bad("The redirect_uri is not one of the client's Allowed Return URLs.")
        }
        Ok(None) => return bad("The request is missing a required parameter : redirect_uri"),
        Err(_) => return bad("The request has a duplicate parameter : redirect_uri"),
    };

    // Problems reported back to the client.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let fail = |error: &str, description: &str| {
        error_redirect(&redirect_uri, error, description, state.as_deref())
    };
    if let Some(dup) = params.first_duplicate() {
        return fail(
            "invalid_request",
            &format!("The request has a duplicate parameter : {dup}"),
        );
    }
    let get = |name: &str| params.get(name).ok().flatten();
    match get("response_type") {
        None => {
            return fail(
                "invalid_request",
                "The request is missing a required parameter : response_type",
            )
        }
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "The authorization server does not support this response_type",
            )
        }
    }
    let Some(scope_param) = get("scope") else {
        return fail(
            "invalid_request",
            "The request is missing a required parameter : scope",
        );
    };
    let scopes: Vec<String> = scope_param.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return fail("invalid_scope", "An unknown scope was requested");
    }
    let mut product_id = None;
    let mut dsn = None;
    if scopes.iter().any(|s| s == SCOPE_ALEXA_ALL) {
        let Some(raw) = get("scope_data") else {
            return fail(
                "invalid_request",
                "The request is missing a required parameter : scope_data",
            );
        };
        let data: ScopeData = match serde_json::from_str(raw) {
            Ok(data) => data,
            Err(_) => {
                return fail(
                    "invalid_request",
                    "The request has an invalid parameter : scope_data",
                )
            }
        };
        let pid = data.alexa_all.product_id;
        let serial = data
            .alexa_all
            .product_instance_attributes
            .device_serial_number;
        if serial.as_str().is_empty() {
            return fail(
                "invalid_request",
                "The request has an invalid parameter : scope_data",
            );
        }
        let bound = shared
            .registry
            .product(pid.as_str())
            .is_some_and(|p| p.client_ids.contains(&client.client_id));
        if !bound {
            return fail(
                "invalid_scope",
                "The productID is not registered with this client's security profile",
            );
        }
        product_id = Some(pid);
        dsn = Some(serial.to_string());
    }
    let challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => {
            return fail(
                "invalid_request",
                "The request is missing a required parameter : code_challenge",
            )
        }
        (Some(value), method) => {
            // RFC 7636 §4.3: the method defaults to plain.
            let method = match method.unwrap_or("plain").parse::<CodeChallengeMethod>() {
                Ok(m) => m,
                Err(_) => {
                    return fail(
                        "invalid_request",
                        "The request has an invalid parameter : code_challenge_method",
                    )
                }
            };
            match PkceCodeChallenge::from_parts(value.to_owned(), method) {
                Ok(c) => Some(c),
                Err(_) => {
                    return fail(
                        "invalid_request",
                        "The request has an invalid parameter : code_challenge",
                    )
                }
            }
        }
    };
    let require_pkce = shared.lock().settings.require_pkce;
    if challenge.is_none() && require_pkce {
        return fail(
            "invalid_request",
            "The request is missing a required parameter : code_challenge",
        );
    }

    let mut store = shared.lock();
    let now = store.now();
    let session = session_cookie(&headers).and_then(|c| {
        store
            .session(&c)
            .map(|(key, s)| (key, s.user_id.clone(), s.csrf.clone()))
    });
    let txn = AuthTxn {
        client_id: client.client_id.clone(),
        redirect_uri,
        scopes,
        scope_param: scope_param.to_owned(),
        product_id,
        dsn,
        state,
        challenge,
        session: session.as_ref().map(|(key, _, _)| *key),
        created: now,
    };
    let view_txn = txn.clone();
    let id = store.insert_txn(txn);
    drop(store);
    match session {
        Some((_, user_id, csrf)) => render_consent(&shared, &id, &view_txn, &user_id, &csrf),
        None => html::login_page(
            StatusCode::OK,
            SigninTarget::Txn(&id),
            Some(&client.name),
            None,
            "",
        ),
    }
}

fn render_consent(
    shared: &Shared,
    txn_id: &str,
    txn: &AuthTxn,
    user_id: &shared_protocol::ids::UserId,
    csrf: &str,
) -> Response {
    let client_name = shared
        .registry
        .client(txn.client_id.as_str())
        .map(|c| c.name.as_str())
        .unwrap_or("this application");
    let user_name = shared
        .registry
        .user(user_id.as_str())
        .map(|u| u.name.as_str())
        .unwrap_or("you");
    html::consent_page(&ConsentView {
        txn: txn_id,
        csrf,
        client_name,
        user_name,
        scopes: &txn.scopes,
        product_id: txn.product_id.as_ref().map(|p| p.as_str()),
        dsn: txn.dsn.as_deref(),
    })
}

/// Only local pages may follow a sign-in (no open redirect through `next`).
fn safe_next(next: &str) -> Option<&str> {
    (next == "/code" || next.starts_with("/code?")).then_some(next)
}

pub(crate) async fn signin(State(shared): State<Arc<Shared>>, form: PageForm) -> Response {
    let email = form.field("email");
    let password = form.field("password");
    let txn_id = form.field("txn");
    let next = safe_next(form.field("next"));

    let mut store = shared.lock();
    let client_name = if txn_id.is_empty() {
        None
    } else {
        match store.txn(txn_id) {
            Some(txn) => shared
                .registry
                .client(txn.client_id.as_str())
                .map(|c| c.name.clone()),
            None => return html::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request is unknown or has expired. Start again from the application.",
            ),
        }
    };
    let target = if txn_id.is_empty() {
        SigninTarget::Next(next.unwrap_or("/code"))
    } else {
        SigninTarget::Txn(txn_id)
    };
    let Some(user) = shared.registry.authenticate(email, password) else {
        drop(store);
        return html::login_page(
            StatusCode::UNAUTHORIZED,
            target,
            client_name.as_deref(),
            Some("Your email or password is incorrect."),
            email,
        );
    };
    let (cookie, key) = store.new_session(user.user_id.clone());
    let location = if txn_id.is_empty() {
        next.unwrap_or("/code").to_owned()
    } else {
        if let Some(txn) = store.txn_mut(txn_id) {
            txn.session = Some(key);
        }
        format!(
            "/ap/consent?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("txn", txn_id)
                .finish()
        )
    };
    drop(store);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&set_session_cookie(&cookie, shared.https)) {
        headers.insert(header::SET_COOKIE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub(crate) struct TxnQuery {
    #[serde(default)]
    txn: String,
}

pub(crate) async fn consent_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TxnQuery>,
) -> Response {
    let store = shared.lock();
    let Some(txn) = store.txn(&q.txn).cloned() else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request is unknown or has expired. Start again from the application.",
        );
    };
    let session = session_cookie(&headers).and_then(|c| {
        store
            .session(&c)
            .map(|(key, s)| (key, s.user_id.clone(), s.csrf.clone()))
    });
    drop(store);
    match session {
        Some((key, user_id, csrf)) if txn.session == Some(key) => {
            render_consent(&shared, &q.txn, &txn, &user_id, &csrf)
        }
        _ => {
            let client_name = shared
                .registry
                .client(txn.client_id.as_str())
                .map(|c| c.name.clone());
            html::login_page(
                StatusCode::OK,
                SigninTarget::Txn(&q.txn),
                client_name.as_deref(),
                None,
                "",
            )
        }
    }
}

pub(crate) async fn consent_submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: PageForm,
) -> Response {
    let forbidden = |msg: &str| html::error_page(StatusCode::FORBIDDEN, "Request refused", msg);

    let mut store = shared.lock();
    let FormSession { key, user_id, .. } = match form_session(&store, &headers, form.field("csrf"))
    {
        Ok(session) => session,
        Err(FormRefused::NotSignedIn) => return forbidden(
            "You are not signed in (missing or expired session). Start again from the application.",
        ),
        Err(FormRefused::BadCsrf) => {
            return forbidden("The form could not be verified (bad CSRF token).")
        }
    };
    let txn_id = form.field("txn");
    match store.txn(txn_id) {
        Some(txn) if txn.session == Some(key) => {}
        Some(_) => return forbidden("This sign-in request belongs to another session."),
        None => {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request is unknown or has expired. Start again from the application.",
            )
        }
    }
    let decision = form.field("decision");
    if decision != "allow" && decision != "deny" {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "Request refused",
            "Choose Allow or Cancel.",
        );
    }
    let Some(txn) = store.remove_txn(txn_id) else {
        return forbidden("This sign-in request was already answered.");
    };
    if decision == "deny" {
        drop(store);
        return error_redirect(
            &txn.redirect_uri,
            "access_denied",
            "The user denied the request",
            txn.state.as_deref(),
        );
    }
    let grant = store.new_grant(user_id, txn.client_id.clone(), txn.scopes.clone());
    let code = store.issue_code(grant, txn.redirect_uri.clone(), txn.challenge.clone());
    drop(store);
    let mut pairs = vec![
        ("code", code.expose_secret()),
        ("scope", txn.scope_param.as_str()),
    ];
    if let Some(state) = txn.state.as_deref() {
        pairs.push(("state", state));
    }
    redirect(&with_query(&txn.redirect_uri, &pairs))
}
