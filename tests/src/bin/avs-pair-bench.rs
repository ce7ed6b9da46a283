//! `avs-pair-bench`: the numbers we steer by, measured on the real system in network namespaces.
//!
//! - N pairings (default 50) over mDNS between a speaker and a laptop namespace: median, p90 and
//!   max of each step the companion times (discovery, connect, handshake, device info, scripted
//!   login, exchange + result), the login and exchange cut finer, and of the total;
//! - `auth_token()` over the agent's local socket: median and p99 of 1,000 calls;
//! - the refresh storm: C concurrent callers report the same token as refused by AVS → how many
//!   refresh requests reach LWA (from the emulator's request log).
//!
//! Prints a Markdown table on stdout. Needs root (network namespaces) and the built binaries
//! (`cargo build -p lwa-emulator -p device-agent -p companion-app --bins`).
//! Usage: `avs-pair-bench [--warm [--idle-ms MS]] [--no-oneshot] [PAIRINGS] [STORM_CALLERS ≤ 16]`.
//! Cold (default): each companion starts right after the window (re)opened, i.e. within mdns-sd's 1 s answer
//! rate-limit after the re-announcement (~1.07 s discovery). `--warm`: the agent advertises,
//! idle, for 3 s first (the usual case for a person; `--idle-ms` changes the 3 s).
//! `--no-oneshot`: the companion discovers with the mDNS browse alone, without its one-shot
//! query (discovery as it was before the query; same binary, for a fair comparison).
//! The breakdown cuts the sign-in at the sign-in URL event and the exchange at the speaker's
//! progress events, and prints median, p90 and max of each part.

use std::path::Path;
use std::time::{Duration, Instant};

use avs_pair_tests::bench_args::positional;
use avs_pair_tests::netns::LINK_NAME;
use avs_pair_tests::netns::{TestNet, Unavailable};
use avs_pair_tests::stack::{AgentProcess, StackError};
use avs_pair_tests::world::{World, WorldError, ALICE, CODE};
use companion_app::discovery::MdnsOptions;
use companion_app::error::PairError;
use companion_app::pairing::{pair, PairEvent, PairReport, Step, Target};
use lwa_emulator::RunningEmulator;
use shared_protocol::message::{PairingWindow, ProgressStage};
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

/// Median, p90 and max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (
        pct(&v, 0.5),
        pct(&v, 0.9),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

/// The rows of the breakdown, in pairing order: the companion's steps, with the sign-in and the
/// exchange cut at the events the companion hears (the sign-in URL; the speaker's progress).
const ROWS: [&str; 11] = [
    "discovery (mDNS)",
    "connect (TCP + Hellos)",
    "handshake (SPAKE2 + confirmations)",
    "device info (PKCE challenge, connectivity check)",
    "login: listener + browser process started",
    "login: browser signs in, redirect captured",
    "exchange: handover until the speaker starts",
    "exchange: POST /auth/o2/token (agent → LWA)",
    "exchange: GET /user/profile",
    "exchange: tokens stored (fsyncs) + result",
    "**total** (companion start → tokens stored)",
];

type Events = Vec<(Instant, PairEvent)>;

/// One pairing's breakdown (ms per [`ROWS`] entry; NaN when an event did not come).
fn breakdown(report: &PairReport, events: &Events) -> Vec<f64> {
    let step = |s: Step| {
        report
            .timings
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(f64::NAN, |(_, ms)| *ms)
    };
    let at =
        |pred: &dyn Fn(&PairEvent) -> bool| events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t);
    let between = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64() * 1000.0,
        _ => f64::NAN,
    };
    let started =
        |s: Step| at(&move |e| matches!(e, PairEvent::StepStarted { step } if *step == s));
    let done = |s: Step| at(&move |e| matches!(e, PairEvent::StepDone { step, .. } if *step == s));
    let stage =
        |g: ProgressStage| at(&move |e| matches!(e, PairEvent::Progress { stage } if *stage == g));
    let url = at(&|e| matches!(e, PairEvent::LoginUrl { .. }));
    let received = stage(ProgressStage::Received);
    let exchanging = stage(ProgressStage::ExchangingCode);
    let profile = stage(ProgressStage::FetchingProfile);
    let storing = stage(ProgressStage::StoringTokens);
    vec![
        step(Step::Discovery),
        step(Step::Connect),
        step(Step::Handshake),
        step(Step::DeviceInfo),
        between(started(Step::Login), url),
        between(url, done(Step::Login)),
        between(started(Step::Exchange), received.or(exchanging)),
        between(exchanging, profile.or(storing)),
        between(profile, storing),
        between(storing, done(Step::Exchange)),
        report.total_millis,
    ]
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

/// One pairing's limit.
const PAIRING_LIMIT: Duration = Duration::from_secs(60);

/// What the command line asks for.
struct Options {
    /// `--warm`: before each pairing the agent advertises, idle, for `idle` (a person opening
    /// the app a few seconds after the window opened); default cold: the companion starts right
    /// after the window (re)opened.
    warm: bool,
    /// `--idle-ms N`: how long a warm pairing's speaker idles first (default [`WARM_IDLE`]).
    idle: Duration,
    /// Not `--no-oneshot`: the companion's one-shot query as well as its browse.
    oneshot: bool,
    pairings: usize,
    callers: usize,
}

fn options() -> Options {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let idle = all
        .iter()
        .position(|a| a == "--idle-ms")
        .and_then(|i| all.get(i + 1))
        .and_then(|v| v.parse().ok())
        .map_or(WARM_IDLE, Duration::from_millis);
    let mut args: Vec<String> = Vec::new();
    let mut it = all.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--warm" | "--no-oneshot" => {}
            "--idle-ms" => {
                it.next();
            }
            _ => args.push(a.clone()),
        }
    }
    Options {
        warm: all.iter().any(|a| a == "--warm"),
        idle,
        oneshot: !all.iter().any(|a| a == "--no-oneshot"),
        pairings: positional(&args, 0, 50),
        // The agent's local API serves at most 32 clients at once and 16 per uid (more are
        // turned away); the bench's callers are one uid, so the storm stays within that: each
        // caller holds one connection. 1,000 staged callers: `avs-api-bench`.
        callers: positional(&args, 1, 16).min(16),
    }
}

fn run() -> Result<(), BenchError> {
    let opts = options();
    TestNet::check_available()?;
    avs_pair_tests::cleanup::install_signal_handler();
    let w = World::new(&["speaker"], |b| b)?;
    let a = w.start_agent("speaker", &w.agent_options("speaker"))?;
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); ROWS.len()];
    for i in 0..opts.pairings {
        for (row, ms) in rows.iter_mut().zip(one_pairing(&w, &a, i, &opts)?) {
            row.push(ms);
        }
        if (i + 1) % 10 == 0 {
            eprintln!("pairings: {}/{}", i + 1, opts.pairings);
        }
    }
    let socket = a.socket.clone();
    let emu = w.emu();
    let callers = opts.callers;
    let (lat, storm_requests) = w.on_host("speaker", || async move {
        let lat = token_latency(&socket).await?;
        let n = refresh_storm(&socket, emu, callers).await?;
        Ok::<_, BenchError>((lat, n))
    })??;
    print_pairings(&opts, rows);
    print_measures(&opts, lat, storm_requests);
    Ok(())
}

/// Pairing `i` (the window reopened first, after the one before), timed per [`ROWS`] entry.
fn one_pairing(
    w: &World,
    a: &AgentProcess,
    i: usize,
    opts: &Options,
) -> Result<Vec<f64>, BenchError> {
    if i > 0 {
        // The previous pairing has closed the window (the agent may say so a moment after
        // the companion has its result): reopen only then, or the reopen can be undone.
        w.wait_status(a, Duration::from_secs(5), |s| {
            s.paired && !matches!(s.window, PairingWindow::Open { .. })
        })?;
        a.cli(&w.bins.agent, "pair")?;
    }
    if opts.warm {
        // The scenario itself (an idle, advertising speaker), not a wait for an event.
        std::thread::sleep(opts.idle);
    }
    let pair_opts = w.pair_options(ALICE, CODE)?;
    let target = Target::Discover {
        options: MdnsOptions {
            interfaces: Some(vec![LINK_NAME.into()]),
            oneshot: opts.oneshot,
            ..MdnsOptions::default()
        },
        device: Some(a.device_id.clone()),
        timeout: Duration::from_secs(10),
    };
    let (r, events) = w.on_laptop(move || async move {
        let mut events: Events = Vec::new();
        let r = tokio::time::timeout(
            PAIRING_LIMIT,
            pair(target, pair_opts, &mut |e| events.push((Instant::now(), e))),
        )
        .await;
        (r, events)
    })?;
    let r = r
        .map_err(|_| WorldError::PairingHung(PAIRING_LIMIT))?
        .map_err(|source| BenchError::Pairing {
            index: i,
            source: Box::new(source),
            log: a.process.tail(20),
        })?;
    Ok(breakdown(&r, &events))
}

/// `auth_token()` over the local socket, 1,000 times: each call's time in µs.
async fn token_latency(socket: &Path) -> Result<Vec<f64>, BenchError> {
    let mut lat = Vec::new();
    for _ in 0..1000 {
        let t0 = Instant::now();
        let v = op_for("auth_token latency", socket, r#"{"op":"token"}"#).await?;
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
        if v["type"] != "token" {
            return Err(BenchError::Answer {
                what: "token op",
                answer: v,
            });
        }
    }
    Ok(lat)
}

/// `callers` report the current token as refused at once; how many refresh requests reached
/// the emulator by the time the new token is served.
async fn refresh_storm(
    socket: &Path,
    emu: &RunningEmulator,
    callers: usize,
) -> Result<usize, BenchError> {
    let v = op_for("token before the storm", socket, r#"{"op":"token"}"#).await?;
    let token = v["access_token"].as_str().unwrap_or_default().to_owned();
    emu.clear_requests();
    let line = serde_json::json!({"op": "auth_failure", "token": token}).to_string();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let socket = socket.to_owned();
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
        let v = op_for("token after the storm", socket, r#"{"op":"token"}"#).await?;
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
    Ok(emu
        .requests()
        .iter()
        .filter(|r| r.is_token_grant("refresh_token"))
        .count())
}

/// The mode line, the breakdown table and the slow discoveries.
fn print_pairings(opts: &Options, rows: Vec<Vec<f64>>) {
    println!(
        "{} mode{}: {}",
        if opts.warm { "warm" } else { "cold" },
        if opts.oneshot {
            ""
        } else {
            " (browse only, --no-oneshot)"
        },
        if opts.warm {
            "the agent advertised, idle, before each companion started"
        } else {
            "each companion started right after the window (re)opened"
        }
    );
    println!();
    println!("| step | median (ms) | p90 (ms) | max (ms) |");
    println!("|---|---:|---:|---:|");
    let slow: Vec<usize> = rows[0]
        .iter()
        .enumerate()
        .filter(|(_, ms)| **ms > 500.0)
        .map(|(i, _)| i)
        .collect();
    for (name, v) in ROWS.iter().zip(rows) {
        let (m, p90, max) = spread(v.into_iter().filter(|x| !x.is_nan()).collect());
        println!("| {name} | {m:.1} | {p90:.1} | {max:.1} |");
    }
    println!();
    println!(
        "discovery over 500 ms (the ~1.07 s case): {} of {} (pairings {slow:?})",
        slow.len(),
        opts.pairings
    );
    println!();
}

/// The table of the other measures.
fn print_measures(opts: &Options, lat: Vec<f64>, storm_requests: usize) {
    let (m, _, p99) = stats(lat);
    let (pairings, callers) = (opts.pairings, opts.callers);
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| pairings | {pairings} |");
    println!("| `auth_token()` over the local socket, median | {m:.0} µs |");
    println!("| `auth_token()` over the local socket, p99 | {p99:.0} µs |");
    println!("| refresh storm: {callers} concurrent callers → token requests | {storm_requests} |");
}
