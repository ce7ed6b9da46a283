//! Costs of the secure link: a full handshake (Hello both ways, SPAKE2, key confirmation) over
//! an in-memory duplex, and sealing + opening one ~1 KiB message (JSON encode, AEAD seal, frame,
//! duplex, frame decode, AEAD open, JSON decode).
//!
//! The handshake is also split per side: each side's future is wrapped so that only the time
//! spent inside its own `poll` counts (its own crypto and encoding, not waiting for the peer),
//! which is what a speaker's CPU pays versus a laptop's.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shared_protocol::frame::StreamTransport;
use shared_protocol::message::{CompanionMessage, ErrorBody, ErrorKind, Hello, Role};
use shared_protocol::session::{
    AgentSession, ClientHandshake, CompanionSession, NoAttemptLimit, ServerHandshake,
};
use shared_protocol::setup_code::SetupCode;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::DuplexStream;

/// Adds the time spent inside the wrapped future's `poll` to `spent`.
struct Timed<'a, F> {
    inner: Pin<Box<F>>,
    spent: &'a mut Duration,
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let start = Instant::now();
        let out = this.inner.as_mut().poll(cx);
        *this.spent += start.elapsed();
        out
    }
}

type Duplex = StreamTransport<DuplexStream>;

/// One handshake; adds each side's own poll time to `companion_spent` / `agent_spent`.
async fn handshake_timed(
    code: &SetupCode,
    companion_spent: &mut Duration,
    agent_spent: &mut Duration,
) -> (CompanionSession<Duplex>, AgentSession<Duplex>) {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let companion = Timed {
        inner: Box::pin(async {
            ClientHandshake::start(
                StreamTransport::new(a),
                Hello::new(Role::Companion, "bench"),
            )
            .await
            .expect("hello")
            .authenticate(code)
            .await
            .expect("companion handshake")
        }),
        spent: companion_spent,
    };
    let agent = Timed {
        inner: Box::pin(async {
            ServerHandshake::accept(StreamTransport::new(b), Hello::new(Role::Agent, "bench"))
                .await
                .expect("hello")
                .authenticate(code, &mut NoAttemptLimit)
                .await
                .expect("agent handshake")
        }),
        spent: agent_spent,
    };
    tokio::join!(companion, agent)
}

/// One handshake (the poll-time bookkeeping costs a few clock reads, well under 1 % of it).
async fn handshake(code: &SetupCode) -> (CompanionSession<Duplex>, AgentSession<Duplex>) {
    let (mut companion, mut agent) = (Duration::ZERO, Duration::ZERO);
    handshake_timed(code, &mut companion, &mut agent).await
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let code = SetupCode::from_digits("40710839").expect("code");

    c.bench_function("handshake (both sides, duplex)", |b| {
        b.iter(|| rt.block_on(handshake(&code)));
    });

    let mut group = c.benchmark_group("handshake, one side's own work");
    for (side, companion_side) in [("companion side", true), ("agent side", false)] {
        group.bench_function(side, |b| {
            b.iter_custom(|iters| {
                let (mut companion, mut agent) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    rt.block_on(handshake_timed(&code, &mut companion, &mut agent));
                }
                if companion_side {
                    companion
                } else {
                    agent
                }
            });
        });
    }
    group.finish();

    let (mut companion, mut agent) = rt.block_on(handshake(&code));
    // ~1 KiB of JSON: {"type":"error","kind":"internal","message":"xxx…"}.
    let msg = CompanionMessage::Error(ErrorBody::new(ErrorKind::Internal, "x".repeat(980)));
    let json_len = serde_json::to_vec(&msg).expect("json").len() as u64;
    let mut group = c.benchmark_group("sealed message");
    group.throughput(Throughput::Bytes(json_len));
    group.bench_function(format!("seal + open {json_len} B (send + recv)"), |b| {
        b.iter(|| {
            rt.block_on(async {
                companion.send(&msg).await.expect("send");
                agent.recv().await.expect("recv")
            })
        });
    });
    group.finish();
}

criterion_group!(session, benches);
criterion_main!(session);
