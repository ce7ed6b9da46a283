//! What the LWA server (or anything impersonating it on the speaker's network path) sends back:
//! token responses, code-pair responses and error bodies, with any HTTP status. The agent
//! parses them with these exact calls (`device-agent/src/lwa_client.rs`). Nothing may panic;
//! a parsed token response round-trips; the error mapping is total and agrees with itself.
//!
//! Shared by the cargo-fuzz target `fuzz_targets/lwa_response.rs` and the stable replay of the seeds
//! (`tests/tests/fuzz_seeds.rs`), so the invariants are written once.

use shared_protocol::lwa::{AuthError, CodePairResponse, LwaErrorBody, TokenResponse};

/// Checks one input (the fuzz target's body; the seed replay runs it too).
pub fn run(data: &[u8]) {
    let (status_bytes, body) = data.split_at(data.len().min(2));
    let status = match status_bytes {
        [a, b] => 100 + u16::from_be_bytes([*a, *b]) % 500,
        _ => 200,
    };

    if let Ok(resp) = serde_json::from_slice::<TokenResponse>(body) {
        if resp.validate().is_ok() {
            assert!(!resp.access_token.is_empty());
            assert!(resp.expires_in.0 > 0);
        }
        let again = serde_json::to_vec(&resp).expect("serialize");
        let back: TokenResponse = serde_json::from_slice(&again).expect("round trip");
        assert_eq!(back.expires_in, resp.expires_in);
        assert_eq!(back.token_type, resp.token_type);
    }
    if let Ok(resp) = serde_json::from_slice::<CodePairResponse>(body) {
        let again = serde_json::to_vec(&resp).expect("serialize");
        let back: CodePairResponse = serde_json::from_slice(&again).expect("round trip");
        assert_eq!(back.user_code, resp.user_code);
        assert_eq!(back.expires_in, resp.expires_in);
    }
    let _ = serde_json::from_slice::<LwaErrorBody>(body);

    let (error, lwa) = AuthError::from_response(status, body);
    let _ = error.as_str();
    let _ = error.is_retryable();
    if let Some(lwa) = lwa {
        assert_ne!(
            status, 200,
            "an error body is only read from a non-200 answer"
        );
        assert!(!lwa.error.is_empty());
        assert_eq!(error, AuthError::from_lwa_error(&lwa.error));
    } else if status == 200 && serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        assert_eq!(error, AuthError::from_status(Some(200)));
    }
}
