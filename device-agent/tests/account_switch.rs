//! The account switch at the agent (issue 15.5, protocol 1.2), over a raw sealed session whose
//! Hello announces `confirm_account_switch`, against the real emulator: a different account's
//! tokens are never stored until the companion says "replace"; a companion that goes away while
//! asked, or answers "keep", leaves the linked account in place, on disk and refreshing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, BOB_USER_ID,
    DEFAULT_DEVICE_CLIENT_ID,
};
use lwa_emulator::Emulator;
use shared_protocol::lwa::AuthState;
use shared_protocol::message::{
    AccountSwitch, AccountSwitchAnswer, AgentMessage, AuthResult, CompanionMessage, DeviceInfo,
    ErrorKind, PairingWindow, ProvideAuthorization,
};

const REDIRECT: &str = "http://127.0.0.1:9745/authresponse";

async fn device_info(s: &mut Session) -> DeviceInfo {
    match request(s, CompanionMessage::GetDeviceInfo).await {
        AgentMessage::DeviceInfo(i) => i,
        other => panic!("{other:?}"),
    }
}

/// Signs `email` in for this session and hands the code over; returns the first message that
/// is not progress.
async fn hand_over(stack: &Stack, s: &mut Session, email: &str, password: &str) -> AgentMessage {
    let info = device_info(s).await;
    let code = login(
        stack.emu.base_url(),
        DEFAULT_DEVICE_CLIENT_ID,
        REDIRECT,
        email,
        password,
        &info,
    )
    .await;
    s.send(&CompanionMessage::ProvideAuthorization(
        ProvideAuthorization {
            session_id: info.session_id,
            authorization_code: code,
            client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
            redirect_uri: REDIRECT.into(),
        },
    ))
    .await
    .unwrap();
    loop {
        match recv(s).await {
            AgentMessage::Progress(_) => {}
            other => return other,
        }
    }
}

/// Bob signs in on a speaker Alice holds: the agent must ask before replacing her.
async fn bob_asks(stack: &Stack, s: &mut Session) -> AccountSwitch {
    match hand_over(stack, s, BOB_EMAIL, BOB_PASSWORD).await {
        AgentMessage::ConfirmAccountSwitch(q) => q,
        other => panic!("no question: {other:?}"),
    }
}

/// Answers the agent's question `q`: replace the linked account, or keep it.
async fn answer(s: &mut Session, q: &AccountSwitch, replace: bool) {
    s.send(&CompanionMessage::AccountSwitchAnswer(
        AccountSwitchAnswer {
            session_id: q.session_id,
            replace,
        },
    ))
    .await
    .unwrap();
}

fn holds(stack: &Stack) -> String {
    let (_, account) = stack.agent.delegate().account().unwrap();
    account.unwrap().user_id.as_str().to_owned()
}

async fn reopen(stack: &Stack) {
    let pairing = stack.agent.pairing().clone();
    eventually("window closed after linked", Duration::from_secs(2), || {
        pairing.window() == PairingWindow::Closed
    })
    .await;
    pairing.open().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_account_waits_for_the_answer_and_keep_or_a_closed_link_keeps_alice() {
    let stack = Stack::start(Emulator::builder(), |_| {}).await;
    // Alice links (no question: nothing was linked).
    let mut s = companion(&stack, true).await;
    match hand_over(&stack, &mut s, ALICE_EMAIL, ALICE_PASSWORD).await {
        AgentMessage::AuthResult(AuthResult::Linked { account, .. }) => {
            assert_eq!(
                account.unwrap().to_string(),
                "Alice Example (alice@example.com)"
            )
        }
        other => panic!("{other:?}"),
    }
    drop(s);
    let stored = std::fs::read_to_string(stack.dir.path().join("tokens.json")).unwrap();
    assert!(
        stored.contains("Alice Example"),
        "the name is stored with the token"
    );

    // Bob signs in; the agent asks, with both accounts. Until answered nothing changes.
    reopen(&stack).await;
    let mut s = companion(&stack, true).await;
    let q = bob_asks(&stack, &mut s).await;
    assert_eq!(q.current.to_string(), "Alice Example (alice@example.com)");
    assert_eq!(q.new.to_string(), "Bob Example (bob@example.com)");
    assert_eq!(q.answer_within_secs, 120);
    assert_eq!(holds(&stack), ALICE_USER_ID);
    // Another request meanwhile is refused; the question stays open.
    match request(&mut s, CompanionMessage::GetStatus).await {
        AgentMessage::Error(e) => assert_eq!(e.kind, ErrorKind::UnexpectedMessage),
        other => panic!("{other:?}"),
    }
    // The companion goes away without answering: Alice stays, and keeps refreshing.
    drop(s);
    // (That the agent gave the question up shows below: the next exchange gets the lock.)
    let before = stack.agent.delegate().refresh_count();
    assert_eq!(holds(&stack), ALICE_USER_ID);
    let token = stack.agent.delegate().auth_token().unwrap().token().clone();
    stack.agent.delegate().on_auth_failure(&token);
    eventually(
        "a refresh with Alice's token",
        Duration::from_secs(10),
        || {
            stack.agent.delegate().refresh_count() > before
                && stack.agent.delegate().status().state == AuthState::Refreshed
        },
    )
    .await;
    assert_eq!(holds(&stack), ALICE_USER_ID);

    // Bob again, answered "keep": kept_current names Alice; Alice is still what is on disk.
    if stack.agent.pairing().window() == PairingWindow::Closed {
        stack.agent.pairing().open().unwrap();
    }
    let mut s = companion(&stack, true).await;
    let q = bob_asks(&stack, &mut s).await;
    answer(&mut s, &q, false).await;
    match recv(&mut s).await {
        AgentMessage::AuthResult(AuthResult::KeptCurrent {
            account, timed_out, ..
        }) => {
            assert_eq!(account.user_id.as_str(), ALICE_USER_ID);
            assert!(!timed_out);
        }
        other => panic!("{other:?}"),
    }
    let stored = std::fs::read_to_string(stack.dir.path().join("tokens.json")).unwrap();
    assert!(stored.contains(ALICE_USER_ID) && !stored.contains(BOB_USER_ID));

    // And "replace" stores Bob.
    let mut s2 = companion(&stack, true).await;
    drop(s);
    let q = bob_asks(&stack, &mut s2).await;
    answer(&mut s2, &q, true).await;
    loop {
        match recv(&mut s2).await {
            AgentMessage::Progress(_) => {}
            AgentMessage::AuthResult(AuthResult::Linked { user_id, .. }) => {
                assert_eq!(user_id.unwrap().as_str(), BOB_USER_ID);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(holds(&stack), BOB_USER_ID);
    stack.agent.shutdown().await;
}

/// No answer within `switch_answer_timeout_secs`: the agent stops waiting, keeps Alice and says
/// so (`kept_current` with `timed_out`); the companion then shows "(no answer in time)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_in_time_keeps_the_linked_account() {
    let stack = Stack::start(Emulator::builder(), |cfg| {
        cfg.link.switch_answer_timeout = Duration::from_secs(1);
    })
    .await;
    let mut s = companion(&stack, true).await;
    assert!(matches!(
        hand_over(&stack, &mut s, ALICE_EMAIL, ALICE_PASSWORD).await,
        AgentMessage::AuthResult(AuthResult::Linked { .. })
    ));
    drop(s);
    reopen(&stack).await;
    let mut s = companion(&stack, true).await;
    let q = bob_asks(&stack, &mut s).await;
    assert_eq!(q.answer_within_secs, 1);
    // The user never answers: the next message is the agent giving up.
    match recv(&mut s).await {
        AgentMessage::AuthResult(AuthResult::KeptCurrent {
            account, timed_out, ..
        }) => {
            assert_eq!(account.user_id.as_str(), ALICE_USER_ID);
            assert!(timed_out);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(holds(&stack), ALICE_USER_ID);
    stack.agent.shutdown().await;
}
