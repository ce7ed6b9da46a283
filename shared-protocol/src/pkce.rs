//! PKCE (RFC 7636) for the companion-app flow.
//!
//! The speaker generates the verifier, sends only the S256 challenge over the link, and later
//! proves possession by sending the verifier straight to LWA. The verifier therefore has no
//! `Serialize`, `Clone` or public constructor from arbitrary input outside tests: it is born
//! here from 32 random bytes and dies (zeroized) with the pairing session.
//!
//! ```
//! use shared_protocol::pkce::{PkcePair, CodeChallengeMethod};
//! let pair = PkcePair::generate();
//! assert_eq!(pair.challenge.method(), CodeChallengeMethod::S256);
//! assert_eq!(pair.challenge.as_str().len(), 43);
//! assert!(pair.verifier.matches(&pair.challenge));
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Random bytes behind a verifier: 32 bytes give the 43-character minimum length (256 bits).
pub const VERIFIER_ENTROPY_BYTES: usize = 32;

/// The PKCE `code_verifier`: secret, device-only, never serialized.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PkceCodeVerifier(String);

impl PkceCodeVerifier {
    /// A new verifier from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; VERIFIER_ENTROPY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        bytes.zeroize();
        Self(verifier)
    }

    /// Wraps an existing verifier after checking RFC 7636 §4.1 (43–128 chars of
    /// `[A-Za-z0-9-._~]`). For test vectors and for the emulator, which receives verifiers.
    pub fn from_string(value: String) -> Result<Self, PkceError> {
        validate_verifier(&value)?;
        Ok(Self(value))
    }

    /// The S256 challenge for this verifier.
    pub fn challenge(&self) -> PkceCodeChallenge {
        PkceCodeChallenge::s256(&self.0)
    }

    /// True when this verifier answers `challenge` (constant time for S256 and plain).
    pub fn matches(&self, challenge: &PkceCodeChallenge) -> bool {
        use subtle::ConstantTimeEq as _;
        let computed = match challenge.method {
            CodeChallengeMethod::S256 => PkceCodeChallenge::s256(&self.0).value,
            CodeChallengeMethod::Plain => self.0.clone(),
        };
        computed.as_bytes().ct_eq(challenge.value.as_bytes()).into()
    }

    /// The verifier itself, for the token request body only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PkceCodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PkceCodeVerifier({})", crate::secret::REDACTED)
    }
}

/// Checks the RFC 7636 verifier syntax.
pub fn validate_verifier(value: &str) -> Result<(), PkceError> {
    let len = value.len();
    if !(43..=128).contains(&len) {
        return Err(PkceError::VerifierLength(len));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(PkceError::VerifierCharacter(bad));
    }
    Ok(())
}

/// `code_challenge_method`. LWA defaults to `plain` when the parameter is absent; AVS requires
/// `S256`, which is all this project sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum CodeChallengeMethod {
    /// `BASE64URL(SHA256(verifier))`.
    #[default]
    S256,
    /// The challenge is the verifier (accepted by LWA; never sent by avs-pair).
    #[serde(rename = "plain")]
    Plain,
}

impl CodeChallengeMethod {
    /// The wire spelling: `S256` or `plain`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

impl std::str::FromStr for CodeChallengeMethod {
    type Err = PkceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            other => Err(PkceError::UnknownMethod(other.to_owned())),
        }
    }
}

/// The PKCE `code_challenge` with its method. Public: it travels over the link and in the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkceCodeChallenge {
    value: String,
    method: CodeChallengeMethod,
}

impl PkceCodeChallenge {
    fn s256(verifier: &str) -> Self {
        let digest = Sha256::digest(verifier.as_bytes());
        Self {
            value: URL_SAFE_NO_PAD.encode(digest),
            method: CodeChallengeMethod::S256,
        }
    }

    /// A challenge as received from a peer (the emulator's `/ap/oa`, the companion's link).
    pub fn from_parts(value: String, method: CodeChallengeMethod) -> Result<Self, PkceError> {
        match method {
            // base64url of 32 bytes, no padding.
            CodeChallengeMethod::S256 => {
                let ok = value.len() == 43
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(PkceError::MalformedChallenge);
                }
            }
            CodeChallengeMethod::Plain => validate_verifier(&value)?,
        }
        Ok(Self { value, method })
    }

    /// The challenge as it goes into the authorize URL (`code_challenge`).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// How the challenge was made from the verifier (`code_challenge_method`).
    pub fn method(&self) -> CodeChallengeMethod {
        self.method
    }
}

/// A verifier and its challenge, generated together for one pairing session.
#[derive(Debug)]
pub struct PkcePair {
    /// Stays on the device.
    pub verifier: PkceCodeVerifier,
    /// Goes to the companion in `DeviceInfo`.
    pub challenge: PkceCodeChallenge,
}

impl PkcePair {
    /// A fresh pair (S256).
    pub fn generate() -> Self {
        let verifier = PkceCodeVerifier::generate();
        let challenge = verifier.challenge();
        Self {
            verifier,
            challenge,
        }
    }
}

/// What is wrong with a PKCE value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// RFC 7636 §4.1: 43 to 128 characters.
    #[error("code_verifier must be 43 to 128 characters long, got {0}")]
    VerifierLength(usize),
    /// RFC 7636 §4.1 alphabet.
    #[error("code_verifier may only contain A-Z a-z 0-9 - . _ ~, found {0:?}")]
    VerifierCharacter(char),
    /// Not `S256` or `plain`.
    #[error("unknown code_challenge_method {0:?}: expected S256 or plain")]
    UnknownMethod(String),
    /// An S256 challenge that is not 43 base64url characters.
    #[error("code_challenge is not 43 base64url characters (an S256 digest)")]
    MalformedChallenge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier =
            PkceCodeVerifier::from_string("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into())
                .unwrap();
        let challenge = verifier.challenge();
        assert_eq!(
            challenge.as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(challenge.method().as_str(), "S256");
        assert!(verifier.matches(&challenge));
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceCodeVerifier::generate();
        let b = PkceCodeVerifier::generate();
        validate_verifier(a.expose_secret()).unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!a.matches(&b.challenge()));
    }

    #[test]
    fn verifier_syntax_errors_say_what_is_wrong() {
        assert_eq!(
            PkceCodeVerifier::from_string("short".into()).unwrap_err(),
            PkceError::VerifierLength(5)
        );
        let bad = format!("{}+", "a".repeat(43));
        assert_eq!(
            PkceCodeVerifier::from_string(bad).unwrap_err(),
            PkceError::VerifierCharacter('+')
        );
    }

    #[test]
    fn plain_method_compares_verbatim() {
        let v = PkceCodeVerifier::from_string("a".repeat(50)).unwrap();
        let c = PkceCodeChallenge::from_parts("a".repeat(50), CodeChallengeMethod::Plain).unwrap();
        assert!(v.matches(&c));
    }

    #[test]
    fn debug_is_redacted() {
        let v = PkceCodeVerifier::generate();
        assert!(!format!("{v:?}").contains(v.expose_secret()));
    }
}
