//! The browser session cookie.

use axum::http::{header, HeaderMap};

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
