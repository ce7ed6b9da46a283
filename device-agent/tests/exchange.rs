//! The companion-app flow end to end against the real lwa-emulator: link session, PKCE per
//! session, a real browser-style login at the emulator, the code exchange, Progress events,
//! and an AuthResult for every failure class.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use device_agent::agent::Agent;
use lwa_emulator::fault::{Endpoint, Fault};
use lwa_emulator::record::PKCE_EXCHANGE_PARAMS;
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, BOB_USER_ID,
    DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::{Emulator, EmulatorBuilder, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::{
    AgentMessage, AuthFailure, AuthFailureClass, AuthResult, CompanionMessage, DeviceInfo,
    PairingWindow, ProgressStage, ProvideAuthorization,
};
use shared_protocol::secret::AuthorizationCode;

const REDIRECT: &str = "http://127.0.0.1:9745/authresponse";

/// `emu` and an agent whose exchanges fail fast when LWA leaves them unanswered, and a
/// session with the agent.
async fn stack_and_session(emu: EmulatorBuilder) -> (Stack, Session) {
    let stack = Stack::start(emu, |cfg| {
        cfg.link.exchange_timeout = Duration::from_millis(700);
    })
    .await;
    let s = stack.session().await;
    (stack, s)
}

/// [`stack_and_session`] and Alice's code for the session's first challenge: the companion at
/// the handover.
async fn at_the_handover() -> (Stack, Session, DeviceInfo, AuthorizationCode) {
    let (stack, mut s) = stack_and_session(Emulator::builder()).await;
    let (info, code) = info_and_alice_code(&mut s, &stack.emu).await;
    (stack, s, info, code)
}

async fn device_info(s: &mut Session) -> DeviceInfo {
    match request(s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(i) => i,
        other => panic!("{other:?}"),
    }
}

/// An account's e-mail address and password.
type Account = (&'static str, &'static str);
const ALICE: Account = (ALICE_EMAIL, ALICE_PASSWORD);
const BOB: Account = (BOB_EMAIL, BOB_PASSWORD);

/// A fresh session id and challenge from the speaker, and Alice's code for them.
async fn info_and_alice_code(
    s: &mut Session,
    emu: &RunningEmulator,
) -> (DeviceInfo, AuthorizationCode) {
    info_and_code(s, emu, DEFAULT_DEVICE_CLIENT_ID, ALICE).await
}

/// A fresh session id and challenge from the speaker, and the code `account` gets for them
/// signing in at `emu` for `client`.
async fn info_and_code(
    s: &mut Session,
    emu: &RunningEmulator,
    client: &str,
    (email, password): Account,
) -> (DeviceInfo, AuthorizationCode) {
    let info = device_info(s).await;
    let code = login(emu.base_url(), client, REDIRECT, email, password, &info).await;
    (info, code)
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
    staged!(s, msg, AgentMessage::Progress, AgentMessage::AuthResult)
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

/// Sends a handover the agent must refuse: the failure the companion gets.
async fn refused(s: &mut Session, msg: CompanionMessage) -> AuthFailure {
    failure(provide(s, msg).await.1)
}

fn failure(r: AuthResult) -> AuthFailure {
    match r {
        AuthResult::Failed { failure, .. } => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_success_links_and_closes_the_window() {
    let (stack, mut s) = stack_and_session(Emulator::builder().require_pkce(true)).await;
    let Stack { emu, dir, agent } = &stack;
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    assert_eq!(info.product_id.as_str(), DEFAULT_PRODUCT_ID);
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
    assert_eq!(exchange.param_names(), PKCE_EXCHANGE_PARAMS);
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    stack.close(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_failure_class_reaches_the_companion() {
    let (stack, mut s, info, code) = at_the_handover().await;
    let (emu, agent) = (&stack.emu, &stack.agent);

    // LWA 500: server error; connection dropped: unreachable; too slow: unreachable (timeout).
    // Each time the same code may be resent (and then it works... later).
    for (fault, class) in [
        (Fault::status(500), AuthFailureClass::ServerError),
        (Fault::Drop, AuthFailureClass::Unreachable),
        (Fault::Delay { millis: 1500 }, AuthFailureClass::Unreachable),
    ] {
        let f = hand_over_with_fault(&mut s, emu, fault, &info, &code).await;
        assert_eq!(f.class, class);
        if class == AuthFailureClass::ServerError {
            assert_eq!(f.error, AuthError::ServerError);
        }
        assert!(f.retry_with_same_code, "{class:?}");
    }
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
    let other_redirect = "http://127.0.0.1:9999/other";
    let f = refused(
        &mut s,
        handover(&info, &code, DEFAULT_DEVICE_CLIENT_ID, other_redirect),
    )
    .await;
    assert_eq!(f.class, AuthFailureClass::InvalidGrant);
    assert_eq!(f.error, AuthError::AuthorizationExpired);
    assert_eq!(f.lwa_error.as_deref(), Some("invalid_grant"));
    assert!(f.description.as_deref().unwrap().contains("redirect URI"));

    // Wrong client id.
    let (info, code) = info_and_alice_code(&mut s, emu).await;
    let nobody = "amzn1.application-oa2-client.nobody";
    let f = refused(&mut s, handover(&info, &code, nobody, REDIRECT)).await;
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
    let f = refused(&mut s, stale).await;
    assert_eq!(f.class, AuthFailureClass::UnknownSession);

    // And after all that, the good handover still links.
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }), "{r:?}");
    // A code can't be used twice (the window is closed now, so use the agent's state instead).
    assert!(agent.delegate().is_paired());
    stack.close(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_the_same_code_after_a_server_error_links() {
    let (stack, mut s, info, code) = at_the_handover().await;
    let f = hand_over_with_fault(&mut s, &stack.emu, Fault::unavailable(1), &info, &code).await;
    assert!(f.retry_with_same_code);
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }), "{r:?}");
    // The same code a second time is refused by LWA (single use) — after reopening the window.
    reopen(&stack.agent).await;
    let r = hand_over(&mut s, &info, &code).await;
    let r = failure(r);
    assert!(
        matches!(
            r.class,
            AuthFailureClass::InvalidGrant | AuthFailureClass::UnknownSession
        ),
        "{r:?}"
    );
    stack.close(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_pairing_replaces_the_account_only_after_success() {
    let (stack, mut s, info, code) = at_the_handover().await;
    let Stack { emu, agent, .. } = &stack;
    let r = hand_over(&mut s, &info, &code).await;
    assert!(matches!(r, AuthResult::Linked { .. }));
    drop(s);
    let alice_token = agent.delegate().auth_token().unwrap().token().clone();

    // The owner opens the window to hand the speaker to Bob; Bob's first try fails.
    reopen(agent).await;
    let mut s = connect(agent.link_addr(), CODE).await.unwrap();
    let (info, bob) = info_and_code(&mut s, emu, DEFAULT_DEVICE_CLIENT_ID, BOB).await;
    let f = hand_over_with_fault(&mut s, emu, Fault::status(500), &info, &bob).await;
    assert_eq!(f.class, AuthFailureClass::ServerError);
    assert_eq!(
        linked_user(agent),
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
    assert_eq!(linked_user(agent), BOB_USER_ID);
    stack.close(s).await;
}

/// A Web-profile client id redeemed without its secret: LWA (and the emulator) give an access
/// token but no refresh token. The agent refuses it as a failed link with the reason and the
/// fix, before the companion could say "Linked", and stays unpaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_without_refresh_token_is_a_failed_link_with_the_reason() {
    use lwa_emulator::registry::DEFAULT_WEB_CLIENT_ID;
    let (stack, mut s) = stack_and_session(Emulator::builder()).await;
    let Stack { emu, agent, .. } = &stack;
    let (info, code) = info_and_code(&mut s, emu, DEFAULT_WEB_CLIENT_ID, ALICE).await;
    let f = refused(
        &mut s,
        handover(&info, &code, DEFAULT_WEB_CLIENT_ID, REDIRECT),
    )
    .await;
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
