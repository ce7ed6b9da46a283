//! LWA error bodies and the AVS SDK's auth states and error codes, lwa-spec §4, §5.1, §5.2.

use serde::{Deserialize, Serialize};

/// An LWA error body: `{"error_description":"…","error":"…"}` (LWA writes the description
/// first; extra keys such as `request_id` are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwaErrorBody {
    /// Human-readable, e.g. "The request has an invalid grant parameter : code".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// The code, e.g. `invalid_grant`.
    pub error: String,
}

impl LwaErrorBody {
    /// A body with both fields.
    pub fn new(error: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            error_description: Some(description.into()),
            error: error.into(),
        }
    }
}

/// The AVS SDK's `AuthObserverInterface::State`, plus `AUTHORIZING` from the newest SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthState {
    /// No tokens yet (never paired, or reset).
    Uninitialized,
    /// Getting the first tokens (exchange or CBL in progress).
    Authorizing,
    /// A valid access token is available.
    Refreshed,
    /// The access token expired and refresh has not succeeded yet; keeps retrying.
    Expired,
    /// Needs the user: re-pair (e.g. the user unlinked the speaker).
    UnrecoverableError,
}

impl AuthState {
    /// The SDK's spelling (without its `UNINTIALIZED` typo).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Uninitialized => "UNINITIALIZED",
            Self::Authorizing => "AUTHORIZING",
            Self::Refreshed => "REFRESHED",
            Self::Expired => "EXPIRED",
            Self::UnrecoverableError => "UNRECOVERABLE_ERROR",
        }
    }
}

impl AuthState {
    /// What the state means, for people (`status` shows this, with [`as_str`](Self::as_str)
    /// in parentheses for developers).
    pub fn in_words(&self) -> &'static str {
        match self {
            Self::Uninitialized => "not linked to an Amazon account",
            Self::Authorizing => "linking to an Amazon account",
            Self::Refreshed => "linked and ready",
            Self::Expired => "linked, but the access token expired; getting a new one",
            Self::UnrecoverableError => "Amazon no longer accepts the link: pair again",
        }
    }
}

impl std::fmt::Display for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AVS SDK's `AuthObserverInterface::Error`, in the SDK's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthError {
    /// No error.
    Success,
    /// Transport failure, timeout, or a body without an `error` field.
    UnknownError,
    /// Client authorization failed.
    AuthorizationFailed,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// HTTP 500/503 or `servererror`.
    ServerError,
    /// `invalid_request` (or a bare HTTP 400).
    InvalidRequest,
    /// `InvalidValue` or `invalid_client`.
    InvalidValue,
    /// `invalid_grant`: code or token invalid, expired, revoked, or for another client.
    AuthorizationExpired,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_code_pair` (CBL).
    InvalidCodePair,
    /// `authorization_pending` (CBL).
    AuthorizationPending,
    /// `slow_down` (CBL).
    SlowDown,
    /// A bug on our side.
    InternalError,
    /// The client id cannot be used for CBL (first refresh answered `invalid_request`).
    InvalidCblClientId,
}

impl AuthError {
    /// The SDK's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::UnknownError => "UNKNOWN_ERROR",
            Self::AuthorizationFailed => "AUTHORIZATION_FAILED",
            Self::UnauthorizedClient => "UNAUTHORIZED_CLIENT",
            Self::ServerError => "SERVER_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidValue => "INVALID_VALUE",
            Self::AuthorizationExpired => "AUTHORIZATION_EXPIRED",
            Self::UnsupportedGrantType => "UNSUPPORTED_GRANT_TYPE",
            Self::InvalidCodePair => "INVALID_CODE_PAIR",
            Self::AuthorizationPending => "AUTHORIZATION_PENDING",
            Self::SlowDown => "SLOW_DOWN",
            Self::InternalError => "INTERNAL_ERROR",
            Self::InvalidCblClientId => "INVALID_CBL_CLIENT_ID",
        }
    }

    /// What the error means, for people; `None` for `SUCCESS` (nothing to say).
    pub fn in_words(&self) -> Option<&'static str> {
        Some(match self {
            Self::Success => return None,
            Self::UnknownError => "Login with Amazon could not be reached or gave no usable answer",
            Self::AuthorizationFailed => "Login with Amazon refused the authorization",
            Self::UnauthorizedClient => "this client id may not be used for this",
            Self::ServerError => "Login with Amazon had a server error",
            Self::InvalidRequest => "Login with Amazon rejected the request",
            Self::InvalidValue => "Login with Amazon does not accept this client id",
            Self::AuthorizationExpired => {
                "the sign-in expired or was revoked (the account was unlinked?)"
            }
            Self::UnsupportedGrantType => "Login with Amazon does not support this kind of sign-in",
            Self::InvalidCodePair => "the code shown for code-based linking expired",
            Self::AuthorizationPending => "waiting for the code to be entered",
            Self::SlowDown => "Login with Amazon asked to slow down",
            Self::InternalError => "an internal error of the speaker",
            Self::InvalidCblClientId => "this client id cannot be used for code-based linking",
        })
    }

    /// The SDK's mapping of an LWA `error` string (lwa-spec §5.2 step 3). Unknown strings
    /// (`expired_token`, `ServerError`, …) are `UNKNOWN_ERROR`, as in the SDK.
    pub fn from_lwa_error(error: &str) -> Self {
        match error {
            "authorization_pending" => Self::AuthorizationPending,
            "invalid_client" => Self::InvalidValue,
            "invalid_code_pair" => Self::InvalidCodePair,
            "invalid_grant" => Self::AuthorizationExpired,
            "invalid_request" => Self::InvalidRequest,
            "InvalidValue" => Self::InvalidValue,
            "servererror" => Self::ServerError,
            "slow_down" => Self::SlowDown,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            _ => Self::UnknownError,
        }
    }

    /// The SDK's mapping of an HTTP status alone (§5.2 step 1); `None` is a transport failure.
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            Some(200) => Self::Success,
            Some(400) => Self::InvalidRequest,
            Some(500) | Some(503) => Self::ServerError,
            _ => Self::UnknownError,
        }
    }

    /// The whole §5.2 mapping of a response: status, then the body's `error` when present.
    /// A 200 whose body does not parse as JSON is `UNKNOWN_ERROR`.
    pub fn from_response(status: u16, body: &[u8]) -> (Self, Option<LwaErrorBody>) {
        let by_status = Self::from_status(Some(status));
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
            let mapped = if by_status == Self::Success {
                Self::UnknownError
            } else {
                by_status
            };
            return (mapped, None);
        };
        if status != 200 {
            if let Ok(lwa) = serde_json::from_value::<LwaErrorBody>(json) {
                if !lwa.error.is_empty() {
                    return (Self::from_lwa_error(&lwa.error), Some(lwa));
                }
            }
        }
        (by_status, None)
    }

    /// True for the errors a refresh loop retries with backoff (§5.3 REFRESHING_TOKEN).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::UnknownError | Self::ServerError | Self::AuthorizationPending | Self::SlowDown
        )
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_error_table() {
        let table = [
            ("authorization_pending", AuthError::AuthorizationPending),
            ("invalid_client", AuthError::InvalidValue),
            ("invalid_code_pair", AuthError::InvalidCodePair),
            ("invalid_grant", AuthError::AuthorizationExpired),
            ("invalid_request", AuthError::InvalidRequest),
            ("InvalidValue", AuthError::InvalidValue),
            ("servererror", AuthError::ServerError),
            ("slow_down", AuthError::SlowDown),
            ("unauthorized_client", AuthError::UnauthorizedClient),
            ("unsupported_grant_type", AuthError::UnsupportedGrantType),
            ("expired_token", AuthError::UnknownError),
            ("ServerError", AuthError::UnknownError),
        ];
        for (lwa, sdk) in table {
            assert_eq!(AuthError::from_lwa_error(lwa), sdk, "{lwa}");
        }
    }

    #[test]
    fn response_mapping_follows_status_then_body() {
        let body = br#"{"error_description":"The request has an invalid grant parameter : code","error":"invalid_grant"}"#;
        let (err, lwa) = AuthError::from_response(400, body);
        assert_eq!(err, AuthError::AuthorizationExpired);
        assert_eq!(lwa.unwrap().error, "invalid_grant");
        assert_eq!(
            AuthError::from_response(500, b"<html>").0,
            AuthError::ServerError
        );
        assert_eq!(AuthError::from_response(503, b"").0, AuthError::ServerError);
        assert_eq!(
            AuthError::from_response(429, b"{}").0,
            AuthError::UnknownError
        );
        assert_eq!(
            AuthError::from_response(200, b"not json").0,
            AuthError::UnknownError
        );
        assert_eq!(
            AuthError::from_response(400, b"{}").0,
            AuthError::InvalidRequest
        );
        assert_eq!(AuthError::from_status(None), AuthError::UnknownError);
    }

    #[test]
    fn error_body_serializes_description_first() {
        let body = LwaErrorBody::new("invalid_grant", "x");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error_description":"x","error":"invalid_grant"}"#
        );
    }
}
