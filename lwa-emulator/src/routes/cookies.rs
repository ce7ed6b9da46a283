//! The browser session cookie: the session it names (which decides whether a page asks the user
//! to sign in), and the check every form POST of a signed-in page makes first: that session, and
//! the CSRF token it was given.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq as _;

use crate::store::{Digest, Store};
use shared_protocol::ids::UserId;

/// Name of the sign-in session cookie.
pub(crate) const SESSION_COOKIE: &str = "lwa-session";

/// The session cookie's value, if the browser sent one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax (the consent POST is same-site; the
/// cookie must not ride along on cross-site POSTs), Secure over HTTPS.
pub(crate) fn set_session_cookie(value: &str, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// A live signed-in session: the one a page is shown for, or a form was POSTed from.
pub(crate) struct FormSession {
    /// The session's key in the store.
    pub(crate) key: Digest,
    /// Who is signed in.
    pub(crate) user_id: UserId,
    /// The session's CSRF token (for the next page's form).
    pub(crate) csrf: String,
}

/// The live session `headers`' cookie names, if any (no CSRF check: for showing a page).
pub(crate) fn cookie_session(store: &Store, headers: &HeaderMap) -> Option<FormSession> {
    let cookie = session_cookie(headers)?;
    store.session(&cookie).map(|(key, s)| FormSession {
        key,
        user_id: s.user_id.clone(),
        csrf: s.csrf.clone(),
    })
}

/// Why a form POST is refused before its fields are read.
pub(crate) enum FormRefused {
    /// No live session behind the cookie (missing, unknown or expired).
    NotSignedIn,
    /// The form's CSRF token is not the session's.
    BadCsrf,
}

/// The session behind `headers`' cookie, if the form's `csrf` field is that session's token
/// (compared in constant time).
pub(crate) fn form_session(
    store: &Store,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<FormSession, FormRefused> {
    let session = cookie_session(store, headers).ok_or(FormRefused::NotSignedIn)?;
    if bool::from(session.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
        Ok(session)
    } else {
        Err(FormRefused::BadCsrf)
    }
}
