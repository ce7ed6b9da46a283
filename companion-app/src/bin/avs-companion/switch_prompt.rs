//! The CLI's answer to the speaker's account-switch question (issue 15.5): on a terminal it asks
//! "This speaker is linked to Alice Example (alice@example.com). Replace with Bob Example
//! (bob@example.com)? [y/N]"; `--yes` answers yes; with no terminal and no `--yes` the answer
//! is no, and the result says how to pass `--yes`.
//!
//! stdin is shared with the pasted-address reader of the sign-in: both take their lines from
//! one [`StdinLines`] slot, and the paste forwarder gives it back when the sign-in ends, so the
//! line typed as the answer is not swallowed by a reader that no longer has anyone to give it to.

use std::io::Write as _;
use std::sync::Arc;

use companion_app::account_switch::{AccountSwitchConfirm, SwitchQuestion};
use companion_app::wifi::BoxFuture;
use tokio::sync::mpsc::Receiver;
use tokio::sync::Mutex;

use crate::display::Display;

/// Lines typed on stdin, read on a thread started on first use; whoever holds the lock reads.
pub type StdinLines = Arc<Mutex<Option<Receiver<String>>>>;

/// Asks on the terminal.
#[derive(Debug)]
pub struct TerminalConfirm {
    pub lines: StdinLines,
    pub show: Arc<Display>,
}

impl AccountSwitchConfirm for TerminalConfirm {
    fn confirm<'a>(&'a mut self, question: SwitchQuestion<'a>) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.show.clear_spinner();
            eprint!("{}", question.prompt());
            let _ = std::io::stderr().flush();
            let mut slot = self.lines.lock().await;
            let lines = slot.get_or_insert_with(crate::stdin_lines);
            match lines.recv().await {
                Some(line) => is_yes(&line),
                None => false,
            }
        })
    }
}

/// `y` or `yes`, any case; everything else (an empty line too) is no.
pub fn is_yes(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Added to the "kept" result when nobody could be asked.
pub const NO_TERMINAL_HINT: &str =
    "not asked: no terminal; to replace the account, run pair again with --yes";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_replaces() {
        for yes in ["y", "Y", "yes", " YES \n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "n", "no", "yeah", "\n"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
