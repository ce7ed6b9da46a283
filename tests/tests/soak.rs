//! The short refresh soak in CI: the real agent process through 300 refresh cycles against the
//! emulator (clock travel: every cycle's token really expires at AVS), with 5 % 500/503, 1 %
//! requests held past the agent's timeout and one burst of 429s. Every cycle yields a new token
//! that AVS `/ping` accepts, every fault costs exactly one retry, and the agent's descriptors,
//! threads and memory do not grow between cycle 100 and the end. The 10,000-cycle run is
//! `avs-soak` (docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use avs_pair_tests::bins::Bins;
use avs_pair_tests::soak::{self, SoakOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_refresh_cycles_with_faults() {
    let bins = Bins::locate().unwrap_or_else(|e| panic!("{e}"));
    let seed = rand::random();
    let opts = SoakOptions::standard(300, seed);
    let report = soak::run(&bins.agent, &opts)
        .await
        .unwrap_or_else(|e| panic!("soak failed (seed {seed}): {e}"));
    println!("{}", soak::render(&report, &opts));
    assert_eq!(report.cycles, 300);
    assert!(
        report.server_errors + report.timeouts > 0,
        "faults were injected"
    );
    assert_eq!(report.too_many_requests, 4);
    assert_eq!(
        report.token_requests,
        1 + report.cycles + report.server_errors + report.timeouts + report.too_many_requests,
        "one request per cycle plus one per fault"
    );
    let first = report.samples.first().expect("sample at cycle 100");
    let last = report.samples.last().expect("sample at the end");
    assert_eq!((first.cycle, last.cycle), (100, 300));
    assert!(
        last.fds <= first.fds + 2,
        "descriptors grew: {first:?} -> {last:?}"
    );
    assert!(
        last.threads <= first.threads + 1,
        "threads grew: {first:?} -> {last:?}"
    );
    assert!(
        last.rss_kib <= first.rss_kib + 2048,
        "RSS grew by more than 2 MiB: {first:?} -> {last:?}"
    );
}
