//! `avs-pair-bench`: the numbers we steer by, measured on the real system in network namespaces.
//!
//! - N pairings (default 50) over mDNS between a speaker and a laptop namespace: median and p95 of
//!   each step the companion times (discovery, connect, handshake, device info, scripted login,
//!   exchange + result) and of the total;
//! - `auth_token()` over the agent's local socket: median and p99 of 1,000 calls;
//! - the refresh storm: C concurrent callers report the same token as refused by AVS → how many
//!   refresh requests reach LWA (from the emulator's request log).
//!
//! Prints a Markdown table on stdout. Needs root (network namespaces) and the built binaries
//! (`cargo build -p lwa-emulator -p device-agent -p companion-app --bins`).
//! Usage: `avs-pair-bench [--warm] [PAIRINGS] [STORM_CALLERS ≤ 16]`. Cold (default): each
//! companion starts right after the window (re)opened, i.e. within mdns-sd's 1 s answer
//! rate-limit after the re-announcement (~1.07 s discovery). `--warm`: the agent advertises,
//! idle, for 3 s first (the usual case for a person).

use std::time::{Duration, Instant};

use avs_pair_tests::netns::{TestNet, Unavailable};
use avs_pair_tests::stack::StackError;
use avs_pair_tests::world::{World, WorldError, ALICE, CODE};
use companion_app::error::PairError;
use companion_app::pairing::Step;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (pct(&v, 0.5), pct(&v, 0.95), pct(&v, 0.99))
}

/// Why the bench stopped.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    World(#[from] WorldError),
    #[error(transparent)]
    Agent(#[from] StackError),
    #[error("pairing {index}: {source}\n{log}")]
    Pairing {
        index: usize,
        source: Box<PairError>,
        log: String,
    },
    #[error("{what}: {source}")]
    Op { what: &'static str, source: OpError },
    #[error("{what}: unexpected answer {answer}")]
    Answer {
        what: &'static str,
        answer: serde_json::Value,
    },
    #[error("a storm caller panicked: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Why one local API request failed.
#[derive(Debug, thiserror::Error)]
enum OpError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no answer in 10 s")]
    NoAnswer,
    #[error("closed")]
    Closed,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

async fn op(socket: &std::path::Path, line: &str) -> Result<serde_json::Value, OpError> {
    let s = tokio::net::UnixStream::connect(socket).await?;
    let (r, mut w) = s.into_split();
    w.write_all(format!("{line}\n").as_bytes()).await?;
    let mut lines = BufReader::new(r).lines();
    let l = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| OpError::NoAnswer)??
        .ok_or(OpError::Closed)?;
    Ok(serde_json::from_str(&l)?)
}

/// [`op`] with what the bench was doing when it failed.
async fn op_for(
    what: &'static str,
    socket: &std::path::Path,
    line: &str,
) -> Result<serde_json::Value, BenchError> {
    op(socket, line)
        .await
        .map_err(|source| BenchError::Op { what, source })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("avs-pair-bench: {e}");
        std::process::exit(1);
    }
}

/// How long the agent advertises untouched before a warm pairing's companion starts: past the
/// ~1 s after its last multicast in which mdns-sd drops answers (and past the second
/// announcement, ~1.1 s after the first).
const WARM_IDLE: Duration = Duration::from_secs(3);

fn run() -> Result<(), BenchError> {
    // `--warm`: before each pairing the agent advertises, idle, for WARM_IDLE (a person opening
    // the app a few seconds after the window opened); default cold: the companion starts
    // right after the window (re)opened.
    let all: Vec<String> = std::env::args().skip(1).collect();
    let warm = all.iter().any(|a| a == "--warm");
    let args: Vec<String> = all.into_iter().filter(|a| a != "--warm").collect();
    let pairings: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    // The agent's local API serves at most 32 clients at once and 16 per uid (more are turned
    // away); the bench's callers are one uid, so the storm stays within that: each caller holds
    // one connection. 1,000 staged callers: `avs-api-bench`.
    let callers: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(16)
        .min(16);
    TestNet::check_available()?;
    avs_pair_tests::cleanup::install_signal_handler();
    let w = World::new(&["speaker"], |b| b)?;
    let a = w.start_agent("speaker", &w.agent_options("speaker"))?;
    let steps = [
        Step::Discovery,
        Step::Connect,
        Step::Handshake,
        Step::DeviceInfo,
        Step::Login,
        Step::Exchange,
    ];
    let mut per_step: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    let mut totals = Vec::new();
    for i in 0..pairings {
        if i > 0 {
            a.cli(&w.bins.agent, "pair")?;
        }
        if warm {
            // The scenario itself (an idle, advertising speaker), not a wait for an event.
            std::thread::sleep(WARM_IDLE);
        }
        let opts = w.pair_options(ALICE, CODE)?;
        let r = w
            .pair_via_mdns(&a.device_id, opts, Duration::from_secs(60))?
            .map_err(|source| BenchError::Pairing {
                index: i,
                source: Box::new(source),
                log: a.process.tail(20),
            })?;
        for (s, ms) in &r.timings {
            if let Some(k) = steps.iter().position(|x| x == s) {
                per_step[k].push(*ms);
            }
        }
        totals.push(r.total_millis);
        if (i + 1) % 10 == 0 {
            eprintln!("pairings: {}/{pairings}", i + 1);
        }
    }

    let socket = a.socket.clone();
    let (lat, storm_requests) = {
        let emu = w.emu();
        w.on_host("speaker", || async move {
            let mut lat = Vec::new();
            for _ in 0..1000 {
                let t0 = Instant::now();
                let v = op_for("auth_token latency", &socket, r#"{"op":"token"}"#).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1e6);
                if v["type"] != "token" {
                    return Err(BenchError::Answer {
                        what: "token op",
                        answer: v,
                    });
                }
            }
            let v = op_for("token before the storm", &socket, r#"{"op":"token"}"#).await?;
            let token = v["access_token"].as_str().unwrap_or_default().to_owned();
            emu.clear_requests();
            let line = serde_json::json!({"op": "auth_failure", "token": token}).to_string();
            let mut tasks = Vec::new();
            for _ in 0..callers {
                let socket = socket.clone();
                let line = line.clone();
                tasks.push(tokio::spawn(async move {
                    op_for("storm auth_failure", &socket, &line).await
                }));
            }
            for t in tasks {
                t.await??;
            }
            // Then ask for the new token until it is served (the refresh runs after the
            // reports are acknowledged), with a deadline.
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                let v = op_for("token after the storm", &socket, r#"{"op":"token"}"#).await?;
                if v["type"] == "token" && v["access_token"].as_str() != Some(token.as_str()) {
                    break;
                }
                if Instant::now() > end {
                    return Err(BenchError::Answer {
                        what: "no fresh token 10 s after the storm",
                        answer: v["type"].clone(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let n = emu
                .requests()
                .iter()
                .filter(|r| r.is_token_grant("refresh_token"))
                .count();
            Ok::<_, BenchError>((lat, n))
        })??
    };

    println!(
        "{} mode: {}",
        if warm { "warm" } else { "cold" },
        if warm {
            "the agent advertised, idle, for 3 s before each companion started"
        } else {
            "each companion started right after the window (re)opened"
        }
    );
    println!();
    println!("| step | median (ms) | p95 (ms) |");
    println!("|---|---:|---:|");
    for (s, v) in steps.iter().zip(per_step) {
        let (m, p95, _) = stats(v);
        println!("| {} | {m:.1} | {p95:.1} |", s.name());
    }
    let (m, p95, _) = stats(totals);
    println!("| **total** (companion start → tokens stored) | {m:.1} | {p95:.1} |");
    println!();
    let (m, _, p99) = stats(lat);
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| pairings | {pairings} |");
    println!("| `auth_token()` over the local socket, median | {m:.0} µs |");
    println!("| `auth_token()` over the local socket, p99 | {p99:.0} µs |");
    println!("| refresh storm: {callers} concurrent callers → token requests | {storm_requests} |");
    Ok(())
}
