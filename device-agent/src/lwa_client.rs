//! HTTP client for LWA (token, code pair, profile) and the one AVS call the agent makes (`/ping`).
//!
//! Every request has a deadline, every body is size-capped, and failures come back as a
//! [`LwaFailure`] that keeps what the caller needs to decide and to explain: the SDK error code,
//! the HTTP status, LWA's own `error`/`error_description`. Secrets only ever travel in request
//! bodies or headers, never in URLs, so reqwest's error strings (which carry the URL) are safe to
//! log.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use shared_protocol::ids::UserId;
use shared_protocol::lwa::{
    AuthError, CodePairRequest, CodePairResponse, LwaEndpoints, LwaErrorBody, TokenRequest,
    TokenResponse,
};
use shared_protocol::message::AccountProfile;
use shared_protocol::secret::{AccessToken, RefreshToken};
use tokio::time::Instant;
use url::Url;
use zeroize::Zeroizing;

/// Largest LWA/AVS response body read (tokens are ≤ 2 KiB each).
const MAX_BODY: usize = 64 * 1024;
const FORM: &str = "application/x-www-form-urlencoded";

/// A successful token grant.
#[derive(Debug)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: AccessToken,
    /// The refresh token LWA returned, if any (a refresh may omit it: keep the old one).
    pub refresh_token: Option<RefreshToken>,
    /// `expires_in`.
    pub expires_in: Duration,
    /// When the request was sent: expiry counts from here (SDK behaviour).
    pub requested_at: Instant,
}

impl TokenGrant {
    /// The grant in LWA's token response to a request sent at `requested_at` (an empty
    /// `refresh_token` counts as none).
    pub fn from_response(resp: &TokenResponse, requested_at: Instant) -> Self {
        Self {
            access_token: resp.access_token.clone(),
            refresh_token: resp.refresh_token.clone().filter(|t| !t.is_empty()),
            expires_in: Duration::from_secs(resp.expires_in.0),
            requested_at,
        }
    }

    /// When the access token stops working.
    pub fn expires_at(&self) -> Instant {
        self.requested_at + self.expires_in
    }
}

/// Why an LWA call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LwaFailure {
    /// LWA answered with an error status.
    #[error("LWA answered HTTP {status} ({error}){}", describe(.lwa))]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The SDK error code (lwa-spec §5.2 mapping).
        error: AuthError,
        /// LWA's error body, when it sent one.
        lwa: Option<LwaErrorBody>,
    },
    /// Could not connect (DNS, refused, TLS) or the connection broke.
    #[error("LWA could not be reached: {0}")]
    Unreachable(String),
    /// No answer within the deadline.
    #[error("LWA did not answer within {0:?}")]
    Timeout(Duration),
    /// An answer that is not what LWA sends.
    #[error("LWA's answer could not be understood: {0}")]
    BadResponse(String),
    /// A grant that should start an account came without a refresh token: LWA does that for a
    /// Web-profile client id redeemed without its secret (lwa-spec §11), which would give the
    /// speaker one hour of access and then nothing.
    #[error("{NO_REFRESH_TOKEN}")]
    NoRefreshToken,
}

/// What a grant without a refresh token means and what to do, for people.
pub const NO_REFRESH_TOKEN: &str = "LWA gave no refresh token: this client id needs a secret; use the client id of your companion app's Android/iOS settings or 'Other devices and platforms'";

fn describe(lwa: &Option<LwaErrorBody>) -> String {
    match lwa {
        Some(body) => match &body.error_description {
            Some(d) => format!(": {}: {d}", body.error),
            None => format!(": {}", body.error),
        },
        None => String::new(),
    }
}

impl LwaFailure {
    /// The SDK error code for this failure.
    pub fn auth_error(&self) -> AuthError {
        match self {
            Self::Rejected { error, .. } => *error,
            Self::Unreachable(_) | Self::Timeout(_) | Self::BadResponse(_) => {
                AuthError::UnknownError
            }
            Self::NoRefreshToken => AuthError::InvalidValue,
        }
    }

    /// True when trying again later may succeed (SDK: UNKNOWN_ERROR, SERVER_ERROR, …).
    pub fn is_retryable(&self) -> bool {
        self.auth_error().is_retryable()
    }

    /// LWA's error body, if any.
    pub fn lwa_body(&self) -> Option<&LwaErrorBody> {
        match self {
            Self::Rejected { lwa, .. } => lwa.as_ref(),
            _ => None,
        }
    }

    /// The HTTP status, if LWA answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What AVS `/ping` said about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// 204: the token works.
    Ok,
    /// 403: AVS refuses the token (expired, revoked, wrong client).
    Forbidden,
    /// Anything else.
    Other(u16),
}

/// Building the HTTP client failed (bad CA file).
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The CA file could not be read.
    #[error("could not read lwa_ca_file {path}: {source}")]
    ReadCa {
        /// The file.
        path: String,
        /// The read error.
        source: std::io::Error,
    },
    /// The CA file is not PEM.
    #[error("lwa_ca_file {path} is not a PEM certificate: {source}")]
    BadCa {
        /// The file.
        path: String,
        /// What the PEM parser said.
        source: reqwest::Error,
    },
    /// The CA file is PEM but holds no certificate.
    #[error("lwa_ca_file {path} is not a PEM certificate: no certificate found")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// reqwest refused the configuration.
    #[error("could not build the HTTPS client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The LWA/AVS client.
#[derive(Debug, Clone)]
pub struct LwaClient {
    http: reqwest::Client,
    endpoints: LwaEndpoints,
}

impl LwaClient {
    /// A client for `endpoints`, trusting the public web roots plus `extra_ca` (a PEM file, for
    /// an emulator behind its own CA).
    pub fn new(endpoints: LwaEndpoints, extra_ca: Option<&Path>) -> Result<Self, ClientBuildError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("avs-device-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .https_only(false)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path).map_err(|source| ClientBuildError::ReadCa {
                path: path.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                ClientBuildError::BadCa {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            if certs.is_empty() {
                return Err(ClientBuildError::NoCertificate {
                    path: path.display().to_string(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(ClientBuildError::Client)?;
        Ok(Self { http, endpoints })
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> &LwaEndpoints {
        &self.endpoints
    }

    /// The HTTP client (same TLS roots), for the network module's connectivity check.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Asks LWA's token endpoint for `req`'s grant. A grant that starts an account (an
    /// authorization code from the companion, a CBL device code) must carry a refresh token,
    /// else [`LwaFailure::NoRefreshToken`]; a refresh may omit it (keep the old one). Refreshes
    /// send no client secret: device clients have none.
    pub async fn grant(
        &self,
        req: &TokenRequest<'_>,
        timeout: Duration,
    ) -> Result<TokenGrant, LwaFailure> {
        let grant = self.token(req, timeout).await?;
        let starts_account = !matches!(req, TokenRequest::RefreshToken { .. });
        if starts_account && grant.refresh_token.is_none() {
            return Err(LwaFailure::NoRefreshToken);
        }
        Ok(grant)
    }

    async fn token(
        &self,
        req: &TokenRequest<'_>,
        timeout: Duration,
    ) -> Result<TokenGrant, LwaFailure> {
        let body = Zeroizing::new(req.to_form_body());
        let requested_at = Instant::now();
        let resp: TokenResponse = self
            .endpoint_response(
                self.post_form(&self.endpoints.token, body.as_bytes().to_vec()),
                "token response",
                timeout,
            )
            .await?;
        resp.validate()
            .map_err(|why| LwaFailure::BadResponse(why.to_owned()))?;
        Ok(TokenGrant::from_response(&resp, requested_at))
    }

    /// CBL: ask for a code pair.
    pub async fn request_code_pair(
        &self,
        req: &CodePairRequest,
        timeout: Duration,
    ) -> Result<CodePairResponse, LwaFailure> {
        let resp: CodePairResponse = self
            .endpoint_response(
                self.post_form(&self.endpoints.codepair, req.to_form_body())
                    .header("Accept-Language", "en-US"),
                "code pair response",
                timeout,
            )
            .await?;
        if resp.user_code.is_empty()
            || resp.device_code.is_empty()
            || resp.verification_uri.is_empty()
            || resp.expires_in.0 == 0
        {
            return Err(LwaFailure::BadResponse(
                "code pair response misses user_code, device_code, verification_uri or expires_in"
                    .into(),
            ));
        }
        Ok(resp)
    }

    /// `GET /user/profile` with the token in the Authorization header: the account's id, and
    /// its name and e-mail address when the sign-in granted the `profile` scope (cleaned and
    /// bounded by [`AccountProfile::from_lwa`]; personal data: callers must not log them).
    pub async fn user_profile(
        &self,
        access_token: &AccessToken,
        timeout: Duration,
    ) -> Result<AccountProfile, LwaFailure> {
        #[derive(serde::Deserialize)]
        struct Profile {
            user_id: UserId,
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            email: Option<String>,
        }
        let profile: Profile = self
            .endpoint_response(
                self.http
                    .get(self.endpoints.profile.clone())
                    .header(AUTHORIZATION, bearer(access_token)?)
                    .header(ACCEPT, "application/json"),
                "profile (it needs a user_id)",
                timeout,
            )
            .await?;
        Ok(AccountProfile::from_lwa(
            profile.user_id,
            profile.name.as_deref(),
            profile.email.as_deref(),
        ))
    }

    /// A form POST to `url` asking for JSON; `body` is `application/x-www-form-urlencoded`.
    fn post_form(&self, url: &Url, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.http
            .post(url.clone())
            .header(CONTENT_TYPE, FORM)
            .header(ACCEPT, "application/json")
            .body(body)
    }

    /// Sends `req` and parses a 200 answer as `T` (in the style of oauth2-rs's
    /// `endpoint_response`): any other status is [`LwaFailure::Rejected`] with LWA's error body,
    /// an unparseable 200 is [`LwaFailure::BadResponse`] naming `what` and the position (never
    /// the body: it may hold tokens). The body is zeroized after parsing.
    async fn endpoint_response<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        timeout: Duration,
    ) -> Result<T, LwaFailure> {
        let (status, bytes) = self.send(req, timeout).await?;
        let bytes = Zeroizing::new(bytes);
        if status != 200 {
            return Err(rejected(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            LwaFailure::BadResponse(format!(
                "{what} is not the expected JSON (line {} column {})",
                e.line(),
                e.column()
            ))
        })
    }

    /// AVS `GET /ping` with the token.
    pub async fn ping(
        &self,
        access_token: &AccessToken,
        timeout: Duration,
    ) -> Result<PingOutcome, LwaFailure> {
        let url = self
            .endpoints
            .avs
            .join("ping")
            .map_err(|e| LwaFailure::BadResponse(format!("bad AVS URL: {e}")))?;
        let (status, _) = self
            .send(
                self.http
                    .get(url)
                    .header(AUTHORIZATION, bearer(access_token)?),
                timeout,
            )
            .await?;
        Ok(match status {
            204 | 200 => PingOutcome::Ok,
            403 => PingOutcome::Forbidden,
            other => PingOutcome::Other(other),
        })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), LwaFailure> {
        let work = async {
            let mut resp = req.send().await.map_err(transport)?;
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(LwaFailure::BadResponse(format!(
                        "response body larger than {MAX_BODY} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, body))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(LwaFailure::Timeout(timeout)),
        }
    }
}

fn bearer(token: &AccessToken) -> Result<HeaderValue, LwaFailure> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| LwaFailure::BadResponse("access token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn rejected(status: u16, body: &[u8]) -> LwaFailure {
    let (error, lwa) = AuthError::from_response(status, body);
    LwaFailure::Rejected { status, error, lwa }
}

fn transport(e: reqwest::Error) -> LwaFailure {
    // Without the URL the message is shorter; the URL itself never carries a secret here.
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    LwaFailure::Unreachable(msg)
}
