//! The CLI's Wi-Fi chooser: a numbered list on stderr, a pick on stdin, the password read with
//! the terminal's echo off. Or, for scripts, `--wifi-ssid` + `--wifi-password-file`.
//!
//! Reading stdin here is safe because the pasted-address reader (for the sign-in) starts only
//! when the sign-in does (see `pair_cmd`), after the Wi-Fi step is over.
//!
//! The dialog ([`Dialog`]) reads any `BufRead` and writes any `Write`, so its tests script a
//! whole conversation; [`Prompt`] hands it locked stdin and stderr with the echo switched off
//! for the password. Every line read is bounded ([`MAX_LINE`]) and the password is read into
//! memory that is zeroized and never written back out.

use std::io::{BufRead, Read as _, Write};
use std::path::Path;

use companion_app::error::PairError;
use companion_app::wifi::{BoxFuture, FixedChoice, WifiChoice, WifiChooser, WifiQuestion};
use shared_protocol::message::{Ssid, WifiNetwork};
use shared_protocol::secret::WifiPassphrase;
use zeroize::Zeroizing;

/// The largest `--wifi-password-file` read.
const MAX_PASSWORD_FILE: u64 = 1024;

/// `--wifi-ssid` with `--wifi-password-file` (absent: an open network).
pub fn fixed(ssid: &str, password_file: Option<&Path>) -> Result<FixedChoice, PairError> {
    let ssid = Ssid::new(ssid.as_bytes().to_vec())
        .map_err(|e| PairError::Usage(format!("--wifi-ssid: {e}")))?;
    let passphrase = match password_file {
        None => None,
        Some(p) => {
            let bad = |why: String| {
                PairError::Usage(format!("--wifi-password-file {}: {why}", p.display()))
            };
            // Bounded like the setup code file: a passphrase is at most 128 bytes, and a
            // mistaken path (a log, /dev/zero) must not be read whole. Room for all of it up
            // front, as for the typed password: no reallocation leaves a copy unzeroized.
            let mut text = Zeroizing::new(String::with_capacity(MAX_PASSWORD_FILE as usize + 1));
            std::fs::File::open(p)
                .and_then(|f| f.take(MAX_PASSWORD_FILE + 1).read_to_string(&mut text))
                .map_err(|e| bad(e.to_string()))?;
            if text.len() as u64 > MAX_PASSWORD_FILE {
                return Err(bad("the file is larger than 1 KiB".into()));
            }
            // The first line only (what --help promises): a second line is not the password.
            let line = text.split('\n').next().unwrap_or_default();
            Some(WifiPassphrase::new(line.trim_end_matches('\r')))
        }
    };
    Ok(FixedChoice(Some(WifiChoice {
        ssid,
        passphrase,
        hidden: false,
    })))
}

/// The longest line read from the terminal (a number, a network name, a password: all far
/// shorter); a file or /dev/zero on stdin must not be read whole.
const MAX_LINE: usize = 1024;

/// Why the dialog ended without an answer (the user giving up is `Ok(None)`, not this).
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Standard input closed (Ctrl-D, or a script ran out of lines).
    #[error("no network chosen: the input ended before an answer")]
    EndOfInput,
    /// A line longer than [`MAX_LINE`].
    #[error("no network chosen: an answer was longer than 1 KiB")]
    TooLong,
    /// Reading failed.
    #[error("no network chosen: reading the answer failed: {0}")]
    Read(#[from] std::io::Error),
}

/// Asks on the terminal.
#[derive(Debug, Default)]
pub struct Prompt;

impl WifiChooser for Prompt {
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
        let networks = question.networks.to_vec();
        let last = question.last_error().map(str::to_owned);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut dialog = Dialog::new(std::io::stdin().lock(), std::io::stderr(), true);
                dialog.ask(&networks, last.as_deref()).unwrap_or_else(|e| {
                    let _ = writeln!(std::io::stderr(), "\n  ✗ {e}");
                    None
                })
            })
            .await
            .ok()
            .flatten()
        })
    }
}

/// One question-and-answer exchange: answers from `input`, the list and questions to `out`.
pub struct Dialog<R, W> {
    input: R,
    out: W,
    /// Switch the terminal's echo off for the password (the real terminal, not a script).
    hide_echo: bool,
}

/// What the number picked.
enum Pick<'n> {
    Scanned(&'n WifiNetwork),
    Hidden,
}

impl<R: BufRead, W: Write> Dialog<R, W> {
    pub fn new(input: R, out: W, hide_echo: bool) -> Self {
        Self {
            input,
            out,
            hide_echo,
        }
    }

    /// Shows the networks (and the previous failure), asks for one and its password.
    /// `Ok(None)`: the user gave up (an empty answer to the number).
    pub fn ask(
        &mut self,
        networks: &[WifiNetwork],
        last: Option<&str>,
    ) -> Result<Option<WifiChoice>, PromptError> {
        if let Some(m) = last {
            self.say(format_args!("  ✗ {m}\n"));
        }
        let shown: Vec<&WifiNetwork> = networks.iter().filter(|n| !n.ssid.is_empty()).collect();
        self.list(&shown);
        let Some(pick) = self.pick(&shown)? else {
            return Ok(None);
        };
        let (ssid, hidden, needs_pass) = match pick {
            Pick::Hidden => (self.hidden_name()?, true, true),
            Pick::Scanned(n) => (n.ssid.clone(), false, n.security.needs_passphrase()),
        };
        let passphrase = if needs_pass {
            self.password(&ssid, hidden)?
        } else {
            None
        };
        Ok(Some(WifiChoice {
            ssid,
            passphrase,
            hidden,
        }))
    }

    /// The numbered list, signal bars, lock and "(known)", then "0) Other network…".
    fn list(&mut self, shown: &[&WifiNetwork]) {
        self.say(format_args!("Wi-Fi networks the speaker sees:\n"));
        for (i, n) in shown.iter().enumerate() {
            let lock = if n.security.needs_passphrase() {
                "🔒"
            } else if n.security.is_supported() {
                "  "
            } else {
                "⛔"
            };
            let known = if n.known { "  (known)" } else { "" };
            let (number, bars, name) = (i + 1, bars(n.signal), n.ssid.display());
            self.say(format_args!(
                "  {number:>2}) {bars} {lock} {name:<32} {:>3}%{known}\n",
                n.signal
            ));
        }
        self.say(format_args!("   0) Other network… (hidden)\n"));
    }

    /// Asks for a number until it names a network the speaker can join (or 0, or nothing).
    fn pick<'n>(&mut self, shown: &[&'n WifiNetwork]) -> Result<Option<Pick<'n>>, PromptError> {
        loop {
            self.say(format_args!("Network number (empty to give up): "));
            let line = self.line()?;
            let answer = line.trim();
            if answer.is_empty() {
                return Ok(None);
            }
            match answer.parse::<usize>() {
                Ok(0) => return Ok(Some(Pick::Hidden)),
                Ok(n) if n <= shown.len() => {
                    let Some(&net) = shown.get(n - 1) else {
                        continue;
                    };
                    if net.security.is_supported() {
                        return Ok(Some(Pick::Scanned(net)));
                    }
                    self.say(format_args!(
                        "  ✗ {} uses a security the speaker can't join (enterprise or WEP)\n",
                        net.ssid
                    ));
                }
                _ => self.say(format_args!(
                    "  ✗ Type a number from 0 to {}, or nothing to give up\n",
                    shown.len()
                )),
            }
        }
    }

    /// Asks for a hidden network's name until it is one (1-32 bytes).
    fn hidden_name(&mut self) -> Result<Ssid, PromptError> {
        loop {
            self.say(format_args!("Network name: "));
            let name = self.line()?;
            if name.is_empty() {
                self.say(format_args!("  ✗ Type the network's name\n"));
                continue;
            }
            match Ssid::new(name.into_bytes()) {
                Ok(ssid) => return Ok(ssid),
                Err(e) => self.say(format_args!("  ✗ {e}\n")),
            }
        }
    }

    /// Reads the password (the echo off on a terminal); an empty one means an open network.
    fn password(
        &mut self,
        ssid: &Ssid,
        hidden: bool,
    ) -> Result<Option<WifiPassphrase>, PromptError> {
        let open = if hidden { " (empty if open)" } else { "" };
        self.say(format_args!("Password for {ssid}{open}: "));
        let _quiet = self.hide_echo.then(EchoOff::new);
        // Room for the longest line up front: no reallocation leaves a copy behind unzeroized.
        let mut line = Zeroizing::new(String::with_capacity(MAX_LINE + 1));
        self.read_bounded(&mut line)?;
        let p = line.trim_end_matches(['\r', '\n']);
        Ok((!p.is_empty()).then(|| WifiPassphrase::new(p)))
    }

    /// One line without its line ending.
    fn line(&mut self) -> Result<String, PromptError> {
        let mut line = String::new();
        self.read_bounded(&mut line)?;
        line.truncate(line.trim_end_matches(['\r', '\n']).len());
        Ok(line)
    }

    /// Reads up to [`MAX_LINE`] bytes of one line into `buf`.
    fn read_bounded(&mut self, buf: &mut String) -> Result<(), PromptError> {
        let read = (&mut self.input).take(MAX_LINE as u64 + 1).read_line(buf)?;
        match read {
            0 => Err(PromptError::EndOfInput),
            n if n > MAX_LINE => Err(PromptError::TooLong),
            _ => Ok(()),
        }
    }

    /// Writes to the terminal; a closed terminal only loses the text (the answer still decides).
    fn say(&mut self, text: std::fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(text).and_then(|()| self.out.flush());
    }
}

fn bars(signal: u8) -> &'static str {
    match signal {
        0..=24 => "▂   ",
        25..=49 => "▂▄  ",
        50..=74 => "▂▄▆ ",
        _ => "▂▄▆█",
    }
}

/// The terminal's echo off while this lives (restored on drop, also on an error); nothing when
/// stdin is not a terminal.
struct EchoOff(Option<nix::sys::termios::Termios>);

impl EchoOff {
    fn new() -> Self {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet.local_flags.insert(LocalFlags::ECHONL);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        }
        Self(saved)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::message::{WifiBand, WifiSecurity};

    fn net(name: &str, security: WifiSecurity) -> WifiNetwork {
        WifiNetwork {
            ssid: Ssid::new(name.as_bytes().to_vec()).unwrap(),
            signal: 70,
            security,
            band: WifiBand::Ghz5,
            known: false,
        }
    }

    /// Home-5G (WPA2), Cafe (open), Corp (enterprise), and a hidden one the list leaves out.
    fn scan() -> Vec<WifiNetwork> {
        vec![
            net("Home-5G", WifiSecurity::Wpa2Psk),
            net("", WifiSecurity::Wpa2Psk),
            net("Cafe", WifiSecurity::Open),
            net("Corp", WifiSecurity::Enterprise),
        ]
    }

    /// Runs the dialog on scripted input; returns its answer and everything it wrote.
    fn converse(
        input: &str,
        last: Option<&str>,
    ) -> (Result<Option<WifiChoice>, PromptError>, String) {
        let mut out = Vec::new();
        let answer = Dialog::new(input.as_bytes(), &mut out, false).ask(&scan(), last);
        (answer, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_number_picks_the_listed_network_and_an_open_one_asks_no_password() {
        let (answer, out) = converse("2\n", Some("Wrong password for Home-5G"));
        let c = answer.unwrap().unwrap();
        assert_eq!((c.ssid.display(), c.hidden), ("Cafe".to_owned(), false));
        assert!(c.passphrase.is_none());
        assert!(out.starts_with("  ✗ Wrong password for Home-5G\n"), "{out}");
        for (number, name) in [(1, "Home-5G"), (2, "Cafe"), (3, "Corp")] {
            let start = format!("  {number:>2}) ");
            let line = out.lines().find(|l| l.starts_with(&start));
            assert!(
                line.is_some_and(|l| l.contains(name)),
                "{name} at {number} in {out}"
            );
        }
        assert!(out.contains("\n   0) Other network… (hidden)\n"), "{out}");
        assert!(
            !out.contains("   4) "),
            "the hidden network is not listed: {out}"
        );
        assert!(!out.contains("Password"), "{out}");
    }

    #[test]
    fn garbage_out_of_range_and_unjoinable_answers_ask_again() {
        let (answer, out) = converse("abc\n9\n-1\n3\n1\nhunter2hunter2\n", None);
        let c = answer.unwrap().unwrap();
        assert_eq!(c.ssid.display(), "Home-5G");
        assert_eq!(c.passphrase.unwrap().expose_secret(), "hunter2hunter2");
        assert_eq!(
            out.matches("Network number (empty to give up): ").count(),
            5,
            "{out}"
        );
        assert_eq!(
            out.matches("✗ Type a number from 0 to 3").count(),
            3,
            "{out}"
        );
        assert_eq!(
            out.matches("Corp uses a security the speaker can't join")
                .count(),
            1
        );
    }

    #[test]
    fn an_empty_number_gives_up() {
        let (answer, out) = converse("\n1\n", None);
        assert!(answer.unwrap().is_none());
        assert_eq!(out.matches("Network number").count(), 1, "{out}");
    }

    #[test]
    fn zero_asks_for_a_hidden_network_by_name_and_an_empty_password_means_open() {
        let (answer, out) = converse("0\n\nAttic\n\n", None);
        let c = answer.unwrap().unwrap();
        assert_eq!((c.ssid.display(), c.hidden), ("Attic".to_owned(), true));
        assert!(c.passphrase.is_none());
        assert_eq!(
            out.matches("Network name: ").count(),
            2,
            "an empty name asks again: {out}"
        );
        assert!(
            out.ends_with("Password for Attic (empty if open): "),
            "{out}"
        );
        let (answer, out) = converse(&format!("0\n{}\nAttic\n\n", "x".repeat(33)), None);
        assert_eq!(answer.unwrap().unwrap().ssid.display(), "Attic");
        assert_eq!(
            out.matches("Network name: ").count(),
            2,
            "too long a name asks again: {out}"
        );
    }

    #[test]
    fn the_password_is_read_whole_and_never_written_out() {
        let (answer, out) = converse("1\n  pass phrase with spaces \r\n", None);
        let c = answer.unwrap().unwrap();
        let p = c.passphrase.as_ref().unwrap();
        assert_eq!(p.expose_secret(), "  pass phrase with spaces ");
        assert!(out.ends_with("Password for Home-5G: "), "{out}");
        assert!(!out.contains("pass phrase"), "{out}");
        assert!(
            !format!("{c:?}").contains("pass phrase"),
            "Debug redacts it"
        );
    }

    #[test]
    fn the_end_of_input_is_a_clear_error_at_every_question() {
        for input in ["", "abc\n", "0\n", "0\nAttic\n", "1\n"] {
            let (answer, _) = converse(input, None);
            let e = answer.map(|_| ()).unwrap_err();
            assert!(matches!(e, PromptError::EndOfInput), "{input:?}: {e:?}");
            assert_eq!(
                e.to_string(),
                "no network chosen: the input ended before an answer"
            );
        }
    }

    #[test]
    fn a_line_longer_than_the_bound_is_refused_not_read_whole() {
        let long = "7".repeat(MAX_LINE + 1);
        let (answer, _) = converse(&format!("{long}\n"), None);
        assert!(matches!(answer, Err(PromptError::TooLong)), "{answer:?}");
        let (answer, _) = converse(&format!("1\n{long}\n"), None);
        assert!(
            matches!(answer, Err(PromptError::TooLong)),
            "the password too"
        );
        // A line with no end (a file or /dev/zero on stdin) is read only up to the bound.
        let endless = "7".repeat(64 * MAX_LINE);
        let mut input = std::io::Cursor::new(endless.as_bytes());
        let answer = Dialog::new(&mut input, Vec::new(), false).ask(&scan(), None);
        assert!(matches!(answer, Err(PromptError::TooLong)), "{answer:?}");
        assert_eq!(
            input.position(),
            MAX_LINE as u64 + 1,
            "read no further than the bound"
        );
        let fits = "p".repeat(MAX_LINE - 1);
        let (answer, _) = converse(&format!("1\n{fits}\n"), None);
        assert_eq!(
            answer.unwrap().unwrap().passphrase.unwrap().expose_secret(),
            fits
        );
    }

    #[test]
    fn the_password_file_is_read_to_its_first_line_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "hunter2hunter2\n").unwrap();
        let FixedChoice(Some(c)) = fixed("Home", Some(&ok)).unwrap() else {
            panic!("no choice");
        };
        assert_eq!(c.passphrase.unwrap().expose_secret(), "hunter2hunter2");
        let two = dir.path().join("two");
        std::fs::write(&two, "pass phrase \r\nsecond line\n").unwrap();
        let FixedChoice(Some(c)) = fixed("Home", Some(&two)).unwrap() else {
            panic!("no choice");
        };
        assert_eq!(c.passphrase.unwrap().expose_secret(), "pass phrase ");
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(2048)).unwrap();
        let e = fixed("Home", Some(&big)).unwrap_err();
        assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
    }
}
