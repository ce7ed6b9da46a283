//! What a speaker's Hello says about its pairing window, before any setup-code handshake.
//!
//! Outside its window the agent answers the Hello, then refuses and closes (protocol.md §16):
//! running the PAKE anyway would only race that close (over Bluetooth the write of the PAKE
//! message can lose to it and show as a dropped link). So a command that needs the window reads
//! the Hello's public summary first and, when the window is shut, says what to do instead.

use shared_protocol::message::{AgentSummary, ErrorBody, ErrorKind, PairingWindow};

use crate::words::Words;

/// What to do when the window is shut, named once for every command (the command to run on
/// the speaker is for a terminal only).
pub fn open_the_window() -> Words {
    Words::from("open the pairing window on the speaker: press its pairing button")
        .terminal_only(" or run `avs-device-agent pair` on it")
}

/// The refusal the speaker's Hello implies, or `None` when its window is open (or it sent no
/// summary: then the handshake decides).
pub fn refusal(summary: Option<&AgentSummary>) -> Option<ErrorBody> {
    match summary?.window {
        PairingWindow::Open { .. } => None,
        PairingWindow::Closed => Some(ErrorBody::new(
            ErrorKind::WindowClosed,
            format!(
                "the speaker's pairing window is closed; {}",
                open_the_window()
            ),
        )),
        PairingWindow::LockedOut { retry_in_secs } => Some(ErrorBody::new(
            ErrorKind::LockedOut,
            format!(
                "the speaker's pairing window closed after wrong setup codes (it can be reopened \
                 from the network in {retry_in_secs} s); to reopen it now, press the speaker's \
                 pairing button"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::ids::DeviceId;

    fn summary(window: PairingWindow) -> AgentSummary {
        AgentSummary {
            device_id: DeviceId::new("0123456789abcdef"),
            friendly_name: "Kitchen".into(),
            paired: true,
            window,
        }
    }

    #[test]
    fn a_shut_window_is_named_with_what_opens_it() {
        let body = refusal(Some(&summary(PairingWindow::Closed))).unwrap();
        assert_eq!(body.kind, ErrorKind::WindowClosed);
        assert!(
            body.message.ends_with(&open_the_window().terminal()),
            "{}",
            body.message
        );
        let body = refusal(Some(&summary(PairingWindow::LockedOut {
            retry_in_secs: 60,
        })))
        .unwrap();
        assert_eq!(body.kind, ErrorKind::LockedOut);
        assert!(body.message.contains("60 s"), "{}", body.message);
        assert!(refusal(Some(&summary(PairingWindow::Open { closes_in_secs: 5 }))).is_none());
        assert!(refusal(None).is_none());
    }

    #[test]
    fn the_command_on_the_speaker_is_for_a_terminal_only() {
        let open = open_the_window();
        assert_eq!(
            open.terminal(),
            "open the pairing window on the speaker: press its pairing button or run `avs-device-agent pair` on it"
        );
        assert_eq!(
            open.plain(),
            "open the pairing window on the speaker: press its pairing button"
        );
    }
}
