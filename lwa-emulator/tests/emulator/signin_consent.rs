//! The sign-in and consent forms word for word: where a sign-in continues, what each refused
//! consent says, and the exact redirects. `authorize.rs` walks the flow; these pin the pages.

use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD};
use lwa_emulator::RunningEmulator;
use reqwest::StatusCode;
use shared_protocol::pkce::PkcePair;

use crate::common::*;

const EXPIRED: &str =
    "This sign-in request is unknown or has expired. Start again from the application.";

/// `pairs` POSTed as a form to `path`, with the session `cookie` if any.
async fn post(
    emu: &RunningEmulator,
    path: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http().post(emu.url(path)).form(pairs);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("an answer")
}

/// Asserts an error page: `status`, `title` and `message` (HTML-escaped as shown).
async fn assert_page(response: reqwest::Response, status: StatusCode, title: &str, message: &str) {
    assert_eq!(response.status(), status, "{message}");
    assert!(response.headers().get("location").is_none());
    let body = response.text().await.expect("a body");
    assert!(
        body.contains(&format!("<h1>{title}</h1>")),
        "{title} not in {body}"
    );
    let shown = format!("<p class=\"error\" id=\"error-message\">{message}</p>");
    assert!(body.contains(&shown), "{shown} not in {body}");
}

/// A new sign-in transaction for the device client (no browser session yet).
async fn new_txn(emu: &RunningEmulator) -> String {
    let page = text_of(http().get(authorize_url(emu, &PkcePair::generate()))).await;
    hidden_field(&page, "txn")
}

/// Alice signs in for `txn`; returns her session cookie (`name=value`).
async fn session_for(emu: &RunningEmulator, txn: &str) -> String {
    let signed_in = post_signin(&http(), emu, txn).await;
    let set_cookie = header(&signed_in, "set-cookie");
    set_cookie.split(';').next().expect("a pair").to_owned()
}

/// `GET /ap/consent?txn=…` with `cookie`.
async fn consent_page(emu: &RunningEmulator, txn: &str, cookie: &str) -> String {
    let url = emu.url(&format!("/ap/consent?txn={txn}"));
    text_of(http().get(url).header("cookie", cookie)).await
}

/// A refused consent POST: cookie, form `[txn, csrf, decision]`, and the page's status, title
/// and message.
type Refusal<'a> = (Option<&'a str>, [&'a str; 3], StatusCode, &'a str, &'a str);

#[tokio::test]
async fn a_sign_in_continues_at_consent_or_at_a_local_page_only() {
    let emu = start().await;
    let txn = new_txn(&emu).await;
    let signed_in = post_signin(&http(), &emu, &txn).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&signed_in, "location"),
        format!("/ap/consent?txn={txn}")
    );
    assert_eq!(header(&signed_in, "cache-control"), "no-store");
    let cookie = header(&signed_in, "set-cookie");
    let value = cookie
        .strip_prefix("lwa-session=")
        .and_then(|c| c.strip_suffix("; Path=/; HttpOnly; SameSite=Lax"))
        .unwrap_or_else(|| panic!("cookie {cookie}"));
    assert!(!value.is_empty() && !value.contains(';'), "{cookie}");

    let alice = [("email", ALICE_EMAIL), ("password", ALICE_PASSWORD)];
    for (next, location) in [
        ("", "/code"),
        ("/code?user_code=ABCDEF", "/code?user_code=ABCDEF"),
        ("https://evil.example/code", "/code"),
        ("/codes", "/code"),
    ] {
        let mut form = alice.to_vec();
        form.push(("next", next));
        let response = post(&emu, "/ap/signin", None, &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(header(&response, "location"), location, "{next}");
    }

    let unknown = [("txn", "no-such-txn"), alice[0], alice[1]];
    let expired = post(&emu, "/ap/signin", None, &unknown).await;
    assert_page(expired, StatusCode::BAD_REQUEST, "Sign-in expired", EXPIRED).await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_email_and_the_application() {
    let emu = start().await;
    let txn = new_txn(&emu).await;
    let form = [
        ("txn", txn.as_str()),
        ("email", "a<b@example.com"),
        ("password", "x"),
    ];
    let response = post(&emu, "/ap/signin", None, &form).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("set-cookie").is_none());
    let body = response.text().await.expect("a body");
    for shown in [
        "Sign in to continue to <strong>avs-pair demo</strong>.",
        "<p class=\"error\" id=\"auth-error\">Your email or password is incorrect.</p>",
        "name=\"email\" value=\"a&lt;b@example.com\"",
        &format!("<input type=\"hidden\" name=\"txn\" value=\"{txn}\">"),
    ] {
        assert!(body.contains(shown), "{shown} not in {body}");
    }
}

#[tokio::test]
async fn each_refused_consent_says_why_and_a_denial_redirects_with_access_denied() {
    let emu = start().await;
    let txn = new_txn(&emu).await;
    let cookie = session_for(&emu, &txn).await;
    let csrf = hidden_field(&consent_page(&emu, &txn, &cookie).await, "csrf");
    let other = new_txn(&emu).await;

    let refused = "Request refused";
    let not_signed_in =
        "You are not signed in (missing or expired session). Start again from the application.";
    let (forbidden, bad) = (StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST);
    let (me, allow) = (Some(cookie.as_str()), "allow");
    let cases: [Refusal; 6] = [
        (
            None,
            [&txn, &csrf, allow],
            forbidden,
            refused,
            not_signed_in,
        ),
        (
            me,
            [&txn, "forged", allow],
            forbidden,
            refused,
            "The form could not be verified (bad CSRF token).",
        ),
        (
            me,
            [&other, &csrf, allow],
            forbidden,
            refused,
            "This sign-in request belongs to another session.",
        ),
        (
            me,
            ["no-such-txn", &csrf, allow],
            bad,
            "Sign-in expired",
            EXPIRED,
        ),
        (
            me,
            [&txn, &csrf, "maybe"],
            bad,
            refused,
            "Choose Allow or Cancel.",
        ),
        // The session is checked before the transaction, the transaction before the decision.
        (
            Some("lwa-session=unknown"),
            ["no-such-txn", &csrf, "maybe"],
            forbidden,
            refused,
            not_signed_in,
        ),
    ];
    for (cookie, [txn, csrf, decision], status, title, message) in cases {
        let form = [("txn", txn), ("csrf", csrf), ("decision", decision)];
        let response = post(&emu, "/ap/consent", cookie, &form).await;
        assert_page(response, status, title, message).await;
    }

    // Still answerable after all that; a denial goes back with access_denied and the state.
    let form = [
        ("txn", txn.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "deny"),
    ];
    let denied = post(&emu, "/ap/consent", Some(&cookie), &form).await;
    assert_eq!(denied.status(), StatusCode::FOUND);
    assert_eq!(header(&denied, "cache-control"), "no-store");
    assert_eq!(
        header(&denied, "location"),
        format!("{REDIRECT}?error=access_denied&error_description=The+user+denied+the+request&state=st-1")
    );
    let again = post(&emu, "/ap/consent", Some(&cookie), &form).await;
    assert_page(again, StatusCode::BAD_REQUEST, "Sign-in expired", EXPIRED).await;
}

#[tokio::test]
async fn the_consent_page_needs_the_session_that_signed_in_and_a_live_transaction() {
    let emu = start().await;
    let expired = http()
        .get(emu.url("/ap/consent?txn=no-such-txn"))
        .send()
        .await
        .expect("an answer");
    assert_page(expired, StatusCode::BAD_REQUEST, "Sign-in expired", EXPIRED).await;

    // A transaction started without a session: a signed-in browser is still asked to sign in
    // for it until it does.
    let txn = new_txn(&emu).await;
    let cookie = session_for(&emu, &new_txn(&emu).await).await;
    let shown = consent_page(&emu, &txn, &cookie).await;
    assert!(shown.contains("id=\"signin-form\""), "{shown}");
    assert!(shown.contains("Sign in to continue to <strong>avs-pair demo</strong>."));
    assert!(shown.contains(&format!("name=\"txn\" value=\"{txn}\"")));
}
