//! The companion's settings: which LWA client it logs in as and where LWA lives.
//!
//! The client id and the redirect URI come from the user's own LWA security profile (the
//! companion is "their" app), so they are remembered in the user's config dir
//! (`$XDG_CONFIG_HOME/avs-pair/companion.toml` on Linux) rather than typed every time. An
//! optional LWA base URL points the login at the emulator instead of Amazon.
//!
//! Never a token or a code: the companion holds none. The speaker owns its tokens; the
//! companion only carries a short-lived authorization code across, in memory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared_protocol::ids::{ClientId, RedirectUri};
use shared_protocol::lwa::{EndpointError, LwaEndpoints, Region};
use url::Url;

use crate::words::Words;

/// Environment variable naming the config file (overrides the default location).
pub const CONFIG_ENV: &str = "AVS_COMPANION_CONFIG";
/// The default redirect URI: loopback, port chosen at login time (RFC 8252 §7.3).
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1/authresponse";
/// How every LWA client id starts; 32 hex digits follow.
pub const CLIENT_ID_PREFIX: &str = "amzn1.application-oa2-client.";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// What the companion remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanionConfig {
    /// The LWA client id of the user's security profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// The redirect URI registered in the security profile's Allowed Return URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<RedirectUri>,
    /// Amazon region (`na`, `eu`, `fe`) when no base URL is set.
    #[serde(default)]
    pub region: Region,
    /// LWA base URL (the emulator), instead of Amazon's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lwa_base_url: Option<Url>,
}

/// A config problem, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No home or config directory could be found.
    #[error("cannot find a config directory (set HOME or {CONFIG_ENV})")]
    NoConfigDir,
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path} is not a valid companion config: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// The file is larger than any config could be.
    #[error("{0} is larger than 64 KiB; not a companion config")]
    TooLarge(PathBuf),
    /// The endpoints are not acceptable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A required setting is missing.
    #[error("{}", no_client_id())]
    NoClientId,
    /// The client id does not have the shape of an LWA client id.
    #[error("client id {id:?} is not an LWA client id: they look like {CLIENT_ID_PREFIX}<32 hex digits>; copy it from your security profile's settings for Android/iOS or 'Other devices and platforms'")]
    BadClientId {
        /// What was given.
        id: String,
    },
    /// The redirect URI is not usable.
    #[error("redirect URI {uri:?}: {reason}")]
    BadRedirectUri {
        /// The URI.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn no_client_id() -> Words {
    Words::from("no LWA client id")
        .terminal_only(": pass --client-id or save one with `avs-companion config --client-id …`")
        .text(" (it is in your security profile, under Web or Other devices settings)")
}

impl ConfigError {
    /// What is wrong, in pieces ([`Words`]); the `Display` is their terminal rendering.
    pub fn words(&self) -> Words {
        match self {
            ConfigError::NoClientId => no_client_id(),
            ConfigError::NoConfigDir
            | ConfigError::Io { .. }
            | ConfigError::Parse { .. }
            | ConfigError::TooLarge(_)
            | ConfigError::Endpoint(_)
            | ConfigError::BadClientId { .. }
            | ConfigError::BadRedirectUri { .. } => self.to_string().into(),
        }
    }
}

impl CompanionConfig {
    /// `$AVS_COMPANION_CONFIG`, else `<config dir>/avs-pair/companion.toml`.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        Ok(user_config_dir()?.join("avs-pair").join("companion.toml"))
    }

    /// Reads `path`; a missing file is the default config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io(e)),
        };
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge(path.to_owned()));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: match e.span() {
                // Line numbers as editors count them, from 1.
                Some(span) => format!(
                    "line {}: {}",
                    // Bytes, not a `str` slice: no char boundary to trust the parser with.
                    text.bytes()
                        .take(span.start)
                        .filter(|&b| b == b'\n')
                        .count()
                        + 1,
                    e.message()
                ),
                None => e.message().to_owned(),
            },
        })?;
        config.endpoints()?;
        if let Some(uri) = &config.redirect_uri {
            RedirectTarget::parse(uri)?;
        }
        Ok(config)
    }

    /// Writes `path` (creating its directory), replacing the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Overlays the values that are set in `other` (command-line flags over the file).
    pub fn merged_with(mut self, other: &CompanionConfig, region_given: bool) -> Self {
        if other.client_id.is_some() {
            self.client_id.clone_from(&other.client_id);
        }
        if other.redirect_uri.is_some() {
            self.redirect_uri.clone_from(&other.redirect_uri);
        }
        if region_given {
            self.region = other.region;
        }
        if other.lwa_base_url.is_some() {
            self.lwa_base_url.clone_from(&other.lwa_base_url);
        }
        self
    }

    /// LWA's endpoints: the base URL's if set (plain http only on loopback), else Amazon's.
    pub fn endpoints(&self) -> Result<LwaEndpoints, ConfigError> {
        match &self.lwa_base_url {
            Some(base) => Ok(LwaEndpoints::from_base(base.as_str())?),
            None => Ok(LwaEndpoints::amazon(self.region)),
        }
    }

    /// The client id, or a sentence telling the user where to get one (or why the one given is
    /// not an LWA client id: see [`check_client_id`](Self::check_client_id)).
    pub fn require_client_id(&self) -> Result<&ClientId, ConfigError> {
        self.check_client_id()?;
        self.client_id.as_ref().ok_or(ConfigError::NoClientId)
    }

    /// Checks the client id's shape (`amzn1.application-oa2-client.` + 32 hex digits) when
    /// Amazon is the LWA: a typo is caught here rather than as "We cannot sign you in" in the
    /// browser. With an LWA base URL (the emulator, whose ids are readable names) any non-empty
    /// id is accepted.
    pub fn check_client_id(&self) -> Result<(), ConfigError> {
        let Some(id) = &self.client_id else {
            return Ok(());
        };
        let bad = || ConfigError::BadClientId {
            id: id.as_str().to_owned(),
        };
        let id = id.as_str();
        if id.trim().is_empty() {
            return Err(bad());
        }
        if self.lwa_base_url.is_some() {
            return Ok(());
        }
        match id.strip_prefix(CLIENT_ID_PREFIX) {
            Some(rest) if rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
            _ => Err(bad()),
        }
    }

    /// Every check a saved setting gets (`config` runs it before writing).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.endpoints()?;
        self.check_client_id()?;
        if let Some(uri) = &self.redirect_uri {
            RedirectTarget::parse(uri)?;
        }
        Ok(())
    }

    /// The redirect URI to use ([`DEFAULT_REDIRECT_URI`] when none is set).
    pub fn redirect_target(&self) -> Result<RedirectTarget, ConfigError> {
        let uri = self
            .redirect_uri
            .clone()
            .unwrap_or_else(|| RedirectUri::new(DEFAULT_REDIRECT_URI));
        RedirectTarget::parse(&uri)
    }
}

/// How the login's redirect comes back to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTarget {
    /// A loopback URL we listen on: `http(s)://127.0.0.1|localhost|[::1][:port]/path`.
    Loopback {
        /// The URL as configured (port may be absent: picked at login time).
        url: Url,
        /// `https`: serve a generated self-signed certificate.
        tls: bool,
        /// The fixed port, if the URL names one.
        port: Option<u16>,
    },
    /// An `https` web page or an app's private-use scheme (`amzn://…`, `com.example.app:/…`,
    /// RFC 8252 §7.1): the user pastes the URL they land on.
    External(Url),
}

impl RedirectTarget {
    /// Classifies a redirect URI.
    pub fn parse(uri: &RedirectUri) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::BadRedirectUri {
            uri: uri.to_string(),
            reason,
        };
        let url = Url::parse(uri.as_str()).map_err(|_| bad("not a valid URL"))?;
        if url.fragment().is_some() {
            return Err(bad(
                "a redirect URI must not have a #fragment (RFC 6749 §3.1.2)",
            ));
        }
        let loopback = shared_protocol::lwa::endpoints::is_loopback(&url);
        match url.scheme() {
            "http" | "https" if loopback => {
                let tls = url.scheme() == "https";
                let port = url.port();
                Ok(Self::Loopback { url, tls, port })
            }
            "http" => Err(bad(
                "plain http:// is only allowed to 127.0.0.1, [::1] or localhost",
            )),
            "https" | "amzn" => Ok(Self::External(url)),
            // RFC 8252 §7.1: a private-use scheme is a reverse domain name (has a dot).
            scheme if scheme.contains('.') => Ok(Self::External(url)),
            _ => Err(bad(
                "LWA returns only to http://127.0.0.1[:port]/path (or [::1], localhost), https://…, or an app's own scheme (amzn://… or com.example.app:/…)",
            )),
        }
    }
}

fn user_config_dir() -> Result<PathBuf, ConfigError> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "windows") {
        return env("APPDATA").ok_or(ConfigError::NoConfigDir);
    }
    if cfg!(target_os = "macos") {
        return env("HOME")
            .map(|h| h.join("Library").join("Application Support"))
            .ok_or(ConfigError::NoConfigDir);
    }
    env("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| h.join(".config")))
        .ok_or(ConfigError::NoConfigDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_has_secret_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("companion.toml");
        assert_eq!(
            CompanionConfig::load(&path).unwrap(),
            CompanionConfig::default()
        );
        let cfg = CompanionConfig {
            client_id: Some("amzn1.application-oa2-client.abc".into()),
            redirect_uri: Some("https://localhost:9745/authresponse".into()),
            region: Region::Eu,
            lwa_base_url: Some("http://127.0.0.1:8080".parse().unwrap()),
        };
        cfg.save(&path).unwrap();
        assert_eq!(CompanionConfig::load(&path).unwrap(), cfg);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("token") && !text.contains("code ="),
            "{text}"
        );
    }

    #[test]
    fn refuses_plain_http_lwa_off_loopback_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lwa_base_url = \"http://192.168.1.2:80\"\n").unwrap();
        assert!(matches!(
            CompanionConfig::load(&path),
            Err(ConfigError::Endpoint(_))
        ));
        std::fs::write(&path, "refresh_token = \"x\"\n").unwrap();
        assert!(matches!(
            CompanionConfig::load(&path),
            Err(ConfigError::Parse { .. })
        ));
        // The line is named (issue 15.9).
        std::fs::write(&path, "region = \"eu\"\n\nclient_id = amzn1\n").unwrap();
        let e = CompanionConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{} is not a valid companion config: line 3: ",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn classifies_redirect_uris() {
        let t = |s: &str| RedirectTarget::parse(&RedirectUri::new(s));
        assert!(matches!(
            t("http://127.0.0.1/authresponse").unwrap(),
            RedirectTarget::Loopback {
                tls: false,
                port: None,
                ..
            }
        ));
        assert!(matches!(
            t("https://localhost:9745/authresponse").unwrap(),
            RedirectTarget::Loopback {
                tls: true,
                port: Some(9745),
                ..
            }
        ));
        assert!(matches!(
            t("amzn://com.example.app").unwrap(),
            RedirectTarget::External(_)
        ));
        assert!(matches!(
            t("https://app.example.com/cb").unwrap(),
            RedirectTarget::External(_)
        ));
        assert!(matches!(
            t("com.example.app:/cb").unwrap(),
            RedirectTarget::External(_)
        ));
        for bad in [
            "ftp://x",
            "file:///tmp/cb",
            "ws://127.0.0.1/cb",
            "myapp://cb",
        ] {
            assert!(
                matches!(t(bad), Err(ConfigError::BadRedirectUri { .. })),
                "{bad}"
            );
        }
        assert!(t("http://app.example.com/cb").is_err());
        assert!(t("http://127.0.0.1/cb#frag").is_err());
        assert!(t("not a url").is_err());
    }

    #[test]
    fn client_ids_of_amazon_have_one_shape() {
        let with = |id: &str, base: Option<&str>| CompanionConfig {
            client_id: Some(id.into()),
            lwa_base_url: base.map(|b| b.parse().unwrap()),
            ..Default::default()
        };
        let good = "amzn1.application-oa2-client.0123456789abcdef0123456789ABCDEF";
        assert!(with(good, None).check_client_id().is_ok());
        for bad in [
            "foo",
            "amzn1.application-oa2-client.",
            "amzn1.application-oa2-client.0123456789abcdef0123456789abcde",
            "amzn1.application-oa2-client.0123456789abcdef0123456789abcdefg",
            " amzn1.application-oa2-client.0123456789abcdef0123456789abcdef",
        ] {
            let e = with(bad, None).check_client_id().unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("client id {bad:?} is not an LWA client id")),
                "{e}"
            );
        }
        // The emulator's readable ids pass when an LWA base URL is set; empty never does.
        assert!(with(
            "amzn1.application-oa2-client.avspairdemo",
            Some("http://127.0.0.1:1")
        )
        .check_client_id()
        .is_ok());
        assert!(with(" ", Some("http://127.0.0.1:1"))
            .check_client_id()
            .is_err());
        assert!(matches!(
            with("foo", None).require_client_id(),
            Err(ConfigError::BadClientId { .. })
        ));
    }

    #[test]
    fn flags_override_the_file() {
        let file = CompanionConfig {
            client_id: Some("file".into()),
            region: Region::Eu,
            ..Default::default()
        };
        let flags = CompanionConfig {
            client_id: Some("flag".into()),
            ..Default::default()
        };
        let merged = file.clone().merged_with(&flags, false);
        assert_eq!(merged.client_id.unwrap().as_str(), "flag");
        assert_eq!(merged.region, Region::Eu);
        assert_eq!(file.merged_with(&flags, true).region, Region::Na);
    }
}
