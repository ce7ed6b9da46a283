//! Code-based linking against the real lwa-emulator: happy path (with the SDK's verification
//! refresh, and the linked account checked at the emulator), slow_down doubling (the gaps
//! between polls measured), expiry.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use device_agent::agent::Agent;
use device_agent::cbl::{CblPolicy, CblPrompt};
use device_agent::core::CblRunError;
use device_agent::retry::RetryPolicy;
use lwa_emulator::config::Settings;
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_USER_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use tokio::time::Instant;

/// The emulator with `settings` and an agent polling it every `poll_ms`.
async fn stack(settings: Settings, poll_ms: u64) -> Stack {
    Stack::start(Emulator::builder().settings(settings), |cfg| {
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
        .filter(|r| r.is_token_grant("device_code"))
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_happy_path_links_and_verifies_the_client_id() {
    let stack = stack(Settings::default(), 50).await;
    let Stack { emu, agent, .. } = &stack;
    run_cbl_with(agent, |prompt| {
        async move {
            assert_eq!(prompt.user_code.len(), 6);
            assert_eq!(prompt.expires_in_secs, 600);
            // The user walks to the laptop while the agent polls (3 pending answers seen).
            eventually("three pending polls", Duration::from_secs(10), || {
                polls(emu).len() >= 3
            })
            .await;
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
    let p = polls(emu);
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
    // The agent's token is Alice's: the account that approved the code is the one linked.
    let token = agent.delegate().auth_token().expect("a token");
    let profile: serde_json::Value = reqwest::Client::new()
        .get(emu.url("/user/profile"))
        .bearer_auth(token.token().expose_secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["user_id"], ALICE_USER_ID, "{profile}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_doubles_its_interval_on_slow_down() {
    let settings = Settings {
        slow_down: true,
        codepair_interval_secs: 1,
        ..Settings::default()
    };
    let stack = stack(settings, 100).await;
    let Stack { emu, agent, .. } = &stack;
    run_cbl_with(agent, |prompt| {
        async move {
            // Each poll answered slow_down doubles the interval: polls at 0, 0.1, 0.3, 0.7,
            // 1.5 s. The gaps are seen by watching the emulator's log (10 ms resolution); an
            // additive backoff (+0.1 s) would give 0.1, 0.2, 0.3, 0.4.
            let mut seen_at = Vec::new();
            let end = Instant::now() + Duration::from_secs(10);
            while seen_at.len() < 5 {
                assert!(Instant::now() < end, "polls seen at {seen_at:?}");
                let n = polls(emu).len();
                while seen_at.len() < n {
                    seen_at.push(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let gaps: Vec<Duration> = seen_at.windows(2).map(|w| w[1] - w[0]).collect();
            let ms: Vec<u128> = gaps.iter().map(Duration::as_millis).collect();
            let p = polls(emu);
            assert!(p[..4].iter().all(|s| *s == Some(400)), "{p:?}");
            // gaps[0] = 100 ms; then 200, 400, 800 (±30 ms of observation).
            assert!((70..=170).contains(&ms[0]), "{ms:?}");
            assert!((170..=270).contains(&ms[1]), "{ms:?}");
            assert!((360..=480).contains(&ms[2]), "doubling, not adding: {ms:?}");
            assert!((740..=900).contains(&ms[3]), "doubling, not adding: {ms:?}");
            emu.approve_user_code(&prompt.user_code, ALICE_EMAIL)
                .unwrap();
        }
    })
    .await
    .unwrap();
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbl_stops_when_the_code_expires() {
    let settings = Settings {
        codepair_lifetime_secs: 1,
        ..Settings::default()
    };
    let stack = stack(settings, 100).await;
    let Stack { emu, agent, .. } = &stack;
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
    let n = polls(emu).len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(polls(emu).len(), n, "no polling after expiry");
    stack.shutdown().await;
}
