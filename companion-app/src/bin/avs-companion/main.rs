//! `avs-companion`: pair an AVS speaker from a terminal. Thin: parsing and display only; the
//! work is in the `companion_app` library. Usage and exit codes: `docs/companion-cli.md`.

mod display;
mod switch_prompt;
mod wifi_prompt;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use companion_app::account_switch::FixedAnswer;
use companion_app::commands;
use companion_app::config::CompanionConfig;
use companion_app::connect::{Connectors, Target};
use companion_app::discovery::{Device, Discovery, MdnsOptions};
use companion_app::error::{ExitKind, PairError};
use companion_app::handover::HandoverError;
use companion_app::link::LinkTimeouts;
use companion_app::login::Browser;
use companion_app::pairing::{pair, PairOptions, PairReport};
use shared_protocol::ids::{ClientId, RedirectUri};
use shared_protocol::lwa::Region;
use shared_protocol::setup_code::SetupCode;
use url::Url;
use zeroize::Zeroizing;

use display::{Display, Mode};

#[derive(Debug, Parser)]
#[command(
    name = "avs-companion",
    version,
    about = "Set up an Alexa (AVS) speaker from this computer: find it, sign in with Amazon, hand the result over."
)]
struct Cli {
    /// Config file (default: $AVS_COMPANION_CONFIG or ~/.config/avs-pair/companion.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log details to stderr (`-v` info, `-vv` debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List speakers on the network (mDNS) and in Bluetooth range, live.
    Discover(DiscoverArgs),
    /// Pair a speaker: setup code, Amazon sign-in, hand over.
    Pair(Box<PairArgs>),
    /// Show a speaker's state (name, paired, pairing window; with the setup code also its
    /// Alexa authorization state).
    Status(StatusArgs),
    /// Make a speaker forget its Amazon account (needs the setup code).
    Reset(ResetArgs),
    /// Put a speaker on a Wi-Fi network (needs the setup code and an open pairing window).
    Wifi(WifiArgs),
    /// Show or change the remembered settings (client id, redirect URI, region, LWA URL).
    Config(ConfigArgs),
}

#[derive(Debug, Args, Clone)]
struct NetArgs {
    /// Only use this network interface for mDNS (repeatable).
    #[arg(long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// mDNS over IPv4 only.
    #[arg(long)]
    no_ipv6: bool,
}

impl NetArgs {
    fn mdns(&self) -> MdnsOptions {
        MdnsOptions {
            interfaces: (!self.interfaces.is_empty()).then(|| self.interfaces.clone()),
            ipv6: !self.no_ipv6,
            ..MdnsOptions::default()
        }
    }
}

#[derive(Debug, Args)]
struct DiscoverArgs {
    /// Stop after this many seconds (default 5; 0 = until Ctrl-C).
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// One JSON object per event on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(Debug, Args, Clone)]
struct DeviceArgs {
    /// The speaker: id, id prefix (4+ characters) or name. Default: the only one ready to pair.
    device: Option<String>,
    /// Skip discovery and connect to this address (HOST:PORT of the speaker's link; a host name
    /// is resolved, every address it has is tried).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "device", value_parser = parse_connect)]
    connect: Option<ConnectAddrs>,
    /// How long to look for the speaker, in seconds.
    #[arg(long, default_value_t = 10)]
    discover_timeout: u64,
    #[command(flatten)]
    net: NetArgs,
}

/// The addresses `--connect` names.
#[derive(Debug, Clone)]
struct ConnectAddrs(Vec<SocketAddr>);

/// Why `--connect` could not be used.
#[derive(Debug, thiserror::Error)]
enum ConnectArgError {
    #[error(
        "write it as HOST:PORT, e.g. 192.168.1.20:4590, [fe80::1%wlan0]:4590 or speaker.local:4590"
    )]
    Syntax,
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0:?} has no address")]
    NoAddress(String),
}

/// `IP:PORT` as is; `HOST:PORT` resolved (IPv4 first: a speaker listening on 0.0.0.0 answers
/// there, and `localhost` resolving to ::1 first would cost a refused attempt).
fn parse_connect(s: &str) -> Result<ConnectAddrs, ConnectArgError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(ConnectAddrs(vec![addr]));
    }
    let (host, port) = s.rsplit_once(':').ok_or(ConnectArgError::Syntax)?;
    if host.is_empty() || port.parse::<u16>().is_err() || host.contains(':') {
        return Err(ConnectArgError::Syntax);
    }
    use std::net::ToSocketAddrs as _;
    let mut addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|source| ConnectArgError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(ConnectArgError::NoAddress(host.to_owned()));
    }
    Ok(ConnectAddrs(addrs))
}

impl DeviceArgs {
    fn target(&self) -> Target {
        match &self.connect {
            Some(addrs) => Target::Address(addrs.0.clone()),
            None => Target::Discover {
                options: self.net.mdns(),
                device: self.device.clone(),
                timeout: Duration::from_secs(self.discover_timeout),
            },
        }
    }
}

#[derive(Debug, Args, Clone)]
struct CodeArgs {
    /// The speaker's setup code: 8 digits, the manual code with its check digit, or the QR text.
    /// Visible to other local users in the process list: prefer --setup-code-file or the prompt.
    #[arg(
        long,
        env = "AVS_SETUP_CODE",
        hide_env_values = true,
        value_name = "CODE"
    )]
    setup_code: Option<String>,
    /// Read the setup code from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "setup_code")]
    setup_code_file: Option<PathBuf>,
}

impl CodeArgs {
    /// The code from the flag, the file, or a prompt; `None` if none and no terminal.
    fn read(&self, prompt_allowed: bool) -> Result<Option<SetupCode>, PairError> {
        let text = if let Some(c) = &self.setup_code {
            zeroize_string(c.clone())
        } else if let Some(f) = &self.setup_code_file {
            let meta = std::fs::metadata(f).map_err(|e| config_io(f, e))?;
            if meta.len() > 1024 {
                return Err(PairError::SetupCode(
                    shared_protocol::setup_code::SetupCodeError::MalformedQr(
                        "the setup code file is larger than 1 KiB",
                    ),
                ));
            }
            zeroize_string(std::fs::read_to_string(f).map_err(|e| config_io(f, e))?)
        } else if prompt_allowed {
            // A terminal gets a prompt; a pipe (`echo 12345670 | avs-companion pair`) is read
            // as is: its first line, at most 1 KiB.
            if std::io::stdin().is_terminal() {
                eprint!("Setup code (on the speaker's label): ");
            }
            let mut line = zeroize_string(String::new());
            use std::io::{BufRead as _, Read as _};
            std::io::stdin()
                .lock()
                .take(1024)
                .read_line(&mut line)
                .map_err(|e| config_io(&PathBuf::from("<stdin>"), e))?;
            line
        } else {
            return Ok(None);
        };
        Ok(Some(SetupCode::parse(text.as_str())?))
    }
}

fn zeroize_string(s: String) -> Zeroizing<String> {
    Zeroizing::new(s)
}

fn config_io(path: &std::path::Path, e: std::io::Error) -> PairError {
    PairError::Config(companion_app::config::ConfigError::Io {
        path: path.to_owned(),
        source: e,
    })
}

#[derive(Debug, Args, Clone, Default)]
struct LwaArgs {
    /// Your LWA client id (security profile).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The redirect URI registered in the security profile's Allowed Return URLs.
    #[arg(long, value_name = "URI")]
    redirect_uri: Option<String>,
    /// Amazon region: na, eu or fe.
    #[arg(long, value_name = "REGION")]
    region: Option<Region>,
    /// LWA base URL instead of Amazon's (the emulator), e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL")]
    lwa_base_url: Option<Url>,
}

impl LwaArgs {
    fn as_config(&self) -> CompanionConfig {
        CompanionConfig {
            client_id: self.client_id.clone().map(ClientId::new),
            redirect_uri: self.redirect_uri.clone().map(RedirectUri::new),
            region: self.region.unwrap_or_default(),
            lwa_base_url: self.lwa_base_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct PairArgs {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    code: CodeArgs,
    #[command(flatten)]
    lwa: LwaArgs,
    /// Browser command (`%s` = URL). Default: $BROWSER, else the system's.
    #[arg(long, value_name = "CMD", conflicts_with = "no_browser")]
    browser: Option<String>,
    /// Don't open a browser: print the sign-in URL.
    #[arg(long)]
    no_browser: bool,
    /// Seconds allowed for the Amazon sign-in.
    #[arg(long, default_value_t = 300)]
    login_timeout: u64,
    /// Progress as JSON lines on stdout (for scripts).
    #[arg(long, conflicts_with = "plain")]
    json: bool,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
    /// Put the speaker on this Wi-Fi network if it is offline (no list, no prompt).
    #[arg(long, value_name = "SSID")]
    wifi_ssid: Option<String>,
    /// The Wi-Fi password, first line of this file (with --wifi-ssid; absent: open network).
    #[arg(long, value_name = "FILE", requires = "wifi_ssid")]
    wifi_password_file: Option<PathBuf>,
    /// Run the Wi-Fi step even if the speaker is online (move it to another network).
    #[arg(long)]
    wifi: bool,
    /// If the speaker is linked to another Amazon account, replace it without asking.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    code: CodeArgs,
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ResetArgs {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    code: CodeArgs,
    /// Don't ask for confirmation.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Args)]
struct WifiArgs {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    code: CodeArgs,
    /// The network (no list, no prompt).
    #[arg(long, value_name = "SSID")]
    wifi_ssid: Option<String>,
    /// Its password, first line of this file (with --wifi-ssid; absent: open network).
    #[arg(long, value_name = "FILE", requires = "wifi_ssid")]
    wifi_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    #[command(flatten)]
    lwa: LwaArgs,
    /// Forget the LWA base URL (use Amazon again).
    #[arg(long, conflicts_with = "lwa_base_url")]
    unset_lwa_base_url: bool,
    /// Forget the redirect URI (use the default, http://127.0.0.1/authresponse).
    #[arg(long, conflicts_with = "redirect_uri")]
    unset_redirect_uri: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitKind::Failure.code());
        }
    };
    let result = runtime.block_on(async {
        let result = run(cli).await;
        companion_app::ble::finish_disconnects().await;
        result
    });
    // The mDNS daemon and browser threads are shut down by their owners; don't wait on
    // anything else (a pending stdin read).
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Reported(kind)) => ExitCode::from(kind.code()),
    }
}

/// A failure already shown to the user.
struct Reported(ExitKind);

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AVS_COMPANION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only on a terminal (a piped or captured log stays plain text).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn run(cli: Cli) -> Result<(), Reported> {
    let config_path = match cli
        .config
        .clone()
        .map(Ok)
        .unwrap_or_else(CompanionConfig::default_path)
    {
        Ok(p) => p,
        Err(e) => return Err(report(&PairError::Config(e), false)),
    };
    match cli.command {
        Command::Discover(args) => discover(args).await,
        Command::Pair(args) => pair_cmd(*args, &config_path).await,
        Command::Wifi(args) => wifi_cmd(args).await,
        Command::Status(args) => status_cmd(args, &config_path).await,
        Command::Reset(args) => reset_cmd(args).await,
        Command::Config(args) => config_cmd(args, &config_path),
    }
}

fn report(err: &PairError, json: bool) -> Reported {
    let kind = err.exit_kind();
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "error", "exit_code": kind.code(), "kind": format!("{kind:?}"), "message": err.to_string()})
        );
    }
    eprintln!("error: {err}");
    Reported(kind)
}

/// Runs `fut`, or ends with `Cancelled` on Ctrl-C.
async fn cancellable<T>(
    fut: impl std::future::Future<Output = Result<T, PairError>>,
) -> Result<T, PairError> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => Err(PairError::Cancelled),
    }
}

async fn discover(args: DiscoverArgs) -> Result<(), Reported> {
    let json = args.json;
    // Speakers in Bluetooth range join the same list (one warning line if there is no adapter).
    let d: Discovery = Connectors::standard(None)
        .discovery(args.net.mdns())
        .await
        .map_err(|e| report(&e.into(), json))?;
    let (_, mut rx) = d.subscribe();
    let show = Display::new(if json { Mode::Json } else { Mode::Plain });
    if !json {
        eprintln!(
            "Looking for speakers{}… (Ctrl-C to stop)",
            if args.timeout > 0 {
                format!(" for {}s", args.timeout)
            } else {
                String::new()
            }
        );
    }
    let watch = async {
        loop {
            match rx.recv().await {
                Ok(ev) => show.device_event(&ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    let limit = async {
        if args.timeout == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(args.timeout)).await
        }
    };
    tokio::select! {
        _ = watch => {}
        _ = limit => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    show.device_table(&d.devices());
    Ok(())
}

async fn pair_cmd(args: PairArgs, config_path: &std::path::Path) -> Result<(), Reported> {
    let mode = output_mode(&args);
    let interactive = std::io::stdin().is_terminal();
    let mut opts =
        pair_options(&args, config_path, interactive).map_err(|e| report(&e, args.json))?;
    // Pasted addresses are read from stdin only once the sign-in starts, so the Wi-Fi prompt
    // before it has stdin to itself.
    let mut paste_feed = None;
    let stdin_slot = switch_prompt::StdinLines::default();
    if interactive {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        opts.pasted = Some(rx);
        paste_feed = Some(tx);
    }
    let show = std::sync::Arc::new(Display::new(mode));
    // A different account than the linked one: --yes replaces, a terminal asks, else keep.
    opts.confirm_switch = Some(if args.yes {
        Box::new(FixedAnswer(true))
    } else if interactive {
        Box::new(switch_prompt::TerminalConfirm {
            lines: stdin_slot.clone(),
            show: show.clone(),
        })
    } else {
        Box::new(FixedAnswer(false))
    });
    let target = args.device.target();
    let result = cancellable(pair(target, opts, &mut |ev| {
        if matches!(
            ev,
            companion_app::pairing::PairEvent::StepStarted {
                step: companion_app::pairing::Step::Login
            }
        ) {
            if let Some(tx) = paste_feed.take() {
                forward_stdin(stdin_slot.clone(), tx);
            }
        }
        show.pair_event(&ev)
    }))
    .await;
    pair_outcome(result, &show, &args, interactive)
}

/// JSON when asked; the live display only on a terminal that was not asked for plain lines.
fn output_mode(args: &PairArgs) -> Mode {
    if args.json {
        Mode::Json
    } else if args.plain || !std::io::stderr().is_terminal() {
        Mode::Plain
    } else {
        Mode::Fancy
    }
}

/// The pairing's options from the config file and the flags. Reads the setup code (a prompt
/// on a terminal) and, with `--wifi-ssid`, the Wi-Fi password file.
fn pair_options(
    args: &PairArgs,
    config_path: &std::path::Path,
    interactive: bool,
) -> Result<PairOptions, PairError> {
    let file = CompanionConfig::load(config_path)?;
    let config = file.merged_with(&args.lwa.as_config(), args.lwa.region.is_some());
    let client_id = config.require_client_id()?.clone();
    let redirect = config.redirect_target()?;
    let endpoints = config.endpoints()?;
    let Some(setup_code) = args.code.read(true)? else {
        return Err(PairError::SetupCode(
            shared_protocol::setup_code::SetupCodeError::Empty,
        ));
    };
    let mut opts = PairOptions::new(client_id, redirect, endpoints.authorize, setup_code);
    opts.browser = match (&args.browser, args.no_browser) {
        (_, true) => Browser::Manual,
        (Some(cmd), false) => Browser::Command(cmd.clone()),
        (None, false) => Browser::System,
    };
    // Without a terminal nobody can open the URL by hand or paste: a failed browser is final.
    opts.browser_failure_is_fatal = !interactive;
    opts.login_timeout = Duration::from_secs(args.login_timeout);
    // The Wi-Fi step: fixed answers for scripts, else the list and prompt on a terminal; with
    // neither, an offline speaker ends the pairing before the sign-in, saying why.
    opts.force_wifi = args.wifi;
    if let Some(ssid) = &args.wifi_ssid {
        let fixed = wifi_prompt::fixed(ssid, args.wifi_password_file.as_deref())?;
        opts.wifi = Some(Box::new(fixed));
    } else if interactive {
        opts.wifi = Some(Box::new(wifi_prompt::Prompt));
    }
    Ok(opts)
}

/// Shows how the pairing ended and picks the exit code.
fn pair_outcome(
    result: Result<PairReport, PairError>,
    show: &Display,
    args: &PairArgs,
    interactive: bool,
) -> Result<(), Reported> {
    match result {
        Ok(report) => {
            show.pair_report(&report);
            Ok(())
        }
        Err(e @ PairError::Handover(HandoverError::KeptCurrent { .. })) if !args.json => {
            // The user's own decision (or nobody could be asked): said plainly, not as an error.
            show.abandon();
            let text = e.to_string();
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_uppercase().to_string());
            eprintln!("{}{}.", first.unwrap_or_default(), chars.as_str());
            if !interactive && !args.yes {
                eprintln!("({})", switch_prompt::NO_TERMINAL_HINT);
            }
            Err(Reported(e.exit_kind()))
        }
        Err(e) => {
            show.abandon();
            Err(report(&e, args.json))
        }
    }
}

/// Forwards stdin's lines into `to` (the pasted-address channel the pairing holds) until the
/// sign-in drops that channel, then leaves the reader in `from` for the next prompt.
fn forward_stdin(from: switch_prompt::StdinLines, to: tokio::sync::mpsc::Sender<String>) {
    tokio::spawn(async move {
        let mut slot = from.lock().await;
        let lines = slot.get_or_insert_with(stdin_lines);
        loop {
            tokio::select! {
                _ = to.closed() => break,
                line = lines.recv() => match line {
                    Some(line) => {
                        if to.send(line).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
    });
}

/// Lines typed on stdin, read on a thread (stdin has no async read that can be cancelled).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            use std::io::{BufRead as _, Read as _};
            const MAX_LINE: usize = 8192;
            let stdin = std::io::stdin();
            let mut line = String::new();
            loop {
                line.clear();
                // One byte past the limit at most: a longer line ends the reader without
                // first being read into memory whole.
                match stdin.lock().take(MAX_LINE as u64 + 1).read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.len() > MAX_LINE || tx.blocking_send(line.clone()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    rx
}

async fn status_cmd(args: StatusArgs, config_path: &std::path::Path) -> Result<(), Reported> {
    let json = args.json;
    // The same file as `pair`: a broken one is reported here too, not first at pairing time.
    CompanionConfig::load(config_path).map_err(|e| report(&PairError::Config(e), json))?;
    let code = args.code.read(false).map_err(|e| report(&e, json))?;
    let connectors = Connectors::standard(None);
    let work = commands::status(
        args.device.target(),
        &connectors,
        code.as_ref(),
        LinkTimeouts::default(),
    );
    let status = cancellable(work).await.map_err(|e| report(&e, json))?;
    if let Some(why) = &status.refused {
        eprintln!("note: {why} (showing what the speaker announces)");
    }
    Display::new(if json { Mode::Json } else { Mode::Plain }).status(&status);
    Ok(())
}

async fn wifi_cmd(args: WifiArgs) -> Result<(), Reported> {
    let fail = |e: PairError| report(&e, false);
    let code = match args.code.read(true).map_err(fail)? {
        Some(c) => c,
        None => {
            return Err(fail(PairError::SetupCode(
                shared_protocol::setup_code::SetupCodeError::Empty,
            )))
        }
    };
    let mut chooser: Box<dyn companion_app::wifi::WifiChooser> = match &args.wifi_ssid {
        Some(ssid) => {
            Box::new(wifi_prompt::fixed(ssid, args.wifi_password_file.as_deref()).map_err(fail)?)
        }
        None if std::io::stdin().is_terminal() => Box::new(wifi_prompt::Prompt),
        None => {
            return Err(fail(PairError::Usage(
                "no terminal to pick a network on: give --wifi-ssid (and --wifi-password-file)"
                    .into(),
            )))
        }
    };
    let connectors = Connectors::standard(None);
    let mut progress = |stage| eprintln!("  {stage:?}");
    let work = commands::wifi(
        args.device.target(),
        &connectors,
        &code,
        LinkTimeouts::default(),
        chooser.as_mut(),
        &mut progress,
    );
    let out = cancellable(work).await.map_err(fail)?;
    let online = if out.status.online {
        "and reaches Amazon"
    } else {
        "but does not reach Amazon"
    };
    eprintln!(
        "{} ({}) is {} {online}.",
        out.device.name, out.device.id, out.joined
    );
    Ok(())
}

async fn reset_cmd(args: ResetArgs) -> Result<(), Reported> {
    let code = match args.code.read(true).map_err(|e| report(&e, false))? {
        Some(c) => c,
        None => {
            return Err(report(
                &PairError::SetupCode(shared_protocol::setup_code::SetupCodeError::Empty),
                false,
            ))
        }
    };
    let yes = args.yes;
    let confirm = |device: &Device| {
        if yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(PairError::Usage(
                "refusing to reset without --yes when there is no terminal to confirm on".into(),
            ));
        }
        eprint!(
            "Unlink {} ({}) from its Amazon account? Type yes: ",
            device.name, device.id
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if line.trim() == "yes" {
            Ok(())
        } else {
            Err(PairError::Cancelled)
        }
    };
    let connectors = Connectors::standard(None);
    let work = commands::reset(
        args.device.target(),
        &connectors,
        &code,
        LinkTimeouts::default(),
        confirm,
    );
    let device = cancellable(work).await.map_err(|e| report(&e, false))?;
    eprintln!(
        "{} ({}) has forgotten its Amazon account; pair it again while its pairing window is open.",
        device.name, device.id
    );
    Ok(())
}

fn config_cmd(args: ConfigArgs, path: &std::path::Path) -> Result<(), Reported> {
    let fail = |e: companion_app::config::ConfigError| report(&PairError::Config(e), false);
    let mut config = CompanionConfig::load(path).map_err(fail)?;
    let given = args.lwa.as_config();
    let changed = given.client_id.is_some()
        || given.redirect_uri.is_some()
        || args.lwa.region.is_some()
        || given.lwa_base_url.is_some()
        || args.unset_lwa_base_url
        || args.unset_redirect_uri;
    config = config.merged_with(&given, args.lwa.region.is_some());
    if args.unset_lwa_base_url {
        config.lwa_base_url = None;
    }
    if args.unset_redirect_uri {
        config.redirect_uri = None;
    }
    if changed {
        config.validate().map_err(fail)?;
        config.save(path).map_err(fail)?;
        eprintln!("saved {}", path.display());
    }
    print!(
        "# {}\n{}",
        path.display(),
        toml::to_string_pretty(&config).unwrap_or_default()
    );
    Ok(())
}
