//! `POST /auth/o2/token`: every grant and every error, over real HTTP.

use std::time::Duration;

use base64::Engine as _;
use lwa_emulator::record::PKCE_EXCHANGE_PARAMS;
use lwa_emulator::registry::{
    ALICE_EMAIL, DEFAULT_PRODUCT_ID, DEFAULT_WEB_CLIENT_ID, DEFAULT_WEB_CLIENT_SECRET,
};
use lwa_emulator::{redact, Emulator, RefreshTokenMode};
use reqwest::StatusCode;
use serde_json::Value;
use shared_protocol::lwa::{AuthError, TokenResponse};
use shared_protocol::pkce::PkcePair;

use crate::common::*;

const BAD_CODE: &str = "The request has an invalid grant parameter : code";
const BAD_REFRESH: &str = "The request has an invalid grant parameter : refresh_token";

fn check_token_shape(body: &Value) -> TokenResponse {
    let access = body["access_token"].as_str().unwrap();
    assert!(access.starts_with("Atza|"));
    assert!(access.len() >= 355, "access token length {}", access.len());
    assert!(access[5..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("Atzr|"));
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].is_u64());
    let parsed: TokenResponse = serde_json::from_value(body.clone()).unwrap();
    parsed.validate().unwrap();
    parsed
}

#[tokio::test]
async fn pkce_code_exchange_then_refresh() {
    let emu = start().await;
    let (pkce, code) = fresh_code(&emu).await;
    let (status, body) = exchange(&emu, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = check_token_shape(&body);
    assert_eq!(body["expires_in"], 3600);

    let refresh = tokens.refresh_token.unwrap();
    let (status, body) = refresh_as(&emu, refresh.expose_secret(), DEVICE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = check_token_shape(&body);
    // Default mode: the same refresh token comes back; a new access token.
    assert_eq!(refreshed.refresh_token.unwrap(), refresh);
    assert_ne!(refreshed.access_token, tokens.access_token);

    // The record shows the exact wire contents, secrets fingerprinted.
    let sent = emu
        .requests()
        .into_iter()
        .filter(|r| r.path == "/auth/o2/token")
        .collect::<Vec<_>>();
    assert_eq!(sent[0].param_names(), PKCE_EXCHANGE_PARAMS);
    assert_eq!(
        sent[0].param("code"),
        Some(redact::fingerprint(&code).as_str())
    );
    assert_eq!(
        sent[1].param("refresh_token"),
        Some(redact::fingerprint(refresh.expose_secret()).as_str())
    );
    assert_eq!(
        sent[1].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let printed = format!("{:?}", emu.requests());
    assert!(!printed.contains(&code));
    assert!(!printed.contains(refresh.expose_secret()));
    assert!(!printed.contains(pkce.verifier.expose_secret()));
}

#[tokio::test]
async fn every_code_mismatch_is_invalid_grant() {
    let emu = start().await;
    // Wrong verifier.
    let (_pkce, code) = fresh_code(&emu).await;
    let (s, b) = exchange(&emu, &code, &PkcePair::generate()).await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);
    assert_eq!(
        AuthError::from_lwa_error(b["error"].as_str().unwrap()),
        AuthError::AuthorizationExpired
    );

    // Missing verifier when a challenge was registered.
    let (_pkce, code) = fresh_code(&emu).await;
    let (s, b) = code_exchange(&emu, &code, REDIRECT, DEVICE, &[]).await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);

    // Different redirect_uri.
    let (pkce, code) = fresh_code(&emu).await;
    let (s, b) = code_exchange(
        &emu,
        &code,
        "http://127.0.0.1:45678/other",
        DEVICE,
        &[("code_verifier", pkce.verifier.expose_secret())],
    )
    .await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);

    // Another client.
    let (pkce, code) = fresh_code(&emu).await;
    let (s, b) = code_exchange(
        &emu,
        &code,
        REDIRECT,
        DEFAULT_WEB_CLIENT_ID,
        &[
            ("client_secret", DEFAULT_WEB_CLIENT_SECRET),
            ("code_verifier", pkce.verifier.expose_secret()),
        ],
    )
    .await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);

    // Unknown code.
    let (s, b) = exchange(&emu, "ANcMJpTtVktKiZvfdYaV", &pkce).await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);

    // Older than 5 minutes.
    let (pkce, code) = fresh_code(&emu).await;
    emu.advance_clock(Duration::from_secs(301));
    let (s, b) = exchange(&emu, &code, &pkce).await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_the_tokens_issued_from_it() {
    let emu = start().await;
    let (pkce, code) = fresh_code(&emu).await;
    let (s, first) = exchange(&emu, &code, &pkce).await;
    assert_eq!(s, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    // An unrelated grant of the same user must survive.
    let other = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap();

    let (s, b) = exchange(&emu, &code, &pkce).await;
    assert_error(s, &b, "invalid_grant", BAD_CODE);

    let (s, b) = refresh_as(&emu, &refresh, DEVICE).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
    assert_eq!(
        status_of(http().get(emu.url("/ping")).bearer_auth(&access)).await,
        StatusCode::FORBIDDEN
    );

    let (s, _) = token(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                other.refresh_token.unwrap().expose_secret(),
            ),
            ("client_id", DEVICE),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn plain_pkce_and_json_bodies_and_raw_pipes() {
    let emu = start().await;
    // PKCE method omitted → plain (RFC 7636 §4.3).
    let verifier = "a".repeat(43) + "-._~";
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let url = raw_authorize_url(
        &emu,
        &[
            ("client_id", DEVICE),
            ("scope", "alexa:all"),
            ("scope_data", sd.as_str()),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", verifier.as_str()),
        ],
    );
    let code = query(&login(&url).await, "code").unwrap();
    // JSON body, as Amazon's Java sample client sends it.
    let response = http()
        .post(emu.url("/auth/o2/token"))
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": DEVICE,
            "code_verifier": verifier,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("application/json"));
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = response.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();

    // The legacy SDK sends the refresh token unescaped, and to /auth/O2/token.
    let raw = format!("grant_type=refresh_token&refresh_token={refresh}&client_id={DEVICE}");
    assert!(raw.contains('|'));
    assert_eq!(
        status_of(
            http()
                .post(emu.url("/auth/O2/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(raw)
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_duplicate_and_unknown_parameters() {
    let emu = start().await;
    let (s, b) = token(&emu, &[("client_id", DEVICE)]).await;
    assert_error(
        s,
        &b,
        "invalid_request",
        "The request is missing a required parameter : grant_type",
    );
    let (s, b) = token(&emu, &[("grant_type", "password"), ("client_id", DEVICE)]).await;
    assert_error(
        s,
        &b,
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server",
    );
    for (pairs, name) in [
        (
            vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
                ("client_id", DEVICE),
            ],
            "code",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", DEVICE),
            ],
            "redirect_uri",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
            ],
            "client_id",
        ),
        (
            vec![("grant_type", "refresh_token"), ("client_id", DEVICE)],
            "refresh_token",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "Atzr|x")],
            "client_id",
        ),
        (
            vec![("grant_type", "device_code"), ("user_code", "ABCDEF")],
            "device_code",
        ),
        (
            vec![("grant_type", "device_code"), ("device_code", "d")],
            "user_code",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", ""),
                ("client_id", DEVICE),
            ],
            "refresh_token",
        ),
    ] {
        let (s, b) = token(&emu, &pairs).await;
        assert_error(
            s,
            &b,
            "invalid_request",
            &format!("The request is missing a required parameter : {name}"),
        );
    }
    let (s, b) = token(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a"),
            ("refresh_token", "b"),
            ("client_id", DEVICE),
        ],
    )
    .await;
    assert_error(
        s,
        &b,
        "invalid_request",
        "The request has a duplicate parameter : refresh_token",
    );
    // Unknown parameters are ignored (RFC 6749 §3.2); an unknown client is invalid_client.
    let (s, b) = token(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "Atzr|x"),
            ("client_id", "nope"),
            ("extra", "1"),
        ],
    )
    .await;
    assert_error_code(s, &b, "invalid_client");
    // Bad JSON.
    let (status, b) = answer_of(
        http()
            .post(emu.url("/auth/o2/token"))
            .header("content-type", "application/json")
            .body("{oops"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "invalid_request");
    // Error key order: error_description first, as LWA writes it.
    let raw = text_of(
        http()
            .post(emu.url("/auth/o2/token"))
            .form(&[("grant_type", "refresh_token"), ("client_id", DEVICE)]),
    )
    .await;
    assert_eq!(
        raw,
        r#"{"error_description":"The request is missing a required parameter : refresh_token","error":"invalid_request"}"#
    );
}

#[tokio::test]
async fn web_clients_need_their_secret_in_the_body_or_basic_auth() {
    let emu = start().await;
    let tokens = emu.mint_tokens(ALICE_EMAIL, DEFAULT_WEB_CLIENT_ID).unwrap();
    let refresh = tokens.refresh_token.unwrap();
    let (s, b) = refresh_as(&emu, refresh.expose_secret(), DEFAULT_WEB_CLIENT_ID).await;
    assert_error(
        s,
        &b,
        "invalid_request",
        "The request is missing a required parameter : client_secret",
    );
    // The SDK reads that as INVALID_REQUEST, and after a fresh CBL grant as INVALID_CBL_CLIENT_ID.
    assert_eq!(
        AuthError::from_lwa_error(b["error"].as_str().unwrap()),
        AuthError::InvalidRequest
    );

    let refresh_grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose_secret()),
    ];
    let (s, b) = as_web_client(&emu, &refresh_grant, Some("wrong")).await;
    assert_error_code(s, &b, "invalid_client");

    let (s, b) = as_web_client(&emu, &refresh_grant, Some(DEFAULT_WEB_CLIENT_SECRET)).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{DEFAULT_WEB_CLIENT_ID}:{DEFAULT_WEB_CLIENT_SECRET}"
    ));
    assert_eq!(
        status_of(
            http()
                .post(emu.url("/auth/o2/token"))
                .header("authorization", format!("Basic {basic}"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.expose_secret()),
                ])
        )
        .await,
        StatusCode::OK
    );

    // A device client's refresh token cannot be used by the web client.
    let device = alice_refresh_token(&emu);
    let device_grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", device.expose_secret()),
    ];
    let (s, b) = as_web_client(&emu, &device_grant, Some(DEFAULT_WEB_CLIENT_SECRET)).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
}

#[tokio::test]
async fn client_credentials_for_web_clients_only() {
    let emu = start().await;
    let with_scope = [("grant_type", "client_credentials"), ("scope", "profile")];
    let (s, b) = as_web_client(&emu, &with_scope, Some(DEFAULT_WEB_CLIENT_SECRET)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(b["token_type"], "bearer");
    assert!(b.get("refresh_token").is_none());
    let (s, b) = token(
        &emu,
        &[("grant_type", "client_credentials"), ("client_id", DEVICE)],
    )
    .await;
    assert_error_code(s, &b, "unauthorized_client");
    let (s, b) = as_web_client(&emu, &[("grant_type", "client_credentials")], None).await;
    assert_error(
        s,
        &b,
        "invalid_request",
        "The request is missing a required parameter : client_secret",
    );
}

#[tokio::test]
async fn rotating_refresh_tokens_with_and_without_grace() {
    for grace in [0u64, 60] {
        let emu = start_with(Emulator::builder().rotate_refresh_tokens(grace)).await;
        let old = alice_refresh_token(&emu);
        let refresh = |t: String| {
            let emu = &emu;
            async move { refresh_as(emu, &t, DEVICE).await }
        };
        let (s, b) = refresh(old.expose_secret().to_owned()).await;
        assert_eq!(s, StatusCode::OK);
        let new = b["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(new, old.expose_secret());
        let (s, b) = refresh(old.expose_secret().to_owned()).await;
        if grace == 0 {
            assert_error(s, &b, "invalid_grant", BAD_REFRESH);
        } else {
            assert_eq!(s, StatusCode::OK, "old token inside its grace period");
            emu.advance_clock(Duration::from_secs(grace + 1));
            let (s, b) = refresh(old.expose_secret().to_owned()).await;
            assert_error(s, &b, "invalid_grant", BAD_REFRESH);
        }
        let (s, _) = refresh(new).await;
        assert_eq!(s, StatusCode::OK);
    }
}

/// `omit_refresh_tokens`: a refresh answer has no `refresh_token` key (RFC 6749 §6), each one
/// a new live access token, and the token presented keeps working, refresh after refresh, until
/// it is revoked. A code exchange still carries one (the device-code grant: `cbl.rs`).
#[tokio::test]
async fn omitted_refresh_tokens_leave_the_presented_one_valid() {
    let emu = start_with(Emulator::builder().omit_refresh_tokens()).await;
    let (pkce, code) = fresh_code(&emu).await;
    let (status, body) = exchange(&emu, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = check_token_shape(&body);
    let refresh = first.refresh_token.expect("a code exchange carries one");
    let mut seen = vec![first.access_token.expose_secret().to_owned()];
    for _ in 0..3 {
        let (status, body) = refresh_as(&emu, refresh.expose_secret(), DEVICE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let parsed: TokenResponse = serde_json::from_value(body.clone()).unwrap();
        parsed.validate().unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 3600);
        let access = parsed.access_token.expose_secret().to_owned();
        assert!(!seen.contains(&access), "a new access token each time");
        assert_eq!(ping(&emu, &access).await, StatusCode::NO_CONTENT);
        seen.push(access);
    }
    // Still one live refresh token, the one presented all along.
    assert!(emu.revoke_refresh_token(&refresh));
    let (s, b) = refresh_as(&emu, refresh.expose_secret(), DEVICE).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
}

/// The refresh-token mode changes while the emulator runs, over the control API and on the
/// handle: `same` sends the token back, `omit` sends none (it stays valid), `rotate` replaces
/// it (no grace: the old one dies). An unknown mode is refused and changes nothing.
#[tokio::test]
async fn the_refresh_token_mode_changes_while_running() {
    let emu = start().await;
    let set_mode = |mode: &'static str| {
        let request = http()
            .post(emu.url("/_emulator/refresh-token-mode"))
            .json(&serde_json::json!({ "mode": mode }));
        status_of(request)
    };
    let old = alice_refresh_token(&emu);
    let refreshed = |t: String| {
        let emu = &emu;
        async move {
            let (s, b) = refresh_as(emu, &t, DEVICE).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b.get("refresh_token")
                .map(|t| t.as_str().unwrap().to_owned())
        }
    };
    let old_text = old.expose_secret().to_owned();
    assert_eq!(refreshed(old_text.clone()).await.as_ref(), Some(&old_text));
    assert_eq!(set_mode("omit").await, StatusCode::NO_CONTENT);
    assert_eq!(refreshed(old_text.clone()).await, None);
    assert!(set_mode("none").await.is_client_error());
    assert_eq!(refreshed(old_text.clone()).await, None, "still omit");
    emu.set_refresh_token_mode(RefreshTokenMode::Rotate);
    let new = refreshed(old_text.clone()).await.expect("a rotated token");
    assert_ne!(new, old_text);
    let (s, b) = refresh_as(&emu, &old_text, DEVICE).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
    assert_eq!(set_mode("same").await, StatusCode::NO_CONTENT);
    assert_eq!(refreshed(new.clone()).await, Some(new));
}

#[tokio::test]
async fn revoking_a_user_or_one_token_gives_invalid_grant_and_lifetimes_are_configurable() {
    let emu = start_with(Emulator::builder().access_token_lifetime(1)).await;
    let tokens = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap();
    assert_eq!(tokens.expires_in.0, 1);
    emu.set_access_token_lifetime(7);
    let refresh = tokens.refresh_token.unwrap();
    let (s, b) = refresh_as(&emu, refresh.expose_secret(), DEVICE).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["expires_in"], 7);

    let summary = emu.revoke_user_tokens(ALICE_EMAIL).unwrap();
    assert_eq!(summary.refresh_tokens, 1);
    assert_eq!(summary.access_tokens, 2);
    let (s, b) = refresh_as(&emu, refresh.expose_secret(), DEVICE).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
    assert!(emu.revoke_user_tokens("nobody@example.com").is_err());

    let other = alice_refresh_token(&emu);
    assert!(emu.revoke_refresh_token(&other));
    assert!(!emu.revoke_refresh_token(&other));
    let (s, b) = refresh_as(&emu, other.expose_secret(), DEVICE).await;
    assert_error(s, &b, "invalid_grant", BAD_REFRESH);
}

/// Issue 15 item 1: Amazon documents that a code exchange without `client_secret` returns no
/// refresh token (lwa-spec §11). A web client used with PKCE alone got one, and then failed
/// its first refresh.
#[tokio::test]
async fn a_web_client_without_its_secret_gets_no_refresh_token() {
    let emu = start().await;
    let exchange_as_web = |code: String, pkce: PkcePair, secret: Option<&'static str>| {
        let emu = &emu;
        async move {
            let verifier = pkce.verifier.expose_secret().to_owned();
            let grant = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ];
            as_web_client(emu, &grant, secret).await
        }
    };
    let pkce = PkcePair::generate();
    let code = code_for_client(&emu, DEFAULT_WEB_CLIENT_ID, &pkce).await;
    let (status, body) = exchange_as_web(code, pkce, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert!(body.get("refresh_token").is_none(), "{body}");
    let parsed: TokenResponse = serde_json::from_value(body).unwrap();
    assert!(parsed.refresh_token.is_none());

    // With its secret, the same kind of client gets one.
    let pkce = PkcePair::generate();
    let code = code_for_client(&emu, DEFAULT_WEB_CLIENT_ID, &pkce).await;
    let (status, body) = exchange_as_web(code, pkce, Some(DEFAULT_WEB_CLIENT_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    check_token_shape(&body);

    // A device client needs no secret for its refresh token.
    let (pkce, code) = fresh_code(&emu).await;
    check_token_shape(&exchange(&emu, &code, &pkce).await.1);
}
