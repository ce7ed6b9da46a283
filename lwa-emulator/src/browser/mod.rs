//! The scripted user: plays a person in a browser against the emulator's real pages.
//!
//! Companion tests set it as the `BROWSER` hook (`lwa-emulator browse …`): it GETs the
//! authorize URL, fills in the real sign-in form, POSTs the credentials, answers the consent
//! page, and finally follows the 302 to the `redirect_uri` (a GET to the companion's loopback
//! listener), exactly what a browser would do. It keeps cookies for the emulator's origin only
//! and sends back only what the pages gave it, so the server-side session and CSRF checks are
//! exercised for real.

mod form;

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Certificate, Method, StatusCode};
use url::Url;

use form::{element_text, find_form, Form};

/// Requests made by the scripted user time out after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A login takes a handful of steps; more means a loop.
const MAX_STEPS: usize = 12;
/// Pages larger than this are not read.
const MAX_PAGE: usize = 256 * 1024;

/// What the user answers on the consent (or CBL code) page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Allow / Continue.
    Allow,
    /// Cancel / Deny.
    Deny,
}

impl Consent {
    fn value(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// Where the browser ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    /// The `redirect_uri?code=…&scope=…&state=…` (or `?error=…`) the emulator sent us to.
    /// Contains the authorization code: do not log it.
    pub redirect: Url,
    /// The status the redirect target answered.
    pub status: u16,
}

/// Why the scripted user could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    /// The URL the script was given does not parse.
    #[error("the {what} is not a valid URL: {source}")]
    BadUrl {
        /// Which URL: "authorize URL" or "verification URI".
        what: &'static str,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The extra root CA is not a PEM certificate.
    #[error("cannot set up the HTTP client: the CA certificate is not valid PEM: {0}")]
    BadCa(#[source] reqwest::Error),
    /// HTTP client set-up failed.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A request failed (connection refused, timeout, TLS…).
    #[error("request to {url} failed: {source}")]
    Request {
        /// Without query (it may hold a code).
        url: String,
        /// What went wrong, its URL removed (the query may hold a code).
        #[source]
        source: reqwest::Error,
    },
    /// The emulator showed an error page (unknown client, bad redirect URI, expired sign-in).
    #[error("the sign-in page answered {status}: {message}")]
    ErrorPage {
        /// HTTP status.
        status: u16,
        /// The page's error message.
        message: String,
    },
    /// Wrong email or password.
    #[error("sign-in rejected: {0}")]
    LoginRejected(String),
    /// A page the script does not know how to handle.
    #[error("unexpected page (status {status}) at {path}")]
    UnexpectedPage {
        /// HTTP status.
        status: u16,
        /// Path of the page.
        path: String,
    },
    /// More than a dozen steps.
    #[error("too many steps (redirect loop?)")]
    TooManySteps,
}

/// A scripted browser user with an email and password.
pub struct ScriptedUser {
    email: String,
    password: String,
    http: reqwest::Client,
    /// Cookies for the emulator's origin: (origin, name, value).
    cookies: Vec<(String, String, String)>,
}

impl std::fmt::Debug for ScriptedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address is personal data, like the account's in shared-protocol's Debug.
        f.debug_struct("ScriptedUser")
            .field("email", &shared_protocol::secret::REDACTED)
            .field("password", &shared_protocol::secret::REDACTED)
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// A failed request to `url`: its query left out of the error, and out of reqwest's (its
/// `Display` would print the whole URL, code and all).
fn request_failed(url: &Url, e: reqwest::Error) -> BrowseError {
    BrowseError::Request {
        url: without_query(url),
        source: e.without_url(),
    }
}

impl ScriptedUser {
    /// A user that trusts the usual web roots.
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Result<Self, BrowseError> {
        Self::build(email.into(), password.into(), None)
    }

    /// A user that also trusts `ca_pem` (the emulator's CA in HTTPS mode).
    pub fn with_root_ca(
        email: impl Into<String>,
        password: impl Into<String>,
        ca_pem: &[u8],
    ) -> Result<Self, BrowseError> {
        Self::build(email.into(), password.into(), Some(ca_pem))
    }

    fn build(email: String, password: String, ca_pem: Option<&[u8]>) -> Result<Self, BrowseError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .user_agent("lwa-emulator scripted user");
        if let Some(pem) = ca_pem {
            let cert = Certificate::from_pem(pem).map_err(BrowseError::BadCa)?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(BrowseError::Client)?;
        Ok(Self {
            email,
            password,
            http,
            cookies: Vec::new(),
        })
    }

    /// Signs in and answers consent for `authorize_url`; returns the URL the emulator
    /// redirected the browser to (the client's `redirect_uri` with `code` or `error`), without
    /// visiting it. An error redirect straight from `/ap/oa` is returned the same way.
    pub async fn authorize(
        &mut self,
        authorize_url: &str,
        consent: Consent,
    ) -> Result<Url, BrowseError> {
        let start = Url::parse(authorize_url).map_err(|source| BrowseError::BadUrl {
            what: "authorize URL",
            source,
        })?;
        // The sign-in's origin: known once a request reaches `/ap/oa` (the URL given may be a
        // companion's one-time start URL that redirects there). A redirect leaving it is the
        // final one, to the client's redirect URI.
        let mut home: Option<String> = None;
        let mut next = Request::get(start);
        let mut signed_in_once = false;
        for _ in 0..MAX_STEPS {
            if home.is_none() && next.url.path().trim_end_matches('/').ends_with("/ap/oa") {
                home = Some(origin(&next.url));
            }
            let (url, status, location, body) = self.send(&next).await?;
            if status.is_redirection() {
                let target = follow(&url, status, location)?;
                if home.as_ref().is_some_and(|h| origin(&target) != *h) {
                    return Ok(target);
                }
                next = Request::get(target);
                continue;
            }
            if let Some(step) = self.sign_in(&url, &body, &mut signed_in_once) {
                next = step?;
                continue;
            }
            if let Some(form) = find_form(&body, "consent-form") {
                next = submit(form, &url, [("decision", consent.value().into())]);
                continue;
            }
            return Err(page_error(status, &url, &body));
        }
        Err(BrowseError::TooManySteps)
    }

    /// [`ScriptedUser::authorize`], then follows the final redirect like a browser (GET,
    /// without the emulator's cookies) and reports where it landed.
    pub async fn browse(
        &mut self,
        authorize_url: &str,
        consent: Consent,
    ) -> Result<Landing, BrowseError> {
        let redirect = self.authorize(authorize_url, consent).await?;
        let response = self
            .http
            .get(redirect.clone())
            .send()
            .await
            .map_err(|e| request_failed(&redirect, e))?;
        Ok(Landing {
            redirect,
            status: response.status().as_u16(),
        })
    }

    /// The CBL side: opens `verification_uri`, signs in, types `user_code` and approves or
    /// denies it.
    pub async fn enter_user_code(
        &mut self,
        verification_uri: &str,
        user_code: &str,
        consent: Consent,
    ) -> Result<(), BrowseError> {
        let start = Url::parse(verification_uri).map_err(|source| BrowseError::BadUrl {
            what: "verification URI",
            source,
        })?;
        let mut next = Request::get(start);
        let mut signed_in_once = false;
        let mut code_entered = false;
        for _ in 0..MAX_STEPS {
            let (url, status, location, body) = self.send(&next).await?;
            if status.is_redirection() {
                next = Request::get(follow(&url, status, location)?);
                continue;
            }
            if body.contains("id=\"cbl-result\"") {
                return Ok(());
            }
            if let Some(step) = self.sign_in(&url, &body, &mut signed_in_once) {
                next = step?;
                continue;
            }
            if let Some(form) = find_form(&body, "code-form") {
                if code_entered {
                    let message = element_text(&body, "code-error")
                        .unwrap_or_else(|| "the code was not accepted".into());
                    return Err(BrowseError::ErrorPage {
                        status: status.as_u16(),
                        message,
                    });
                }
                code_entered = true;
                next = submit(
                    form,
                    &url,
                    [
                        ("user_code", user_code.to_owned()),
                        ("decision", consent.value().into()),
                    ],
                );
                continue;
            }
            return Err(page_error(status, &url, &body));
        }
        Err(BrowseError::TooManySteps)
    }

    /// The sign-in form on `body`, if any, filled with this user's credentials; the form coming
    /// back a second time means they were refused.
    fn sign_in(
        &self,
        url: &Url,
        body: &str,
        signed_in_once: &mut bool,
    ) -> Option<Result<Request, BrowseError>> {
        let form = find_form(body, "signin-form")?;
        if std::mem::replace(signed_in_once, true) {
            let message = element_text(body, "auth-error")
                .unwrap_or_else(|| "the sign-in form came back".into());
            return Some(Err(BrowseError::LoginRejected(message)));
        }
        Some(Ok(submit(
            form,
            url,
            [
                ("email", self.email.clone()),
                ("password", self.password.clone()),
            ],
        )))
    }

    /// Sends one request with this origin's cookies; stores the cookies it sets. Returns the
    /// URL, status, `Location` and body (bounded).
    async fn send(
        &mut self,
        request: &Request,
    ) -> Result<(Url, StatusCode, Option<String>, String), BrowseError> {
        let url = request.url.clone();
        let here = origin(&url);
        let mut builder = self.http.request(request.method.clone(), url.clone());
        let cookie_header: Vec<String> = self
            .cookies
            .iter()
            .filter(|(o, _, _)| *o == here)
            .map(|(_, n, v)| format!("{n}={v}"))
            .collect();
        if !cookie_header.is_empty() {
            builder = builder.header(COOKIE, cookie_header.join("; "));
        }
        if let Some(fields) = &request.form {
            builder = builder.form(fields);
        }
        let fail = |e: reqwest::Error| request_failed(&url, e);
        let mut response = builder.send().await.map_err(fail)?;
        for value in response.headers().get_all(SET_COOKIE) {
            if let Some((name, value)) = value
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|pair| pair.trim().split_once('='))
            {
                self.cookies.retain(|(o, n, _)| !(*o == here && n == name));
                self.cookies
                    .push((here.clone(), name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_PAGE {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((
            url,
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }
}

/// The POST that submits `form` (found on `url`) with its own fields, `values` replacing any
/// of the same name.
fn submit<const N: usize>(form: Form, url: &Url, values: [(&str, String); N]) -> Request {
    let mut fields: Vec<(String, String)> = form
        .fields
        .into_iter()
        .filter(|(k, _)| !values.iter().any(|(name, _)| name == k))
        .collect();
    fields.extend(values.map(|(k, v)| (k.to_owned(), v)));
    let action = url.join(&form.action).unwrap_or_else(|_| url.clone());
    Request::post(action, fields)
}

/// Where a redirect from `url` leads.
fn follow(url: &Url, status: StatusCode, location: Option<String>) -> Result<Url, BrowseError> {
    location
        .and_then(|l| url.join(&l).ok())
        .ok_or_else(|| BrowseError::UnexpectedPage {
            status: status.as_u16(),
            path: url.path().to_owned(),
        })
}

fn page_error(status: StatusCode, url: &Url, body: &str) -> BrowseError {
    match element_text(body, "error-message") {
        Some(message) => BrowseError::ErrorPage {
            status: status.as_u16(),
            message,
        },
        None => BrowseError::UnexpectedPage {
            status: status.as_u16(),
            path: url.path().to_owned(),
        },
    }
}

/// One step of the script.
struct Request {
    method: Method,
    url: Url,
    form: Option<Vec<(String, String)>>,
}

impl Request {
    fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            form: None,
        }
    }

    fn post(url: Url, fields: Vec<(String, String)>) -> Self {
        Self {
            method: Method::POST,
            url,
            form: Some(fields),
        }
    }
}
