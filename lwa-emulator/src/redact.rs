//! Redaction of secrets and personal data in logs and in the request record.
//!
//! The emulator sees every secret of the flow (codes, verifiers, tokens, client secrets,
//! passwords, the CBL user code) and the user's e-mail address. None of them may appear in full
//! in a log line, in the request record a test prints on failure, or in what the control API
//! serves (`GET /_emulator/requests`). Log lines show at most the first 4 characters and the
//! length; the request record adds a short SHA-256 fingerprint so a test can still assert that
//! *the* token it holds is the one that was sent (compare with [`fingerprint`]), without the
//! record holding it.
//!
//! Some values are never shown at all, not even as a fingerprint ([`REDACTED`]): passwords and
//! the CBL user code are low-entropy (a 32-bit fingerprint of a 6-letter code is brute-forced
//! in seconds, and whoever holds a live user code can link the speaker to their account), and
//! an e-mail address is personal data, which a hash would only pseudonymise. A value that
//! carries a local URL (the sign-in form's `next`, e.g. `/code?user_code=…`) has its query
//! redacted by the same rules.

use sha2::{Digest as _, Sha256};

/// Parameter and header names whose values are secrets.
const SECRET_PARAMS: &[&str] = &[
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "client_secret",
    "device_code",
    "authorization",
    "x-amz-access-token",
    "cookie",
    "set-cookie",
    "csrf",
    "txn",
];

/// Parameters that are never shown, not even as a fingerprint: low-entropy secrets and
/// personal data.
const OPAQUE_PARAMS: &[&str] = &["password", "user_code", "email"];

/// Parameters whose value is a local URL (`/path?query`): the query is redacted pair by pair.
const URL_PARAMS: &[&str] = &["next"];

/// What an opaque value is shown as.
pub use shared_protocol::secret::REDACTED;

/// For logs: first 4 characters and the length, e.g. `Atza…(365)`. Values shorter than 12
/// characters show only their length.
pub fn short(secret: &str) -> String {
    let len = secret.chars().count();
    if len < 12 {
        return format!("…({len})");
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({len})")
}

/// For the request record: [`short`] plus the first 8 hex digits of SHA-256, e.g.
/// `Atza…(365, sha256:1a2b3c4d)`. Tests compare a recorded value with `fingerprint(token)`.
pub fn fingerprint(secret: &str) -> String {
    let len = secret.chars().count();
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    if len < 12 {
        return format!("…({len}, sha256:{hex})");
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({len}, sha256:{hex})")
}

/// How a parameter's value may be shown, by the parameter's name.
enum Kind {
    /// Never, not even as a fingerprint ([`OPAQUE_PARAMS`]).
    Opaque,
    /// A local URL whose query is redacted pair by pair ([`URL_PARAMS`]).
    LocalUrl,
    /// Shortened, or fingerprinted in the record ([`SECRET_PARAMS`]).
    Secret,
    /// As it is.
    Plain,
}

fn kind(name: &str) -> Kind {
    let lower = name.to_ascii_lowercase();
    let is = |list: &[&str]| list.contains(&lower.as_str());
    if is(OPAQUE_PARAMS) {
        Kind::Opaque
    } else if is(URL_PARAMS) {
        Kind::LocalUrl
    } else if is(SECRET_PARAMS) {
        Kind::Secret
    } else {
        Kind::Plain
    }
}

/// The value of a parameter or header as it may be recorded: secrets fingerprinted, passwords,
/// user codes and e-mail addresses removed, everything else verbatim. `Authorization` keeps its
/// scheme (`Bearer Atza…`).
pub fn param(name: &str, value: &str) -> String {
    match kind(name) {
        Kind::Opaque => REDACTED.to_owned(),
        Kind::LocalUrl => url_query(value, param),
        Kind::Plain => value.to_owned(),
        Kind::Secret => match value.split_once(' ') {
            Some((scheme, rest)) if name.eq_ignore_ascii_case("authorization") => {
                format!("{scheme} {}", fingerprint(rest.trim()))
            }
            _ => fingerprint(value),
        },
    }
}

/// The same for a log line: at most 4 characters and a length.
pub fn param_for_log(name: &str, value: &str) -> String {
    match kind(name) {
        Kind::Opaque => REDACTED.to_owned(),
        Kind::LocalUrl => plain_for_log(&url_query(value, param_for_log)),
        Kind::Plain => plain_for_log(value),
        Kind::Secret => short(value),
    }
}

/// A value that is no secret, for a log line: it can still be long or hold control characters.
fn plain_for_log(value: &str) -> String {
    value
        .chars()
        .take(200)
        .filter(|c| !c.is_control())
        .collect()
}

/// `value` (`/path?query`) with each query pair's value passed through `redact`; a value
/// without a query is kept as it is.
fn url_query(value: &str, redact: fn(&str, &str) -> String) -> String {
    let Some((path, query)) = value.split_once('?') else {
        return value.to_owned();
    };
    let pairs = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let shown = redact(&k, &v);
            (k.into_owned(), shown)
        })
        .collect::<Vec<_>>();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_survive() {
        let token = format!("Atza|{}", "x".repeat(360));
        assert_eq!(short(&token), "Atza…(365)");
        assert!(fingerprint(&token).starts_with("Atza…(365, sha256:"));
        assert_eq!(param("refresh_token", &token), fingerprint(&token));
        assert_eq!(param("client_id", "amzn1.x"), "amzn1.x");
        assert_eq!(param("password", "alexa-pass-1"), "[redacted]");
        assert!(param("Authorization", &format!("Bearer {token}")).starts_with("Bearer Atza…"));
        assert_eq!(short("abc"), "…(3)");
        assert_eq!(param_for_log("code", "ANcMJpTtVktKiZvfdYaV"), "ANcM…(20)");
    }

    #[test]
    fn user_codes_and_email_addresses_are_never_shown() {
        for name in ["user_code", "email", "Email"] {
            assert_eq!(param(name, "ABCDEF"), REDACTED, "{name}");
            assert_eq!(param_for_log(name, "alice@example.com"), REDACTED, "{name}");
        }
        // Inside the sign-in's `next` URL too; its other pairs and its path stay readable.
        let next = "/code?user_code=QWERTY&lang=en";
        for shown in [param("next", next), param_for_log("next", next)] {
            assert!(!shown.contains("QWERTY"), "{shown}");
            assert!(shown.starts_with("/code?user_code=") && shown.ends_with("&lang=en"));
        }
        assert_eq!(param("next", "/code"), "/code");
        assert_eq!(
            param_for_log("next", "/code\nforged line"),
            "/codeforged line"
        );
    }
}
