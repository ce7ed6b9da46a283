//! The request record: what the emulator received, secrets redacted, for tests to assert the
//! exact wire contents a client sent (parameter names, order, content type, header use).

use serde::{Deserialize, Serialize};

use crate::fault::Endpoint;

/// Most requests kept; older ones are dropped first.
pub(crate) const MAX_RECORDED: usize = 10_000;

/// One received request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// The endpoint, if the path is one of the API endpoints.
    pub endpoint: Option<Endpoint>,
    /// `GET`, `POST`, ….
    pub method: String,
    /// The path as sent (case preserved: `/auth/O2/token` vs `/auth/o2/token`).
    pub path: String,
    /// Query parameters in order, values redacted (see [`crate::redact::param`]).
    pub query: Vec<(String, String)>,
    /// The `Content-Type` header as sent.
    pub content_type: Option<String>,
    /// Body parameters in order (form or JSON), values redacted.
    pub params: Vec<(String, String)>,
    /// Selected headers (`authorization`, `x-amz-access-token`, `accept-language`,
    /// `user-agent`, `cookie`), values redacted.
    pub headers: Vec<(String, String)>,
    /// The status answered; `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
    /// The injected fault, if any (e.g. `status 503`).
    pub fault: Option<String>,
}

/// The body of a public client's PKCE code exchange, field by field in the order the LWA
/// documentation and the AVS Device SDK send it: what a recorded exchange's
/// [`RecordedRequest::param_names`] reads.
pub const PKCE_EXCHANGE_PARAMS: [&str; 5] = [
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "code_verifier",
];

impl RecordedRequest {
    /// A request to the token endpoint for `grant_type` (`authorization_code`,
    /// `refresh_token`, `device_code`): what most tests count.
    pub fn is_token_grant(&self, grant_type: &str) -> bool {
        self.endpoint == Some(Endpoint::Token) && self.param("grant_type") == Some(grant_type)
    }

    /// The (redacted) value of a body parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The (redacted) value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The (redacted) value of a recorded header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Body parameter names in the order sent.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|(k, _)| k.as_str()).collect()
    }
}
