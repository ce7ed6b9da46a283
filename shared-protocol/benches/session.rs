//! Costs of the secure link: a full handshake (Hello both ways, SPAKE2, key confirmation) over
//! an in-memory duplex, and sealing + opening one ~1 KiB message (JSON encode, AEAD seal, frame,
//! duplex, frame decode, AEAD open, JSON decode).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shared_protocol::frame::StreamTransport;
use shared_protocol::message::{ErrorBody, ErrorKind, Hello, Role, SecureMessage};
use shared_protocol::session::{ClientHandshake, NoAttemptLimit, SecureSession, ServerHandshake};
use shared_protocol::setup_code::SetupCode;
use tokio::io::DuplexStream;

type Session = SecureSession<StreamTransport<DuplexStream>>;

async fn handshake(code: &SetupCode) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(16 * 1024);
    let companion = async {
        ClientHandshake::start(
            StreamTransport::new(a),
            Hello::new(Role::Companion, "bench"),
        )
        .await
        .expect("hello")
        .authenticate(code)
        .await
        .expect("companion handshake")
    };
    let agent = async {
        ServerHandshake::accept(StreamTransport::new(b), Hello::new(Role::Agent, "bench"))
            .await
            .expect("hello")
            .authenticate(code, &mut NoAttemptLimit)
            .await
            .expect("agent handshake")
    };
    tokio::join!(companion, agent)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let code = SetupCode::from_digits("40710839").expect("code");

    c.bench_function("handshake (both sides, duplex)", |b| {
        b.iter(|| rt.block_on(handshake(&code)));
    });

    let (mut companion, mut agent) = rt.block_on(handshake(&code));
    // ~1 KiB of JSON: {"type":"error","kind":"internal","message":"xxx…"}.
    let msg = SecureMessage::Error(ErrorBody::new(ErrorKind::Internal, "x".repeat(980)));
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
