//! Issue 12.8: text a stranger sends before the handshake (an `Error` message's text) reaches
//! the agent's log escaped and cut, so it can forge no log line and send no terminal escapes.
//! The real binary, its real log on stderr, a raw TCP client.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BIN: &str = env!("CARGO_BIN_EXE_avs-device-agent");

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_error_text_is_escaped_and_cut_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .env("AVS_AGENT_PRODUCT_ID", "log_injection_test")
        .env("AVS_AGENT_DSN", "LOG-TEST-1")
        .env("AVS_AGENT_LWA_BASE_URL", "http://127.0.0.1:9")
        .env("AVS_AGENT_STATE_DIR", dir.path().join("state"))
        .env("AVS_AGENT_LINK_BIND", "127.0.0.1:0")
        .env("AVS_AGENT_MDNS", "false")
        .env("AVS_AGENT_BLE", "false")
        .env("AVS_AGENT_SETUP_CODE", "24681357")
        .env("AVS_AGENT_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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

    let forged = format!(
        "boom\nINFO device_agent: linked to mallory\u{1b}[2J\r{}",
        "y".repeat(5000)
    );
    let mut s = tokio::net::TcpStream::connect(link).await.unwrap();
    let hello = serde_json::json!({"type":"hello","version":{"major":1,"minor":0},"min_major":1,
        "role":"companion","software":"raw","capabilities":[],
        "security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"]});
    s.write_all(&frame(hello.to_string().as_bytes()))
        .await
        .unwrap();
    let error = serde_json::json!({"type":"error","kind":"internal","message":forged});
    s.write_all(&frame(error.to_string().as_bytes()))
        .await
        .unwrap();
    // The agent answers the Hello and hangs up after our error.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();

    let line = log
        .lines()
        .find(|l| l.contains("boom"))
        .unwrap_or_else(|| panic!("the peer's error is logged:\n{log}"));
    assert!(line.contains("boom\\nINFO"), "newline escaped: {line}");
    assert!(line.contains("\\u{1b}[2J"), "ESC escaped: {line}");
    // (The logger's own colour codes come before the peer's text.)
    let peer_part = &line[line.find("boom").unwrap()..];
    assert!(
        !peer_part.contains('\u{1b}'),
        "no raw ESC from the peer: {peer_part:?}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("INFO device_agent: linked")),
        "no forged line"
    );
    assert!(
        !line.contains(&"y".repeat(400)),
        "cut: {} bytes",
        line.len()
    );
}
