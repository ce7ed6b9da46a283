//! The BLE GATT transport as the agent (peripheral) or the companion (central) runs it: a peer
//! in radio range controls every value that arrives, how many there are, and when the link
//! drops. The input is a script of values for a scripted [`GattLink`]; the real
//! `GattTransport` reassembles frames from them under a small cap. Every frame it yields must
//! fit the cap, an error must end the transport for good (later calls fail, never a mangled
//! frame), and the frames must also go through the plain/secure message parsers.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/gatt_transport.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use std::collections::VecDeque;
use std::time::Duration;

use shared_protocol::frame::FrameTransport as _;
use shared_protocol::gatt::{
    att_payload_for_mtu, GattLink, GattLinkError, GattOptions, GattTransport,
};
use shared_protocol::message::{AgentMessage, CompanionMessage, PlainMessage};

/// A link whose received values are a fixed script; sends are acknowledged (or refused) by the
/// script's flags. When the script ends the peer has disconnected.
struct ScriptedLink {
    payload: usize,
    incoming: VecDeque<Result<Vec<u8>, GattLinkError>>,
    fail_sends: bool,
    sent: usize,
}

impl GattLink for ScriptedLink {
    fn att_payload(&self) -> usize {
        self.payload
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        assert!(
            value.len() <= self.payload,
            "a chunk exceeds the ATT payload"
        );
        self.sent += 1;
        if self.fail_sends {
            Err(GattLinkError::Disconnected)
        } else {
            Ok(())
        }
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        match self.incoming.pop_front() {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    async fn disconnect(&mut self) {
        self.incoming.clear();
    }
}

/// One runtime for the whole run (building one per input would dominate the cost).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    // Header: [mtu hi, mtu lo, cap selector, flags], then values, each one length byte then
    // that many bytes (a length byte of 0xFF is a link error instead of a value).
    if data.len() < 4 {
        return;
    }
    let mtu = u16::from_be_bytes([data[0], data[1]]);
    let payload = att_payload_for_mtu(mtu);
    let max_frame = usize::from(data[2]) * 32;
    let flags = data[3];
    let mut incoming = VecDeque::new();
    let mut rest = &data[4..];
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0xFF {
            incoming.push_back(Err(if tail.first().is_some_and(|b| b & 1 == 1) {
                GattLinkError::Disconnected
            } else {
                GattLinkError::Stack("fuzz".into())
            }));
            rest = tail.get(1..).unwrap_or_default();
            continue;
        }
        let take = usize::from(len).min(tail.len());
        let (value, next) = tail.split_at(take);
        incoming.push_back(Ok(value.to_vec()));
        rest = next;
    }
    let values = incoming.len();
    let link = ScriptedLink {
        payload,
        incoming,
        fail_sends: flags & 1 == 1,
        sent: 0,
    };
    let options = GattOptions {
        ack_timeout: Duration::from_secs(10),
        reassembly_timeout: Duration::from_secs(3),
        max_frame,
    };
    runtime().block_on(async move {
        let mut transport = GattTransport::with_options(link, options);
        // An echo of the first bytes, so the send path (chunking to the payload) runs too.
        if flags & 2 == 2 {
            let echo = data.get(4..).unwrap_or_default().to_vec();
            let _ = transport.send_frame(echo).await;
        }
        let mut ended = false;
        // Never more frames than values (each frame needs at least one), plus the final answer.
        for _ in 0..=values {
            match transport.recv_frame().await {
                Ok(Some(frame)) => {
                    assert!(!ended, "a frame after the transport ended");
                    assert!(frame.len() <= max_frame, "a frame over the cap");
                    // Either end's parsers: plain phase, and each direction's sealed messages.
                    let _ = serde_json::from_slice::<PlainMessage>(&frame);
                    let _ = serde_json::from_slice::<CompanionMessage>(&frame);
                    let _ = serde_json::from_slice::<AgentMessage>(&frame);
                }
                Ok(None) | Err(_) => ended = true,
            }
        }
        assert!(ended, "the script ended but the transport kept yielding");
        // After the end, the transport never yields a frame again.
        assert!(!matches!(transport.recv_frame().await, Ok(Some(_))));
        let stats = transport.stats();
        assert!(stats.chunks_received as usize <= values);
        assert!(transport.link().sent as u64 >= stats.chunks_sent);
    });
}
