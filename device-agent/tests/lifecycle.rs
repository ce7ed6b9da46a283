//! Token lifecycle against the real lwa-emulator over HTTP on 127.0.0.1: refresh at the head
//! start, the SDK retry table under 500/503/timeouts, EXPIRED during an outage, single-flight
//! under 1,000 callers, 403 → immediate refresh, invalid_grant after a revoke, rotated refresh
//! tokens that survive a restart. Lifetimes are seconds and the retry table is scaled down, so
//! nothing sleeps long.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use device_agent::auth_delegate::{AuthDelegate, AuthDelegateConfig, AuthStatus};
use device_agent::lwa_client::{LwaClient, TokenGrant};
use device_agent::retry::RetryPolicy;
use device_agent::store::{LoadOutcome, TokenStore};
use lwa_emulator::fault::{Endpoint, Fault};
use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::secret::AccessToken;
use tokio::time::Instant;

fn cfg(head_start_ms: u64, retry: RetryPolicy, max_timeout_ms: u64) -> AuthDelegateConfig {
    AuthDelegateConfig {
        refresh_head_start: Duration::from_millis(head_start_ms),
        max_request_timeout: Duration::from_millis(max_timeout_ms),
        retry,
    }
}

fn delegate(emu: &RunningEmulator, dir: &std::path::Path, cfg: AuthDelegateConfig) -> AuthDelegate {
    common::init_logs();
    let lwa = LwaClient::new(emu.endpoints(), None).unwrap();
    let store = TokenStore::open(dir).unwrap();
    AuthDelegate::start(lwa, store, cfg).unwrap().0
}

/// Links the delegate to Alice as if a login just finished.
fn link(emu: &RunningEmulator, d: &AuthDelegate) -> AccessToken {
    let t = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    let grant = TokenGrant {
        access_token: t.access_token.clone(),
        refresh_token: t.refresh_token.clone(),
        expires_in: Duration::from_secs(t.expires_in.0),
        requested_at: Instant::now(),
    };
    d.install(grant, DEFAULT_DEVICE_CLIENT_ID.into(), None, true)
        .unwrap();
    t.access_token
}

fn refresh_requests(emu: &RunningEmulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| {
            r.endpoint == Some(Endpoint::Token) && r.param("grant_type") == Some("refresh_token")
        })
        .count()
}

/// Instants at which the delegate's refresh counter went up (sampled every millisecond).
async fn watch_refreshes(
    d: &AuthDelegate,
    from: u64,
    until: usize,
    deadline: Duration,
) -> Vec<Instant> {
    let mut seen = from;
    let mut at = Vec::new();
    let end = Instant::now() + deadline;
    while at.len() < until {
        let now = d.refresh_count();
        while seen < now {
            at.push(Instant::now());
            seen += 1;
        }
        assert!(Instant::now() < end, "only {} refreshes seen", at.len());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_at_the_head_start() {
    let emu = Emulator::builder()
        .access_token_lifetime(3)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(
        &emu,
        dir.path(),
        cfg(2000, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    let mut rx = d.subscribe();
    assert_eq!(
        *rx.borrow_and_update(),
        AuthStatus {
            state: AuthState::Uninitialized,
            error: AuthError::Success
        },
        "a new observer gets the current state at once"
    );
    let start = Instant::now();
    let from = d.refresh_count();
    let first = link(&emu, &d);
    assert_eq!(d.status().state, AuthState::Refreshed);
    let at = watch_refreshes(&d, from, 2, Duration::from_secs(6)).await;
    let t1 = at[0] - start;
    // 3 s token, 2 s head start: refresh after ~1 s, not before, and well before expiry.
    assert!(
        t1 >= Duration::from_millis(950) && t1 < Duration::from_millis(1500),
        "{t1:?}"
    );
    let t2 = at[1] - at[0];
    assert!(
        t2 >= Duration::from_millis(900) && t2 < Duration::from_millis(1500),
        "{t2:?}"
    );
    let (now, _) = d.auth_token().unwrap();
    assert_ne!(now, first, "a new access token is served");
    assert_eq!(refresh_requests(&emu), 2);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_backoff_table_under_500_503_and_timeouts() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Table scaled 1/100: 0, 10, 20, 40, 100 ms ...; request timeout 300 ms.
    let policy = RetryPolicy::sdk_scaled_down(100);
    let d = delegate(&emu, dir.path(), cfg(0, policy.clone(), 300));
    let token = link(&emu, &d);
    emu.inject_fault(Endpoint::Token, Fault::status(500), 2);
    emu.inject_fault(Endpoint::Token, Fault::unavailable(1), 1);
    emu.inject_fault(Endpoint::Token, Fault::Delay { millis: 1500 }, 2);
    let start_refreshes = d.refresh_count();
    d.on_auth_failure(&token);
    let at = watch_refreshes(&d, start_refreshes, 6, Duration::from_secs(10)).await;
    // Gap k = (duration of attempt k) + jittered delay(k).
    let durations = [0u64, 0, 0, 300, 300];
    for k in 0..5 {
        let gap = at[k + 1] - at[k];
        let (lo, hi) = policy.bounds(k);
        let lo = lo + Duration::from_millis(durations[k]);
        let hi = hi + Duration::from_millis(durations[k] + 60);
        assert!(
            gap >= lo && gap <= hi,
            "retry {k}: gap {gap:?} not in {lo:?}..{hi:?}"
        );
    }
    common::eventually("refreshed after the outage", Duration::from_secs(5), || {
        d.auth_token().is_some_and(|(t, _)| t != token)
    })
    .await;
    assert_eq!(d.refresh_count() - start_refreshes, 6);
    assert_eq!(
        d.status(),
        AuthStatus {
            state: AuthState::Refreshed,
            error: AuthError::Success
        }
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_token_reports_expired_then_recovers() {
    let emu = Emulator::builder()
        .access_token_lifetime(1)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(
        &emu,
        dir.path(),
        cfg(900, RetryPolicy::from_millis(&[0, 200]), 2000),
    );
    let mut rx = d.subscribe();
    emu.inject_fault(Endpoint::Token, Fault::status(500), 8);
    link(&emu, &d);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(8);
    while !(seen.len() >= 2
        && seen.last()
            == Some(&AuthStatus {
                state: AuthState::Refreshed,
                error: AuthError::Success,
            }))
    {
        tokio::time::timeout_at(end, rx.changed())
            .await
            .expect("state changes in time")
            .unwrap();
        let s = *rx.borrow_and_update();
        if s.state == AuthState::Expired {
            assert!(
                d.auth_token().is_none(),
                "an expired token is never handed out"
            );
        }
        seen.push(s);
    }
    assert!(
        seen.contains(&AuthStatus {
            state: AuthState::Expired,
            error: AuthError::ServerError
        }),
        "{seen:?}"
    );
    assert!(d.auth_token().is_some());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_for_a_thousand_callers_at_expiry() {
    let emu = Emulator::builder()
        .access_token_lifetime(2)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Head start 0: the refresh is due exactly at expiry, when every caller finds no token.
    let d = delegate(
        &emu,
        dir.path(),
        cfg(0, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    let old = link(&emu, &d);
    emu.clear_requests();
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let d = d.clone();
        let old = old.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                match d.auth_token() {
                    Some((t, _)) if t != old => return t,
                    Some(_) => {}
                    // What an AVS client does when its token is refused.
                    None => d.on_auth_failure(&old),
                }
                assert!(Instant::now() < end, "no new token");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same new token"
    );
    assert_eq!(refresh_requests(&emu), 1, "exactly one refresh went to LWA");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_forces_one_immediate_refresh() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(
        &emu,
        dir.path(),
        cfg(600_000, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    let token = link(&emu, &d);
    let lwa = d.lwa().clone();
    use device_agent::lwa_client::PingOutcome;
    assert_eq!(
        lwa.ping(&token, Duration::from_secs(5)).await.unwrap(),
        PingOutcome::Ok
    );
    assert_eq!(emu.expire_access_tokens(), 1);
    assert_eq!(
        lwa.ping(&token, Duration::from_secs(5)).await.unwrap(),
        PingOutcome::Forbidden
    );
    let before = Instant::now();
    for _ in 0..50 {
        d.on_auth_failure(&token);
    }
    common::eventually("new token", Duration::from_secs(3), || {
        d.auth_token().is_some_and(|(t, _)| t != token)
    })
    .await;
    assert!(
        before.elapsed() < Duration::from_millis(500),
        "immediate, not at the head start"
    );
    let (fresh, _) = d.auth_token().unwrap();
    assert_eq!(
        lwa.ping(&fresh, Duration::from_secs(5)).await.unwrap(),
        PingOutcome::Ok
    );
    // Late reports of the old token change nothing.
    d.on_auth_failure(&token);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(refresh_requests(&emu), 1);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_after_a_revoke_clears_the_account() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(
        &emu,
        dir.path(),
        cfg(600_000, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    let token = link(&emu, &d);
    assert!(dir.path().join("tokens.json").exists());
    emu.revoke_user_tokens(ALICE_EMAIL).unwrap();
    let mut rx = d.subscribe();
    d.on_auth_failure(&token);
    let want = AuthStatus {
        state: AuthState::UnrecoverableError,
        error: AuthError::AuthorizationExpired,
    };
    let end = Instant::now() + Duration::from_secs(5);
    while *rx.borrow_and_update() != want {
        tokio::time::timeout_at(end, rx.changed())
            .await
            .expect("invalid_grant in time")
            .unwrap();
    }
    assert!(!d.is_paired());
    assert!(d.auth_token().is_none());
    assert!(
        !dir.path().join("tokens.json").exists(),
        "the revoked token is deleted"
    );
    assert_eq!(refresh_requests(&emu), 1, "no retry on invalid_grant");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_never_lost() {
    // Rotation with no grace: the old refresh token dies the moment a new one is issued.
    let emu = Emulator::builder()
        .rotate_refresh_tokens(0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(
        &emu,
        dir.path(),
        cfg(600_000, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    let mut token = link(&emu, &d);
    let store = TokenStore::open(dir.path()).unwrap();
    let mut stored = Vec::new();
    for _ in 0..3 {
        d.on_auth_failure(&token);
        common::eventually("rotation", Duration::from_secs(5), || {
            d.auth_token().is_some_and(|(t, _)| t != token)
        })
        .await;
        token = d.auth_token().unwrap().0;
        match store.load().unwrap() {
            LoadOutcome::Loaded(t) => stored.push(t.refresh_token),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        stored.windows(2).all(|w| w[0] != w[1]),
        "each rotation reached the disk"
    );
    d.shutdown().await;
    // A restart from the file works: the file held the live token, not a retired one.
    let d2 = delegate(
        &emu,
        dir.path(),
        cfg(600_000, RetryPolicy::sdk_scaled_down(100), 5000),
    );
    assert_eq!(d2.status().state, AuthState::Authorizing);
    common::eventually("refresh after restart", Duration::from_secs(5), || {
        d2.status().state == AuthState::Refreshed
    })
    .await;
    assert_eq!(d2.status().error, AuthError::Success);
    d2.shutdown().await;
}
