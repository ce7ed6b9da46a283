//! The GATT transport against the in-process model.

use std::io;
use std::time::Duration;

use super::model::{
    ModelAcceptor, ModelCentralLink, ModelConnection, ModelControl, ModelFaults, ModelPeripheral,
    ModelPeripheralLink,
};
use super::*;
use crate::ble::Chunker;
use crate::frame::{FrameError, FrameTransport, MAX_FRAME_LEN};
use crate::message::{AgentMessage, CompanionMessage, Hello, Role};
use crate::session::{ClientHandshake, NoAttemptLimit, ServerHandshake, SessionError};
use crate::setup_code::SetupCode;

const FAST: Duration = Duration::from_millis(2);

async fn connect(
    peripheral_mtu: u16,
    conn: ModelConnection,
) -> (
    ModelCentralLink,
    ModelPeripheralLink,
    ModelControl,
    ModelAcceptor,
) {
    let (peripheral, mut acceptor) = ModelPeripheral::new(peripheral_mtu, || b"ver=1".to_vec());
    let (central, control) = peripheral.connect(conn).await.unwrap();
    let agent = acceptor.accept().await.unwrap();
    (central, agent, control, acceptor)
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn io_kind(e: &FrameError) -> Option<io::ErrorKind> {
    match e {
        FrameError::Io(e) => Some(e.kind()),
        _ => None,
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in time"))
}

/// [`connect`] with a transport on each end: (companion, agent, control, acceptor).
async fn transports(
    peripheral_mtu: u16,
    conn: ModelConnection,
) -> (
    GattTransport<ModelCentralLink>,
    GattTransport<ModelPeripheralLink>,
    ModelControl,
    ModelAcceptor,
) {
    let (central, agent, control, acceptor) = connect(peripheral_mtu, conn).await;
    let (c, a) = (GattTransport::new(central), GattTransport::new(agent));
    (c, a, control, acceptor)
}

/// `rx` receives `frames`, each whole and in order.
async fn receive_all(rx: &mut impl FrameTransport, frames: &[Vec<u8>]) {
    for f in frames {
        assert_eq!(
            within("recv", rx.recv_frame()).await.unwrap().as_ref(),
            Some(f)
        );
    }
}

/// A 23-byte MTU connection (20-byte ATT payload: a 100-byte frame is 6 chunks) with the faults
/// `set` chooses.
fn faulty(set: impl FnOnce(&mut ModelFaults)) -> ModelConnection {
    let mut faults = ModelFaults::default();
    set(&mut faults);
    ModelConnection::mtu(23).interval(FAST).faults(faults)
}

/// `tx` sends a 6-chunk frame while `rx` reads it on a link that drops mid-frame: `rx` sees the
/// frame truncated. The send's result.
async fn truncated_mid_frame(
    tx: &mut impl FrameTransport,
    rx: &mut impl FrameTransport,
) -> Result<(), FrameError> {
    let both = async { tokio::join!(tx.send_frame(frame(100, 1)), rx.recv_frame()) };
    let (sent, received) = within("send and recv", both).await;
    let err = received.unwrap_err();
    assert!(matches!(err, FrameError::Truncated), "{err}");
    sent
}

/// `tx` sends `frames` while `rx` receives them, each whole and in order.
async fn cross(tx: &mut impl FrameTransport, rx: &mut impl FrameTransport, frames: &[Vec<u8>]) {
    let send = async {
        for f in frames {
            tx.send_frame(f.clone()).await.unwrap();
        }
    };
    tokio::join!(send, receive_all(rx, frames));
}

#[tokio::test]
async fn frames_cross_both_ways_at_each_mtu_in_chunks_that_fit() {
    for (central_mtu, payload) in [(23u16, 20usize), (185, 182), (517, 512)] {
        let conn = ModelConnection::mtu(central_mtu).interval(FAST);
        let (mut c, mut a, control, _acc) = transports(517, conn).await;
        assert_eq!(control.mtu(), central_mtu);
        assert_eq!(c.link().att_payload(), payload);
        let frames = [frame(0, 1), frame(1, 2), frame(700, 3), frame(payload, 4)];
        let chunker = Chunker::new(payload).unwrap();
        let expected_chunks: u64 = frames
            .iter()
            .map(|f| chunker.chunk_count(f.len()) as u64)
            .sum();
        cross(&mut c, &mut a, &frames).await;
        assert_eq!(c.stats().chunks_sent, expected_chunks);
        assert_eq!(a.stats().chunks_received, expected_chunks);
        assert_eq!(control.stats().writes, expected_chunks);
        // And back, as indications.
        cross(&mut a, &mut c, &frames).await;
        assert_eq!(control.stats().indications, expected_chunks);
        assert_eq!(a.stats().frames_sent, frames.len() as u64);
    }
}

#[tokio::test]
async fn the_largest_frame_crosses_at_the_smallest_and_largest_mtu() {
    for mtu in [23u16, 517] {
        let conn = ModelConnection::mtu(mtu).interval(Duration::ZERO);
        let (mut c, mut a, _control, _acc) = transports(517, conn).await;
        let big = frame(MAX_FRAME_LEN, 9);
        let expect = big.clone();
        let sender = tokio::spawn(async move { c.send_frame(big).await.unwrap() });
        let got = within("big frame", a.recv_frame()).await.unwrap().unwrap();
        assert!(got == expect, "frame altered");
        sender.await.unwrap();
        let err = a.send_frame(vec![0; MAX_FRAME_LEN + 1]).await.unwrap_err();
        assert!(matches!(err, FrameError::Oversize { .. }));
    }
}

#[tokio::test]
async fn the_model_enforces_the_negotiated_mtu() {
    let conn = ModelConnection::mtu(517).interval(FAST);
    let (mut central, mut agent, control, _acc) = connect(185, conn).await;
    assert_eq!(control.mtu(), 185, "the smaller MTU wins");
    assert_eq!(
        central.send_value(vec![0; 183]).await,
        Err(GattLinkError::ValueTooLong { len: 183, max: 182 })
    );
    assert_eq!(
        agent.send_value(vec![0; 183]).await,
        Err(GattLinkError::ValueTooLong { len: 183, max: 182 })
    );
    central.send_value(vec![0; 182]).await.unwrap();
    assert_eq!(central.read_info().await.unwrap(), b"ver=1");
    // A central asking for less than 23 still gets the default.
    let (c, _a, control, _acc) = connect(517, ModelConnection::mtu(10).interval(FAST)).await;
    assert_eq!(control.mtu(), 23);
    assert_eq!(c.att_payload(), 20);
}

/// A link whose ATT payload shrinks after the first read; records what it is asked to send.
struct ShrinkingLink {
    reads: std::sync::atomic::AtomicUsize,
    sent: Vec<Vec<u8>>,
}

impl GattLink for ShrinkingLink {
    fn att_payload(&self) -> usize {
        let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            182
        } else {
            20
        }
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        self.sent.push(value);
        Ok(())
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        std::future::pending().await
    }

    async fn disconnect(&mut self) {}
}

#[tokio::test]
async fn the_transport_never_hands_a_link_a_value_longer_than_its_payload() {
    let link = ShrinkingLink {
        reads: Default::default(),
        sent: Vec::new(),
    };
    let mut t = GattTransport::new(link);
    // Cut for 182-byte values, but the payload is 20 by the time the first one would go out.
    let err = t.send_frame(frame(400, 1)).await.unwrap_err();
    match err {
        FrameError::Io(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("does not fit"), "{e}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(
        t.link().sent.is_empty(),
        "a too-long value reached the link"
    );
}

#[tokio::test]
async fn a_slow_agent_delays_write_responses_and_loses_nothing() {
    let mut conn = ModelConnection::mtu(23).interval(Duration::ZERO);
    conn.peripheral_queue = 1;
    let (mut c, mut a, _control, _acc) = transports(517, conn).await;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(100 + i * 37, i as u8)).collect();
    let to_send = frames.clone();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = tokio::spawn({
        let sent = sent.clone();
        async move {
            for f in to_send {
                c.send_frame(f).await.unwrap();
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    for (i, f) in frames.iter().enumerate() {
        // The agent is busy between frames (this sleep plays a slow agent, it synchronises
        // nothing); the companion's writes wait for it.
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Every frame is several chunks and the agent's queue holds one: without delayed write
        // responses the companion would have finished every frame by now.
        let done = sent.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            done <= i,
            "the companion finished {done} frames while the agent had read only {i}"
        );
        assert_eq!(
            within("recv", a.recv_frame()).await.unwrap().as_ref(),
            Some(f)
        );
    }
    within("sender", sender).await.unwrap();
}

#[tokio::test]
async fn a_slow_companion_still_gets_every_indication_in_order() {
    let conn = ModelConnection::mtu(23).interval(Duration::ZERO);
    let (mut c, mut a, _control, _acc) = transports(517, conn).await;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(90 + i * 13, i as u8)).collect();
    let to_send = frames.clone();
    let sender = tokio::spawn(async move {
        for f in to_send {
            a.send_frame(f).await.unwrap();
        }
    });
    // The companion reads nothing until the agent has sent everything.
    within("sender", sender).await.unwrap();
    receive_all(&mut c, &frames).await;
}

#[tokio::test]
async fn a_lost_indication_inside_a_frame_ends_the_session_with_a_clear_error() {
    let conn = faulty(|f| f.lose_indication = Some(3));
    let (mut c, mut a, control, _acc) = transports(517, conn).await;
    let sender = tokio::spawn(async move {
        let r = a.send_frame(frame(200, 7)).await;
        (a, r)
    });
    let err = within("recv", c.recv_frame()).await.unwrap_err();
    assert_eq!(io_kind(&err), Some(io::ErrorKind::InvalidData), "{err}");
    assert!(err.to_string().contains("lost or repeated"), "{err}");
    assert_eq!(control.stats().lost_indications, 1);
    // The companion disconnected: the agent's send fails instead of hanging.
    let (mut a, r) = within("sender", sender).await.unwrap();
    let send_err = r.unwrap_err();
    assert_eq!(
        io_kind(&send_err),
        Some(io::ErrorKind::ConnectionAborted),
        "{send_err}"
    );
    assert!(control.is_disconnected());
    // Both transports refuse further use at once.
    assert!(c.send_frame(vec![1]).await.is_err());
    assert!(a.send_frame(vec![1]).await.is_err());
}

#[tokio::test]
async fn a_lost_single_chunk_frame_is_caught_by_the_sealed_session() {
    // Hello and PakeReply are indications 1..=n; find the first sealed frame's single indication
    // by running the handshake first on a clean link, counting indications.
    let code = SetupCode::parse("40710839").unwrap();
    let run = |faults: ModelFaults| {
        let code = code.clone();
        async move {
            let conn = ModelConnection::mtu(517).interval(FAST).faults(faults);
            let (central, agent, control, _acc) = connect(517, conn).await;
            let agent_task = tokio::spawn({
                let code = code.clone();
                async move {
                    let hs = ServerHandshake::accept(
                        GattTransport::new(agent),
                        Hello::new(Role::Agent, "test"),
                    )
                    .await?;
                    let mut s = hs.authenticate(&code, &mut NoAttemptLimit).await?;
                    let n = s
                        .recv()
                        .await
                        .map_err(|_| crate::session::HandshakeError::Unexpected("recv".into()))?;
                    assert_eq!(n, CompanionMessage::GetStatus);
                    // Two answers: the first may be lost.
                    let e =
                        crate::message::ErrorBody::new(crate::message::ErrorKind::Internal, "x");
                    let _ = s.send(&AgentMessage::Error(e.clone())).await;
                    let _ = s.send(&AgentMessage::Error(e)).await;
                    Ok::<_, crate::session::HandshakeError>(())
                }
            });
            let hs = ClientHandshake::start(
                GattTransport::new(central),
                Hello::new(Role::Companion, "test"),
            )
            .await
            .unwrap();
            let mut s = hs.authenticate(&code).await.unwrap();
            s.send(&CompanionMessage::GetStatus).await.unwrap();
            let first = within("answer", s.recv()).await;
            let _ = agent_task.await;
            (first, control.stats())
        }
    };
    let (ok, clean) = run(ModelFaults::default()).await;
    assert!(matches!(ok, Ok(AgentMessage::Error(_))), "{ok:?}");
    // At MTU 517 every frame here is one chunk: the first sealed answer is the indication
    // after the handshake's ones (agent Hello, PakeReply).
    let first_sealed = clean.indications - 1;
    let (lost, stats) = run(ModelFaults {
        lose_indication: Some(first_sealed),
        ..ModelFaults::default()
    })
    .await;
    assert_eq!(stats.lost_indications, 1);
    assert!(matches!(lost, Err(SessionError::Tampered)), "{lost:?}");
}

#[tokio::test]
async fn a_disconnect_mid_frame_is_truncated_on_the_agent_and_aborted_on_the_companion() {
    let conn = faulty(|f| f.disconnect_after_writes = Some(2));
    let (mut c, mut a, _control, _acc) = transports(517, conn).await;
    let send_err = truncated_mid_frame(&mut c, &mut a).await.unwrap_err();
    assert_eq!(io_kind(&send_err), Some(io::ErrorKind::ConnectionAborted));
    assert!(send_err.to_string().contains("chunk 2 of 6"), "{send_err}");

    // The other direction: the companion sees Truncated.
    let conn = faulty(|f| f.disconnect_after_indications = Some(3));
    let (mut c, mut a, _control, _acc) = transports(517, conn).await;
    assert!(truncated_mid_frame(&mut a, &mut c).await.is_err());
}

#[tokio::test]
async fn a_disconnect_between_frames_is_a_clean_close() {
    let conn = ModelConnection::mtu(185).interval(FAST);
    let (mut c, mut a, control, _acc) = transports(517, conn).await;
    let sender = tokio::spawn(async move {
        c.send_frame(frame(10, 1)).await.unwrap();
        c
    });
    assert!(within("recv", a.recv_frame()).await.unwrap().is_some());
    let c = sender.await.unwrap();
    control.disconnect();
    assert!(within("recv", a.recv_frame()).await.unwrap().is_none());
    assert!(within("recv again", a.recv_frame())
        .await
        .unwrap()
        .is_none());
    drop(c);
    // Dropping a transport disconnects its link too.
    let (central, agent, control, _acc) =
        connect(517, ModelConnection::mtu(23).interval(FAST)).await;
    drop(GattTransport::new(central));
    assert!(control.is_disconnected());
    let mut a = GattTransport::new(agent);
    assert!(within("recv", a.recv_frame()).await.unwrap().is_none());
}

#[tokio::test]
async fn an_oversized_reassembly_is_refused_from_the_first_chunk() {
    let conn = ModelConnection::mtu(23).interval(FAST);
    let (mut central, agent, control, _acc) = connect(517, conn).await;
    let mut a = GattTransport::new(agent);
    // A first chunk announcing 4 GiB − 1, then more data: refused before anything is buffered.
    let mut first = vec![0x80];
    first.extend_from_slice(&u32::MAX.to_be_bytes());
    first.extend_from_slice(&[0; 15]);
    central.send_value(first).await.unwrap();
    match within("recv", a.recv_frame()).await {
        Err(FrameError::Oversize { len, max }) => {
            assert_eq!(len, u32::MAX as usize);
            assert_eq!(max, MAX_FRAME_LEN);
        }
        other => panic!("expected Oversize, got {other:?}"),
    }
    assert!(
        control.is_disconnected(),
        "the agent hangs up on such a peer"
    );
    assert_eq!(
        central.send_value(vec![0x01, 0]).await,
        Err(GattLinkError::Disconnected)
    );

    // With a smaller cap, just over it is refused too.
    let conn = ModelConnection::mtu(23).interval(FAST);
    let (mut central, agent, _control, _acc) = connect(517, conn).await;
    let opts = GattOptions {
        max_frame: 1000,
        ..GattOptions::default()
    };
    let mut a = GattTransport::with_options(agent, opts);
    let mut first = vec![0x80];
    first.extend_from_slice(&1001u32.to_be_bytes());
    central.send_value(first).await.unwrap();
    assert!(matches!(
        within("recv", a.recv_frame()).await,
        Err(FrameError::Oversize {
            len: 1001,
            max: 1000
        })
    ));
}

#[tokio::test]
async fn a_stalled_partial_frame_times_out() {
    let conn = ModelConnection::mtu(23).interval(FAST);
    let (mut central, agent, control, _acc) = connect(517, conn).await;
    let opts = GattOptions {
        reassembly_timeout: Duration::from_millis(200),
        ..GattOptions::default()
    };
    let mut a = GattTransport::with_options(agent, opts);
    let chunks = Chunker::new(20).unwrap().split(&frame(100, 1)).unwrap();
    central.send_value(chunks[0].clone()).await.unwrap();
    central.send_value(chunks[1].clone()).await.unwrap();
    let t0 = std::time::Instant::now();
    let err = within("recv", a.recv_frame()).await.unwrap_err();
    assert_eq!(io_kind(&err), Some(io::ErrorKind::TimedOut), "{err}");
    assert!(err.to_string().contains("stalled"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(control.is_disconnected());
}

#[tokio::test]
async fn a_central_that_stops_confirming_fails_the_send_after_the_ack_timeout() {
    let conn = faulty(|f| f.stop_confirming_after = Some(2));
    let (_central, agent, control, _acc) = connect(517, conn).await;
    let opts = GattOptions {
        ack_timeout: Duration::from_millis(200),
        ..GattOptions::default()
    };
    let mut a = GattTransport::with_options(agent, opts);
    let err = within("send", a.send_frame(frame(100, 1)))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&err), Some(io::ErrorKind::TimedOut), "{err}");
    assert!(err.to_string().contains("chunk 3 of 6"), "{err}");
    assert!(control.is_disconnected());
}

#[tokio::test]
async fn a_connection_to_a_peripheral_that_stopped_accepting_fails() {
    let (peripheral, acceptor) = ModelPeripheral::new(517, Vec::new);
    drop(acceptor);
    let r = peripheral
        .connect(ModelConnection::mtu(23).interval(FAST))
        .await;
    assert!(matches!(r, Err(GattLinkError::Disconnected)));
}

#[tokio::test]
async fn long_info_values_take_long_reads() {
    let info = "x".repeat(300);
    let expect = info.clone().into_bytes();
    let (peripheral, _acceptor) = ModelPeripheral::new(517, move || info.clone().into_bytes());
    let interval = Duration::from_millis(20);
    let (mut c, control) = peripheral
        .connect(ModelConnection::mtu(23).interval(interval))
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(c.read_info().await.unwrap(), expect);
    // 300 bytes at 22 per read: 14 round trips.
    assert!(t0.elapsed() >= interval * 14, "{:?}", t0.elapsed());
    assert_eq!(control.stats().info_reads, 1);
    let (big, _acc) = ModelPeripheral::new(517, || vec![0; 600]);
    let (mut c, _control) = big
        .connect(ModelConnection::mtu(517).interval(FAST))
        .await
        .unwrap();
    assert!(matches!(c.read_info().await, Err(GattLinkError::Stack(_))));
}
