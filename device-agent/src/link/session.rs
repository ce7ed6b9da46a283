//! One companion session over any transport: the handshake within `handshake_timeout`, then
//! the sealed session until it ends.
//!
//! Inside the secure session, `GetDeviceInfo` makes a fresh PKCE pair bound to a fresh
//! `SessionId` (the verifier never leaves this task and is zeroized when the connection ends);
//! `ProvideAuthorization` is honoured only while the pairing window is open and only for that
//! session id; the exchange streams `Progress` and ends in an `AuthResult` whose failure class
//! tells the companion exactly what went wrong and whether resending the same code can help.
//!
//! Who is linked (protocol 1.2): after the exchange the agent reads `/user/profile` (id, name,
//! e-mail) with the new access token, before anything is stored. When the speaker is linked to a
//! different account and the companion announced [`Capability::ConfirmAccountSwitch`], the new
//! tokens stay in this task's memory (secret types, zeroized on drop) while the companion asks
//! its user (`ConfirmAccountSwitch`, answered by `AccountSwitchAnswer` within
//! `switch_answer_timeout_secs`, default 120 s); only "replace" stores them. No answer, a closed link or "keep"
//! drops them and the old account stays linked and refreshing (`AuthResult::KeptCurrent`). A
//! companion without the capability gets the 1.1 behaviour: the new account replaces the old.
//! A companion whose `DeviceInfo` predates another companion's link loses the race: it is told
//! who won instead of replacing that link ([`crate::core::links`]).
//!
//! One exchange at a time: the core's exchange lock is held from the code redemption to the
//! install, but not while a companion is asked about a switch, so a companion that stalls on
//! the question (up to `switch_answer_timeout_secs`) cannot keep the owner from linking. Each
//! time the lock is taken after waiting for it, the handover checks again that it may still
//! link (no other companion linked since its `DeviceInfo`, the window is open); if not, the
//! code is not redeemed, or the new tokens are dropped. A message sent while the lock is held
//! (the progress stages `FetchingProfile`, `StoringTokens`) must go out within
//! [`LOCKED_SEND_TIMEOUT`], not `idle_timeout`: a companion that stops reading then cannot hold
//! the lock for long either, and its handover ends as a broken link, nothing stored.
//!
//! A send that fails or times out ends the connection at once: each sealed frame advances the
//! nonce counter before it is written, so after a send that did not complete, half a frame may
//! sit on the transport or the counter has moved past what the companion expects; anything sent
//! after it would reach the companion as garbage. The session is marked broken, nothing more
//! is sent (not even the handover's `AuthResult`), and the transport is dropped, so the
//! companion sees the link close and the connection frees its slot.
//!
//! The network step (protocol 1.1): `DeviceInfo` carries the network status and the result of
//! the connectivity check; `ScanWifi` and `ConnectWifi` (window open only) go to
//! [`crate::network::Network`], and a join streams `WifiProgress` and ends in one `WifiResult`.
//! The passphrase moves from the message into the join task and is dropped there.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared_protocol::frame::FrameTransport;
use shared_protocol::ids::{ClientId, SessionId};
use shared_protocol::lwa::{AuthError, TokenRequest};
use shared_protocol::message::{
    AccountProfile, AccountSwitch, AgentMessage, AuthFailure, AuthFailureClass, AuthResult,
    Capability, CompanionMessage, ConnectWifi, DeviceInfo, ErrorBody, ErrorKind, LinkedByOther,
    Progress, ProgressStage, ProvideAuthorization, WifiProgress, WifiScan, WireMessage as _,
};
use shared_protocol::pkce::PkcePair;
use shared_protocol::secret::AccessToken;
use shared_protocol::session::{
    AgentSession, AttemptGuard, HandshakeError, ServerHandshake, SessionError,
};
use tokio::sync::MutexGuard;
use tokio::time::{timeout, timeout_at, Instant};

use super::LinkConfig;
use crate::core::Core;
use crate::lwa_client::{LwaFailure, TokenGrant};
use crate::pairing::Pairing;

/// How long a message sent while the exchange lock is held may take to go out: seconds, not
/// `idle_timeout`'s minutes. A progress frame takes milliseconds, even over BLE at MTU 23 (a
/// sealed `Progress` is a handful of 20-byte indications, each confirmed within a connection
/// interval); 5 s is well past that and still short of the GATT transport's own 10 s ack
/// timeout, so only a companion that stopped reading hits it. Without it, such a companion
/// (one that knows the setup code) would hold the lock, and keep the owner from linking, for
/// as long as a send may wait: up to `idle_timeout` (600 s) per progress message.
pub const LOCKED_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The pairing window as the handshake's attempt guard.
struct Guard<'a> {
    pairing: &'a Pairing,
    counted: bool,
    verified: bool,
    /// Set when the peer's PAKE message arrived (readable while the handshake borrows us).
    pake_seen: &'a AtomicBool,
    /// Tells the listener the peer left the pending phase (see [`super::slots`]); false when
    /// the listener evicted the connection first.
    promote: &'a mut (dyn FnMut() -> bool + Send),
}

impl AttemptGuard for Guard<'_> {
    fn before_reply(&mut self) -> Result<(), ErrorBody> {
        self.pake_seen.store(true, Ordering::Release);
        if !(self.promote)() {
            // Evicted for a newer connection: the guess is neither answered nor counted.
            return Err(ErrorBody::new(
                ErrorKind::Busy,
                "the speaker closed this connection to make room for a newer one; connect again",
            ));
        }
        self.pairing.before_reply()?;
        self.counted = true;
        Ok(())
    }

    fn on_success(&mut self) {
        self.verified = true;
        self.pairing.on_code_verified();
    }

    fn wrong_code_answer(&mut self) -> ErrorBody {
        self.pairing.wrong_code_answer()
    }
}

/// Runs one companion connection over any transport (TCP here, BLE GATT in [`crate::ble`]):
/// handshake within `handshake_timeout`, then the sealed session until it ends. `peer` names
/// the peer in logs.
pub async fn handle_connection<T: FrameTransport>(
    transport: T,
    peer: impl Display,
    ctx: &Core,
    limits: &LinkConfig,
) {
    serve_connection(transport, peer, ctx, limits, &mut || true).await
}

/// [`handle_connection`], calling `promote` when the peer's PAKE message arrives (the TCP
/// listener moves the connection out of its pending budget then; `false`: the listener evicted
/// the connection, whose guess is then refused `Busy` before it is counted).
///
/// Deadlines by phase: the peer's Hello within `hello_timeout`; if the window is not open the
/// peer gets `Error{window_closed | locked_out}` right after the Hello exchange and the
/// connection ends; the PAKE message within `pake_timeout` of the Hello exchange; the whole
/// handshake within `handshake_timeout`.
pub async fn serve_connection<T: FrameTransport>(
    transport: T,
    peer: impl Display,
    ctx: &Core,
    limits: &LinkConfig,
    promote: &mut (dyn FnMut() -> bool + Send),
) {
    let started = Instant::now();
    let deadline = started + limits.handshake_timeout;
    let hello_deadline = (started + limits.hello_timeout).min(deadline);
    let Some(hs) = hellos(transport, &peer, ctx, hello_deadline).await else {
        return;
    };
    let confirms_switch = hs.peer_hello().supports(Capability::ConfirmAccountSwitch);
    // Before any PAKE: a peer of a closed window is told so and costs no attempt.
    if let Some(body) = ctx.pairing.refusal() {
        tracing::info!(%peer, kind = ?body.kind, "link: pairing window not open; closing after hello");
        let mut t = hs.refuse(body).await;
        // Let the answer reach the peer before the close (its next frame or its close).
        let _ = timeout(Duration::from_secs(1), t.recv_frame()).await;
        return;
    }
    let Some(session) = authenticate(hs, &peer, ctx, limits, deadline, promote).await else {
        return;
    };
    tracing::info!(%peer, "link session established");
    let mut s = LinkSession {
        session,
        ctx,
        limits,
        pkce: None,
        links_at_info: None,
        confirms_switch,
        broken: false,
    };
    s.run().await;
    tracing::info!(%peer, "link session ended");
}

/// The Hello exchange, by `hello_deadline`; `None`: failed or timed out (logged).
async fn hellos<T: FrameTransport>(
    transport: T,
    peer: &impl Display,
    ctx: &Core,
    hello_deadline: Instant,
) -> Option<ServerHandshake<T>> {
    match timeout_at(
        hello_deadline,
        ServerHandshake::accept(transport, ctx.hello()),
    )
    .await
    {
        Ok(Ok(hs)) => Some(hs),
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %crate::log_safe::Escaped(&e), "link hello failed");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "link hello timed out");
            None
        }
    }
}

/// SPAKE2 on the setup code and key confirmation, with the pairing window as the attempt
/// guard: the PAKE message within `pake_timeout`, then (once it came) the rest by `deadline`.
/// `None`: failed or timed out (logged); an attempt the window counted but that did not verify
/// is a wrong code, also when it timed out.
async fn authenticate<T: FrameTransport>(
    hs: ServerHandshake<T>,
    peer: &impl Display,
    ctx: &Core,
    limits: &LinkConfig,
    deadline: Instant,
    promote: &mut (dyn FnMut() -> bool + Send),
) -> Option<AgentSession<T>> {
    let pake_seen = AtomicBool::new(false);
    let mut guard = Guard {
        pairing: &ctx.pairing,
        counted: false,
        verified: false,
        pake_seen: &pake_seen,
        promote,
    };
    let pake_deadline = (Instant::now() + limits.pake_timeout).min(deadline);
    let result = {
        let auth = hs.authenticate(&ctx.setup_code, &mut guard);
        tokio::pin!(auth);
        match timeout_at(pake_deadline, &mut auth).await {
            Ok(r) => Some(r),
            Err(_) if pake_seen.load(Ordering::Acquire) => {
                timeout_at(deadline, &mut auth).await.ok()
            }
            Err(_) => None,
        }
    };
    let error = match result {
        Some(Ok(session)) => return Some(session),
        Some(Err(e)) => Some(e),
        None => None,
    };
    if guard.counted && !guard.verified {
        ctx.pairing.on_wrong_code();
    }
    match error {
        Some(HandshakeError::WrongSetupCode) => {
            tracing::warn!(%peer, failures = ctx.pairing.failures(), "link handshake: wrong setup code")
        }
        Some(other) => {
            tracing::info!(%peer, error = %crate::log_safe::Escaped(&other), "link handshake failed")
        }
        None if pake_seen.load(Ordering::Acquire) => {
            tracing::info!(%peer, "link handshake timed out")
        }
        None => tracing::info!(%peer, "link: no PAKE message in time; closing"),
    }
    None
}

/// What the session's next receive gave.
enum Received {
    /// A message to handle.
    Message(CompanionMessage),
    /// Nothing to handle: a bad message, answered with an error.
    Answered,
    /// The session is over (closed, broken, silent too long, or an answer could not be sent).
    Over,
}

struct LinkSession<'a, T: FrameTransport> {
    session: AgentSession<T>,
    ctx: &'a Core,
    limits: &'a LinkConfig,
    /// This connection's PKCE pair and the session id it is bound to.
    pkce: Option<(SessionId, PkcePair)>,
    /// [`crate::core::Links::count`] when this connection's `DeviceInfo` went out (`None`
    /// before it did): a higher count at the handover means another companion linked the
    /// speaker meanwhile.
    links_at_info: Option<u64>,
    /// The companion answers `ConfirmAccountSwitch` (it said so in its Hello).
    confirms_switch: bool,
    /// A send failed or timed out: the sealed stream is out of step (see the module docs), so
    /// nothing more is sent and the connection ends.
    broken: bool,
}

impl<T: FrameTransport> LinkSession<'_, T> {
    async fn send(&mut self, msg: &AgentMessage) -> bool {
        self.send_within(self.limits.idle_timeout, msg).await
    }

    /// Sends `msg` if it goes out `within`; `false`: it failed or timed out (logged), or an
    /// earlier send did. Either way the session is broken from then on: the caller ends it.
    async fn send_within(&mut self, within: Duration, msg: &AgentMessage) -> bool {
        if self.broken {
            return false;
        }
        match timeout(within, self.session.send(msg)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                self.broken = true;
                tracing::info!(error = %e, message = %msg.type_name(), "link send failed; closing the connection");
                false
            }
            Err(_) => {
                self.broken = true;
                tracing::info!(message = %msg.type_name(), within_secs = within.as_secs(), "link send timed out; closing the connection");
                false
            }
        }
    }

    async fn error(&mut self, kind: ErrorKind, message: &str) -> bool {
        self.send(&AgentMessage::Error(ErrorBody::new(kind, message)))
            .await
    }

    async fn run(&mut self) {
        loop {
            let msg = match self.next_message().await {
                Received::Message(msg) => msg,
                Received::Answered => continue,
                Received::Over => return,
            };
            let ok = match msg {
                CompanionMessage::GetDeviceInfo => self.device_info().await,
                CompanionMessage::ProvideAuthorization(pa) => self.provide(pa).await,
                CompanionMessage::GetStatus => {
                    let status = self.ctx.status();
                    self.send(&AgentMessage::Status(status)).await
                }
                CompanionMessage::Reset => self.reset().await,
                CompanionMessage::GetNetworkStatus => self.network_status().await,
                CompanionMessage::ScanWifi => self.scan_wifi().await,
                CompanionMessage::ConnectWifi(req) => self.connect_wifi(req).await,
                // Answers arrive inside `ask_switch`; one here answers nothing (late).
                CompanionMessage::AccountSwitchAnswer(_) => {
                    self.error(ErrorKind::UnexpectedMessage, NO_QUESTION).await
                }
                // The speaker asks the companion nothing, so an error from it answers nothing.
                CompanionMessage::Error(_) => {
                    self.error(ErrorKind::UnexpectedMessage, SENT_BY_US).await
                }
                CompanionMessage::Unknown => {
                    self.error(
                        ErrorKind::UnsupportedMessage,
                        "this speaker does not know that message",
                    )
                    .await
                }
            };
            if !ok || self.broken {
                return;
            }
        }
    }

    /// The companion's next message within `idle_timeout`. A garbled message or one only the
    /// speaker sends is answered with an error and the session goes on.
    async fn next_message(&mut self) -> Received {
        let answered = |sent| {
            if sent {
                Received::Answered
            } else {
                Received::Over
            }
        };
        match timeout(self.limits.idle_timeout, self.session.recv()).await {
            Err(_) => {
                let _ = self
                    .error(
                        ErrorKind::Timeout,
                        "no message for too long: closing the session",
                    )
                    .await;
                Received::Over
            }
            Ok(Err(SessionError::Malformed(why))) => {
                answered(self.error(ErrorKind::Malformed, &why).await)
            }
            Ok(Err(SessionError::WrongDirection(_))) => {
                answered(self.error(ErrorKind::UnexpectedMessage, SENT_BY_US).await)
            }
            Ok(Err(SessionError::Closed)) => Received::Over,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "link session ended");
                Received::Over
            }
            Ok(Ok(msg)) => Received::Message(msg),
        }
    }

    async fn device_info(&mut self) -> bool {
        if !self.ctx.pairing.is_open() {
            return self.error(ErrorKind::WindowClosed, WINDOW_CLOSED).await;
        }
        let session_id = SessionId::random();
        let pair = PkcePair::generate();
        let info = DeviceInfo {
            product_id: self.ctx.product_id.clone(),
            dsn: self.ctx.dsn.clone(),
            code_challenge: pair.challenge.as_str().to_owned(),
            code_challenge_method: pair.challenge.method(),
            session_id,
            network: Some(self.ctx.network.status().await),
        };
        // Replacing the old pair drops (zeroizes) its verifier.
        self.pkce = Some((session_id, pair));
        self.links_at_info = Some(self.ctx.links.count());
        self.send(&AgentMessage::DeviceInfo(info)).await
    }

    async fn network_status(&mut self) -> bool {
        let status = self.ctx.network.status().await;
        self.send(&AgentMessage::NetworkStatus(status)).await
    }

    /// Scanning and joining are pairing steps: only while the window is open (status is
    /// answered any time, it reveals no more than the speaker's own network).
    async fn scan_wifi(&mut self) -> bool {
        if !self.ctx.pairing.is_open() {
            return self.error(ErrorKind::WindowClosed, WINDOW_CLOSED).await;
        }
        match self.ctx.network.scan().await {
            Ok(networks) => {
                self.send(&AgentMessage::WifiScan(WifiScan { networks }))
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "Wi-Fi scan failed");
                self.error(
                    ErrorKind::Internal,
                    &format!("the speaker could not scan: {e}"),
                )
                .await
            }
        }
    }

    /// Joins a network, streaming `WifiProgress`, ending in one `WifiResult`.
    async fn connect_wifi(&mut self, req: ConnectWifi) -> bool {
        if !self.ctx.pairing.is_open() {
            return self.error(ErrorKind::WindowClosed, WINDOW_CLOSED).await;
        }
        let network = self.ctx.network.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let join = tokio::spawn(async move { network.connect(req, &tx).await });
        // Forward progress until the join ends (its sender drops with it).
        while let Some(stage) = rx.recv().await {
            if !self
                .send(&AgentMessage::WifiProgress(WifiProgress { stage }))
                .await
            {
                // The companion is gone; the join still finishes (or rolls back) on its own.
                return false;
            }
        }
        let result = match join.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Wi-Fi join task failed");
                return self
                    .error(ErrorKind::Internal, "the speaker's Wi-Fi join failed")
                    .await;
            }
        };
        self.send(&AgentMessage::WifiResult(result)).await
    }

    async fn reset(&mut self) -> bool {
        if !self.ctx.pairing.is_open() {
            return self.error(ErrorKind::WindowClosed, WINDOW_CLOSED).await;
        }
        match self.ctx.delegate.clear_data().await {
            Ok(()) => self.send(&AgentMessage::ResetDone).await,
            Err(e) => {
                tracing::error!(error = %e, "reset over the link failed");
                self.error(
                    ErrorKind::Internal,
                    "the speaker could not delete its stored account",
                )
                .await
            }
        }
    }

    async fn progress(&mut self, session_id: SessionId, stage: ProgressStage) -> bool {
        self.send(&AgentMessage::Progress(Progress { session_id, stage }))
            .await
    }

    /// [`Self::progress`] while holding the exchange lock (`_locked`): within
    /// [`LOCKED_SEND_TIMEOUT`]. `false`: the companion cannot hear the result either, so the
    /// handover ends as a broken link.
    async fn locked_progress(
        &mut self,
        _locked: &MutexGuard<'_, ()>,
        session_id: SessionId,
        stage: ProgressStage,
    ) -> bool {
        let msg = AgentMessage::Progress(Progress { session_id, stage });
        self.send_within(LOCKED_SEND_TIMEOUT, &msg).await
    }

    async fn provide(&mut self, pa: ProvideAuthorization) -> bool {
        let session_id = pa.session_id;
        let outcome = self.exchange(pa).await;
        if self.broken {
            // Its result cannot reach the companion (see `send_within`); nothing was stored.
            tracing::info!(%session_id, "authorization handover ended: the link broke; closing without a result");
            return false;
        }
        let linked = matches!(outcome, AuthResult::Linked { .. });
        if let AuthResult::KeptCurrent { timed_out, .. } = &outcome {
            tracing::info!(
                timed_out,
                "account switch not confirmed; the linked account is kept"
            );
        }
        if let AuthResult::Failed { failure, .. } = &outcome {
            tracing::warn!(
                class = ?failure.class,
                error = %failure.error,
                lwa_error = failure.lwa_error.as_deref().unwrap_or("-"),
                "authorization handover failed"
            );
        }
        if linked {
            // The tokens are stored: the speaker is linked, whether or not the companion hears
            // so. Closing the window only on delivery left a linked speaker open (and
            // advertising) when the companion went away as the result reached it.
            self.ctx.pairing.on_linked();
        }
        let delivered = self.send(&AgentMessage::AuthResult(outcome)).await;
        if linked {
            tracing::info!(%session_id, delivered, "linked");
        }
        delivered
    }

    /// The handover, in order: check it may link, take the exchange lock and check again,
    /// redeem the code, ask who signed in, ask the companion about a switch (without the lock,
    /// and check again after taking it back), store. Progress sent under the lock goes out
    /// within [`LOCKED_SEND_TIMEOUT`], or the handover ends as a broken link.
    async fn exchange(&mut self, pa: ProvideAuthorization) -> AuthResult {
        let session_id = pa.session_id;
        if let Some(refused) = self.refusal(session_id) {
            return refused;
        }
        if !matches!(&self.pkce, Some((sid, _)) if *sid == session_id) {
            return failed(
                session_id,
                AuthFailureClass::UnknownSession,
                AuthError::InvalidRequest,
                "this session id was not issued on this connection: ask for device info again and log in again",
            );
        }
        if !self.progress(session_id, ProgressStage::Received).await
            || !self
                .progress(session_id, ProgressStage::ExchangingCode)
                .await
        {
            return link_broke(session_id);
        }
        let mut one_at_a_time = self.ctx.exchange_lock.lock().await;
        // Another companion may have linked while this one waited for the lock, or the window
        // closed: then the code is not redeemed.
        if let Some(refused) = self.refusal(session_id) {
            return refused;
        }
        let grant = match self.redeem(&pa).await {
            Ok(grant) => grant,
            Err(failed) => return failed,
        };
        if !self
            .locked_progress(&one_at_a_time, session_id, ProgressStage::FetchingProfile)
            .await
        {
            // `grant` drops here: the new tokens are zeroized, never stored.
            return link_broke(session_id);
        }
        let account = self.who_signed_in(&grant.access_token).await;
        if let Some((current, new)) = self.switch_question(account.as_ref()) {
            // The answer may take `switch_answer_timeout` (2 min): the lock is free meanwhile, so
            // a companion that stalls on the question cannot keep another (the owner's) from
            // linking. Whatever happened meanwhile is checked again under the lock.
            drop(one_at_a_time);
            if let Some(kept) = self.ask_switch(session_id, current, new).await {
                // `grant` drops here: the new tokens are zeroized, never stored.
                return kept;
            }
            one_at_a_time = self.ctx.exchange_lock.lock().await;
            if let Some(refused) = self.refusal(session_id) {
                return refused;
            }
        }
        let outcome = self
            .store(&one_at_a_time, session_id, grant, &pa.client_id, account)
            .await;
        drop(one_at_a_time);
        outcome
    }

    /// Redeems the companion's code with this connection's verifier (the caller holds the
    /// exchange lock). The verifier is dropped once the code is redeemed: it has done its job.
    async fn redeem(&mut self, pa: &ProvideAuthorization) -> Result<TokenGrant, AuthResult> {
        let Some((_, pair)) = self.pkce.as_ref() else {
            return Err(failed(
                pa.session_id,
                AuthFailureClass::UnknownSession,
                AuthError::InvalidRequest,
                "no pairing session",
            ));
        };
        let request = TokenRequest::AuthorizationCode {
            code: &pa.authorization_code,
            redirect_uri: &pa.redirect_uri,
            client_id: &pa.client_id,
            code_verifier: &pair.verifier,
        };
        let lwa = self.ctx.delegate.lwa().clone();
        let grant = lwa
            .grant(&request, self.limits.exchange_timeout)
            .await
            .map_err(|failure| AuthResult::Failed {
                session_id: pa.session_id,
                failure: classify(&failure),
            })?;
        self.pkce = None;
        Ok(grant)
    }

    /// Who signed in, before anything is stored: a different account than the linked one is
    /// asked about first. `None` when the profile is not available (linking goes on without an
    /// account id). Name and e-mail are personal data: never logged.
    async fn who_signed_in(&mut self, access_token: &AccessToken) -> Option<AccountProfile> {
        let lwa = self.ctx.delegate.lwa().clone();
        match lwa
            .user_profile(access_token, Duration::from_secs(10))
            .await
        {
            Ok(profile) => Some(profile),
            Err(e) => {
                tracing::info!(error = %e, "profile not available; linking without an account id");
                None
            }
        }
    }

    /// Stores the new account and records the link. Only under the exchange lock (`locked`):
    /// the install and the record must not interleave with another companion's. Its progress
    /// message goes out within [`LOCKED_SEND_TIMEOUT`] or nothing is stored (a broken link).
    async fn store(
        &mut self,
        locked: &MutexGuard<'_, ()>,
        session_id: SessionId,
        grant: TokenGrant,
        client_id: &ClientId,
        account: Option<AccountProfile>,
    ) -> AuthResult {
        if !self
            .locked_progress(locked, session_id, ProgressStage::StoringTokens)
            .await
        {
            return link_broke(session_id);
        }
        if let Err(e) = self
            .ctx
            .delegate
            .install(grant, client_id.clone(), account.clone(), true)
            .await
        {
            tracing::error!(error = %e, "could not store the new account");
            return failed(
                session_id,
                AuthFailureClass::Storage,
                AuthError::InternalError,
                "the speaker could not save the tokens (storage full or read-only?); the previous account, if any, is kept",
            );
        }
        self.ctx.links.record(account.clone());
        // This connection's own link is no race it lost.
        self.links_at_info = None;
        AuthResult::Linked {
            session_id,
            user_id: account.as_ref().map(|a| a.user_id.clone()),
            account,
        }
    }

    /// `Some(failure)` when this handover may not link (any more): another companion linked
    /// the speaker after this connection's `DeviceInfo` (this one lost the race and must not
    /// replace that link; it is told who won), or the pairing window is not open. Both are
    /// class `window_closed`, which 1.1 companions know.
    fn refusal(&self, session_id: SessionId) -> Option<AuthResult> {
        let linked_by_other = match self.links_at_info {
            Some(at_info) if self.ctx.links.count() != at_info => Some(LinkedByOther {
                account: self.ctx.links.last_account(),
            }),
            _ if self.ctx.pairing.is_open() => return None,
            _ => None,
        };
        let description = match &linked_by_other {
            Some(other) => linked_by_other_text(other.account.as_ref()),
            None => WINDOW_CLOSED.to_owned(),
        };
        Some(AuthResult::Failed {
            session_id,
            failure: AuthFailure {
                class: AuthFailureClass::WindowClosed,
                error: AuthError::AuthorizationFailed,
                lwa_error: None,
                description: Some(description),
                retry_with_same_code: false,
                linked_by_other: linked_by_other.map(Box::new),
            },
        })
    }

    /// The linked account and `new`, when the companion must be asked before `new` replaces
    /// it; `None`: go ahead (no account linked, the same account, an account we cannot tell,
    /// or a companion that cannot be asked).
    fn switch_question<'n>(
        &self,
        new: Option<&'n AccountProfile>,
    ) -> Option<(AccountProfile, &'n AccountProfile)> {
        let current = self.ctx.delegate.account().and_then(|(_, a)| a)?;
        let new = new?;
        if current.same_account(new) {
            return None;
        }
        if !self.confirms_switch {
            tracing::info!("a different account signed in; this companion cannot be asked, so it replaces the linked one (protocol 1.1 behaviour)");
            return None;
        }
        Some((current, new))
    }

    /// Asks the companion whether `new` replaces `current`. `None`: the user said "replace";
    /// `Some(KeptCurrent)`: keep the old one (the answer "keep", none in time, or the link
    /// closed).
    async fn ask_switch(
        &mut self,
        session_id: SessionId,
        current: AccountProfile,
        new: &AccountProfile,
    ) -> Option<AuthResult> {
        let kept = |timed_out| {
            Some(AuthResult::KeptCurrent {
                session_id,
                account: current.clone(),
                timed_out,
            })
        };
        let question = AgentMessage::ConfirmAccountSwitch(AccountSwitch {
            session_id,
            current: current.clone(),
            new: new.clone(),
            answer_within_secs: self.limits.switch_answer_timeout.as_secs(),
        });
        if !self.send(&question).await {
            return kept(false);
        }
        let deadline = Instant::now() + self.limits.switch_answer_timeout;
        loop {
            match timeout_at(deadline, self.session.recv()).await {
                Err(_) => return kept(true),
                Ok(Ok(CompanionMessage::AccountSwitchAnswer(a))) if a.session_id == session_id => {
                    return if a.replace { None } else { kept(false) };
                }
                Ok(Ok(other)) => {
                    tracing::info!(message = %other.type_name(), "expected the account switch answer");
                    if !self
                        .error(
                            ErrorKind::UnexpectedMessage,
                            "the speaker is waiting for the answer to its account switch question",
                        )
                        .await
                    {
                        return kept(false);
                    }
                }
                // Gone, or garbled: nobody said "replace".
                Ok(Err(_)) => return kept(false),
            }
        }
    }
}

/// A handover that failed for `class`; resending the same code cannot help.
fn failed(
    session_id: SessionId,
    class: AuthFailureClass,
    error: AuthError,
    description: &str,
) -> AuthResult {
    AuthResult::Failed {
        session_id,
        failure: AuthFailure {
            class,
            error,
            lwa_error: None,
            description: Some(description.to_owned()),
            retry_with_same_code: false,
            linked_by_other: None,
        },
    }
}

/// The link broke during the handover (a progress message could not be sent). Never sent:
/// the session is broken then, and [`LinkSession::provide`] closes it without a result.
fn link_broke(session_id: SessionId) -> AuthResult {
    failed(
        session_id,
        AuthFailureClass::Internal,
        AuthError::InternalError,
        "the link broke",
    )
}

/// What the loser of a race between two companions is told.
pub fn linked_by_other_text(account: Option<&AccountProfile>) -> String {
    match account {
        Some(a) => format!(
            "another companion linked this speaker a moment ago (to {})",
            a.short()
        ),
        None => "another companion linked this speaker a moment ago".to_owned(),
    }
}

const NO_QUESTION: &str = "the speaker asked nothing that this message answers";

/// The answer to a message only the speaker sends (or a companion's unsolicited error).
const SENT_BY_US: &str = "that message is sent by the speaker, not to it";

const WINDOW_CLOSED: &str =
    "the speaker's pairing window is closed: open it on the speaker (avs-device-agent pair, or its pairing button) and try again";

/// Maps an exchange failure to what the companion shows.
pub fn classify(failure: &LwaFailure) -> AuthFailure {
    let error = failure.auth_error();
    let lwa_error = failure.lwa_body().map(|b| b.error.clone());
    let lwa_desc = failure.lwa_body().and_then(|b| b.error_description.clone());
    let (class, hint, retry) = match failure {
        LwaFailure::Unreachable(_) => (
            AuthFailureClass::Unreachable,
            "the speaker could not reach Login with Amazon (network, DNS or TLS); the code is still valid for a few minutes: check the speaker's network and send it again".to_owned(),
            true,
        ),
        LwaFailure::Timeout(d) => (
            AuthFailureClass::Unreachable,
            format!("Login with Amazon did not answer within {} s; send the same code again", d.as_secs()),
            true,
        ),
        LwaFailure::BadResponse(why) => (
            AuthFailureClass::BadResponse,
            format!("Login with Amazon's answer could not be understood: {why}"),
            false,
        ),
        LwaFailure::NoRefreshToken => (
            AuthFailureClass::InvalidClient,
            crate::lwa_client::NO_REFRESH_TOKEN.to_owned(),
            false,
        ),
        LwaFailure::Rejected { status, error, .. } => match error {
            AuthError::AuthorizationExpired => (
                AuthFailureClass::InvalidGrant,
                "Login with Amazon refused the authorization code: it expired (5 minutes), was already used, or the redirect URI / client id differ from the login's; log in again".to_owned(),
                false,
            ),
            AuthError::InvalidValue | AuthError::UnauthorizedClient | AuthError::AuthorizationFailed => (
                AuthFailureClass::InvalidClient,
                "Login with Amazon does not accept this client id for this product: check the security profile's client id and allowed return URLs".to_owned(),
                false,
            ),
            AuthError::InvalidRequest | AuthError::UnsupportedGrantType => (
                AuthFailureClass::InvalidRequest,
                "Login with Amazon rejected the request's parameters".to_owned(),
                false,
            ),
            AuthError::ServerError => (
                AuthFailureClass::ServerError,
                "Login with Amazon had a server error; send the same code again in a moment".to_owned(),
                true,
            ),
            _ if *status >= 500 || *status == 429 => (
                AuthFailureClass::ServerError,
                format!("Login with Amazon answered HTTP {status}; send the same code again in a moment"),
                true,
            ),
            _ => (
                AuthFailureClass::BadResponse,
                format!("Login with Amazon answered HTTP {status} with an unexpected error"),
                false,
            ),
        },
    };
    let description = match lwa_desc {
        Some(d) => format!("{hint} (LWA: {d})"),
        None => hint,
    };
    AuthFailure {
        class,
        error,
        lwa_error,
        description: Some(description),
        retry_with_same_code: retry,
        linked_by_other: None,
    }
}
