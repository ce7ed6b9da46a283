//! Attacks from the same network: a rogue client in the laptop namespace, talking to a real
//! `avs-device-agent` in the speaker namespace across the veth, without the setup code.
//!
//! - garbage, oversized, out-of-order plain frames and random PAKE messages: nothing accepted,
//!   no challenge or token in anything the agent sends back, LWA never contacted;
//! - a captured real session replayed byte for byte: refused, no challenge learnt;
//! - 20 wrong codes close the window, and the lockout survives an agent restart (the in-process
//!   version is in device-agent's own tests; this one goes through the process and the network);
//! - twenty wrong codes lock the window across a SIGKILL; only the pairing button reopens it;
//! - twelve reconnecting idle attackers from three addresses plus a flood of 1,000 connections,
//!   all during the pairing, don't cost the owner's first attempt;
//! - idle attackers from eight addresses (more than `max_pending / max_pending_per_source`),
//!   holding and re-taking every pending place, don't keep the owner out either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use avs_pair_tests::companion::{open_session, try_code};
use avs_pair_tests::netns::LINK_NAME;
use avs_pair_tests::require_netns;
use avs_pair_tests::stack::{AgentOptions, AgentProcess};
use avs_pair_tests::world::{World, WorldError, ALICE, CODE, WRONG_CODE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use companion_app::error::PairError;
use companion_app::link::LinkError;
use companion_app::pairing::{PairReport, Target};
use lwa_emulator::Endpoint;
use shared_protocol::lwa::AuthState;
use shared_protocol::message::{ErrorKind, Hello, PairingWindow, PlainMessage, Role};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const LIMIT: Duration = Duration::from_secs(60);

fn world() -> World {
    World::new(&["speaker"], |b| b).unwrap_or_else(|e| panic!("test world: {e}"))
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn json_frame(m: &PlainMessage) -> Vec<u8> {
    frame(&serde_json::to_vec(m).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `frames` (ignoring write errors: the agent may hang up early) and reads everything
/// the agent sends until it closes, bounded by 15 s. Returns the raw bytes and whether it closed.
async fn converse(addr: SocketAddr, frames: Vec<Vec<u8>>) -> (Vec<u8>, bool) {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let (mut r, mut wr) = s.split();
    let reader = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let writer = async {
        for f in frames {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
        // Done talking: half-close, as a client that gives up would.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await;
    };
    let both = async {
        tokio::select! {
            r = reader => r,
            () = writer => unreachable!(),
        }
    };
    tokio::time::timeout(Duration::from_secs(15), both)
        .await
        .unwrap_or((Vec::new(), false))
}

/// Splits what the agent sent into frames and parses each as a plain message (sealed frames
/// won't parse and come back as `None`).
fn agent_frames(mut bytes: &[u8]) -> Vec<Option<PlainMessage>> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + len {
            break;
        }
        out.push(serde_json::from_slice(&bytes[4..4 + len]).ok());
        bytes = &bytes[4 + len..];
    }
    out
}

fn assert_learnt_nothing(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    for secret in [
        "challenge",
        "session_id",
        "access_token",
        "refresh_token",
        "atza|",
        "atzr|",
    ] {
        assert!(
            !text.contains(secret),
            "{what}: the agent sent {secret:?}: {text}"
        );
    }
    for f in agent_frames(bytes) {
        match f {
            Some(
                PlainMessage::Hello(_) | PlainMessage::PakeReply { .. } | PlainMessage::Error(_),
            ) => {}
            other => panic!("{what}: unexpected frame from the agent: {other:?}"),
        }
    }
}

/// A well-formed SPAKE2 side-A message that no setup code produced: the side byte `A` and a
/// valid Ed25519 point (the base point), so the agent gets as far as answering it.
fn not_from_the_code() -> Vec<u8> {
    let mut m = vec![b'A', 0x58];
    m.extend_from_slice(&[0x66; 31]);
    m
}

fn hello() -> PlainMessage {
    PlainMessage::Hello(Hello::new(Role::Companion, "rogue 0.0.1"))
}

/// `rest` after a well-formed Hello, so the agent reads on past its first check.
fn after_hello(rest: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    std::iter::once(json_frame(&hello())).chain(rest).collect()
}

/// A PAKE start carrying `pake`.
fn pake_start(pake: &[u8]) -> Vec<u8> {
    json_frame(&PlainMessage::PakeStart { pake: b64(pake) })
}

/// A PAKE confirmation carrying `confirm`.
fn pake_confirm(confirm: &[u8]) -> Vec<u8> {
    json_frame(&PlainMessage::PakeConfirm {
        confirm: b64(confirm),
    })
}

#[test]
fn a_rogue_client_without_the_code_gets_nothing_accepted() {
    require_netns!();
    let w = world();
    // The owner pairs right after the rogue's guesses: without this, the 1 s pacing answers
    // the owner `busy` (pacing is tested in device-agent/tests/link.rs).
    let (a, addr) = w
        .start_tuned_agent("speaker", AgentOptions::unpaced)
        .unwrap();

    let runs: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("garbage", vec![frame(&random_bytes(200, 1))]),
        (
            "oversized length",
            vec![u32::MAX.to_be_bytes().to_vec(), random_bytes(64, 2)],
        ),
        (
            "truncated frame",
            vec![frame(b"{\"type\":\"hello\"")[..10].to_vec()],
        ),
        (
            "sealed request in the clear",
            after_hello([frame(br#"{"type":"get_device_info"}"#)]),
        ),
        (
            "confirmation without a PAKE",
            after_hello([pake_confirm(&random_bytes(32, 3))]),
        ),
        (
            "random PAKE messages",
            after_hello([
                pake_start(&not_from_the_code()),
                pake_confirm(&random_bytes(32, 5)),
                frame(&random_bytes(120, 6)),
                frame(br#"{"type":"provide_authorization"}"#),
            ]),
        ),
        (
            "random-bytes PAKE message",
            after_hello([pake_start(&random_bytes(33, 4))]),
        ),
        (
            "malformed PAKE message",
            after_hello([json_frame(&PlainMessage::PakeStart { pake: "!!!".into() })]),
        ),
    ];
    let results = w
        .on_laptop(move || async move {
            let mut out = Vec::new();
            for (name, frames) in runs {
                out.push((name, converse(addr, frames).await));
            }
            out
        })
        .unwrap();
    for (name, (bytes, closed)) in &results {
        assert!(closed, "{name}: the agent ends the connection");
        assert_learnt_nothing(name, bytes);
    }
    // The random PAKE run got a PakeReply (public by design) and then an error or a hang-up.
    let pake = &results
        .iter()
        .find(|(n, _)| *n == "random PAKE messages")
        .unwrap()
        .1
         .0;
    let frames = agent_frames(pake);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Some(PlainMessage::PakeReply { .. }))),
        "{frames:?}"
    );
    assert!(w.emu().requests().is_empty(), "LWA never contacted");
    let s = w.status(&a).unwrap();
    assert!(!s.paired);
    assert_eq!(s.auth_state, AuthState::Uninitialized);
    assert!(matches!(s.window, PairingWindow::Open { .. }), "{s:?}");
    // The agent is unharmed: the owner still pairs.
    let opts = w.pair_options(ALICE, CODE).unwrap();
    w.pair_target(Target::Address(vec![addr]), opts, LIMIT)
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "legit pairing after the attack: {e}\n{}",
                a.process.tail(30)
            )
        });
}

#[test]
fn a_replayed_session_is_refused_and_reveals_nothing() {
    require_netns!();
    let w = world();
    let (a, addr) = w.start_default_agent("speaker").unwrap();
    let captured = w
        .on_laptop(move || async move {
            // A tap between the real companion and the agent records the companion's bytes.
            let tap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tap_addr = tap.local_addr().unwrap();
            let captured = Arc::new(Mutex::new(Vec::new()));
            let sink = captured.clone();
            let relay = tokio::spawn(async move {
                let (mut c, _) = tap.accept().await.unwrap();
                let mut s = TcpStream::connect(addr).await.unwrap();
                let (mut cr, mut cw) = c.split();
                let (mut sr, mut sw) = s.split();
                let up = async {
                    let mut buf = [0u8; 4096];
                    loop {
                        match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                sink.lock().unwrap().extend_from_slice(&buf[..n]);
                                if sw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! { () = up => {}, _ = down => {} }
            });
            // The real owner: handshake with the right code, asks for device info, leaves.
            let mut session = open_session(&[tap_addr], CODE).await.unwrap();
            let info = session.device_info().await.unwrap();
            drop(info);
            drop(session);
            let _ = tokio::time::timeout(Duration::from_secs(5), relay).await;
            let captured = captured.lock().unwrap().clone();
            captured
        })
        .unwrap();
    assert!(
        captured.len() > 100,
        "captured a real session ({} bytes)",
        captured.len()
    );
    // The owner's DeviceInfo ran the agent's connectivity check (one request to LWA's host,
    // answered before DeviceInfo is sent): that shows the request log sees the agent. No code
    // was exchanged. The log is emptied so that what follows is the replay's alone.
    let owner = w.emu().requests();
    assert!(
        !owner.is_empty(),
        "the owner's connectivity check reached LWA"
    );
    assert!(
        !owner
            .iter()
            .any(|r| r.endpoint == Some(Endpoint::Token) && r.method == "POST"),
        "no code exchange from the owner's session: {owner:?}"
    );
    w.emu().clear_requests();
    // Replay every byte the owner sent, on a fresh connection.
    let (bytes, closed) = w
        .on_laptop(move || async move { converse(addr, vec![captured]).await })
        .unwrap();
    assert!(closed, "the agent ends the replayed session");
    assert_learnt_nothing("replay", &bytes);
    // Not even its replayed GetDeviceInfo ran (that would have run the connectivity check).
    let replayed = w.emu().requests();
    assert!(
        replayed.is_empty(),
        "LWA contacted by the replay: {replayed:?}"
    );
    assert!(!w.status(&a).unwrap().paired);
}

#[test]
fn twenty_wrong_codes_close_the_window_even_across_a_restart() {
    require_netns!();
    let w = world();
    let mut opts = w.agent_options("speaker");
    // Guesses back to back: the 1 s pacing has its own test in device-agent/tests/link.rs.
    opts.unpaced();
    let mut a = w.start_agent("speaker", &opts).unwrap();
    let addr = w.link_addr("speaker", &a).unwrap();
    let outcomes = w
        .on_laptop(move || async move {
            let mut v = Vec::new();
            for _ in 0..20 {
                v.push(try_code(addr, WRONG_CODE).await);
            }
            // Now even the right code is refused.
            v.push(try_code(addr, CODE).await);
            v
        })
        .unwrap();
    for (i, o) in outcomes[..20].iter().enumerate() {
        assert!(
            matches!(o, Err(LinkError::WrongSetupCode { .. })),
            "attempt {}: {o:?}",
            i + 1
        );
    }
    assert!(
        matches!(&outcomes[20], Err(LinkError::Refused(b)) if b.kind == ErrorKind::LockedOut),
        "after 20: {:?}",
        outcomes[20]
    );
    let s = w.status(&a).unwrap();
    assert!(matches!(s.window, PairingWindow::LockedOut { .. }), "{s:?}");

    // Pull the plug (SIGKILL: no shutdown code runs): the count was persisted, the lockout holds.
    a.process.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    a.process.wait_timeout(Duration::from_secs(5)).unwrap();
    drop(a);
    // This time with a pairing button: every line appended to `presses` is a press.
    let presses = w.dir.path().join("presses");
    std::fs::write(&presses, b"").unwrap();
    opts.extra_toml.push(format!(
        "button_hook = \"exec tail -n 0 -F {}\"",
        presses.display()
    ));
    let mut a = w.start_agent("speaker", &opts).unwrap();
    let addr = w.link_addr("speaker", &a).unwrap();
    let s = w.status(&a).unwrap();
    assert!(
        matches!(s.window, PairingWindow::LockedOut { .. }),
        "after restart: {s:?}"
    );
    let after = w
        .on_laptop(move || async move { try_code(addr, CODE).await })
        .unwrap();
    assert!(
        matches!(&after, Err(LinkError::Refused(b)) if b.kind == ErrorKind::LockedOut),
        "{after:?}"
    );
    // Reopening with nobody present (the local API, as `avs-device-agent pair`) is refused,
    // with exit code 1 and the reason.
    let out = std::process::Command::new(&w.bins.agent)
        .args(["pair", "--json", "--socket"])
        .arg(&a.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(r#""kind":"locked_out""#), "{stdout}");
    assert!(!w.status(&a).unwrap().paired);

    // The owner at the speaker presses the button: the window opens at once, fresh budget,
    // and the owner pairs at the first try.
    std::fs::write(&presses, b"press\n").unwrap();
    let s = w
        .wait_status(&a, Duration::from_secs(10), |s| {
            matches!(s.window, PairingWindow::Open { .. })
        })
        .unwrap_or_else(|e| panic!("the button did not reopen: {e}\n{}", a.process.tail(20)));
    assert!(matches!(s.window, PairingWindow::Open { .. }));
    let report = w
        .pair_target(
            Target::Address(vec![addr]),
            w.pair_options(ALICE, CODE).unwrap(),
            LIMIT,
        )
        .unwrap();
    let report = report.unwrap_or_else(|e| panic!("pairing after the button: {e}"));
    assert_eq!(report.device_id.as_str(), a.device_id);
    a.process.terminate(Duration::from_secs(5)).unwrap();
}

/// A connection to `addr` from `from` (an address of this namespace), or from the default
/// address.
async fn connect_from(from: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let Some(ip) = from else {
        return TcpStream::connect(addr).await;
    };
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// Tells the test thread that an attacker's count moved, so it waits for the attack to be in
/// full swing on a condition variable, not by spinning (two cores, shared with the agent and
/// the attackers).
#[derive(Default)]
struct Progress {
    lock: Mutex<()>,
    moved: Condvar,
}

impl Progress {
    fn tell(&self) {
        // Taking the lock orders this after a waiter's check of the counts: no lost wake-up.
        drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
        self.moved.notify_all();
    }

    /// Waits until `done()`, at most `limit`; whether it came true.
    fn wait_until(&self, limit: Duration, done: impl Fn() -> bool) -> bool {
        let held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (_held, waited) = self
            .moved
            .wait_timeout_while(held, limit, |_| !done())
            .unwrap_or_else(PoisonError::into_inner);
        !waited.timed_out()
    }
}

/// Connections an attacker made; each one is told to the [`Progress`].
struct Tally {
    n: AtomicUsize,
    progress: Arc<Progress>,
}

impl Tally {
    fn new(progress: &Arc<Progress>) -> Arc<Self> {
        Arc::new(Self {
            n: AtomicUsize::new(0),
            progress: progress.clone(),
        })
    }

    fn add(&self) {
        self.n.fetch_add(1, Ordering::Relaxed);
        self.progress.tell();
    }

    fn get(&self) -> usize {
        self.n.load(Ordering::Relaxed)
    }
}

/// The owner's ONE pairing attempt with `addr`, no retry: its report and how long it took.
fn one_attempt(
    w: &World,
    addr: SocketAddr,
) -> (Result<Result<PairReport, PairError>, WorldError>, Duration) {
    let started = Instant::now();
    let report = w.pair_target(
        Target::Address(vec![addr]),
        w.pair_options(ALICE, CODE).unwrap(),
        LIMIT,
    );
    (report, started.elapsed())
}

/// Asserts that the owner's attempt linked agent `a` (with the agent's log if not).
fn owner_linked(report: Result<Result<PairReport, PairError>, WorldError>, a: &AgentProcess) {
    let report = report.unwrap().unwrap_or_else(|e| {
        panic!(
            "the owner's first attempt under attack: {e}\n{}",
            a.process.tail(30)
        )
    });
    assert_eq!(report.device_id.as_str(), a.device_id);
}

/// Keeps one idle connection open to `addr` from this namespace, reconnecting as soon as the
/// agent cuts it, until `stop`. Counts connections made.
async fn idle_attacker(addr: SocketAddr, stop: Arc<AtomicBool>, made: Arc<Tally>) {
    idle_attacker_from(None, addr, stop, made).await
}

/// [`idle_attacker`] from the address `from` (default: the namespace's own).
async fn idle_attacker_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    made: Arc<Tally>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(2), connect_from(from, addr)).await
        else {
            continue;
        };
        made.add();
        // A frame header promising 1,000 bytes that never come (slowloris), then silence until
        // the agent hangs up.
        let _ = s.write_all(&1000u32.to_be_bytes()).await;
        let mut b = [0u8; 256];
        loop {
            tokio::select! {
                r = s.read(&mut b) => if matches!(r, Ok(0) | Err(_)) { break },
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if stop.load(Ordering::Relaxed) { return }
                }
            }
        }
    }
}

/// The 1,000-connection flood: 100 workers, each opening a connection, holding it until the
/// agent answers or 2 s pass, and opening the next; on until `stop` once 1,000 are done.
/// Counts connections opened.
async fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, opened: Arc<Tally>) {
    let mut workers = Vec::new();
    for _ in 0..100 {
        let (stop, opened) = (stop.clone(), opened.clone());
        workers.push(tokio::spawn(async move {
            while opened.get() < 1000 || !stop.load(Ordering::Relaxed) {
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
                else {
                    continue;
                };
                opened.add();
                let mut b = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

/// Issue 12.1 / 18.7: twelve idle attackers from three addresses, each reconnecting the moment
/// it is cut, and the 1,000-connection flood run DURING the owner's pairing, with the default
/// timeouts. The owner's first attempt must succeed. (On the old listener, 4 slots each held
/// for the whole 30 s handshake timeout, the attackers kept every slot and the owner got busy.)
#[test]
fn idle_attackers_and_a_flood_during_the_pairing_do_not_cost_the_owner_a_try() {
    require_netns!();
    let w = World::new(&["speaker", "mallory1", "mallory2", "mallory3"], |b| b)
        .unwrap_or_else(|e| panic!("test world: {e}"));
    let (a, addr) = w.start_default_agent("speaker").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let idle_made = Tally::new(&progress);
    let flooded = Tally::new(&progress);
    let (report, during, idle_during, took) = std::thread::scope(|scope| {
        let mut attackers = Vec::new();
        for (i, host) in ["mallory1", "mallory2", "mallory3"].into_iter().enumerate() {
            let (w, stop, idle_made, flooded) =
                (&w, stop.clone(), idle_made.clone(), flooded.clone());
            attackers.push(scope.spawn(move || {
                w.on_host(host, move || async move {
                    let mut tasks = Vec::new();
                    for _ in 0..4 {
                        tasks.push(tokio::spawn(idle_attacker(
                            addr,
                            stop.clone(),
                            idle_made.clone(),
                        )));
                    }
                    if i == 0 {
                        tasks.push(tokio::spawn(flood(addr, stop.clone(), flooded.clone())));
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                })
                .unwrap()
            }));
        }
        // Wait until the attack is in full swing: every attacker connected, the flood going.
        assert!(
            progress.wait_until(Duration::from_secs(20), || idle_made.get() >= 12
                && flooded.get() >= 100),
            "the attack did not start"
        );
        let (idle_before, flood_before) = (idle_made.get(), flooded.get());
        let (report, took) = one_attempt(&w, addr);
        let during = flooded.get() - flood_before;
        let idle_during = idle_made.get() - idle_before;
        stop.store(true, Ordering::Relaxed);
        for t in attackers {
            t.join().unwrap();
        }
        (report, during, idle_during, took)
    });
    let flood_total = flooded.get();
    eprintln!(
        "the first (only) pairing attempt ended after {took:?}; flood: {flood_total} connections ({during} during \
         the pairing); idle attackers: {} connections ({idle_during} during the pairing)",
        idle_made.get()
    );
    assert!(
        flood_total >= 1000,
        "the flood really happened: {flood_total}"
    );
    assert!(during > 0, "the flood overlapped the pairing");
    owner_linked(report, &a);
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}

/// docs/protocol.md §16, "Connections by phase": idle attackers from eight addresses of one
/// machine (more than `max_pending / max_pending_per_source` = 4), two per address, each
/// reconnecting the moment it is cut, so every pending place is held and re-taken at once.
/// The owner's first attempt must link, in bounded time. (With the old refuse-when-full budget
/// the owner got `busy` for as long as the attack went on.)
#[test]
fn idle_attackers_from_more_addresses_than_the_pending_budget_do_not_keep_the_owner_out() {
    require_netns!();
    let w =
        World::new(&["speaker", "mallory"], |b| b).unwrap_or_else(|e| panic!("test world: {e}"));
    // Eight more addresses on mallory's link, from the free part of the /28.
    let host = w.net.host("mallory").unwrap().clone();
    assert_eq!(host.prefix_len, 28, "room for eight more addresses");
    let base = u32::from(host.addr) & !0xf;
    let sources: Vec<IpAddr> = (4..12)
        .map(|n| IpAddr::V4(Ipv4Addr::from(base + n)))
        .collect();
    for ip in &sources {
        let cidr = format!("{ip}/28");
        w.net
            .exec("mallory", "ip", &["addr", "add", &cidr, "dev", LINK_NAME])
            .unwrap();
    }
    let (a, addr) = w.start_default_agent("speaker").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Progress::default());
    let made: Vec<Arc<Tally>> = (0..sources.len() * 2)
        .map(|_| Tally::new(&progress))
        .collect();
    let total = |made: &[Arc<Tally>]| made.iter().map(|m| m.get()).sum::<usize>();
    let (report, took, during) = std::thread::scope(|scope| {
        let attack = {
            let (w, stop, made, sources) = (&w, stop.clone(), made.clone(), sources.clone());
            scope.spawn(move || {
                w.on_host("mallory", move || async move {
                    let tasks: Vec<_> = made
                        .iter()
                        .enumerate()
                        .map(|(i, m)| {
                            tokio::spawn(idle_attacker_from(
                                Some(sources[i / 2]),
                                addr,
                                stop.clone(),
                                m.clone(),
                            ))
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                })
                .unwrap()
            })
        };
        // In full swing: every attacker has been cut at least once and came back (the old
        // budget cuts the held ones at the 5 s Hello deadline and refuses the others).
        assert!(
            progress.wait_until(Duration::from_secs(20), || made
                .iter()
                .all(|m| m.get() >= 2)),
            "the attack did not start"
        );
        let before = total(&made);
        let (report, took) = one_attempt(&w, addr);
        let during = total(&made) - before;
        stop.store(true, Ordering::Relaxed);
        attack.join().unwrap();
        (report, took, during)
    });
    eprintln!(
        "the first (only) pairing attempt ended after {took:?}; idle attackers from {} addresses: \
         {} connections ({during} during the pairing)",
        sources.len(),
        total(&made)
    );
    owner_linked(report, &a);
    assert!(
        took < Duration::from_secs(30),
        "linked, but only after {took:?}"
    );
    assert!(during > 0, "the attack went on during the pairing");
    assert!(
        a.process
            .stderr_has("closed some to make room for newer ones"),
        "the attackers filled the pending budget (the agent evicted)\n{}",
        a.process.tail(30)
    );
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}
