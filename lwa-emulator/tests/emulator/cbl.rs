//! Code-based linking: `POST /auth/O2/create/codepair`, the `/code` page, and the device_code
//! grant, over real HTTP.

use std::time::Duration;

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, BOB_EMAIL, DEFAULT_PRODUCT_ID, DEFAULT_WEB_CLIENT_ID,
};
use lwa_emulator::{BrowseError, Consent, Emulator, RunningEmulator, ScriptedUser, Settings};
use reqwest::StatusCode;
use serde_json::Value;
use shared_protocol::lwa::{CodePairRequest, CodePairResponse};

use crate::common::*;

async fn codepair(emu: &RunningEmulator, path: &str, body: String) -> (StatusCode, Value) {
    let response = http()
        .post(emu.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `POST /auth/O2/create/codepair` for `client` and `product`.
async fn create_pair(emu: &RunningEmulator, client: &str, product: &str) -> (StatusCode, Value) {
    codepair(emu, "/auth/O2/create/codepair", request(client, product)).await
}

fn request(client: &str, product: &str) -> String {
    CodePairRequest {
        client_id: client.into(),
        product_id: product.into(),
        dsn: "DSN-0001".into(),
    }
    .to_form_body()
}

async fn new_pair(emu: &RunningEmulator) -> CodePairResponse {
    let (s, b) = create_pair(emu, DEVICE, DEFAULT_PRODUCT_ID).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    serde_json::from_value(b).unwrap()
}

async fn poll(emu: &RunningEmulator, pair: &CodePairResponse) -> (StatusCode, Value) {
    poll_code_pair(emu, pair.device_code.expose_secret(), &pair.user_code).await
}

#[tokio::test]
async fn codepair_shape_on_both_path_spellings() {
    let emu = start().await;
    for path in ["/auth/O2/create/codepair", "/auth/o2/create/codepair"] {
        let (s, b) = codepair(&emu, path, request(DEVICE, DEFAULT_PRODUCT_ID)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let user_code = b["user_code"].as_str().unwrap();
        assert_eq!(user_code.len(), 6);
        assert!(user_code.bytes().all(|c| c.is_ascii_uppercase()));
        assert!(uuid::Uuid::parse_str(b["device_code"].as_str().unwrap()).is_ok());
        assert_eq!(b["verification_uri"], emu.url("/code"));
        assert_eq!(b["expires_in"], 600);
        assert_eq!(b["interval"], 30);
    }
    assert_eq!(
        status_of(
            http()
                .post(emu.url("/auth/o3/create/codepair"))
                .body(request(DEVICE, DEFAULT_PRODUCT_ID))
        )
        .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn codepair_errors() {
    let emu = start().await;
    for (client, product, invalid) in [
        (
            "amzn1.application-oa2-client.nope",
            DEFAULT_PRODUCT_ID,
            "client_id",
        ),
        (DEVICE, "unknown_product", "scope_data"),
    ] {
        let (s, b) = create_pair(&emu, client, product).await;
        let description = format!("The request has an invalid parameter : {invalid}");
        assert_error(s, &b, "InvalidValue", &description);
    }
    for (body, missing) in [
        (
            format!("response_type=device_code&client_id={DEVICE}&scope=alexa%3Aall"),
            "scope_data",
        ),
        (
            format!("client_id={DEVICE}&scope=alexa%3Aall"),
            "response_type",
        ),
    ] {
        let (s, b) = codepair(&emu, "/auth/O2/create/codepair", body).await;
        let description = format!("The request is missing a required parameter : {missing}");
        assert_error(s, &b, "invalid_request", &description);
    }
    // One `scope` parameter per scope is accepted (the LWA Android SDK's style).
    let (s, b) = codepair(
        &emu,
        "/auth/O2/create/codepair",
        format!("response_type=device_code&scope=profile&scope=alexa%3Aall&scope_data={}&client_id={DEVICE}", urlencode(&scope_data(DEFAULT_PRODUCT_ID))),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn pending_then_approved_then_redeemed_once() {
    let emu = start().await;
    let pair = new_pair(&emu).await;
    let (s, b) = poll(&emu, &pair).await;
    assert_error(
        s,
        &b,
        "authorization_pending",
        "The authorization request is still pending",
    );
    // Polling fast is fine unless slow_down is enabled (the SDK polls every 5 s).
    let (s, b) = poll(&emu, &pair).await;
    assert_eq!(b["error"], "authorization_pending", "{s}");

    emu.approve_user_code(&pair.user_code.to_lowercase(), ALICE_EMAIL)
        .unwrap();
    let (s, b) = poll(&emu, &pair).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["access_token"].as_str().unwrap().starts_with("Atza|"));
    let access = b["access_token"].as_str().unwrap().to_owned();
    // The newest SDK reads the profile right after the grant.
    let profile: Value = json_of(
        http()
            .get(emu.url("/user/profile"))
            .query(&[("access_token", access.as_str())]),
    )
    .await;
    assert_eq!(profile["user_id"], lwa_emulator::registry::ALICE_USER_ID);
    // And then refreshes immediately with client_id only.
    let (s, _) = refresh_as(&emu, b["refresh_token"].as_str().unwrap(), DEVICE).await;
    assert_eq!(s, StatusCode::OK);

    let (s, b) = poll(&emu, &pair).await;
    assert_error(
        s,
        &b,
        "invalid_code_pair",
        "The code pair is invalid or has expired",
    );
    // Approving a used code fails.
    assert!(emu.approve_user_code(&pair.user_code, ALICE_EMAIL).is_err());
}

/// A device-code grant starts an account: it carries a refresh token even when refresh answers
/// omit theirs.
#[tokio::test]
async fn a_device_code_grant_carries_a_refresh_token_when_refreshes_omit_it() {
    let emu = start_with(Emulator::builder().omit_refresh_tokens()).await;
    let pair = new_pair(&emu).await;
    emu.approve_user_code(&pair.user_code, ALICE_EMAIL).unwrap();
    let (s, b) = poll(&emu, &pair).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let refresh = b["refresh_token"].as_str().expect("a refresh token");
    let (s, b) = refresh_as(&emu, refresh, DEVICE).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.get("refresh_token").is_none(), "{b}");
}

#[tokio::test]
async fn denied_expired_unknown_and_mismatched_pairs() {
    let emu = start().await;
    let denied = new_pair(&emu).await;
    emu.deny_user_code(&denied.user_code).unwrap();
    let (s, b) = poll(&emu, &denied).await;
    assert_error_code(s, &b, "invalid_code_pair");

    let mismatched = new_pair(&emu).await;
    let (s, b) = poll_code_pair(&emu, mismatched.device_code.expose_secret(), "ZZZZZZ").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code_pair"))
    );
    let (s, b) = poll_code_pair(&emu, "d1e4836b-2799-4294-9379-0025b37ec06c", "BEYHYS").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code_pair"))
    );

    let expired = new_pair(&emu).await;
    emu.advance_clock(Duration::from_secs(601));
    let (s, b) = poll(&emu, &expired).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code_pair"))
    );
    assert!(emu
        .approve_user_code(&expired.user_code, ALICE_EMAIL)
        .is_err());
}

#[tokio::test]
async fn slow_down_and_configurable_denial_code() {
    let emu = start_with(Emulator::builder().settings(Settings {
        slow_down: true,
        codepair_interval_secs: 5,
        denied_code_pair_error: "access_denied".into(),
        ..Settings::default()
    }))
    .await;
    let pair = new_pair(&emu).await;
    assert_eq!(pair.interval, Some(5));
    let (_, b) = poll(&emu, &pair).await;
    assert_eq!(b["error"], "authorization_pending");
    let (s, b) = poll(&emu, &pair).await;
    assert_error(s, &b, "slow_down", "The client is polling too quickly");
    emu.advance_clock(Duration::from_secs(6));
    let (_, b) = poll(&emu, &pair).await;
    assert_eq!(b["error"], "authorization_pending");
    emu.deny_user_code(&pair.user_code).unwrap();
    let (_, b) = poll(&emu, &pair).await;
    assert_eq!(b["error"], "access_denied");
}

#[tokio::test]
async fn the_code_page_works_for_a_scripted_user() {
    let emu = start().await;
    let pair = new_pair(&emu).await;
    let mut alice = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD).unwrap();
    alice
        .enter_user_code(
            &pair.verification_uri,
            &pair.user_code.to_lowercase(),
            Consent::Allow,
        )
        .await
        .unwrap();
    let (s, b) = poll(&emu, &pair).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // A wrong code is refused on the page.
    let err = alice
        .enter_user_code(&pair.verification_uri, "QQQQQQ", Consent::Allow)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrowseError::ErrorPage { status: 400, .. }),
        "{err:?}"
    );

    // Deny through the page.
    let denied = new_pair(&emu).await;
    ScriptedUser::new(BOB_EMAIL, "alexa-pass-2")
        .unwrap()
        .enter_user_code(&denied.verification_uri, &denied.user_code, Consent::Deny)
        .await
        .unwrap();
    let (_, b) = poll(&emu, &denied).await;
    assert_eq!(b["error"], "invalid_code_pair");

    // A POST without a session is refused.
    assert_eq!(
        status_of(http().post(emu.url("/code")).form(&[
            ("user_code", denied.user_code.as_str()),
            ("decision", "allow"),
            ("csrf", "x"),
        ]))
        .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_web_client_can_do_cbl_but_its_refresh_needs_the_secret() {
    // The SDK's INVALID_CBL_CLIENT_ID path: grant succeeds, first refresh says client_secret.
    let emu = start().await;
    let (s, b) = create_pair(&emu, DEFAULT_WEB_CLIENT_ID, DEFAULT_PRODUCT_ID).await;
    assert_eq!(s, StatusCode::OK);
    let pair: CodePairResponse = serde_json::from_value(b).unwrap();
    emu.approve_user_code(&pair.user_code, ALICE_EMAIL).unwrap();
    let (s, b) = poll(&emu, &pair).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = refresh_as(
        &emu,
        b["refresh_token"].as_str().unwrap(),
        DEFAULT_WEB_CLIENT_ID,
    )
    .await;
    assert_error(
        s,
        &b,
        "invalid_request",
        "The request is missing a required parameter : client_secret",
    );
}

/// A live user code is in no printed form of the emulator: not in its `Debug` (a test's
/// `{emu:?}` or a failed `unwrap`), nor in a control error about it.
#[tokio::test]
async fn a_live_user_code_is_not_in_the_emulators_debug_or_errors() {
    let emu = start().await;
    let pair = new_pair(&emu).await;
    let printed = format!("{emu:?}");
    assert!(printed.contains(emu.base_url()), "{printed}");
    assert!(!printed.contains(&pair.user_code), "{printed}");
    let err = emu
        .approve_user_code(&pair.user_code, "nobody@example.org")
        .unwrap_err();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&pair.user_code), "{shown}");
        assert!(!shown.contains("nobody@example.org"), "{shown}");
    }
}
