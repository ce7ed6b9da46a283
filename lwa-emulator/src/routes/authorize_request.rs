//! What a `GET /ap/oa` asks for, checked the way LWA checks it (lwa-spec §1.4, RFC 6749
//! §4.1.2.1). Two stages, and the order inside each is part of LWA's behaviour: when a request
//! breaks several rules, the first one answers.
//!
//! 1. [`Caller::check`]: the client, then its redirect URI. Until both are known good nothing
//!    may be redirected (sending the browser to an unchecked URI would make the emulator an open
//!    redirector), so these problems are [`NoRedirect`]s, shown on an error page. The client
//!    comes first because the redirect URI is checked against *its* Allowed Return URLs.
//! 2. [`Asked::check`]: everything else, reported to the redirect URI as a [`Refusal`]. First a
//!    repeated parameter (after that every rule reads one unambiguous value), then
//!    `response_type`, `scope`, `scope_data` (after `scope`, because only `alexa:all` needs it),
//!    the PKCE challenge, and last the emulator's `require_pkce` setting (so a malformed challenge
//!    is reported as invalid, not as missing).
//!
//! The words are LWA's; `tests/emulator/authorize_rules.rs` pins them and the order.

use shared_protocol::ids::ProductId;
use shared_protocol::lwa::{ScopeData, SCOPE_ALEXA_ALL};
use shared_protocol::pkce::{CodeChallengeMethod, PkceCodeChallenge};

use crate::params::Params;
use crate::registry::{Client, Registry};
use crate::server::Shared;

/// Scopes the emulator knows.
pub(crate) const KNOWN_SCOPES: &[&str] = &[
    SCOPE_ALEXA_ALL,
    "alexa:voice_service:pre_auth",
    "profile",
    "profile:user_id",
    "postal_code",
];

/// Why a request cannot even be answered by redirect; the text is the error page's.
#[derive(Debug, thiserror::Error)]
pub(super) enum NoRedirect {
    /// `client_id` or `redirect_uri` missing or repeated: the same words as a redirect's.
    #[error(transparent)]
    Parameter(Refusal),
    #[error("The client_id is not registered with Login with Amazon.")]
    UnknownClient,
    #[error("The redirect_uri is not one of the client's Allowed Return URLs.")]
    ReturnUrlNotAllowed,
}

/// Why a request from a known caller is refused; the text is the `error_description`.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    #[error("The request has a duplicate parameter : {0}")]
    Duplicate(String),
    #[error("The request is missing a required parameter : {0}")]
    Missing(&'static str),
    #[error("The request has an invalid parameter : {0}")]
    Invalid(&'static str),
    #[error("The authorization server does not support this response_type")]
    UnsupportedResponseType,
    #[error("An unknown scope was requested")]
    UnknownScope,
    #[error("The productID is not registered with this client's security profile")]
    ProductNotBound,
}

impl Refusal {
    /// The `error` code of RFC 6749 §4.1.2.1.
    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Duplicate(_) | Self::Missing(_) | Self::Invalid(_) => "invalid_request",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnknownScope | Self::ProductNotBound => "invalid_scope",
        }
    }
}

/// Who asks and where the answer goes, both checked.
pub(super) struct Caller<'r> {
    pub(super) client: &'r Client,
    /// One of the client's Allowed Return URLs.
    pub(super) redirect_uri: String,
}

impl<'r> Caller<'r> {
    /// Stage 1: a registered `client_id`, then a `redirect_uri` that client allows.
    pub(super) fn check(registry: &'r Registry, params: &Params) -> Result<Self, NoRedirect> {
        let client = registry
            .client(single(params, "client_id")?)
            .ok_or(NoRedirect::UnknownClient)?;
        let redirect_uri = single(params, "redirect_uri")?;
        if !client.allows_return_url(redirect_uri) {
            return Err(NoRedirect::ReturnUrlNotAllowed);
        }
        Ok(Self {
            client,
            redirect_uri: redirect_uri.to_owned(),
        })
    }
}

/// The one value of a parameter the error page is about.
fn single<'p>(params: &'p Params, name: &'static str) -> Result<&'p str, NoRedirect> {
    match params.get(name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(NoRedirect::Parameter(Refusal::Missing(name))),
        Err(_) => Err(NoRedirect::Parameter(Refusal::Duplicate(name.to_owned()))),
    }
}

/// The device an `alexa:all` request is for, from its `scope_data`.
pub(super) struct AlexaDevice {
    pub(super) product_id: ProductId,
    pub(super) dsn: String,
}

/// What a known caller asks for, all of it checked.
pub(super) struct Asked {
    /// `scope` as sent (the code redirect echoes it).
    pub(super) scope_param: String,
    pub(super) scopes: Vec<String>,
    /// `Some` exactly when `alexa:all` is asked for.
    pub(super) device: Option<AlexaDevice>,
    pub(super) challenge: Option<PkceCodeChallenge>,
}

impl Asked {
    /// Stage 2, in LWA's order (see the module docs).
    pub(super) fn check(
        shared: &Shared,
        params: &Params,
        client: &Client,
    ) -> Result<Self, Refusal> {
        if let Some(name) = params.first_duplicate() {
            return Err(Refusal::Duplicate(name.to_owned()));
        }
        // No parameter is repeated any more, so reading one cannot fail.
        let get = |name: &str| params.get(name).ok().flatten();
        code_response_type(get("response_type"))?;
        let scope_param = get("scope").ok_or(Refusal::Missing("scope"))?;
        let scopes = known_scopes(scope_param)?;
        let device = if scopes.iter().any(|s| s == SCOPE_ALEXA_ALL) {
            Some(alexa_device(get("scope_data"), &shared.registry, client)?)
        } else {
            None
        };
        let challenge = pkce_challenge(get("code_challenge"), get("code_challenge_method"))?;
        if challenge.is_none() && shared.lock().settings.require_pkce {
            return Err(Refusal::Missing("code_challenge"));
        }
        Ok(Self {
            scope_param: scope_param.to_owned(),
            scopes,
            device,
            challenge,
        })
    }
}

/// `response_type` must be `code` (the only grant LWA's browser flow has).
fn code_response_type(value: Option<&str>) -> Result<(), Refusal> {
    match value {
        None => Err(Refusal::Missing("response_type")),
        Some("code") => Ok(()),
        Some(_) => Err(Refusal::UnsupportedResponseType),
    }
}

/// The space-separated scopes: at least one, all known.
fn known_scopes(scope: &str) -> Result<Vec<String>, Refusal> {
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(Refusal::UnknownScope);
    }
    Ok(scopes)
}

/// `scope_data` of an `alexa:all` request: a serial number, and a product bound to `client`'s
/// security profile.
fn alexa_device(
    scope_data: Option<&str>,
    registry: &Registry,
    client: &Client,
) -> Result<AlexaDevice, Refusal> {
    let raw = scope_data.ok_or(Refusal::Missing("scope_data"))?;
    AlexaDevice::from_scope_data(raw, registry, client).map_err(|e| match e {
        ScopeDataError::Unreadable | ScopeDataError::NoSerial => Refusal::Invalid("scope_data"),
        ScopeDataError::NotBound => Refusal::ProductNotBound,
    })
}

/// Why an `alexa:all` request's `scope_data` names no device of the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScopeDataError {
    /// Not the `{"alexa:all":{"productID":…,"productInstanceAttributes":{…}}}` JSON.
    Unreadable,
    /// An empty `deviceSerialNumber`.
    NoSerial,
    /// The product is unknown or not bound to the client's security profile.
    NotBound,
}

impl AlexaDevice {
    /// The device `scope_data` names, checked in this order: the JSON, the serial number, the
    /// product's binding to `client` (the same for `/ap/oa` and the code-pair endpoint).
    pub(super) fn from_scope_data(
        raw: &str,
        registry: &Registry,
        client: &Client,
    ) -> Result<Self, ScopeDataError> {
        let data: ScopeData = serde_json::from_str(raw).map_err(|_| ScopeDataError::Unreadable)?;
        let product_id = data.alexa_all.product_id;
        let dsn = data
            .alexa_all
            .product_instance_attributes
            .device_serial_number;
        if dsn.as_str().is_empty() {
            return Err(ScopeDataError::NoSerial);
        }
        let bound = registry
            .product(product_id.as_str())
            .is_some_and(|p| p.client_ids.contains(&client.client_id));
        if !bound {
            return Err(ScopeDataError::NotBound);
        }
        Ok(Self {
            product_id,
            dsn: dsn.to_string(),
        })
    }
}

/// The PKCE challenge, if any: a method without a challenge is refused, and a challenge without
/// a method is `plain` (RFC 7636 §4.3).
fn pkce_challenge(
    value: Option<&str>,
    method: Option<&str>,
) -> Result<Option<PkceCodeChallenge>, Refusal> {
    let Some(value) = value else {
        return match method {
            None => Ok(None),
            Some(_) => Err(Refusal::Missing("code_challenge")),
        };
    };
    let method = method
        .unwrap_or("plain")
        .parse::<CodeChallengeMethod>()
        .map_err(|_| Refusal::Invalid("code_challenge_method"))?;
    PkceCodeChallenge::from_parts(value.to_owned(), method)
        .map(Some)
        .map_err(|_| Refusal::Invalid("code_challenge"))
}
