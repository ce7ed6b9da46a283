//! What the CLI prints: spinners on a terminal, plain lines in a pipe, JSON lines for scripts.
//! Progress goes to stderr; results (tables, JSON) to stdout.

use std::sync::Mutex;
use std::time::Duration;

use companion_app::commands::StatusReport;
use companion_app::discovery::{Device, DeviceEvent};
use companion_app::handover::account_words;
use companion_app::pairing::{PairEvent, PairReport, Step};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use shared_protocol::message::{PairingWindow, ProgressStage};

/// How to show things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners (a terminal).
    Fancy,
    /// One line per event.
    Plain,
    /// JSON lines on stdout.
    Json,
}

/// The printer.
#[derive(Debug)]
pub struct Display {
    mode: Mode,
    spinner: Mutex<Option<ProgressBar>>,
    /// The sign-in URL was shown (a later browser failure shows it again).
    url_shown: std::sync::atomic::AtomicBool,
}

/// The sign-in URL for a person to open, and how the sign-in comes back.
fn open_by_hand(url: &str, automatic: bool) -> String {
    let mut text = String::from("  Open this address in a browser and sign in with Amazon:\n");
    text.push_str(&format!("    {url}\n"));
    text.push_str(&come_back_hint(automatic));
    text
}

fn come_back_hint(automatic: bool) -> String {
    if automatic {
        "  This window continues by itself when the browser comes back. If the browser ends on a page that does not load, paste its address here and press Enter.".into()
    } else {
        "  When the browser lands on the return page, paste that page's full address here and press Enter.".into()
    }
}

fn stage_text(stage: ProgressStage) -> &'static str {
    match stage {
        ProgressStage::Received => "speaker received the code",
        ProgressStage::ExchangingCode => "speaker is exchanging the code with Amazon",
        ProgressStage::StoringTokens => "speaker is storing its tokens",
        ProgressStage::FetchingProfile => "speaker is reading the account",
    }
}

fn device_json(d: &Device) -> serde_json::Value {
    json!({
        "id": d.id.as_str(),
        "name": d.name,
        "addresses": d.tcp_addrs().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "transports": d.endpoints.iter().map(|e| e.kind().to_string()).collect::<Vec<_>>(),
        "paired": d.paired,
        "pairing": d.pairing.as_str(),
        "needs_network": d.needs_network,
    })
}

fn device_line(d: &Device) -> String {
    let addr = d
        .tcp_addrs()
        .first()
        .map_or_else(|| "-".to_owned(), ToString::to_string);
    let transports: Vec<String> = d.endpoints.iter().map(|e| e.kind().to_string()).collect();
    format!(
        "{:<24} {:<20} {:<22} {:<9} {:<6} {}{}",
        d.name,
        d.id,
        addr,
        transports.join(","),
        if d.paired { "yes" } else { "no" },
        d.pairing.as_str(),
        // The speaker's last connectivity check failed: pairing starts with the Wi-Fi step.
        if d.needs_network {
            "  needs Wi-Fi setup"
        } else {
            ""
        }
    )
}

fn window_text(w: &PairingWindow) -> String {
    match w {
        PairingWindow::Open { closes_in_secs } => {
            format!(
                "open (closes in {}m{:02}s)",
                closes_in_secs / 60,
                closes_in_secs % 60
            )
        }
        PairingWindow::Closed => "closed".into(),
        PairingWindow::LockedOut { retry_in_secs } => {
            format!("locked after wrong setup codes (retry in {retry_in_secs}s)")
        }
    }
}

impl Display {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            spinner: Mutex::new(None),
            url_shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn spinner(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.spinner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Prints a line without tearing a spinner.
    fn note(&self, line: &str) {
        match self.spinner().as_ref() {
            Some(pb) => pb.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    pub fn pair_event(&self, ev: &PairEvent) {
        if self.mode == Mode::Json {
            if let Ok(s) = serde_json::to_string(ev) {
                println!("{s}");
            }
            return;
        }
        match ev {
            PairEvent::StepStarted { step } => self.step_started(*step),
            PairEvent::StepDone {
                step,
                millis,
                detail,
            } => {
                let line = format!("✓ {:<28} {:>9.1} ms  {detail}", step.label(), millis);
                match self.spinner().take() {
                    Some(pb) => pb.finish_with_message(line),
                    None => eprintln!("{line}"),
                }
            }
            PairEvent::LoginUrl {
                url,
                automatic,
                browser_opened,
            } => self.login_url(url, *automatic, *browser_opened),
            PairEvent::BrowserFailed {
                message,
                url,
                automatic,
            } => {
                // Before the URL was shown, the URL block follows anyway; after it, show it again.
                if self.url_shown.load(std::sync::atomic::Ordering::Relaxed) {
                    self.note(&format!("  {message}\n{}", open_by_hand(url, *automatic)));
                } else {
                    self.note(&format!("  {message}"));
                }
            }
            PairEvent::PasteRejected { why, tries_left } => self.note(&format!(
                "  {why}. Paste it again and press Enter ({tries_left} {} left).",
                if *tries_left == 1 { "try" } else { "tries" }
            )),
            PairEvent::Progress { stage } => self.doing(stage_text(*stage)),
            PairEvent::Retrying { attempt, reason } => {
                self.note(&format!(
                    "  retrying the exchange with the same sign-in ({attempt}): {reason}"
                ));
            }
            PairEvent::WifiNeeded { reason } => self.note(&format!("  {reason}")),
            PairEvent::WifiProgress { stage } => {
                self.doing(companion_app::wifi::stage_words(*stage));
            }
            PairEvent::WifiFailed { message } => self.note(&format!("  ✗ {message}")),
        }
    }

    /// A spinner on a terminal; a line otherwise. No spinner over the Wi-Fi step: its prompts
    /// write to the terminal.
    fn step_started(&self, step: Step) {
        match self.mode {
            Mode::Fancy if step != Step::Wifi => {
                let pb = ProgressBar::new_spinner();
                pb.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_message(format!("{}…", step.label()));
                pb.enable_steady_tick(Duration::from_millis(80));
                *self.spinner() = Some(pb);
            }
            _ => eprintln!("… {}", step.label()),
        }
    }

    fn login_url(&self, url: &str, automatic: bool, browser_opened: bool) {
        let text = if browser_opened {
            format!("  Sign in with Amazon in the browser window that opened. If none did, open:\n    {url}\n{}", come_back_hint(automatic))
        } else {
            open_by_hand(url, automatic)
        };
        self.url_shown
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.note(&text);
    }

    /// What is happening within a step: the spinner's text, or an indented line.
    fn doing(&self, text: &str) {
        match self.spinner().as_ref() {
            Some(pb) => pb.set_message(format!("{text}…")),
            None => eprintln!("  {text}"),
        }
    }

    /// Removes the spinner (a prompt follows on the terminal).
    pub fn clear_spinner(&self) {
        if let Some(pb) = self.spinner().take() {
            pb.finish_and_clear();
        }
    }

    pub fn abandon(&self) {
        if let Some(pb) = self.spinner().take() {
            pb.abandon_with_message("✗ failed");
        }
    }

    pub fn pair_report(&self, r: &PairReport) {
        if self.mode == Mode::Json {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("event".into(), json!("result"));
                o.insert(
                    "timings".into(),
                    r.timings
                        .iter()
                        .map(|(s, ms)| (s.name().to_owned(), json!(ms)))
                        .collect::<serde_json::Map<_, _>>()
                        .into(),
                );
            }
            println!("{v}");
            return;
        }
        // "Alice Example (alice@example.com)"; the id when the profile was not readable.
        let account = account_words(r.account.as_ref(), r.user_id.as_ref())
            .map(|a| format!(" to {a}"))
            .unwrap_or_default();
        println!("Linked {} ({}){account}.", r.name, r.device_id);
        println!("  {:<28} {:>10}", "step", "time");
        for (step, ms) in &r.timings {
            println!("  {:<28} {:>7.1} ms", step.label(), ms);
        }
        println!("  {:<28} {:>7.1} ms", "total", r.total_millis);
    }

    pub fn device_event(&self, ev: &DeviceEvent) {
        match (self.mode, ev) {
            (Mode::Json, DeviceEvent::Appeared(d)) => {
                println!("{}", json!({"event": "appeared", "device": device_json(d)}))
            }
            (Mode::Json, DeviceEvent::Changed(d)) => {
                println!("{}", json!({"event": "changed", "device": device_json(d)}))
            }
            (Mode::Json, DeviceEvent::Gone(id)) => {
                println!("{}", json!({"event": "gone", "id": id.as_str()}))
            }
            (_, DeviceEvent::Appeared(d)) => eprintln!("+ {}", device_line(d)),
            (_, DeviceEvent::Changed(d)) => eprintln!("~ {}", device_line(d)),
            (_, DeviceEvent::Gone(id)) => eprintln!("- {id} gone"),
        }
    }

    pub fn device_table(&self, devices: &[Device]) {
        if self.mode == Mode::Json {
            println!(
                "{}",
                json!({"event": "list", "devices": devices.iter().map(device_json).collect::<Vec<_>>()})
            );
            return;
        }
        if devices.is_empty() {
            println!("No speakers found.");
            return;
        }
        println!(
            "{:<24} {:<20} {:<22} {:<9} {:<6} pairing",
            "name", "id", "address", "transport", "paired"
        );
        for d in devices {
            println!("{}", device_line(d));
        }
    }

    pub fn status(&self, report: &StatusReport) {
        let (hello, addr, full) = (&report.hello, &report.reached, report.auth.as_ref());
        let summary = hello.agent.as_ref();
        if self.mode == Mode::Json {
            println!(
                "{}",
                json!({
                    "address": addr.to_string(),
                    "transport": addr.transport.to_string(),
                    "software": hello.software,
                    "protocol": hello.version.to_string(),
                    "summary": summary,
                    "status": full,
                })
            );
            return;
        }
        println!(
            "speaker     {addr} ({}, protocol {})",
            hello.software, hello.version
        );
        if let Some(s) = summary {
            println!("name        {}", s.friendly_name);
            println!("id          {}", s.device_id);
            println!("paired      {}", if s.paired { "yes" } else { "no" });
            println!("pairing     {}", window_text(&s.window));
        }
        match (full, &report.refused) {
            (Some(st), _) => {
                println!(
                    "auth state  {} ({})",
                    st.auth_state.in_words(),
                    st.auth_state
                );
                if let Some(words) = st.auth_error.in_words() {
                    println!("last error  {words} ({})", st.auth_error);
                }
                match (&st.account, &st.user_id) {
                    (Some(a), _) => println!("account     {a}"),
                    (None, Some(u)) => println!("account     {u}"),
                    (None, None) => {}
                }
            }
            (None, Some(why)) => {
                println!("auth state  not shown: the setup code was given, but {why}")
            }
            (None, None) => println!(
                "auth state  not shown: give --setup-code (while the pairing window is open)"
            ),
        }
    }
}
