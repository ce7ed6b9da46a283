//! The `avs-device-agent` command line: `run` starts the daemon; every other verb is a client
//! of the running daemon's local socket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use shared_protocol::lwa::{AuthError, AuthState};

use crate::agent::Agent;
use crate::config::{
    AgentConfig, ConfigError, ConfigValues, DEFAULT_STATE_DIR, SETUP_CODE_FILE, SOCKET_FILE,
};
use crate::local_api::{self, ApiRequest, ApiResponse};

/// The avs-pair device agent.
#[derive(Debug, Parser)]
#[command(
    name = "avs-device-agent",
    version,
    about = "Pairs this speaker with an Amazon account and keeps its AVS token fresh"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// What `avs-device-agent` does: run the daemon, or ask the running one over its local API.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (prints `AVS_AGENT_READY device_id=… link=… socket=…` when ready).
    Run(Box<RunArgs>),
    /// Open the pairing window.
    Pair(ClientArgs),
    /// Show status.
    Status(ClientArgs),
    /// Print the current access token (for `curl -H "Authorization: Bearer $(avs-device-agent token)"`).
    Token(ClientArgs),
    /// Forget the linked account.
    Reset(ClientArgs),
    /// Call AVS /ping with the current token.
    Check(ClientArgs),
    /// Link with code-based linking (prints the code and the URL to enter it at).
    Cbl(ClientArgs),
    /// Print the setup code from its file (root only; the code is never logged).
    ShowCode(ShowCodeArgs),
}

/// The daemon's state directory, where the verbs find the files they are not given (the
/// daemon's own defaults, [`SOCKET_FILE`] and [`SETUP_CODE_FILE`]).
#[derive(Debug, clap::Args)]
pub struct StateDirArg {
    /// State directory, to find the default socket or setup code file.
    #[arg(long, env = "AVS_AGENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateDirArg {
    /// `explicit`, else the file `name` in the state directory.
    fn file(&self, explicit: Option<&PathBuf>, name: &str) -> PathBuf {
        explicit.cloned().unwrap_or_else(|| {
            self.state_dir
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_DIR))
                .join(name)
        })
    }
}

/// `show-code` finds the setup code file.
#[derive(Debug, clap::Args)]
pub struct ShowCodeArgs {
    /// The setup code file (default: <state_dir>/setup-code).
    #[arg(long, env = "AVS_AGENT_SETUP_CODE_FILE")]
    pub setup_code_file: Option<PathBuf>,
    /// Where the default file is.
    #[command(flatten)]
    pub state: StateDirArg,
}

impl ShowCodeArgs {
    fn file(&self) -> PathBuf {
        self.state
            .file(self.setup_code_file.as_ref(), SETUP_CODE_FILE)
    }
}

/// `show-code`: root only (the file is 0600 root's anyway; saying so beats "permission denied").
fn show_code(args: &ShowCodeArgs) -> ExitCode {
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
        != 0
    {
        eprintln!("avs-device-agent: show-code is for root (sudo avs-device-agent show-code)");
        return ExitCode::FAILURE;
    }
    let file = args.file();
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) => {
            eprintln!("avs-device-agent: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    match shared_protocol::setup_code::SetupCode::parse(text.trim()) {
        Ok(code) => {
            let digits = code.expose_secret();
            println!(
                "setup code:  {} {}\nmanual code: {}",
                &digits[..4],
                &digits[4..],
                code.manual_code()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "avs-device-agent: {} holds no valid setup code: {e}",
                file.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// `run` flags: a config file plus per-key overrides.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(long, short, env = "AVS_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Config keys (each also settable in the file and as AVS_AGENT_<KEY>).
    #[command(flatten)]
    pub values: ConfigValues,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "AVS_AGENT_LOG", default_value = "info")]
    pub log: String,
}

/// Client verbs find the daemon's socket.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The daemon's socket (default: <state_dir>/agent.sock).
    #[arg(long, env = "AVS_AGENT_SOCKET_PATH")]
    pub socket: Option<PathBuf>,
    /// Where the default socket is.
    #[command(flatten)]
    pub state: StateDirArg,
    /// Print the raw JSON answers.
    #[arg(long)]
    pub json: bool,
}

impl ClientArgs {
    fn socket(&self) -> PathBuf {
        self.state.file(self.socket.as_ref(), SOCKET_FILE)
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("avs-device-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Pair(a) => client(a, ApiRequest::Pair).await,
            Command::Status(a) => client(a, ApiRequest::Status).await,
            Command::Token(a) => client(a, ApiRequest::Token).await,
            Command::Reset(a) => client(a, ApiRequest::Reset).await,
            Command::Check(a) => client(a, ApiRequest::Check).await,
            Command::Cbl(a) => client(a, ApiRequest::Cbl).await,
            Command::ShowCode(a) => show_code(&a),
        }
    })
}

async fn run(args: RunArgs) -> ExitCode {
    init_logging(&args.log);
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("avs-device-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let mut agent = match Agent::start(cfg).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("avs-device-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(code) = agent.take_first_start_code() {
        announce_new_code(&code, &agent);
    }
    println!("{}", agent.ready_line());
    match crate::sd_notify::notify("READY=1") {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not notify systemd"),
    }
    wait_for_signals(&agent).await;
    let _ = crate::sd_notify::notify("STOPPING=1");
    agent.shutdown().await;
    ExitCode::SUCCESS
}

/// Logs to stderr with the `log` directives (`info` when they do not parse).
fn init_logging(directives: &str) {
    // `Targets` reads the same `level,target=level` directives as `EnvFilter` without its regex
    // engine (~180 KiB of the stripped binary; issue 16's size goal). Span and field filters
    // are not needed on a speaker.
    let filter = directives
        .parse::<tracing_subscriber::filter::Targets>()
        .unwrap_or_else(|_| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::INFO)
        });
    // Colour only on a terminal: under systemd stderr is the journal, where escape codes are noise.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
}

/// The config file (if any) overlaid with the environment and the flags, checked; the setup
/// code from `AVS_AGENT_SETUP_CODE`.
fn config(args: RunArgs) -> Result<AgentConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => ConfigValues::from_file(path)?,
        None => ConfigValues::default(),
    };
    let setup_code = std::env::var("AVS_AGENT_SETUP_CODE").ok();
    AgentConfig::resolve(file.overlay(args.values), setup_code)
}

/// Tells the owner a setup code was generated at this start.
fn announce_new_code(code: &shared_protocol::setup_code::SetupCode, agent: &Agent) {
    // Shown once, and only on a terminal: under systemd stdout goes to the journal, which
    // must never hold the code. It always stays in setup_code_file (0600).
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!(
            "{}",
            crate::provision::first_start_banner(code, agent.device_id())
        );
    } else {
        println!(
            "avs-device-agent: a new setup code was saved in the setup code file; show it \
             with `sudo avs-device-agent show-code`"
        );
    }
}

async fn wait_for_signals(agent: &Agent) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); return }
            _ = usr1.recv() => match agent.pairing().open() {
                Ok(_) => tracing::info!("SIGUSR1: pairing window open"),
                Err(e) => tracing::warn!(error = %e, "SIGUSR1: pairing window not opened"),
            },
        }
    }
}

async fn client(args: ClientArgs, req: ApiRequest) -> ExitCode {
    let socket = args.socket();
    let mut ok = true;
    let streaming = matches!(req, ApiRequest::Cbl);
    let result = local_api::call(&socket, &req, |resp| {
        if args.json {
            if let Ok(s) = serde_json::to_string(resp) {
                println!("{s}");
            }
        } else {
            print_human(resp);
        }
        match resp {
            ApiResponse::Error { .. } | ApiResponse::Check { ok: false, .. } => ok = false,
            _ => {}
        }
        streaming && matches!(resp, ApiResponse::CblPrompt(_))
    })
    .await;
    match result {
        Ok(()) if ok => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("avs-device-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_human(resp: &ApiResponse) {
    match resp {
        ApiResponse::Token { access_token, .. } => println!("{}", access_token.expose_secret()),
        ApiResponse::AuthState { state, error, .. } => match error_text(error) {
            Some(error) => println!("{}; last error: {error}", state_text(state)),
            None => println!("{}", state_text(state)),
        },
        ApiResponse::Status(s) => {
            println!("device id:   {}", s.device_id);
            println!("name:        {}", s.friendly_name);
            println!("paired:      {}", s.paired);
            // "Alice Example (alice@example.com)", the id when the profile was not granted.
            match (&s.account, &s.user_id) {
                (Some(a), _) => {
                    println!("account:     {a}");
                    if a.name.is_some() || a.email.is_some() {
                        println!("user id:     {}", a.user_id);
                    }
                }
                (None, Some(u)) => println!("account:     {u}"),
                (None, None) => println!("account:     -"),
            }
            println!("auth:        {}", state_text(&s.auth_state));
            if let Some(error) = error_text(&s.auth_error) {
                println!("last error:  {error}");
            }
            println!("pairing:     {}", window_text(&s.window));
            println!("link:        {}", s.link);
            println!("refreshes:   {}", s.refreshes);
        }
        ApiResponse::Window { window } => println!("pairing window: {}", window_text(window)),
        ApiResponse::Check { ok, message } => {
            println!("{}: {message}", if *ok { "ok" } else { "FAILED" })
        }
        ApiResponse::CblPrompt(p) => println!(
            "Go to {} and enter the code {} (valid {} s)",
            p.verification_uri, p.user_code, p.expires_in_secs
        ),
        ApiResponse::Ok { message } => println!("{message}"),
        ApiResponse::Error { message, .. } => eprintln!("error: {message}"),
    }
}

/// The SDK state in words, its name in parentheses for developers.
fn state_text(state: &AuthState) -> String {
    format!("{} ({state})", state.in_words())
}

/// The last error likewise; `None` for `SUCCESS`.
fn error_text(error: &AuthError) -> Option<String> {
    error.in_words().map(|words| format!("{words} ({error})"))
}

fn window_text(w: &shared_protocol::message::PairingWindow) -> String {
    use shared_protocol::message::PairingWindow;
    match w {
        PairingWindow::Open { closes_in_secs } => format!("open (closes in {closes_in_secs} s)"),
        PairingWindow::Closed => "closed".into(),
        PairingWindow::LockedOut { retry_in_secs } => {
            format!("locked after too many wrong codes (retry in {retry_in_secs} s)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        let argv = std::iter::once("avs-device-agent").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap().command
    }

    /// The client verbs and `show-code` find the daemon's socket and setup code file where the
    /// daemon puts them by default, or where they are told.
    #[test]
    fn the_verbs_find_their_files_in_the_state_dir_unless_told() {
        let found = |args: &[&str]| match parse(args) {
            Command::Status(a) | Command::Token(a) => a.socket(),
            Command::ShowCode(a) => a.file(),
            other => panic!("{other:?}"),
        };
        for (args, file) in [
            (&["status", "--state-dir", "/s"][..], "/s/agent.sock"),
            (
                &["token", "--state-dir", "/s", "--socket", "/run/a.sock"],
                "/run/a.sock",
            ),
            (&["show-code", "--state-dir", "/s"], "/s/setup-code"),
            (
                &["show-code", "--setup-code-file", "/etc/code"],
                "/etc/code",
            ),
        ] {
            assert_eq!(found(args), Path::new(file), "{args:?}");
        }
        // The daemon's own defaults are the same files.
        let cfg =
            AgentConfig::for_local(Path::new("/s"), "http://127.0.0.1:9", "24681357").unwrap();
        assert_eq!(cfg.socket_path, Path::new("/s/agent.sock"));
        assert_eq!(cfg.setup_code_file, Path::new("/s/setup-code"));
    }
}
