//! The CLI's Wi-Fi chooser: a numbered list on stderr, a pick on stdin, the password read with
//! the terminal's echo off. Or, for scripts, `--wifi-ssid` + `--wifi-password-file`.
//!
//! Reading stdin here is safe because the pasted-address reader (for the sign-in) starts only
//! when the sign-in does (see `pair_cmd`), after the Wi-Fi step is over.

use std::io::{BufRead as _, Write as _};
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
            use std::io::Read as _;
            let bad = |why: String| {
                PairError::Usage(format!("--wifi-password-file {}: {why}", p.display()))
            };
            // Bounded like the setup code file: a passphrase is at most 128 bytes, and a
            // mistaken path (a log, /dev/zero) must not be read whole.
            let mut text = Zeroizing::new(String::new());
            std::fs::File::open(p)
                .and_then(|f| f.take(MAX_PASSWORD_FILE + 1).read_to_string(&mut text))
                .map_err(|e| bad(e.to_string()))?;
            if text.len() as u64 > MAX_PASSWORD_FILE {
                return Err(bad("the file is larger than 1 KiB".into()));
            }
            let line = text.trim_end_matches(['\r', '\n']);
            Some(WifiPassphrase::new(line))
        }
    };
    Ok(FixedChoice(Some(WifiChoice {
        ssid,
        passphrase,
        hidden: false,
    })))
}

/// Asks on the terminal.
#[derive(Debug, Default)]
pub struct Prompt;

fn bars(signal: u8) -> &'static str {
    match signal {
        0..=24 => "▂   ",
        25..=49 => "▂▄  ",
        50..=74 => "▂▄▆ ",
        _ => "▂▄▆█",
    }
}

fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// Reads a line with the terminal's echo off (restored afterwards, also on error).
fn read_secret() -> Option<Zeroizing<String>> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = Zeroizing::new(String::new());
    let got = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, saved);
    }
    match got {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(Zeroizing::new(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        )),
    }
}

fn ask(networks: Vec<WifiNetwork>, last: Option<String>) -> Option<WifiChoice> {
    let mut err = std::io::stderr();
    if let Some(m) = &last {
        let _ = writeln!(err, "  ✗ {m}");
    }
    let _ = writeln!(err, "Wi-Fi networks the speaker sees:");
    let shown: Vec<&WifiNetwork> = networks.iter().filter(|n| !n.ssid.is_empty()).collect();
    for (i, n) in shown.iter().enumerate() {
        let lock = if n.security.needs_passphrase() {
            "🔒"
        } else if n.security.is_supported() {
            "  "
        } else {
            "⛔"
        };
        let _ = writeln!(
            err,
            "  {:>2}) {} {lock} {:<32} {:>3}%{}",
            i + 1,
            bars(n.signal),
            n.ssid.display(),
            n.signal,
            if n.known { "  (known)" } else { "" }
        );
    }
    let _ = writeln!(err, "   0) Other network… (hidden)");
    let _ = write!(err, "Network number (empty to give up): ");
    let pick = read_line()?;
    let pick = pick.trim();
    if pick.is_empty() {
        return None;
    }
    let n: usize = pick.parse().ok()?;
    let (ssid, hidden, needs_pass) = if n == 0 {
        let _ = write!(err, "Network name: ");
        let name = read_line()?;
        (Ssid::new(name.into_bytes()).ok()?, true, true)
    } else {
        let net = shown.get(n - 1)?;
        if !net.security.is_supported() {
            let _ = writeln!(
                err,
                "  {} uses a security the speaker can't join (enterprise or WEP)",
                net.ssid
            );
            return None;
        }
        (net.ssid.clone(), false, net.security.needs_passphrase())
    };
    let passphrase = if needs_pass {
        let _ = write!(
            err,
            "Password for {}{}: ",
            ssid,
            if hidden { " (empty if open)" } else { "" }
        );
        let p = read_secret()?;
        (!p.is_empty()).then(|| WifiPassphrase::new(p.as_str()))
    } else {
        None
    };
    Some(WifiChoice {
        ssid,
        passphrase,
        hidden,
    })
}

impl WifiChooser for Prompt {
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
        let networks = question.networks.to_vec();
        let last = question.last_error().map(str::to_owned);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask(networks, last))
                .await
                .ok()
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_is_read_to_its_first_line_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "hunter2hunter2\n").unwrap();
        let FixedChoice(Some(c)) = fixed("Home", Some(&ok)).unwrap() else {
            panic!("no choice");
        };
        assert_eq!(c.passphrase.unwrap().expose_secret(), "hunter2hunter2");
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(2048)).unwrap();
        let e = fixed("Home", Some(&big)).unwrap_err();
        assert!(e.to_string().contains("larger than 1 KiB"), "{e}");
    }
}
