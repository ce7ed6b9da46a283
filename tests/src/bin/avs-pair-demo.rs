//! `avs-pair-demo`: pair a speaker on a virtual home network in one command, every step timed.
//! The work is in [`avs_pair_tests::demo`]; this parses flags and prints.

use std::process::ExitCode;

use avs_pair_tests::bins::Bins;
use avs_pair_tests::demo::{self, Mode, Options};

const USAGE: &str =
    "usage: avs-pair-demo [--loopback | --namespaces] [--no-build] [--quiet] [--keep-logs]

  --namespaces  speaker and laptop in network namespaces, real mDNS (default when root)
  --loopback    everything on 127.0.0.1, discovery skipped (default otherwise)
  --no-build    use the binaries next to this one instead of running cargo build
  --quiet       only the final table
  --keep-logs   keep the process logs and state (the path is printed)";

fn main() -> ExitCode {
    let mut mode = None;
    let mut build = true;
    let mut verbose = true;
    let mut keep_logs = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--loopback" => mode = Some(Mode::Loopback),
            "--namespaces" => mode = Some(Mode::Namespaces),
            "--no-build" => build = false,
            "--quiet" => verbose = false,
            "--keep-logs" => keep_logs = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // Ctrl-C from here on removes whatever was created.
    avs_pair_tests::cleanup::install_signal_handler();
    if mode == Some(Mode::Namespaces) {
        if let Err(why) = avs_pair_tests::netns::TestNet::check_available() {
            eprintln!("avs-pair-demo: --namespaces: {why}");
            return ExitCode::from(2);
        }
    }
    let bins = if build {
        Bins::build_then_locate()
    } else {
        Bins::locate()
    };
    let bins = match bins {
        Ok(b) => b,
        Err(e) => {
            eprintln!("avs-pair-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = Options {
        mode,
        bins,
        verbose,
        keep_logs,
    };
    let mut out = |line: &str| println!("{line}");
    match demo::run(&opts, &mut out) {
        Ok(report) => {
            println!("{}", report.table());
            println!(
                "Paired: the speaker holds its own tokens, refreshes them, and AVS accepts them. Nothing was left behind."
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            avs_pair_tests::cleanup::exit_if_interrupted();
            eprintln!("\navs-pair-demo failed: {e}\n(everything it started has been removed)");
            ExitCode::FAILURE
        }
    }
}
