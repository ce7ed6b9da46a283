//! Fault injection and the `/_emulator` control API, over real HTTP.

use std::time::{Duration, Instant};

use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_PRODUCT_ID};
use lwa_emulator::{Endpoint, Fault, RecordedRequest};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_protocol::lwa::{AuthError, CodePairRequest};

use crate::common::*;

async fn refresh(
    emu: &lwa_emulator::RunningEmulator,
    token: &str,
) -> reqwest::Result<reqwest::Response> {
    http()
        .post(emu.url("/auth/o2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", DEVICE),
        ])
        .send()
        .await
}

#[tokio::test]
async fn status_faults_hit_the_next_n_requests_then_the_endpoint_recovers() {
    let emu = start().await;
    let rt = alice_refresh_token(&emu);
    emu.inject_fault(Endpoint::Token, Fault::unavailable(7), 2);
    emu.inject_fault(Endpoint::Token, Fault::status(500), 1);
    emu.inject_fault(Endpoint::Token, Fault::too_many_requests(1), 1);
    // Other endpoints are unaffected.
    assert_eq!(
        status_of(http().get(emu.url("/ping"))).await,
        StatusCode::FORBIDDEN
    );

    for _ in 0..2 {
        let r = refresh(&emu, rt.expose_secret()).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get("retry-after").unwrap(), "7");
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        assert_eq!(
            AuthError::from_response(status, &body).0,
            AuthError::ServerError
        );
    }
    let r = refresh(&emu, rt.expose_secret()).await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "servererror");
    let r = refresh(&emu, rt.expose_secret()).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let r = refresh(&emu, rt.expose_secret()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let faults: Vec<Option<String>> = emu
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::Token))
        .map(|r| r.fault)
        .collect();
    assert_eq!(
        faults,
        vec![
            Some("status 503".into()),
            Some("status 503".into()),
            Some("status 500".into()),
            Some("status 429".into()),
            None
        ]
    );
}

#[tokio::test]
async fn delay_drop_and_malformed_json() {
    let emu = start().await;
    let rt = alice_refresh_token(&emu);

    emu.inject_fault(Endpoint::Token, Fault::Delay { millis: 300 }, 1);
    let started = Instant::now();
    let r = refresh(&emu, rt.expose_secret()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status(), StatusCode::OK);

    emu.inject_fault(Endpoint::Token, Fault::Drop, 1);
    let err = refresh(&emu, rt.expose_secret()).await.unwrap_err();
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("connection"),
        "{err:?}"
    );
    let dropped = emu
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.endpoint == Some(Endpoint::Token))
        .unwrap();
    assert_eq!(dropped.status, None);
    assert_eq!(dropped.fault.as_deref(), Some("drop"));

    emu.inject_fault(Endpoint::Token, Fault::MalformedJson, 1);
    let r = refresh(&emu, rt.expose_secret()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    assert_eq!(
        AuthError::from_response(200, &body).0,
        AuthError::UnknownError
    );

    // Healthy again, on a fresh connection after the drop.
    assert_eq!(
        refresh(&emu, rt.expose_secret()).await.unwrap().status(),
        StatusCode::OK
    );
    // clear_faults empties the queue.
    emu.inject_fault(Endpoint::Token, Fault::status(500), 5);
    emu.clear_faults();
    assert_eq!(
        refresh(&emu, rt.expose_secret()).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_http_control_api_does_what_the_rust_handle_does() {
    let emu = start().await;
    let c = http();
    let ctl = |path: &str| emu.url(&format!("/_emulator{path}"));
    let health: Value = json_of(c.get(ctl("/health"))).await;
    assert_eq!(health["ok"], true);

    // Mint, then revoke by user over HTTP.
    let minted: Value = json_of(
        c.post(ctl("/tokens/mint"))
            .json(&json!({"user": ALICE_EMAIL, "client_id": DEVICE})),
    )
    .await;
    let rt = minted["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&emu, &rt).await.unwrap().status(), StatusCode::OK);
    let summary: Value = json_of(c.post(ctl(&format!("/users/{ALICE_EMAIL}/revoke")))).await;
    assert_eq!(summary["refresh_tokens"], 1);
    assert_eq!(
        refresh(&emu, &rt).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status_of(c.post(ctl("/users/nobody/revoke"))).await,
        StatusCode::NOT_FOUND
    );

    // Faults over HTTP.
    assert_eq!(status_of(c
        .post(ctl("/faults"))
        .json(&json!({"endpoint": "ping", "fault": {"kind": "status", "status": 503, "retry_after": 2}, "count": 1}))).await, StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(emu.url("/ping")).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let bad = c
        .post(ctl("/faults"))
        .json(&json!({"endpoint": "nowhere", "fault": {"kind": "drop"}}))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());

    // CBL approve over HTTP.
    let pair: Value = json_of(
        c.post(emu.url("/auth/O2/create/codepair"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                CodePairRequest {
                    client_id: DEVICE.into(),
                    product_id: DEFAULT_PRODUCT_ID.into(),
                    dsn: "D".into(),
                }
                .to_form_body(),
            ),
    )
    .await;
    let user_code = pair["user_code"].as_str().unwrap();
    assert_eq!(
        status_of(
            c.post(ctl(&format!("/codepairs/{user_code}/approve")))
                .json(&json!({"user": "bob@example.com"}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (s, b) = poll_code_pair(&emu, pair["device_code"].as_str().unwrap(), user_code).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = c.post(ctl("/codepairs/ZZZZZZ/deny")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Lifetime, expiry and clock over HTTP.
    c.post(ctl("/access-token-lifetime"))
        .json(&json!({"seconds": 9}))
        .send()
        .await
        .unwrap();
    let minted: Value = json_of(
        c.post(ctl("/tokens/mint"))
            .json(&json!({"user": ALICE_EMAIL, "client_id": DEVICE})),
    )
    .await;
    assert_eq!(minted["expires_in"], 9);
    let at = minted["access_token"].as_str().unwrap();
    assert_eq!(ping(&emu, at).await, StatusCode::NO_CONTENT);
    c.post(ctl("/clock/advance"))
        .json(&json!({"seconds": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(ping(&emu, at).await, StatusCode::FORBIDDEN);
    let minted: Value = json_of(
        c.post(ctl("/tokens/mint"))
            .json(&json!({"user": ALICE_EMAIL, "client_id": DEVICE})),
    )
    .await;
    let expired: Value = json_of(c.post(ctl("/access-tokens/expire"))).await;
    // Live now: bob's CBL token and the one just minted (the 9 s one aged out).
    assert_eq!(expired["expired"], 2);
    let at = minted["access_token"].as_str().unwrap();
    assert_eq!(ping(&emu, at).await, StatusCode::FORBIDDEN);

    // Revoke one refresh token over HTTP.
    let rt = minted["refresh_token"].as_str().unwrap();
    let revoked: Value = json_of(
        c.post(ctl("/refresh-tokens/revoke"))
            .json(&json!({"refresh_token": rt})),
    )
    .await;
    assert_eq!(revoked["revoked"], true);

    // The request record over HTTP: control calls are not recorded, API calls are, redacted.
    let records: Vec<RecordedRequest> = json_of(c.get(ctl("/requests"))).await;
    assert!(records.iter().all(|r| !r.path.starts_with("/_emulator")));
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(rt));
    assert!(!text.contains(at));
    let with_bearer = records
        .iter()
        .find(|r| r.path == "/ping" && r.header("authorization").is_some())
        .unwrap();
    assert!(with_bearer
        .header("authorization")
        .unwrap()
        .starts_with("Bearer Atza…("));
    assert_eq!(
        c.delete(ctl("/requests")).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let emu = start().await;
    assert_eq!(
        status_of(
            http()
                .post(emu.url("/auth/o2/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=refresh_token&junk={}",
                    "x".repeat(70 * 1024)
                ))
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}
