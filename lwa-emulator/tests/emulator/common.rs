//! Helpers shared by the emulator API tests: a real emulator on a loopback port and a plain
//! reqwest client that does not follow redirects.

use std::time::Duration;

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
    DEFAULT_WEB_CLIENT_ID,
};
use lwa_emulator::{Consent, Emulator, EmulatorBuilder, RunningEmulator, ScriptedUser};
use reqwest::StatusCode;
use serde_json::Value;
use shared_protocol::lwa::AuthorizeRequest;
use shared_protocol::pkce::PkcePair;
use url::Url;

pub const DEVICE: &str = DEFAULT_DEVICE_CLIENT_ID;
pub const REDIRECT: &str = "http://127.0.0.1:45678/authresponse";

/// An emulator with the default registry and settings.
pub async fn start() -> RunningEmulator {
    start_with(Emulator::builder()).await
}

/// The emulator `builder` describes.
pub async fn start_with(builder: EmulatorBuilder) -> RunningEmulator {
    builder.start().await.expect("emulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// An `/ap/oa` URL built with the shared protocol's builder (S256 PKCE, state "st-1").
pub fn authorize_url(emu: &RunningEmulator, pkce: &PkcePair) -> String {
    authorize_url_for(emu, DEVICE, pkce)
}

/// [`authorize_url`] for another client.
pub fn authorize_url_for(emu: &RunningEmulator, client: &str, pkce: &PkcePair) -> String {
    authorize_url_back_to(emu, client, REDIRECT, pkce)
}

/// [`authorize_url_for`] with another `redirect_uri`.
pub fn authorize_url_back_to(
    emu: &RunningEmulator,
    client: &str,
    redirect: &str,
    pkce: &PkcePair,
) -> String {
    AuthorizeRequest {
        client_id: client.into(),
        redirect_uri: redirect.into(),
        product_id: DEFAULT_PRODUCT_ID.into(),
        dsn: "DSN-0001".into(),
        state: "st-1".into(),
        code_challenge: pkce.challenge.clone(),
    }
    .to_url(&emu.endpoints().authorize)
    .to_string()
}

/// A raw authorize URL from explicit pairs.
pub fn raw_authorize_url(emu: &RunningEmulator, pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&emu.url("/ap/oa")).expect("url");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

pub fn scope_data(product: &str) -> String {
    format!(
        r#"{{"alexa:all":{{"productID":"{product}","productInstanceAttributes":{{"deviceSerialNumber":"DSN-0001"}}}}}}"#
    )
}

/// Alice signs in and allows; returns the redirect URL (with the code).
pub async fn login(url: &str) -> Url {
    ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD)
        .expect("user")
        .authorize(url, Consent::Allow)
        .await
        .expect("login completes")
}

pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Alice's code for a fresh S256 PKCE login.
pub async fn code_for(emu: &RunningEmulator, pkce: &PkcePair) -> String {
    code_for_client(emu, DEVICE, pkce).await
}

/// A new PKCE pair and an authorization code issued for its challenge.
pub async fn fresh_code(emu: &RunningEmulator) -> (PkcePair, String) {
    let pkce = PkcePair::generate();
    let code = code_for(emu, &pkce).await;
    (pkce, code)
}

/// [`code_for`] with another client.
pub async fn code_for_client(emu: &RunningEmulator, client: &str, pkce: &PkcePair) -> String {
    let redirect = login(&authorize_url_for(emu, client, pkce)).await;
    query(&redirect, "code").expect("code in redirect")
}

/// Sends `request`; returns status and JSON body.
pub async fn answer_of(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let body = response.json().await.expect("json body");
    (status, body)
}

/// POSTs a form to the token endpoint; returns status and JSON body.
pub async fn token(emu: &RunningEmulator, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    answer_of(http().post(emu.url("/auth/o2/token")).form(pairs)).await
}

/// A token request from the emulator's web client: `grant`, then its client id and, when
/// given, `secret` as `client_secret`.
pub async fn as_web_client(
    emu: &RunningEmulator,
    grant: &[(&str, &str)],
    secret: Option<&str>,
) -> (StatusCode, Value) {
    let mut pairs = grant.to_vec();
    pairs.push(("client_id", DEFAULT_WEB_CLIENT_ID));
    pairs.extend(secret.map(|s| ("client_secret", s)));
    token(emu, &pairs).await
}

/// Asserts an LWA error body: status 400 by default, `error`, and the description.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, error: &str, description: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "body: {body}");
    assert_eq!(body["error"], error, "body: {body}");
    assert_eq!(body["error_description"], description, "body: {body}");
}

/// Asserts a 400 with LWA error code `error`.
#[track_caller]
pub fn assert_error_code(status: StatusCode, body: &Value, error: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "body: {body}");
    assert_eq!(body["error"], error, "body: {body}");
}

/// The PKCE code exchange; returns the JSON token response.
pub async fn exchange(emu: &RunningEmulator, code: &str, pkce: &PkcePair) -> (StatusCode, Value) {
    code_exchange(
        emu,
        code,
        REDIRECT,
        DEVICE,
        &[("code_verifier", pkce.verifier.expose_secret())],
    )
    .await
}

async fn answer(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("an answer")
}

/// Sends `request` and reads its JSON body (the request must get an answer).
pub async fn json_of<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    answer(request).await.json().await.expect("a JSON body")
}

/// Sends `request` and reads its text body.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    answer(request).await.text().await.expect("a body")
}

/// Sends `request` and returns its status.
pub async fn status_of(request: reqwest::RequestBuilder) -> StatusCode {
    answer(request).await.status()
}

/// `GET /ping` with `access` as a Bearer token: 204 for a live `alexa:all` token.
pub async fn ping(emu: &RunningEmulator, access: &str) -> StatusCode {
    status_of(http().get(emu.url("/ping")).bearer_auth(access)).await
}

/// The refresh grant of a public client.
pub async fn refresh_as(emu: &RunningEmulator, refresh: &str, client: &str) -> (StatusCode, Value) {
    token(
        emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client),
        ],
    )
    .await
}

/// The device_code grant (a CBL poll).
pub async fn poll_code_pair(
    emu: &RunningEmulator,
    device_code: &str,
    user_code: &str,
) -> (StatusCode, Value) {
    token(
        emu,
        &[
            ("grant_type", "device_code"),
            ("device_code", device_code),
            ("user_code", user_code),
        ],
    )
    .await
}

/// An `/ap/oa` URL without PKCE or state, for `client`, `scope` and `redirect`.
pub fn plain_authorize_url(
    emu: &RunningEmulator,
    client: &str,
    scope: &str,
    redirect: &str,
) -> String {
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    raw_authorize_url(
        emu,
        &[
            ("client_id", client),
            ("scope", scope),
            ("scope_data", sd.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect),
        ],
    )
}

/// The authorization_code grant with `extra` parameters (verifier, secret…).
pub async fn code_exchange(
    emu: &RunningEmulator,
    code: &str,
    redirect: &str,
    client: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", client),
    ];
    pairs.extend_from_slice(extra);
    token(emu, &pairs).await
}

/// A refresh token minted for Alice and the device client.
pub fn alice_refresh_token(emu: &RunningEmulator) -> shared_protocol::secret::RefreshToken {
    emu.mint_tokens(ALICE_EMAIL, DEVICE)
        .expect("minted")
        .refresh_token
        .expect("a refresh token")
}

/// The response's `Content-Type` ("" when absent).
pub fn content_type(response: &reqwest::Response) -> &str {
    header(response, "content-type")
}

/// The response's header `name` ("" when absent or not text).
pub fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The value of the hidden form field `name` on `page`.
pub fn hidden_field(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the field is on the page")
        .to_owned()
}

/// Alice's credentials POSTed to `/ap/signin` for transaction `txn`.
pub async fn post_signin(
    client: &reqwest::Client,
    emu: &RunningEmulator,
    txn: &str,
) -> reqwest::Response {
    client
        .post(emu.url("/ap/signin"))
        .form(&[
            ("txn", txn),
            ("email", ALICE_EMAIL),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .expect("an answer")
}

/// The `Set-Cookie` header of `response`.
pub fn set_cookie(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
}

/// `text` as `application/x-www-form-urlencoded` writes it (spaces as `+`).
pub fn form_encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
