//! The handshake transcript and the key schedule.
//!
//! ```text
//! TH  = SHA-256( "avs-pair/1 handshake transcript"
//!                || lp(companion Hello frame) || lp(agent Hello frame)
//!                || lp(SPAKE2 message A)      || lp(SPAKE2 message B) )
//!       lp(x) = u32_be(len(x)) || x        (the frames exactly as they crossed the wire)
//! PRK = HKDF-Extract(salt = TH, ikm = SPAKE2 key)
//! agent confirm key      = HKDF-Expand(PRK, "avs-pair/1 confirm agent", 32)
//! companion confirm key  = HKDF-Expand(PRK, "avs-pair/1 confirm companion", 32)
//! agent->companion key   = HKDF-Expand(PRK, "avs-pair/1 key agent->companion", 32)
//! companion->agent key   = HKDF-Expand(PRK, "avs-pair/1 key companion->agent", 32)
//! confirm(side)          = HMAC-SHA256(side's confirm key, TH)
//! ```

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::SecretKey;

/// SPAKE2 identity of side A (the companion).
pub const COMPANION_IDENTITY: &[u8] = b"avs-pair companion";
/// SPAKE2 identity of side B (the agent).
pub const AGENT_IDENTITY: &[u8] = b"avs-pair agent";
/// Domain-separation prefix of the transcript hash.
pub const TRANSCRIPT_LABEL: &[u8] = b"avs-pair/1 handshake transcript";
/// HKDF info of the agent's confirmation key.
pub const INFO_AGENT_CONFIRM: &[u8] = b"avs-pair/1 confirm agent";
/// HKDF info of the companion's confirmation key.
pub const INFO_COMPANION_CONFIRM: &[u8] = b"avs-pair/1 confirm companion";
/// HKDF info of the key sealing agent → companion frames.
pub const INFO_AGENT_TO_COMPANION: &[u8] = b"avs-pair/1 key agent->companion";
/// HKDF info of the key sealing companion → agent frames.
pub const INFO_COMPANION_TO_AGENT: &[u8] = b"avs-pair/1 key companion->agent";

/// Running transcript hash.
#[derive(Clone)]
pub(crate) struct Transcript(Sha256);

impl Transcript {
    pub(crate) fn new() -> Self {
        let mut hash = Sha256::new();
        hash.update(TRANSCRIPT_LABEL);
        Self(hash)
    }

    /// Appends one length-prefixed part.
    pub(crate) fn add(&mut self, part: &[u8]) {
        // Parts are frames (<= 64 KiB) or PAKE messages; the length always fits a u32.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.0.update(len.to_be_bytes());
        self.0.update(part);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Everything the handshake derives.
pub(crate) struct SessionKeys {
    pub(crate) agent_confirm: SecretKey<32>,
    pub(crate) companion_confirm: SecretKey<32>,
    pub(crate) agent_to_companion: SecretKey<32>,
    pub(crate) companion_to_agent: SecretKey<32>,
}

impl SessionKeys {
    pub(crate) fn derive(spake_key: &[u8], transcript_hash: &[u8; 32]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(transcript_hash), spake_key);
        let expand = |info: &[u8]| {
            let mut okm = Zeroizing::new([0u8; 32]);
            hkdf.expand(info, okm.as_mut())
                .expect("32 bytes is far below HKDF-SHA256's 8160-byte output limit");
            SecretKey::from_bytes(*okm)
        };
        Self {
            agent_confirm: expand(INFO_AGENT_CONFIRM),
            companion_confirm: expand(INFO_COMPANION_CONFIRM),
            agent_to_companion: expand(INFO_AGENT_TO_COMPANION),
            companion_to_agent: expand(INFO_COMPANION_TO_AGENT),
        }
    }
}

fn mac(key: &SecretKey<32>) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC accepts keys of any length")
}

/// HMAC-SHA256(key, transcript hash).
pub(crate) fn confirm_tag(key: &SecretKey<32>, transcript_hash: &[u8; 32]) -> [u8; 32] {
    let mut m = mac(key);
    m.update(transcript_hash);
    m.finalize().into_bytes().into()
}

/// Constant-time check of a peer's confirmation tag.
pub(crate) fn verify_confirm(key: &SecretKey<32>, transcript_hash: &[u8; 32], tag: &[u8]) -> bool {
    let mut m = mac(key);
    m.update(transcript_hash);
    m.verify_slice(tag).is_ok()
}
