//! `AuthDelegate::auth_token()` latency: the hot path every AVS request takes. The delegate is
//! linked against the real lwa-emulator (in-process, loopback) so the token is a real one.
//! Each iteration takes the published token, reads it (its first byte) and drops the view, as
//! a caller does before putting it in a request header. Target (issue 16): ≤ 50 ns median, also
//! under 4-thread contention.
//!
//! `cargo bench -p device-agent --bench auth_token`
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use device_agent::auth_delegate::{AuthDelegate, AuthDelegateConfig};
use device_agent::lwa_client::{LwaClient, TokenGrant};
use device_agent::store::TokenStore;
use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::Emulator;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emu, d) = rt.block_on(async {
        let emu = Emulator::builder().start().await.unwrap();
        let lwa = LwaClient::new(emu.endpoints(), None).unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let (d, _) = AuthDelegate::start(lwa, store, AuthDelegateConfig::default()).unwrap();
        let t = emu
            .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)
            .unwrap();
        let grant = TokenGrant::from_response(&t, tokio::time::Instant::now());
        d.install(grant, DEFAULT_DEVICE_CLIENT_ID.into(), None, true)
            .await
            .unwrap();
        (emu, d)
    });
    let _guard = rt.enter();
    c.bench_function("auth_token (valid token)", |b| b.iter(|| read(&d)));
    // Contended: 4 threads calling at once (on this 2-core machine they also share CPUs); the
    // figure is the wall time of one call as seen by one of the threads.
    c.bench_function("auth_token (4 threads contending)", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(4);
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    let d = d.clone();
                    s.spawn(move || {
                        for _ in 0..per {
                            read(&d);
                        }
                    });
                }
            });
            // Each thread made iters/4 calls in `elapsed`; criterion divides by iters.
            start.elapsed() * 4
        })
    });
    rt.block_on(async {
        d.shutdown().await;
        emu.shutdown().await;
    });
}

/// One caller's use of the token: take it, look at it, let go.
#[inline(always)]
fn read(d: &AuthDelegate) {
    let t = d.auth_token().unwrap();
    std::hint::black_box(t.token().expose_secret().as_bytes()[0]);
    std::hint::black_box(t.expires_at());
}

criterion_group!(benches, bench);
criterion_main!(benches);
