//! The one-time start URL: how the browser gets the sign-in URL without it touching a command
//! line.
//!
//! The authorize URL carries the login's `state`, which is what lets a redirect be trusted. A
//! browser is started with its URL as an argument, and every user of the machine can read any
//! process's arguments in `/proc/<pid>/cmdline` (or with `ps`). So the browser is given
//! `http://127.0.0.1:<port>/start/<token>` instead: the companion's own loopback listener
//! answers it once, with a `302` to the authorize URL, and only to a connection from the
//! companion's own user ([`super::peer`]). Anyone who reads the token from the command line
//! finds it either spent or refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use std::sync::Mutex;
use url::Url;

/// The path prefix of start URLs.
pub const START_PREFIX: &str = "/start/";

/// What a request for a start URL gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Go there (the authorize URL).
    Redirect(Url),
    /// The token was right but already used.
    Spent,
    /// Not our token.
    Unknown,
}

/// A start URL's token and the authorize URL it leads to, usable once.
pub struct LaunchPad {
    token: String,
    target: Mutex<Option<Url>>,
}

impl std::fmt::Debug for LaunchPad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchPad").finish_non_exhaustive()
    }
}

impl LaunchPad {
    /// A fresh 128-bit token leading nowhere yet ([`LaunchPad::arm`]).
    pub fn new() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            token: URL_SAFE_NO_PAD.encode(bytes),
            target: Mutex::new(None),
        }
    }

    /// The start URL's path.
    pub fn path(&self) -> String {
        format!("{START_PREFIX}{}", self.token)
    }

    /// Sets where the start URL leads (replacing an unused target).
    pub fn arm(&self, target: Url) {
        if let Ok(mut t) = self.target.lock() {
            *t = Some(target);
        }
    }

    /// Answers a request for `path` (under [`START_PREFIX`]); the first right one takes the
    /// target, so the URL works once.
    pub fn take(&self, path: &str) -> Launch {
        let token = path.strip_prefix(START_PREFIX).unwrap_or("");
        if !super::callback::constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
            return Launch::Unknown;
        }
        match self.target.lock().ok().and_then(|mut t| t.take()) {
            Some(url) => Launch::Redirect(url),
            None => Launch::Spent,
        }
    }
}

impl Default for LaunchPad {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_once_and_only_with_its_token() {
        let pad = LaunchPad::new();
        let target: Url = "https://lwa.test/ap/oa?state=s".parse().unwrap();
        assert_eq!(pad.take(&pad.path()), Launch::Spent, "not armed yet");
        pad.arm(target.clone());
        assert_eq!(pad.take("/start/guess"), Launch::Unknown);
        assert_eq!(pad.take("/start/"), Launch::Unknown);
        assert_eq!(pad.take(&pad.path()), Launch::Redirect(target));
        assert_eq!(pad.take(&pad.path()), Launch::Spent);
        assert_ne!(LaunchPad::new().path(), pad.path());
        assert!(pad.path().len() >= START_PREFIX.len() + 22);
    }
}
