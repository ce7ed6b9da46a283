//! Token-checking endpoints: tokeninfo, profile, AVS ping and downchannel.

use std::time::Duration;

use lwa_emulator::registry::{ALICE_EMAIL, ALICE_USER_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::common::*;

#[tokio::test]
async fn tokeninfo_and_profile_accept_the_token_three_ways() {
    let emu = start().await;
    let tokens = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap();
    let access = tokens.access_token.expose_secret().to_owned();
    for path in ["/auth/o2/tokeninfo", "/auth/O2/tokeninfo"] {
        let info: Value = json_of(
            http()
                .get(emu.url(path))
                .query(&[("access_token", access.as_str())]),
        )
        .await;
        assert_eq!(info["aud"], DEVICE);
        assert_eq!(info["user_id"], ALICE_USER_ID);
        assert!(info["exp"].as_u64().unwrap() > 3500);
    }
    let ways = [
        http()
            .get(emu.url("/user/profile"))
            .query(&[("access_token", access.as_str())]),
        http().get(emu.url("/user/profile")).bearer_auth(&access),
        http()
            .get(emu.url("/user/profile"))
            .header("x-amz-access-token", &access),
    ];
    for request in ways {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let profile: Value = response.json().await.unwrap();
        assert_eq!(profile["user_id"], ALICE_USER_ID);
        // alexa:all only: no name/email without the profile scope.
        assert!(profile.get("email").is_none());
    }
    assert_eq!(
        status_of(http().get(emu.url("/user/profile"))).await,
        StatusCode::BAD_REQUEST
    );
    let (status, body) = answer_of(
        http()
            .get(emu.url("/user/profile"))
            .bearer_auth("Atza|nope"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        status_of(
            http()
                .get(emu.url("/auth/o2/tokeninfo"))
                .query(&[("access_token", "Atza|nope")])
        )
        .await,
        StatusCode::BAD_REQUEST
    );
}

/// Alice signs in for `scope` (no PKCE), the code is exchanged, and `/user/profile` is read with
/// the access token: the sign-in's redirect and the profile.
async fn profile_after_sign_in(emu: &RunningEmulator, scope: &str) -> (Url, Value) {
    let redirect = login(&plain_authorize_url(emu, DEVICE, scope, REDIRECT)).await;
    let code = query(&redirect, "code").unwrap();
    let (s, b) = code_exchange(emu, &code, REDIRECT, DEVICE, &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let profile = json_of(
        http()
            .get(emu.url("/user/profile"))
            .bearer_auth(b["access_token"].as_str().unwrap()),
    )
    .await;
    (redirect, profile)
}

#[tokio::test]
async fn profile_scope_adds_name_and_email() {
    let emu = start().await;
    let (redirect, profile) = profile_after_sign_in(&emu, "alexa:all profile").await;
    assert_eq!(
        query(&redirect, "scope").as_deref(),
        Some("alexa:all profile")
    );
    assert_eq!(profile["email"], ALICE_EMAIL);
    assert_eq!(profile["name"], "Alice Example");
}

/// `withhold_profile`: the id only, even with the `profile` scope (the companion's fall-back).
#[tokio::test]
async fn withheld_profile_answers_the_user_id_only() {
    let emu = start_with(Emulator::builder().withhold_profile(true)).await;
    let (_, profile) = profile_after_sign_in(&emu, "alexa:all profile").await;
    assert_eq!(profile, serde_json::json!({ "user_id": ALICE_USER_ID }));
}

#[tokio::test]
async fn ping_is_204_for_a_live_token_and_403_system_exception_otherwise() {
    let emu = start_with(Emulator::builder().access_token_lifetime(1)).await;
    let access = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap().access_token;
    let ping = |token: Option<String>| {
        let mut request = http().get(emu.url("/ping"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(
        ping(Some(access.expose_secret().into())).await.status(),
        StatusCode::NO_CONTENT
    );
    for token in [None, Some("Atza|garbage".to_owned())] {
        let response = ping(token).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["header"]["namespace"], "System");
        assert_eq!(body["header"]["name"], "Exception");
        assert_eq!(body["payload"]["code"], "UNAUTHORIZED_REQUEST_EXCEPTION");
    }
    // Lifetime 1 s: expire by clock, without sleeping.
    emu.advance_clock(Duration::from_secs(2));
    assert_eq!(
        ping(Some(access.expose_secret().into())).await.status(),
        StatusCode::FORBIDDEN
    );

    let fresh = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap().access_token;
    assert_eq!(
        ping(Some(fresh.expose_secret().into())).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(emu.expire_access_tokens(), 1);
    assert_eq!(
        ping(Some(fresh.expose_secret().into())).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn downchannel_opens_for_a_live_token_and_ends_at_shutdown() {
    let emu = start().await;
    let access = emu.mint_tokens(ALICE_EMAIL, DEVICE).unwrap().access_token;
    let response = http()
        .get(emu.url("/v20160207/directives"))
        .bearer_auth(access.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("multipart/related; boundary="));
    assert_eq!(
        status_of(
            http()
                .get(emu.url("/v20160207/directives"))
                .bearer_auth("Atza|x")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // The body stays open until the emulator stops; shutdown must not hang on it.
    let body = tokio::spawn(async move { response.bytes().await });
    tokio::time::timeout(Duration::from_secs(10), emu.shutdown())
        .await
        .expect("graceful shutdown with an open downchannel");
    let bytes = tokio::time::timeout(Duration::from_secs(10), body)
        .await
        .expect("body ends after shutdown")
        .unwrap();
    assert!(bytes.map(|b| b.is_empty()).unwrap_or(true));
}

/// Issue 15 item 12: AVS accepted any live token, even one granted only `profile`.
#[tokio::test]
async fn avs_refuses_a_token_without_alexa_all_but_profile_accepts_it() {
    let emu = start().await;
    let response = http()
        .post(emu.url("/auth/O2/create/codepair"))
        .form(&[
            ("response_type", "device_code"),
            ("client_id", DEVICE),
            ("scope", "profile"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    let user_code = pair["user_code"].as_str().unwrap();
    emu.approve_user_code(user_code, ALICE_EMAIL).unwrap();
    let (status, body) =
        poll_code_pair(&emu, pair["device_code"].as_str().unwrap(), user_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    for path in ["/ping", "/v20160207/directives"] {
        let (status, body) = answer_of(http().get(emu.url(path)).bearer_auth(access)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["payload"]["code"], "UNAUTHORIZED_REQUEST_EXCEPTION");
    }
    let (status, profile) =
        answer_of(http().get(emu.url("/user/profile")).bearer_auth(access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["email"], ALICE_EMAIL);
    assert_eq!(profile["name"], "Alice Example");
}
