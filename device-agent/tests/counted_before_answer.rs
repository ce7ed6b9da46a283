//! Issue 18.14, "counted before answering": the agent answers a PAKE message only after the
//! attempt is on disk. A client takes the agent's PakeReply and the agent is SIGKILLed before any
//! confirmation arrives: after the restart the attempt is still counted.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use device_agent::pairing::{Pairing, PairingConfig};

mod common;
use common::process::{run_command, AgentProcess};
use common::raw;
use common::NO_LWA;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_answered_then_killed_before_the_confirmation_stays_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let agent = AgentProcess::spawn(
        run_command(&state, NO_LWA, "KILL-PAKE-1").stderr(std::process::Stdio::null()),
    );

    let mut s = tokio::net::TcpStream::connect(agent.link()).await.unwrap();
    raw::send_hello(&mut s).await;
    assert_eq!(raw::read_frame(&mut s).await["type"], "hello");
    // A valid group element (the Ed25519 base point) behind spake2's side byte 'A': a guess.
    let mut msg = vec![b'A'];
    msg.extend_from_slice(&[0x58]);
    msg.extend_from_slice(&[0x66; 31]);
    let pake = URL_SAFE_NO_PAD.encode(&msg);
    let start = serde_json::json!({"type":"pake_start","pake":pake});
    raw::send(&mut s, &start).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), raw::read_frame(&mut s))
        .await
        .unwrap();
    assert_eq!(reply["type"], "pake_reply", "{reply}");
    // The answer is here; no confirmation will ever come: pull the plug.
    agent.signal("-KILL");
    drop(agent); // reaped

    let pairing = Pairing::load(&state, PairingConfig::default()).unwrap();
    assert_eq!(pairing.failures(), 1, "the answered attempt is on disk");
}
