//! `GET /ap/oa` word for word: the exact error pages, which rule answers when a request breaks
//! several, and the exact bytes of the redirects. `authorize.rs` tests each rule alone; these
//! pin the order the rules run in and the `Location` strings, so the handler can be restructured
//! without a client seeing a difference.

use lwa_emulator::registry::DEFAULT_PRODUCT_ID;
use lwa_emulator::{Emulator, RunningEmulator};
use reqwest::StatusCode;
use shared_protocol::pkce::PkcePair;

use crate::common::*;

/// A valid request from the device client, state `xyz`.
fn good(sd: &str) -> Vec<(&'static str, String)> {
    [
        ("client_id", DEVICE),
        ("scope", "alexa:all"),
        ("scope_data", sd),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
    ]
    .iter()
    .map(|(k, v)| (*k, (*v).to_owned()))
    .collect()
}

/// A parameter's name and its new value (see [`edit`]).
type Change<'n, 'v> = (&'n str, Option<&'v str>);

/// `pairs` with every `(name, value)` of `changes` applied in order: `Some` replaces the first
/// pair of that name (or appends), `None` removes every pair of that name, and a name written
/// with a leading `+` is appended even when present (a duplicate).
fn edit<'a>(
    mut pairs: Vec<(&'a str, String)>,
    changes: &[Change<'a, '_>],
) -> Vec<(&'a str, String)> {
    for (name, value) in changes {
        let (append, name) = match name.strip_prefix('+') {
            Some(name) => (true, name),
            None => (false, *name),
        };
        let Some(value) = value else {
            pairs.retain(|(k, _)| *k != name);
            continue;
        };
        match pairs.iter_mut().find(|(k, _)| *k == name) {
            Some(pair) if !append => pair.1 = (*value).to_owned(),
            _ => pairs.push((name, (*value).to_owned())),
        }
    }
    pairs
}

/// The raw response to `GET /ap/oa` with `pairs` (in that order).
async fn authorize(emu: &RunningEmulator, pairs: &[(&str, String)]) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http()
        .get(raw_authorize_url(emu, &pairs))
        .send()
        .await
        .expect("an answer")
}

/// The `Location` header, as sent.
fn location_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

#[tokio::test]
async fn what_cannot_be_redirected_gets_lwas_exact_words_and_the_client_is_checked_first() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let nope = Some("amzn1.application-oa2-client.nope");
    let elsewhere = Some("http://192.0.2.1:80/authresponse");
    let cases: [(&[Change], &str); 8] = [
        (
            &[("client_id", nope)],
            "The client_id is not registered with Login with Amazon.",
        ),
        // The client is checked before the redirect URI and before anything else.
        (
            &[
                ("client_id", nope),
                ("redirect_uri", elsewhere),
                ("response_type", None),
            ],
            "The client_id is not registered with Login with Amazon.",
        ),
        (
            &[("client_id", None), ("redirect_uri", None)],
            "The request is missing a required parameter : client_id",
        ),
        (
            &[("+client_id", Some(DEVICE)), ("redirect_uri", None)],
            "The request has a duplicate parameter : client_id",
        ),
        (
            &[("redirect_uri", elsewhere), ("scope", None)],
            "The redirect_uri is not one of the client&#39;s Allowed Return URLs.",
        ),
        (
            &[("redirect_uri", None), ("response_type", Some("token"))],
            "The request is missing a required parameter : redirect_uri",
        ),
        (
            &[("+redirect_uri", Some(REDIRECT))],
            "The request has a duplicate parameter : redirect_uri",
        ),
        // An empty value counts as missing.
        (
            &[("redirect_uri", Some(""))],
            "The request is missing a required parameter : redirect_uri",
        ),
    ];
    for (changes, message) in cases {
        let response = authorize(&emu, &edit(good(&sd), changes)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{message}");
        assert!(response.headers().get("location").is_none(), "{message}");
        let body = response.text().await.expect("a body");
        assert!(body.contains("<h1>We cannot sign you in</h1>"), "{body}");
        let shown = format!("<p class=\"error\" id=\"error-message\">{message}</p>");
        assert!(body.contains(&shown), "{shown} not in {body}");
    }
}

#[tokio::test]
async fn when_a_request_breaks_several_rules_the_first_in_lwas_order_answers() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let elses = scope_data("someone_elses_product");
    let no_serial = sd.replace("DSN-0001", "");
    let elses_no_serial = elses.replace("DSN-0001", "");
    let missing = |name: &str| format!("The request is missing a required parameter : {name}");
    let invalid = |name: &str| format!("The request has an invalid parameter : {name}");
    let duplicate = |name: &str| format!("The request has a duplicate parameter : {name}");
    let unknown_scope = "An unknown scope was requested".to_owned();
    let wrong_product =
        "The productID is not registered with this client's security profile".to_owned();
    let too_short = Some("too-short");
    let cases: Vec<(Vec<Change>, &str, String)> = vec![
        // Duplicates first, naming the first parameter seen twice.
        (
            vec![
                ("response_type", None),
                ("+scope_data", Some(&sd)),
                ("+scope", Some("profile")),
            ],
            "invalid_request",
            duplicate("scope_data"),
        ),
        // Then response_type, scope, scope_data, PKCE.
        (
            vec![("response_type", Some("token")), ("scope", Some("bogus"))],
            "unsupported_response_type",
            "The authorization server does not support this response_type".to_owned(),
        ),
        (
            vec![("scope", None), ("scope_data", Some("{not json"))],
            "invalid_request",
            missing("scope"),
        ),
        (
            vec![("scope", Some(" ")), ("scope_data", None)],
            "invalid_scope",
            unknown_scope.clone(),
        ),
        (
            vec![("scope", Some("alexa:all bogus")), ("scope_data", None)],
            "invalid_scope",
            unknown_scope,
        ),
        (
            vec![
                ("scope_data", Some(&no_serial)),
                ("code_challenge", too_short),
            ],
            "invalid_request",
            invalid("scope_data"),
        ),
        // The serial number is checked before the product's binding.
        (
            vec![("scope_data", Some(&elses_no_serial))],
            "invalid_request",
            invalid("scope_data"),
        ),
        (
            vec![("scope_data", Some(r#"{"profile":{"essential":true}}"#))],
            "invalid_request",
            invalid("scope_data"),
        ),
        (
            vec![("scope_data", Some(&elses)), ("code_challenge", too_short)],
            "invalid_scope",
            wrong_product,
        ),
        // Without alexa:all, scope_data is not read at all.
        (
            vec![
                ("scope", Some("profile")),
                ("scope_data", Some("{not json")),
                ("code_challenge_method", Some("S512")),
            ],
            "invalid_request",
            missing("code_challenge"),
        ),
        (
            vec![
                ("code_challenge", too_short),
                ("code_challenge_method", Some("S512")),
            ],
            "invalid_request",
            invalid("code_challenge_method"),
        ),
        // No method means plain, whose challenge must still be 43 to 128 characters.
        (
            vec![("code_challenge", too_short)],
            "invalid_request",
            invalid("code_challenge"),
        ),
    ];
    for (changes, error, description) in cases {
        let response = authorize(&emu, &edit(good(&sd), &changes)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{description}");
        let expected = format!(
            "{REDIRECT}?error={error}&error_description={}&state=xyz",
            form_encoded(&description)
        );
        assert_eq!(location_of(&response), expected);
    }

    // A repeated state is reported, and no state goes back (LWA cannot tell which one).
    let response = authorize(&emu, &edit(good(&sd), &[("+state", Some("abc"))])).await;
    assert_eq!(
        location_of(&response),
        format!(
            "{REDIRECT}?error=invalid_request&error_description={}",
            form_encoded(&duplicate("state"))
        )
    );
}

#[tokio::test]
async fn require_pkce_reports_a_bad_challenge_as_invalid_and_a_plain_one_passes() {
    let emu = start_with(Emulator::builder().require_pkce(true)).await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let bad = authorize(&emu, &edit(good(&sd), &[("code_challenge", Some("short"))])).await;
    assert_eq!(
        location_of(&bad),
        format!(
            "{REDIRECT}?error=invalid_request&error_description={}&state=xyz",
            form_encoded("The request has an invalid parameter : code_challenge")
        )
    );
    let plain = "a".repeat(43);
    let fine = authorize(&emu, &edit(good(&sd), &[("code_challenge", Some(&plain))])).await;
    assert_eq!(fine.status(), StatusCode::OK);
    assert!(fine
        .text()
        .await
        .expect("a body")
        .contains("id=\"signin-form\""));
}

#[tokio::test]
async fn redirects_keep_the_redirect_uris_own_query_and_add_lwas_parameters_in_order() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let back = "http://127.0.0.1:45678/authresponse?from=app";
    let changes = [
        ("redirect_uri", Some(back)),
        ("state", Some("a b/c&d")),
        ("scope_data", Some(&scope_data("someone_elses_product"))),
    ];
    let refused = authorize(&emu, &edit(good(&sd), &changes)).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(
        refused
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert_eq!(
        location_of(&refused),
        "http://127.0.0.1:45678/authresponse?from=app&error=invalid_scope&error_description=\
         The+productID+is+not+registered+with+this+client%27s+security+profile&state=a+b%2Fc%26d"
    );

    // The code redirect: code, then the scope exactly as asked, then state.
    let url = authorize_url_back_to(&emu, DEVICE, back, &PkcePair::generate());
    let to = login(&url).await;
    let code = query(&to, "code").expect("a code");
    assert_eq!(
        to.as_str(),
        format!("{back}&code={code}&scope=alexa%3Aall+profile&state=st-1")
    );
}

#[tokio::test]
async fn a_signed_in_browser_sees_consent_at_once_and_any_other_the_sign_in_form() {
    let emu = start().await;
    let client = http();
    let url = authorize_url(&emu, &PkcePair::generate());
    let page = text_of(client.get(&url)).await;
    assert!(
        page.contains("Sign in to continue to <strong>avs-pair demo</strong>."),
        "{page}"
    );
    assert!(page.contains("id=\"signin-form\"") && !page.contains("name=\"csrf\""));
    let signed_in = post_signin(&client, &emu, &hidden_field(&page, "txn")).await;
    let cookie = set_cookie(&signed_in)
        .split(';')
        .next()
        .expect("a pair")
        .to_owned();

    let again = text_of(client.get(&url).header("cookie", &cookie)).await;
    assert!(again.contains("id=\"consent-form\""), "{again}");
    assert!(again.contains("<strong id=\"user-name\">Alice Example</strong>"));
    assert!(again.contains(&format!(
        "<code id=\"product-id\">{DEFAULT_PRODUCT_ID}</code>"
    )));
    assert!(again.contains("<code id=\"dsn\">DSN-0001</code>"));
    assert!(again.contains("<li><code>alexa:all</code></li><li><code>profile</code></li>"));

    let stranger = text_of(client.get(&url).header("cookie", "lwa-session=unknown")).await;
    assert!(stranger.contains("id=\"signin-form\""), "{stranger}");
}
