//! The companion-app flow end to end against the real lwa-emulator: link session, PKCE per
//! session, a real browser-style login at the emulator, the code exchange, Progress events,
//! and an AuthResult for every failure class.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use device_agent::agent::Agent;
use device_agent::config::AgentConfig;
use lwa_emulator::fault::{Endpoint, Fault};
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, BOB_USER_ID,
    DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::{
    AgentMessage, AuthFailure, AuthFailureClass, AuthResult, CompanionMessage, DeviceInfo,
    PairingWindow, ProgressStage, ProvideAuthorization,
};
use shared_protocol::secret::AuthorizationCode;

const REDIRECT: &str = "http://127.0.0.1:9745/authresponse";

/// An exchange that LWA leaves unanswered fails fast.
fn short_exchange(cfg: &mut AgentConfig) {
    cfg.link.exchange_timeout = Duration::from_millis(700);
}

async fn device_info(s: &mut Session) -> DeviceInfo {
    match request(s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(i) => i,
        other => panic!("{other:?}"),
    }
}

/// A fresh session id and challenge from the speaker, and Alice's code for them.
async fn info_and_alice_code(
    s: &mut Session,
    emu: &RunningEmulator,
) -> (DeviceInfo, AuthorizationCode) {
    let info = device_info(s).await;
    let code = alice_code(emu, &info).await;
    (info, code)
}

async fn alice_code(emu: &RunningEmulator, info: &DeviceInfo) -> AuthorizationCode {
    login(
        emu.base_url(),
        DEFAULT_DEVICE_CLIENT_ID,
        REDIRECT,
        ALICE_EMAIL,
        ALICE_PASSWORD,
        info,
    )
    .await
}

fn handover(
    info: &DeviceInfo,
    code: &AuthorizationCode,
    client: &str,
    redirect: &str,
) -> CompanionMessage {
    CompanionMessage::ProvideAuthorization(ProvideAuthorization {
        session_id: info.session_id,
        authorization_code: code.clone(),
        client_id: client.into(),
        redirect_uri: redirect.into(),
    })
}

/// Sends a handover and collects Progress stages until the AuthResult.
async fn provide(s: &mut Session, msg: CompanionMessage) -> (Vec<ProgressStage>, AuthResult) {
    s.send(&msg).await.unwrap();
    let mut stages = Vec::new();
    loop {
        match recv(s).await {
            AgentMessage::Progress(p) => stages.push(p.stage),
            AgentMessage::AuthResult(r) => return (stages, r),
            other => panic!("{other:?}"),
        }
    }
}

/// Waits until delivering "linked" closed the window, then opens it again (as the owner would).
async fn reopen(agent: &Agent) {
    let pairing = agent.pairing().clone();
    eventually("window closed after linked", Duration::from_secs(2), || {
        pairing.window() == PairingWindow::Closed
    })
    .await;
    pairing.open().unwrap();
}

/// Hands `code` over for `info`'s session as the default device client, returning the result.
async fn hand_over(s: &mut Session, info: &DeviceInfo, code: &AuthorizationCode) -> AuthResult {
    provide(s, handover(info, code, DEFAULT_DEVICE_CLIENT_ID, REDIRECT))
        .await
        .1
}

/// [`hand_over`] with `fault` on LWA's next token request: the failure the companion gets.
async fn hand_over_with_fault(
    s: &mut Session,
    emu: &RunningEmulator,
    fault: Fault,
    info: &DeviceInfo,
    code: &AuthorizationCode,
) -> AuthFailure {
    emu.inject_fault(Endpoint::Token, fault, 1);
    failure(hand_over(s, info, code).await)
}

/// The user of the account the agent has stored (panics when none is linked).
fn linked_user(agent: &Agent) -> String {
    let (_, account) = agent.delegate().account().unwrap();
    account.unwrap().user_id.as_str().to_owned()
}

fn failure(r: AuthResult) -> AuthFailure {
    match r {
        AuthResult::Failed { failure, .. } => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_success_links_and_closes_the_window() {
    let Stack { emu, dir, agent } =
        Stack::start(Emulator::builder().require_pkce(true), short_exchange).await;
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let info = device_info(&mut s).await;
    assert_eq!(info.product_id.as_str(), DEFAULT_PRODUCT_ID);
    let code = alice_code(&emu, &info).await;
    let (stages, result) = provide(
        &mut s,
        handover(&info, &code, DEFAULT_DEVICE_CLIENT_ID, REDIRECT),
    )
    .await;
    assert_eq!(
        stages,
        [
            ProgressStage::Received,
            ProgressStage::ExchangingCode,
            ProgressStage::FetchingProfile,
            ProgressStage::StoringTokens
        ]
    );
    match result {
        AuthResult::Linked {
            session_id,
            user_id,
            account,
        } => {
            assert_eq!(session_id, info.session_id);
            assert_eq!(user_id.unwrap().as_str(), ALICE_USER_ID);
            // The `profile` scope: name and e-mail besides the id (issue 15.4).
            assert_eq!(
                account.unwrap().to_string(),
                "Alice Example (alice@example.com)"
            );
        }
        other => panic!("{other:?}"),
    }
    let pairing = agent.pairing().clone();
    eventually(
        "window closes after delivery",
        Duration::from_secs(2),
        || pairing.window() == PairingWindow::Closed,
    )
    .await;
    assert_eq!(agent.delegate().status().state, AuthState::Refreshed);
    assert!(agent.delegate().auth_token().is_some());
    assert!(dir.path().join("tokens.json").exists());
    // The exchange sent exactly the five fields, form-encoded, verifier included.
    let exchange = emu
        .requests()
        .into_iter()
        .find(|r| r.is_token_grant("authorization_code"))
        .unwrap();
    assert_eq!(
        exchange.param_names(),
        [
            "grant_type",
            "code",
            "redirect_uri",
            "client_id",
            "code_verifier"
        ]
    );
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    drop(s);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_failure_class_reaches_the_companion() {
    let stack = Stack::start(Emulator::builder(), short_exchange).await;
    let (emu, agent) = (&stack.emu, &stack.agent);
    let mut s = stack.session().await;

    // LWA 500: server error, the same code may be resent, and then it works... later.
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let f = hand_over_with_fault(&mut s, emu, Fault::status(500), &info, &code).await;
    assert_eq!(f.class, AuthFailureClass::ServerError);
    assert_eq!(f.error, AuthError::ServerError);
    assert!(f.retry_with_same_code);

    // Connection dropped: unreachable, resend allowed.
    let f = hand_over_with_fault(&mut s, emu, Fault::Drop, &info, &code).await;
    assert_eq!(f.class, AuthFailureClass::Unreachable);
    assert!(f.retry_with_same_code);

    // Too slow: unreachable (timeout), resend allowed.
    let f = hand_over_with_fault(&mut s, emu, Fault::Delay { millis: 1500 }, &info, &code).await;
    assert_eq!(f.class, AuthFailureClass::Unreachable);
    assert!(f.retry_with_same_code);
    // (the delayed request may still redeem the code at the emulator: use a fresh login below)

    // Garbage 200: bad response.
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let f = hand_over_with_fault(&mut s, emu, Fault::MalformedJson, &info, &code).await;
    assert_eq!(f.class, AuthFailureClass::BadResponse);
    assert!(!f.retry_with_same_code);

    // invalid_request from LWA.
    let invalid_request = Fault::Status {
        status: 400,
        retry_after: None,
        body: Some(r#"{"error_description":"The request is missing a required parameter : code","error":"invalid_request"}"#.into()),
    };
    let f = hand_over_with_fault(&mut s, emu, invalid_request, &info, &code).await;
    assert_eq!(f.class, AuthFailureClass::InvalidRequest);
    assert_eq!(f.lwa_error.as_deref(), Some("invalid_request"));

    // Wrong redirect URI: invalid_grant with LWA's description.
    let f = failure(
        provide(
            &mut s,
            handover(
                &info,
                &code,
                DEFAULT_DEVICE_CLIENT_ID,
                "http://127.0.0.1:9999/other",
            ),
        )
        .await
        .1,
    );
    assert_eq!(f.class, AuthFailureClass::InvalidGrant);
    assert_eq!(f.error, AuthError::AuthorizationExpired);
    assert_eq!(f.lwa_error.as_deref(), Some("invalid_grant"));
    assert!(f.description.as_deref().unwrap().contains("redirect URI"));

    // Wrong client id.
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let f = failure(
        provide(
            &mut s,
            handover(
                &info,
                &code,
                "amzn1.application-oa2-client.nobody",
                REDIRECT,
            ),
        )
        .await
        .1,
    );
    assert!(
        matches!(
            f.class,
            AuthFailureClass::InvalidClient | AuthFailureClass::InvalidGrant
        ),
        "{f:?}"
    );
    assert!(f.lwa_error.is_some());

    // Expired code (older than 5 minutes).
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    emu.advance_clock(Duration::from_secs(301));
    let f = failure(hand_over(&mut s, &info, &code).await);
    assert_eq!(f.class, AuthFailureClass::InvalidGrant);

    // A verifier from another session (the code was made for this session's challenge, but the
    // handover names the previous session): unknown session, nothing sent to LWA.
    let old = info.session_id;
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let mut stale = handover(&info, &code, DEFAULT_DEVICE_CLIENT_ID, REDIRECT);
    if let CompanionMessage::ProvideAuthorization(p) = &mut stale {
        p.session_id = old;
    }
    let f = failure(provide(&mut s, stale).await.1);
    assert_eq!(f.class, AuthFailureClass::UnknownSession);

    // And after all that, the good handover still links.
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }), "{r:?}");
    // A code can't be used twice (the window is closed now, so use the agent's state instead).
    assert!(agent.delegate().is_paired());
    drop(s);
    stack.agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_the_same_code_after_a_server_error_links() {
    let stack = Stack::start(Emulator::builder(), short_exchange).await;
    let (emu, agent) = (&stack.emu, &stack.agent);
    let mut s = stack.session().await;
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let f = hand_over_with_fault(&mut s, emu, Fault::unavailable(1), &info, &code).await;
    assert!(f.retry_with_same_code);
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }), "{r:?}");
    // The same code a second time is refused by LWA (single use) — after reopening the window.
    reopen(agent).await;
    let r = hand_over(&mut s, &info, &code).await;
    let r = failure(r);
    assert!(
        matches!(
            r.class,
            AuthFailureClass::InvalidGrant | AuthFailureClass::UnknownSession
        ),
        "{r:?}"
    );
    drop(s);
    stack.agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_pairing_replaces_the_account_only_after_success() {
    let Stack {
        emu,
        dir: _dir,
        agent,
    } = Stack::start(Emulator::builder(), short_exchange).await;
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let (info, code) = info_and_alice_code(&mut s, &emu).await;
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }));
    drop(s);
    let alice_token = agent.delegate().auth_token().unwrap().token().clone();

    // The owner opens the window to hand the speaker to Bob; Bob's first try fails.
    reopen(&agent).await;
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let info = device_info(&mut s).await;
    let bob = login(
        emu.base_url(),
        DEFAULT_DEVICE_CLIENT_ID,
        REDIRECT,
        BOB_EMAIL,
        BOB_PASSWORD,
        &info,
    )
    .await;
    let f = hand_over_with_fault(&mut s, &emu, Fault::status(500), &info, &bob).await;
    assert_eq!(f.class, AuthFailureClass::ServerError);
    assert_eq!(
        linked_user(&agent),
        ALICE_USER_ID,
        "Alice stays linked while Bob's exchange has not succeeded"
    );
    assert_eq!(
        agent.delegate().auth_token().unwrap().token().clone(),
        alice_token
    );
    let (_, r) = provide(
        &mut s,
        handover(&info, &bob, DEFAULT_DEVICE_CLIENT_ID, REDIRECT),
    )
    .await;
    match r {
        AuthResult::Linked { user_id, .. } => assert_eq!(user_id.unwrap().as_str(), BOB_USER_ID),
        other => panic!("{other:?}"),
    }
    assert_eq!(linked_user(&agent), BOB_USER_ID);
    drop(s);
    agent.shutdown().await;
}

/// A Web-profile client id redeemed without its secret: LWA (and the emulator) give an access
/// token but no refresh token. The agent refuses it as a failed link with the reason and the
/// fix, before the companion could say "Linked", and stays unpaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_without_refresh_token_is_a_failed_link_with_the_reason() {
    use lwa_emulator::registry::DEFAULT_WEB_CLIENT_ID;
    let Stack {
        emu,
        dir: _dir,
        agent,
    } = Stack::start(Emulator::builder(), short_exchange).await;
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let info = device_info(&mut s).await;
    let code = login(
        emu.base_url(),
        DEFAULT_WEB_CLIENT_ID,
        REDIRECT,
        ALICE_EMAIL,
        ALICE_PASSWORD,
        &info,
    )
    .await;
    let (_, result) = provide(
        &mut s,
        handover(&info, &code, DEFAULT_WEB_CLIENT_ID, REDIRECT),
    )
    .await;
    let f = failure(result);
    assert_eq!(f.class, AuthFailureClass::InvalidClient);
    assert!(!f.retry_with_same_code);
    assert_eq!(
        f.description.as_deref(),
        Some(
            "LWA gave no refresh token: this client id needs a secret; use the client id of your \
             companion app's Android/iOS settings or 'Other devices and platforms'"
        )
    );
    assert!(
        !agent.delegate().is_paired(),
        "no account from a grant without refresh token"
    );
    assert!(agent.delegate().auth_token().is_none());
}
