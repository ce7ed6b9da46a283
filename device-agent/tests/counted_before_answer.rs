//! Issue 18.14, "counted before answering": the agent answers a PAKE message only after the
//! attempt is on disk. A client takes the agent's PakeReply and the agent is SIGKILLed before any
//! confirmation arrives: after the restart the attempt is still counted.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use device_agent::pairing::{Pairing, PairingConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn read_frame(s: &mut tokio::net::TcpStream) -> serde_json::Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_answered_then_killed_before_the_confirmation_stays_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(BIN)
        .arg("run")
        .env("AVS_AGENT_PRODUCT_ID", "kill_test")
        .env("AVS_AGENT_DSN", "KILL-PAKE-1")
        .env("AVS_AGENT_LWA_BASE_URL", "http://127.0.0.1:9")
        .env("AVS_AGENT_STATE_DIR", &state)
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_BLE", "false")
        .env("AVS_AGENT_SETUP_CODE", "24681357")
        .env("AVS_AGENT_LOG", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    while !ready.starts_with("AVS_AGENT_READY ") {
        ready.clear();
        assert!(stdout.read_line(&mut ready).unwrap() > 0, "no READY line");
    }
    let link: std::net::SocketAddr = ready
        .split_whitespace()
        .find_map(|f| f.strip_prefix("link="))
        .unwrap()
        .parse()
        .unwrap();

    let mut s = tokio::net::TcpStream::connect(link).await.unwrap();
    let hello = serde_json::json!({"type":"hello","version":{"major":1,"minor":0},"min_major":1,
        "role":"companion","software":"raw","capabilities":[],
        "security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"]});
    s.write_all(&frame(hello.to_string().as_bytes()))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut s).await["type"], "hello");
    // A valid group element (the Ed25519 base point) behind spake2's side byte 'A': a guess.
    let mut msg = vec![b'A'];
    msg.extend_from_slice(&[0x58]);
    msg.extend_from_slice(&[0x66; 31]);
    let pake = b64url(&msg);
    let start = serde_json::json!({"type":"pake_start","pake":pake});
    s.write_all(&frame(start.to_string().as_bytes()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut s))
        .await
        .unwrap();
    assert_eq!(reply["type"], "pake_reply", "{reply}");
    // The answer is here; no confirmation will ever come: pull the plug.
    assert!(Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();

    let pairing = Pairing::load(&state, PairingConfig::default()).unwrap();
    assert_eq!(pairing.failures(), 1, "the answered attempt is on disk");
}

fn b64url(bytes: &[u8]) -> String {
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
