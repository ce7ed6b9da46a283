//! Fresh random values in LWA's formats.
//!
//! Formats follow what Amazon issues (lwa-spec §1.5, §2.1, §1.6): access tokens `Atza|…` and
//! refresh tokens `Atzr|…` with well over 350 URL-safe characters (clients must not assume a
//! short token), 20-letter authorization codes, 6-letter CBL user codes, UUID device codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng as _;
use rand::RngCore as _;
use shared_protocol::secret::{AccessToken, AuthorizationCode, DeviceCode, RefreshToken};

/// Random bytes behind a token body: 270 bytes = 360 base64url characters.
const TOKEN_BYTES: usize = 270;

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(&buf)
}

fn random_letters(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

/// `Atza|` + 360 URL-safe characters.
pub(crate) fn access_token() -> AccessToken {
    AccessToken::new(format!("Atza|{}", random_b64(TOKEN_BYTES)))
}

/// `Atzr|` + 360 URL-safe characters.
pub(crate) fn refresh_token() -> RefreshToken {
    RefreshToken::new(format!("Atzr|{}", random_b64(TOKEN_BYTES)))
}

/// 20 letters, like the captured `ANcMJpTtVktKiZvfdYaV`.
pub(crate) fn authorization_code() -> AuthorizationCode {
    AuthorizationCode::new(random_letters(
        20,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    ))
}

/// 6 upper-case letters, like `BEYHYS`.
pub(crate) fn user_code() -> String {
    random_letters(6, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

/// A UUID v4.
pub(crate) fn device_code() -> DeviceCode {
    DeviceCode::new(uuid::Uuid::new_v4().to_string())
}

/// 256 random bits, base64url: session cookies, CSRF tokens, sign-in transaction ids.
pub(crate) fn opaque_id() -> String {
    random_b64(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let a = access_token();
        assert!(a.expose_secret().starts_with("Atza|"));
        assert!(a.len() >= 355);
        assert!(a.expose_secret()[5..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(refresh_token().expose_secret().starts_with("Atzr|"));
        let u = user_code();
        assert_eq!(u.len(), 6);
        assert!(u.bytes().all(|b| b.is_ascii_uppercase()));
        assert_eq!(authorization_code().len(), 20);
        assert!(uuid::Uuid::parse_str(device_code().expose_secret()).is_ok());
        assert_ne!(opaque_id(), opaque_id());
    }
}
