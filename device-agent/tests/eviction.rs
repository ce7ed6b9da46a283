//! An evicted connection's guess (docs/protocol.md §16, `link/slots.rs`): the TCP listener may
//! evict a connection that has not sent its PAKE message to make room for a newer one. When
//! the eviction wins the race with the PAKE message, the session's `promote` says so, and the
//! guess is refused `busy` before the pairing window counts it: an eviction never costs the
//! owner one of the window's tries. Served in process over a duplex pipe, as the listener runs
//! it, with the listener's answer to `promote` given by the test.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use device_agent::config::AgentConfig;
use device_agent::core::Core;
use device_agent::link::{serve_connection, LinkConfig};
use shared_protocol::frame::{FrameTransport as _, StreamTransport};
use shared_protocol::message::{
    AgentMessage, CompanionMessage, ErrorKind, Hello, PlainMessage, Role,
};
use shared_protocol::session::{ClientHandshake, HandshakeError};
use shared_protocol::setup_code::SetupCode;

mod common;
use common::{config, connect, offline, plain_hello, request, CODE, NO_LWA, WRONG_CODE};

/// One pending place (`max_pending` and `max_pending_per_source` 1): each newcomer evicts the
/// connection before it that has not sent its PAKE message.
fn one_pending_place(cfg: &mut AgentConfig) {
    cfg.link.max_pending = 1;
    cfg.link.max_pending_per_source = 1;
}

/// One handshake with `code` on a connection whose `promote` answers `promoted`: what the
/// companion got, and how often `promote` was asked.
async fn attempt(
    core: Arc<Core>,
    limits: LinkConfig,
    code: &str,
    promoted: bool,
) -> (Result<(), HandshakeError>, usize) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let asked = Arc::new(AtomicUsize::new(0));
    let agent = {
        let asked = asked.clone();
        tokio::spawn(async move {
            let mut promote = || {
                asked.fetch_add(1, Ordering::SeqCst);
                promoted
            };
            serve_connection(
                StreamTransport::new(theirs),
                "in-process companion",
                &core,
                &limits,
                &mut promote,
            )
            .await;
        })
    };
    let code = SetupCode::parse(code).unwrap();
    let handshake = async {
        ClientHandshake::start(
            StreamTransport::new(ours),
            Hello::new(Role::Companion, "device-agent tests"),
        )
        .await?
        .authenticate(&code)
        .await
        .map(drop)
    };
    let result = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .expect("the handshake ends in time");
    if result.is_err() {
        tokio::time::timeout(Duration::from_secs(10), agent)
            .await
            .expect("the agent ends the connection")
            .unwrap();
    }
    (result, asked.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_on_an_evicted_connection_is_neither_answered_nor_counted() {
    let (dir, agent) = offline(|_| {}).await;
    let core = agent.core();
    let limits = config(dir.path(), NO_LWA).link;
    for code in [WRONG_CODE, CODE] {
        let (result, asked) = attempt(core.clone(), limits.clone(), code, false).await;
        assert_eq!(asked, 1, "promote is asked when the PAKE message arrives");
        match result {
            Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::Busy, "{body:?}"),
            other => panic!("an evicted connection's guess ({code}) was answered: {other:?}"),
        }
        assert_eq!(core.pairing.failures(), 0, "not counted ({code})");
    }
    // The same wrong guess on a connection that was not evicted is counted: the count above
    // could have moved.
    let (result, _) = attempt(core.clone(), limits, WRONG_CODE, true).await;
    assert!(
        matches!(result, Err(HandshakeError::WrongSetupCode)),
        "{result:?}"
    );
    assert_eq!(core.pairing.failures(), 1);
    agent.shutdown().await;
}

/// The TCP listener ends an evicted connection at once (its task and its socket), not at its
/// Hello or PAKE deadline: the table frees the place when it evicts, so an evicted connection
/// left running would be a connection beyond `max_sessions` for as long as its deadlines allow
/// (a flood would keep thousands open). Deadlines of a minute here, so only the eviction can
/// close it in time (after its `busy` answer); the newcomer that took its place links.
#[tokio::test]
async fn an_evicted_connection_is_closed_at_once_and_its_successor_links() {
    let (_dir, agent) = offline(|cfg| {
        one_pending_place(cfg);
        cfg.link.hello_timeout = Duration::from_secs(60);
        cfg.link.pake_timeout = Duration::from_secs(60);
        cfg.link.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = agent.link_addr();
    // Past its Hello, waiting to send its PAKE message: the one pending place.
    let mut idle = plain_hello(addr, "idle").await;
    // The owner's companion takes its place and proves the code.
    let mut owner = connect(addr, CODE).await.expect("the newcomer links");
    let busy = tokio::time::timeout(Duration::from_secs(5), idle.recv_frame())
        .await
        .expect("the evicted connection is answered at once");
    let busy: PlainMessage = serde_json::from_slice(&busy.unwrap().expect("a frame")).unwrap();
    assert!(
        matches!(&busy, PlainMessage::Error(b) if b.kind == ErrorKind::Busy),
        "{busy:?}"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), idle.recv_frame())
        .await
        .expect("the evicted connection is closed at once, not at its deadline");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    match request(&mut owner, CompanionMessage::GetStatus).await {
        AgentMessage::Status(_) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(agent.core().pairing.failures(), 0);
    drop(owner);
    agent.shutdown().await;
}

/// `Busy` with a valid configuration (`max_pending < max_sessions`): only when every place is
/// held and the pending budget is not full, i.e. by peers past their PAKE message, and those
/// are never evicted. Here `max_sessions` 2, both held by linked companions: a newcomer is
/// refused `busy` and both sessions still answer.
#[tokio::test]
async fn busy_only_when_every_place_is_held_by_peers_past_their_pake_message() {
    let (_dir, agent) = offline(|cfg| {
        cfg.link.max_sessions = 2;
        one_pending_place(cfg);
        cfg.pairing.attempt_interval = Duration::ZERO;
    })
    .await;
    let addr = agent.link_addr();
    let mut first = connect(addr, CODE)
        .await
        .expect("the first companion links");
    let mut second = connect(addr, CODE)
        .await
        .expect("the second companion links");
    match connect(addr, CODE).await {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::Busy, "{body:?}"),
        other => panic!("a third connection with every place held: {other:?}"),
    }
    for s in [&mut first, &mut second] {
        match request(s, CompanionMessage::GetStatus).await {
            AgentMessage::Status(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(agent.core().pairing.failures(), 0);
    drop((first, second));
    agent.shutdown().await;
}

/// An evicted companion is told `busy` (which the companion words as "busy, try again"), not
/// left with a closed connection ("the speaker closed the connection during …"), wherever its
/// handshake was: before its Hello was read, and after the Hello exchange with its PAKE
/// message still to come. One pending place, so each newcomer evicts the one before; the
/// eviction is complete once the newcomer's own Hello is answered (the listener evicts when
/// it accepts). Nothing is counted.
#[tokio::test]
async fn an_evicted_companion_is_told_busy_wherever_its_handshake_was() {
    let (_dir, agent) = offline(|cfg| {
        one_pending_place(cfg);
    })
    .await;
    let addr = agent.link_addr();
    let code = SetupCode::parse(CODE).unwrap();
    let in_time = Duration::from_secs(10);

    // Connected, Hello not yet sent.
    let early = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _newcomer = plain_hello(addr, "newcomer").await;
    let hello = ClientHandshake::start(
        StreamTransport::new(early),
        Hello::new(Role::Companion, "evicted before its hello"),
    );
    match tokio::time::timeout(in_time, hello).await.expect("in time") {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::Busy, "{body:?}"),
        other => panic!(
            "evicted before the Hello: {:?}",
            other.map(|_| "a handshake")
        ),
    }

    // Past the Hello exchange, PAKE message not yet sent.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = ClientHandshake::start(
        StreamTransport::new(stream),
        Hello::new(Role::Companion, "evicted before its pake message"),
    )
    .await
    .expect("the Hello exchange");
    let _newcomer = plain_hello(addr, "newcomer").await;
    match tokio::time::timeout(in_time, hs.authenticate(&code))
        .await
        .expect("in time")
    {
        Err(HandshakeError::Peer(body)) => assert_eq!(body.kind, ErrorKind::Busy, "{body:?}"),
        other => panic!("evicted before the PAKE message: {:?}", other.map(drop)),
    }
    assert_eq!(agent.core().pairing.failures(), 0);
    agent.shutdown().await;
}
