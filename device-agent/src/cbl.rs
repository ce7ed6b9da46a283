//! Code-based linking (CBL), the fallback for speakers with a voice or a small display: the
//! speaker asks LWA for a code pair, tells the user "go to amazon.com/us/code and enter
//! BEYHYS", and polls until the user approved.
//!
//! Polling follows the AVS SDK (lwa-spec §2.3, §5.3): every 5 s regardless of the server's
//! `interval`, doubled on `slow_down` up to 60 s, stopped when the pair's `expires_in` has passed.
//! The grant is installed unverified, so the delegate refreshes at once to prove the client id
//! (`INVALID_CBL_CLIENT_ID` when it is a web-kind id).

use std::time::Duration;

use shared_protocol::ids::{ClientId, DeviceSerialNumber, ProductId};
use shared_protocol::lwa::{AuthError, CodePairRequest, CodePairResponse, TokenRequest};
use tokio::time::Instant;

use crate::auth_delegate::{AuthDelegate, InstallError};
use crate::lwa_client::{LwaClient, LwaFailure, TokenGrant};
use crate::retry::RetryPolicy;

/// Polling tuning (defaults are the SDK's).
#[derive(Debug, Clone)]
pub struct CblPolicy {
    /// First poll interval (5 s).
    pub poll_interval: Duration,
    /// Largest poll interval after `slow_down` (60 s).
    pub max_poll_interval: Duration,
    /// Backoff for the code-pair request itself.
    pub retry: RetryPolicy,
    /// Code-pair attempts before giving up.
    pub max_code_pair_attempts: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for CblPolicy {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(60),
            retry: RetryPolicy::sdk(),
            max_code_pair_attempts: 8,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What the user must do, handed to the caller (print, speak).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CblPrompt {
    /// The code to type.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// Seconds the code is valid.
    pub expires_in_secs: u64,
}

/// How CBL ended without a link.
#[derive(Debug, thiserror::Error)]
pub enum CblError {
    /// The code pair expired before the user approved it.
    #[error("the code expired after {0} s without being entered; run cbl again")]
    Expired(u64),
    /// LWA refused for good (wrong client id, …).
    #[error("LWA refused: {0}")]
    Refused(LwaFailure),
    /// The code-pair request kept failing.
    #[error("could not get a code from LWA: {0}")]
    CodePair(LwaFailure),
    /// Saving the account failed.
    #[error("could not store the tokens: {0}")]
    Install(#[source] InstallError),
}

impl CblError {
    /// The SDK error code for it.
    pub fn auth_error(&self) -> AuthError {
        match self {
            Self::Expired(_) => AuthError::InvalidCodePair,
            Self::Refused(f) | Self::CodePair(f) => f.auth_error(),
            Self::Install(_) => AuthError::InternalError,
        }
    }
}

/// Runs CBL to the end: code pair, `on_prompt`, polling, install. The delegate's state shows
/// AUTHORIZING meanwhile (when no account is held) and UNRECOVERABLE_ERROR on failure.
pub async fn run_cbl(
    delegate: &AuthDelegate,
    client_id: &ClientId,
    product_id: &ProductId,
    dsn: &DeviceSerialNumber,
    policy: &CblPolicy,
    on_prompt: impl FnOnce(&CblPrompt),
) -> Result<(), CblError> {
    delegate.begin_authorizing().await;
    let request = CodePairRequest {
        client_id: client_id.clone(),
        product_id: product_id.clone(),
        dsn: dsn.clone(),
    };
    let result = run_inner(delegate, &request, policy, on_prompt).await;
    if let Err(e) = &result {
        tracing::warn!(error = %e, "code-based linking failed");
        delegate.authorization_failed(e.auth_error()).await;
    }
    result
}

/// [`run_cbl`] for `request`'s client, product and device.
async fn run_inner(
    delegate: &AuthDelegate,
    request: &CodePairRequest,
    policy: &CblPolicy,
    on_prompt: impl FnOnce(&CblPrompt),
) -> Result<(), CblError> {
    let pair = code_pair(delegate.lwa(), request, policy).await?;
    // The code's life counts from its arrival, not from when the prompt was shown.
    let deadline = Instant::now() + Duration::from_secs(pair.expires_in.0);
    on_prompt(&CblPrompt {
        user_code: pair.user_code.clone(),
        verification_uri: pair.verification_uri.clone(),
        expires_in_secs: pair.expires_in.0,
    });
    tracing::info!(
        expires_in = pair.expires_in.0,
        "CBL code issued; waiting for the user"
    );
    let grant = poll_for_approval(delegate.lwa(), &pair, deadline, policy).await?;
    delegate
        .install(grant, request.client_id.clone(), None, false)
        .await
        .map_err(CblError::Install)?;
    tracing::info!("CBL approved; verifying the client id with a first refresh");
    Ok(())
}

/// The code pair, retried on the policy's schedule while LWA's failure is retryable, at most
/// `max_code_pair_attempts` times.
async fn code_pair(
    lwa: &LwaClient,
    request: &CodePairRequest,
    policy: &CblPolicy,
) -> Result<CodePairResponse, CblError> {
    let mut attempt = 0;
    loop {
        match lwa.request_code_pair(request, policy.request_timeout).await {
            Ok(pair) => return Ok(pair),
            Err(f) if f.is_retryable() && attempt + 1 < policy.max_code_pair_attempts => {
                let delay = policy.retry.delay(attempt);
                tracing::warn!(failure = %f, ?delay, "code pair request failed; retrying");
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
            Err(f) => return Err(CblError::CodePair(f)),
        }
    }
}

/// Asks LWA for the tokens every `poll_interval` (doubled, up to `max_poll_interval`, when
/// it says slow down) until the user approves the code, LWA refuses for good, or the code
/// expires at `deadline`.
async fn poll_for_approval(
    lwa: &LwaClient,
    pair: &CodePairResponse,
    deadline: Instant,
    policy: &CblPolicy,
) -> Result<TokenGrant, CblError> {
    let mut interval = policy.poll_interval;
    loop {
        if Instant::now() >= deadline {
            return Err(CblError::Expired(pair.expires_in.0));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = policy
            .request_timeout
            .min(remaining.max(Duration::from_secs(1)));
        let request = TokenRequest::DeviceCode {
            device_code: &pair.device_code,
            user_code: &pair.user_code,
        };
        match lwa.grant(&request, timeout).await {
            Ok(grant) => return Ok(grant),
            Err(f) => match f.auth_error() {
                AuthError::AuthorizationPending
                | AuthError::UnknownError
                | AuthError::ServerError => {}
                AuthError::SlowDown => {
                    interval = (interval * 2).min(policy.max_poll_interval);
                    tracing::info!(?interval, "LWA asked to slow down");
                }
                _ => return Err(CblError::Refused(f)),
            },
        }
        let wake = (Instant::now() + interval).min(deadline);
        tokio::time::sleep_until(wake).await;
    }
}
