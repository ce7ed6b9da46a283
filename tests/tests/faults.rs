//! Faults on the real system across namespaces: LWA unreachable during the code exchange, LWA
//! error storms during refresh, and the network cut in the middle of a session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use avs_pair_tests::require_netns;
use avs_pair_tests::stack::AgentProcess;
use avs_pair_tests::world::{World, ALICE, CODE};
use companion_app::link::{open_tcp, LinkError, LinkTimeouts};
use companion_app::pairing::{pair, PairEvent, Target};
use lwa_emulator::{Endpoint, Fault};
use shared_protocol::lwa::AuthState;
use shared_protocol::setup_code::SetupCode;

fn world() -> World {
    World::new(&["speaker"], |b| b).unwrap_or_else(|e| panic!("test world: {e}"))
}

#[test]
fn lwa_down_during_the_exchange_is_reported_and_the_same_code_succeeds_once_it_is_back() {
    require_netns!();
    let w = world();
    let (a, addr) = w.start_default_agent("speaker").unwrap();
    // LWA "down": every token request has its connection dropped, until the companion is told
    // the exchange failed (first Retrying event); then LWA comes back.
    w.emu().inject_fault(Endpoint::Token, Fault::Drop, 10_000);
    let mut opts = w.pair_options(ALICE, CODE).unwrap();
    opts.exchange_retries = 1;
    let emu = w.emu();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let result = w
        .on_laptop(move || async move {
            let mut observe = move |e: PairEvent| {
                if matches!(e, PairEvent::Retrying { .. }) {
                    emu.clear_faults();
                }
                sink.lock().unwrap().push(e);
            };
            tokio::time::timeout(
                Duration::from_secs(90),
                pair(Target::Address(vec![addr]), opts, &mut observe),
            )
            .await
        })
        .unwrap()
        .expect("pairing ends in time");
    let report = result.unwrap_or_else(|e| panic!("{e}\n{}", a.process.tail(40)));
    assert_eq!(
        report.user_id.as_ref().map(|u| u.as_str()),
        Some(ALICE.user_id)
    );
    let events = events.lock().unwrap().clone();
    let reasons: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            PairEvent::Retrying { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{events:?}");
    assert!(
        reasons[0].contains("Login with Amazon"),
        "a clear reason: {}",
        reasons[0]
    );
    let reqs = w.emu().requests();
    let authorize = reqs
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::Authorize) && r.method == "GET")
        // The companion's own pre-flight of the sign-in URL (issue 15.1) is not a sign-in.
        .filter(|r| {
            !r.header("user-agent")
                .is_some_and(|ua| ua.ends_with(" pre-flight"))
        })
        .count();
    assert_eq!(authorize, 1, "one sign-in, no second login");
    let exchanges: Vec<_> = reqs
        .iter()
        .filter(|r| r.is_token_grant("authorization_code"))
        .collect();
    assert!(
        exchanges.len() >= 2,
        "a failed and a good exchange: {exchanges:?}"
    );
    assert!(exchanges[0].fault.as_deref() == Some("drop"));
    assert_eq!(exchanges.last().unwrap().status, Some(200));
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}

/// Every refresh request's arrival time and final status, seen by polling the emulator's
/// request log.
fn watch_refreshes(w: &World, until: Instant, want_ok: bool) -> Vec<(Instant, Option<u16>)> {
    let mut seen = std::collections::BTreeMap::new();
    loop {
        for r in w.emu().requests() {
            if r.is_token_grant("refresh_token") {
                // First sighting fixes the arrival time; the status is the latest one seen (a
                // request caught in flight has none yet).
                seen.entry(r.seq).or_insert((Instant::now(), r.status)).1 = r.status;
            }
        }
        let done = want_ok && seen.values().any(|(_, s)| *s == Some(200));
        if done || Instant::now() >= until {
            return seen.into_values().collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A speaker paired to Alice by address.
fn paired_speaker(w: &World) -> AgentProcess {
    let (a, addr) = w.start_default_agent("speaker").unwrap();
    let opts = w.pair_options(ALICE, CODE).unwrap();
    w.pair_target(Target::Address(vec![addr]), opts, Duration::from_secs(60))
        .unwrap()
        .unwrap();
    a
}

/// `faults` (each for its count of requests) on LWA's token endpoint, then the paired speaker's
/// access token dies at LWA and the speaker uses it: every refresh request the speaker then
/// makes, until one succeeds (at most 20 s).
fn refreshes_through(
    w: &World,
    a: &AgentProcess,
    faults: impl IntoIterator<Item = (Fault, u32)>,
) -> Vec<(Instant, Option<u16>)> {
    w.emu().clear_requests();
    for (f, count) in faults {
        w.emu().inject_fault(Endpoint::Token, f, count);
    }
    // The token dies at LWA; the speaker's next AVS call gets a 403 and refreshes at once.
    w.emu().expire_access_tokens();
    let _ = a.cli(&w.bins.agent, "check");
    watch_refreshes(w, Instant::now() + Duration::from_secs(20), true)
}

#[test]
fn an_error_storm_during_refresh_backs_off_on_schedule_and_heals() {
    require_netns!();
    let w = world();
    let a = paired_speaker(&w);
    let seen = refreshes_through(
        &w,
        &a,
        [
            (Fault::status(500), 1),
            (Fault::unavailable(1), 1),
            (Fault::status(500), 1),
        ],
    );
    let statuses: Vec<Option<u16>> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses,
        vec![Some(500), Some(503), Some(500), Some(200)],
        "{}",
        a.process.tail(30)
    );
    // The schedule is 0, 1, 2, 4, … s: retries right away, then after 1 and 2 s, each ×[0.66, 1.5] (+ 150 ms for polling and scheduling).
    let gaps: Vec<f64> = seen
        .windows(2)
        .map(|p| (p[1].0 - p[0].0).as_secs_f64())
        .collect();
    eprintln!("refresh retry gaps: {gaps:?}");
    for (gap, nominal) in gaps.iter().zip([0.0, 1.0, 2.0]) {
        assert!(
            *gap >= nominal * 0.66 - 0.15 && *gap <= nominal * 1.5 + 0.15,
            "gap {gap:.2}s for nominal {nominal}s: {gaps:?}"
        );
    }
    let s = w
        .wait_auth_state(&a, Duration::from_secs(5), AuthState::Refreshed)
        .unwrap();
    assert!(s.paired, "nothing lost");
    let out = a.cli(&w.bins.agent, "check").unwrap();
    assert!(out.contains("\"ok\":true"), "{out}");
}

#[test]
fn a_429_storm_during_refresh_is_ridden_out() {
    require_netns!();
    let w = world();
    let a = paired_speaker(&w);
    let seen = refreshes_through(&w, &a, [(Fault::status(429), 2)]);
    let statuses: Vec<Option<u16>> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses.last(), Some(&Some(200)), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == Some(429)).count(), 2);
    let s = w
        .wait_auth_state(&a, Duration::from_secs(5), AuthState::Refreshed)
        .unwrap();
    assert!(s.paired);
}

#[test]
fn a_network_cut_mid_session_times_out_cleanly_on_both_ends() {
    require_netns!();
    let w = world();
    let (a, addr) = w
        .start_tuned_agent("speaker", |o| {
            o.extra_toml.push("idle_timeout_secs = 5".into())
        })
        .unwrap();
    for cut in ["speaker", "laptop"] {
        let timeouts = LinkTimeouts {
            request: Duration::from_secs(3),
            ..LinkTimeouts::default()
        };
        let net = &w.net;
        let (err, took) = w
            .on_laptop(move || async move {
                let (client, _) = open_tcp(&[addr], timeouts).await.unwrap();
                let mut session = client
                    .authenticate(&SetupCode::parse(CODE).unwrap())
                    .await
                    .unwrap();
                session.device_info().await.unwrap();
                net.set_link(cut, false).unwrap();
                let t0 = Instant::now();
                let r = session.device_info().await;
                (r.err(), t0.elapsed())
            })
            .unwrap();
        assert!(
            matches!(err, Some(LinkError::Timeout { .. })),
            "cut at {cut}: companion gets a timeout: {err:?}"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        // The agent gives up on the silent session by itself (idle timeout) and says so.
        let ended = |l: &str| l.contains("link send timed out") || l.contains("link session ended");
        let before = a.process.stderr_lines().iter().filter(|l| ended(l)).count();
        let mut n = 0;
        a.process
            .wait_for_line(
                avs_pair_tests::process::Stream::Stderr,
                Duration::from_secs(10),
                |l| {
                    n += usize::from(ended(l));
                    n > before
                },
            )
            .unwrap_or_else(|e| panic!("cut at {cut}: agent side: {e}"));
        w.net.set_link(cut, true).unwrap();
        // Still alive and serving.
        assert!(w.status(&a).is_ok());
    }
    // And a full pairing works once the cable is back.
    let opts = w.pair_options(ALICE, CODE).unwrap();
    w.pair_target(Target::Address(vec![addr]), opts, Duration::from_secs(60))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", a.process.tail(30)));
}
