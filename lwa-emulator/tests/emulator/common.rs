//! Helpers shared by the emulator API tests: a real emulator on a loopback port and a plain
//! reqwest client that does not follow redirects.

use std::time::Duration;

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::{Consent, Emulator, RunningEmulator, ScriptedUser};
use reqwest::StatusCode;
use serde_json::Value;
use shared_protocol::lwa::AuthorizeRequest;
use shared_protocol::pkce::PkcePair;
use url::Url;

pub const DEVICE: &str = DEFAULT_DEVICE_CLIENT_ID;
pub const REDIRECT: &str = "http://127.0.0.1:45678/authresponse";

pub async fn start() -> RunningEmulator {
    Emulator::builder().start().await.expect("emulator starts")
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
    AuthorizeRequest {
        client_id: client.into(),
        redirect_uri: REDIRECT.into(),
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

/// [`code_for`] with another client.
pub async fn code_for_client(emu: &RunningEmulator, client: &str, pkce: &PkcePair) -> String {
    let redirect = login(&authorize_url_for(emu, client, pkce)).await;
    query(&redirect, "code").expect("code in redirect")
}

/// POSTs a form to the token endpoint; returns status and JSON body.
pub async fn token(emu: &RunningEmulator, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http()
        .post(emu.url("/auth/o2/token"))
        .form(pairs)
        .send()
        .await
        .expect("token request");
    let status = response.status();
    let body = response.json().await.expect("json body");
    (status, body)
}

/// Asserts an LWA error body: status 400 by default, `error`, and the description.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, error: &str, description: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "body: {body}");
    assert_eq!(body["error"], error, "body: {body}");
    assert_eq!(body["error_description"], description, "body: {body}");
}

/// The PKCE code exchange; returns the JSON token response.
pub async fn exchange(emu: &RunningEmulator, code: &str, pkce: &PkcePair) -> (StatusCode, Value) {
    token(
        emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", DEVICE),
            ("code_verifier", pkce.verifier.expose_secret()),
        ],
    )
    .await
}
