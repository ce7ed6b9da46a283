//! Shared pieces of the end-to-end tests: the real emulator (in-process, so a test can move its
//! clock), a real `avs-device-agent` process on loopback, and the real scripted user
//! (`lwa-emulator browse`) as the companion's browser.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use avs_pair_tests::bins::Bins;
pub use avs_pair_tests::stack::AgentOptions;
use avs_pair_tests::stack::{self, AgentProcess, Place};
use companion_app::config::RedirectTarget;
use companion_app::login::Browser;
use companion_app::pairing::PairOptions;
use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::setup_code::SetupCode;

pub const CODE: &str = "31415926";
pub const WRONG_CODE: &str = "27182818";

pub fn bins() -> Bins {
    Bins::locate().unwrap_or_else(|e| panic!("{e}"))
}

/// The speaker and laptop namespaces with the agent advertising on the speaker's link (`tune`
/// adjusts its options; sign-in goes nowhere, to the laptop's port 9). Keep the state dir as
/// long as the agent, and bind the four in this order: the agent then drops first, the
/// namespaces last.
pub fn advertising_speaker(
    tune: impl FnOnce(&mut AgentOptions),
) -> (
    Bins,
    avs_pair_tests::netns::TestNet,
    tempfile::TempDir,
    AgentProcess,
) {
    let bins = bins();
    let net = avs_pair_tests::netns::TestNet::speaker_and_laptop().unwrap();
    let laptop_ip = net.host("laptop").unwrap().addr;
    let dir = tempfile::tempdir().unwrap();
    let mut o = AgentOptions::new(dir.path().join("state"), &format!("https://{laptop_ip}:9"))
        .advertised_on_link();
    tune(&mut o);
    let agent = stack::start_agent_on(&net, "speaker", &bins.agent, &o).unwrap();
    (bins, net, dir, agent)
}

pub struct Setup {
    pub bins: Bins,
    pub emulator: RunningEmulator,
    pub agent: AgentProcess,
    pub dir: tempfile::TempDir,
}

pub async fn emulator() -> RunningEmulator {
    Emulator::builder().start().await.expect("emulator starts")
}

/// The emulator plus one agent on loopback (mDNS off), provisioned with [`CODE`].
pub async fn setup() -> Setup {
    setup_with(emulator().await, |_| {})
}

/// `emulator` plus one agent on loopback (mDNS off), provisioned with [`CODE`], after `tweak`
/// (e.g. [`AgentOptions::unpaced`]).
pub fn setup_with(emulator: RunningEmulator, tweak: impl FnOnce(&mut AgentOptions)) -> Setup {
    let bins = bins();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&bins, dir.path(), emulator.base_url(), tweak);
    Setup {
        bins,
        emulator,
        agent,
        dir,
    }
}

pub fn start_agent(
    bins: &Bins,
    dir: &Path,
    base_url: &str,
    tweak: impl FnOnce(&mut AgentOptions),
) -> AgentProcess {
    let mut o = AgentOptions::new(dir.join("state"), base_url);
    o.setup_code = Some(SetupCode::parse(CODE).unwrap());
    o.link_bind = Some("127.0.0.1:0".into());
    o.mdns = false;
    tweak(&mut o);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    stack::start_agent(
        Place::Root { log_dir: &logs },
        &bins.agent,
        &o,
        "avs-device-agent",
    )
    .unwrap_or_else(|e| panic!("agent: {e}"))
}

/// The scripted user as a browser command line (extra `browse` flags allowed).
pub fn scripted_browser(bins: &Bins, extra: &str) -> String {
    format!(
        "{} browse --email {ALICE_EMAIL} --password {ALICE_PASSWORD} {extra}",
        shell_words::quote(&bins.emulator.display().to_string())
    )
}

pub fn options(setup: &Setup, code: &str, browser: String) -> PairOptions {
    let redirect =
        RedirectTarget::parse(&companion_app::config::DEFAULT_REDIRECT_URI.into()).unwrap();
    let authorize = setup.emulator.endpoints().authorize;
    let mut o = PairOptions::new(
        DEFAULT_DEVICE_CLIENT_ID.into(),
        redirect,
        authorize,
        SetupCode::parse(code).unwrap(),
    );
    o.browser = Browser::Command(browser);
    o.browser_failure_is_fatal = true;
    o.login_timeout = Duration::from_secs(30);
    o
}

/// The agent's status through its local API.
pub fn agent_status(setup: &Setup) -> serde_json::Value {
    let out = setup.agent.cli(&setup.bins.agent, "status").unwrap();
    serde_json::from_str(out.trim()).unwrap()
}

pub fn loopback_addr(agent: &AgentProcess) -> Vec<std::net::SocketAddr> {
    vec![std::net::SocketAddr::from(([127, 0, 0, 1], agent.port()))]
}

/// `avs-companion` as the tests run it: none of the user's `BROWSER` or `AVS_SETUP_CODE`.
pub fn companion_cmd(setup: &Setup) -> Command {
    let mut c = Command::new(&setup.bins.companion);
    c.env_remove("BROWSER").env_remove("AVS_SETUP_CODE");
    c
}

/// `avs-companion --config <the test's companion.toml> args…`, run to its end.
pub fn companion(setup: &Setup, args: &[&str]) -> Output {
    companion_cmd(setup)
        .arg("--config")
        .arg(setup.dir.path().join("companion.toml"))
        .args(args)
        .output()
        .expect("run avs-companion")
}

/// The arguments of `avs-companion pair` (`output`: `--plain` or `--json`) against the agent at
/// `connect` with setup code `code`: the test's config file, the default device client, the
/// emulator, `browser` as the browser and 20 s for the sign-in.
pub fn pair_args(
    setup: &Setup,
    output: &str,
    connect: &str,
    code: &str,
    browser: &str,
) -> Vec<String> {
    let mut args = pair_args_without_client(setup, output, connect, code);
    args.extend(
        [
            "--client-id",
            DEFAULT_DEVICE_CLIENT_ID,
            "--browser",
            browser,
            "--login-timeout",
            "20",
        ]
        .map(String::from),
    );
    args
}

/// The start of [`pair_args`]: the test's config file, `pair`, `output`, `--connect`, the
/// setup code and the emulator; no client id, browser or sign-in timeout, for tests that
/// choose their own.
pub fn pair_args_without_client(
    setup: &Setup,
    output: &str,
    connect: &str,
    code: &str,
) -> Vec<String> {
    let config = setup.dir.path().join("companion.toml");
    [
        "--config",
        &config.display().to_string(),
        "pair",
        output,
        "--connect",
        connect,
        "--setup-code",
        code,
        "--lwa-base-url",
        setup.emulator.base_url(),
    ]
    .map(String::from)
    .to_vec()
}

/// The test agent's link address on loopback, for `--connect`.
pub fn loopback(setup: &Setup) -> String {
    format!("127.0.0.1:{}", setup.agent.port())
}

/// A finished command's status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
