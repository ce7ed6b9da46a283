//! Issue 12.8: text a stranger sends before the handshake (an `Error` message's text) reaches
//! the agent's log escaped and cut, so it can forge no log line and send no terminal escapes.
//! The real binary, its real log on stderr, a raw TCP client.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

mod common;
use common::process::{run_command, AgentProcess};
use common::raw;
use common::NO_LWA;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_error_text_is_escaped_and_cut_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::spawn(
        run_command(&dir.path().join("state"), NO_LWA, "LOG-TEST-1")
            .env("AVS_AGENT_LOG", "info")
            .stderr(Stdio::piped()),
    );

    let forged = format!(
        "boom\nINFO device_agent: linked to mallory\u{1b}[2J\r{}",
        "y".repeat(5000)
    );
    let mut s = tokio::net::TcpStream::connect(agent.link()).await.unwrap();
    raw::send_hello(&mut s).await;
    let error = serde_json::json!({"type":"error","kind":"internal","message":forged});
    raw::send(&mut s, &error).await;
    // The agent answers the Hello and hangs up after our error.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;

    let log = agent.terminate_and_read_log();

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
