//! Helpers shared by the device-agent integration tests: the one fixture most tests start
//! from, and the pieces they build on.
//!
//! - [`Stack`]: the lwa-emulator, a state directory and an in-process agent for the emulator's
//!   default product ([`Stack::start`] takes the emulator's builder and a config tweak);
//!   [`Stack::session`] opens a sealed link session, [`Stack::close`] ends one and shuts the
//!   agent down. Agents without LWA: [`offline`].
//! - The link: [`connect`], [`companion`] (announcing the account-switch capability or not),
//!   [`request`], [`recv`], and [`staged!`] for requests answered with
//!   progress messages and then a result (the code exchange, a Wi-Fi join).
//! - The local API: [`api_once`] (typed), [`api_line`] (raw JSON lines, as outside clients
//!   speak it), [`report_auth_failure`].
//! - [`child`]: tests that re-execute their own binary; [`process`]: the agent binary as a
//!   process; [`raw`]: the link's frames by hand; [`stall`]: a connection served in process
//!   whose agent end can be made to stop sending.
#![allow(clippy::unwrap_used, dead_code)]

pub mod child;
pub mod process;
pub mod raw;
pub mod stall;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use device_agent::agent::Agent;
use device_agent::config::AgentConfig;
use device_agent::retry::RetryPolicy;
use shared_protocol::frame::{FrameTransport, StreamTransport};
use shared_protocol::message::{AgentMessage, Capability, CompanionMessage, Hello, Role};
use shared_protocol::session::{ClientHandshake, CompanionSession, HandshakeError};
use shared_protocol::setup_code::SetupCode;
use tokio::net::TcpStream;

pub const CODE: &str = "24681357";
pub const WRONG_CODE: &str = "97531864";
/// An LWA base URL nothing listens on, for agents that are never linked: LWA "unreachable".
pub const NO_LWA: &str = "http://127.0.0.1:9";

pub type Session = CompanionSession<StreamTransport<TcpStream>>;

/// The emulator, a state directory and an agent using both: where most tests begin.
pub struct Stack {
    pub emu: lwa_emulator::RunningEmulator,
    pub dir: tempfile::TempDir,
    pub agent: Agent,
}

impl Stack {
    /// Starts `emu` and an agent for the emulator's default product and device client id
    /// ([`config`]), after `tune` has adjusted the config.
    pub async fn start(
        emu: lwa_emulator::EmulatorBuilder,
        tune: impl FnOnce(&mut AgentConfig),
    ) -> Self {
        let emu = emu.start().await.expect("emulator starts");
        let dir = tempfile::tempdir().expect("state dir");
        let mut cfg = config(dir.path(), emu.base_url());
        cfg.product_id = lwa_emulator::registry::DEFAULT_PRODUCT_ID.into();
        cfg.client_id = Some(lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID.into());
        tune(&mut cfg);
        let agent = start(cfg).await;
        Self { emu, dir, agent }
    }

    /// Shuts the agent down; the emulator and the state directory go with the stack.
    pub async fn shutdown(self) {
        self.agent.shutdown().await;
    }

    /// Ends `session`, then shuts the agent down.
    pub async fn close(self, session: Session) {
        drop(session);
        self.shutdown().await;
    }

    /// A sealed session with the right setup code.
    pub async fn session(&self) -> Session {
        connect(self.agent.link_addr(), CODE)
            .await
            .expect("session with the right code")
    }
}

/// A config for tests: LWA at `base`, everything in `dir`, fast retries.
pub fn config(dir: &Path, base: &str) -> AgentConfig {
    let mut cfg = AgentConfig::for_local(dir, base, CODE).expect("config");
    cfg.link.handshake_timeout = Duration::from_secs(5);
    cfg.link.idle_timeout = Duration::from_secs(10);
    cfg.link.exchange_timeout = Duration::from_secs(5);
    cfg.auth.retry = RetryPolicy::sdk_scaled_down(100);
    cfg.auth.max_request_timeout = Duration::from_secs(5);
    cfg
}

pub async fn start(cfg: AgentConfig) -> Agent {
    Agent::start(cfg).await.expect("agent starts")
}

/// An agent with no LWA ([`NO_LWA`]) and its state in a fresh temporary directory, after `tune`
/// adjusted its [`config`]: for tests of the link alone. Keep the directory while the agent runs.
pub async fn offline(tune: impl FnOnce(&mut AgentConfig)) -> (tempfile::TempDir, Agent) {
    let dir = tempfile::tempdir().expect("state dir");
    let mut cfg = config(dir.path(), NO_LWA);
    tune(&mut cfg);
    (dir, start(cfg).await)
}

pub async fn hello(
    addr: SocketAddr,
) -> Result<ClientHandshake<StreamTransport<TcpStream>>, HandshakeError> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let t = StreamTransport::new(stream);
    tokio::time::timeout(
        Duration::from_secs(10),
        ClientHandshake::start(t, Hello::new(Role::Companion, "device-agent tests")),
    )
    .await
    .expect("hello in time")
}

/// A link to `addr` past the plain Hellos and no further (no PAKE): ours sent as `software`,
/// the agent's read (deadline 3 s) and checked to be a Hello. For tests that then send what the
/// typed client never would.
pub async fn plain_hello(addr: SocketAddr, software: &str) -> StreamTransport<TcpStream> {
    use shared_protocol::message::PlainMessage;
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut t = StreamTransport::new(stream);
    let hello = PlainMessage::Hello(Hello::new(Role::Companion, software));
    assert!(matches!(
        raw_exchange(&mut t, &hello, Duration::from_secs(3)).await,
        Ok(PlainMessage::Hello(_))
    ));
    t
}

/// Sends `msg` as one JSON frame, built by hand as a typed client never would, and reads the
/// agent's answer within `deadline` (a close or a failure panics): the answer, parsed.
pub async fn raw_exchange<T: FrameTransport>(
    t: &mut T,
    msg: &impl serde::Serialize,
    deadline: Duration,
) -> Result<shared_protocol::message::PlainMessage, serde_json::Error> {
    t.send_frame(serde_json::to_vec(msg).unwrap())
        .await
        .unwrap();
    let answer = tokio::time::timeout(deadline, t.recv_frame())
        .await
        .expect("the agent answers in time")
        .unwrap()
        .expect("an answer, not a close");
    serde_json::from_slice(&answer)
}

pub async fn connect(addr: SocketAddr, code: &str) -> Result<Session, HandshakeError> {
    let hs = hello(addr).await?;
    let code = SetupCode::parse(code).expect("code");
    tokio::time::timeout(Duration::from_secs(10), hs.authenticate(&code))
        .await
        .expect("handshake in time")
}

/// A sealed session over TCP to `stack`'s agent; `asks` announces `confirm_account_switch`
/// (protocol 1.2).
pub async fn companion(stack: &Stack, asks: bool) -> Session {
    let stream = TcpStream::connect(stack.agent.link_addr()).await.unwrap();
    seal(StreamTransport::new(stream), asks).await
}

/// A sealed session over `transport` with the right code, as [`companion`] (deadline 10 s).
pub async fn seal<T: FrameTransport>(transport: T, asks: bool) -> CompanionSession<T> {
    let mut hello = Hello::new(Role::Companion, "device-agent tests");
    if asks {
        hello.capabilities.push(Capability::ConfirmAccountSwitch);
    }
    handshake(transport, hello, CODE).await.unwrap()
}

/// A companion's whole handshake over `transport` with `code` (deadline 10 s): sealed, or how
/// it failed.
pub async fn handshake<T: FrameTransport>(
    transport: T,
    hello: Hello,
    code: &str,
) -> Result<CompanionSession<T>, HandshakeError> {
    let code = SetupCode::parse(code).unwrap();
    let handshake = async {
        ClientHandshake::start(transport, hello)
            .await?
            .authenticate(&code)
            .await
    };
    tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .expect("handshake in time")
}

pub async fn request(s: &mut Session, msg: CompanionMessage) -> AgentMessage {
    s.send(&msg).await.expect("send");
    recv(s).await
}

/// The agent's next message on any sealed session (deadline 20 s).
pub async fn recv<T: FrameTransport>(s: &mut CompanionSession<T>) -> AgentMessage {
    tokio::time::timeout(Duration::from_secs(20), s.recv())
        .await
        .expect("answer in time")
        .expect("answer")
}

/// Sends `$msg` on the session `$s` and reads the answers: the stage of each `$progress`
/// message, then the `$result` message that ends the request, as `(stages, result)`; any other
/// answer panics. A macro because the two are variants of [`AgentMessage`] (e.g.
/// `AgentMessage::Progress` and `AgentMessage::AuthResult`).
#[allow(unused_macros)]
macro_rules! staged {
    ($s:expr, $msg:expr, $progress:path, $result:path) => {{
        let s: &mut $crate::common::Session = $s;
        s.send(&$msg).await.unwrap();
        let mut stages = Vec::new();
        loop {
            match $crate::common::recv(s).await {
                $progress(p) => stages.push(p.stage),
                $result(r) => break (stages, r),
                other => panic!("{other:?}"),
            }
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use staged;

/// Waits (with a deadline) until `f` is true, re-checking on a short tick.
pub async fn eventually(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Connects with the right code, retrying briefly while the agent frees a slot.
pub async fn eventually_async_connect(addr: SocketAddr) -> Session {
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match connect(addr, CODE).await {
            Ok(s) => return s,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < end,
                    "never got a session: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Runs the emulator's browser login (sign in as `email`, allow) for `info`'s challenge with the
/// emulator's own scripted user, and returns the authorization code from the redirect.
pub async fn login(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    email: &str,
    password: &str,
    info: &shared_protocol::message::DeviceInfo,
) -> shared_protocol::secret::AuthorizationCode {
    use lwa_emulator::browser::{Consent, ScriptedUser};
    use shared_protocol::lwa::AuthorizeRequest;
    let req = AuthorizeRequest {
        client_id: client_id.into(),
        redirect_uri: redirect_uri.into(),
        product_id: info.product_id.clone(),
        dsn: info.dsn.clone(),
        state: "test-state".into(),
        code_challenge: info.challenge().unwrap(),
    };
    let url = req.to_url(&format!("{base}/ap/oa").parse().unwrap());
    let redirect = ScriptedUser::new(email, password)
        .unwrap()
        .authorize(url.as_str(), Consent::Allow)
        .await
        .unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in redirect {redirect}"));
    shared_protocol::secret::AuthorizationCode::new(code)
}

/// Links `d` to Alice with tokens the emulator mints for the default device client, as if a
/// login just finished; returns the access token it installed.
pub async fn link(
    emu: &lwa_emulator::RunningEmulator,
    d: &device_agent::auth_delegate::AuthDelegate,
) -> shared_protocol::secret::AccessToken {
    use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
    let t = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .unwrap();
    let grant =
        device_agent::lwa_client::TokenGrant::from_response(&t, tokio::time::Instant::now());
    d.install(grant, DEFAULT_DEVICE_CLIENT_ID.into(), None, true)
        .await
        .unwrap();
    t.access_token
}

/// One request to the agent's local API on `socket`, and its one answer.
pub async fn api_once(
    socket: &Path,
    req: &device_agent::local_api::ApiRequest,
) -> device_agent::local_api::ApiResponse {
    let mut got = None;
    device_agent::local_api::call(socket, req, |r| {
        got = Some(r.clone());
        false
    })
    .await
    .unwrap();
    got.expect("an answer")
}

/// One request line to the agent's local API on `socket` and its one answer line, as raw JSON
/// (the documented wire format, not the crate's types): `Ok(None)` when the agent closed the
/// connection without answering, `TimedOut` when nothing came `within`.
pub async fn api_line(
    socket: &Path,
    request: &serde_json::Value,
    within: Duration,
) -> std::io::Result<Option<serde_json::Value>> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut answer = String::new();
    let mut r = tokio::io::BufReader::new(r);
    let n = tokio::time::timeout(within, r.read_line(&mut answer))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "local API answer"))??;
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_str(&answer)
        .map(Some)
        .map_err(std::io::Error::other)
}

/// Tells the agent, over its local API on `socket`, that AVS refused `token`.
pub async fn report_auth_failure(socket: &Path, token: &shared_protocol::secret::AccessToken) {
    let request = device_agent::local_api::ApiRequest::AuthFailure {
        token: token.clone(),
    };
    device_agent::local_api::call(socket, &request, |_| false)
        .await
        .unwrap();
}

/// Logs to the test output when `AVS_TEST_LOG` is set (e.g. `device_agent=debug`).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("AVS_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}
