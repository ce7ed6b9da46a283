//! `GET /ap/oa`, the sign-in form and the consent page, over real HTTP.

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, BOB_EMAIL, DEFAULT_PRODUCT_ID, DEFAULT_WEB_CLIENT_ID,
};
use lwa_emulator::{BrowseError, Consent, ScriptedUser};
use reqwest::StatusCode;
use shared_protocol::pkce::PkcePair;
use url::Url;

use crate::common::*;

async fn get(url: &str) -> reqwest::Response {
    http().get(url).send().await.expect("request")
}

fn location(response: &reqwest::Response) -> Url {
    Url::parse(
        response
            .headers()
            .get("location")
            .expect("Location header")
            .to_str()
            .expect("ascii"),
    )
    .expect("absolute Location")
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_get_an_error_page_and_no_redirect() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let base = [
        ("scope", "alexa:all"),
        ("scope_data", sd.as_str()),
        ("response_type", "code"),
        ("state", "s"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("client_id", "amzn1.application-oa2-client.nope"),
                ("redirect_uri", REDIRECT),
            ],
            "not registered",
        ),
        (vec![("redirect_uri", REDIRECT)], "client_id"),
        (
            vec![
                ("client_id", DEVICE),
                ("redirect_uri", "http://192.0.2.1:80/authresponse"),
            ],
            "Allowed Return URLs",
        ),
        (
            vec![
                ("client_id", DEVICE),
                ("redirect_uri", "https://localhost:9745/other"),
            ],
            "Allowed Return URLs",
        ),
        (vec![("client_id", DEVICE)], "redirect_uri"),
    ];
    for (extra, message) in cases {
        let mut pairs: Vec<(&str, &str)> = base.to_vec();
        pairs.extend(extra);
        let response = get(&raw_authorize_url(&emu, &pairs)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get("location").is_none());
        assert!(content_type(&response).starts_with("text/html"));
        let body = response.text().await.unwrap();
        assert!(body.contains(message), "{message} not in {body}");
    }
}

#[tokio::test]
async fn other_errors_redirect_with_error_description_and_state() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let other = scope_data("someone_elses_product");
    let good: Vec<(&str, &str)> = vec![
        ("client_id", DEVICE),
        ("scope", "alexa:all"),
        ("scope_data", sd.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
    ];
    let with = |name: &str, value: Option<&'static str>| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = good
            .iter()
            .filter(|(k, _)| *k != name)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(value) = value {
            v.push((name.to_owned(), value.to_owned()));
        }
        v
    };
    let plus = |mut pairs: Vec<(String, String)>, name: &str, value: &str| {
        pairs.push((name.to_owned(), value.to_owned()));
        pairs
    };
    // LWA's `invalid_request` descriptions name the parameter.
    let missing = |name: &str| {
        let description = format!("The request is missing a required parameter : {name}");
        ("invalid_request", description)
    };
    let invalid = |name: &str| {
        let description = format!("The request has an invalid parameter : {name}");
        ("invalid_request", description)
    };
    let says = |error: &'static str, description: &str| (error, description.to_owned());
    let cases = [
        (with("response_type", None), missing("response_type")),
        (
            with("response_type", Some("token")),
            says(
                "unsupported_response_type",
                "The authorization server does not support this response_type",
            ),
        ),
        (with("scope", None), missing("scope")),
        (
            with("scope", Some("alexa:all bogus:scope")),
            says("invalid_scope", "An unknown scope was requested"),
        ),
        (with("scope_data", None), missing("scope_data")),
        (with("scope_data", Some("{not json")), invalid("scope_data")),
        (
            plus(with("scope_data", None), "scope_data", &other),
            says(
                "invalid_scope",
                "The productID is not registered with this client's security profile",
            ),
        ),
        (
            with("code_challenge_method", Some("S256")),
            missing("code_challenge"),
        ),
        (
            plus(
                with(
                    "code_challenge",
                    Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                ),
                "code_challenge_method",
                "S512",
            ),
            invalid("code_challenge_method"),
        ),
        (
            plus(
                with("code_challenge", Some("too-short")),
                "code_challenge_method",
                "S256",
            ),
            invalid("code_challenge"),
        ),
        (
            plus(with("state", Some("xyz")), "scope", "profile"),
            says(
                "invalid_request",
                "The request has a duplicate parameter : scope",
            ),
        ),
    ];
    for (pairs, (error, description)) in cases {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = get(&raw_authorize_url(&emu, &pairs)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{error}");
        let to = location(&response);
        assert_eq!(to.as_str().split('?').next().unwrap(), REDIRECT);
        assert_eq!(query(&to, "error").as_deref(), Some(error));
        assert_eq!(
            query(&to, "error_description").as_deref(),
            Some(description.as_str())
        );
        assert_eq!(query(&to, "state").as_deref(), Some("xyz"));
        assert_eq!(query(&to, "code"), None);
    }
}

#[tokio::test]
async fn full_login_by_the_scripted_user_redirects_with_code_scope_and_state() {
    let emu = start().await;
    let pkce = PkcePair::generate();
    let url = authorize_url(&emu, &pkce);
    // Trailing-slash form of the endpoint works too (the SDK's AuthServer.py uses it).
    let url = url.replacen("/ap/oa?", "/ap/oa/?", 1);
    let redirect = login(&url).await;
    assert_eq!(redirect.as_str().split('?').next().unwrap(), REDIRECT);
    let code = query(&redirect, "code").unwrap();
    assert_eq!(code.len(), 20);
    assert!(code.chars().all(|c| c.is_ascii_alphabetic()));
    // The scope granted is the one asked for: the companion's `alexa:all profile`.
    assert_eq!(
        query(&redirect, "scope").as_deref(),
        Some(shared_protocol::lwa::AUTHORIZE_SCOPE)
    );
    assert_eq!(query(&redirect, "state").as_deref(), Some("st-1"));
    assert!(redirect.as_str().contains("scope=alexa%3Aall"));

    // The wire steps a browser makes: GET /ap/oa, POST /ap/signin, GET /ap/consent, POST /ap/consent.
    let steps: Vec<(String, String, Option<u16>)> = emu
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("GET".into(), "/ap/oa/".into(), Some(200)),
            ("POST".into(), "/ap/signin".into(), Some(303)),
            ("GET".into(), "/ap/consent".into(), Some(200)),
            ("POST".into(), "/ap/consent".into(), Some(302)),
        ]
    );
    let signin = &emu.requests()[1];
    // Sent, but neither the address (personal data) nor the password is recorded.
    assert_eq!(signin.param_names(), ["txn", "email", "password"]);
    assert_eq!(signin.param("email"), Some("[redacted]"));
    assert_eq!(signin.param("password"), Some("[redacted]"));

    // The code works once.
    let (status, body) = exchange(&emu, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_signed_in_browser_goes_straight_to_consent_and_deny_returns_access_denied() {
    let emu = start().await;
    let mut user = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD).unwrap();
    let first = user
        .authorize(&authorize_url(&emu, &PkcePair::generate()), Consent::Allow)
        .await
        .unwrap();
    assert!(query(&first, "code").is_some());
    emu.clear_requests();
    let second = user
        .authorize(&authorize_url(&emu, &PkcePair::generate()), Consent::Deny)
        .await
        .unwrap();
    assert_eq!(query(&second, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&second, "state").as_deref(), Some("st-1"));
    assert!(query(&second, "error_description").is_some());
    assert_eq!(query(&second, "code"), None);
    // Session cookie reused: no second sign-in.
    assert!(emu.requests().iter().all(|r| r.path != "/ap/signin"));
}

#[tokio::test]
async fn wrong_password_is_rejected_on_the_form() {
    let emu = start().await;
    let err = ScriptedUser::new(BOB_EMAIL, "not-bobs-password")
        .unwrap()
        .authorize(&authorize_url(&emu, &PkcePair::generate()), Consent::Allow)
        .await
        .unwrap_err();
    match err {
        BrowseError::LoginRejected(message) => assert!(message.contains("incorrect"), "{message}"),
        other => panic!("expected LoginRejected, got {other:?}"),
    }
    let signin = emu
        .requests()
        .into_iter()
        .find(|r| r.path == "/ap/signin")
        .unwrap();
    assert_eq!(signin.status, Some(401));
}

#[tokio::test]
async fn consent_needs_the_session_cookie_and_its_csrf_token() {
    let emu = start().await;
    let client = http();
    // GET the form, sign in by hand to get a cookie and a consent page.
    let page = text_of(client.get(authorize_url(&emu, &PkcePair::generate()))).await;
    let txn = hidden_field(&page, "txn");
    let signed_in = post_signin(&client, &emu, &txn).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&signed_in).to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let cookie = cookie.split(';').next().unwrap().to_owned();

    // No cookie: refused, no redirect.
    let no_cookie = post_consent(&client, &emu, None, &txn, "x").await;
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);
    assert!(no_cookie.headers().get("location").is_none());

    // Cookie but a forged CSRF token: refused.
    assert_eq!(
        post_consent(&client, &emu, Some(&cookie), &txn, "forged")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Another user's session cannot answer this transaction.
    let other_page = text_of(client.get(authorize_url(&emu, &PkcePair::generate()))).await;
    let other_txn = hidden_field(&other_page, "txn");
    let consent_page = text_of(
        client
            .get(emu.url(&format!("/ap/consent?txn={txn}")))
            .header("cookie", &cookie),
    )
    .await;
    let csrf = hidden_field(&consent_page, "csrf");
    assert_eq!(
        post_consent(&client, &emu, Some(&cookie), &other_txn, &csrf)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // The real thing works, once.
    let ok = post_consent(&client, &emu, Some(&cookie), &txn, &csrf).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert!(query(&location(&ok), "code").is_some());
    assert_eq!(
        post_consent(&client, &emu, Some(&cookie), &txn, &csrf)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

/// "Allow" POSTed to `/ap/consent` for transaction `txn` with CSRF token `csrf`, with the
/// session `cookie` if any.
async fn post_consent(
    client: &reqwest::Client,
    emu: &lwa_emulator::RunningEmulator,
    cookie: Option<&str>,
    txn: &str,
    csrf: &str,
) -> reqwest::Response {
    let mut request = client.post(emu.url("/ap/consent"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request
        .form(&[("txn", txn), ("csrf", csrf), ("decision", "allow")])
        .send()
        .await
        .expect("an answer")
}

#[tokio::test]
async fn loopback_redirects_are_port_agnostic_and_web_clients_work_too() {
    let emu = start().await;
    for (client, redirect) in [
        (DEVICE, "http://127.0.0.1:1/cb"),
        (DEVICE, "http://localhost:65000/authresponse"),
        (DEVICE, "http://[::1]:8080/x"),
        (DEVICE, "https://localhost:9745/authresponse"),
        (DEFAULT_WEB_CLIENT_ID, "http://localhost:3000/authresponse"),
    ] {
        let url = plain_authorize_url(&emu, client, "alexa:all", redirect);
        let to = login(&url).await;
        assert!(to.as_str().starts_with(redirect), "{to}");
        assert!(query(&to, "code").is_some());
        // No state sent, none returned (the captured real redirect has none either).
        assert_eq!(query(&to, "state"), None);
    }
}

#[tokio::test]
async fn require_pkce_setting_refuses_requests_without_a_challenge() {
    let emu = start_with(lwa_emulator::Emulator::builder().require_pkce(true)).await;
    let response = get(&plain_authorize_url(&emu, DEVICE, "alexa:all", REDIRECT)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        query(&location(&response), "error_description").as_deref(),
        Some("The request is missing a required parameter : code_challenge")
    );
}
