//! `status` and `reset` reach a speaker that only Bluetooth can reach, through the companion's
//! one connector (`companion_app::connect`), exactly as `pair` does: the real agent serving its
//! link over the in-process GATT model (no controller exists here), the real companion commands
//! (the library functions the `avs-companion status` / `reset` subcommands are thin wrappers
//! of), the real emulator and its scripted user for the pairing in between.
//!
//! mDNS is off (it must not run in the root network namespace): the TCP connector is registered
//! but finds nothing, so the speaker is found and reached over BLE or not at all.
//!
//! With the window shut the speaker answers its Hello only: status reports the Hello's summary
//! and how to open the window; reset is refused before its confirmation.
//!
//! `cargo test -p avs-pair-tests --test ble_commands` (about 10 s: each command discovers over
//! BLE, about 1.3 s each).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use avs_pair_tests::companion::pair_as_alice;
use avs_pair_tests::gatt_model::ModelSpeaker;
use companion_app::ble::model::ModelCentral;
use companion_app::commands::{self, StatusReport};
use companion_app::config::{RedirectTarget, DEFAULT_REDIRECT_URI};
use companion_app::connect::{Connectors, Target, TcpConnector};
use companion_app::discovery::{Device, MdnsOptions, TransportKind};
use companion_app::error::{ExitKind, PairError};
use companion_app::link::LinkTimeouts;
use companion_app::login::Browser;
use companion_app::pairing::PairOptions;
use lwa_emulator::registry::{ALICE_USER_ID, DEFAULT_DEVICE_CLIENT_ID};
use shared_protocol::gatt::model::ModelConnection;
use shared_protocol::lwa::AuthState;
use shared_protocol::message::PairingWindow;
use shared_protocol::setup_code::SetupCode;

const CODE: &str = "27182818";
const KEY: &str = "model:speaker-7";
/// What status and reset say when the speaker's Hello shows its window shut.
const WINDOW_SHUT: &str = "the speaker's pairing window is closed; open the pairing window on the speaker: press its pairing button or run `avs-device-agent pair` on it";
/// No command may take longer than this, whatever fails.
const NO_HANG: Duration = Duration::from_secs(60);

/// The companion's own transports (what the CLI registers), with mDNS off and `central` as
/// the Bluetooth adapter.
fn connectors(central: &ModelCentral) -> Connectors {
    Connectors::standard_with(false, Some(Arc::new(central.clone())))
}

/// What `avs-companion status|reset [DEVICE]` resolves: discovery over every transport.
fn discover(device: Option<&str>) -> Target {
    Target::Discover {
        options: MdnsOptions::default(),
        device: device.map(str::to_owned),
        timeout: Duration::from_secs(10),
    }
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{what} ends in time"))
}

/// `avs-companion status [DEVICE] --setup-code CODE` through `via`, bounded; it must answer
/// (`what` names the case if it does not).
async fn status_of(
    device: Option<&str>,
    via: &Connectors,
    code: &SetupCode,
    what: &str,
) -> StatusReport {
    bounded(
        "status",
        commands::status(discover(device), via, Some(code), LinkTimeouts::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_reset_reach_a_speaker_only_bluetooth_can_reach() {
    let speaker = ModelSpeaker::start(CODE).await;
    let central = speaker.central(ModelConnection::mtu(185), KEY);
    let (agent, emulator) = (&speaker.agent, &speaker.emulator);
    let via = connectors(&central);
    let code = SetupCode::parse(CODE).unwrap();
    let timeouts = LinkTimeouts::default();

    // Unpaired, window open: status finds "the" speaker over BLE and reads its auth state.
    let st = status_of(None, &via, &code, "status over BLE").await;
    assert_eq!(st.reached.transport, TransportKind::Ble);
    assert_eq!(st.reached.address, format!("ble {KEY}"));
    assert_eq!(&st.device.id, agent.device_id());
    let auth = st.auth.expect("the auth state, given the code");
    assert_eq!(auth.auth_state, AuthState::Uninitialized);
    assert!(st.refused.is_none());

    // Pair it over BLE (the same connectors), so there is an account to show and to reset.
    let redirect = RedirectTarget::parse(&DEFAULT_REDIRECT_URI.into()).unwrap();
    let mut opts = PairOptions::new(
        DEFAULT_DEVICE_CLIENT_ID.into(),
        redirect,
        emulator.endpoints().authorize,
        code.clone(),
    );
    opts.browser = Browser::Manual;
    opts.login_timeout = Duration::from_secs(30);
    opts.connectors = Some(via.clone());
    let (result, _) = pair_as_alice(discover(None), opts, None, NO_HANG).await;
    let report = result.unwrap_or_else(|e| panic!("pairing over BLE: {e}"));
    assert_eq!(report.addr, format!("ble {KEY}"));
    assert!(agent.delegate().is_paired());

    // Paired, window closed: "the" speaker is still found (status wants any speaker, not one
    // ready to pair); it answers its Hello only (protocol.md §16), so status reports the Hello's
    // summary and says how to open the window, without a handshake the speaker would refuse.
    agent.pairing().close();
    let st = status_of(None, &via, &code, "status of a paired speaker over BLE").await;
    assert_eq!(st.reached.transport, TransportKind::Ble);
    assert!(st.device.paired, "{:?}", st.device);
    let summary = st.hello.agent.as_ref().expect("the agent's summary");
    assert!(summary.paired);
    assert_eq!(summary.window, PairingWindow::Closed);
    assert_eq!(&summary.device_id, agent.device_id());
    assert!(st.auth.is_none());
    assert_eq!(st.refused.as_deref(), Some(WINDOW_SHUT));

    // Reset needs the window: refused before the confirmation is asked, the account kept.
    let asked_closed = Arc::new(Mutex::new(false));
    let seen = asked_closed.clone();
    let err = bounded(
        "reset",
        commands::reset(discover(None), &via, &code, timeouts, move |_| {
            *seen.lock().unwrap() = true;
            Ok(())
        }),
    )
    .await
    .expect_err("reset with the window shut");
    assert_eq!(err.exit_kind(), ExitKind::NotPairable, "{err}");
    assert_eq!(
        err.to_string(),
        format!("the speaker refused: {WINDOW_SHUT}")
    );
    assert!(
        !*asked_closed.lock().unwrap(),
        "no confirmation for a refused reset"
    );
    assert!(agent.delegate().is_paired());

    // Window reopened on the speaker: the account shows, by name.
    agent.pairing().open().expect("the window reopens");
    let name = st.device.name.clone();
    let st = status_of(Some(&name), &via, &code, "status by name over BLE").await;
    let auth = st.auth.expect("the auth state");
    assert_eq!(auth.auth_state, AuthState::Refreshed);
    assert_eq!(
        auth.user_id.as_ref().map(|u| u.as_str()),
        Some(ALICE_USER_ID)
    );

    // A "no" at the confirmation leaves the account alone.
    let declined = bounded(
        "reset",
        commands::reset(discover(Some(&name)), &via, &code, timeouts, |_| {
            Err(PairError::Cancelled)
        }),
    )
    .await
    .expect_err("declined");
    assert_eq!(declined.exit_kind(), ExitKind::Cancelled);
    assert!(agent.delegate().is_paired());

    // Reset over BLE: the speaker forgets its account.
    let asked: Arc<Mutex<Option<Device>>> = Arc::default();
    let seen = asked.clone();
    let reset = bounded(
        "reset",
        commands::reset(discover(Some(&name)), &via, &code, timeouts, move |d| {
            *seen.lock().unwrap() = Some(d.clone());
            Ok(())
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("reset over BLE: {e}"));
    assert_eq!(&reset.id, agent.device_id());
    assert_eq!(
        asked.lock().unwrap().as_ref().map(|d| &d.id),
        Some(&reset.id)
    );
    assert!(!agent.delegate().is_paired(), "the account is forgotten");

    // Without the BLE connector the same speaker is out of reach: not found, with a deadline.
    let mut tcp_only = Connectors::new();
    tcp_only.add(TcpConnector::without_mdns());
    let quick = Target::Discover {
        options: MdnsOptions::default(),
        device: None,
        timeout: Duration::from_millis(500),
    };
    let err = bounded("status", commands::status(quick, &tcp_only, None, timeouts))
        .await
        .expect_err("no transport reaches it");
    assert_eq!(err.exit_kind(), ExitKind::Unreachable, "{err}");

    speaker.stop().await;
}
