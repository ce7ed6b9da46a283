//! HTTPS mode: a generated CA whose PEM clients load; certificate checks stay on.

use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD};
use lwa_emulator::{Consent, Emulator, ScriptedUser};
use reqwest::StatusCode;
use shared_protocol::pkce::PkcePair;

use crate::common::*;

#[tokio::test]
async fn https_with_generated_ca_and_full_flow() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let emu = start_with(
        Emulator::builder()
            .https(vec!["lwa.test".into()])
            .ca_out(ca_path.clone()),
    )
    .await;
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    assert_eq!(emu.ca_cert_path(), Some(ca_path.as_path()));
    let pem = std::fs::read(&ca_path).unwrap();
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE"));

    // Without trusting the CA, a checking client refuses.
    let untrusting = reqwest::Client::builder().build().unwrap();
    let err = untrusting
        .get(emu.url("/_emulator/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Trusting it, by IP and by the extra SAN (resolved to loopback).
    let port = emu.local_addr().port();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("lwa.test", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for url in [
        emu.url("/_emulator/health"),
        format!("https://lwa.test:{port}/_emulator/health"),
        format!("https://localhost:{port}/_emulator/health"),
    ] {
        assert_eq!(status_of(trusting.get(&url)).await, StatusCode::OK, "{url}");
    }

    // The full login and code exchange over HTTPS; the session cookie is Secure.
    let pkce = PkcePair::generate();
    let mut user = ScriptedUser::with_root_ca(ALICE_EMAIL, ALICE_PASSWORD, &pem).unwrap();
    let redirect = user
        .authorize(&authorize_url(&emu, &pkce), Consent::Allow)
        .await
        .unwrap();
    let code = query(&redirect, "code").unwrap();
    assert_eq!(
        status_of(trusting.post(emu.endpoints().token).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", DEVICE),
            ("code_verifier", pkce.verifier.expose_secret()),
        ]))
        .await,
        StatusCode::OK
    );
    let page = text_of(trusting.get(authorize_url(&emu, &pkce))).await;
    let txn = hidden_field(&page, "txn");
    let signin = post_signin(&trusting, &emu, &txn).await;
    assert!(set_cookie(&signin).contains("; Secure"));
    emu.shutdown().await;
}

#[tokio::test]
async fn plain_http_refuses_non_loopback_binds_unless_allowed() {
    let err = Emulator::builder()
        .bind("0.0.0.0:0".parse().unwrap())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refusing plain HTTP"), "{err}");
    // Allowed explicitly (still only reachable here through loopback in this test).
    let emu = start_with(
        Emulator::builder()
            .bind("0.0.0.0:0".parse().unwrap())
            .allow_non_loopback_http(true),
    )
    .await;
    assert!(emu.base_url().starts_with("http://127.0.0.1:"));
    emu.shutdown().await;
    // HTTPS may bind anywhere; a temp CA file is written when no path is given.
    let emu = start_with(
        Emulator::builder()
            .bind("0.0.0.0:0".parse().unwrap())
            .https(vec![]),
    )
    .await;
    let path = emu.ca_cert_path().unwrap().to_owned();
    assert!(path.exists());
    emu.shutdown().await;
    assert!(
        !path.exists(),
        "temporary CA file removed with the emulator"
    );
}
