//! Who exists in the emulated Amazon: users, LWA clients (security profiles) and AVS products.
//!
//! The real LWA knows these from the developer console; the emulator reads them from a TOML file
//! or uses the built-in defaults below, so `lwa-emulator` alone is usable and every test and demo
//! shares one well-known set of accounts.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shared_protocol::ids::{ClientId, ProductId, UserId};
use shared_protocol::secret::ClientSecret;

use crate::config::Settings;
use crate::config_error::ConfigParseError;
use crate::return_url::{PatternError, ReturnUrlPattern};

/// The built-in device client ("Other devices and platforms"): no secret, loopback return URLs.
pub const DEFAULT_DEVICE_CLIENT_ID: &str = "amzn1.application-oa2-client.avspairdemo";
/// The built-in web client (has a secret; the AVS web tutorial's kind of client).
pub const DEFAULT_WEB_CLIENT_ID: &str = "amzn1.application-oa2-client.avspairweb";
/// The built-in web client's secret.
pub const DEFAULT_WEB_CLIENT_SECRET: &str = "avs-pair-web-client-secret-0123456789abcdef";
/// The built-in AVS product, bound to both built-in clients (one security profile).
pub const DEFAULT_PRODUCT_ID: &str = "avs_pair_demo_speaker";
/// Built-in user 1.
pub const ALICE_EMAIL: &str = "alice@example.com";
/// Built-in user 1's password.
pub const ALICE_PASSWORD: &str = "alexa-pass-1";
/// Built-in user 1's account id.
pub const ALICE_USER_ID: &str = "amzn1.account.AEXAMPLEALICE000000000000000";
/// Built-in user 2.
pub const BOB_EMAIL: &str = "bob@example.com";
/// Built-in user 2's password.
pub const BOB_PASSWORD: &str = "alexa-pass-2";
/// Built-in user 2's account id.
pub const BOB_USER_ID: &str = "amzn1.account.AEXAMPLEBOB00000000000000000";

/// An Amazon account that can sign in.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Sign-in name.
    pub email: String,
    /// Sign-in password (test data; never logged).
    pub password: String,
    /// `amzn1.account.…`.
    pub user_id: UserId,
    /// Shown on the consent page and returned by `/user/profile` with the `profile` scope.
    pub name: String,
    /// Returned by `/user/profile` with the `postal_code` scope.
    #[serde(default)]
    pub postal_code: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The address is personal data, like the account's in shared-protocol's Debug; the
        // user id names the user.
        f.debug_struct("User")
            .field("email", &shared_protocol::secret::REDACTED)
            .field("password", &shared_protocol::secret::REDACTED)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .finish()
    }
}

/// The two kinds of LWA client a security profile has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// "Other devices and platforms": public client, no secret, PKCE and CBL.
    Device,
    /// "Web": confidential client with a secret; refresh without the secret is refused.
    Web,
}

/// An LWA client (one tab of a security profile in the developer console).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// `amzn1.application-oa2-client.…`.
    pub client_id: ClientId,
    /// Device or web.
    pub kind: ClientKind,
    /// Web clients only.
    #[serde(default)]
    pub client_secret: Option<ClientSecret>,
    /// Allowed return URLs. `*` as the port matches any port (RFC 8252 loopback redirects);
    /// a path ending in `*` matches any path with that prefix.
    pub allowed_return_urls: Vec<String>,
    /// Shown on the consent page.
    pub name: String,
}

impl Client {
    /// True when `redirect_uri` matches one of the allowed return URLs.
    pub fn allows_return_url(&self, redirect_uri: &str) -> bool {
        self.allowed_return_urls.iter().any(|pattern| {
            ReturnUrlPattern::parse(pattern)
                .map(|p| p.matches(redirect_uri))
                .unwrap_or(false)
        })
    }
}

/// An AVS product, bound to the clients of its security profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// The product id used in `scope_data`.
    pub product_id: ProductId,
    /// Clients of the product's security profile.
    pub client_ids: Vec<ClientId>,
}

/// Users, clients and products.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The Amazon accounts that can sign in (e-mail, password, user id).
    pub users: Vec<User>,
    /// LWA clients.
    pub clients: Vec<Client>,
    /// AVS products.
    pub products: Vec<Product>,
}

impl Default for Registry {
    /// The documented built-in registry (see the README): alice and bob, a device client, a web
    /// client with a secret, and the demo product bound to both clients.
    fn default() -> Self {
        let loopback = vec![
            "http://127.0.0.1:*/*".to_owned(),
            "http://localhost:*/*".to_owned(),
            "http://[::1]:*/*".to_owned(),
            "https://localhost:*/authresponse".to_owned(),
        ];
        Self {
            users: vec![
                User {
                    email: ALICE_EMAIL.into(),
                    password: ALICE_PASSWORD.into(),
                    user_id: ALICE_USER_ID.into(),
                    name: "Alice Example".into(),
                    postal_code: Some("98109".into()),
                },
                User {
                    email: BOB_EMAIL.into(),
                    password: BOB_PASSWORD.into(),
                    user_id: BOB_USER_ID.into(),
                    name: "Bob Example".into(),
                    postal_code: Some("10001".into()),
                },
            ],
            clients: vec![
                Client {
                    client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
                    kind: ClientKind::Device,
                    client_secret: None,
                    allowed_return_urls: loopback.clone(),
                    name: "avs-pair demo".into(),
                },
                Client {
                    client_id: DEFAULT_WEB_CLIENT_ID.into(),
                    kind: ClientKind::Web,
                    client_secret: Some(ClientSecret::new(DEFAULT_WEB_CLIENT_SECRET)),
                    allowed_return_urls: loopback,
                    name: "avs-pair web companion".into(),
                },
            ],
            products: vec![Product {
                product_id: DEFAULT_PRODUCT_ID.into(),
                client_ids: vec![
                    DEFAULT_DEVICE_CLIENT_ID.into(),
                    DEFAULT_WEB_CLIENT_ID.into(),
                ],
            }],
        }
    }
}

/// The `--config` file: optional behaviour settings plus registry entries that are added to the
/// built-in ones (or replace them with `replace_defaults = true`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    replace_defaults: bool,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    clients: Vec<Client>,
    #[serde(default)]
    products: Vec<Product>,
}

impl Registry {
    /// Parses a config file's text into a registry and settings (see the README for the format).
    pub fn from_toml_str(text: &str) -> Result<(Registry, Settings), RegistryError> {
        let file: ConfigFile = ConfigParseError::parse(text).map_err(RegistryError::Parse)?;
        let mut registry = if file.replace_defaults {
            Registry {
                users: vec![],
                clients: vec![],
                products: vec![],
            }
        } else {
            Registry::default()
        };
        registry.users.extend(file.users);
        registry.clients.extend(file.clients);
        registry.products.extend(file.products);
        registry.validate()?;
        Ok((registry, file.settings))
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<(Registry, Settings), RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks for duplicates, dangling references and unusable entries.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let mut seen = std::collections::HashSet::new();
        for user in &self.users {
            if !seen.insert(user.email.to_ascii_lowercase())
                || !seen.insert(user.user_id.to_string())
            {
                return Err(RegistryError::DuplicateUser(user.user_id.clone()));
            }
        }
        for client in &self.clients {
            if !seen.insert(client.client_id.to_string()) {
                return Err(RegistryError::DuplicateClient(client.client_id.clone()));
            }
            if client.kind == ClientKind::Web && client.client_secret.is_none() {
                return Err(RegistryError::WebClientWithoutSecret(
                    client.client_id.clone(),
                ));
            }
            for pattern in &client.allowed_return_urls {
                ReturnUrlPattern::parse(pattern).map_err(|source| RegistryError::BadReturnUrl {
                    client: client.client_id.clone(),
                    pattern: pattern.clone(),
                    source,
                })?;
            }
        }
        for product in &self.products {
            if !seen.insert(format!("product:{}", product.product_id)) {
                return Err(RegistryError::DuplicateProduct(product.product_id.clone()));
            }
            for id in &product.client_ids {
                if self.client(id.as_str()).is_none() {
                    return Err(RegistryError::UnknownClientInProduct {
                        product: product.product_id.clone(),
                        client: id.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A client by id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.client_id.as_str() == client_id)
    }

    /// A user by email (case-insensitive) or by user id.
    pub fn user(&self, email_or_id: &str) -> Option<&User> {
        self.users.iter().find(|u| {
            u.email.eq_ignore_ascii_case(email_or_id) || u.user_id.as_str() == email_or_id
        })
    }

    /// A product by id.
    pub fn product(&self, product_id: &str) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.product_id.as_str() == product_id)
    }

    /// Checks an email/password pair (constant time on the password).
    pub fn authenticate(&self, email: &str, password: &str) -> Option<&User> {
        use subtle::ConstantTimeEq as _;
        let user = self.user(email.trim())?;
        if user.email.eq_ignore_ascii_case(email.trim())
            && bool::from(user.password.as_bytes().ct_eq(password.as_bytes()))
        {
            Some(user)
        } else {
            None
        }
    }
}

/// A bad registry or config file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file named by `--config`.
        path: std::path::PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, unknown keys or values of the wrong type: where and what, never the
    /// text there (the file holds passwords and client secrets).
    #[error("config file is not valid: {0}")]
    Parse(#[source] ConfigParseError),
    /// Two users share an e-mail address or a user id; named by the later one's user id (the
    /// address is personal data and stays out of messages).
    #[error(
        "config file is inconsistent: user {0} repeats the e-mail address or user id of an \
         earlier user"
    )]
    DuplicateUser(UserId),
    /// Two clients (or a client and a user) share an id.
    #[error("config file is inconsistent: client {0} is defined twice")]
    DuplicateClient(ClientId),
    /// A web client without its secret.
    #[error("config file is inconsistent: web client {0} needs a client_secret")]
    WebClientWithoutSecret(ClientId),
    /// Two products share an id.
    #[error("config file is inconsistent: product {0} is defined twice")]
    DuplicateProduct(ProductId),
    /// A product bound to a client that is not in the registry.
    #[error("config file is inconsistent: product {product} names unknown client {client}")]
    UnknownClientInProduct {
        /// The product.
        product: ProductId,
        /// The client it names.
        client: ClientId,
    },
    /// An `allowed_return_urls` entry that is not a pattern.
    #[error("config file is inconsistent: client {client}: return URL {pattern:?}: {source}")]
    BadReturnUrl {
        /// The client's id.
        client: ClientId,
        /// The entry as written.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_registry_is_valid_and_documented_values_hold() {
        let r = Registry::default();
        r.validate().unwrap();
        assert_eq!(r.user(ALICE_EMAIL).unwrap().user_id.as_str(), ALICE_USER_ID);
        assert!(r
            .authenticate("Alice@Example.com", ALICE_PASSWORD)
            .is_some());
        assert!(r.authenticate(ALICE_EMAIL, BOB_PASSWORD).is_none());
        let device = r.client(DEFAULT_DEVICE_CLIENT_ID).unwrap();
        assert!(device.allows_return_url("http://127.0.0.1:53124/authresponse"));
        assert!(device.allows_return_url("http://localhost:1/cb"));
        assert!(device.allows_return_url("https://localhost:9745/authresponse"));
        assert!(!device.allows_return_url("https://localhost:9745/other"));
        assert!(!device.allows_return_url("http://192.168.1.2:80/authresponse"));
        assert!(!device.allows_return_url("http://127.0.0.1.evil.example:80/"));
    }

    #[test]
    fn config_file_adds_to_defaults() {
        let (r, s) = Registry::from_toml_str(
            r#"
            [settings]
            access_token_lifetime_secs = 5
            [[users]]
            email = "carol@example.com"
            password = "pw"
            user_id = "amzn1.account.CAROL"
            name = "Carol"
            "#,
        )
        .unwrap();
        assert_eq!(s.access_token_lifetime_secs, 5);
        assert!(r.user("carol@example.com").is_some());
        assert!(r.user(ALICE_EMAIL).is_some());
        assert!(Registry::from_toml_str("bogus = 1").is_err());
        let dup = format!(
            "[[users]]\nemail = \"{ALICE_EMAIL}\"\npassword = \"x\"\nuser_id = \"amzn1.account.X\"\nname = \"x\"\n"
        );
        let err = Registry::from_toml_str(&dup).unwrap_err();
        assert!(
            matches!(&err, RegistryError::DuplicateUser(id) if id.as_str() == "amzn1.account.X"),
            "{err:?}"
        );
        // Named by its user id: the address is personal data.
        assert!(!err.to_string().contains(ALICE_EMAIL), "{err}");
        let web = "[[clients]]\nclient_id = \"amzn1.application-oa2-client.W\"\nkind = \"web\"\nallowed_return_urls = []\nname = \"W\"\n";
        assert!(matches!(
            Registry::from_toml_str(web),
            Err(RegistryError::WebClientWithoutSecret(id)) if id.as_str() == "amzn1.application-oa2-client.W"
        ));
        let product = "[[products]]\nproduct_id = \"p\"\nclient_ids = [\"amzn1.application-oa2-client.NONE\"]\n";
        assert_eq!(
            Registry::from_toml_str(product).unwrap_err().to_string(),
            "config file is inconsistent: product p names unknown client amzn1.application-oa2-client.NONE"
        );
    }

    #[test]
    fn refresh_token_modes_by_their_config_file_names() {
        use crate::config::RefreshTokenMode;
        for (name, mode) in [
            ("same", RefreshTokenMode::Same),
            ("rotate", RefreshTokenMode::Rotate),
            ("omit", RefreshTokenMode::Omit),
        ] {
            let toml = format!("[settings]\nrefresh_token_mode = \"{name}\"\n");
            let (_, s) = Registry::from_toml_str(&toml).unwrap();
            assert_eq!(s.refresh_token_mode, mode, "{name}");
        }
        assert!(Registry::from_toml_str("[settings]\nrefresh_token_mode = \"none\"\n").is_err());
    }

    #[test]
    fn debug_hides_passwords_and_addresses() {
        let r = Registry::default();
        let shown = format!("{r:?}");
        assert!(!shown.contains(ALICE_PASSWORD), "{shown}");
        assert!(
            !shown.contains(ALICE_EMAIL) && !shown.contains(BOB_EMAIL),
            "{shown}"
        );
        assert!(shown.contains(ALICE_USER_ID), "{shown}");
        let user = crate::ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD).unwrap();
        let shown = format!("{user:?}");
        assert!(
            !shown.contains(ALICE_PASSWORD) && !shown.contains(ALICE_EMAIL),
            "{shown}"
        );
    }
}
