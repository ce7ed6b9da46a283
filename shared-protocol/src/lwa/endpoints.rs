//! Where LWA and AVS live: Amazon's real endpoints per region by default, or a base URL (the
//! emulator) for development. Plain `http://` is accepted only for literal loopback addresses
//! (127.0.0.0/8, ::1): a name such as `localhost` is resolved by whatever the machine's resolver
//! says, and tokens must not depend on that.

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Amazon's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// North America (`api.amazon.com`).
    #[default]
    Na,
    /// Europe (`api.amazon.co.uk`).
    Eu,
    /// Far East (`api.amazon.co.jp`).
    Fe,
}

impl std::str::FromStr for Region {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "na" => Ok(Self::Na),
            "eu" => Ok(Self::Eu),
            "fe" => Ok(Self::Fe),
            _ => Err(EndpointError::UnknownRegion(s.to_owned())),
        }
    }
}

/// Every URL avs-pair talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwaEndpoints {
    /// `GET /ap/oa`: where the browser logs in.
    pub authorize: Url,
    /// `POST /auth/o2/token`.
    pub token: Url,
    /// `POST /auth/O2/create/codepair`.
    pub codepair: Url,
    /// `GET /user/profile`.
    pub profile: Url,
    /// The AVS gateway (`/ping`, `/v20160207/directives`).
    pub avs: Url,
}

fn parse(s: &str) -> Result<Url, EndpointError> {
    Url::parse(s).map_err(|e| EndpointError::BadUrl(s.to_owned(), e.to_string()))
}

impl LwaEndpoints {
    /// Amazon's endpoints for a region.
    pub fn amazon(region: Region) -> Self {
        let (www, api, avs) = match region {
            Region::Na => (
                "https://www.amazon.com",
                "https://api.amazon.com",
                "https://alexa.na.gateway.devices.a2z.com",
            ),
            Region::Eu => (
                "https://www.amazon.co.uk",
                "https://api.amazon.co.uk",
                "https://alexa.eu.gateway.devices.a2z.com",
            ),
            Region::Fe => (
                "https://www.amazon.co.jp",
                "https://api.amazon.co.jp",
                "https://alexa.fe.gateway.devices.a2z.com",
            ),
        };
        // These literals are valid URLs; a failure here would be a typo caught by the tests.
        let join = |base: &str, path: &str| {
            Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| unreachable_url())
        };
        Self {
            authorize: join(www, "/ap/oa"),
            token: join(api, "/auth/o2/token"),
            codepair: join(api, "/auth/O2/create/codepair"),
            profile: join(api, "/user/profile"),
            avs: join(avs, "/"),
        }
    }

    /// Everything under one base URL, the emulator's layout (it serves LWA and AVS paths).
    /// Checked with [`LwaEndpoints::validate`].
    pub fn from_base(base: &str) -> Result<Self, EndpointError> {
        let base = parse(base.trim_end_matches('/'))?;
        let join = |path: &str| {
            base.join(path)
                .map_err(|e| EndpointError::BadUrl(path.to_owned(), e.to_string()))
        };
        let endpoints = Self {
            authorize: join("/ap/oa")?,
            token: join("/auth/o2/token")?,
            codepair: join("/auth/O2/create/codepair")?,
            profile: join("/user/profile")?,
            avs: join("/")?,
        };
        endpoints.validate()?;
        Ok(endpoints)
    }

    /// Refuses plain HTTP to anything but loopback: tokens must not cross a network in clear.
    pub fn validate(&self) -> Result<(), EndpointError> {
        for url in [
            &self.authorize,
            &self.token,
            &self.codepair,
            &self.profile,
            &self.avs,
        ] {
            check_transport(url)?;
        }
        Ok(())
    }
}

fn unreachable_url() -> Url {
    // Only reached if a literal above is malformed; `about:blank` always parses.
    Url::parse("about:blank").unwrap_or_else(|_| unreachable!("about:blank parses"))
}

/// `https://` anywhere; `http://` only to a literal 127.0.0.0/8 or `::1` address.
pub fn check_transport(url: &Url) -> Result<(), EndpointError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_address(url) => Ok(()),
        "http" => Err(EndpointError::PlainHttpNotLoopback(url.to_string())),
        other => Err(EndpointError::UnsupportedScheme(other.to_owned())),
    }
}

/// True when the URL's host is a literal loopback address (not a name).
pub fn is_loopback_address(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// True when the URL's host is a loopback address or `localhost` (the redirect-URI rule of
/// RFC 8252 and LWA's Allowed Return URLs, where the companion binds the addresses itself).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A bad endpoint configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("{0:?} is not a valid URL: {1}")]
    BadUrl(String, String),
    /// `http://` to a non-loopback host.
    #[error("refusing plain http:// to {0}: tokens would cross the network unencrypted; use https:// (plain http is allowed only for the literal loopback addresses 127.0.0.1 and [::1], not for names such as localhost)")]
    PlainHttpNotLoopback(String),
    /// Neither http nor https.
    #[error("unsupported URL scheme {0:?}: use https://")]
    UnsupportedScheme(String),
    /// Not na/eu/fe.
    #[error("unknown region {0:?}: expected na, eu or fe")]
    UnknownRegion(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_defaults_are_https_and_valid() {
        for region in [Region::Na, Region::Eu, Region::Fe] {
            let e = LwaEndpoints::amazon(region);
            e.validate().unwrap();
        }
        let na = LwaEndpoints::amazon(Region::Na);
        assert_eq!(na.token.as_str(), "https://api.amazon.com/auth/o2/token");
        assert_eq!(na.authorize.as_str(), "https://www.amazon.com/ap/oa");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(LwaEndpoints::from_base("http://127.0.0.1:8080").is_ok());
        assert!(LwaEndpoints::from_base("http://[::1]:8080/").is_ok());
        // A name is not an address: `localhost` resolves however the resolver says.
        assert!(matches!(
            LwaEndpoints::from_base("http://localhost:1"),
            Err(EndpointError::PlainHttpNotLoopback(_))
        ));
        assert!(LwaEndpoints::from_base("https://localhost:1").is_ok());
        assert!(LwaEndpoints::from_base("http://127.0.0.2:8080").is_ok());
        assert!(matches!(
            LwaEndpoints::from_base("http://192.168.1.10:8080"),
            Err(EndpointError::PlainHttpNotLoopback(_))
        ));
        assert!(LwaEndpoints::from_base("https://lwa.example.com").is_ok());
        assert!(matches!(
            LwaEndpoints::from_base("ftp://x"),
            Err(EndpointError::UnsupportedScheme(_))
        ));
    }
}
