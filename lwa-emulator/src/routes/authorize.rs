//! `GET /ap/oa` and the sign-in and consent pages behind it (lwa-spec §1.4, §1.5).
//!
//! The request is validated like LWA does ([`super::authorize_request`] has the rules and their
//! order): an unknown client or an unregistered redirect URI gets an error page and no redirect
//! (redirecting there would make the emulator an open redirector); every other problem is
//! redirected back with `error`, `error_description` and `state` (RFC 6749 §4.1.2.1). A valid
//! request becomes a server-side sign-in transaction; the
//! browser carries only its id. Signing in creates a server-side session (HttpOnly cookie) with
//! a CSRF token; the consent POST must come from that session, with that token, for a
//! transaction that session signed in for. Only then is a code issued and the browser sent to
//! `redirect_uri?code=…&scope=…&state=…`.

use std::sync::Arc;

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared_protocol::ids::UserId;
use url::Url;

use super::authorize_request::{AlexaDevice, Asked, Caller};
use super::cookies::{cookie_session, form_session, set_session_cookie, FormRefused};
use super::html::{self, ConsentView, SigninTarget};
use super::page_form::PageForm;
use crate::params::Params;
use crate::server::Shared;
use crate::store::{AuthTxn, Store};

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

/// `GET /ap/oa`: who asks (an error page when that is wrong), what they ask for (an error
/// redirect when that is wrong), then the sign-in form or, for a signed-in browser, consent.
pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let caller = match Caller::check(&shared.registry, &params) {
        Ok(caller) => caller,
        Err(problem) => {
            let message = problem.to_string();
            return html::error_page(StatusCode::BAD_REQUEST, "We cannot sign you in", &message);
        }
    };
    // A repeated state is refused below, and then none is sent back.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    match Asked::check(&shared, &params, caller.client) {
        Ok(asked) => sign_in_or_consent(&shared, &headers, caller, state, asked),
        Err(refusal) => error_redirect(
            &caller.redirect_uri,
            refusal.code(),
            &refusal.to_string(),
            state.as_deref(),
        ),
    }
}

/// Remembers a checked request as a sign-in transaction, then asks the browser's user to sign
/// in, or, when the browser's session cookie is live, for consent at once (the transaction is
/// then already that session's, as if it had just signed in).
fn sign_in_or_consent(
    shared: &Shared,
    headers: &HeaderMap,
    caller: Caller<'_>,
    state: Option<String>,
    asked: Asked,
) -> Response {
    let mut store = shared.lock();
    let session = cookie_session(&store, headers);
    let (product_id, dsn) = match asked.device {
        Some(AlexaDevice { product_id, dsn }) => (Some(product_id), Some(dsn)),
        None => (None, None),
    };
    let txn = AuthTxn {
        client_id: caller.client.client_id.clone(),
        redirect_uri: caller.redirect_uri,
        scopes: asked.scopes,
        scope_param: asked.scope_param,
        product_id,
        dsn,
        state,
        challenge: asked.challenge,
        session: session.as_ref().map(|s| s.key),
        created: store.now(),
    };
    let view_txn = txn.clone();
    let id = store.insert_txn(txn);
    drop(store);
    match session {
        Some(s) => render_consent(shared, &id, &view_txn, &s.user_id, &s.csrf),
        None => html::login_page(
            StatusCode::OK,
            SigninTarget::Txn(&id),
            Some(&caller.client.name),
            None,
            "",
        ),
    }
}

fn render_consent(
    shared: &Shared,
    txn_id: &str,
    txn: &AuthTxn,
    user_id: &UserId,
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

/// `POST /ap/signin`: where the sign-in continues (refused when its transaction is gone), the
/// credentials (the form again on a mismatch), then a new session and a 303 onwards: to consent
/// for a transaction, which from now on belongs to this session, or to the local page.
pub(crate) async fn signin(State(shared): State<Arc<Shared>>, form: PageForm) -> Response {
    let email = form.field("email");
    let mut store = shared.lock();
    let Some((target, client_name)) = continues_at(&shared, &store, &form) else {
        return expired_page();
    };
    let Some(user) = shared.registry.authenticate(email, form.field("password")) else {
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
    let location = match target {
        SigninTarget::Next(next) => next.to_owned(),
        SigninTarget::Txn(txn_id) => {
            if let Some(txn) = store.txn_mut(txn_id) {
                txn.session = Some(key);
            }
            format!(
                "/ap/consent?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("txn", txn_id)
                    .finish()
            )
        }
    };
    drop(store);
    see_other_with_cookie(&location, &set_session_cookie(&cookie, shared.https))
}

/// Where a sign-in form continues, and the name of the application it is for: its live
/// transaction (`None` when that is unknown or expired), or else a local page.
fn continues_at<'f>(
    shared: &Shared,
    store: &Store,
    form: &'f PageForm,
) -> Option<(SigninTarget<'f>, Option<String>)> {
    let txn_id = form.field("txn");
    if txn_id.is_empty() {
        let next = safe_next(form.field("next")).unwrap_or("/code");
        return Some((SigninTarget::Next(next), None));
    }
    let txn = store.txn(txn_id)?;
    let client = shared.registry.client(txn.client_id.as_str());
    Some((SigninTarget::Txn(txn_id), client.map(|c| c.name.clone())))
}

/// A 303 to `location` that sets the session cookie, never cached.
fn see_other_with_cookie(location: &str, set_cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(set_cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page for a sign-in transaction that is unknown, expired or already answered.
fn expired_page() -> Response {
    html::error_page(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in request is unknown or has expired. Start again from the application.",
    )
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
        return expired_page();
    };
    let session = cookie_session(&store, &headers);
    drop(store);
    match session {
        Some(s) if txn.session == Some(s.key) => {
            render_consent(&shared, &q.txn, &txn, &s.user_id, &s.csrf)
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

/// `POST /ap/consent`: the answer is checked ([`check_consent`]), the transaction taken (once),
/// then the browser goes back with `access_denied`, or with a new code for the user's grant.
pub(crate) async fn consent_submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: PageForm,
) -> Response {
    let mut store = shared.lock();
    let (user_id, allowed) = match check_consent(&store, &headers, &form) {
        Ok(answer) => answer,
        Err(refused) => return refused.page(),
    };
    // Checked live above, under the same lock: a second answer finds it gone there (Expired).
    let Some(txn) = store.remove_txn(form.field("txn")) else {
        return ConsentRefused::Expired.page();
    };
    if !allowed {
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

/// Why a consent answer is refused.
enum ConsentRefused {
    NotSignedIn,
    BadCsrf,
    OtherSession,
    Expired,
    NoDecision,
}

impl ConsentRefused {
    fn page(self) -> Response {
        let forbidden = |msg: &str| html::error_page(StatusCode::FORBIDDEN, "Request refused", msg);
        match self {
            Self::NotSignedIn => forbidden(
                "You are not signed in (missing or expired session). Start again from the application.",
            ),
            Self::BadCsrf => forbidden("The form could not be verified (bad CSRF token)."),
            Self::OtherSession => forbidden("This sign-in request belongs to another session."),
            Self::Expired => expired_page(),
            Self::NoDecision => html::error_page(
                StatusCode::BAD_REQUEST,
                "Request refused",
                "Choose Allow or Cancel.",
            ),
        }
    }
}

/// A consent answer, checked in this order (the first failure answers): a signed-in session
/// with its CSRF token, a live transaction that session signed in for, a decision of allow or
/// deny. Returns who answered and whether they allowed.
fn check_consent(
    store: &Store,
    headers: &HeaderMap,
    form: &PageForm,
) -> Result<(UserId, bool), ConsentRefused> {
    let session = form_session(store, headers, form.field("csrf")).map_err(|e| match e {
        FormRefused::NotSignedIn => ConsentRefused::NotSignedIn,
        FormRefused::BadCsrf => ConsentRefused::BadCsrf,
    })?;
    match store.txn(form.field("txn")) {
        Some(txn) if txn.session == Some(session.key) => {}
        Some(_) => return Err(ConsentRefused::OtherSession),
        None => return Err(ConsentRefused::Expired),
    }
    match form.field("decision") {
        "allow" => Ok((session.user_id, true)),
        "deny" => Ok((session.user_id, false)),
        _ => Err(ConsentRefused::NoDecision),
    }
}
