//! End-to-end runs of the whole system on a virtual home network: real `avs-device-agent`
//! processes in speaker namespaces advertising over real mDNS, the real LWA emulator (HTTPS, its
//! own CA) on the laptop, and the real companion library on the laptop finding the speakers,
//! running the PAKE and the scripted sign-in. Each test checks the agent's side through its
//! local API and LWA's side through the emulator's request log.
//!
//! (A speaker that dies without a goodbye leaving discovery after `verify()` is proven by
//! `discovery.rs`; not repeated here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use avs_pair_tests::process::Stream;
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::AgentProcess;
use avs_pair_tests::world::{World, ALICE, BOB, CODE};
use companion_app::pairing::{PairReport, Step};
use device_agent::local_api::StatusReport;
use lwa_emulator::Endpoint;
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::PairingWindow;

const PAIR_LIMIT: Duration = Duration::from_secs(60);

fn world(speakers: &[&str]) -> World {
    World::new(speakers, |b| b).unwrap_or_else(|e| panic!("test world: {e}"))
}

fn pair_ok(w: &World, agent: &AgentProcess, person: avs_pair_tests::world::Person) -> PairReport {
    let opts = w.pair_options(person, CODE).unwrap();
    w.pair_via_mdns(&agent.device_id, opts, PAIR_LIMIT)
        .unwrap()
        .unwrap_or_else(|e| panic!("pairing failed: {e}\n{}", agent.process.tail(40)))
}

fn token_grants(w: &World, grant: &str) -> usize {
    w.emu()
        .requests()
        .iter()
        .filter(|r| r.is_token_grant(grant))
        .count()
}

#[test]
fn two_speakers_on_one_network_are_paired_one_after_the_other() {
    require_netns!();
    let w = world(&["speaker1", "speaker2"]);
    let a1 = w
        .start_agent("speaker1", &w.agent_options("speaker1"))
        .unwrap();
    let a2 = w
        .start_agent("speaker2", &w.agent_options("speaker2"))
        .unwrap();
    assert_ne!(a1.device_id, a2.device_id);

    let r1 = pair_ok(&w, &a1, ALICE);
    assert_eq!(r1.device_id.as_str(), a1.device_id);
    assert_eq!(r1.user_id.as_ref().map(|u| u.as_str()), Some(ALICE.user_id));
    let steps: Vec<Step> = r1.timings.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps.first(), Some(&Step::Discovery), "{steps:?}");
    let speaker1_ip = w.net.host("speaker1").unwrap().addr.to_string();
    assert!(
        r1.addr.starts_with(&speaker1_ip),
        "reached over the veth: {}",
        r1.addr
    );

    let s1 = w.status(&a1).unwrap();
    assert_eq!(s1.auth_state, AuthState::Refreshed);
    assert_eq!(
        s1.window,
        PairingWindow::Closed,
        "success closes the window"
    );
    let s2 = w.status(&a2).unwrap();
    assert_eq!(
        s2.auth_state,
        AuthState::Uninitialized,
        "the other speaker untouched"
    );
    assert!(!s2.paired);
    assert!(matches!(s2.window, PairingWindow::Open { .. }));

    let r2 = pair_ok(&w, &a2, BOB);
    assert_eq!(r2.device_id.as_str(), a2.device_id);
    let s1 = w.status(&a1).unwrap();
    let s2 = w.status(&a2).unwrap();
    assert_eq!(s1.user_id.as_ref().map(|u| u.as_str()), Some(ALICE.user_id));
    assert_eq!(s2.user_id.as_ref().map(|u| u.as_str()), Some(BOB.user_id));
    assert_eq!(s2.auth_state, AuthState::Refreshed);
    assert_eq!(
        token_grants(&w, "authorization_code"),
        2,
        "one exchange each"
    );
    // Each speaker's token is good at AVS.
    for a in [&a1, &a2] {
        let out = a.cli(&w.bins.agent, "check").unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["ok"], true, "{out}");
    }
}

#[test]
fn re_pairing_to_another_account_replaces_the_account() {
    require_netns!();
    let w = world(&["speaker"]);
    let (a, _) = w.start_default_agent("speaker").unwrap();
    pair_ok(&w, &a, ALICE);
    assert_eq!(
        w.status(&a).unwrap().user_id.map(|u| u.as_str().to_owned()),
        Some(ALICE.user_id.to_owned())
    );
    // The owner opens the window on the device; Bob pairs.
    a.cli(&w.bins.agent, "pair").unwrap();
    let s = w.status(&a).unwrap();
    assert!(matches!(s.window, PairingWindow::Open { .. }), "{s:?}");
    let r = pair_ok(&w, &a, BOB);
    assert_eq!(r.user_id.as_ref().map(|u| u.as_str()), Some(BOB.user_id));
    let s = w.status(&a).unwrap();
    assert_eq!(s.user_id.as_ref().map(|u| u.as_str()), Some(BOB.user_id));
    assert_eq!(s.auth_state, AuthState::Refreshed);
    assert!(s.paired);

    // The replacement is what the agent keeps: after a restart it is still Bob's.
    let opts = w.agent_options("speaker");
    drop(a);
    let a = w.start_agent("speaker", &opts).unwrap();
    let s = w
        .wait_auth_state(&a, Duration::from_secs(15), AuthState::Refreshed)
        .unwrap();
    assert_eq!(s.user_id.as_ref().map(|u| u.as_str()), Some(BOB.user_id));
}

#[test]
fn an_agent_restarted_after_pairing_comes_back_refreshed_from_its_store() {
    require_netns!();
    let w = world(&["speaker"]);
    let opts = w.agent_options("speaker");
    let mut a = w.start_agent("speaker", &opts).unwrap();
    pair_ok(&w, &a, ALICE);
    let device_id = a.device_id.clone();
    a.process.terminate(Duration::from_secs(5)).unwrap();
    let refreshes_before = token_grants(&w, "refresh_token");
    w.emu().clear_requests();

    // No companion from here on.
    let a = w.start_agent("speaker", &opts).unwrap();
    assert_eq!(a.device_id, device_id, "same identity");
    let s = w
        .wait_auth_state(&a, Duration::from_secs(15), AuthState::Refreshed)
        .unwrap();
    assert!(s.paired);
    assert_eq!(s.user_id.as_ref().map(|u| u.as_str()), Some(ALICE.user_id));
    assert_eq!(
        s.window,
        PairingWindow::Closed,
        "a paired speaker does not reopen"
    );
    let reqs = w.emu().requests();
    assert!(
        reqs.iter().all(|r| r.endpoint != Some(Endpoint::Authorize)),
        "no sign-in happened: {reqs:?}"
    );
    assert_eq!(token_grants(&w, "authorization_code"), 0);
    assert!(
        token_grants(&w, "refresh_token") >= 1,
        "the stored refresh token was used (before restart: {refreshes_before})"
    );
    let out = a.cli(&w.bins.agent, "check").unwrap();
    assert!(out.contains("\"ok\":true"), "{out}");
}

/// Revokes Alice's tokens in LWA and makes the speaker notice (its next AVS call is refused,
/// which forces one refresh: `invalid_grant`); returns its status once it is unrecoverable and
/// `done` holds.
fn unlink_in_lwa(
    w: &World,
    a: &AgentProcess,
    done: impl Fn(&StatusReport) -> bool,
) -> StatusReport {
    let revoked = w.emu().revoke_user_tokens(ALICE.user_id).unwrap();
    assert!(revoked.refresh_tokens >= 1, "{revoked:?}");
    let _ = a.cli(&w.bins.agent, "check");
    let s = w
        .wait_status(a, Duration::from_secs(15), |s| {
            s.auth_state == AuthState::UnrecoverableError && done(s)
        })
        .unwrap();
    assert_eq!(s.auth_error, AuthError::AuthorizationExpired);
    assert!(!s.paired, "the dead token is forgotten");
    assert!(
        !w.state_dir("speaker")
            .read_dir()
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("refresh_token"))),
        "no refresh token left on disk"
    );
    s
}

#[test]
fn revoking_access_in_lwa_makes_the_agent_unrecoverable_and_the_button_reopens_its_window() {
    require_netns!();
    let w = world(&["speaker"]);
    let mut opts = w.agent_options("speaker");
    // The pairing button: every line appended to this file is one press.
    let button = w.path().join("speaker-button");
    std::fs::write(&button, "").unwrap();
    opts.extra_toml.push(format!(
        "button_hook = \"exec tail -n +1 -F '{}'\"",
        button.display()
    ));
    let a = w.start_agent("speaker", &opts).unwrap();
    pair_ok(&w, &a, ALICE);
    unlink_in_lwa(&w, &a, |_| true);
    // Default policy (issue 12.10): nobody is known to be there, so the window stays shut. The
    // agent's decision is its log line; the status after it must still say closed.
    a.process
        .wait_for_line(Stream::Stderr, Duration::from_secs(10), |l| {
            l.contains("press the pairing button to pair it again")
        })
        .unwrap_or_else(|e| panic!("the agent's unlink decision: {e}"));
    let s = w.status(&a).unwrap();
    assert_eq!(s.window, PairingWindow::Closed, "{s:?}");
    assert_eq!(s.auth_state, AuthState::UnrecoverableError);
    // Someone at the speaker presses the button: the window opens and Alice links it again.
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&button)
        .unwrap();
    writeln!(f, "press").unwrap();
    w.wait_status(&a, Duration::from_secs(10), |s| {
        matches!(s.window, PairingWindow::Open { .. })
    })
    .unwrap_or_else(|e| panic!("the button reopens the window: {e}"));
    let r = pair_ok(&w, &a, ALICE);
    assert_eq!(r.user_id.as_ref().map(|u| u.as_str()), Some(ALICE.user_id));
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}

#[test]
fn with_reopen_after_unlink_the_window_reopens_by_itself_after_lwa_revokes_access() {
    require_netns!();
    let w = world(&["speaker"]);
    let mut opts = w.agent_options("speaker");
    opts.extra_toml.push("reopen_after_unlink = true".into());
    let a = w.start_agent("speaker", &opts).unwrap();
    pair_ok(&w, &a, ALICE);
    // The window reopens right after the state change (a separate step in the agent): wait for both.
    unlink_in_lwa(&w, &a, |s| matches!(s.window, PairingWindow::Open { .. }));
    // And the user can link it again right away.
    let r = pair_ok(&w, &a, ALICE);
    assert_eq!(r.user_id.as_ref().map(|u| u.as_str()), Some(ALICE.user_id));
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}
