//! The link's wire format by hand (length-prefixed JSON frames), for tests that must send what
//! the typed client never would: a stranger's bytes before or inside the handshake.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `body` behind its 4-byte big-endian length.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Sends `msg` as one frame.
pub async fn send(s: &mut TcpStream, msg: &serde_json::Value) {
    s.write_all(&frame(msg.to_string().as_bytes()))
        .await
        .unwrap();
}

/// Reads one frame as JSON.
pub async fn read_frame(s: &mut TcpStream) -> serde_json::Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Sends a companion's `hello` (protocol 1.0, the one security scheme).
pub async fn send_hello(s: &mut TcpStream) {
    let hello = serde_json::json!({"type":"hello","version":{"major":1,"minor":0},"min_major":1,
        "role":"companion","software":"raw","capabilities":[],
        "security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"]});
    send(s, &hello).await;
}
