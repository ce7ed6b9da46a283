//! `avs-device-agent`: thin wrapper over [`device_agent::cli`].

fn main() -> std::process::ExitCode {
    device_agent::cli::main()
}
