//! Allowed return URL patterns.
//!
//! LWA compares a `redirect_uri` against the security profile's "Allowed Return URLs". Native
//! apps listen on a loopback port chosen at run time, so (as RFC 8252 §7.3 asks of servers) a
//! pattern may say `*` for the port; a path ending in `*` is a prefix. Everything else (scheme,
//! host, path) must match exactly, and a redirect URI with a fragment never matches.

use url::Url;

/// Why an `allowed_return_urls` entry is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// No `scheme://`.
    #[error("missing scheme")]
    MissingScheme,
    /// A scheme other than http or https (the scheme given).
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    /// `[` without `]`.
    #[error("unterminated IPv6 host")]
    UnterminatedIpv6,
    /// Neither a number nor `*` (the port given).
    #[error("bad port {0:?}")]
    BadPort(String),
    /// Nothing between `://` and the port or path.
    #[error("empty host")]
    EmptyHost,
}

/// One parsed `allowed_return_urls` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReturnUrlPattern {
    scheme: String,
    host: String,
    /// `None` = any port.
    port: Option<u16>,
    path: String,
    path_is_prefix: bool,
}

impl ReturnUrlPattern {
    /// Parses `scheme://host[:port|:*]/path[*]`.
    pub(crate) fn parse(pattern: &str) -> Result<Self, PatternError> {
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or(PatternError::MissingScheme)?;
        if scheme != "http" && scheme != "https" {
            return Err(PatternError::Scheme(scheme.to_owned()));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
            let end = stripped.find(']').ok_or(PatternError::UnterminatedIpv6)?;
            let host = format!("[{}]", &stripped[..end]);
            let after = &stripped[end + 1..];
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        let port = match port {
            None => Some(if scheme == "https" { 443 } else { 80 }),
            Some("*") => None,
            Some(p) => Some(p.parse().map_err(|_| PatternError::BadPort(p.to_owned()))?),
        };
        if host.is_empty() {
            return Err(PatternError::EmptyHost);
        }
        let (path, path_is_prefix) = match path.strip_suffix('*') {
            Some(prefix) => (prefix.to_owned(), true),
            None => (path.to_owned(), false),
        };
        Ok(Self {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
            path,
            path_is_prefix,
        })
    }

    /// True when `redirect_uri` is allowed by this pattern.
    pub(crate) fn matches(&self, redirect_uri: &str) -> bool {
        let Ok(url) = Url::parse(redirect_uri) else {
            return false;
        };
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let Some(host) = url.host() else {
            return false;
        };
        let host = match host {
            url::Host::Ipv6(ip) => format!("[{ip}]"),
            other => other.to_string().to_ascii_lowercase(),
        };
        let port = url.port_or_known_default();
        url.scheme() == self.scheme
            && host == self.host
            && self.port.is_none_or(|p| Some(p) == port)
            && if self.path_is_prefix {
                url.path().starts_with(&self.path)
            } else {
                url.path() == self.path
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_port_and_prefix_path() {
        let p = ReturnUrlPattern::parse("http://127.0.0.1:*/*").unwrap();
        assert!(p.matches("http://127.0.0.1:1/"));
        assert!(p.matches("http://127.0.0.1:65535/authresponse?x=1"));
        assert!(!p.matches("https://127.0.0.1:1/"));
        assert!(!p.matches("http://127.0.0.2:1/"));
        assert!(!p.matches("http://127.0.0.1:1/#frag"));
        assert!(!p.matches("http://user@127.0.0.1:1/"));
        let v6 = ReturnUrlPattern::parse("http://[::1]:*/*").unwrap();
        assert!(v6.matches("http://[::1]:8080/cb"));
    }

    #[test]
    fn exact_port_and_path() {
        let p = ReturnUrlPattern::parse("http://localhost:3000/authresponse").unwrap();
        assert!(p.matches("http://localhost:3000/authresponse"));
        assert!(p.matches("http://LOCALHOST:3000/authresponse"));
        assert!(!p.matches("http://localhost:3001/authresponse"));
        assert!(!p.matches("http://localhost:3000/authresponse2"));
        let d = ReturnUrlPattern::parse("https://app.example.com/cb").unwrap();
        assert!(d.matches("https://app.example.com:443/cb"));
        assert_eq!(
            ReturnUrlPattern::parse("ftp://x/"),
            Err(PatternError::Scheme("ftp".into()))
        );
        assert_eq!(
            ReturnUrlPattern::parse("http://x:port/"),
            Err(PatternError::BadPort("port".into()))
        );
        assert_eq!(
            ReturnUrlPattern::parse("http://:80/"),
            Err(PatternError::EmptyHost)
        );
    }
}
