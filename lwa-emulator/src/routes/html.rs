//! Server-rendered HTML pages: sign-in, consent, CBL code entry, errors, and the index.
//!
//! Plain forms without scripts, so they work in any browser and for the scripted user
//! ([`crate::browser`]), which finds forms by their `id` and fills `input`s by `name`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::html_entities::escape;
use crate::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, BOB_EMAIL, BOB_PASSWORD, DEFAULT_DEVICE_CLIENT_ID,
    DEFAULT_PRODUCT_ID, DEFAULT_WEB_CLIENT_ID,
};

const STYLE: &str = "body{font-family:sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#111}\
h1{font-size:1.4em}label{display:block;margin:.8em 0 .2em}input[type=email],input[type=password],\
input[type=text]{width:100%;padding:.4em;font-size:1em}button{margin:1em .5em 0 0;padding:.5em 1.2em;\
font-size:1em}.error{color:#b00020}.note{color:#555;font-size:.9em}code{background:#eee;padding:0 .2em}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>{STYLE}</style></head><body>\n<p class=\"note\">Login with Amazon (lwa-emulator)</p>\n\
         <h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// An error page (no redirect): unknown client, unregistered redirect URI, expired sign-in.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<p class=\"error\" id=\"error-message\">{}</p>",
            escape(message)
        ),
    )
}

/// Where a sign-in form continues.
pub(crate) enum SigninTarget<'a> {
    /// An `/ap/oa` transaction.
    Txn(&'a str),
    /// A local page (the CBL `/code` page).
    Next(&'a str),
}

/// The sign-in form.
pub(crate) fn login_page(
    status: StatusCode,
    target: SigninTarget<'_>,
    client_name: Option<&str>,
    error: Option<&str>,
    email: &str,
) -> Response {
    let hidden = match target {
        SigninTarget::Txn(txn) => {
            format!(
                "<input type=\"hidden\" name=\"txn\" value=\"{}\">",
                escape(txn)
            )
        }
        SigninTarget::Next(next) => {
            format!(
                "<input type=\"hidden\" name=\"next\" value=\"{}\">",
                escape(next)
            )
        }
    };
    let intro = match client_name {
        Some(name) => format!(
            "<p>Sign in to continue to <strong>{}</strong>.</p>",
            escape(name)
        ),
        None => "<p>Sign in to continue.</p>".to_owned(),
    };
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"auth-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "{intro}{error}\n<form id=\"signin-form\" method=\"post\" action=\"/ap/signin\">\n{hidden}\n\
         <label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" value=\"{}\" autocomplete=\"username\" required>\n\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\" id=\"signin-submit\">Sign in</button>\n</form>",
        escape(email)
    );
    page(status, "Sign in", &body)
}

/// What the consent page shows.
pub(crate) struct ConsentView<'a> {
    pub(crate) txn: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) user_name: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) product_id: Option<&'a str>,
    pub(crate) dsn: Option<&'a str>,
}

/// The consent page: allow or deny.
pub(crate) fn consent_page(view: &ConsentView<'_>) -> Response {
    let scopes: String = view
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let device = match (view.product_id, view.dsn) {
        (Some(p), Some(d)) => format!(
            "<p>Device: product <code id=\"product-id\">{}</code>, serial number <code id=\"dsn\">{}</code></p>",
            escape(p),
            escape(d)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<p>Signed in as <strong id=\"user-name\">{user}</strong>.</p>\n\
         <p><strong id=\"client-name\">{client}</strong> would like to access:</p><ul id=\"scopes\">{scopes}</ul>\n{device}\n\
         <form id=\"consent-form\" method=\"post\" action=\"/ap/consent\">\n\
         <input type=\"hidden\" name=\"txn\" value=\"{txn}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Cancel</button>\n</form>",
        user = escape(view.user_name),
        client = escape(view.client_name),
        txn = escape(view.txn),
        csrf = escape(view.csrf),
    );
    page(StatusCode::OK, "Allow access?", &body)
}

/// The CBL page where a signed-in user types the code shown by the device.
pub(crate) fn code_page(
    status: StatusCode,
    csrf: &str,
    user_name: &str,
    prefill: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"code-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>Signed in as <strong id=\"user-name\">{}</strong>. Enter the code shown on your device.</p>{error}\n\
         <form id=\"code-form\" method=\"post\" action=\"/code\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <label for=\"user_code\">Code</label><input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\" required>\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Continue</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button>\n</form>",
        escape(user_name),
        escape(csrf),
        escape(prefill)
    );
    page(status, "Register your device", &body)
}

/// The outcome of a CBL code entry.
pub(crate) fn code_result_page(approved: bool) -> Response {
    let (title, text, outcome) = if approved {
        (
            "Device registered",
            "Your device is now connected to your account. You can close this page.",
            "approved",
        )
    } else {
        (
            "Request denied",
            "The device was not connected to your account.",
            "denied",
        )
    };
    page(
        StatusCode::OK,
        title,
        &format!("<p id=\"cbl-result\" data-outcome=\"{outcome}\">{text}</p>"),
    )
}

/// `/`: what this is and how to use it.
pub(crate) fn index_page() -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lwa-emulator</title>\
         <style>{STYLE}</style></head><body><h1>lwa-emulator</h1>\
         <p>A local stand-in for Login with Amazon and the token-checking part of AVS.</p>\
         <ul><li><code>GET /ap/oa</code> authorization (sign-in + consent)</li>\
         <li><code>POST /auth/o2/token</code> tokens (authorization_code, refresh_token, device_code, client_credentials)</li>\
         <li><code>POST /auth/O2/create/codepair</code> CBL, with the <a href=\"/code\">/code</a> page</li>\
         <li><code>GET /auth/o2/tokeninfo</code>, <code>GET /user/profile</code></li>\
         <li><code>GET /ping</code>, <code>GET /v20160207/directives</code> (AVS)</li>\
         <li><code>/_emulator/…</code> control API</li></ul>\
         <p>Users: <code>{}</code> / <code>{}</code>, <code>{}</code> / <code>{}</code>.\
         Device client <code>{}</code>, web client <code>{}</code>, product <code>{}</code>.</p></body></html>\n",
        escape(ALICE_EMAIL),
        escape(ALICE_PASSWORD),
        escape(BOB_EMAIL),
        escape(BOB_PASSWORD),
        escape(DEFAULT_DEVICE_CLIENT_ID),
        escape(DEFAULT_WEB_CLIENT_ID),
        escape(DEFAULT_PRODUCT_ID)
    ))
}
