//! The Wi-Fi screen's side in Rust: a [`WifiChooser`] that hands the speaker's scan to the
//! window and waits for the user's answer.
//!
//! The core's Wi-Fi step ([`companion_app::wifi`]) asks a chooser for a network whenever the
//! speaker is offline, and again after every failed join with the reason. Here that question
//! becomes a [`PairingEvent::WifiChoose`] (the scan, the last failure in words, the network it
//! tried), and the answer comes back through the `choose_wifi` command into a one-shot channel
//! the chooser awaits. Cancel needs nothing special: `cancel_pairing` aborts the pairing task,
//! which drops the waiting chooser (and the channel with it).
//!
//! Scanned networks are named by their index in the scan, not by name: an SSID is up to 32
//! arbitrary bytes, and only the index gets the exact bytes back to the speaker. The password
//! is a [`shared_protocol::secret::WifiPassphrase`] from the moment it is deserialized (redacted, zeroized).

use std::sync::{Arc, Mutex};

use companion_app::wifi::{BoxFuture, WifiChoice, WifiChooser, WifiQuestion};
use shared_protocol::message::wifi::MAX_PASSPHRASE_LEN;
use shared_protocol::message::{Ssid, WifiNetwork};
use tokio::sync::oneshot;

use crate::ipc::{CommandError, PairingEvent, WifiChoiceInput, WifiNetworkView};
use crate::window_question::WindowAsker;

/// The question the window has not answered yet.
#[derive(Debug)]
struct Waiting {
    networks: Vec<WifiNetwork>,
    answer: oneshot::Sender<WifiChoice>,
}

/// Where a pending question waits for `choose_wifi` (one per pairing attempt).
#[derive(Debug, Clone, Default)]
pub struct WifiSlot(Arc<Mutex<Option<Waiting>>>);

impl WifiSlot {
    fn put(&self, w: Waiting) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
    }

    /// Answers the pending question with the user's choice.
    pub fn answer(&self, input: WifiChoiceInput) -> Result<(), CommandError> {
        let not_waiting = || CommandError::new("The speaker is not waiting for a Wi-Fi network.");
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Checked before it is taken: a choice the window must correct keeps the question open.
        let networks = &guard.as_ref().ok_or_else(not_waiting)?.networks;
        let choice = to_choice(networks, input)?;
        let w = guard.take().ok_or_else(not_waiting)?;
        w.answer
            .send(choice)
            .map_err(|_| CommandError::new("The pairing is no longer waiting for a Wi-Fi network."))
    }
}

fn to_choice(networks: &[WifiNetwork], input: WifiChoiceInput) -> Result<WifiChoice, CommandError> {
    let passphrase = input.password.filter(|p| !p.expose_secret().is_empty());
    if let Some(p) = &passphrase {
        if p.expose_secret().len() > MAX_PASSPHRASE_LEN {
            return Err(CommandError::new(format!(
                "That password is too long (at most {MAX_PASSPHRASE_LEN} characters)."
            )));
        }
    }
    match input.network {
        Some(i) => {
            let net = usize::try_from(i)
                .ok()
                .and_then(|i| networks.get(i))
                .filter(|n| !n.ssid.is_empty())
                .ok_or_else(|| CommandError::new("That network is no longer in the list."))?;
            if !net.security.is_supported() {
                return Err(CommandError::new(format!(
                    "{} uses a security the speaker can't join (enterprise or WEP).",
                    net.ssid.display()
                )));
            }
            if net.security.needs_passphrase() && passphrase.is_none() && !net.known {
                return Err(CommandError::new(format!(
                    "Enter the password for {}.",
                    net.ssid.display()
                )));
            }
            Ok(WifiChoice {
                ssid: net.ssid.clone(),
                passphrase: if net.security.needs_passphrase() {
                    passphrase
                } else {
                    None
                },
                hidden: false,
            })
        }
        None => {
            let name = input.hidden_ssid.unwrap_or_default();
            let name = name.trim();
            if name.is_empty() {
                return Err(CommandError::new("Enter the network's name."));
            }
            let ssid = Ssid::new(name.as_bytes().to_vec())
                .map_err(|_| CommandError::new("A network name is at most 32 bytes long."))?;
            Ok(WifiChoice {
                ssid,
                passphrase,
                hidden: true,
            })
        }
    }
}

/// What the window shows of a scan: named networks only, each with its index.
pub fn views(networks: &[WifiNetwork]) -> Vec<WifiNetworkView> {
    networks
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.ssid.is_empty())
        .filter_map(|(i, n)| {
            Some(WifiNetworkView {
                index: u32::try_from(i).ok()?,
                ssid: n.ssid.display(),
                signal: n.signal.min(100),
                secured: n.security.needs_passphrase(),
                supported: n.security.is_supported(),
                known: n.known,
            })
        })
        .collect()
}

/// Asks the window which network.
pub type WindowChooser = WindowAsker<WifiSlot>;

impl WifiChooser for WindowChooser {
    fn choose<'a>(&'a mut self, question: WifiQuestion<'a>) -> BoxFuture<'a, Option<WifiChoice>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.slot.put(Waiting {
                networks: question.networks.to_vec(),
                answer: tx,
            });
            (self.sink)(PairingEvent::WifiChoose {
                pairing_id: self.pairing_id,
                networks: views(question.networks),
                last_error: question.last_error().map(str::to_owned),
                last_network: question.last_network().and_then(|i| u32::try_from(i).ok()),
            });
            // The user may take their time; Cancel aborts this task.
            rx.await.ok()
        })
    }
}

/// The words for a join stage, as a line of its own: the CLI's words
/// ([`companion_app::wifi::stage_words`]), capitalised ("Checking the password").
pub fn stage_text(stage: shared_protocol::message::WifiStage) -> String {
    let words = companion_app::wifi::stage_words(stage);
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::message::{WifiBand, WifiSecurity};
    use shared_protocol::secret::WifiPassphrase;

    fn net(name: &str, security: WifiSecurity) -> WifiNetwork {
        WifiNetwork {
            ssid: Ssid::new(name.as_bytes().to_vec()).expect("short"),
            signal: 70,
            security,
            band: WifiBand::Ghz5,
            known: false,
        }
    }

    #[test]
    fn index_picks_the_exact_network_and_password_rules_hold() {
        let nets = [
            net("", WifiSecurity::Wpa2Psk),
            net("Home-5G", WifiSecurity::Wpa2Psk),
        ];
        assert_eq!(views(&nets).len(), 1, "hidden entries are not listed");
        assert_eq!(views(&nets)[0].index, 1);
        let input = |network, password: Option<&str>| WifiChoiceInput {
            network,
            hidden_ssid: None,
            password: password.map(WifiPassphrase::new),
        };
        let c = to_choice(&nets, input(Some(1), Some("secret-pass"))).expect("ok");
        assert_eq!(c.ssid.display(), "Home-5G");
        assert!(!c.hidden);
        assert!(
            to_choice(&nets, input(Some(1), None)).is_err(),
            "secured needs a password"
        );
        assert!(
            to_choice(&nets, input(Some(0), Some("x"))).is_err(),
            "hidden row not choosable"
        );
        assert!(to_choice(&nets, input(Some(9), Some("x"))).is_err());
        let hidden = WifiChoiceInput {
            network: None,
            hidden_ssid: Some(" Attic ".into()),
            password: None,
        };
        let c = to_choice(&nets, hidden).expect("ok");
        assert!(c.hidden && c.passphrase.is_none());
        assert_eq!(c.ssid.display(), "Attic");
    }
}
