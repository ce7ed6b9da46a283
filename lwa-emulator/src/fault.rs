//! Fault injection: make the next N requests of one endpoint fail in a chosen way.
//!
//! Clients must survive LWA's bad days (5xx, throttling, slow answers, dropped connections,
//! garbage bodies) with the SDK's retry schedule. Tests queue faults per endpoint; each request
//! to that endpoint consumes one use of the oldest queued fault, then the endpoint is healthy
//! again.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The endpoints a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /ap/oa`.
    Authorize,
    /// `POST /auth/o2/token`.
    Token,
    /// `POST /auth/O2/create/codepair`.
    Codepair,
    /// `GET /auth/o2/tokeninfo`.
    Tokeninfo,
    /// `GET /user/profile`.
    Profile,
    /// AVS `GET /ping`.
    Ping,
    /// AVS `GET /v20160207/directives`.
    Directives,
}

impl Endpoint {
    /// The endpoint a request path belongs to (`None` for pages and the control API).
    pub fn classify(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        match lower.trim_end_matches('/') {
            "/ap/oa" => Some(Self::Authorize),
            "/auth/o2/token" => Some(Self::Token),
            "/auth/o2/create/codepair" => Some(Self::Codepair),
            "/auth/o2/tokeninfo" => Some(Self::Tokeninfo),
            "/user/profile" => Some(Self::Profile),
            "/ping" => Some(Self::Ping),
            "/v20160207/directives" => Some(Self::Directives),
            _ => None,
        }
    }

    /// The snake_case name used in the control API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Token => "token",
            Self::Codepair => "codepair",
            Self::Tokeninfo => "tokeninfo",
            Self::Profile => "profile",
            Self::Ping => "ping",
            Self::Directives => "directives",
        }
    }
}

/// A name that is not one of the [`Endpoint`]s' snake_case names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown endpoint {0:?}")]
pub struct UnknownEndpoint(pub String);

impl std::str::FromStr for Endpoint {
    type Err = UnknownEndpoint;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| UnknownEndpoint(s.to_owned()))
    }
}

/// What happens to a faulted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with this status at once. `retry_after` adds a `Retry-After` header (seconds);
    /// `body` replaces the default JSON body (`{"error_description":…,"error":"servererror"}`
    /// for 5xx, `{"error_description":…,"error":"too_many_requests"}` otherwise).
    Status {
        /// HTTP status (400..=599).
        status: u16,
        /// `Retry-After` seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        /// Raw body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Wait this long, then handle the request normally.
    Delay {
        /// How long to hold the request, in milliseconds.
        millis: u64,
    },
    /// Close the connection without an answer.
    Drop,
    /// Answer 200 with a truncated, unparseable JSON body.
    MalformedJson,
}

impl Fault {
    /// 503 with `Retry-After`.
    pub fn unavailable(retry_after: u64) -> Self {
        Self::Status {
            status: 503,
            retry_after: Some(retry_after),
            body: None,
        }
    }

    /// 429 (LWA's throttling answer) with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self::Status {
            status: 429,
            retry_after: Some(retry_after),
            body: None,
        }
    }

    /// A status with the default body.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
            body: None,
        }
    }

    /// A short description for the request record.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("status {status}"),
            Self::Delay { millis } => format!("delay {millis} ms"),
            Self::Drop => "drop".into(),
            Self::MalformedJson => "malformed_json".into(),
        }
    }
}

/// Queued faults per endpoint.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    queues: HashMap<Endpoint, VecDeque<(Fault, u32)>>,
}

impl FaultTable {
    pub(crate) fn push(&mut self, endpoint: Endpoint, fault: Fault, count: u32) {
        if count > 0 {
            self.queues
                .entry(endpoint)
                .or_default()
                .push_back((fault, count));
        }
    }

    /// Consumes one use of the oldest fault for `endpoint`.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let queue = self.queues.get_mut(&endpoint)?;
        let (fault, remaining) = queue.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order() {
        let mut t = FaultTable::default();
        t.push(Endpoint::Token, Fault::status(500), 2);
        t.push(Endpoint::Token, Fault::Drop, 1);
        assert_eq!(t.take(Endpoint::Ping), None);
        assert_eq!(t.take(Endpoint::Token), Some(Fault::status(500)));
        assert_eq!(t.take(Endpoint::Token), Some(Fault::status(500)));
        assert_eq!(t.take(Endpoint::Token), Some(Fault::Drop));
        assert_eq!(t.take(Endpoint::Token), None);
    }

    #[test]
    fn wire_format() {
        let f: Fault =
            serde_json::from_str(r#"{"kind":"status","status":429,"retry_after":3}"#).unwrap();
        assert_eq!(
            f,
            Fault::Status {
                status: 429,
                retry_after: Some(3),
                body: None
            }
        );
        assert_eq!("token".parse::<Endpoint>().unwrap(), Endpoint::Token);
        let unknown = "Token".parse::<Endpoint>().unwrap_err();
        assert_eq!(unknown.to_string(), r#"unknown endpoint "Token""#);
        assert_eq!(Endpoint::classify("/auth/O2/token"), Some(Endpoint::Token));
        assert_eq!(Endpoint::classify("/ap/oa/"), Some(Endpoint::Authorize));
    }
}
