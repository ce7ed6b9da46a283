//! Token lifecycle against the real lwa-emulator over HTTP on 127.0.0.1: refresh at the head
//! start, the SDK retry table under 500/503/timeouts, the retry jitter (seeded) spread over
//! [0.66, 1.5]× the table, EXPIRED during an outage, single flight under 1,000 callers at
//! expiry, 1,000 `auth_failure` reports (in process and through the local API's Unix socket)
//! that cause exactly one LWA request long before the timer is due, 403 → immediate refresh,
//! invalid_grant after a revoke, rotated refresh tokens that survive a restart, refresh answers
//! without a refresh token (the linked one kept, in memory and on disk). Lifetimes are
//! seconds and the retry table is scaled down, so nothing sleeps long.
#![allow(clippy::unwrap_used)]

mod common;

use common::link;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use device_agent::auth_delegate::{AuthDelegate, AuthDelegateConfig, AuthStatus};
use device_agent::lwa_client::LwaClient;
use device_agent::retry::RetryPolicy;
use device_agent::store::{LoadOutcome, TokenStore};
use lwa_emulator::fault::{Endpoint, Fault};
use lwa_emulator::registry::ALICE_EMAIL;
use lwa_emulator::{Emulator, EmulatorBuilder, RunningEmulator};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::secret::{AccessToken, RefreshToken};
use tokio::time::Instant;

/// A live token and no error.
const REFRESHED: AuthStatus = AuthStatus {
    state: AuthState::Refreshed,
    error: AuthError::Success,
};

fn cfg(head_start_ms: u64, retry: RetryPolicy, max_timeout_ms: u64) -> AuthDelegateConfig {
    AuthDelegateConfig {
        refresh_head_start: Duration::from_millis(head_start_ms),
        max_request_timeout: Duration::from_millis(max_timeout_ms),
        retry,
    }
}

/// [`cfg`] with the SDK's retry table scaled down and a 5 s request cap.
fn sdk_cfg(head_start_ms: u64) -> AuthDelegateConfig {
    cfg(head_start_ms, RetryPolicy::sdk_scaled_down(100), 5000)
}

/// A running emulator, a state dir and a delegate using both: where most tests begin.
struct Fixture {
    emu: RunningEmulator,
    dir: tempfile::TempDir,
    d: AuthDelegate,
}

async fn fixture(emu: EmulatorBuilder, cfg: AuthDelegateConfig) -> Fixture {
    let emu = emu.start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = delegate(&emu, dir.path(), cfg);
    Fixture { emu, dir, d }
}

fn delegate(emu: &RunningEmulator, dir: &std::path::Path, cfg: AuthDelegateConfig) -> AuthDelegate {
    common::init_logs();
    let lwa = LwaClient::new(emu.endpoints(), None).unwrap();
    let store = TokenStore::open(dir).unwrap();
    AuthDelegate::start(lwa, store, cfg).unwrap().0
}

/// The current access token, owned.
fn current(d: &AuthDelegate) -> Option<AccessToken> {
    d.auth_token().map(|t| t.token().clone())
}

fn refresh_requests(emu: &RunningEmulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.is_token_grant("refresh_token"))
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
    let Fixture { emu, dir: _dir, d } =
        fixture(Emulator::builder().access_token_lifetime(3), sdk_cfg(2000)).await;
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
    let first = link(&emu, &d).await;
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
    let now = current(&d).unwrap();
    assert_ne!(now, first, "a new access token is served");
    assert_eq!(refresh_requests(&emu), 2);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_the_backoff_table_under_500_503_and_timeouts() {
    // Table scaled 1/100: 0, 10, 20, 40, 100 ms ...; request timeout 300 ms.
    let policy = RetryPolicy::sdk_scaled_down(100);
    let Fixture { emu, dir: _dir, d } =
        fixture(Emulator::builder(), cfg(0, policy.clone(), 300)).await;
    let token = link(&emu, &d).await;
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
        current(&d).is_some_and(|t| t != token)
    })
    .await;
    assert_eq!(d.refresh_count() - start_refreshes, 6);
    assert_eq!(d.status(), REFRESHED);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_token_reports_expired_then_recovers() {
    let Fixture { emu, dir: _dir, d } = fixture(
        Emulator::builder().access_token_lifetime(1),
        cfg(900, RetryPolicy::from_millis(&[0, 200]), 2000),
    )
    .await;
    let mut rx = d.subscribe();
    emu.inject_fault(Endpoint::Token, Fault::status(500), 8);
    link(&emu, &d).await;
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(8);
    while !(seen.len() >= 2 && seen.last() == Some(&REFRESHED)) {
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
    // Head start 0: the refresh is due exactly at expiry, when every caller finds no token.
    let Fixture { emu, dir: _dir, d } =
        fixture(Emulator::builder().access_token_lifetime(2), sdk_cfg(0)).await;
    let old = link(&emu, &d).await;
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
                match current(&d) {
                    Some(t) if t != old => return t,
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
    let Fixture { emu, dir: _dir, d } = fixture(Emulator::builder(), sdk_cfg(600_000)).await;
    let token = link(&emu, &d).await;
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
        current(&d).is_some_and(|t| t != token)
    })
    .await;
    assert!(
        before.elapsed() < Duration::from_millis(500),
        "immediate, not at the head start"
    );
    let fresh = current(&d).unwrap();
    assert_eq!(
        lwa.ping(&fresh, Duration::from_secs(5)).await.unwrap(),
        PingOutcome::Ok
    );
    // Late reports of the old token change nothing. The refresher takes commands in order and
    // sends a due refresh before it takes the next one: once it has taken the shutdown queued
    // behind the report, a refresh the report caused would be counted (no waiting needed).
    let sent = d.refresh_count();
    d.on_auth_failure(&token);
    d.shutdown().await;
    assert_eq!(d.refresh_count(), sent, "a late report refreshed again");
    assert_eq!(refresh_requests(&emu), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_after_a_revoke_clears_the_account() {
    let Fixture { emu, dir, d } = fixture(Emulator::builder(), sdk_cfg(600_000)).await;
    let token = link(&emu, &d).await;
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
    let Fixture { emu, dir, d } = fixture(
        Emulator::builder().rotate_refresh_tokens(0),
        sdk_cfg(600_000),
    )
    .await;
    let mut token = link(&emu, &d).await;
    let mut stored = Vec::new();
    for _ in 0..3 {
        d.on_auth_failure(&token);
        common::eventually("rotation", Duration::from_secs(5), || {
            current(&d).is_some_and(|t| t != token)
        })
        .await;
        token = current(&d).unwrap();
        stored.push(stored_refresh_token(dir.path()));
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

/// Waits until the delegate serves a token other than `old`, and returns it.
async fn new_token(d: &AuthDelegate, old: &AccessToken, deadline: Instant) -> AccessToken {
    loop {
        if let Some(t) = current(d).filter(|t| t != old) {
            return t;
        }
        assert!(Instant::now() < deadline, "no new token");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Awaits a storm's callers, each answering (the token it reported, the token it got next), and
/// asserts that each reported the old token (`is_old`), all got the same new token, and all
/// before the refresh timer was due.
async fn one_new_token_for_all<T: PartialEq>(
    callers: Vec<tokio::task::JoinHandle<(T, T)>>,
    is_old: impl Fn(&T) -> bool,
    due_at: Instant,
) {
    let mut seen = Vec::new();
    for t in callers {
        seen.push(t.await.unwrap());
    }
    assert!(seen.iter().all(|(refused, _)| is_old(refused)));
    assert!(
        seen.windows(2).all(|w| w[0].1 == w[1].1),
        "every caller got the same new token"
    );
    assert!(Instant::now() < due_at, "the timer was not due");
}

/// 1,000 callers whose token AVS just refused all report it, long before the refresh timer is
/// due (head start 10 min of a 60 min token): their reports cause the refresh, and exactly one
/// request reaches LWA. The refresh is slowed to 300 ms so reports land before, during and
/// after it; then every caller reports the old token once more (late reports change nothing).
/// Shown to fail with `on_auth_failure` made a no-op (no new token within the deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_auth_failure_reports_cause_exactly_one_refresh() {
    let Fixture { emu, dir: _dir, d } = fixture(Emulator::builder(), sdk_cfg(600_000)).await;
    let old = link(&emu, &d).await;
    let due_at = d.auth_token().unwrap().expires_at() - Duration::from_secs(600);
    emu.clear_requests();
    emu.inject_fault(Endpoint::Token, Fault::Delay { millis: 300 }, 1);
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let d = d.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // What an AVS client holds when AVS answers 403.
            let refused = current(&d).unwrap();
            barrier.wait().await;
            d.on_auth_failure(&refused);
            let fresh = new_token(&d, &refused, Instant::now() + Duration::from_secs(10)).await;
            d.on_auth_failure(&refused);
            (refused, fresh)
        }));
    }
    one_new_token_for_all(tasks, |refused| *refused == old, due_at).await;
    d.shutdown().await;
    assert_eq!(refresh_requests(&emu), 1, "exactly one refresh went to LWA");
    assert_eq!(d.refresh_count(), 1);
}

/// One local API request on its own connection: `Ok(None)` when the agent closed the
/// connection without answering (its client cap was full).
async fn socket_call(
    socket: &std::path::Path,
    request: &serde_json::Value,
) -> Result<Option<serde_json::Value>, std::io::Error> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_vec(request).unwrap();
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut answer = String::new();
    let n = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(r).read_line(&mut answer),
    )
    .await
    .expect("an answer or a close in time")?;
    Ok((n > 0).then(|| serde_json::from_str(&answer).unwrap()))
}

/// Retries `request` while the agent turns the connection away for being over its client cap,
/// and counts those turn-aways.
async fn socket_call_admitted(
    socket: &std::path::Path,
    request: &serde_json::Value,
    turned_away: &std::sync::atomic::AtomicUsize,
) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        match socket_call(socket, request).await {
            Ok(Some(answer)) if answer["kind"] != "busy" => return answer,
            Ok(_) | Err(_) => {
                turned_away.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                assert!(Instant::now() < end, "never admitted by the local API");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// One client of the socket storm below, and what all of them share: the socket, the staging
/// (at most 24 hold a connection at a time), the barrier between fetching the token and
/// reporting it, and the count of connections the client cap turned away.
#[derive(Clone)]
struct StormClient {
    socket: std::path::PathBuf,
    stage: Arc<tokio::sync::Semaphore>,
    barrier: Arc<tokio::sync::Barrier>,
    turned_away: Arc<AtomicUsize>,
}

impl StormClient {
    /// Fetches the token, waits for everyone, reports it refused, then fetches until the token
    /// is new (before `end`): (the token it reported, the new one).
    async fn run(self, end: Instant) -> (String, String) {
        let token = serde_json::json!({"op": "token"});
        let refused = {
            let _slot = self.stage.acquire().await.unwrap();
            token_of(&self.call(&token).await).unwrap()
        };
        self.barrier.wait().await;
        let _slot = self.stage.acquire().await.unwrap();
        let report = serde_json::json!({"op": "auth_failure", "token": refused});
        let ack = self.call(&report).await;
        assert_eq!(ack["type"], "ok", "{ack}");
        loop {
            let answer = self.call(&token).await;
            if let Some(t) = token_of(&answer).filter(|t| *t != refused) {
                return (refused, t);
            }
            assert!(Instant::now() < end, "no new token over the socket");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn call(&self, request: &serde_json::Value) -> serde_json::Value {
        socket_call_admitted(&self.socket, request, &self.turned_away).await
    }
}

fn token_of(answer: &serde_json::Value) -> Option<String> {
    (answer["type"] == "token").then(|| answer["access_token"].as_str().unwrap().to_owned())
}

/// The same storm through the agent's real Unix socket: 1,000 concurrent clients each fetch
/// the token (`token`), then all report it (`auth_failure`), then fetch until the token is new.
/// Exactly one LWA request, long before the timer is due. The local API admits 32 clients at
/// once (16 per uid) and answers the connections above that `busy`; the clients are staged so
/// at most 24 hold a connection at a time (a caller turned away anyway retries and is counted).
/// Shown to fail with `on_auth_failure` made a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_socket_clients_reporting_auth_failure_cause_exactly_one_refresh() {
    let stack = common::Stack::start(Emulator::builder(), |_| {}).await;
    let (emu, agent) = (&stack.emu, &stack.agent);
    let old = link(emu, agent.delegate()).await;
    let due_at = agent.delegate().auth_token().unwrap().expires_at() - Duration::from_secs(600);
    emu.clear_requests();
    let start = Instant::now();
    let client = StormClient {
        socket: agent.socket_path().to_path_buf(),
        stage: Arc::new(tokio::sync::Semaphore::new(24)),
        barrier: Arc::new(tokio::sync::Barrier::new(1000)),
        turned_away: Arc::new(AtomicUsize::new(0)),
    };
    // One deadline for everyone, so a broken build fails in seconds, not 1,000 × 20 s / 24.
    let end = Instant::now() + Duration::from_secs(30);
    let tasks = (0..1000)
        .map(|_| tokio::spawn(client.clone().run(end)))
        .collect();
    one_new_token_for_all(tasks, |refused| refused == old.expose_secret(), due_at).await;
    let took = start.elapsed();
    stack.agent.shutdown().await;
    assert_eq!(
        refresh_requests(&stack.emu),
        1,
        "exactly one refresh went to LWA"
    );
    eprintln!(
        "1,000 socket clients: {took:?}, {} connections turned away by the client cap",
        client.turned_away.load(Ordering::Relaxed)
    );
}

/// The refresher's retry delays are the seeded policy's jittered ones, and those spread over
/// [0.66, 1.5]× the table value. 40 failures in a row on a 100 ms table: the gap between two
/// requests is the drawn delay plus the request's own time. With jitter fixed at 1.0 the drawn
/// delays are all 100 ms and the spread assertions fail; with the refresher ignoring the drawn
/// delay (sleeping the table value) the gaps stop tracking the draws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_retries_are_jittered_over_the_whole_range() {
    const FAILURES: usize = 40;
    const BASE_MS: f64 = 100.0;
    let policy = RetryPolicy::from_millis(&[100]).with_seed(7);
    let Fixture { emu, dir: _dir, d } =
        fixture(Emulator::builder(), cfg(600_000, policy.clone(), 2000)).await;
    let token = link(&emu, &d).await;
    // The draws the refresher will make, in order.
    let mut rng = policy.rng();
    let drawn: Vec<Duration> = (0..FAILURES)
        .map(|k| policy.delay_with(k, &mut rng))
        .collect();
    let factors: Vec<f64> = drawn
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0 / BASE_MS)
        .collect();
    assert!(factors.iter().all(|f| (0.66..=1.5).contains(f)));
    let below = factors.iter().filter(|f| **f < 0.8).count();
    let above = factors.iter().filter(|f| **f > 1.35).count();
    assert!(
        below >= 4 && above >= 4,
        "delays do not spread over [0.66, 1.5]: {factors:?}"
    );
    emu.inject_fault(Endpoint::Token, Fault::status(500), FAILURES as u32);
    let from = d.refresh_count();
    d.on_auth_failure(&token);
    let at = watch_refreshes(&d, from, FAILURES + 1, Duration::from_secs(20)).await;
    let mut off = Vec::new();
    for k in 0..FAILURES {
        let gap = at[k + 1] - at[k];
        // Sampled on a ~1 ms tick that may run late under load; the request itself takes a
        // few ms more.
        let (lo, hi) = (
            drawn[k].saturating_sub(Duration::from_millis(8)),
            drawn[k] + Duration::from_millis(40),
        );
        if gap < lo || gap > hi {
            off.push((k, gap, drawn[k]));
        }
    }
    assert!(
        off.len() <= 3,
        "gaps do not follow the drawn delays (k, gap, drawn): {off:?}"
    );
    common::eventually("refreshed after the outage", Duration::from_secs(5), || {
        current(&d).is_some_and(|t| t != token)
    })
    .await;
    d.shutdown().await;
}

/// The refresh token held on disk in `dir`.
fn stored_refresh_token(dir: &std::path::Path) -> RefreshToken {
    match TokenStore::open(dir).unwrap().load().unwrap() {
        LoadOutcome::Loaded(t) => t.refresh_token,
        other => panic!("{other:?}"),
    }
}

/// The refresh token each refresh request carried, as the emulator's record fingerprints it.
fn presented_refresh_tokens(emu: &RunningEmulator) -> Vec<Option<String>> {
    emu.requests()
        .iter()
        .filter(|r| r.is_token_grant("refresh_token"))
        .map(|r| r.param("refresh_token").map(str::to_owned))
        .collect()
}

/// LWA may answer a refresh without a `refresh_token` (RFC 6749 §6; the emulator's
/// `omit_refresh_tokens`). The agent links to Alice (`verified` as after a code exchange, or
/// not yet as after a CBL grant, whose first refresh rewrites the store), then refreshes on two
/// `auth_failure` reports and once more after a restart from its store: each time a new access
/// token that AVS accepts, the linked refresh token presented every time and still the one on
/// disk. Shown to fail with `LwaClient::grant` requiring a refresh token on every grant (no new
/// token: every refresh fails) and with the refresher storing an empty refresh token when the
/// answer has none (the store then reads as corrupt: "empty refresh token"; unverified at once,
/// verified too once a missing token also counts as a rotation).
async fn a_refresh_without_a_refresh_token_keeps_the_linked_one(verified: bool) {
    use device_agent::lwa_client::{PingOutcome, TokenGrant};
    use lwa_emulator::redact::fingerprint;
    use lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID;
    let Fixture { emu, dir, d } =
        fixture(Emulator::builder().omit_refresh_tokens(), sdk_cfg(600_000)).await;
    let minted = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    let linked = minted.refresh_token.clone().unwrap();
    let grant = TokenGrant::from_response(&minted, Instant::now());
    d.install(grant, DEFAULT_DEVICE_CLIENT_ID.into(), None, verified)
        .await
        .unwrap();
    let lwa = d.lwa().clone();
    let mut token = minted.access_token;
    for round in 1..=2 {
        d.on_auth_failure(&token);
        let fresh = new_token(&d, &token, Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(
            lwa.ping(&fresh, Duration::from_secs(5)).await.unwrap(),
            PingOutcome::Ok,
            "refresh {round}: AVS accepts the new access token"
        );
        assert_eq!(
            stored_refresh_token(dir.path()),
            linked,
            "refresh {round}: the store still holds the linked refresh token"
        );
        token = fresh;
    }
    assert_eq!(d.status(), REFRESHED);
    d.shutdown().await;

    // A restart from the file refreshes with the linked token, and that works too.
    let d2 = delegate(&emu, dir.path(), sdk_cfg(600_000));
    common::eventually("refresh after restart", Duration::from_secs(5), || {
        d2.status().state == AuthState::Refreshed
    })
    .await;
    let after_restart = current(&d2).unwrap();
    assert_ne!(after_restart, token);
    assert_eq!(
        lwa.ping(&after_restart, Duration::from_secs(5))
            .await
            .unwrap(),
        PingOutcome::Ok
    );
    assert_eq!(
        presented_refresh_tokens(&emu),
        vec![Some(fingerprint(linked.expose_secret())); 3],
        "every refresh presented the linked refresh token"
    );
    assert_eq!(stored_refresh_token(dir.path()), linked);
    d2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_a_refresh_token_keeps_the_linked_one_verified() {
    a_refresh_without_a_refresh_token_keeps_the_linked_one(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_a_refresh_token_keeps_the_linked_one_unverified() {
    a_refresh_without_a_refresh_token_keeps_the_linked_one(false).await;
}
