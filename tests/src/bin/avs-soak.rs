//! `avs-soak [CYCLES=10000] [SEED]`: the refresh soak (see `avs_pair_tests::soak`) at full
//! length, printing the numbers docs/benchmarks.md quotes. Needs the agent binary built (same
//! profile as this one): `cargo build --release -p device-agent -p avs-pair-tests --bins`.

use std::process::ExitCode;

use avs_pair_tests::bench_args::positional;
use avs_pair_tests::bins::Bins;
use avs_pair_tests::soak::{self, SoakOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cycles = positional(&args, 0, 10_000);
    let seed = positional(&args, 1, rand::random());
    let bins = match Bins::locate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("avs-soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("avs-soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = SoakOptions::standard(cycles, seed);
    match runtime.block_on(soak::run(&bins.agent, &opts)) {
        Ok(report) => {
            print!("{}", soak::render(&report, &opts));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("avs-soak: FAILED (seed {seed}): {e}");
            ExitCode::FAILURE
        }
    }
}
