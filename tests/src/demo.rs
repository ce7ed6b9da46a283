//! The one-command demo: a speaker paired with an Amazon account on a virtual home network,
//! without an Amazon account, with every step timed.
//!
//! As root with iproute2 ("mode: network namespaces"): namespaces `speaker` and `laptop` joined
//! by a veth pair. The LWA emulator runs on the laptop over HTTPS with a generated CA (the agent
//! refuses plain HTTP to anything but loopback); the agent runs on the speaker, trusting that CA
//! and advertising over mDNS on the veth only; the companion runs on the laptop, finds the
//! speaker over real mDNS, does the PAKE with the agent's own setup code, and lets a scripted
//! user (`lwa-emulator browse`, as `BROWSER`) sign in on the emulator's real pages.
//!
//! Without root ("mode: loopback"): the same processes on 127.0.0.1 in the current namespace,
//! except mDNS, which is never started outside a namespace this program owns: the companion
//! connects straight to the agent's port.
//!
//! Afterwards: the agent's state is REFRESHED, one automatic refresh happens (tokens live 601 s
//! and the agent refreshes 600 s before expiry), and AVS `/ping` accepts the token. Everything
//! it started (processes, namespaces, temp files) is removed on success, on failure and on
//! Ctrl-C.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bins::Bins;
use crate::cleanup::{self, Resource};
use crate::netns::{TestNet, LINK_NAME};
use crate::process::ManagedProcess;
use shared_protocol::setup_code::SetupCode;

use crate::stack::{self, AgentOptions, AgentProcess, EmulatorOptions, Place};

/// The emulator's access-token lifetime in the demo: one second longer than the agent's
/// refresh head start (600 s), so the first refresh comes one second after linking.
pub const DEMO_TOKEN_LIFETIME_SECS: u64 = 601;

/// How the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Speaker and laptop namespaces, real mDNS.
    Namespaces,
    /// Loopback in the current namespace, no mDNS.
    Loopback,
}

impl Mode {
    /// What the demo says about itself.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Namespaces => "mode: network namespaces",
            Mode::Loopback => {
                "mode: loopback, discovery skipped (needs root for network namespaces)"
            }
        }
    }
}

/// One timed step.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Short name (`discovery`).
    pub name: String,
    /// What happened.
    pub detail: String,
    /// How long the step took, in milliseconds.
    pub millis: f64,
}

/// A finished demo.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The mode used.
    pub mode: Mode,
    /// Every step in order.
    pub timings: Vec<Timing>,
    /// Wall time, ms.
    pub total_millis: f64,
}

impl Report {
    /// The time of a named step.
    pub fn millis(&self, name: &str) -> Option<f64> {
        self.timings
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.millis)
    }

    /// The timing table.
    pub fn table(&self) -> String {
        let mut s = format!("\n  {:<22} {:>10}  {}\n", "step", "time", "what happened");
        for t in &self.timings {
            s.push_str(&format!(
                "  {:<22} {:>7.1} ms  {}\n",
                t.name, t.millis, t.detail
            ));
        }
        s.push_str(&format!(
            "  {:<22} {:>7.1} ms\n",
            "total", self.total_millis
        ));
        s
    }
}

/// Demo options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Force a mode (default: namespaces when available).
    pub mode: Option<Mode>,
    /// The binaries.
    pub bins: Bins,
    /// Print each step as it completes.
    pub verbose: bool,
    /// Keep the temp dir and process logs (their path is printed) instead of removing them.
    pub keep_logs: bool,
}

/// What failed, with the logs that explain it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DemoError {
    /// What went wrong.
    pub message: String,
}

impl DemoError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DemoError + '_ {
    move |e| DemoError::new(format!("{what}: {e}"))
}

struct Clock<'a> {
    timings: Vec<Timing>,
    verbose: bool,
    out: &'a mut dyn FnMut(&str),
}

impl Clock<'_> {
    fn record(&mut self, name: &str, millis: f64, detail: impl Into<String>) {
        let t = Timing {
            name: name.to_owned(),
            detail: detail.into(),
            millis,
        };
        if self.verbose {
            (self.out)(&format!(
                "  ✓ {:<22} {:>7.1} ms  {}",
                t.name, t.millis, t.detail
            ));
        }
        self.timings.push(t);
    }

    fn time<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(T, String), DemoError>,
    ) -> Result<T, DemoError> {
        let t0 = Instant::now();
        let (v, detail) = f()?;
        self.record(name, t0.elapsed().as_secs_f64() * 1000.0, detail);
        Ok(v)
    }
}

/// Chooses the mode: namespaces when root and iproute2 are there.
pub fn auto_mode() -> Mode {
    match TestNet::check_available() {
        Ok(()) => Mode::Namespaces,
        Err(_) => Mode::Loopback,
    }
}

/// Runs the demo; `out` receives progress lines.
pub fn run(opts: &Options, out: &mut dyn FnMut(&str)) -> Result<Report, DemoError> {
    let started = Instant::now();
    let mode = opts.mode.unwrap_or_else(auto_mode);
    out(&format!("avs-pair demo — {}", mode.describe()));
    let tmp = tempfile::Builder::new()
        .prefix("avs-pair-demo-")
        .tempdir()
        .map_err(err("creating a temp dir"))?;
    let tmp_token = cleanup::register(Resource::Dir(tmp.path().to_owned()));
    out(&format!(
        "work dir {} (removed at the end)",
        tmp.path().display()
    ));
    let mut clock = Clock {
        timings: Vec::new(),
        verbose: opts.verbose,
        out,
    };
    let result = match mode {
        Mode::Namespaces => run_namespaces(opts, tmp.path(), &mut clock),
        Mode::Loopback => run_loopback(opts, tmp.path(), &mut clock),
    };
    if opts.keep_logs {
        let kept = tmp.keep();
        (clock.out)(&format!("logs and state kept in {}", kept.display()));
    }
    cleanup::release(tmp_token);
    result?;
    Ok(Report {
        mode,
        timings: clock.timings,
        total_millis: started.elapsed().as_secs_f64() * 1000.0,
    })
}

fn run_namespaces(opts: &Options, tmp: &Path, clock: &mut Clock<'_>) -> Result<(), DemoError> {
    let net = clock.time("network", || {
        let net = TestNet::speaker_and_laptop().map_err(err("building the test network"))?;
        let s = net.host("speaker").map_err(err("network"))?.clone();
        let l = net.host("laptop").map_err(err("network"))?.clone();
        let detail = format!(
            "namespaces {} ({}) and {} ({}), veth {LINK_NAME}",
            s.netns, s.addr, l.netns, l.addr
        );
        Ok((net, detail))
    })?;
    let laptop_ip = net.host("laptop").map_err(err("network"))?.addr;
    let laptop = Place::Host {
        net: &net,
        host: "laptop",
    };
    let speaker = Place::Host {
        net: &net,
        host: "speaker",
    };
    let ca_path = tmp.join("emulator-ca.pem");
    let emulator = clock.time("lwa emulator", || {
        let e = stack::start_emulator(
            laptop,
            &opts.bins.emulator,
            &EmulatorOptions {
                bind: "0.0.0.0:0".parse().map_err(err("bind address"))?,
                https: true,
                sans: vec![laptop_ip.to_string(), "127.0.0.1".into()],
                ca_out: Some(ca_path.clone()),
                extra_args: vec![
                    "--token-lifetime".into(),
                    DEMO_TOKEN_LIFETIME_SECS.to_string(),
                ],
            },
        )
        .map_err(err("starting lwa-emulator"))?;
        let detail = format!("{} on the laptop (HTTPS, own CA)", e.base_url);
        Ok((e, detail))
    })?;
    let port = emulator
        .port()
        .ok_or_else(|| DemoError::new("the emulator reported no port"))?;
    // The speaker's setup code, as a factory provisions it before printing the label.
    let state_dir = tmp.join("speaker-state");
    let code = SetupCode::generate();
    let code_file = stack::provision_setup_code(&state_dir, &code)
        .map_err(err("provisioning the setup code"))?;
    let mut agent_opts = AgentOptions::new(state_dir, &format!("https://{laptop_ip}:{port}"));
    agent_opts.setup_code = Some(code);
    agent_opts.lwa_ca_file = Some(ca_path.clone());
    agent_opts.mdns = true;
    agent_opts.mdns_interfaces = Some(vec![LINK_NAME.into()]);
    // The user opens the app (it starts browsing), then powers the speaker on: the browse is
    // already listening when the speaker's first mDNS announcement goes out.
    let companion = spawn_companion(
        opts,
        tmp,
        laptop,
        &code_file,
        &CompanionArgs {
            base_url: format!("https://127.0.0.1:{port}"),
            ca: Some(ca_path.clone()),
            connect: None,
            interface: Some(LINK_NAME.into()),
        },
    )?;
    let agent = clock.time("speaker agent", || {
        let a = stack::start_agent(speaker, &opts.bins.agent, &agent_opts, "avs-device-agent")
            .map_err(err("starting avs-device-agent"))?;
        let detail = format!(
            "device {} link {}, advertising _avs-pair._tcp on {LINK_NAME} (the companion is already browsing)",
            a.device_id, a.link
        );
        Ok((a, detail))
    })?;
    finish_companion(opts, companion, &agent, clock, &emulator.process)?;
    // Orderly stop: agent first (mDNS goodbye), then the emulator; then the network goes.
    stop(agent.process, clock, "stop speaker agent")?;
    stop(emulator.process, clock, "stop lwa emulator")?;
    let t0 = Instant::now();
    let names = net.namespaces();
    if opts.keep_logs {
        let mut net = net;
        let dir = net.keep_logs();
        (clock.out)(&format!("process logs kept in {}", dir.display()));
    } else {
        drop(net);
    }
    clock.record(
        "remove network",
        t0.elapsed().as_secs_f64() * 1000.0,
        format!("deleted {}", names.join(", ")),
    );
    Ok(())
}

fn run_loopback(opts: &Options, tmp: &Path, clock: &mut Clock<'_>) -> Result<(), DemoError> {
    let logs = tmp.join("logs");
    std::fs::create_dir_all(&logs).map_err(err("creating the log dir"))?;
    let root = Place::Root { log_dir: &logs };
    let emulator = clock.time("lwa emulator", || {
        let e = stack::start_emulator(
            root,
            &opts.bins.emulator,
            &EmulatorOptions {
                extra_args: vec![
                    "--token-lifetime".into(),
                    DEMO_TOKEN_LIFETIME_SECS.to_string(),
                ],
                ..EmulatorOptions::default()
            },
        )
        .map_err(err("starting lwa-emulator"))?;
        let detail = format!("{} (loopback HTTP)", e.base_url);
        Ok((e, detail))
    })?;
    let mut agent_opts = AgentOptions::new(tmp.join("speaker-state"), &emulator.base_url);
    agent_opts.mdns = false;
    agent_opts.link_bind = Some("127.0.0.1:0".into());
    let agent = clock.time("speaker agent", || {
        let a = stack::start_agent(root, &opts.bins.agent, &agent_opts, "avs-device-agent")
            .map_err(err("starting avs-device-agent"))?;
        let detail = format!("device {} link {} (mDNS off)", a.device_id, a.link);
        Ok((a, detail))
    })?;
    let companion = spawn_companion(
        opts,
        tmp,
        root,
        &agent.setup_code_file,
        &CompanionArgs {
            base_url: emulator.base_url.clone(),
            ca: None,
            connect: Some(format!("127.0.0.1:{}", agent.port())),
            interface: None,
        },
    )?;
    finish_companion(opts, companion, &agent, clock, &emulator.process)?;
    stop(agent.process, clock, "stop speaker agent")?;
    stop(emulator.process, clock, "stop lwa emulator")?;
    Ok(())
}

struct CompanionArgs {
    base_url: String,
    ca: Option<PathBuf>,
    connect: Option<String>,
    interface: Option<String>,
}

fn stop(mut p: ManagedProcess, clock: &mut Clock<'_>, name: &str) -> Result<(), DemoError> {
    let label = p.label().to_owned();
    clock.time(name, || {
        let status = p
            .terminate(Duration::from_secs(5))
            .map_err(err("stopping a process"))?;
        Ok(((), format!("{label} exited ({status})")))
    })
}

/// Starts `avs-companion pair` with the scripted user as its browser.
fn spawn_companion(
    opts: &Options,
    tmp: &Path,
    laptop: Place<'_>,
    setup_code_file: &Path,
    args: &CompanionArgs,
) -> Result<ManagedProcess, DemoError> {
    let user = lwa_emulator::registry::ALICE_EMAIL;
    let password = lwa_emulator::registry::ALICE_PASSWORD;
    let mut browser = vec![
        opts.bins.emulator.display().to_string(),
        "browse".into(),
        "--email".into(),
        user.into(),
        "--password".into(),
        password.into(),
    ];
    if let Some(ca) = &args.ca {
        browser.push("--ca".into());
        browser.push(ca.display().to_string());
    }
    let browser = shell_join(&browser);
    let mut cmd = laptop
        .command(&opts.bins.companion)
        .map_err(err("companion command"))?;
    cmd.arg("--config")
        .arg(tmp.join("companion.toml"))
        .arg("pair")
        .arg("--json")
        .arg("--setup-code-file")
        .arg(setup_code_file)
        .arg("--client-id")
        .arg(lwa_emulator::registry::DEFAULT_DEVICE_CLIENT_ID)
        .arg("--lwa-base-url")
        .arg(&args.base_url)
        .arg("--browser")
        .arg(&browser)
        .arg("--login-timeout")
        .arg("30")
        .arg("--discover-timeout")
        .arg("10");
    match (&args.connect, &args.interface) {
        (Some(addr), _) => {
            cmd.arg("--connect").arg(addr);
        }
        (None, Some(iface)) => {
            cmd.arg("--interface").arg(iface);
        }
        (None, None) => {}
    }
    laptop
        .spawn(cmd, "avs-companion")
        .map_err(err("starting avs-companion"))
}

/// Waits for the companion, records its steps, then checks the agent's side: REFRESHED, one
/// refresh, AVS `/ping`.
fn finish_companion(
    opts: &Options,
    mut companion: ManagedProcess,
    agent: &AgentProcess,
    clock: &mut Clock<'_>,
    emulator: &ManagedProcess,
) -> Result<(), DemoError> {
    let status = companion
        .wait_timeout(Duration::from_secs(90))
        .map_err(err("waiting for avs-companion"))?;
    let lines = companion.stdout_lines();
    let steps = companion_steps(&lines);
    for (name, millis, detail) in &steps {
        clock.record(name, *millis, detail.clone());
    }
    match status {
        Some(s) if s.success() => {}
        other => {
            let why = match other {
                Some(s) => format!("avs-companion failed ({s})"),
                None => "avs-companion did not finish within 90 s".into(),
            };
            return Err(DemoError::new(format!(
                "{why}\n{}\n{}\n{}",
                companion.tail(20),
                agent.process.tail(20),
                emulator.tail(10)
            )));
        }
    }
    // The agent's side of the story, through its local API (a Unix socket: any namespace).
    clock.time("agent REFRESHED", || {
        let s = agent_status(opts, agent)?;
        let state = s["auth_state"].as_str().unwrap_or("?").to_owned();
        if state != "REFRESHED" {
            return Err(DemoError::new(format!(
                "the agent's auth state is {state}, expected REFRESHED\n{}",
                agent.process.tail(20)
            )));
        }
        let user_id = s["user_id"].as_str().unwrap_or("-").to_owned();
        Ok(((), format!("auth state REFRESHED, account {user_id}")))
    })?;
    clock.time("token refresh", || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Waiting on another process's timer: poll its status with a deadline.
            let s = agent_status(opts, agent)?;
            let n = s["refreshes"].as_u64().unwrap_or(0);
            if n >= 1 && s["auth_state"].as_str() == Some("REFRESHED") {
                return Ok((
                    (),
                    format!("{n} refresh(es) by the agent's own refresh loop, still REFRESHED"),
                ));
            }
            if Instant::now() > deadline {
                return Err(DemoError::new(format!(
                    "no token refresh within 10 s (state {})\n{}",
                    s["auth_state"],
                    agent.process.tail(20)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;
    clock.time("avs /ping", || {
        let out = agent
            .cli(&opts.bins.agent, "check")
            .map_err(err("avs-device-agent check"))?;
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).map_err(err("avs-device-agent check output"))?;
        if v["ok"].as_bool() != Some(true) {
            return Err(DemoError::new(format!("AVS refused the token: {out}")));
        }
        let message = v["message"].as_str().unwrap_or("AVS accepted the token");
        Ok(((), message.to_owned()))
    })?;
    Ok(())
}

fn agent_status(opts: &Options, agent: &AgentProcess) -> Result<serde_json::Value, DemoError> {
    let out = agent
        .cli(&opts.bins.agent, "status")
        .map_err(err("avs-device-agent status"))?;
    serde_json::from_str(out.trim()).map_err(err("avs-device-agent status output"))
}

/// `(step, millis, detail)` from the companion's `--json` output.
pub fn companion_steps(lines: &[String]) -> Vec<(String, f64, String)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step_done")
        .map(|v| {
            (
                v["step"].as_str().unwrap_or("?").to_owned(),
                v["millis"].as_f64().unwrap_or(0.0),
                v["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_companion_json_steps() {
        let lines = vec![
            r#"{"event":"step_started","step":"connect"}"#.to_owned(),
            r#"{"event":"step_done","step":"connect","millis":1.5,"detail":"x"}"#.to_owned(),
            "not json".to_owned(),
        ];
        assert_eq!(
            companion_steps(&lines),
            vec![("connect".to_owned(), 1.5, "x".to_owned())]
        );
    }

    #[test]
    fn shell_words_round_trip() {
        let w = vec!["/a b/c".to_owned(), "--x".into(), "it's".into()];
        assert_eq!(shell_words::split(&shell_join(&w)).unwrap(), w);
    }
}
