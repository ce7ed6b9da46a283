//! Opening Amazon's sign-in page in the user's real browser: never in a web view.
//!
//! Login with Amazon forbids embedded web views (the user must see Amazon's page, with its
//! address bar, in a browser they trust), and RFC 8252 says the same for every native app. So
//! the window only shows a button; the page opens in the system browser and the core's loopback
//! listener catches the redirect.
//!
//! - `BROWSER` set in the environment: the core's browser hook runs it (`%s` = the URL), and a
//!   command that fails ends the attempt with its message. Tests and the demo point it at the
//!   emulator's scripted user (`lwa-emulator browse …`).
//! - Otherwise: Tauri's opener plugin (`xdg-open`, `open`, `start`, or the mobile equivalents).
//!
//! A mobile build should replace [`SystemOpener`] with the platform's auth session
//! (ASWebAuthenticationSession, Custom Tabs): see `docs/companion.md`.

use companion_app::login::browser::BrowserError;
use companion_app::login::{browser, Browser, BrowserProcess};
use url::Url;

/// Why the sign-in page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The `BROWSER` command (the core's hook) could not start.
    #[error(transparent)]
    Hook(#[from] BrowserError),
    /// The system's opener refused.
    #[error(transparent)]
    Opener(#[from] tauri_plugin_opener::Error),
}

/// Something that can show the sign-in page.
pub trait SignInOpener: Send + Sync {
    /// Opens `url`. `Ok(Some(process))` when a browser command was started whose failure should
    /// end the attempt; `Ok(None)` when the page was handed off (nothing to watch).
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError>;
}

/// The desktop opener: `$BROWSER` through the core's hook, else the opener plugin.
pub struct SystemOpener<R: tauri::Runtime> {
    app: tauri::AppHandle<R>,
}

impl<R: tauri::Runtime> SystemOpener<R> {
    /// An opener for this app.
    pub fn new(app: tauri::AppHandle<R>) -> Self {
        Self { app }
    }
}

impl<R: tauri::Runtime> std::fmt::Debug for SystemOpener<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemOpener").finish_non_exhaustive()
    }
}

/// The `BROWSER` hook, if set.
pub fn browser_hook() -> Option<String> {
    std::env::var("BROWSER")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

impl<R: tauri::Runtime> SignInOpener for SystemOpener<R> {
    fn open(&self, url: &Url) -> Result<Option<BrowserProcess>, OpenError> {
        if browser_hook().is_some() {
            return Ok(browser::open(url, &Browser::System)?);
        }
        use tauri_plugin_opener::OpenerExt as _;
        self.app.opener().open_url(url.as_str(), None::<&str>)?;
        Ok(None)
    }
}
