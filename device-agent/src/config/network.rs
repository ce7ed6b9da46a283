//! The network keys: which backend joins Wi-Fi (`network_backend`), on which interface
//! (`wifi_interface`), through which command (`wifi_hook`). See [`crate::network`].

use std::path::PathBuf;

use super::{invalid, nonempty, ConfigError, ConfigValues};

/// Which backend joins Wi-Fi networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkBackendKind {
    /// Status and connectivity check only (the default: the speaker's network is managed
    /// elsewhere).
    None,
    /// NetworkManager over D-Bus.
    NetworkManager,
    /// The `wifi_hook` executable.
    Hook(PathBuf),
}

/// The checked network keys.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The backend.
    pub backend: NetworkBackendKind,
    /// The Wi-Fi interface; `None`: the first Wi-Fi device.
    pub interface: Option<String>,
}

impl NetworkConfig {
    pub(super) fn resolve(v: &ConfigValues) -> Result<Self, ConfigError> {
        let interface = nonempty("wifi_interface", &v.wifi_interface)?;
        let backend = match nonempty("network_backend", &v.network_backend)?.as_deref() {
            None | Some("none") => NetworkBackendKind::None,
            Some("networkmanager") => NetworkBackendKind::NetworkManager,
            Some("hook") => {
                let Some(hook) = v.wifi_hook.clone() else {
                    return Err(invalid(
                        "wifi_hook",
                        "is missing while network_backend = \"hook\"",
                        "set wifi_hook to the executable implementing the Wi-Fi hook contract (docs/agent.md)",
                    ));
                };
                if !hook.is_file() {
                    return Err(invalid(
                        "wifi_hook",
                        format!("{} is not a file", hook.display()),
                        "point it at an executable (no shell; it is run as `<wifi_hook> <verb>`)",
                    ));
                }
                NetworkBackendKind::Hook(hook)
            }
            Some(other) => {
                return Err(invalid(
                    "network_backend",
                    format!("{other:?} is not a backend"),
                    "use none, networkmanager or hook",
                ))
            }
        };
        if v.wifi_hook.is_some() && !matches!(backend, NetworkBackendKind::Hook(_)) {
            return Err(invalid(
                "wifi_hook",
                "is set but network_backend is not \"hook\"",
                "set network_backend = \"hook\", or remove wifi_hook",
            ));
        }
        Ok(Self { backend, interface })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(r: Result<NetworkConfig, ConfigError>) -> &'static str {
        match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_are_checked_with_their_names() {
        let none = NetworkConfig::resolve(&ConfigValues::default()).expect("default");
        assert_eq!(none.backend, NetworkBackendKind::None);
        let v = |backend: &str, hook: Option<&str>| ConfigValues {
            network_backend: Some(backend.into()),
            wifi_hook: hook.map(PathBuf::from),
            ..ConfigValues::default()
        };
        assert_eq!(
            NetworkConfig::resolve(&v("networkmanager", None))
                .expect("nm")
                .backend,
            NetworkBackendKind::NetworkManager
        );
        assert_eq!(
            key_of(NetworkConfig::resolve(&v("iwd", None))),
            "network_backend"
        );
        assert_eq!(
            key_of(NetworkConfig::resolve(&v("hook", None))),
            "wifi_hook"
        );
        assert_eq!(
            key_of(NetworkConfig::resolve(&v(
                "hook",
                Some("/nonexistent/hook")
            ))),
            "wifi_hook"
        );
        assert_eq!(
            key_of(NetworkConfig::resolve(&v("none", Some("/bin/sh")))),
            "wifi_hook"
        );
        assert_eq!(
            NetworkConfig::resolve(&v("hook", Some("/bin/sh")))
                .expect("hook")
                .backend,
            NetworkBackendKind::Hook(PathBuf::from("/bin/sh"))
        );
    }
}
