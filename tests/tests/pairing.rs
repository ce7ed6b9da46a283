//! Pairing through the companion core library against the real emulator, a real
//! `avs-device-agent` process and the real scripted user, on loopback: the happy path and every
//! way it can fail that the user must be told about.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use avs_pair_tests::companion::open_session;
use common::*;
use companion_app::error::{ExitKind, PairError};
use companion_app::handover::{hand_over, HandoverError, HandoverTimeouts};
use companion_app::link::LinkError;
use companion_app::login::{browser, LoginError, LoginWait, PendingLogin};
use companion_app::pairing::{pair, PairEvent, Step, Target};
use lwa_emulator::registry::{ALICE_USER_ID, DEFAULT_DEVICE_CLIENT_ID};
use shared_protocol::message::{AuthFailureClass, ErrorKind, ProgressStage};

/// No pairing may take longer than this, whatever fails.
const NO_HANG: Duration = Duration::from_secs(45);

async fn run_pair(
    setup: &Setup,
    code: &str,
    browser: String,
) -> (Result<companion_app::PairReport, PairError>, Vec<PairEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let opts = options(setup, code, browser);
    let result = tokio::time::timeout(
        NO_HANG,
        pair(
            Target::Address(loopback_addr(&setup.agent)),
            opts,
            &mut move |e| sink.lock().unwrap().push(e),
        ),
    )
    .await
    .expect("pairing ends in time, whatever happens");
    let events = events.lock().unwrap().clone();
    (result, events)
}

/// The error of a pairing that must fail (`what`, for the message if it did not): `is` knows
/// its variant, and it maps to exit `kind`.
#[track_caller]
fn failed_as<T: std::fmt::Debug>(
    result: Result<T, PairError>,
    what: &str,
    kind: ExitKind,
    is: impl FnOnce(&PairError) -> bool,
) -> PairError {
    let err = result.expect_err(what);
    assert!(is(&err), "{err:?}");
    assert_eq!(err.exit_kind(), kind, "{err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pairing_links_the_speaker_and_reports_every_step() {
    let setup = setup().await;
    let before = agent_status(&setup);
    assert_eq!(before["auth_state"], "UNINITIALIZED");
    assert_eq!(before["paired"], false);

    let (result, events) = run_pair(&setup, CODE, scripted_browser(&setup.bins, "")).await;
    let report =
        result.unwrap_or_else(|e| panic!("pairing failed: {e}\n{}", setup.agent.process.tail(30)));

    assert_eq!(
        report.user_id.as_ref().map(|u| u.as_str()),
        Some(ALICE_USER_ID)
    );
    assert_eq!(report.device_id.as_str(), setup.agent.device_id);
    let steps: Vec<Step> = report.timings.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        steps,
        vec![
            Step::Connect,
            Step::Handshake,
            Step::DeviceInfo,
            Step::Login,
            Step::Exchange
        ]
    );
    assert!(report.total_millis >= report.timings.iter().map(|(_, m)| m).sum::<f64>() * 0.99);
    assert!(events.iter().any(|e| matches!(
        e,
        PairEvent::LoginUrl {
            automatic: true,
            browser_opened: true,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        PairEvent::Progress {
            stage: ProgressStage::ExchangingCode
        }
    )));

    let after = agent_status(&setup);
    assert_eq!(after["auth_state"], "REFRESHED", "{after}");
    assert_eq!(after["paired"], true);
    assert_eq!(after["user_id"], ALICE_USER_ID);

    // Success closes the window: a second pairing is refused with its own exit code.
    let (again, _) = run_pair(&setup, CODE, scripted_browser(&setup.bins, "")).await;
    failed_as(
        again,
        "window closed after success",
        ExitKind::NotPairable,
        |e| matches!(e, PairError::Link(LinkError::Refused(b)) if b.kind == ErrorKind::WindowClosed),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_setup_code_is_refused_before_any_login() {
    // The right code follows the wrong one at once: pacing off (one counted attempt per second
    // per window; tested in device-agent/tests/link.rs), so no waiting out a `busy` answer.
    let setup = setup_with(emulator().await, AgentOptions::unpaced);
    let (result, events) = run_pair(&setup, WRONG_CODE, scripted_browser(&setup.bins, "")).await;
    let err = failed_as(result, "wrong code", ExitKind::WrongSetupCode, |e| {
        matches!(e, PairError::Link(LinkError::WrongSetupCode { .. }))
    });
    assert!(err.to_string().contains("wrong setup code"));
    assert!(
        !err.to_string().contains(WRONG_CODE),
        "the code is never echoed"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PairEvent::LoginUrl { .. })),
        "no sign-in was started"
    );
    assert!(
        setup.emulator.requests().is_empty(),
        "LWA was never contacted"
    );
    // The right code still works afterwards (one failure is far from the lockout).
    let (ok, _) = run_pair(&setup, CODE, scripted_browser(&setup.bins, "")).await;
    ok.expect("the right code pairs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_with_another_state_is_ignored_and_the_real_one_pairs() {
    let setup = setup().await;
    // A "browser" that first signs in with the state swapped for another one (LWA echoes the
    // forged state): the companion must answer that response with an error page (400) and
    // ignore it, and the real sign-in that follows must still pair. The browser is given the
    // companion's one-time start URL; the script reads where it leads (the authorize URL) and
    // forges that. (No `%s` in the script: the browser template would put the URL there.)
    let browse = scripted_browser(&setup.bins, "");
    let script = format!(
        r#"loc=$(python3 -c 'import http.client as h, sys, urllib.parse as p; u = p.urlsplit(sys.argv[1]); c = h.HTTPConnection(u.hostname, u.port); c.request("GET", u.path); print(c.getresponse().getheader("Location"))' "$1") || exit 5
forged=$(echo "$loc" | sed 's/state=[^&]*/state=forged-state/')
{browse} "$forged" | grep -q 'LANDED status=400' || exit 6
exec {browse} "$loc""#
    );
    let browser = format!("sh -c {} sh", shell_words::quote(&script));
    let (result, _) = run_pair(&setup, CODE, browser).await;
    result.expect("the forged response is ignored and the real one pairs");
    assert_eq!(agent_status(&setup)["paired"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_consent_is_a_user_cancel_with_a_readable_message() {
    let setup = setup().await;
    let (result, _) = run_pair(&setup, CODE, scripted_browser(&setup.bins, "--deny")).await;
    let err = failed_as(result, "denied", ExitKind::Cancelled, |e| {
        matches!(e, PairError::Login(LoginError::Denied { .. }))
    });
    let text = err.to_string();
    assert!(text.contains("declined"), "{text}");
    assert!(text.contains("Run pair again"), "{text}");
    assert_eq!(agent_status(&setup)["paired"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_fails_the_exchange_with_advice() {
    let setup = setup().await;
    let mut session = open_session(&loopback_addr(&setup.agent), CODE)
        .await
        .unwrap();
    let info = session.device_info().await.unwrap();
    let opts = options(&setup, CODE, scripted_browser(&setup.bins, ""));
    let login = PendingLogin::prepare(
        &opts.authorize_endpoint,
        &opts.client_id,
        &opts.redirect,
        &info,
    )
    .await
    .unwrap();
    let redirect_uri = login.redirect_uri().clone();
    let b = browser::open(login.url(), &opts.browser).unwrap();
    let code = login
        .complete(LoginWait {
            browser: b,
            pasted: None,
            timeout: Duration::from_secs(30),
            browser_failure_is_fatal: true,
        })
        .await
        .unwrap();
    // The user took a coffee break: codes live 5 minutes.
    setup.emulator.advance_clock(Duration::from_secs(6 * 60));
    let result = tokio::time::timeout(
        NO_HANG,
        hand_over(
            &mut session,
            info.session_id,
            code,
            &DEFAULT_DEVICE_CLIENT_ID.into(),
            &redirect_uri,
            HandoverTimeouts::default(),
            |_| {},
            None,
        ),
    )
    .await
    .expect("in time");
    let err = result.expect_err("expired");
    let failure = err.failure().expect("the speaker reported a failure");
    assert_eq!(failure.class, AuthFailureClass::InvalidGrant);
    assert_eq!(failure.lwa_error.as_deref(), Some("invalid_grant"));
    let text = err.to_string();
    assert!(text.contains("expired"), "{text}");
    assert!(text.contains("pair again"), "{text}");
    assert_eq!(PairError::Handover(err).exit_kind(), ExitKind::LwaError);
    assert_eq!(agent_status(&setup)["paired"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_pairing_ends_with_a_clear_error() {
    let setup = setup().await;
    // The browser kills the speaker while the user signs in.
    let browse = scripted_browser(&setup.bins, "");
    let script = format!(
        "kill -9 {}; exec {browse} \"$1\"",
        setup.agent.process.pid()
    );
    let browser = format!("sh -c {} sh", shell_words::quote(&script));
    let started = std::time::Instant::now();
    let (result, _) = run_pair(&setup, CODE, browser).await;
    let err = failed_as(result, "the speaker is gone", ExitKind::Unreachable, |e| {
        matches!(
            e,
            PairError::Handover(HandoverError::Link(LinkError::StoppedAnswering))
        )
    });
    assert!(
        err.to_string()
            .contains("the speaker stopped answering (restarted?); your sign-in was not used"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no hang: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_speaker_is_reported_as_such() {
    let setup = setup().await;
    let port = setup.agent.port();
    let mut setup = setup;
    setup
        .agent
        .process
        .terminate(Duration::from_secs(5))
        .unwrap();
    let opts = options(&setup, CODE, scripted_browser(&setup.bins, ""));
    let addr = vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))];
    let result = pair(Target::Address(addr), opts, &mut |_| {}).await;
    failed_as(result, "nobody listens", ExitKind::Unreachable, |e| {
        matches!(e, PairError::Link(LinkError::Connect { .. }))
    });
}
