//! Who the speaker is linked to, in people's words (protocol 1.2).
//!
//! LWA's `/user/profile` answers `user_id` always and `name` and `email` when the sign-in
//! granted the `profile` scope (lwa-spec §6). The agent reads it right after the code exchange
//! and keeps it with the refresh token, so the companion can say "Linked to Alice Example
//! (alice@example.com)" instead of `amzn1.account.…`, and so a re-pair with a different account
//! can be shown to the user as a switch from one person to another before it happens
//! ([`AccountSwitch`]).
//!
//! The name and the e-mail address are personal data: [`AccountProfile`]'s `Debug` redacts
//! them (a `?message` in a log line shows the user id only), and nothing logs its `Display`.
//! They come from the network, so [`AccountProfile::from_lwa`] drops control characters (no
//! terminal escapes reach a screen) and bounds their length.

use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, UserId};
use crate::secret::REDACTED;

/// Longest name or e-mail address kept, in characters (LWA's own limits are lower).
pub const MAX_PROFILE_FIELD_CHARS: usize = 256;

/// An Amazon account as `/user/profile` describes it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProfile {
    /// `amzn1.account.…`: stable, for scripts.
    pub user_id: UserId,
    /// The customer's name (scope `profile`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleaned"
    )]
    pub name: Option<String>,
    /// The customer's e-mail address (scope `profile`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cleaned"
    )]
    pub email: Option<String>,
}

impl AccountProfile {
    /// An account known by its id only (no `profile` scope granted).
    pub fn id_only(user_id: UserId) -> Self {
        Self {
            user_id,
            name: None,
            email: None,
        }
    }

    /// From LWA's answer: control characters dropped, whitespace trimmed, at most
    /// [`MAX_PROFILE_FIELD_CHARS`] characters; an empty result counts as absent.
    pub fn from_lwa(user_id: UserId, name: Option<&str>, email: Option<&str>) -> Self {
        Self {
            user_id,
            name: name.and_then(clean),
            email: email.and_then(clean),
        }
    }

    /// The short form, for a sentence: the name, else the e-mail address, else the user id.
    pub fn short(&self) -> &str {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(self.user_id.as_str())
    }

    /// True when neither a name nor an e-mail address is known (no `profile` scope).
    pub fn is_id_only(&self) -> bool {
        self.name.is_none() && self.email.is_none()
    }

    /// True when both describe the same account (the user id decides).
    pub fn same_account(&self, other: &AccountProfile) -> bool {
        self.user_id == other.user_id
    }
}

/// Whatever parses a profile (the companion reading the speaker's message, the agent reading its
/// own tokens.json) gets the same cleaning as [`AccountProfile::from_lwa`]: a speaker's or a
/// file's text reaches a terminal too.
fn cleaned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(clean))
}

fn clean(s: &str) -> Option<String> {
    let kept: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PROFILE_FIELD_CHARS)
        .collect();
    let trimmed = kept.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

impl std::fmt::Display for AccountProfile {
    /// "Alice Example (alice@example.com)"; with one of the two, that one; with neither, the
    /// user id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.email) {
            (Some(n), Some(e)) => write!(f, "{n} ({e})"),
            (Some(n), None) => f.write_str(n),
            (None, Some(e)) => f.write_str(e),
            (None, None) => f.write_str(self.user_id.as_str()),
        }
    }
}

impl std::fmt::Debug for AccountProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountProfile")
            .field("user_id", &self.user_id)
            .field("name", &self.name.as_ref().map(|_| REDACTED))
            .field("email", &self.email.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// Agent → companion (only to a companion that announced
/// [`super::Capability::ConfirmAccountSwitch`]): the sign-in was a different account than the
/// one the speaker is linked to. The agent holds the new tokens in memory, unstored, until the
/// companion answers with [`AccountSwitchAnswer`] (or it gives up and keeps `current`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSwitch {
    /// The pairing session (from `DeviceInfo`).
    pub session_id: SessionId,
    /// The account the speaker is linked to now.
    pub current: AccountProfile,
    /// The account that just signed in.
    pub new: AccountProfile,
    /// How long the agent waits for the answer before it keeps `current`.
    pub answer_within_secs: u64,
}

/// Companion → agent: the user's answer to an [`AccountSwitch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSwitchAnswer {
    /// The pairing session the question was about.
    pub session_id: SessionId,
    /// True: link the new account (the old one is replaced). False: keep the current one.
    pub replace: bool,
}

/// In a failed `AuthResult`: another companion linked this speaker while this one was signing
/// in (its `ProvideAuthorization` came after the other's exchange).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedByOther {
    /// The account the other companion linked, if the speaker could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountProfile>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> AccountProfile {
        AccountProfile::from_lwa(
            "amzn1.account.A".into(),
            Some("Alice Example"),
            Some("alice@example.com"),
        )
    }

    #[test]
    fn display_is_name_and_email_and_falls_back_to_the_id() {
        assert_eq!(alice().to_string(), "Alice Example (alice@example.com)");
        assert_eq!(alice().short(), "Alice Example");
        let id = AccountProfile::id_only("amzn1.account.A".into());
        assert_eq!(id.to_string(), "amzn1.account.A");
        assert_eq!(id.short(), "amzn1.account.A");
        let mail = AccountProfile::from_lwa("u".into(), Some("  "), Some("a@b"));
        assert_eq!(mail.to_string(), "a@b");
        assert_eq!(mail.short(), "a@b");
    }

    #[test]
    fn debug_never_shows_name_or_email() {
        let d = format!("{:?}", alice());
        assert!(d.contains("amzn1.account.A"), "{d}");
        assert!(!d.contains("Alice") && !d.contains("alice@"), "{d}");
    }

    #[test]
    fn lwa_text_is_cleaned_and_bounded() {
        let long = "x".repeat(1000);
        let p = AccountProfile::from_lwa("u".into(), Some("\u{1b}[31mEve\u{7}"), Some(&long));
        assert_eq!(p.name.as_deref(), Some("[31mEve"));
        assert_eq!(
            p.email.map(|e| e.chars().count()),
            Some(MAX_PROFILE_FIELD_CHARS)
        );
    }

    #[test]
    fn a_received_profile_is_cleaned_like_lwa_text() {
        let long = "y".repeat(1000);
        let json = format!(r#"{{"user_id":"u","name":"\u001b[31mEve\u0007","email":"{long}"}}"#);
        let p: AccountProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(p.name.as_deref(), Some("[31mEve"));
        assert_eq!(
            p.email.map(|e| e.chars().count()),
            Some(MAX_PROFILE_FIELD_CHARS)
        );
        let blank: AccountProfile = serde_json::from_str(r#"{"user_id":"u","name":" "}"#).unwrap();
        assert!(blank.is_id_only());
    }

    #[test]
    fn an_id_only_profile_is_just_the_id_on_the_wire() {
        let json = serde_json::to_string(&AccountProfile::id_only("u".into())).unwrap();
        assert_eq!(json, r#"{"user_id":"u"}"#);
        let back: AccountProfile = serde_json::from_str(r#"{"user_id":"u","extra":1}"#).unwrap();
        assert_eq!(back, AccountProfile::id_only("u".into()));
    }
}
