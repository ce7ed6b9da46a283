//! The refresh soak: the real `avs-device-agent` process through thousands of refresh cycles
//! against the LWA emulator, with faults mixed in, watching the agent's memory, descriptors and
//! threads.
//!
//! Why this shape. A speaker refreshes its token every ~50 minutes for years; what can go wrong
//! over that time is slow (a descriptor or a task leaked per refresh, a retry that is never
//! retired, a refresh lost after a fault). Waiting an hour per cycle is impossible, so the
//! emulator's clock travels instead: each cycle moves the emulator's clock past the access
//! token's life, so AVS (the emulator's `/ping`) really refuses the agent's token with a 403;
//! the agent learns it the way it does on a speaker (its `check` verb pings AVS and, on the
//! 403, starts the one immediate refresh), refreshes through whatever faults the cycle
//! injected, and the new token must be accepted by `/ping`.
//!
//! Faults (seeded, so a run can be repeated): each refresh is answered 500 or 503 first with
//! probability [`SoakOptions::server_error_rate`], held past the agent's request timeout with
//! probability [`SoakOptions::timeout_rate`], and once in the run a burst of 429s. Every cycle
//! is accounted for in the emulator's request log: exactly one more token request than the
//! faults injected, and one new token.
//!
//! The agent runs as its own process on loopback (no mDNS, no BLE), so the RSS, open
//! descriptors and threads read from `/proc/<pid>` are the agent's alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Emulator, Endpoint, Fault, RunningEmulator};
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use shared_protocol::ids::ClientId;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::stack::{self, AgentOptions, AgentProcess, Place};

/// The access token lifetime the emulator issues (and the clock jump per cycle).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The agent's LWA request timeout in the soak (so a held request costs seconds, not a minute).
const REQUEST_TIMEOUT_SECS: u64 = 1;
/// How long one cycle may take (a 429 burst rides the retry schedule: 0, 1, 2, 4, 10 s …).
const CYCLE_DEADLINE: Duration = Duration::from_secs(120);

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Refresh cycles.
    pub cycles: u64,
    /// Seed for the fault schedule.
    pub seed: u64,
    /// Probability that a cycle's refresh is first answered 500 or 503.
    pub server_error_rate: f64,
    /// Probability that a cycle's refresh is first held past the agent's request timeout.
    pub timeout_rate: f64,
    /// The cycle whose refresh first meets a burst of 429s, and how many.
    pub burst_429: Option<(u64, u32)>,
    /// Cycles after which to sample the agent's RSS, descriptors and threads.
    pub sample_at: Vec<u64>,
}

impl SoakOptions {
    /// The mix: 5 % 500/503, 1 % timeouts, one burst of 4 429s at a third of the run;
    /// samples at cycle 100, every tenth of the run, and at the end.
    pub fn standard(cycles: u64, seed: u64) -> Self {
        let mut sample_at = vec![100.min(cycles)];
        let step = (cycles / 10).max(1);
        sample_at.extend(
            (1..=10)
                .map(|i| i * step)
                .filter(|&c| c > 100 && c <= cycles),
        );
        sample_at.push(cycles);
        sample_at.sort_unstable();
        sample_at.dedup();
        Self {
            cycles,
            seed,
            server_error_rate: 0.05,
            timeout_rate: 0.01,
            burst_429: Some(((cycles / 3).max(1), 4)),
            sample_at,
        }
    }
}

/// The agent's footprint after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Cycles done.
    pub cycle: u64,
    /// Resident set (KiB, `VmRSS`).
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads of the process (`Threads` in /proc/<pid>/status).
    pub threads: u64,
}

/// What a soak run found.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    /// Cycles completed (each: a new token, accepted by `/ping`).
    pub cycles: u64,
    /// Injected 500s and 503s.
    pub server_errors: u64,
    /// Injected request holds past the agent's timeout.
    pub timeouts: u64,
    /// Injected 429s.
    pub too_many_requests: u64,
    /// Token requests the emulator received.
    pub token_requests: u64,
    /// `refreshes` the agent reports at the end.
    pub agent_refreshes: u64,
    /// Footprint samples.
    pub samples: Vec<Sample>,
    /// Per-cycle wall time, sorted (ms).
    pub cycle_ms: Vec<f64>,
    /// The whole run.
    pub elapsed: Duration,
}

impl SoakReport {
    /// The `q`-quantile of the cycle times (ms).
    pub fn cycle_quantile(&self, q: f64) -> f64 {
        if self.cycle_ms.is_empty() {
            return 0.0;
        }
        let i = ((self.cycle_ms.len() - 1) as f64 * q).round() as usize;
        self.cycle_ms[i.min(self.cycle_ms.len() - 1)]
    }
}

/// Why a soak failed.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The in-process emulator did not start.
    #[error("setup: starting the emulator: {0}")]
    Emulator(#[source] lwa_emulator::StartError),
    /// A scratch directory (the soak's temp dir, the agent's log dir) could not be made.
    #[error("setup: cannot create {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The emulator would not mint the agent's tokens.
    #[error("setup: minting the agent's tokens: {0}")]
    Mint(#[source] lwa_emulator::ControlError),
    /// The emulator minted tokens without a refresh token (its settings must issue one).
    #[error("setup: the emulator minted no refresh token")]
    NoRefreshToken,
    /// The agent's token store could not be opened or written.
    #[error("setup: the agent's token store: {0}")]
    Store(#[source] device_agent::store::StoreError),
    /// The agent process did not start or report ready.
    #[error("setup: starting the agent: {0}")]
    Agent(#[source] crate::stack::StackError),
    /// The agent's local API failed.
    #[error("cycle {cycle}: local API: {source}")]
    Api {
        /// The refresh cycle that failed (counted from 1).
        cycle: u64,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The agent's footprint could not be read from `/proc` (has it exited?).
    #[error("cycle {cycle}: reading /proc/{pid}: {source}")]
    Footprint {
        /// The cycle whose sample failed.
        cycle: u64,
        /// The agent's process id.
        pid: u32,
        /// The `/proc` read error.
        #[source]
        source: std::io::Error,
    },
    /// A cycle broke one of the soak's rules.
    #[error("cycle {cycle}: {problem}")]
    Cycle {
        /// The cycle.
        cycle: u64,
        /// What went wrong.
        problem: String,
    },
}

/// One request line to the agent's local API and its answer line (the documented wire format).
async fn api(socket: &Path, req: serde_json::Value) -> std::io::Result<serde_json::Value> {
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut answer = String::new();
    let mut r = tokio::io::BufReader::new(r);
    let n = tokio::time::timeout(Duration::from_secs(90), r.read_line(&mut answer))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "answer"))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// Reads `/proc/<pid>` for the agent's footprint.
pub fn footprint(pid: u32, cycle: u64) -> std::io::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Sample {
        cycle,
        rss_kib: field("VmRSS:"),
        fds,
        threads: field("Threads:"),
    })
}

fn token_requests(emu: &RunningEmulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::Token))
        .count()
}

/// Runs the soak: starts an emulator in this process and the agent binary `agent_bin` as a
/// process, links the agent, and runs `opts.cycles` cycles.
pub async fn run(agent_bin: &Path, opts: &SoakOptions) -> Result<SoakReport, SoakError> {
    let emu = Emulator::builder()
        .access_token_lifetime(TOKEN_LIFETIME.as_secs())
        .start()
        .await
        .map_err(SoakError::Emulator)?;
    let dir = tempfile::Builder::new()
        .prefix("avs-soak-")
        .tempdir()
        .map_err(|source| SoakError::Dir {
            path: std::env::temp_dir(),
            source,
        })?;
    let agent = start_linked_agent(agent_bin, &emu, dir.path())?;
    let pid = agent.process.pid();
    let socket = agent.socket.clone();

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut report = SoakReport::default();
    let t0 = Instant::now();

    // The startup refresh from the store.
    let mut current = wait_new_token(&socket, None, 0).await?;
    wait_requests(&emu, 1, 0).await?;
    report.token_requests += token_requests(&emu) as u64;
    emu.clear_requests();

    for cycle in 1..=opts.cycles {
        let start = Instant::now();
        // AVS's clock passes the token's expiry.
        emu.advance_clock(TOKEN_LIFETIME + Duration::from_secs(1));
        let faults = inject_faults(&emu, opts, &mut rng, cycle, &mut report);
        current = refresh_cycle(&emu, &socket, &current, cycle, faults, &mut report).await?;
        report.cycle_ms.push(start.elapsed().as_secs_f64() * 1e3);
        report.cycles = cycle;
        if opts.sample_at.contains(&cycle) {
            report.samples.push(
                footprint(pid, cycle).map_err(|source| SoakError::Footprint {
                    cycle,
                    pid,
                    source,
                })?,
            );
        }
    }
    let status = api(&socket, serde_json::json!({"op": "status"}))
        .await
        .map_err(|source| SoakError::Api {
            cycle: opts.cycles,
            source,
        })?;
    report.agent_refreshes = status["refreshes"].as_u64().unwrap_or(0);
    report.elapsed = t0.elapsed();
    report.cycle_ms.sort_by(f64::total_cmp);
    drop(agent);
    emu.shutdown().await;
    Ok(report)
}

/// The agent process on loopback (no mDNS, no BLE), its state in `dir`, already linked: a
/// refresh token the emulator issued is in its store.
fn start_linked_agent(
    agent_bin: &Path,
    emu: &RunningEmulator,
    dir: &Path,
) -> Result<AgentProcess, SoakError> {
    let state: PathBuf = dir.join("state");
    let granted = emu
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
        .map_err(SoakError::Mint)?;
    let refresh_token = granted.refresh_token.ok_or(SoakError::NoRefreshToken)?;
    device_agent::store::TokenStore::open(&state)
        .map_err(SoakError::Store)?
        .save(&device_agent::store::StoredTokens {
            refresh_token,
            client_id: ClientId::new(DEFAULT_DEVICE_CLIENT_ID),
            account: None,
            verified: true,
        })
        .map_err(SoakError::Store)?;
    let mut agent_opts = AgentOptions::new(state.clone(), emu.base_url());
    agent_opts.link_bind = Some("127.0.0.1:0".into());
    agent_opts.extra_toml = vec![
        "ble = false".into(),
        format!("request_timeout_secs = {REQUEST_TIMEOUT_SECS}"),
    ];
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|source| SoakError::Dir {
        path: logs.clone(),
        source,
    })?;
    stack::start_agent(
        Place::Root { log_dir: &logs },
        agent_bin,
        &agent_opts,
        "agent",
    )
    .map_err(SoakError::Agent)
}

/// This cycle's faults (counted in `report`), consumed by the agent's next token requests in
/// order: the 429 burst at its cycle, then at most one 500/503 or one hold, drawn from `rng`.
/// Returns how many token requests they will cost.
fn inject_faults(
    emu: &RunningEmulator,
    opts: &SoakOptions,
    rng: &mut StdRng,
    cycle: u64,
    report: &mut SoakReport,
) -> u64 {
    let mut faults = 0u64;
    if let Some((at, n)) = opts.burst_429 {
        if cycle == at {
            emu.inject_fault(Endpoint::Token, Fault::too_many_requests(1), n);
            faults += u64::from(n);
            report.too_many_requests += u64::from(n);
        }
    }
    let draw: f64 = rng.gen();
    if draw < opts.server_error_rate {
        let status = if rng.gen::<bool>() { 500 } else { 503 };
        emu.inject_fault(Endpoint::Token, Fault::status(status), 1);
        faults += 1;
        report.server_errors += 1;
    } else if draw < opts.server_error_rate + opts.timeout_rate {
        emu.inject_fault(
            Endpoint::Token,
            Fault::Delay {
                millis: REQUEST_TIMEOUT_SECS * 1000 + 500,
            },
            1,
        );
        faults += 1;
        report.timeouts += 1;
    }
    faults
}

/// One refresh as a speaker meets it: AVS refuses `current`, the agent refreshes through the
/// `faults` injected, AVS accepts the new token, and the emulator saw exactly one token request
/// per fault plus one. Returns the new token.
async fn refresh_cycle(
    emu: &RunningEmulator,
    socket: &Path,
    current: &str,
    cycle: u64,
    faults: u64,
    report: &mut SoakReport,
) -> Result<String, SoakError> {
    // The AVS client's view: /ping with the agent's token is refused (403), which makes
    // the agent refresh at once.
    expect_check(socket, cycle, false, "AVS accepted a token past its expiry").await?;
    let next = wait_new_token(socket, Some(current), cycle).await?;
    // The new token is accepted by AVS.
    expect_check(socket, cycle, true, "AVS refused the new token").await?;
    // Every fault was met by exactly one retry, and nothing more was sent.
    let expected = 1 + faults as usize;
    wait_requests(emu, expected, cycle).await?;
    let seen = token_requests(emu);
    if seen != expected {
        return Err(SoakError::Cycle {
            cycle,
            problem: format!("{seen} token requests for {faults} faults (expected {expected})"),
        });
    }
    report.token_requests += seen as u64;
    emu.clear_requests();
    Ok(next)
}

/// Asks the agent's `check` verb (its token against AVS's /ping) and fails the cycle with
/// `problem` unless AVS's verdict is `ok`.
async fn expect_check(socket: &Path, cycle: u64, ok: bool, problem: &str) -> Result<(), SoakError> {
    let check = api(socket, serde_json::json!({"op": "check"}))
        .await
        .map_err(|source| SoakError::Api { cycle, source })?;
    if check["ok"] != serde_json::Value::Bool(ok) {
        return Err(SoakError::Cycle {
            cycle,
            problem: format!("{problem}: {check}"),
        });
    }
    Ok(())
}

/// Polls the agent's `token` verb (deadline [`CYCLE_DEADLINE`]) until it answers a token other
/// than `old`.
async fn wait_new_token(socket: &Path, old: Option<&str>, cycle: u64) -> Result<String, SoakError> {
    let end = Instant::now() + CYCLE_DEADLINE;
    loop {
        let answer = api(socket, serde_json::json!({"op": "token"}))
            .await
            .map_err(|source| SoakError::Api { cycle, source })?;
        if let Some(t) = answer["access_token"].as_str() {
            if Some(t) != old {
                return Ok(t.to_owned());
            }
        }
        if Instant::now() > end {
            return Err(SoakError::Cycle {
                cycle,
                problem: format!("no new token within {CYCLE_DEADLINE:?} (cycle lost)"),
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits (deadline 10 s) until the emulator has recorded `n` token requests: a request held by
/// a delay fault is recorded when the emulator finally answers it.
async fn wait_requests(emu: &RunningEmulator, n: usize, cycle: u64) -> Result<(), SoakError> {
    let end = Instant::now() + Duration::from_secs(10);
    while token_requests(emu) < n {
        if Instant::now() > end {
            return Err(SoakError::Cycle {
                cycle,
                problem: format!(
                    "only {} of {n} token requests recorded",
                    token_requests(emu)
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The report as the lines the bench binary prints (and docs/benchmarks.md quotes).
pub fn render(report: &SoakReport, opts: &SoakOptions) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "soak: {} cycles in {:.1} s (seed {})\n",
        report.cycles,
        report.elapsed.as_secs_f64(),
        opts.seed
    ));
    out.push_str(&format!(
        "faults injected: {} x 500/503, {} x held past the {} s request timeout, {} x 429 (one burst)\n",
        report.server_errors, report.timeouts, REQUEST_TIMEOUT_SECS, report.too_many_requests
    ));
    out.push_str(&format!(
        "token requests: {} (cycles + faults + startup = {}); agent reports {} refreshes\n",
        report.token_requests,
        report.cycles + report.server_errors + report.timeouts + report.too_many_requests + 1,
        report.agent_refreshes
    ));
    out.push_str(&format!(
        "cycle time: median {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
        report.cycle_quantile(0.5),
        report.cycle_quantile(0.99),
        report.cycle_quantile(1.0)
    ));
    out.push_str("cycle\tRSS KiB\tfds\tthreads\n");
    for s in &report.samples {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            s.cycle, s.rss_kib, s.fds, s.threads
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn an_agent_that_cannot_start_is_a_setup_error_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-agent");
        let err = run(&missing, &SoakOptions::standard(1, 1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SoakError::Agent(crate::stack::StackError::Io(_))),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("setup: starting the agent: "),
            "{err}"
        );
        assert!(err.source().is_some(), "the stack error is kept");
    }
}
