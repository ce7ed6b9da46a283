//! A speaker on the far end of an in-memory link, for unit tests of what the companion does
//! over a sealed session (the handover, the Wi-Fi step): both handshakes run for real over
//! `tokio::io::duplex`, and the test plays the speaker with the agent's side of the session.

use shared_protocol::frame::StreamTransport;
use shared_protocol::message::{Capability, Hello, Role};
use shared_protocol::session::{AgentSession, NoAttemptLimit, ServerHandshake};
use shared_protocol::setup_code::SetupCode;
use tokio::io::DuplexStream;

use crate::link::{LinkClient, LinkSession, LinkTimeouts};

/// One end of the in-memory link.
pub type Wire = StreamTransport<DuplexStream>;

/// A companion's authenticated session and the speaker's side of it. The speaker's Hello
/// announces `capabilities` and has no summary (neither the handshake nor these tests read one).
pub async fn sealed_link(capabilities: &[Capability]) -> (LinkSession<Wire>, AgentSession<Wire>) {
    let code = SetupCode::parse("1234-5670-9").expect("a valid code");
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let mut hello = Hello::new(Role::Agent, "test speaker");
    hello.capabilities.extend_from_slice(capabilities);
    let speaker = async {
        let hs = ServerHandshake::accept(StreamTransport::new(theirs), hello)
            .await
            .expect("the companion's hello");
        hs.authenticate(&code, &mut NoAttemptLimit)
            .await
            .expect("the speaker's side of the handshake")
    };
    let companion = async {
        let client = LinkClient::start(StreamTransport::new(ours), LinkTimeouts::default())
            .await
            .expect("the speaker's hello");
        client
            .authenticate(&code)
            .await
            .expect("the companion's side of the handshake")
    };
    let (speaker, companion) = tokio::join!(speaker, companion);
    (companion, speaker)
}
