//! The token store: the refresh token, the client id it belongs to and the account (id, and the
//! name and e-mail address when the `profile` scope was granted), in one file
//! (`<state_dir>/tokens.json`). The account travels with the token it belongs to, so `status`
//! after a restart names the same person the pairing did, and a file can never pair one
//! account's token with another's name.
//!
//! Why a file and not a database: the store holds one record, and the only property that matters
//! is that after a crash at any instant the file is either the old record or the new one. That
//! is exactly what [`crate::atomic_file::write_atomic`] gives. Access tokens are never written:
//! they live an hour and a fresh one is one refresh away.
//!
//! A file that does not parse is not overwritten: it is moved aside (`tokens.json.corrupt-<ts>`)
//! and reported, so a person can see what happened, and the agent starts unpaired.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared_protocol::ids::{ClientId, UserId};
use shared_protocol::json::describe_json_error;
use shared_protocol::message::AccountProfile;
use shared_protocol::secret::RefreshToken;
use zeroize::Zeroizing;

use crate::atomic_file;

/// File name inside the state directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// Format version written into the file.
const FORMAT_VERSION: u32 = 1;
/// Refresh tokens are at most 2048 bytes; anything much larger is not ours.
const MAX_FILE_LEN: u64 = 16 * 1024;

/// What the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTokens {
    /// The refresh token (secret).
    pub refresh_token: RefreshToken,
    /// The LWA client the token was issued to (refresh must use the same one).
    pub client_id: ClientId,
    /// The account, once `/user/profile` answered.
    pub account: Option<AccountProfile>,
    /// False right after a CBL grant until the first refresh proved the client id (the SDK's
    /// `isRefreshTokenVerified`).
    pub verified: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    refresh_token: RefreshToken,
    client_id: ClientId,
    #[serde(default)]
    user_id: Option<UserId>,
    /// Personal data (the `profile` scope): written next to the id it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default = "default_true")]
    verified: bool,
}

fn default_true() -> bool {
    true
}

/// The result of [`TokenStore::load`].
#[derive(Debug)]
pub enum LoadOutcome {
    /// No file: never paired, or reset.
    Empty,
    /// A good record.
    Loaded(StoredTokens),
    /// The file was unreadable as a token record; it was moved to `moved_to`.
    Corrupt {
        /// Where the bad file now is.
        moved_to: PathBuf,
        /// What was wrong (never contains file content).
        reason: String,
    },
}

/// A store failure, naming the file and the operation.
#[derive(Debug, thiserror::Error)]
#[error("token store {path}: could not {op}: {source}")]
pub struct StoreError {
    path: PathBuf,
    op: &'static str,
    #[source]
    source: io::Error,
}

/// The token store.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// Opens (creating a 0700 directory if needed) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join(TOKENS_FILE);
        atomic_file::ensure_private_dir(state_dir).map_err(|source| StoreError {
            path: state_dir.to_path_buf(),
            op: "create the state directory",
            source,
        })?;
        atomic_file::remove_stale_temps(&path);
        Ok(Self { path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the record. A corrupt file is moved aside and reported, never overwritten.
    pub fn load(&self) -> Result<LoadOutcome, StoreError> {
        let bytes = match atomic_file::read_bounded(&self.path, MAX_FILE_LEN) {
            Ok(Some(bytes)) => Zeroizing::new(bytes),
            Ok(None) => return Ok(LoadOutcome::Empty),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return self.corrupt(e.to_string());
            }
            Err(source) => {
                return Err(StoreError {
                    path: self.path.clone(),
                    op: "read",
                    source,
                })
            }
        };
        match serde_json::from_slice::<FileFormat>(&bytes) {
            Ok(f) if f.version == FORMAT_VERSION && !f.refresh_token.is_empty() => {
                Ok(LoadOutcome::Loaded(StoredTokens {
                    refresh_token: f.refresh_token,
                    client_id: f.client_id,
                    account: f.user_id.map(|user_id| AccountProfile {
                        user_id,
                        name: f.name,
                        email: f.email,
                    }),
                    verified: f.verified,
                }))
            }
            Ok(f) if f.version != FORMAT_VERSION => {
                self.corrupt(format!("unknown format version {}", f.version))
            }
            Ok(_) => self.corrupt("empty refresh token".to_owned()),
            // serde_json's message names a line/column and a field, never a value.
            Err(e) => self.corrupt(format!("not a token record ({})", describe_json_error(&e))),
        }
    }

    fn corrupt(&self, reason: String) -> Result<LoadOutcome, StoreError> {
        let moved_to = atomic_file::move_aside(&self.path).map_err(|source| StoreError {
            path: self.path.clone(),
            op: "move the corrupt file aside",
            source,
        })?;
        tracing::error!(
            file = %self.path.display(),
            moved_to = %moved_to.display(),
            %reason,
            "token store was corrupt; moved aside, starting unpaired"
        );
        Ok(LoadOutcome::Corrupt { moved_to, reason })
    }

    /// Replaces the record, durably.
    pub fn save(&self, tokens: &StoredTokens) -> Result<(), StoreError> {
        let record = FileFormat {
            version: FORMAT_VERSION,
            refresh_token: tokens.refresh_token.clone(),
            client_id: tokens.client_id.clone(),
            user_id: tokens.account.as_ref().map(|a| a.user_id.clone()),
            name: tokens.account.as_ref().and_then(|a| a.name.clone()),
            email: tokens.account.as_ref().and_then(|a| a.email.clone()),
            verified: tokens.verified,
        };
        let bytes = Zeroizing::new(serde_json::to_vec_pretty(&record).map_err(|e| StoreError {
            path: self.path.clone(),
            op: "serialize",
            source: io::Error::other(describe_json_error(&e)),
        })?);
        atomic_file::write_atomic(&self.path, &bytes).map_err(|source| StoreError {
            path: self.path.clone(),
            op: "write",
            source,
        })
    }

    /// Deletes the record (factory reset, or the user unlinked the speaker).
    pub fn clear(&self) -> Result<(), StoreError> {
        atomic_file::remove_durable(&self.path).map_err(|source| StoreError {
            path: self.path.clone(),
            op: "delete",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::testing::{mode, scratch};

    fn sample() -> StoredTokens {
        StoredTokens {
            refresh_token: RefreshToken::new("Atzr|secret-refresh"),
            client_id: ClientId::new("amzn1.application-oa2-client.x"),
            account: Some(AccountProfile {
                user_id: UserId::new("amzn1.account.A"),
                name: Some("Alice Example".into()),
                email: Some("alice@example.com".into()),
            }),
            verified: true,
        }
    }

    #[test]
    fn round_trip_with_private_permissions() {
        let (_tmp, state) = scratch("state");
        let store = TokenStore::open(&state).unwrap();
        assert!(matches!(store.load().unwrap(), LoadOutcome::Empty));
        store.save(&sample()).unwrap();
        match store.load().unwrap() {
            LoadOutcome::Loaded(t) => assert_eq!(t, sample()),
            other => panic!("{other:?}"),
        }
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&state), 0o700);
        store.clear().unwrap();
        assert!(matches!(store.load().unwrap(), LoadOutcome::Empty));
    }

    #[test]
    fn a_record_from_before_the_profile_loads_as_the_id_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        std::fs::write(
            store.path(),
            br#"{"version":1,"refresh_token":"Atzr|r","client_id":"c","user_id":"amzn1.account.A","verified":true}"#,
        )
        .unwrap();
        match store.load().unwrap() {
            LoadOutcome::Loaded(t) => assert_eq!(
                t.account,
                Some(AccountProfile::id_only("amzn1.account.A".into()))
            ),
            other => panic!("{other:?}"),
        }
        // And an id-only account is written without name/email keys.
        store
            .save(&StoredTokens {
                account: Some(AccountProfile::id_only("amzn1.account.A".into())),
                ..sample()
            })
            .unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("name") && !text.contains("email"), "{text}");
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{\"version\":1,\"refresh_tok").unwrap();
        match store.load().unwrap() {
            LoadOutcome::Corrupt { moved_to, reason } => {
                assert!(moved_to.exists());
                assert!(reason.contains("truncated"), "{reason}");
                assert_eq!(
                    std::fs::read(&moved_to).unwrap(),
                    b"{\"version\":1,\"refresh_tok"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.path().exists());
        assert!(matches!(store.load().unwrap(), LoadOutcome::Empty));
    }
}
