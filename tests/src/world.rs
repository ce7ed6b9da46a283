//! A whole home for end-to-end tests and the bench: a [`TestNet`] with one or more speakers and
//! a laptop, the real LWA emulator running *in-process* inside the laptop namespace (HTTPS with
//! its own CA, so the agent's "plain HTTP only to loopback" rule holds, and so tests keep the
//! control handle: request log, faults, revocation), real `avs-device-agent` processes in the
//! speaker namespaces advertising over mDNS, and the real companion library running on a thread
//! inside the laptop namespace with the real scripted user as its browser.
//!
//! Everything is synchronous on the outside: tests are plain `#[test]`s and every wait has a
//! deadline. Dropping a [`World`] stops the emulator, then the network (which kills the agents).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use companion_app::config::{RedirectTarget, DEFAULT_REDIRECT_URI};
use companion_app::discovery::MdnsOptions;
use companion_app::error::PairError;
use companion_app::login::Browser;
use companion_app::pairing::{pair, PairOptions, PairReport, Target};
use device_agent::local_api::StatusReport;
use lwa_emulator::registry::{DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::lwa::AuthState;
use shared_protocol::setup_code::SetupCode;

use crate::bins::{Bins, BinsError};
use crate::netns::{NetError, TestNet, LINK_NAME};
use crate::stack::{self, AgentOptions, AgentProcess, Place, StackError};

/// Why a step of a [`World`] failed (the outcome of a pairing is not one: that is the
/// `PairError` the test asserts on).
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The binaries are not built.
    #[error(transparent)]
    Bins(#[from] BinsError),
    /// Building or entering the network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A temp dir or a runtime.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The in-process emulator did not start.
    #[error("emulator: {0}")]
    Emulator(#[from] lwa_emulator::StartError),
    /// Starting an agent or running its CLI.
    #[error(transparent)]
    Agent(#[from] StackError),
    /// A companion setting built from the world's values was refused.
    #[error("companion config: {0}")]
    Config(#[from] companion_app::config::ConfigError),
    /// The authorize URL built from the emulator's port.
    #[error("authorize URL: {0}")]
    Url(#[from] url::ParseError),
    /// The setup code the test passed.
    #[error("setup code: {0}")]
    SetupCode(#[from] shared_protocol::setup_code::SetupCodeError),
    /// A pairing did not end in time.
    #[error("pairing did not end within {0:?}")]
    PairingHung(Duration),
    /// `avs-device-agent status` printed something that is not a status report.
    #[error("status {output:?}: {source}")]
    Status {
        /// What the CLI printed.
        output: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
    /// The awaited status never came.
    #[error("status condition not met within {limit:?}; last {last}\n{log}")]
    StatusNotMet {
        /// The deadline.
        limit: Duration,
        /// The last status (or why there was none).
        last: String,
        /// The tail of the agent's log.
        log: String,
    },
}

/// The setup code every speaker of a [`World`] is provisioned with.
pub const CODE: &str = "31415926";
/// A valid-looking code that is not [`CODE`].
pub const WRONG_CODE: &str = "27182818";

/// A signed-in person for the scripted browser.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// LWA e-mail.
    pub email: &'static str,
    /// The emulator's password for that account.
    pub password: &'static str,
    /// The user id LWA reports.
    pub user_id: &'static str,
}

/// Alice (the emulator's first built-in user).
pub const ALICE: Person = Person {
    email: lwa_emulator::registry::ALICE_EMAIL,
    password: lwa_emulator::registry::ALICE_PASSWORD,
    user_id: lwa_emulator::registry::ALICE_USER_ID,
};
/// Bob (the second).
pub const BOB: Person = Person {
    email: lwa_emulator::registry::BOB_EMAIL,
    password: lwa_emulator::registry::BOB_PASSWORD,
    user_id: lwa_emulator::registry::BOB_USER_ID,
};

/// The test network plus the in-process emulator on `laptop`.
#[derive(Debug)]
pub struct World {
    /// The emulator's control handle (request log, faults, revocation).
    pub emulator: Option<RunningEmulator>,
    runtime: Option<tokio::runtime::Runtime>,
    /// The network (hosts `laptop` and the speakers given).
    pub net: TestNet,
    /// The binaries.
    pub bins: Bins,
    /// Temp dir (CA, speaker state).
    pub dir: tempfile::TempDir,
    /// The emulator's CA certificate.
    pub ca: PathBuf,
    /// `https://<laptop ip>:<port>`: how speakers reach LWA.
    pub lwa_for_speakers: String,
}

impl World {
    /// Builds the network (`speakers` + `laptop`) and starts the emulator on the laptop.
    /// `tweak` adjusts the emulator (token lifetime, …).
    pub fn new(
        speakers: &[&str],
        tweak: impl FnOnce(lwa_emulator::EmulatorBuilder) -> lwa_emulator::EmulatorBuilder + Send,
    ) -> Result<World, WorldError> {
        let bins = Bins::locate()?;
        let mut b = TestNet::builder();
        for s in speakers {
            b = b.host(s);
        }
        let net = b.host("laptop").build()?;
        let laptop_ip = net.host("laptop")?.addr;
        let dir = tempfile::tempdir()?;
        let ca = dir.path().join("emulator-ca.pem");
        let ca2 = ca.clone();
        let started = net.run_in("laptop", move || -> Result<_, WorldError> {
            // Built on a thread inside the laptop namespace: the listener and every worker
            // thread live there.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let builder = Emulator::builder()
                .bind(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
                .https(vec![laptop_ip.to_string(), "127.0.0.1".into()])
                .ca_out(ca2);
            let builder = tweak(builder);
            let emu = rt.block_on(builder.start())?;
            Ok((rt, emu))
        })??;
        let (rt, emu) = started;
        let port = emu.local_addr().port();
        Ok(World {
            lwa_for_speakers: format!("https://{laptop_ip}:{port}"),
            emulator: Some(emu),
            runtime: Some(rt),
            net,
            bins,
            dir,
            ca,
        })
    }

    /// The emulator handle.
    pub fn emu(&self) -> &RunningEmulator {
        self.emulator
            .as_ref()
            .unwrap_or_else(|| unreachable!("the emulator lives as long as the world"))
    }

    /// Agent options for a speaker on `host`: mDNS on the link, HTTPS LWA on the laptop,
    /// provisioned with [`CODE`], state under the world's temp dir.
    pub fn agent_options(&self, host: &str) -> AgentOptions {
        let mut o = AgentOptions::new(
            self.dir.path().join(format!("{host}-state")),
            &self.lwa_for_speakers,
        )
        .advertised_on_link();
        o.lwa_ca_file = Some(self.ca.clone());
        o.setup_code = SetupCode::parse(CODE).ok();
        o.product_id = DEFAULT_PRODUCT_ID.into();
        o.dsn = format!("E2E-{host}");
        o.friendly_name = format!("Speaker {host}");
        o
    }

    /// Starts `avs-device-agent run` on `host` with `opts`.
    pub fn start_agent(&self, host: &str, opts: &AgentOptions) -> Result<AgentProcess, WorldError> {
        let agent = stack::start_agent(
            Place::Host {
                net: &self.net,
                host,
            },
            &self.bins.agent,
            opts,
            &format!("agent-{host}"),
        )?;
        Ok(agent)
    }

    /// Starts an agent on `host` with [`World::agent_options`] and returns it with its link
    /// address.
    pub fn start_default_agent(
        &self,
        host: &str,
    ) -> Result<(AgentProcess, SocketAddr), WorldError> {
        self.start_tuned_agent(host, |_| {})
    }

    /// Starts an agent on `host` with [`World::agent_options`] after `tune` (e.g.
    /// [`AgentOptions::unpaced`]) and returns it with its link address.
    pub fn start_tuned_agent(
        &self,
        host: &str,
        tune: impl FnOnce(&mut AgentOptions),
    ) -> Result<(AgentProcess, SocketAddr), WorldError> {
        let mut opts = self.agent_options(host);
        tune(&mut opts);
        let agent = self.start_agent(host, &opts)?;
        let addr = self.link_addr(host, &agent)?;
        Ok((agent, addr))
    }

    /// Where `agent`, running on `host`, takes link connections (the host's veth address).
    pub fn link_addr(&self, host: &str, agent: &AgentProcess) -> Result<SocketAddr, WorldError> {
        Ok(SocketAddr::from((self.net.host(host)?.addr, agent.port())))
    }

    /// Pairing options for `person` with `code`, the scripted user as browser.
    pub fn pair_options(&self, person: Person, code: &str) -> Result<PairOptions, WorldError> {
        let redirect = RedirectTarget::parse(&DEFAULT_REDIRECT_URI.into())?;
        let authorize = url::Url::parse(&format!(
            "https://127.0.0.1:{}/ap/oa",
            self.emu().local_addr().port()
        ))?;
        let code = SetupCode::parse(code)?;
        let mut o = PairOptions::new(DEFAULT_DEVICE_CLIENT_ID.into(), redirect, authorize, code);
        let browser = [
            self.bins.emulator.display().to_string(),
            "browse".into(),
            "--email".into(),
            person.email.into(),
            "--password".into(),
            person.password.into(),
            "--ca".into(),
            self.ca.display().to_string(),
        ];
        o.browser = Browser::Command(shell_words::join(browser));
        o.browser_failure_is_fatal = true;
        o.login_timeout = Duration::from_secs(30);
        Ok(o)
    }

    /// Runs the companion library's `pair` on the laptop, finding the speaker `device_id` over
    /// mDNS. Bounded by `limit`.
    pub fn pair_via_mdns(
        &self,
        device_id: &str,
        opts: PairOptions,
        limit: Duration,
    ) -> Result<Result<PairReport, PairError>, WorldError> {
        let target = Target::Discover {
            options: MdnsOptions {
                interfaces: Some(vec![LINK_NAME.into()]),
                ..MdnsOptions::default()
            },
            device: Some(device_id.to_owned()),
            timeout: Duration::from_secs(10),
        };
        self.pair_target(target, opts, limit)
    }

    /// Runs `pair` on the laptop against any target.
    pub fn pair_target(
        &self,
        target: Target,
        opts: PairOptions,
        limit: Duration,
    ) -> Result<Result<PairReport, PairError>, WorldError> {
        self.on_laptop(move || async move {
            tokio::time::timeout(limit, pair(target, opts, &mut |_| {}))
                .await
                .map_err(|_| WorldError::PairingHung(limit))
        })?
    }

    /// Runs an async block on a fresh runtime on a thread inside the laptop namespace.
    pub fn on_laptop<F, Fut, R>(&self, f: F) -> Result<R, WorldError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = R>,
        R: Send,
    {
        self.on_host("laptop", f)
    }

    /// Runs an async block on a fresh runtime on a thread inside `host`'s namespace.
    pub fn on_host<F, Fut, R>(&self, host: &str, f: F) -> Result<R, WorldError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = R>,
        R: Send,
    {
        self.net.run_in(host, move || -> Result<R, WorldError> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            Ok(rt.block_on(f()))
        })?
    }

    /// The agent's status through its local API socket.
    pub fn status(&self, agent: &AgentProcess) -> Result<StatusReport, WorldError> {
        let output = agent.cli(&self.bins.agent, "status")?;
        serde_json::from_str(output.trim()).map_err(|source| WorldError::Status { output, source })
    }

    /// Polls the agent's status until `pred` holds (another process's state: there is no event
    /// to wait on from here but its socket), up to `limit`.
    pub fn wait_status(
        &self,
        agent: &AgentProcess,
        limit: Duration,
        pred: impl Fn(&StatusReport) -> bool,
    ) -> Result<StatusReport, WorldError> {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status(agent);
            if let Ok(s) = &s {
                if pred(s) {
                    return Ok(s.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err(WorldError::StatusNotMet {
                    limit,
                    last: format!("{s:?}"),
                    log: agent.process.tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// [`World::wait_status`] until the agent's auth state is `state`.
    pub fn wait_auth_state(
        &self,
        agent: &AgentProcess,
        limit: Duration,
        state: AuthState,
    ) -> Result<StatusReport, WorldError> {
        self.wait_status(agent, limit, |s| s.auth_state == state)
    }

    /// Where a speaker's state lives.
    pub fn state_dir(&self, host: &str) -> PathBuf {
        self.dir.path().join(format!("{host}-state"))
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        drop(self.emulator.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}
