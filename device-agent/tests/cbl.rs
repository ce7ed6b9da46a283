//! Code-based linking against the real lwa-emulator: happy path (with the SDK's verification
//! refresh), slow_down doubling, expiry.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use device_agent::agent::Agent;
use device_agent::cbl::{CblPolicy, CblPrompt};
use device_agent::core::CblRunError;
use device_agent::retry::RetryPolicy;
use lwa_emulator::config::Settings;
use lwa_emulator::fault::Endpoint;
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_USER_ID};
use lwa_emulator::{Emulator, EmulatorBuilder, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use tokio::time::Instant;

/// Emulator and agent, the agent polling every `poll_ms`.
async fn stack(emu: EmulatorBuilder, poll_ms: u64) -> Stack {
    Stack::start(emu, |cfg| {
        cfg.cbl = CblPolicy {
            poll_interval: Duration::from_millis(poll_ms),
            max_poll_interval: Duration::from_millis(poll_ms * 12),
            retry: RetryPolicy::sdk_scaled_down(100),
            max_code_pair_attempts: 3,
            request_timeout: Duration::from_secs(5),
        };
    })
    .await
}

/// Runs CBL on `agent` while `user` gets the prompt, as the person reading the code would.
async fn run_cbl_with<F: std::future::Future<Output = ()>>(
    agent: &Agent,
    user: impl FnOnce(CblPrompt) -> F,
) -> Result<(), CblRunError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let user = async move { user(rx.await.expect("a prompt")).await };
    let (result, ()) = tokio::join!(
        agent.run_cbl(move |p| {
            let _ = tx.send(p.clone());
        }),
        user
    );
    result
}

fn polls(emu: &RunningEmulator) -> Vec<Option<u16>> {
    emu.requests()
        .iter()
        .filter(|r| {
            r.endpoint == Some(Endpoint::Token) && r.param("grant_type") == Some("device_code")
        })
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_happy_path_links_and_verifies_the_client_id() {
    let Stack {
        emu,
        dir: _dir,
        agent,
    } = stack(Emulator::builder(), 50).await;
    run_cbl_with(&agent, |prompt| {
        let emu = &emu;
        async move {
            assert_eq!(prompt.user_code.len(), 6);
            assert_eq!(prompt.expires_in_secs, 600);
            // Let it poll a few times while "the user" walks to the laptop.
            tokio::time::sleep(Duration::from_millis(200)).await;
            emu.approve_user_code(&prompt.user_code, ALICE_EMAIL)
                .unwrap();
        }
    })
    .await
    .unwrap();
    eventually(
        "REFRESHED after the verification refresh",
        Duration::from_secs(5),
        || agent.delegate().status().state == AuthState::Refreshed,
    )
    .await;
    let p = polls(&emu);
    assert!(p.len() >= 3, "polled while pending: {p:?}");
    assert!(p[..p.len() - 1].iter().all(|s| *s == Some(400)), "{p:?}");
    assert_eq!(*p.last().unwrap(), Some(200));
    // The SDK's verification refresh follows the device_code grant.
    let reqs = emu.requests();
    let last_poll = reqs
        .iter()
        .rposition(|r| r.param("grant_type") == Some("device_code"))
        .unwrap();
    assert!(reqs[last_poll..]
        .iter()
        .any(|r| r.param("grant_type") == Some("refresh_token")));
    // No client id on the device_code grant.
    assert!(reqs[last_poll].param("client_id").is_none());
    assert!(agent.delegate().auth_token().is_some());
    let _ = ALICE_USER_ID;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_doubles_its_interval_on_slow_down() {
    let settings = Settings {
        slow_down: true,
        codepair_interval_secs: 1,
        ..Settings::default()
    };
    let Stack {
        emu,
        dir: _dir,
        agent,
    } = stack(Emulator::builder().settings(settings), 100).await;
    run_cbl_with(&agent, |prompt| {
        let emu = &emu;
        async move {
            let started = Instant::now();
            // Polls at 0, 0.1 (slow_down), 0.3 (slow_down), 0.7 (slow_down), 1.5 (pending) ...
            tokio::time::sleep(Duration::from_millis(1700)).await;
            let early = polls(emu).len();
            assert!(
                early <= 6,
                "{early} polls in {:?}: the interval did not double",
                started.elapsed()
            );
            assert!(early >= 3, "{early}");
            emu.approve_user_code(&prompt.user_code, ALICE_EMAIL)
                .unwrap();
        }
    })
    .await
    .unwrap();
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_stops_when_the_code_expires() {
    let settings = Settings {
        codepair_lifetime_secs: 1,
        ..Settings::default()
    };
    let Stack {
        emu,
        dir: _dir,
        agent,
    } = stack(Emulator::builder().settings(settings), 100).await;
    let started = Instant::now();
    let err = agent.run_cbl(|_| {}).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        agent.delegate().status().state,
        AuthState::UnrecoverableError
    );
    assert_eq!(agent.delegate().status().error, AuthError::InvalidCodePair);
    let n = polls(&emu).len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(polls(&emu).len(), n, "no polling after expiry");
    agent.shutdown().await;
}
