//! Typed secrets.
//!
//! Every value that would let someone act as the user or the speaker (the PKCE verifier, an
//! authorization code, tokens, the setup code, session keys) lives in a newtype from this module.
//! The newtypes exist so that:
//!
//! - `Debug` and `Display` print `[redacted]`: a secret can't reach a log line or an error message
//!   by a stray `{:?}`;
//! - the memory is zeroized on drop;
//! - the compiler catches a swapped argument (an [`AccessToken`] is not a [`RefreshToken`]);
//! - reading the value is an explicit, greppable call: [`expose_secret`](AccessToken::expose_secret).
//!
//! Secrets that legitimately cross a wire (an authorization code on the link, tokens in an LWA
//! response) implement `Serialize`/`Deserialize`; the PKCE verifier, which must never leave the
//! device, deliberately does not (see [`crate::pkce`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What `Debug` and `Display` print for every secret.
pub const REDACTED: &str = "[redacted]";

/// Defines a secret string newtype with redacted formatting and zeroize-on-drop.
///
/// `serde` adds transparent `Serialize`/`Deserialize`; leave it out for values that must never
/// be serialized.
macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Every call site is a place where the secret leaves its box:
            /// keep them few and never pass the result to a logger.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// Length in bytes, handy for checks and logs that must not show the value.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// True when the secret is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::secret::REDACTED)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::secret::REDACTED)
            }
        }
    };
    ($(#[$meta:meta])* $name:ident, serde) => {
        secret_string!($(#[$meta])* $name);

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self)
            }
        }
    };
}

secret_string!(
    /// An LWA authorization code (`code` in the redirect), valid for about 5 minutes, single use.
    AuthorizationCode,
    serde
);
secret_string!(
    /// An LWA access token (`Atza|…`), valid for about an hour. Lives in memory only.
    AccessToken,
    serde
);
secret_string!(
    /// An LWA refresh token (`Atzr|…`), valid until the user unlinks the speaker.
    RefreshToken,
    serde
);
secret_string!(
    /// A confidential client's secret (web-kind LWA clients only; devices have none).
    ClientSecret,
    serde
);
secret_string!(
    /// The CBL `device_code` (a UUID): whoever holds it can redeem the user's approval.
    DeviceCode,
    serde
);
secret_string!(
    /// A Wi-Fi passphrase (WPA2-PSK: 8-63 characters or 64 hex digits; SAE: any length). Crosses
    /// only the sealed link; the agent hands it to the network stack and keeps no copy.
    WifiPassphrase,
    serde
);

/// Fixed-size secret key material (session keys, confirmation keys). Zeroized on drop, redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey<const N: usize>([u8; N]);

impl<const N: usize> SecretKey<N> {
    /// Wraps key bytes.
    pub fn from_bytes(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn expose_secret(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> std::fmt::Debug for SecretKey<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey<{N}>({REDACTED})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let token = AccessToken::new("Atza|very-secret-value");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(format!("{token}"), "[redacted]");
        let key = SecretKey::from_bytes([7u8; 32]);
        assert!(!format!("{key:?}").contains('7'));
    }

    #[test]
    fn serde_is_transparent_for_wire_secrets() {
        let code = AuthorizationCode::new("ANcMJpTtVktKiZvfdYaV");
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, "\"ANcMJpTtVktKiZvfdYaV\"");
        let back: AuthorizationCode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, code);
    }
}
