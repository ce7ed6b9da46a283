//! Identifiers: public values that still deserve their own types.
//!
//! A client id, a product id and a serial number are all strings; as newtypes the compiler stops
//! one from being passed where another is expected (the classic `authorize(product, client)`
//! swap). They are not secret, so they print and serialize as plain strings.

use serde::{Deserialize, Serialize};

macro_rules! identifier {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// An LWA client id (`amzn1.application-oa2-client.…`), from the security profile.
    ClientId
);
identifier!(
    /// An AVS product id, as registered in the developer console.
    ProductId
);
identifier!(
    /// The speaker's device serial number (DSN), unique per product.
    DeviceSerialNumber
);
identifier!(
    /// The OAuth redirect URI exactly as sent to `/ap/oa`; the agent must echo it byte for byte.
    RedirectUri
);
identifier!(
    /// The Amazon account id (`amzn1.account.…`).
    UserId
);
identifier!(
    /// The stable id of a speaker on the link (mDNS instance, TXT `id`, BLE name): lowercase hex.
    DeviceId
);
identifier!(
    /// The OAuth `state` parameter: random, single use, checked on the redirect (CSRF defence).
    OAuthState
);

/// The id of one pairing session: binds the PKCE pair the agent generated to the authorization
/// code the companion hands back.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    /// A fresh random session id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for SessionId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}
