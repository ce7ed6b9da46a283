//! `lwa-emulator`: run the LWA + AVS stand-in, or play a user in its sign-in pages.
//!
//! Serving prints one machine-readable line on stdout once it listens:
//! `LWA_EMULATOR_READY base_url=http://127.0.0.1:PORT` (plus ` ca=PATH` over HTTPS), then runs
//! until SIGINT/SIGTERM and stops gracefully.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lwa_emulator::{
    redact, BrowseError, Consent, Emulator, EmulatorConfig, Registry, RegistryError, ScriptedUser,
    Settings, StartError, TlsConfig,
};

/// Why a command failed; printed after `lwa-emulator: ` and exit code 2.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The `--config` file.
    #[error(transparent)]
    Config(#[from] RegistryError),
    /// Binding the port or building the TLS identity.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The ready line could not be written (stdout closed).
    #[error("cannot write to stdout: {0}")]
    Stdout(#[from] std::io::Error),
    /// The `--ca` file of `browse`.
    #[error("cannot read CA file {}: {source}", path.display())]
    ReadCa {
        /// The file named by `--ca`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The scripted user's walk through the sign-in pages.
    #[error(transparent)]
    Browse(#[from] BrowseError),
}

#[derive(Parser, Debug)]
#[command(
    name = "lwa-emulator",
    version,
    about = "A local Login with Amazon + AVS stand-in for development and tests",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the emulator (the default).
    Serve(ServeArgs),
    /// Play a user in a browser: sign in, answer consent, follow the redirect.
    Browse(BrowseArgs),
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// Listen address (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Registry/settings TOML file (entries are added to the built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve HTTPS with a generated CA.
    #[arg(long)]
    https: bool,
    /// Extra subject alternative name for the HTTPS certificate (repeatable); 127.0.0.1, ::1,
    /// localhost and the bind address are always included.
    #[arg(long = "tls-san", value_name = "IP_OR_NAME")]
    tls_san: Vec<String>,
    /// Write the CA certificate (PEM) here (HTTPS; default: a temporary file).
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// Access-token lifetime in seconds (expires_in).
    #[arg(long, value_name = "SECS")]
    token_lifetime: Option<u64>,
    /// Issue a new refresh token on every refresh.
    #[arg(long)]
    rotate_refresh_tokens: bool,
    /// Answer refreshes without a refresh_token (the one presented stays valid).
    #[arg(long, conflicts_with = "rotate_refresh_tokens")]
    omit_refresh_tokens: bool,
    /// With --rotate-refresh-tokens: seconds the replaced token stays valid.
    #[arg(long, value_name = "SECS")]
    refresh_grace: Option<u64>,
    /// Answer slow_down to CBL polls faster than the interval.
    #[arg(long)]
    slow_down: bool,
    /// Refuse /ap/oa requests without a PKCE code_challenge.
    #[arg(long)]
    require_pkce: bool,
    /// Allow plain HTTP on a non-loopback bind address.
    #[arg(long)]
    allow_non_loopback_http: bool,
    /// Log every request to stderr (secrets shortened to 4 characters and a length).
    #[arg(long)]
    log: bool,
}

#[derive(Args, Debug)]
struct BrowseArgs {
    /// Account email.
    #[arg(long, env = "LWA_EMULATOR_EMAIL", default_value = lwa_emulator::registry::ALICE_EMAIL)]
    email: String,
    /// Account password.
    #[arg(long, env = "LWA_EMULATOR_PASSWORD", default_value = lwa_emulator::registry::ALICE_PASSWORD, hide_default_value = true)]
    password: String,
    /// Answer Cancel/Deny instead of Allow.
    #[arg(long)]
    deny: bool,
    /// Trust this CA certificate (the emulator's, in HTTPS mode).
    #[arg(long, env = "LWA_EMULATOR_CA", value_name = "PATH")]
    ca: Option<PathBuf>,
    /// CBL: URL is the verification page; type this user code there.
    #[arg(long, value_name = "CODE")]
    user_code: Option<String>,
    /// Do not visit the redirect target; just print it.
    #[arg(long)]
    no_follow: bool,
    /// Print the landing URL with the authorization code in full (as a browser's address bar
    /// would show it). Without this the code is shortened.
    #[arg(long)]
    show_code: bool,
    /// The authorize URL (or the verification URL with --user-code).
    url: String,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lwa-emulator: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    match cli.command {
        Some(Command::Browse(args)) => runtime.block_on(browse(args)),
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        None => runtime.block_on(serve(cli.serve)),
    }
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    if args.log {
        // Colour only on a terminal (tests and CI capture this log).
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "lwa_emulator=info".into()),
            )
            .init();
    }
    let (registry, mut settings) = match &args.config {
        Some(path) => Registry::load(path)?,
        None => (Registry::default(), Settings::default()),
    };
    if let Some(secs) = args.token_lifetime {
        settings.access_token_lifetime_secs = secs.max(1);
    }
    if args.rotate_refresh_tokens {
        settings.refresh_token_mode = lwa_emulator::RefreshTokenMode::Rotate;
    }
    if args.omit_refresh_tokens {
        settings.refresh_token_mode = lwa_emulator::RefreshTokenMode::Omit;
    }
    if let Some(grace) = args.refresh_grace {
        settings.refresh_token_grace_secs = grace;
    }
    settings.slow_down |= args.slow_down;
    settings.require_pkce |= args.require_pkce;
    let config = EmulatorConfig {
        bind: args.bind,
        allow_non_loopback_http: args.allow_non_loopback_http,
        tls: (args.https || args.ca_out.is_some() || !args.tls_san.is_empty()).then(|| TlsConfig {
            sans: args.tls_san.clone(),
            ca_out: args.ca_out.clone(),
        }),
        registry,
        settings,
        log_requests: args.log,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    let mut line = format!("LWA_EMULATOR_READY base_url={}", emulator.base_url());
    if let Some(ca) = emulator.ca_cert_path() {
        line.push_str(&format!(" ca={}", ca.display()));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    wait_for_signal().await;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn browse(args: BrowseArgs) -> Result<(), CliError> {
    let consent = if args.deny {
        Consent::Deny
    } else {
        Consent::Allow
    };
    let mut user = match &args.ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| CliError::ReadCa {
                path: path.clone(),
                source,
            })?;
            ScriptedUser::with_root_ca(args.email.clone(), args.password.clone(), &pem)
        }
        None => ScriptedUser::new(args.email.clone(), args.password.clone()),
    }?;
    if let Some(code) = &args.user_code {
        user.enter_user_code(&args.url, code, consent).await?;
        // Not the code itself: whoever holds a live user code can link the speaker.
        println!("CODE_{}", if args.deny { "DENIED" } else { "APPROVED" });
        return Ok(());
    }
    if args.no_follow {
        let target = user.authorize(&args.url, consent).await?;
        println!("REDIRECT url={}", shown(&target, args.show_code));
        return Ok(());
    }
    let landing = user.browse(&args.url, consent).await?;
    println!(
        "LANDED status={} url={}",
        landing.status,
        shown(&landing.redirect, args.show_code)
    );
    Ok(())
}

/// The URL with its `code` shortened unless asked otherwise.
fn shown(url: &url::Url, show_code: bool) -> String {
    if show_code {
        return url.to_string();
    }
    let mut u = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                redact::short(&v)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if pairs.is_empty() {
        return u.to_string();
    }
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}
