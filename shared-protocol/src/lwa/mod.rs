//! Login with Amazon wire types, as both the agent (a client) and the emulator (a server) see them.
//!
//! Facts and sources: `shared/reference/lwa-spec.md`. Section numbers below refer to it.
//!
//! - [`authorize`]: the `/ap/oa` URL the companion opens in the browser (§1.4).
//! - [`token`]: token request bodies for every grant and the token response (§1.6, §2.3, §3).
//! - [`codepair`]: CBL code-pair request and response (§2.1).
//! - [`error`]: LWA error bodies and their mapping to the AVS SDK's error codes (§4, §5.2).
//! - [`endpoints`]: Amazon's real endpoints per region, and the loopback rule for plain HTTP.

pub mod authorize;
pub mod codepair;
pub mod endpoints;
pub mod error;
pub mod token;

pub use authorize::{AuthorizeRequest, ScopeData, AUTHORIZE_SCOPE, SCOPE_ALEXA_ALL, SCOPE_PROFILE};
pub use codepair::{CodePairRequest, CodePairResponse};
pub use endpoints::{EndpointError, LwaEndpoints, Region};
pub use error::{AuthError, AuthState, LwaErrorBody};
pub use token::{ExpiresIn, TokenRequest, TokenResponse};
