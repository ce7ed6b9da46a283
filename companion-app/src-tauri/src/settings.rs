//! The Settings screen's data: the core's [`CompanionConfig`] file, shown as a form.
//!
//! The app and the `avs-companion` CLI share one file (`$AVS_COMPANION_CONFIG`, else
//! `~/.config/avs-pair/companion.toml`), so a client id saved in either is there in both. An empty
//! field means "not set" (the redirect URI then defaults to loopback, the LWA base URL to Amazon).
//! Every value is checked with the core's own rules before anything is written.

use std::path::Path;

use companion_app::config::{CompanionConfig, ConfigError, RedirectTarget, DEFAULT_REDIRECT_URI};
use shared_protocol::ids::{ClientId, RedirectUri};
use shared_protocol::lwa::Region;

use crate::ipc::{
    CommandError, RegionChoice, RegionView, SettingsField, SettingsInput, SettingsView,
};

/// Longest value accepted in any field (a client id is ~70 characters, URLs well under this).
const MAX_FIELD_LEN: usize = 2048;

impl From<Region> for RegionView {
    fn from(r: Region) -> Self {
        match r {
            Region::Na => RegionView::Na,
            Region::Eu => RegionView::Eu,
            Region::Fe => RegionView::Fe,
        }
    }
}

impl From<RegionView> for Region {
    fn from(r: RegionView) -> Self {
        match r {
            RegionView::Na => Region::Na,
            RegionView::Eu => Region::Eu,
            RegionView::Fe => Region::Fe,
        }
    }
}

/// The form's view of a config.
pub fn view(config: &CompanionConfig, path: &Path) -> SettingsView {
    SettingsView {
        client_id: config
            .client_id
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        redirect_uri: config
            .redirect_uri
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        region: config.region.into(),
        lwa_base_url: config
            .lwa_base_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default(),
        default_redirect_uri: DEFAULT_REDIRECT_URI.to_owned(),
        config_path: path.display().to_string(),
        ready: config.client_id.is_some(),
        regions: [
            (RegionView::Na, "North America"),
            (RegionView::Eu, "Europe"),
            (RegionView::Fe, "Far East"),
        ]
        .into_iter()
        .map(|(region, label)| RegionChoice {
            region,
            label: label.to_owned(),
        })
        .collect(),
    }
}

/// Reads the file (a missing file is the empty config).
pub fn load(path: &Path) -> Result<CompanionConfig, CommandError> {
    CompanionConfig::load(path).map_err(|e| CommandError::new(e.to_string()))
}

/// Checks the form and turns it into a config; the error names the field at fault.
pub fn parse(input: &SettingsInput) -> Result<CompanionConfig, CommandError> {
    let field = |f: SettingsField, value: &str| -> Result<Option<String>, CommandError> {
        let v = value.trim();
        if v.len() > MAX_FIELD_LEN {
            return Err(CommandError::field(f, "this value is too long"));
        }
        if v.chars().any(char::is_control) {
            return Err(CommandError::field(
                f,
                "this value contains control characters",
            ));
        }
        Ok((!v.is_empty()).then(|| v.to_owned()))
    };
    let client_id = field(SettingsField::ClientId, &input.client_id)?;
    if let Some(id) = &client_id {
        if id.chars().any(char::is_whitespace) {
            return Err(CommandError::field(
                SettingsField::ClientId,
                "a client id has no spaces: copy it from your security profile (it starts with amzn1.application-oa2-client.)",
            ));
        }
    }
    let redirect_uri =
        field(SettingsField::RedirectUri, &input.redirect_uri)?.map(RedirectUri::new);
    if let Some(uri) = &redirect_uri {
        RedirectTarget::parse(uri)
            .map_err(|e| CommandError::field(SettingsField::RedirectUri, e.to_string()))?;
    }
    let lwa_base_url = match field(SettingsField::LwaBaseUrl, &input.lwa_base_url)? {
        None => None,
        Some(text) => Some(url::Url::parse(&text).map_err(|_| {
            CommandError::field(
                SettingsField::LwaBaseUrl,
                "not a URL: write it like http://127.0.0.1:8080 (or leave it empty to use Amazon)",
            )
        })?),
    };
    let config = CompanionConfig {
        client_id: client_id.map(ClientId::new),
        redirect_uri,
        region: input.region.into(),
        lwa_base_url,
    };
    config.endpoints().map_err(|e| match e {
        ConfigError::Endpoint(inner) => {
            CommandError::field(SettingsField::LwaBaseUrl, inner.to_string())
        }
        other => CommandError::field(SettingsField::LwaBaseUrl, other.to_string()),
    })?;
    config
        .check_client_id()
        .map_err(|e| CommandError::field(SettingsField::ClientId, e.to_string()))?;
    Ok(config)
}

/// Checks and writes the form; returns what is now stored.
pub fn save(path: &Path, input: &SettingsInput) -> Result<SettingsView, CommandError> {
    let config = parse(input)?;
    config
        .save(path)
        .map_err(|e| CommandError::new(format!("cannot save the settings: {e}")))?;
    Ok(view(&config, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(client: &str, redirect: &str, base: &str) -> SettingsInput {
        SettingsInput {
            client_id: client.into(),
            redirect_uri: redirect.into(),
            region: RegionView::Eu,
            lwa_base_url: base.into(),
        }
    }

    #[test]
    fn empty_fields_mean_unset_and_values_are_trimmed() {
        let id = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef";
        let c = parse(&input(&format!("  {id} "), "", "")).unwrap();
        assert_eq!(c.client_id.unwrap().as_str(), id);
        assert!(c.redirect_uri.is_none() && c.lwa_base_url.is_none());
        assert_eq!(c.region, Region::Eu);
    }

    #[test]
    fn each_bad_field_is_named() {
        let e = parse(&input("has space", "", "")).unwrap_err();
        assert_eq!(e.field, Some(SettingsField::ClientId));
        let e = parse(&input("c", "http://example.com/cb", "")).unwrap_err();
        assert_eq!(e.field, Some(SettingsField::RedirectUri));
        assert!(e.message.contains("plain http"), "{}", e.message);
        let e = parse(&input("c", "", "not a url")).unwrap_err();
        assert_eq!(e.field, Some(SettingsField::LwaBaseUrl));
        let e = parse(&input("c", "", "http://192.0.2.1:8080")).unwrap_err();
        assert_eq!(e.field, Some(SettingsField::LwaBaseUrl));
        // Amazon's LWA (no base URL): the id must have the shape of a client id.
        let e = parse(&input("foo", "", "")).unwrap_err();
        assert_eq!(e.field, Some(SettingsField::ClientId));
        assert!(
            e.message.contains("is not an LWA client id"),
            "{}",
            e.message
        );
    }

    #[test]
    fn saves_and_shows_what_was_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("companion.toml");
        let v = save(
            &path,
            &input("cid", "http://127.0.0.1:9000/cb", "http://127.0.0.1:8080/"),
        )
        .unwrap();
        assert!(v.ready);
        assert_eq!(v.lwa_base_url, "http://127.0.0.1:8080");
        assert_eq!(view(&load(&path).unwrap(), &path), v);
    }
}
