//! The Login with Amazon step, as a native app must do it (RFC 8252, OAuth for native apps).
//!
//! 1. [`PendingLogin::prepare`]: a fresh random `state`, the loopback listener bound (so the
//!    redirect URI is known, port included), and the `/ap/oa` URL built from the speaker's
//!    [`DeviceInfo`] (product id, serial number, its PKCE challenge: the verifier stays on the
//!    speaker).
//!    Before any browser is opened, [`preflight`] fetches that URL itself and recognises LWA's
//!    refusal of the client id or the redirect URI (an error page that would be a dead end in
//!    the browser).
//! 2. The browser is started on a one-time loopback start URL ([`launch`]) that answers with a
//!    302 to the `/ap/oa` URL: the `state` is on no command line, where every local user could
//!    read it. It is the user's real browser ([`browser`]), never an embedded web view.
//! 3. [`PendingLogin::complete`]: the first of: the browser arriving at the loopback listener
//!    with this login's `state`, the user pasting the URL they landed on (for redirect URIs we
//!    can't listen on, or a browser on another machine), the browser command failing, or the
//!    deadline. The listener serves only the companion's own user ([`peer`]); a redirect with a
//!    wrong or missing `state` gets an error page and is ignored, so a forged request can
//!    neither complete nor abort the login. LWA errors become sentences. A pasted address that
//!    is not this login's return address is a typing mistake, not the end: the user is told
//!    what was wrong ([`LoginNotice::PasteRejected`]) and may paste again, up to
//!    [`MAX_PASTES`] times, within the same deadline. A browser command that fails while a
//!    person can still open the URL by hand is reported ([`LoginNotice::BrowserFailed`]) and
//!    the start URL works again for that person.
//!
//! The authorization code that comes out is a secret ([`AuthorizationCode`]): it is never
//! printed or logged, only handed to the speaker.

pub mod browser;
pub mod callback;
pub mod launch;
pub mod listener;
pub mod peer;
pub mod preflight;

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use shared_protocol::ids::{ClientId, OAuthState, RedirectUri};
use shared_protocol::lwa::AuthorizeRequest;
use shared_protocol::message::DeviceInfo;
use shared_protocol::secret::AuthorizationCode;
use tokio::sync::mpsc;
use url::Url;

pub use browser::{Browser, BrowserError, BrowserFailure, BrowserProcess};
pub use callback::{explain_authorization_error, Callback};
pub use listener::{RedirectListener, Verdict};

use crate::config::RedirectTarget;
use crate::words::{LwaSaid, Words};

/// Why the login did not produce a code. Never contains the code.
///
/// Its sentences are [`LoginError::words`] (the `Display` is their terminal rendering).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The user declined (`error=access_denied`).
    Denied {
        /// LWA's description, if any.
        description: Option<String>,
    },
    /// Another OAuth error on the redirect.
    Authorization {
        /// The `error` code.
        error: String,
        /// LWA's description, if any.
        description: Option<String>,
    },
    /// The redirect carried another login's `state`.
    StateMismatch,
    /// The redirect carried no `state` at all.
    StateMissing,
    /// No `code` in an otherwise good redirect.
    MissingCode,
    /// Nothing arrived in time.
    Timeout(Duration),
    /// The redirect listener could not start.
    Listen {
        /// The address (or the redirect URI's host) that could not be listened on.
        addr: String,
        /// Why: the OS's bind error, or not a loopback address.
        reason: String,
    },
    /// The self-signed certificate could not be made.
    Tls(String),
    /// The browser command failed and nobody else can finish the login (in pieces: a failed
    /// command's name is a literal word, see [`LoginError::browser_failed`]).
    Browser(Words),
    /// Neither a listener nor a paste source: the response can't arrive.
    NoWayBack(String),
    /// The pre-flight: LWA does not know the client id (no browser was opened).
    ClientIdRefused {
        /// The client id sent.
        client_id: String,
        /// LWA's words (its error page).
        said: String,
    },
    /// The pre-flight: LWA refused the redirect URI (no browser was opened).
    RedirectUriRefused {
        /// The redirect URI sent (with the listener's port).
        redirect_uri: String,
        /// LWA's words (its error page).
        said: String,
    },
    /// The pre-flight: LWA refused the sign-in request with a page naming neither setting.
    RequestRefused {
        /// The HTTP status of LWA's page.
        status: u16,
        /// LWA's words (its error page).
        said: String,
    },
    /// Too many pasted addresses were not this sign-in's return address.
    BadPastes {
        /// What was wrong with the last one.
        why: Words,
        /// How many were tried.
        tries: u32,
    },
}

/// Pasted addresses that are not this login's return address before the login gives up.
pub const MAX_PASTES: u32 = 3;

/// What the login tells its caller while it waits (the CLI prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginNotice {
    /// A pasted address was not this login's return address; another paste is awaited.
    PasteRejected {
        /// What was wrong, in words.
        why: Words,
        /// Pastes left before the login gives up.
        tries_left: u32,
    },
    /// The browser command failed; the start URL works again for a person to open by hand.
    BrowserFailed {
        /// "could not open a browser (false: exit 1)".
        message: String,
    },
}

/// Why a pasted address is not this login's return address, in words for the person pasting.
fn paste_problem(err: &LoginError) -> Option<Words> {
    Some(match err {
        LoginError::StateMissing => Words::new()
            .text("that is not the address the sign-in ended on (it has no ")
            .code("state")
            .text(" parameter); copy the whole address from the browser's address bar"),
        LoginError::StateMismatch => Words::new()
            .text("that address belongs to another sign-in (its ")
            .code("state")
            .text(" is different); paste the address of the tab this run opened"),
        LoginError::MissingCode => Words::from("that address has no authorization code; paste the address the browser shows after you choose Allow"),
        _ => return None,
    })
}

/// LWA's description as the sentence quotes it: " (Amazon said: …)", nothing when it gave none.
fn described(d: &Option<String>) -> Words {
    match d {
        Some(d) if !d.is_empty() => Words::new().lwa_quote(
            format!(" (Amazon said: {d})"),
            LwaSaid {
                error: None,
                description: Some(d.clone()),
            },
        ),
        _ => Words::new(),
    }
}

/// Amazon's words about a refused setting, from its error page (the pre-flight).
fn page_said(said: &str) -> Words {
    Words::new().lwa_quote(
        format!(". LWA said: {said}"),
        LwaSaid {
            error: None,
            description: Some(said.to_owned()),
        },
    )
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words().terminal())
    }
}

impl LoginError {
    /// What happened and what to do: the CLI prints [`Words::terminal`], the window
    /// [`Words::plain`].
    pub fn words(&self) -> Words {
        match self {
            LoginError::Denied { description } => Words::from("sign-in declined: ")
                .then(explain_authorization_error("access_denied"))
                .lwa_said(LwaSaid {
                    error: Some("access_denied".into()),
                    description: description.clone(),
                })
                .then(described(description)),
            LoginError::Authorization { error, description } => Words::new()
                .lwa_quote(
                    format!("Amazon returned `{error}`: "),
                    LwaSaid {
                        error: Some(error.clone()),
                        description: description.clone(),
                    },
                )
                .then(explain_authorization_error(error))
                .then(described(description)),
            LoginError::StateMismatch => Words::from("the sign-in response does not belong to this login")
                .terminal_only(" (its `state` does not match)")
                .text(": ignored it for safety. Close other Amazon sign-in tabs and ")
                .retry(),
            LoginError::StateMissing => Words::from("the sign-in response has no ")
                .code("state")
                .text(" parameter, so it can't be matched to this login: ")
                .retry()
                .text(" (if you pasted a URL, paste the whole address you landed on)"),
            LoginError::MissingCode => {
                Words::from("the sign-in response has no authorization code: ").retry()
            }
            LoginError::Timeout(after) => Words::from(format!("no sign-in response within {after:?}: finish the Amazon sign-in in the browser (if it showed an error about the redirect URI, add the redirect URI to your security profile's Allowed Return URLs)")),
            LoginError::Listen { addr, reason } => Words::from(format!("cannot listen for the sign-in response on {addr}: {reason} (is another login running, or the port taken?)")),
            LoginError::Tls(why) => Words::from(format!("cannot set up HTTPS for the sign-in response: {why}")),
            LoginError::Browser(why) => why.clone(),
            LoginError::NoWayBack(uri) => Words::from(format!("the redirect URI {uri} is not a loopback address this app can listen on, and there is no terminal to paste the final URL into")),
            LoginError::ClientIdRefused { client_id, said } => Words::from(format!("Login with Amazon does not know the client id {client_id}: check the client id setting"))
                .terminal_only(" (`avs-companion config --client-id ID`)")
                .text("; copy it from your security profile in the Amazon developer console (its 'Other devices and platforms' or Android/iOS settings)")
                .then(page_said(said)),
            LoginError::RedirectUriRefused { redirect_uri, said } => Words::from(format!("Login with Amazon does not accept the redirect URI {redirect_uri} for this client id: add it to the security profile's Allowed Return URLs in the Amazon developer console, or set one listed there"))
                .terminal_only(" (`avs-companion config --redirect-uri URI`)")
                .then(page_said(said)),
            LoginError::RequestRefused { status, said } => Words::from(format!("Login with Amazon refused the sign-in request (HTTP {status}): check the client id and the redirect URI settings"))
                .terminal_only(" (`avs-companion config`)")
                .then(page_said(said)),
            LoginError::BadPastes { why, tries } => why
                .clone()
                .text(format!("; gave up after {tries} pasted addresses: "))
                .retry(),
        }
    }

    /// A browser command that started and failed: the terminal says what [`BrowserFailure`]'s
    /// `Display` says ("the browser command `xdg-open` failed (exit 3): …"); the window names
    /// the program without the backticks.
    pub fn browser_failed(failure: &BrowserFailure) -> Self {
        let said = if failure.said.is_empty() {
            String::new()
        } else {
            format!(": {}", failure.said)
        };
        LoginError::Browser(
            Words::from("the browser command ")
                .code(failure.program.clone())
                .text(format!(" failed ({}){said}", failure.how)),
        )
    }

    /// True when the user chose to stop (declined the consent).
    pub fn is_user_cancel(&self) -> bool {
        matches!(self, LoginError::Denied { .. })
    }
}

/// A fresh `state`: 128 random bits, base64url.
pub fn fresh_state() -> OAuthState {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    OAuthState::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// How to wait for the login's end.
#[derive(Debug)]
pub struct LoginWait {
    /// The started browser, if any (a failure is noticed at once).
    pub browser: Option<BrowserProcess>,
    /// Lines a user pastes (the URL they landed on).
    pub pasted: Option<mpsc::Receiver<String>>,
    /// Give up after this long.
    pub timeout: Duration,
    /// When the browser command fails: stop (`true`: a scripted or only way back) or keep
    /// waiting for a manual open or paste (`false`).
    pub browser_failure_is_fatal: bool,
}

/// A login in progress: listener bound, URL built.
#[derive(Debug)]
pub struct PendingLogin {
    authorize_url: Url,
    state: OAuthState,
    redirect_uri: RedirectUri,
    /// Serves the start URL, and the redirect for loopback redirect URIs.
    listener: RedirectListener,
}

impl PendingLogin {
    /// Binds the loopback listener (the redirect's for loopback targets, else one serving only
    /// the start URL) and builds the authorize URL.
    pub async fn prepare(
        authorize_endpoint: &Url,
        client_id: &ClientId,
        redirect: &RedirectTarget,
        info: &DeviceInfo,
    ) -> Result<Self, LoginError> {
        let (listener, redirect_uri) = match redirect {
            RedirectTarget::Loopback { url, tls, .. } => {
                let l = RedirectListener::bind(url, *tls).await?;
                let uri = l
                    .redirect_uri()
                    .cloned()
                    .unwrap_or_else(|| RedirectUri::new(url.as_str()));
                (l, uri)
            }
            RedirectTarget::External(url) => (
                RedirectListener::launcher_only().await?,
                RedirectUri::new(url.as_str()),
            ),
        };
        let state = fresh_state();
        let challenge = info.challenge().map_err(|e| LoginError::Authorization {
            error: "invalid_request".into(),
            description: Some(format!("the speaker's code challenge is invalid: {e}")),
        })?;
        let request = AuthorizeRequest {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            product_id: info.product_id.clone(),
            dsn: info.dsn.clone(),
            state: state.clone(),
            code_challenge: challenge,
        };
        let authorize_url = request.to_url(authorize_endpoint);
        listener.arm(authorize_url.clone());
        Ok(Self {
            authorize_url,
            state,
            redirect_uri,
            listener,
        })
    }

    /// The URL to open in the browser: the one-time loopback start URL, which leads to the
    /// authorize URL once, for this user only. Safe on a command line.
    pub fn url(&self) -> &Url {
        self.listener.launch_url()
    }

    /// The `/ap/oa` URL itself. It carries the `state`: show it to the user if they must open
    /// it elsewhere, but never put it on a command line.
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The loopback addresses the listener bound.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listener.local_addrs()
    }

    /// The redirect URI sent to LWA (the speaker must send the same one to the token endpoint).
    pub fn redirect_uri(&self) -> &RedirectUri {
        &self.redirect_uri
    }

    /// True when the browser's redirect is captured automatically.
    pub fn listens(&self) -> bool {
        self.listener.receives_redirect()
    }

    /// Waits for the code (see the module docs for what ends the wait).
    pub async fn complete(self, wait: LoginWait) -> Result<AuthorizationCode, LoginError> {
        self.complete_observed(wait, &mut |_| {}).await
    }

    /// [`PendingLogin::complete`], telling `notice` about rejected pastes and a failed browser
    /// while it waits.
    pub async fn complete_observed(
        self,
        wait: LoginWait,
        notice: &mut (dyn FnMut(LoginNotice) + Send),
    ) -> Result<AuthorizationCode, LoginError> {
        let LoginWait {
            mut browser,
            pasted,
            timeout,
            browser_failure_is_fatal,
        } = wait;
        if !self.listens() && pasted.is_none() {
            return Err(LoginError::NoWayBack(self.redirect_uri.to_string()));
        }
        let result = self
            .first_answer(
                browser.as_mut(),
                pasted,
                timeout,
                browser_failure_is_fatal,
                notice,
            )
            .await;
        if let Some(b) = browser {
            b.finish(Duration::from_millis(500)).await;
        }
        result
    }

    /// The wait itself: whichever ends the sign-in first of the redirect listener, a pasted
    /// line, the browser failing (when that is fatal) and the timeout.
    async fn first_answer(
        &self,
        browser: Option<&mut BrowserProcess>,
        mut pasted: Option<mpsc::Receiver<String>>,
        timeout: Duration,
        browser_failure_is_fatal: bool,
        notice: &mut (dyn FnMut(LoginNotice) + Send),
    ) -> Result<AuthorizationCode, LoginError> {
        let state = self.state.clone();
        let serve = self.listener.serve(|query| judge(query, &state));
        let browser_failed = failure_of(browser);
        tokio::pin!(serve, browser_failed);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut browser_done = false;
        let mut pastes = Pastes::default();
        loop {
            tokio::select! {
                // A response already judged wins over the browser exiting right after it.
                biased;
                r = &mut serve => return r,
                line = next_line(&mut pasted) => {
                    if let Some(end) = self.on_paste(line, &mut pasted, &mut pastes, notice) {
                        return end;
                    }
                }
                why = &mut browser_failed, if !browser_done => {
                    if browser_failure_is_fatal {
                        return Err(LoginError::browser_failed(&why));
                    }
                    browser_done = true;
                    self.reopen_for_a_person(&why, notice);
                }
                _ = &mut deadline => return Err(LoginError::Timeout(timeout)),
            }
        }
    }

    /// What a pasted `line` does (`None`: the pastes ended). `Some` ends the sign-in: a
    /// paste [`Pastes::judge`] ends it with, or the pastes ending with no listener left.
    fn on_paste(
        &self,
        line: Option<String>,
        pasted: &mut Option<mpsc::Receiver<String>>,
        pastes: &mut Pastes,
        notice: &mut (dyn FnMut(LoginNotice) + Send),
    ) -> Option<Result<AuthorizationCode, LoginError>> {
        match line {
            Some(text) => pastes.judge(&text, &self.state, notice),
            None => {
                *pasted = None;
                (!self.listens()).then(|| Err(LoginError::NoWayBack(self.redirect_uri.to_string())))
            }
        }
    }

    /// A browser that failed while someone can still open the URL by hand: the start URL
    /// works again and the failure is told.
    fn reopen_for_a_person(
        &self,
        why: &BrowserFailure,
        notice: &mut (dyn FnMut(LoginNotice) + Send),
    ) {
        // A person opens the start URL by hand now, even if the failed command had fetched it.
        self.listener.arm(self.authorize_url.clone());
        notice(LoginNotice::BrowserFailed {
            message: format!("could not open a browser ({})", why.short()),
        });
    }
}

/// The pasted return addresses seen so far: a paste that is not this sign-in's return address
/// is told and another is awaited, up to [`MAX_PASTES`] of them.
#[derive(Default)]
struct Pastes {
    bad: u32,
}

impl Pastes {
    /// What `text` (one pasted line) does: `None` keeps the wait going (a blank line, or a
    /// rejected paste with tries left, told to `notice`); `Some` ends the sign-in.
    fn judge(
        &mut self,
        text: &str,
        state: &OAuthState,
        notice: &mut (dyn FnMut(LoginNotice) + Send),
    ) -> Option<Result<AuthorizationCode, LoginError>> {
        if text.trim().is_empty() {
            return None;
        }
        let e = match Callback::from_pasted(text).into_code(state) {
            Err(e) => e,
            ok => return Some(ok),
        };
        // Any other problem (LWA's own error in the address) ends the sign-in with it.
        let Some(why) = paste_problem(&e) else {
            return Some(Err(e));
        };
        self.bad += 1;
        if self.bad >= MAX_PASTES {
            return Some(Err(LoginError::BadPastes {
                why,
                tries: self.bad,
            }));
        }
        notice(LoginNotice::PasteRejected {
            why,
            tries_left: MAX_PASTES - self.bad,
        });
        None
    }
}

/// What the listener does with a request to the redirect path: one without this login's
/// `state` is ignored (an error page, and the wait goes on), so a forged request can neither
/// finish nor abort the login; anything carrying the state ends it.
fn judge(
    query: &str,
    state: &OAuthState,
) -> (Verdict, Option<Result<AuthorizationCode, LoginError>>) {
    match Callback::from_query(query).into_code(state) {
        Ok(code) => (Verdict::Done, Some(Ok(code))),
        Err(LoginError::StateMismatch | LoginError::StateMissing) => {
            tracing::warn!("ignored a sign-in response without this login's state");
            (Verdict::Failed(IGNORED_PAGE.to_owned()), None)
        }
        Err(e) => (Verdict::Failed(e.to_string()), Some(Err(e))),
    }
}

/// The page for an ignored redirect.
const IGNORED_PAGE: &str = "This sign-in response does not belong to the sign-in in progress (its state is missing or different), so it was ignored. If you are signing in, finish in the tab the avs-pair app opened.";

/// How the started browser failed; never, when there is none.
async fn failure_of(browser: Option<&mut BrowserProcess>) -> BrowserFailure {
    match browser {
        Some(b) => b.failure().await,
        None => std::future::pending().await,
    }
}

async fn next_line(rx: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_protocol::pkce::PkcePair;
    use std::net::SocketAddr;

    /// A failed browser command: the CLI prints `BrowserFailure`'s own sentence byte for byte
    /// (with and without the command's stderr), the window the same without backticks.
    #[test]
    fn a_failed_browser_command_is_the_same_sentence_without_backticks_in_the_window() {
        for said in ["no display", ""] {
            let failure = BrowserFailure {
                program: "xdg-open".into(),
                how: "exit 3".into(),
                said: said.into(),
            };
            let err = LoginError::browser_failed(&failure);
            assert_eq!(err.to_string(), failure.to_string());
            let plain = err.words().plain();
            assert_eq!(
                plain,
                failure.to_string().replace('`', ""),
                "the window's words"
            );
            assert!(plain.contains("xdg-open"), "{plain}");
        }
    }

    /// One pasted line at a time, no listener: blank lines wait on silently, a paste of another
    /// sign-in is told with the tries left until the last one ends the sign-in, LWA's own
    /// error in a pasted address ends it at once, and this sign-in's code ends it well.
    #[test]
    fn each_pasted_line_waits_on_or_ends_the_sign_in() {
        let state = fresh_state();
        let mut told = Vec::new();
        let mut notice = |n: LoginNotice| {
            if let LoginNotice::PasteRejected { tries_left, .. } = n {
                told.push(tries_left);
            }
        };
        let mut pastes = Pastes::default();
        assert!(pastes.judge("   ", &state, &mut notice).is_none());
        let foreign = "http://127.0.0.1/cb?code=c&state=someone-else";
        for _ in 1..MAX_PASTES {
            assert!(pastes.judge(foreign, &state, &mut notice).is_none());
        }
        assert!(matches!(
            pastes.judge(foreign, &state, &mut notice),
            Some(Err(LoginError::BadPastes { tries, .. })) if tries == MAX_PASTES
        ));
        let denied = format!(
            "http://127.0.0.1/cb?error=access_denied&state={}",
            state.as_str()
        );
        assert!(matches!(
            Pastes::default().judge(&denied, &state, &mut notice),
            Some(Err(LoginError::Denied { .. }))
        ));
        let good = format!("http://127.0.0.1/cb?code=the-code&state={}", state.as_str());
        match Pastes::default().judge(&good, &state, &mut notice) {
            Some(Ok(code)) => assert_eq!(code.expose_secret(), "the-code"),
            _ => panic!("this sign-in's address ends it with its code"),
        }
        assert_eq!(told, (1..MAX_PASTES).rev().collect::<Vec<_>>());
    }

    fn info() -> DeviceInfo {
        let pair = PkcePair::generate();
        DeviceInfo {
            product_id: "my_device".into(),
            dsn: "123456".into(),
            code_challenge: pair.challenge.as_str().to_owned(),
            code_challenge_method: pair.challenge.method(),
            session_id: shared_protocol::ids::SessionId::random(),
            network: None,
        }
    }

    fn query_param(url: &Url, key: &str) -> String {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    async fn prepared_for(uri: &str) -> PendingLogin {
        let target = RedirectTarget::parse(&uri.into()).unwrap();
        PendingLogin::prepare(
            &"https://lwa.test/ap/oa".parse().unwrap(),
            &"client-1".into(),
            &target,
            &info(),
        )
        .await
        .unwrap()
    }

    async fn prepared() -> PendingLogin {
        prepared_for("http://127.0.0.1/authresponse").await
    }

    fn listener_only(timeout: Duration) -> LoginWait {
        LoginWait {
            browser: None,
            pasted: None,
            timeout,
            browser_failure_is_fatal: true,
        }
    }

    /// Waiting for a pasted address from `pasted` (no browser: a person opens the URL).
    fn paste_only(pasted: mpsc::Receiver<String>, timeout: Duration) -> LoginWait {
        LoginWait {
            browser: None,
            pasted: Some(pasted),
            timeout,
            browser_failure_is_fatal: false,
        }
    }

    /// A prepared login whose redirect listener is waiting (no browser, no paste).
    struct Listening {
        /// The authorize URL's `state`.
        state: String,
        /// The redirect URI, as text.
        redirect: String,
        /// The authorize URL.
        authorize: Url,
        /// The start URL.
        start_url: Url,
        /// The listener's first address.
        addr: SocketAddr,
        /// The waiting login.
        task: tokio::task::JoinHandle<Result<AuthorizationCode, LoginError>>,
    }

    /// [`prepared`], then waiting for up to `timeout` on its listener alone.
    async fn listening(timeout: Duration) -> Listening {
        let login = prepared().await;
        let authorize = login.authorize_url().clone();
        Listening {
            state: query_param(&authorize, "state"),
            redirect: login.redirect_uri().to_string(),
            start_url: login.url().clone(),
            addr: login.local_addrs()[0],
            authorize,
            task: tokio::spawn(login.complete(listener_only(timeout))),
        }
    }

    /// A browser-like client that does not follow redirects (the tests look at each hop).
    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    async fn get(url: &str) -> (u16, String) {
        let r = http().get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Opens the start URL as the browser would: it must answer 302; returns the `Location`.
    async fn start(url: &Url) -> Url {
        let r = http().get(url.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302);
        r.headers()["location"].to_str().unwrap().parse().unwrap()
    }

    /// The raw response to `GET target` sent from a process running as `nobody` (uid 65534):
    /// another user of the machine. Needs root (as the test machines and CI run).
    async fn get_as_nobody(addr: SocketAddr, target: &str) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/{}/{} && printf '%s\\r\\n%s\\r\\n%s\\r\\n\\r\\n' \"GET $T HTTP/1.1\" 'Host: x' 'Connection: close' >&3 && cat <&3",
            addr.ip(),
            addr.port()
        );
        let child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("T", target)
            .current_dir("/")
            .uid(65534)
            .gid(65534)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(10), child)
            .await
            .expect("the other user's request ends")
            .expect("spawning as nobody needs root");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test]
    async fn url_carries_everything_and_a_fresh_state() {
        let a = prepared().await;
        let b = prepared().await;
        let url = a.authorize_url();
        assert_eq!(query_param(url, "client_id"), "client-1");
        assert_eq!(query_param(url, "code_challenge_method"), "S256");
        assert_eq!(query_param(url, "redirect_uri"), a.redirect_uri().as_str());
        assert!(a.redirect_uri().as_str().starts_with("http://127.0.0.1:"));
        assert_ne!(
            query_param(url, "state"),
            query_param(b.authorize_url(), "state")
        );
        assert!(query_param(url, "state").len() >= 22);
        // What the browser is given: a start URL on the listener, without the state.
        assert_eq!(a.url().scheme(), "http");
        assert_eq!(a.url().port(), a.local_addrs().first().map(|s| s.port()));
        assert!(a.url().path().starts_with("/start/"));
        assert!(a.url().query().is_none());
        assert_ne!(a.url(), b.url());
    }

    #[tokio::test]
    async fn redirect_with_the_right_state_completes() {
        let login = prepared().await;
        let state = query_param(login.authorize_url(), "state");
        let target = format!(
            "{}?code=THE-CODE&scope=alexa%3Aall&state={state}",
            login.redirect_uri()
        );
        let base = login.redirect_uri().as_str().replace("/authresponse", "");
        let task = tokio::spawn(login.complete(listener_only(Duration::from_secs(10))));
        // Unrelated paths and idle connections don't disturb it.
        let idle = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .unwrap();
        assert_eq!(get(&format!("{base}/favicon.ico")).await.0, 404);
        assert_eq!(get(&format!("{base}/start/guessed")).await.0, 404);
        let (status, body) = get(&target).await;
        assert_eq!(status, 200);
        assert!(body.contains("Signed in"));
        let code = task.await.unwrap().unwrap();
        assert_eq!(code.expose_secret(), "THE-CODE");
        drop(idle);
    }

    /// Issue 12 item 6: one forged request used to end the login (a forged `state` made it
    /// fail with StateMismatch; now it is answered and ignored).
    #[tokio::test]
    async fn forged_redirects_are_ignored_and_the_real_one_completes() {
        let login = listening(Duration::from_secs(20)).await;
        let (state, redirect) = (&login.state, &login.redirect);
        for forged in [
            "code=EVIL&state=not-ours".to_owned(),
            "code=EVIL".to_owned(),
            "error=access_denied&state=zzz".to_owned(),
            format!("code=EVIL&state={state}x"),
        ] {
            let (status, body) = get(&format!("{redirect}?{forged}")).await;
            assert_eq!(status, 400, "{forged}");
            assert!(body.contains("was ignored"), "{forged}: {body}");
        }
        let (status, _) = get(&format!("{redirect}?code=REAL&state={state}")).await;
        assert_eq!(status, 200);
        let code = login
            .task
            .await
            .unwrap()
            .expect("the real redirect completes");
        assert_eq!(code.expose_secret(), "REAL");
    }

    /// An error redirect carrying our state is Amazon's answer: it ends the login.
    #[tokio::test]
    async fn an_error_with_our_state_ends_the_login() {
        let login = listening(Duration::from_secs(20)).await;
        let (state, redirect) = (&login.state, &login.redirect);
        let (status, body) = get(&format!("{redirect}?error=access_denied&state={state}")).await;
        assert_eq!(status, 400);
        assert!(body.contains("declined"), "{body}");
        assert!(matches!(
            login.task.await.unwrap(),
            Err(LoginError::Denied { .. })
        ));
    }

    /// Issue 12 item 4, first half: the browser's command line (readable by every local user
    /// in /proc) used to be the authorize URL, state included.
    #[tokio::test]
    async fn the_browser_command_line_carries_no_state_and_the_start_url_works_once() {
        let login = prepared().await;
        let dir = tempfile::tempdir().unwrap();
        let argv_file = dir.path().join("argv");
        let recorder = format!("sh -c 'echo \"$@\" > {}' sh", argv_file.display());
        let process = browser::open(login.url(), &Browser::Command(recorder))
            .unwrap()
            .unwrap();
        process.finish(Duration::from_secs(10)).await;
        let argv = std::fs::read_to_string(&argv_file).unwrap();
        assert!(argv.contains("/start/"), "{argv}");
        assert!(!argv.contains("state="), "{argv}");
        assert!(!argv.contains(&query_param(login.authorize_url(), "state")));

        let authorize = login.authorize_url().clone();
        let start_url = login.url().clone();
        let state = query_param(&authorize, "state");
        let redirect = login.redirect_uri().to_string();
        let task = tokio::spawn(login.complete(listener_only(Duration::from_secs(20))));
        assert_eq!(start(&start_url).await, authorize);
        let (status, body) = get(start_url.as_str()).await;
        assert_eq!(status, 410, "a start URL works once");
        assert!(body.contains("works once"), "{body}");
        assert_eq!(
            get(&format!("{redirect}?code=C&state={state}")).await.0,
            200
        );
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "C");
    }

    /// Issue 12 item 4, second half: another local user who knows the state (the worst case)
    /// delivered their own code and the companion linked the speaker to their account.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn another_users_connections_are_refused_and_the_owner_still_signs_in() {
        let login = listening(Duration::from_secs(30)).await;
        let (state, redirect, start_url) = (&login.state, &login.redirect, &login.start_url);

        // The other user tries the start URL (it is on the browser's command line)...
        let r = get_as_nobody(login.addr, start_url.path()).await;
        assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
        assert!(r.contains("another user"), "{r}");
        // ...and delivers their own code with the owner's state.
        let r = get_as_nobody(
            login.addr,
            &format!("/authresponse?code=BOBS-CODE&state={state}"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 403 "), "{r}");

        // Neither spent nor ended anything: the owner's browser still gets through.
        assert_eq!(start(start_url).await, login.authorize);
        let (status, _) = get(&format!("{redirect}?code=ALICES-CODE&state={state}")).await;
        assert_eq!(status, 200);
        let code = login.task.await.unwrap().unwrap();
        assert_eq!(code.expose_secret(), "ALICES-CODE");
    }

    /// Issue 15.9: a browser command that fails while a person can still open the URL is told
    /// (not fatal), and the start URL, even if the failed command had used it, works again once.
    #[tokio::test]
    async fn a_failed_browser_is_told_and_the_start_url_works_again() {
        let login = prepared().await;
        let authorize = login.authorize_url().clone();
        let start_url = login.url().clone();
        let state = query_param(&authorize, "state");
        let redirect = login.redirect_uri().to_string();
        // The "browser" uses the start URL, then fails (when the test opens its gate, a FIFO).
        let dir = tempfile::tempdir().unwrap();
        let gate = dir.path().join("gate");
        let made = std::process::Command::new("mkfifo")
            .arg(&gate)
            .status()
            .unwrap();
        assert!(made.success());
        let browser = browser::open(
            &start_url,
            &Browser::Command(format!(
                "sh -c 'read x < \"$0\"; echo no display >&2; exit 2' {}",
                gate.display()
            )),
        )
        .unwrap();
        let (tx, mut notices) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            login
                .complete_observed(
                    LoginWait {
                        browser,
                        pasted: None,
                        timeout: Duration::from_secs(20),
                        browser_failure_is_fatal: false,
                    },
                    &mut |n| {
                        let _ = tx.send(n);
                    },
                )
                .await
        });
        assert_eq!(start(&start_url).await, authorize);
        tokio::task::spawn_blocking(move || std::fs::write(&gate, "fail\n"))
            .await
            .unwrap()
            .unwrap();
        let notice = tokio::time::timeout(Duration::from_secs(10), notices.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            notice,
            LoginNotice::BrowserFailed {
                message: "could not open a browser (sh: exit 2: no display)".into()
            }
        );
        assert_eq!(
            start(&start_url).await,
            authorize,
            "armed again for a person"
        );
        assert_eq!(get(start_url.as_str()).await.0, 410, "and once only");
        assert_eq!(
            get(&format!("{redirect}?code=C&state={state}")).await.0,
            200
        );
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "C");
    }

    /// Issue 15.9: pasted addresses that are not the return address are answered, counted and
    /// bounded; one with this login's state and an error is LWA's answer and ends at once.
    #[tokio::test]
    async fn bad_pastes_are_answered_three_times_then_end_the_login() {
        let login = prepared().await;
        let state = query_param(login.authorize_url(), "state");
        let (lines, rx) = mpsc::channel(8);
        let (tx, mut notices) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            login
                .complete_observed(paste_only(rx, Duration::from_secs(20)), &mut |n| {
                    let _ = tx.send(n);
                })
                .await
        });
        lines.send("garbage".into()).await.unwrap();
        lines
            .send(format!("http://127.0.0.1/authresponse?state={state}"))
            .await
            .unwrap();
        let mut tries = Vec::new();
        for _ in 0..2 {
            match notices.recv().await.unwrap() {
                LoginNotice::PasteRejected { why, tries_left } => {
                    tries.push((why.to_string(), tries_left))
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(tries[0].1, 2);
        assert!(tries[0].0.contains("no `state` parameter"), "{tries:?}");
        assert_eq!(tries[1].1, 1);
        assert!(tries[1].0.contains("no authorization code"), "{tries:?}");
        lines.send("?code=X&state=other".into()).await.unwrap();
        match task.await.unwrap() {
            Err(LoginError::BadPastes { why, tries: 3 }) => {
                assert!(why.to_string().contains("another sign-in"), "{why}")
            }
            other => panic!("{other:?}"),
        }

        // LWA's own answer, pasted: the end, no re-prompt.
        let login = prepared().await;
        let state = query_param(login.authorize_url(), "state");
        let (lines, rx) = mpsc::channel(8);
        let task = tokio::spawn(login.complete(paste_only(rx, Duration::from_secs(20))));
        lines
            .send(format!(
                "http://127.0.0.1/x?error=access_denied&state={state}"
            ))
            .await
            .unwrap();
        assert!(matches!(
            task.await.unwrap(),
            Err(LoginError::Denied { .. })
        ));
    }

    #[tokio::test]
    async fn https_localhost_redirects_are_served_with_tls() {
        let login = prepared_for("https://localhost/authresponse").await;
        assert!(login
            .redirect_uri()
            .as_str()
            .starts_with("https://localhost:"));
        // The start URL is plain HTTP on its own port (no certificate warning for it).
        assert_eq!(login.url().scheme(), "http");
        let redirect: Url = login.redirect_uri().as_str().parse().unwrap();
        assert_ne!(login.url().port(), redirect.port());
        let authorize = login.authorize_url().clone();
        let start_url = login.url().clone();
        let state = query_param(&authorize, "state");
        let url = format!("{}?code=C&state={state}", login.redirect_uri())
            .replace("localhost", "127.0.0.1");
        let task = tokio::spawn(login.complete(listener_only(Duration::from_secs(10))));
        assert_eq!(start(&start_url).await, authorize);
        assert_eq!(get(&url).await.0, 200);
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "C");
    }

    #[tokio::test]
    async fn pasted_url_completes_and_timeouts_end_the_wait() {
        let login = prepared_for("amzn://com.example.app").await;
        assert!(!login.listens());
        // Even without a loopback redirect, the browser gets a start URL, not the state.
        assert!(login.url().path().starts_with("/start/"));
        let authorize = login.authorize_url().clone();
        let start_url = login.url().clone();
        let state = query_param(&authorize, "state");
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(login.complete(paste_only(rx, Duration::from_secs(10))));
        assert_eq!(start(&start_url).await, authorize);
        tx.send(String::new()).await.unwrap();
        tx.send(format!("amzn://com.example.app?code=P&state={state}"))
            .await
            .unwrap();
        let code = task.await.unwrap().unwrap();
        assert_eq!(code.expose_secret(), "P");

        let login = prepared().await;
        let r = login
            .complete(listener_only(Duration::from_millis(50)))
            .await;
        assert!(matches!(r, Err(LoginError::Timeout(_))));
    }

    /// The ways a wait ends other than a code or a timeout: no way back at all (no listener,
    /// nothing to paste into), the pastes ending without a listener, and a browser failure when
    /// that failure is fatal (nobody there to open the URL by hand).
    #[tokio::test]
    async fn no_way_back_and_a_fatal_browser_end_the_wait() {
        let nowhere = |pasted| LoginWait {
            browser: None,
            pasted,
            timeout: Duration::from_secs(20),
            browser_failure_is_fatal: false,
        };
        let login = prepared_for("amzn://com.example.app").await;
        let r = login.complete(nowhere(None)).await;
        assert!(matches!(r, Err(LoginError::NoWayBack(_))), "{r:?}");

        let login = prepared_for("amzn://com.example.app").await;
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let r = login.complete(nowhere(Some(rx))).await;
        assert!(matches!(r, Err(LoginError::NoWayBack(_))), "{r:?}");

        let login = prepared().await;
        let browser = browser::open(
            login.url(),
            &Browser::Command("sh -c 'echo no display >&2; exit 3'".into()),
        )
        .unwrap();
        let r = login
            .complete(LoginWait {
                browser,
                pasted: None,
                timeout: Duration::from_secs(20),
                browser_failure_is_fatal: true,
            })
            .await;
        let Err(LoginError::Browser(why)) = r else {
            panic!("{r:?}");
        };
        assert!(why.plain().contains("exit 3"), "{}", why.plain());
    }
}
