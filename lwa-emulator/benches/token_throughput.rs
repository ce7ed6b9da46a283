//! Token endpoint throughput on loopback: N concurrent clients refresh a token (the grant a
//! device performs forever) until a fixed total is reached; prints requests/second and latency.
//!
//! `cargo bench -p lwa-emulator --bench token_throughput`
//! Knobs: `BENCH_CLIENTS` (default 8), `BENCH_REQUESTS` (default 20000). The clients and the
//! server share this machine's cores, so the figure is a lower bound for the server alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lwa_emulator::registry::{ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::Emulator;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo test --benches` runs bench targets with no `--bench` flag: stay quick there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let clients = env_or("BENCH_CLIENTS", 8).max(1);
    let total = if quick {
        200
    } else {
        env_or("BENCH_REQUESTS", 20_000).max(1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(clients, total))
}

async fn run(clients: usize, total: usize) -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start().await?;
    let refresh = emulator
        .mint_tokens(ALICE_EMAIL, DEFAULT_DEVICE_CLIENT_ID)?
        .refresh_token
        .ok_or("no refresh token")?;
    let body = Arc::new(format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}",
        url::form_urlencoded::byte_serialize(refresh.expose_secret().as_bytes())
            .collect::<String>(),
        DEFAULT_DEVICE_CLIENT_ID
    ));
    let url = Arc::new(emulator.url("/auth/o2/token"));
    let issued = Arc::new(AtomicUsize::new(0));

    // Warm-up: connections and allocator.
    let warm = reqwest::Client::new();
    for _ in 0..50 {
        warm.post(url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.as_str().to_owned())
            .send()
            .await?
            .error_for_status()?;
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, body, issued) = (url.clone(), body.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut latencies = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < total {
                let t = Instant::now();
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.as_str().to_owned())
                    .send()
                    .await?;
                if response.status() != 200 {
                    return Err(format!("status {}", response.status()).into());
                }
                response.bytes().await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await?.map_err(|e| e.to_string())?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "token endpoint (refresh_token grant, loopback HTTP/1.1 keep-alive): {} requests, {} clients, {:.2} s => {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        clients,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    );
    emulator.shutdown().await;
    Ok(())
}
