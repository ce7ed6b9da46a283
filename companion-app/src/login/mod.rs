//! The Login with Amazon step, as a native app must do it (RFC 8252, OAuth for native apps).
//!
//! 1. [`PendingLogin::prepare`]: a fresh random `state`, the redirect listener bound (so the
//!    redirect URI is known, port included), and the `/ap/oa` URL built from the speaker's
//!    [`DeviceInfo`] (product id, serial number, its PKCE challenge: the verifier stays on the
//!    speaker).
//! 2. The URL goes to the user's real browser ([`browser`]); never an embedded web view.
//! 3. [`PendingLogin::complete`]: the first of: the browser arriving at the loopback listener,
//!    the user pasting the URL they landed on (for redirect URIs we can't listen on, or a
//!    browser on another machine), the browser command failing, or the deadline. The `state`
//!    is checked, LWA errors become sentences.
//!
//! The authorization code that comes out is a secret ([`AuthorizationCode`]): it is never
//! printed or logged, only handed to the speaker.

pub mod browser;
pub mod callback;
pub mod listener;

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

pub use browser::{Browser, BrowserError, BrowserProcess};
pub use callback::{explain_authorization_error, Callback};
pub use listener::{RedirectListener, Verdict};

use crate::config::RedirectTarget;

/// Why the login did not produce a code. Never contains the code.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The user declined (`error=access_denied`).
    #[error("sign-in declined: {}{}", explain_authorization_error("access_denied"), described(.description))]
    Denied {
        /// LWA's description, if any.
        description: Option<String>,
    },
    /// Another OAuth error on the redirect.
    #[error("Amazon returned `{error}`: {}{}", explain_authorization_error(.error), described(.description))]
    Authorization {
        /// The `error` code.
        error: String,
        /// LWA's description, if any.
        description: Option<String>,
    },
    /// The redirect carried another login's `state`.
    #[error("the sign-in response does not belong to this login (its `state` does not match): ignored it for safety. Close other Amazon sign-in tabs and run pair again")]
    StateMismatch,
    /// The redirect carried no `state` at all.
    #[error("the sign-in response has no `state` parameter, so it can't be matched to this login: run pair again (if you pasted a URL, paste the whole address you landed on)")]
    StateMissing,
    /// No `code` in an otherwise good redirect.
    #[error("the sign-in response has no authorization code: run pair again")]
    MissingCode,
    /// Nothing arrived in time.
    #[error("no sign-in response within {0:?}: finish the Amazon sign-in in the browser (if it showed an error about the redirect URI, add the redirect URI to your security profile's Allowed Return URLs)")]
    Timeout(Duration),
    /// The redirect listener could not start.
    #[error("cannot listen for the sign-in response on {addr}: {reason} (is another login running, or the port taken?)")]
    Listen {
        /// Where.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot set up HTTPS for the sign-in response: {0}")]
    Tls(String),
    /// The browser command failed and nobody else can finish the login.
    #[error("{0}")]
    Browser(String),
    /// Neither a listener nor a paste source: the response can't arrive.
    #[error("the redirect URI {0} is not a loopback address this app can listen on, and there is no terminal to paste the final URL into")]
    NoWayBack(String),
}

fn described(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(" (Amazon said: {d})"),
        _ => String::new(),
    }
}

impl LoginError {
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
    url: Url,
    state: OAuthState,
    redirect_uri: RedirectUri,
    listener: Option<RedirectListener>,
}

impl PendingLogin {
    /// Binds the redirect listener (loopback targets) and builds the authorize URL.
    pub async fn prepare(
        authorize_endpoint: &Url,
        client_id: &ClientId,
        redirect: &RedirectTarget,
        info: &DeviceInfo,
    ) -> Result<Self, LoginError> {
        let (listener, redirect_uri) = match redirect {
            RedirectTarget::Loopback { url, tls, .. } => {
                let l = RedirectListener::bind(url, *tls).await?;
                let uri = l.redirect_uri().clone();
                (Some(l), uri)
            }
            RedirectTarget::External(url) => (None, RedirectUri::new(url.as_str())),
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
        Ok(Self {
            url: request.to_url(authorize_endpoint),
            state,
            redirect_uri,
            listener,
        })
    }

    /// The URL to open in the browser.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The redirect URI sent to LWA (the speaker must send the same one to the token endpoint).
    pub fn redirect_uri(&self) -> &RedirectUri {
        &self.redirect_uri
    }

    /// True when the browser's redirect is captured automatically.
    pub fn listens(&self) -> bool {
        self.listener.is_some()
    }

    /// Waits for the code (see the module docs for what ends the wait).
    pub async fn complete(self, wait: LoginWait) -> Result<AuthorizationCode, LoginError> {
        let LoginWait {
            mut browser,
            mut pasted,
            timeout,
            browser_failure_is_fatal,
        } = wait;
        if self.listener.is_none() && pasted.is_none() {
            return Err(LoginError::NoWayBack(self.redirect_uri.to_string()));
        }
        let state = self.state.clone();
        let result = {
            let serve = async {
                match &self.listener {
                    Some(l) => {
                        l.serve(|query| {
                            let outcome = Callback::from_query(query).into_code(&state);
                            let verdict = match &outcome {
                                Ok(_) => Verdict::Done,
                                Err(e) => Verdict::Failed(e.to_string()),
                            };
                            (verdict, Some(outcome))
                        })
                        .await
                    }
                    None => std::future::pending().await,
                }
            };
            let browser_failed = async {
                match browser.as_mut() {
                    Some(b) => b.failed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(serve, browser_failed);
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut browser_done = false;
            loop {
                tokio::select! {
                    // A response already judged wins over the browser exiting right after it.
                    biased;
                    r = &mut serve => break r,
                    line = next_line(&mut pasted) => match line {
                        Some(text) if text.trim().is_empty() => {}
                        Some(text) => break Callback::from_pasted(&text).into_code(&self.state),
                        None => {
                            pasted = None;
                            if self.listener.is_none() {
                                break Err(LoginError::NoWayBack(self.redirect_uri.to_string()));
                            }
                        }
                    },
                    why = &mut browser_failed, if !browser_done => {
                        if browser_failure_is_fatal {
                            break Err(LoginError::Browser(why));
                        }
                        browser_done = true;
                    }
                    _ = &mut deadline => break Err(LoginError::Timeout(timeout)),
                }
            }
        };
        if let Some(b) = browser {
            b.finish(Duration::from_millis(500)).await;
        }
        result
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

    fn info() -> DeviceInfo {
        let pair = PkcePair::generate();
        DeviceInfo {
            product_id: "my_device".into(),
            dsn: "123456".into(),
            code_challenge: pair.challenge.as_str().to_owned(),
            code_challenge_method: pair.challenge.method(),
            session_id: shared_protocol::ids::SessionId::random(),
        }
    }

    fn query_param(url: &Url, key: &str) -> String {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    async fn prepared() -> PendingLogin {
        let target = RedirectTarget::parse(&"http://127.0.0.1/authresponse".into()).unwrap();
        PendingLogin::prepare(
            &"https://lwa.test/ap/oa".parse().unwrap(),
            &"client-1".into(),
            &target,
            &info(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn url_carries_everything_and_a_fresh_state() {
        let a = prepared().await;
        let b = prepared().await;
        let url = a.url();
        assert_eq!(query_param(url, "client_id"), "client-1");
        assert_eq!(query_param(url, "code_challenge_method"), "S256");
        assert_eq!(query_param(url, "redirect_uri"), a.redirect_uri().as_str());
        assert!(a.redirect_uri().as_str().starts_with("http://127.0.0.1:"));
        assert_ne!(query_param(url, "state"), query_param(b.url(), "state"));
        assert!(query_param(url, "state").len() >= 22);
    }

    async fn get(url: &str) -> (u16, String) {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn redirect_with_the_right_state_completes() {
        let login = prepared().await;
        let state = query_param(login.url(), "state");
        let target = format!(
            "{}?code=THE-CODE&scope=alexa%3Aall&state={state}",
            login.redirect_uri()
        );
        let base = login.redirect_uri().as_str().replace("/authresponse", "");
        let wait = LoginWait {
            browser: None,
            pasted: None,
            timeout: Duration::from_secs(10),
            browser_failure_is_fatal: true,
        };
        let task = tokio::spawn(login.complete(wait));
        // Unrelated paths and idle connections don't disturb it.
        let idle = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .unwrap();
        assert_eq!(get(&format!("{base}/favicon.ico")).await.0, 404);
        let (status, body) = get(&target).await;
        assert_eq!(status, 200);
        assert!(body.contains("Signed in"));
        let code = task.await.unwrap().unwrap();
        assert_eq!(code.expose_secret(), "THE-CODE");
        drop(idle);
    }

    #[tokio::test]
    async fn a_foreign_state_fails_the_login() {
        let login = prepared().await;
        let target = format!("{}?code=X&state=not-ours", login.redirect_uri());
        let wait = LoginWait {
            browser: None,
            pasted: None,
            timeout: Duration::from_secs(10),
            browser_failure_is_fatal: true,
        };
        let task = tokio::spawn(login.complete(wait));
        let (status, body) = get(&target).await;
        assert_eq!(status, 400);
        assert!(body.contains("does not belong"), "{body}");
        assert!(matches!(
            task.await.unwrap(),
            Err(LoginError::StateMismatch)
        ));
    }

    #[tokio::test]
    async fn https_localhost_redirects_are_served_with_tls() {
        let target = RedirectTarget::parse(&"https://localhost/authresponse".into()).unwrap();
        let login = PendingLogin::prepare(
            &"https://lwa.test/ap/oa".parse().unwrap(),
            &"client-1".into(),
            &target,
            &info(),
        )
        .await
        .unwrap();
        assert!(login
            .redirect_uri()
            .as_str()
            .starts_with("https://localhost:"));
        let state = query_param(login.url(), "state");
        let url = format!("{}?code=C&state={state}", login.redirect_uri())
            .replace("localhost", "127.0.0.1");
        let wait = LoginWait {
            browser: None,
            pasted: None,
            timeout: Duration::from_secs(10),
            browser_failure_is_fatal: true,
        };
        let task = tokio::spawn(login.complete(wait));
        assert_eq!(get(&url).await.0, 200);
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "C");
    }

    #[tokio::test]
    async fn pasted_url_completes_and_timeouts_end_the_wait() {
        let target = RedirectTarget::parse(&"amzn://com.example.app".into()).unwrap();
        let login = PendingLogin::prepare(
            &"https://lwa.test/ap/oa".parse().unwrap(),
            &"client-1".into(),
            &target,
            &info(),
        )
        .await
        .unwrap();
        assert!(!login.listens());
        let state = query_param(login.url(), "state");
        let (tx, rx) = mpsc::channel(4);
        tx.send(String::new()).await.unwrap();
        tx.send(format!("amzn://com.example.app?code=P&state={state}"))
            .await
            .unwrap();
        let code = login
            .complete(LoginWait {
                browser: None,
                pasted: Some(rx),
                timeout: Duration::from_secs(5),
                browser_failure_is_fatal: false,
            })
            .await
            .unwrap();
        assert_eq!(code.expose_secret(), "P");

        let login = prepared().await;
        let r = login
            .complete(LoginWait {
                browser: None,
                pasted: None,
                timeout: Duration::from_millis(50),
                browser_failure_is_fatal: true,
            })
            .await;
        assert!(matches!(r, Err(LoginError::Timeout(_))));
    }
}
