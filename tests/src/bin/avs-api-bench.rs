//! `avs-api-bench`: the agent's local API at scale (issue 16.4), in one process on this machine:
//! the real `Agent` (its real Unix socket) against the in-process LWA emulator on loopback.
//!
//! 1. `CLIENTS` (default 1,000) concurrent short clients, each one connection with one `token`
//!    request: all must be answered with the token; socket latency (connect → answer line) of
//!    every admitted request, median and p99.
//! 2. The same number of concurrent `auth_failure` reports of the current token, then `token`
//!    until it is new: exactly one refresh request must reach LWA (the emulator's log).
//!
//! The local API admits a bounded number of clients at once (32 in all, 16 per uid) and turns
//! the others away (closed without an answer, or `busy`). The bench's clients all run as one
//! uid, so they are staged within the per-uid cap: at most `STAGE` (default 12) hold a
//! connection at a time; a caller turned away anyway retries and is counted. Clients and agent share one runtime (2
//! workers), so the latencies include the clients' own scheduling.
//!
//! Usage: `avs-api-bench [CLIENTS=1000] [STAGE=12]`. No root needed (no network namespace).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use avs_pair_tests::bench_args::positional;
use device_agent::agent::Agent;
use device_agent::config::AgentConfig;
use device_agent::lwa_client::TokenGrant;
use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID};
use lwa_emulator::{Emulator, RunningEmulator};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// The setup code the bench's agent is provisioned with (never used: nothing pairs).
const SETUP_CODE: &str = "24681357";
/// How long one client keeps trying to be admitted.
const ADMIT_DEADLINE: Duration = Duration::from_secs(60);

/// Why the bench stopped.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    #[error("state dir: {0}")]
    TempDir(std::io::Error),
    #[error("emulator: {0}")]
    Emulator(#[from] lwa_emulator::StartError),
    #[error("emulator control: {0}")]
    Control(#[from] lwa_emulator::ControlError),
    #[error("config: {0}")]
    Config(#[from] device_agent::config::ConfigError),
    #[error("agent: {0}")]
    Agent(#[from] device_agent::agent::AgentError),
    #[error("install: {0}")]
    Install(String),
    #[error("a client was never admitted in {0:?}")]
    NeverAdmitted(Duration),
    #[error("unexpected answer to {what}: {answer}")]
    Answer {
        what: &'static str,
        answer: serde_json::Value,
    },
    #[error("no new token after the reports in {0:?}")]
    NoNewToken(Duration),
    #[error("a client task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("{0} refresh requests reached LWA (want exactly 1)")]
    Refreshes(usize),
}

fn main() {
    if let Err(e) = run() {
        eprintln!("avs-api-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: usize = positional(&args, 0, 1000);
    let stage: usize = positional(&args, 1, 12).max(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?
        .block_on(bench(clients, stage))
}

/// One connection, one request line, one answer line. `None`: turned away (closed without an
/// answer, or answered `busy` by a cap).
async fn call(socket: &Path, line: &str) -> Option<serde_json::Value> {
    let s = tokio::net::UnixStream::connect(socket).await.ok()?;
    let (r, mut w) = s.into_split();
    w.write_all(format!("{line}\n").as_bytes()).await.ok()?;
    let mut lines = BufReader::new(r).lines();
    let l = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .ok()?
        .ok()??;
    let v: serde_json::Value = serde_json::from_str(&l).ok()?;
    // Turned away by a cap (e.g. the per-uid one): not an answer to the request.
    if v["type"] == "error" && v["kind"] == "busy" {
        return None;
    }
    Some(v)
}

/// [`call`] until admitted; the latency of the admitted attempt in µs.
async fn admitted(
    socket: &Path,
    line: &str,
    turned_away: &AtomicUsize,
) -> Result<(serde_json::Value, f64), BenchError> {
    let end = Instant::now() + ADMIT_DEADLINE;
    loop {
        let t0 = Instant::now();
        if let Some(v) = call(socket, line).await {
            return Ok((v, t0.elapsed().as_secs_f64() * 1e6));
        }
        turned_away.fetch_add(1, Ordering::Relaxed);
        if Instant::now() > end {
            return Err(BenchError::NeverAdmitted(ADMIT_DEADLINE));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn token_of(v: &serde_json::Value) -> Option<String> {
    (v["type"] == "token")
        .then(|| v["access_token"].as_str().map(str::to_owned))
        .flatten()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn refresh_requests(emu: &RunningEmulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.is_token_grant("refresh_token"))
        .count()
}

async fn bench(clients: usize, stage: usize) -> Result<(), BenchError> {
    let emu = Emulator::builder().start().await?;
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let agent = linked_agent(&emu, dir.path()).await?;
    let socket: PathBuf = agent.socket_path().to_path_buf();
    let gate = Arc::new(tokio::sync::Semaphore::new(stage));

    // 1. Short token clients.
    let mut current = None;
    let tokens = staged(&socket, &gate, clients, r#"{"op":"token"}"#, |v| {
        let Some(tok) = token_of(&v) else {
            return Err(BenchError::Answer {
                what: "token",
                answer: v,
            });
        };
        current.get_or_insert(tok);
        Ok(())
    })
    .await?;

    // 2. Concurrent auth_failure reports of the current token.
    let refused = current.unwrap_or_default();
    emu.clear_requests();
    let report = serde_json::json!({"op": "auth_failure", "token": refused}).to_string();
    let reports = staged(&socket, &gate, clients, &report, |v| {
        if v["type"] != "ok" {
            return Err(BenchError::Answer {
                what: "auth_failure",
                answer: v,
            });
        }
        Ok(())
    })
    .await?;
    wait_new_token(&socket, &refused).await?;
    let new_token_after = reports.started.elapsed();
    let refreshes = refresh_requests(&emu);
    agent.shutdown().await;
    emu.shutdown().await;
    if refreshes != 1 {
        return Err(BenchError::Refreshes(refreshes));
    }
    print_table(
        clients,
        stage,
        &tokens,
        &reports,
        refreshes,
        new_token_after,
    );
    Ok(())
}

/// The real agent on `dir`, linked to Alice with tokens the emulator minted.
async fn linked_agent(emu: &RunningEmulator, dir: &Path) -> Result<Agent, BenchError> {
    let mut cfg = AgentConfig::for_local(dir, emu.base_url(), SETUP_CODE)?;
    cfg.product_id = DEFAULT_PRODUCT_ID.into();
    cfg.client_id = Some(DEFAULT_DEVICE_CLIENT_ID.into());
    let agent = Agent::start(cfg).await?;
    let t = emu.mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)?;
    let grant = TokenGrant::from_response(&t, tokio::time::Instant::now());
    agent
        .delegate()
        .install(grant, DEFAULT_DEVICE_CLIENT_ID.into(), None, true)
        .await
        .map_err(|e| BenchError::Install(e.to_string()))?;
    Ok(agent)
}

/// One phase of concurrent clients.
struct Phase {
    /// When the first client was started.
    started: Instant,
    /// Until every answer was in.
    wall: Duration,
    /// Socket latency of each admitted request (µs), sorted.
    lat: Vec<f64>,
    /// Connections turned away (and retried).
    turned_away: usize,
}

/// `clients` clients sending `line` once each, at most as many connected at a time as `gate`
/// has permits; `each` checks every answer, in the order the clients were started.
async fn staged(
    socket: &Path,
    gate: &Arc<tokio::sync::Semaphore>,
    clients: usize,
    line: &str,
    mut each: impl FnMut(serde_json::Value) -> Result<(), BenchError>,
) -> Result<Phase, BenchError> {
    let turned_away = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (socket, gate, turned_away, line) = (
            socket.to_owned(),
            gate.clone(),
            turned_away.clone(),
            line.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await;
            admitted(&socket, &line, &turned_away).await
        }));
    }
    let mut lat = Vec::with_capacity(clients);
    for task in tasks {
        let (v, us) = task.await??;
        each(v)?;
        lat.push(us);
    }
    let wall = started.elapsed();
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(Phase {
        started,
        wall,
        lat,
        turned_away: turned_away.load(Ordering::Relaxed),
    })
}

/// Asks for the token until it is not `refused` (deadline 10 s).
async fn wait_new_token(socket: &Path, refused: &str) -> Result<(), BenchError> {
    let end = Instant::now() + Duration::from_secs(10);
    let unused = AtomicUsize::new(0);
    loop {
        let (v, _) = admitted(socket, r#"{"op":"token"}"#, &unused).await?;
        if token_of(&v).is_some_and(|t| t != refused) {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(BenchError::NoNewToken(Duration::from_secs(10)));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The table docs/benchmarks.md quotes.
fn print_table(
    clients: usize,
    stage: usize,
    tokens: &Phase,
    reports: &Phase,
    refreshes: usize,
    new_token_after: Duration,
) {
    println!("| local API, {clients} concurrent clients (≤ {stage} connected at once) | value |");
    println!("|---|---|");
    println!(
        "| `token`: answered | {}/{clients} in {:.0} ms ({} connections turned away and retried) |",
        tokens.lat.len(),
        tokens.wall.as_secs_f64() * 1e3,
        tokens.turned_away
    );
    println!(
        "| `token`: socket latency median / p99 / max | {:.0} / {:.0} / {:.0} µs |",
        pct(&tokens.lat, 0.5),
        pct(&tokens.lat, 0.99),
        pct(&tokens.lat, 1.0)
    );
    println!("| `auth_failure` × {clients} (same token): LWA refresh requests | {refreshes} |");
    println!(
        "| `auth_failure`: socket latency median / p99 / max | {:.0} / {:.0} / {:.0} µs ({} turned away) |",
        pct(&reports.lat, 0.5),
        pct(&reports.lat, 0.99),
        pct(&reports.lat, 1.0),
        reports.turned_away
    );
    println!(
        "| all reports answered / new token served | {:.0} ms / {:.0} ms after the first report |",
        reports.wall.as_secs_f64() * 1e3,
        new_token_after.as_secs_f64() * 1e3
    );
}
