//! Attacks from the same network: a rogue client in the laptop namespace, talking to a real
//! `avs-device-agent` in the speaker namespace across the veth, without the setup code.
//!
//! - garbage, oversized, out-of-order plain frames and random PAKE messages: nothing accepted,
//!   no challenge or token in anything the agent sends back, LWA never contacted;
//! - a captured real session replayed byte for byte: refused, no challenge learnt;
//! - 20 wrong codes close the window, and the lockout survives an agent restart (the in-process
//!   version is in device-agent's own tests; this one goes through the process and the network);
//! - a slowloris plus a flood of 1,000 connections don't stop a legitimate pairing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use avs_pair_tests::require_netns;
use avs_pair_tests::stack::AgentProcess;
use avs_pair_tests::world::{World, ALICE, CODE, WRONG_CODE};
use companion_app::error::PairError;
use companion_app::link::{open_tcp, LinkError, LinkTimeouts};
use companion_app::pairing::Target;
use shared_protocol::lwa::AuthState;
use shared_protocol::message::{ErrorKind, Hello, PairingWindow, PlainMessage, Role};
use shared_protocol::setup_code::SetupCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(60);

fn world() -> World {
    World::new(&["speaker"], |b| b).unwrap_or_else(|e| panic!("test world: {e}"))
}

fn agent_addr(w: &World, a: &AgentProcess) -> SocketAddr {
    SocketAddr::from((w.net.host("speaker").unwrap().addr, a.port()))
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
    // base64url without padding, by hand (no extra dependency for a test helper).
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
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

#[test]
fn a_rogue_client_without_the_code_gets_nothing_accepted() {
    require_netns!();
    let w = world();
    let a = w
        .start_agent("speaker", &w.agent_options("speaker"))
        .unwrap();
    let addr = agent_addr(&w, &a);

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
            vec![
                json_frame(&hello()),
                frame(br#"{"type":"get_device_info"}"#),
            ],
        ),
        (
            "confirmation without a PAKE",
            vec![
                json_frame(&hello()),
                json_frame(&PlainMessage::PakeConfirm {
                    confirm: b64(&random_bytes(32, 3)),
                }),
            ],
        ),
        (
            "random PAKE messages",
            vec![
                json_frame(&hello()),
                json_frame(&PlainMessage::PakeStart {
                    pake: b64(&not_from_the_code()),
                }),
                json_frame(&PlainMessage::PakeConfirm {
                    confirm: b64(&random_bytes(32, 5)),
                }),
                frame(&random_bytes(120, 6)),
                frame(br#"{"type":"provide_authorization"}"#),
            ],
        ),
        (
            "random-bytes PAKE message",
            vec![
                json_frame(&hello()),
                json_frame(&PlainMessage::PakeStart {
                    pake: b64(&random_bytes(33, 4)),
                }),
            ],
        ),
        (
            "malformed PAKE message",
            vec![
                json_frame(&hello()),
                json_frame(&PlainMessage::PakeStart { pake: "!!!".into() }),
            ],
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
    let a = w
        .start_agent("speaker", &w.agent_options("speaker"))
        .unwrap();
    let addr = agent_addr(&w, &a);
    let (captured, replay) = w
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
            let (client, _) = open_tcp(&[tap_addr], LinkTimeouts::default())
                .await
                .unwrap();
            let mut session = client
                .authenticate(&SetupCode::parse(CODE).unwrap())
                .await
                .unwrap();
            let info = session.device_info().await.unwrap();
            drop(info);
            drop(session);
            let _ = tokio::time::timeout(Duration::from_secs(5), relay).await;
            let captured = captured.lock().unwrap().clone();
            // Replay every byte the owner sent, on a fresh connection.
            let replay = converse(addr, vec![captured.clone()]).await;
            (captured, replay)
        })
        .unwrap();
    assert!(
        captured.len() > 100,
        "captured a real session ({} bytes)",
        captured.len()
    );
    let (bytes, closed) = replay;
    assert!(closed, "the agent ends the replayed session");
    assert_learnt_nothing("replay", &bytes);
    assert!(w.emu().requests().is_empty(), "LWA never contacted");
    assert!(!w.status(&a).unwrap().paired);
}

async fn try_code(addr: SocketAddr, code: &str) -> Result<(), LinkError> {
    let (client, _) = open_tcp(&[addr], LinkTimeouts::default()).await?;
    client
        .authenticate(&SetupCode::parse(code).unwrap())
        .await
        .map(drop)
}

#[test]
fn twenty_wrong_codes_close_the_window_even_across_a_restart() {
    require_netns!();
    let w = world();
    let opts = w.agent_options("speaker");
    let mut a = w.start_agent("speaker", &opts).unwrap();
    let addr = agent_addr(&w, &a);
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
            matches!(o, Err(LinkError::WrongSetupCode)),
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

    // Power-cycle the speaker: the count was persisted, the lockout holds.
    a.process.terminate(Duration::from_secs(5)).unwrap();
    drop(a);
    let a = w.start_agent("speaker", &opts).unwrap();
    let addr = agent_addr(&w, &a);
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
    // The owner can't reopen it early either.
    assert!(
        a.cli(&w.bins.agent, "pair").is_err(),
        "reopen refused while locked out"
    );
    assert!(!w.status(&a).unwrap().paired);
}

#[test]
fn a_slowloris_and_a_connection_flood_do_not_stop_a_legitimate_pairing() {
    require_netns!();
    let w = world();
    let mut o = w.agent_options("speaker");
    // Slow clients are cut after 5 s (default 30 s; the knob is what bounds this attack).
    o.extra_toml.push("handshake_timeout_secs = 5".into());
    let a = w.start_agent("speaker", &o).unwrap();
    let addr = agent_addr(&w, &a);
    // One set of options per attempt (a pairing consumes its options).
    let mut tries: Vec<_> = (0..20)
        .map(|_| w.pair_options(ALICE, CODE).unwrap())
        .collect();
    let (flood_done, report, attempts, took) = w
        .on_laptop(move || async move {
            // Slowloris: 16 connections, each sending a frame header and then one byte a second.
            let mut slow = Vec::new();
            for _ in 0..16 {
                if let Ok(Ok(s)) =
                    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
                {
                    slow.push(tokio::spawn(async move {
                        let mut s = s;
                        let _ = s.write_all(&1000u32.to_be_bytes()).await;
                        for _ in 0..60 {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            if s.write_all(b"{").await.is_err() {
                                break;
                            }
                        }
                    }));
                }
            }
            // Flood: 1,000 connections, 100 at a time, each held until the agent answers or
            // 2 s pass, then dropped.
            let mut flood_done = 0usize;
            for _ in 0..10 {
                let mut batch = Vec::new();
                for _ in 0..100 {
                    batch.push(tokio::spawn(async move {
                        let Ok(Ok(mut s)) =
                            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
                                .await
                        else {
                            return false;
                        };
                        let mut b = [0u8; 64];
                        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await;
                        true
                    }));
                }
                for t in batch {
                    if t.await.unwrap_or(false) {
                        flood_done += 1;
                    }
                }
            }
            // The owner pairs while the slow connections still hang on; retries on Busy as
            // the app's "try again" would.
            let started = Instant::now();
            let mut attempts = 0;
            let report = loop {
                attempts += 1;
                let o = tries.pop().unwrap();
                let r = tokio::time::timeout(
                    LIMIT,
                    companion_app::pairing::pair(Target::Address(vec![addr]), o, &mut |_| {}),
                )
                .await
                .expect("each attempt ends");
                match r {
                    // Busy comes as Error{Busy}, or as a hang-up when the agent closes first.
                    Err(PairError::Link(
                        e @ (LinkError::Refused(_) | LinkError::Closed { .. }),
                    )) if (matches!(&e, LinkError::Refused(b) if b.kind == ErrorKind::Busy)
                        || matches!(&e, LinkError::Closed { .. }))
                        && started.elapsed() < Duration::from_secs(40)
                        && !tries.is_empty() =>
                    {
                        // The app's "try again" button, pressed after a moment.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    other => break other,
                }
            };
            for s in slow {
                s.abort();
            }
            (flood_done, report, attempts, started.elapsed())
        })
        .unwrap();
    eprintln!(
        "flood: {flood_done} connections opened; pairing took {took:?} in {attempts} attempt(s)"
    );
    assert!(flood_done >= 900, "the flood really happened: {flood_done}");
    let report = report
        .unwrap_or_else(|e| panic!("legit pairing under attack: {e}\n{}", a.process.tail(30)));
    assert_eq!(report.device_id.as_str(), a.device_id);
    assert!(took < LIMIT, "{took:?}");
    assert_eq!(w.status(&a).unwrap().auth_state, AuthState::Refreshed);
}
