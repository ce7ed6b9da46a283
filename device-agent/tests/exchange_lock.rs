//! The agent's exchange lock (one code exchange at a time) against a stalling or late
//! companion, with the real emulator: a companion asked "replace the linked account?" does not
//! hold the lock while its user thinks (up to `switch_answer_timeout_secs`), so the owner links
//! meanwhile; and whoever takes the lock after waiting for it checks again that it may still
//! link (nobody else linked, the window is open) before redeeming or storing anything. A
//! companion that stops reading while the agent, holding the lock, sends it progress (driven in
//! process over a pipe whose agent end stalls, [`common::stall`]) holds the lock for seconds at
//! most, not the default `idle_timeout` (600 s), and its handover stores nothing; the agent
//! then sends it nothing more (the sealed stream is out of step) and closes the connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::stall::{serve_in_process, Stall};
use common::*;
use device_agent::config::AgentConfig;
use device_agent::link::session::LOCKED_SEND_TIMEOUT;
use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, BOB_EMAIL, BOB_PASSWORD, DEFAULT_DEVICE_CLIENT_ID,
};
use lwa_emulator::{Emulator, Endpoint, Fault};
use shared_protocol::frame::FrameTransport;
use shared_protocol::message::AuthFailureClass::{InvalidGrant, WindowClosed};
use shared_protocol::message::{
    AccountSwitch, AccountSwitchAnswer, AgentMessage, AuthFailure, AuthResult, CompanionMessage,
    DeviceInfo, PairingWindow, Progress, ProgressStage, ProvideAuthorization,
};
use shared_protocol::secret::AuthorizationCode;
use shared_protocol::session::{CompanionSession, SessionError};

const REDIRECT: &str = "http://127.0.0.1:9745/authresponse";

/// Far longer than the owner may wait: were the lock held across the question, the owner's
/// exchange would wait this long.
const SWITCH_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the owner's whole handover may take, sign-in at the emulator included.
const OWNER_DEADLINE: Duration = Duration::from_secs(15);

/// How soon after a locked send gave up the agent must have closed the connection: it closes at
/// once, so this is only room for a loaded machine.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

async fn device_info<T: FrameTransport>(s: &mut CompanionSession<T>) -> DeviceInfo {
    s.send(&CompanionMessage::GetDeviceInfo).await.unwrap();
    match recv(s).await {
        AgentMessage::DeviceInfo(info) => info,
        other => panic!("no device info: {other:?}"),
    }
}

/// Hands `code` over for `info`'s session; does not wait for the result.
async fn provide<T: FrameTransport>(
    s: &mut CompanionSession<T>,
    info: &DeviceInfo,
    code: AuthorizationCode,
) {
    let pa = ProvideAuthorization {
        session_id: info.session_id,
        authorization_code: code,
        client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
        redirect_uri: REDIRECT.into(),
    };
    s.send(&CompanionMessage::ProvideAuthorization(pa))
        .await
        .unwrap();
}

/// Signs `email` in at the emulator for `info`'s challenge: the authorization code.
async fn code_for(
    stack: &Stack,
    info: &DeviceInfo,
    email: &str,
    password: &str,
) -> AuthorizationCode {
    let base = stack.emu.base_url();
    login(
        base,
        DEFAULT_DEVICE_CLIENT_ID,
        REDIRECT,
        email,
        password,
        info,
    )
    .await
}

/// Asks for device info, signs `email` in and hands the code over.
async fn sign_in(stack: &Stack, s: &mut Session, email: &str, password: &str) {
    let info = device_info(s).await;
    let code = code_for(stack, &info, email, password).await;
    provide(s, &info, code).await;
}

/// The agent's next message that is not progress.
async fn outcome(s: &mut Session) -> AgentMessage {
    loop {
        match recv(s).await {
            AgentMessage::Progress(_) => {}
            other => return other,
        }
    }
}

/// The failure a handover ended in.
async fn failure(s: &mut Session) -> AuthFailure {
    match outcome(s).await {
        AgentMessage::AuthResult(AuthResult::Failed { failure, .. }) => failure,
        other => panic!("expected a failure: {other:?}"),
    }
}

fn linked_user(stack: &Stack) -> String {
    let (_, account) = stack.agent.delegate().account().unwrap();
    account.unwrap().user_id.as_str().to_owned()
}

/// An agent linked to Alice (signed in through a companion, so her name is known), its
/// window open again, and Bob's asking companion holding the switch question open.
async fn bob_asked_on_alices_speaker() -> (Stack, Session, AccountSwitch) {
    let stack = Stack::start(Emulator::builder(), |cfg| {
        cfg.link.switch_answer_timeout = SWITCH_ANSWER_TIMEOUT;
    })
    .await;
    let mut s = companion(&stack, true).await;
    sign_in(&stack, &mut s, ALICE_EMAIL, ALICE_PASSWORD).await;
    assert!(matches!(
        outcome(&mut s).await,
        AgentMessage::AuthResult(AuthResult::Linked { .. })
    ));
    drop(s);
    let pairing = stack.agent.pairing().clone();
    eventually("window closed after linked", Duration::from_secs(2), || {
        pairing.window() == PairingWindow::Closed
    })
    .await;
    pairing.open().unwrap();
    let mut bob = companion(&stack, true).await;
    sign_in(&stack, &mut bob, BOB_EMAIL, BOB_PASSWORD).await;
    match outcome(&mut bob).await {
        AgentMessage::ConfirmAccountSwitch(q) => (stack, bob, q),
        other => panic!("no question: {other:?}"),
    }
}

/// Answers "replace" to `q`.
async fn replace(s: &mut Session, q: &AccountSwitch) {
    let answer = AccountSwitchAnswer {
        session_id: q.session_id,
        replace: true,
    };
    s.send(&CompanionMessage::AccountSwitchAnswer(answer))
        .await
        .unwrap();
}

/// Bob's companion sits on the question (its user gone for coffee); Alice's own companion links
/// meanwhile, at once. Bob's "replace" then comes too late: someone else linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_stalling_on_the_switch_question_does_not_keep_the_owner_from_linking() {
    let (stack, mut bob, q) = bob_asked_on_alices_speaker().await;
    let owner = async {
        let mut s = companion(&stack, true).await;
        sign_in(&stack, &mut s, ALICE_EMAIL, ALICE_PASSWORD).await;
        outcome(&mut s).await
    };
    let linked = tokio::time::timeout(OWNER_DEADLINE, owner)
        .await
        .expect("the owner links while another companion's question is open");
    assert!(
        matches!(linked, AgentMessage::AuthResult(AuthResult::Linked { .. })),
        "{linked:?}"
    );
    replace(&mut bob, &q).await;
    let late = failure(&mut bob).await;
    assert_eq!(late.class, WindowClosed, "{late:?}");
    let winner = late.linked_by_other.expect("told who linked").account;
    assert_eq!(winner.unwrap().user_id.as_str(), ALICE_USER_ID);
    assert_eq!(linked_user(&stack), ALICE_USER_ID);
    stack.close(bob).await;
}

/// The window closes (here: the owner closes it) while Bob's companion is asked: its "replace"
/// no longer links anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_after_the_window_closed_is_refused() {
    let (stack, mut bob, q) = bob_asked_on_alices_speaker().await;
    stack.agent.pairing().close();
    replace(&mut bob, &q).await;
    let refused = failure(&mut bob).await;
    assert_eq!(refused.class, WindowClosed, "{refused:?}");
    assert!(refused.linked_by_other.is_none(), "{refused:?}");
    assert_eq!(linked_user(&stack), ALICE_USER_ID);
    stack.close(bob).await;
}

/// A companion waiting for the lock (another's exchange is at a slow LWA) while the window
/// closes does not redeem its code once it gets the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_waited_for_the_lock_checks_the_window_before_redeeming() {
    let stack = Stack::start(Emulator::builder(), |_| {}).await;
    // The owner signs in first, so that only messages stand between the steps below.
    let mut owner = companion(&stack, false).await;
    let owner_info = device_info(&mut owner).await;
    let owner_code = code_for(&stack, &owner_info, ALICE_EMAIL, ALICE_PASSWORD).await;
    // Another exchange holds the lock while LWA takes 3 s to refuse its made-up code.
    stack
        .emu
        .inject_fault(Endpoint::Token, Fault::Delay { millis: 3_000 }, 1);
    let mut first = companion(&stack, false).await;
    let info = device_info(&mut first).await;
    provide(&mut first, &info, AuthorizationCode::new("made-up")).await;
    let at_lwa = || {
        stack
            .emu
            .requests()
            .iter()
            .filter(|r| r.is_token_grant("authorization_code"))
            .count()
    };
    eventually("the first exchange at LWA", Duration::from_secs(5), || {
        at_lwa() == 1
    })
    .await;
    // The owner's handover reaches the lock (its progress goes out just before), then the
    // window closes.
    provide(&mut owner, &owner_info, owner_code).await;
    loop {
        match recv(&mut owner).await {
            AgentMessage::Progress(Progress {
                stage: ProgressStage::ExchangingCode,
                ..
            }) => break,
            AgentMessage::Progress(_) => {}
            other => panic!("{other:?}"),
        }
    }
    stack.agent.pairing().close();
    assert_eq!(failure(&mut first).await.class, InvalidGrant);
    let refused = failure(&mut owner).await;
    assert_eq!(refused.class, WindowClosed, "{refused:?}");
    assert_eq!(at_lwa(), 1, "the owner's code was not redeemed");
    assert!(stack.agent.delegate().account().is_none());
    drop(first);
    stack.close(owner).await;
}

/// A companion that knows the setup code hands Alice's code over, then stops reading just as
/// the agent, holding the exchange lock, sends it the progress `stage` (its transport accepts
/// nothing more), with the default `idle_timeout`. The owner links within [`OWNER_DEADLINE`]
/// all the same; the stalled handover stores nothing and, once its progress could not go out,
/// asks LWA nothing more, sends nothing more (no `AuthResult` after a frame cut short) and
/// closes the connection within [`LOCKED_SEND_TIMEOUT`] + [`CLOSE_GRACE`] of the stall.
async fn the_owner_links_while_a_companion_stops_reading_at(stage: ProgressStage) {
    let stack = Stack::start(Emulator::builder(), |_| {}).await;
    let defaults = AgentConfig::for_local(stack.dir.path(), stack.emu.base_url(), CODE).unwrap();
    let limits = defaults.link;
    assert!(
        limits.idle_timeout > 4 * OWNER_DEADLINE,
        "the default idle timeout: {:?}",
        limits.idle_timeout
    );
    // The owner may wait out one bounded send, and sign in besides.
    assert!(2 * LOCKED_SEND_TIMEOUT < OWNER_DEADLINE);
    let (stalling, transport) = serve_in_process(stack.agent.core(), limits);
    let mut s = seal(transport, false).await;
    let info = device_info(&mut s).await;
    let code = code_for(&stack, &info, ALICE_EMAIL, ALICE_PASSWORD).await;
    // The agent's sends after `ProvideAuthorization` (see `exchange`): Received and
    // ExchangingCode before it takes the lock, then FetchingProfile and StoringTokens under it.
    let (sent_before, profiles) = match stage {
        ProgressStage::FetchingProfile => (2, 1),
        ProgressStage::StoringTokens => (3, 2),
        other => panic!("not sent under the lock: {other:?}"),
    };
    stalling.stall.after(sent_before);
    provide(&mut s, &info, code).await;
    stalling.stall.hung(1, Duration::from_secs(15)).await;
    let closed_by = tokio::time::Instant::now() + LOCKED_SEND_TIMEOUT + CLOSE_GRACE;
    let owner = async {
        let mut s = companion(&stack, false).await;
        sign_in(&stack, &mut s, ALICE_EMAIL, ALICE_PASSWORD).await;
        (outcome(&mut s).await, s)
    };
    let (linked, owner) = tokio::time::timeout(OWNER_DEADLINE, owner)
        .await
        .expect("the owner links while another companion stalls under the lock");
    assert!(
        matches!(linked, AgentMessage::AuthResult(AuthResult::Linked { .. })),
        "{linked:?}"
    );
    assert_eq!(linked_user(&stack), ALICE_USER_ID);
    assert_eq!(
        stack.agent.core().links.count(),
        1,
        "the stalled handover stored nothing"
    );
    assert_eq!(
        requests_at(&stack, Endpoint::Profile),
        profiles,
        "profile requests (the owner's is the last)"
    );
    let_go(&stalling.stall, &mut s, closed_by, sent_before).await;
    drop((stalling, s));
    stack.close(owner).await;
}

/// How many requests the emulator got at `endpoint`.
fn requests_at(stack: &Stack, endpoint: Endpoint) -> usize {
    stack
        .emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Some(endpoint))
        .count()
}

/// The agent let the connection whose send hung go by `closed_by`, having tried no other send:
/// its companion `s` reads the `progress` messages sent before the stall, then the end of the
/// stream.
async fn let_go<T: FrameTransport>(
    stall: &Stall,
    s: &mut CompanionSession<T>,
    closed_by: tokio::time::Instant,
    progress: usize,
) {
    assert!(
        stall.dropped_by(closed_by).await,
        "the agent still held the stalled connection at its deadline"
    );
    assert_eq!(stall.hangs(), 1, "the agent tried no other send");
    for _ in 0..progress {
        let msg = recv(s).await;
        assert!(matches!(msg, AgentMessage::Progress(_)), "{msg:?}");
    }
    let end = tokio::time::timeout(Duration::from_secs(5), s.recv()).await;
    assert!(matches!(end, Ok(Err(SessionError::Closed))), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_that_stops_reading_as_the_profile_is_fetched_does_not_keep_the_owner_from_linking(
) {
    the_owner_links_while_a_companion_stops_reading_at(ProgressStage::FetchingProfile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_that_stops_reading_as_tokens_are_stored_does_not_keep_the_owner_from_linking()
{
    the_owner_links_while_a_companion_stops_reading_at(ProgressStage::StoringTokens).await;
}

/// The `idle_timeout` (the bound of sends outside the lock) of [`quick_stalling_companion`].
const QUICK_IDLE: Duration = Duration::from_secs(3);

/// An agent with the emulator, and a companion sealed to it in process over a pipe whose agent
/// end can be told to stall, with `idle_timeout` [`QUICK_IDLE`]; its device info.
async fn quick_stalling_companion() -> (
    Stack,
    common::stall::InProcess,
    CompanionSession<common::stall::DuplexTransport>,
    DeviceInfo,
) {
    let stack = Stack::start(Emulator::builder(), |_| {}).await;
    let mut limits = AgentConfig::for_local(stack.dir.path(), stack.emu.base_url(), CODE)
        .unwrap()
        .link;
    limits.idle_timeout = QUICK_IDLE;
    let (stalling, transport) = serve_in_process(stack.agent.core(), limits);
    let mut s = seal(transport, false).await;
    let info = device_info(&mut s).await;
    (stack, stalling, s, info)
}

/// A send cut short before the lock is taken ends the connection as well: with a short
/// `idle_timeout` (3 s, the bound of sends outside the lock), a companion that stops reading
/// as its code is received gets nothing more (no `AuthResult` after a frame cut short) and its
/// connection is closed within `idle_timeout` + [`CLOSE_GRACE`] of the stall; the code never
/// reaches LWA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_short_before_the_lock_ends_the_connection_without_a_result() {
    let (stack, stalling, mut s, info) = quick_stalling_companion().await;
    // The first send after `ProvideAuthorization` (progress `received`) hangs.
    stalling.stall.after(0);
    provide(&mut s, &info, AuthorizationCode::new("made-up")).await;
    stalling.stall.hung(1, Duration::from_secs(15)).await;
    let closed_by = tokio::time::Instant::now() + QUICK_IDLE + CLOSE_GRACE;
    let_go(&stalling.stall, &mut s, closed_by, 0).await;
    assert_eq!(
        requests_at(&stack, Endpoint::Token),
        0,
        "the code never reached LWA"
    );
    assert!(stack.agent.delegate().account().is_none());
    drop((stalling, s));
    stack.shutdown().await;
}

/// A companion that goes away just as its handover's result is sent (over BLE: it read the
/// indication and disconnected before confirming it) leaves a linked speaker with its pairing
/// window closed: the tokens are stored, so the window closes whether or not the `AuthResult`
/// is delivered. The agent then lets the connection go as for any send cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_delivered_still_closes_the_window_of_a_linked_speaker() {
    let (stack, stalling, mut s, info) = quick_stalling_companion().await;
    let code = code_for(&stack, &info, ALICE_EMAIL, ALICE_PASSWORD).await;
    assert!(stack.agent.pairing().is_open());
    // Received, ExchangingCode, FetchingProfile and StoringTokens go out; the AuthResult hangs.
    let progress = 4;
    stalling.stall.after(progress);
    provide(&mut s, &info, code).await;
    stalling.stall.hung(1, Duration::from_secs(15)).await;
    let closed_by = tokio::time::Instant::now() + QUICK_IDLE + CLOSE_GRACE;
    let_go(&stalling.stall, &mut s, closed_by, progress).await;
    assert_eq!(linked_user(&stack), ALICE_USER_ID, "the tokens were stored");
    assert!(
        !stack.agent.pairing().is_open(),
        "a linked speaker's pairing window is closed, delivered or not"
    );
    drop((stalling, s));
    stack.shutdown().await;
}
