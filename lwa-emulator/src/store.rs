//! The emulator's memory: issued codes and tokens, code pairs, sign-in transactions, browser
//! sessions, queued faults and the request record.
//!
//! Codes and tokens are kept only as SHA-256 digests: the store can check a presented value but
//! cannot leak one (a test printing the store shows nothing usable). Every token remembers the
//! grant it came from, so reusing an authorization code can revoke exactly the tokens issued
//! from it (RFC 6749 §4.1.2). Time is `Instant::now()` plus a test-controlled offset, so tests
//! can age codes and pairs without sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};
use shared_protocol::ids::{ClientId, ProductId, UserId};
use shared_protocol::pkce::PkceCodeChallenge;
use shared_protocol::secret::{AccessToken, AuthorizationCode, DeviceCode, RefreshToken};

use crate::config::Settings;
use crate::fault::FaultTable;
use crate::record::{RecordedRequest, MAX_RECORDED};
use crate::tokens;

/// SHA-256 of a secret: the key under which it is stored.
pub(crate) type Digest = [u8; 32];

pub(crate) fn digest(secret: &str) -> Digest {
    Sha256::digest(secret.as_bytes()).into()
}

/// Prune expired entries once a map grows past this.
const PRUNE_THRESHOLD: usize = 50_000;
/// Sign-in transactions and browser sessions live this long.
pub(crate) const TXN_LIFETIME: Duration = Duration::from_secs(15 * 60);
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Who granted what to which client. Shared by every token issued from one grant.
#[derive(Debug)]
pub(crate) struct GrantInfo {
    pub(crate) id: u64,
    pub(crate) user_id: UserId,
    pub(crate) client_id: ClientId,
    pub(crate) scopes: Vec<String>,
}

impl GrantInfo {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub(crate) grant: Arc<GrantInfo>,
    pub(crate) expires_at: Instant,
    pub(crate) issued_unix: u64,
    pub(crate) revoked: bool,
}

#[derive(Debug)]
pub(crate) struct RefreshRecord {
    pub(crate) grant: Arc<GrantInfo>,
    /// Set when a rotation replaced this token: valid until then.
    pub(crate) valid_until: Option<Instant>,
    pub(crate) revoked: bool,
}

#[derive(Debug)]
pub(crate) struct CodeRecord {
    pub(crate) grant: Arc<GrantInfo>,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<PkceCodeChallenge>,
    pub(crate) expires_at: Instant,
    pub(crate) used: bool,
}

/// Where a CBL code pair stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PairStatus {
    Pending,
    Approved(UserId),
    Denied,
    Redeemed,
}

#[derive(Debug)]
pub(crate) struct PairRecord {
    pub(crate) client_id: ClientId,
    pub(crate) scopes: Vec<String>,
    pub(crate) user_code: String,
    pub(crate) expires_at: Instant,
    pub(crate) status: PairStatus,
    pub(crate) last_poll: Option<Instant>,
}

/// A pending `/ap/oa` request, between the login form and the consent decision.
#[derive(Debug, Clone)]
pub(crate) struct AuthTxn {
    pub(crate) client_id: ClientId,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) scope_param: String,
    pub(crate) product_id: Option<ProductId>,
    pub(crate) dsn: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) challenge: Option<PkceCodeChallenge>,
    /// The browser session that signed in for this request.
    pub(crate) session: Option<Digest>,
    pub(crate) created: Instant,
}

/// A signed-in browser (the `lwa-session` cookie).
#[derive(Debug)]
pub(crate) struct BrowserSession {
    pub(crate) user_id: UserId,
    pub(crate) csrf: String,
    pub(crate) created: Instant,
}

/// What a code or token check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    Unknown,
    Expired,
    Revoked,
}

/// Tokens minted for one grant.
#[derive(Debug)]
pub(crate) struct Minted {
    pub(crate) access: AccessToken,
    pub(crate) refresh: Option<RefreshToken>,
    pub(crate) expires_in: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    offset: Duration,
    pub(crate) settings: Settings,
    next_grant: u64,
    access: HashMap<Digest, AccessRecord>,
    refresh: HashMap<Digest, RefreshRecord>,
    codes: HashMap<Digest, CodeRecord>,
    pairs: HashMap<Digest, PairRecord>,
    user_codes: HashMap<String, Digest>,
    txns: HashMap<String, AuthTxn>,
    sessions: HashMap<Digest, BrowserSession>,
    pub(crate) faults: FaultTable,
    requests: VecDeque<RecordedRequest>,
    next_seq: u64,
}

impl Store {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// The emulator's clock: real time plus the test offset.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.offset
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.offset += by;
    }

    fn unix_now(&self) -> u64 {
        (SystemTime::now() + self.offset)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    // ---- grants and tokens -------------------------------------------------------------------

    pub(crate) fn new_grant(
        &mut self,
        user_id: UserId,
        client_id: ClientId,
        scopes: Vec<String>,
    ) -> Arc<GrantInfo> {
        self.next_grant += 1;
        Arc::new(GrantInfo {
            id: self.next_grant,
            user_id,
            client_id,
            scopes,
        })
    }

    /// A new access token (and refresh token when asked) for `grant`.
    pub(crate) fn mint(&mut self, grant: &Arc<GrantInfo>, with_refresh: bool) -> Minted {
        let access = self.mint_access(grant);
        let refresh = with_refresh.then(|| self.mint_refresh(grant));
        Minted {
            access,
            refresh,
            expires_in: self.settings.access_token_lifetime_secs.max(1),
        }
    }

    pub(crate) fn mint_access(&mut self, grant: &Arc<GrantInfo>) -> AccessToken {
        self.prune();
        let token = tokens::access_token();
        let lifetime = Duration::from_secs(self.settings.access_token_lifetime_secs.max(1));
        let record = AccessRecord {
            grant: grant.clone(),
            expires_at: self.now() + lifetime,
            issued_unix: self.unix_now(),
            revoked: false,
        };
        self.access.insert(digest(token.expose_secret()), record);
        token
    }

    pub(crate) fn mint_refresh(&mut self, grant: &Arc<GrantInfo>) -> RefreshToken {
        let token = tokens::refresh_token();
        let record = RefreshRecord {
            grant: grant.clone(),
            valid_until: None,
            revoked: false,
        };
        self.refresh.insert(digest(token.expose_secret()), record);
        token
    }

    /// A live access token's record.
    pub(crate) fn access(&self, token: &str) -> Result<&AccessRecord, Invalid> {
        let record = self.access.get(&digest(token)).ok_or(Invalid::Unknown)?;
        if record.revoked {
            Err(Invalid::Revoked)
        } else if self.now() >= record.expires_at {
            Err(Invalid::Expired)
        } else {
            Ok(record)
        }
    }

    /// Seconds left on a live access token.
    pub(crate) fn remaining(&self, record: &AccessRecord) -> u64 {
        record
            .expires_at
            .saturating_duration_since(self.now())
            .as_secs()
    }

    /// A usable refresh token's grant.
    pub(crate) fn refresh(&self, token: &str) -> Result<Arc<GrantInfo>, Invalid> {
        let record = self.refresh.get(&digest(token)).ok_or(Invalid::Unknown)?;
        if record.revoked {
            return Err(Invalid::Revoked);
        }
        if let Some(until) = record.valid_until {
            if self.now() >= until {
                return Err(Invalid::Expired);
            }
        }
        Ok(record.grant.clone())
    }

    /// Rotation: the old refresh token keeps working for `grace`, then stops.
    pub(crate) fn retire_refresh(&mut self, token: &str, grace: Duration) {
        let until = self.now() + grace;
        if let Some(record) = self.refresh.get_mut(&digest(token)) {
            if grace.is_zero() {
                record.revoked = true;
            } else {
                record.valid_until = Some(record.valid_until.map_or(until, |u| u.min(until)));
            }
        }
    }

    /// Revokes every token of one grant; returns (refresh, access) counts.
    pub(crate) fn revoke_grant(&mut self, grant_id: u64) -> (usize, usize) {
        self.revoke_where(|g| g.id == grant_id)
    }

    /// Revokes every token of one user (the user unlinked the device).
    pub(crate) fn revoke_user(&mut self, user_id: &UserId) -> (usize, usize) {
        self.revoke_where(|g| &g.user_id == user_id)
    }

    fn revoke_where(&mut self, pred: impl Fn(&GrantInfo) -> bool) -> (usize, usize) {
        let mut refresh = 0;
        for record in self.refresh.values_mut() {
            if !record.revoked && pred(&record.grant) {
                record.revoked = true;
                refresh += 1;
            }
        }
        let mut access = 0;
        for record in self.access.values_mut() {
            if !record.revoked && pred(&record.grant) {
                record.revoked = true;
                access += 1;
            }
        }
        (refresh, access)
    }

    /// Revokes one refresh token; true when it existed and was live.
    pub(crate) fn revoke_refresh_token(&mut self, token: &str) -> bool {
        match self.refresh.get_mut(&digest(token)) {
            Some(record) if !record.revoked => {
                record.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Makes every live access token expired now; returns how many.
    pub(crate) fn expire_access_tokens(&mut self) -> usize {
        let now = self.now();
        let mut n = 0;
        for record in self.access.values_mut() {
            if !record.revoked && record.expires_at > now {
                record.expires_at = now;
                n += 1;
            }
        }
        n
    }

    // ---- authorization codes ----------------------------------------------------------------

    pub(crate) fn issue_code(
        &mut self,
        grant: Arc<GrantInfo>,
        redirect_uri: String,
        challenge: Option<PkceCodeChallenge>,
    ) -> AuthorizationCode {
        self.prune();
        let code = tokens::authorization_code();
        let lifetime = Duration::from_secs(self.settings.code_lifetime_secs);
        self.codes.insert(
            digest(code.expose_secret()),
            CodeRecord {
                grant,
                redirect_uri,
                challenge,
                expires_at: self.now() + lifetime,
                used: false,
            },
        );
        code
    }

    /// The code's record, for the token endpoint to check and then mark used.
    pub(crate) fn code_mut(&mut self, code: &str) -> Option<&mut CodeRecord> {
        self.codes.get_mut(&digest(code))
    }

    // ---- CBL code pairs -----------------------------------------------------------------------

    pub(crate) fn new_pair(
        &mut self,
        client_id: ClientId,
        scopes: Vec<String>,
    ) -> (String, DeviceCode) {
        self.prune();
        let mut user_code = tokens::user_code();
        while self.user_codes.contains_key(&user_code) {
            user_code = tokens::user_code();
        }
        let device_code = tokens::device_code();
        let key = digest(device_code.expose_secret());
        let lifetime = Duration::from_secs(self.settings.codepair_lifetime_secs);
        self.pairs.insert(
            key,
            PairRecord {
                client_id,
                scopes,
                user_code: user_code.clone(),
                expires_at: self.now() + lifetime,
                status: PairStatus::Pending,
                last_poll: None,
            },
        );
        self.user_codes.insert(user_code.clone(), key);
        (user_code, device_code)
    }

    pub(crate) fn pair_mut(&mut self, device_code: &str) -> Option<&mut PairRecord> {
        self.pairs.get_mut(&digest(device_code))
    }

    /// A pending, unexpired pair by its user code (case and spaces ignored).
    pub(crate) fn pending_pair_by_user_code(&mut self, user_code: &str) -> Option<&mut PairRecord> {
        let normalized: String = user_code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let now = self.now();
        let key = self.user_codes.get(&normalized)?;
        self.pairs
            .get_mut(key)
            .filter(|p| p.status == PairStatus::Pending && now < p.expires_at)
    }

    // ---- browser sign-in ----------------------------------------------------------------------

    pub(crate) fn insert_txn(&mut self, txn: AuthTxn) -> String {
        self.prune();
        let id = tokens::opaque_id();
        self.txns.insert(id.clone(), txn);
        id
    }

    pub(crate) fn txn(&self, id: &str) -> Option<&AuthTxn> {
        let now = self.now();
        self.txns
            .get(id)
            .filter(|t| now.saturating_duration_since(t.created) < TXN_LIFETIME)
    }

    pub(crate) fn txn_mut(&mut self, id: &str) -> Option<&mut AuthTxn> {
        let now = self.now();
        self.txns
            .get_mut(id)
            .filter(|t| now.saturating_duration_since(t.created) < TXN_LIFETIME)
    }

    pub(crate) fn remove_txn(&mut self, id: &str) -> Option<AuthTxn> {
        self.txns.remove(id)
    }

    /// Starts a browser session; returns (cookie value, its digest).
    pub(crate) fn new_session(&mut self, user_id: UserId) -> (String, Digest) {
        let cookie = tokens::opaque_id();
        let key = digest(&cookie);
        let session = BrowserSession {
            user_id,
            csrf: tokens::opaque_id(),
            created: self.now(),
        };
        self.sessions.insert(key, session);
        (cookie, key)
    }

    pub(crate) fn session(&self, cookie: &str) -> Option<(Digest, &BrowserSession)> {
        let key = digest(cookie);
        let now = self.now();
        self.sessions
            .get(&key)
            .filter(|s| now.saturating_duration_since(s.created) < SESSION_LIFETIME)
            .map(|s| (key, s))
    }

    // ---- request record -----------------------------------------------------------------------

    pub(crate) fn record(&mut self, mut request: RecordedRequest) -> u64 {
        self.next_seq += 1;
        request.seq = self.next_seq;
        if self.requests.len() >= MAX_RECORDED {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
        self.next_seq
    }

    /// Fills in the outcome of a recorded request.
    pub(crate) fn finish_record(&mut self, seq: u64, status: Option<u16>, fault: Option<String>) {
        if let Some(r) = self.requests.iter_mut().rev().find(|r| r.seq == seq) {
            r.status = status;
            if fault.is_some() {
                r.fault = fault;
            }
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&mut self) {
        self.requests.clear();
    }

    // ---- housekeeping -------------------------------------------------------------------------

    /// Drops entries that can no longer matter once a map grows large (bounded memory under
    /// load; an expired or revoked token and an unknown one get the same answer).
    fn prune(&mut self) {
        let now = self.now();
        if self.access.len() > PRUNE_THRESHOLD {
            self.access.retain(|_, r| !r.revoked && r.expires_at > now);
        }
        if self.codes.len() > PRUNE_THRESHOLD {
            self.codes.retain(|_, c| c.expires_at > now);
        }
        if self.pairs.len() > PRUNE_THRESHOLD {
            self.pairs.retain(|_, p| p.expires_at > now);
            let live: std::collections::HashSet<Digest> = self.pairs.keys().copied().collect();
            self.user_codes.retain(|_, k| live.contains(k));
        }
        if self.txns.len() > PRUNE_THRESHOLD {
            self.txns
                .retain(|_, t| now.saturating_duration_since(t.created) < TXN_LIFETIME);
        }
        if self.sessions.len() > PRUNE_THRESHOLD {
            self.sessions
                .retain(|_, s| now.saturating_duration_since(s.created) < SESSION_LIFETIME);
        }
    }
}
