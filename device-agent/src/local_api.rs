//! The local API: a Unix socket (mode 0660) speaking line-delimited JSON, for the AVS client
//! on the same speaker and for the CLI verbs.
//!
//! One JSON object per line each way. Requests carry `"op"`; answers carry `"type"`:
//!
//! | request | answer(s) |
//! |---|---|
//! | `{"op":"token"}` | `{"type":"token","access_token":…,"expires_in_secs":…}` or `error` |
//! | `{"op":"auth_failure","token":…}` | `ok` (AVS said 403: refresh now) |
//! | `{"op":"subscribe"}` | `auth_state` now, then on every change and every new token, until the client hangs up |
//! | `{"op":"status"}` | `status` |
//! | `{"op":"pair"}` | `window` or `error` (locked out) |
//! | `{"op":"reset"}` | `ok` |
//! | `{"op":"check"}` | `check` (AVS `/ping` with the current token) |
//! | `{"op":"cbl"}` | `cbl_prompt`, later `ok` or `error` |
//!
//! Access to the socket is access to the token: the socket is 0660, owned by the agent's user
//! and group, so only the AVS client's group can connect. Beyond the file mode, each peer is
//! identified by `SO_PEERCRED` ([`access`]): `pair`, `reset` and `cbl` need root or the agent's
//! own uid; members of `api_group` get `token`, `status`, `subscribe`, `auth_failure` and
//! `check`. Subscriptions and request/response calls have separate budgets, each uid a share,
//! and a subscriber that hangs up frees its place at once. `auth_failure` acts only for the
//! current token, at most [`AUTH_FAILURE_BURST`] times per [`AUTH_FAILURE_INTERVAL`].

mod access;
mod line;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::PairingWindow;
use shared_protocol::secret::AccessToken;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

use crate::auth_delegate::AccountError;
use crate::cbl::CblPrompt;
pub use crate::core::StatusReport;
use crate::core::{CblRunError, Core};
use crate::lwa_client::PingOutcome;
use crate::pairing::OpenError;
use line::LineReader;

/// The `token` answer while no account is held.
pub const NOT_LINKED: &str =
    "not linked yet: pair from the companion or run `avs-device-agent cbl`";
/// Longest request line.
pub const MAX_LINE: usize = 16 * 1024;
pub use access::{Policy, Role, MAX_CLIENTS, MAX_PER_UID, MAX_SUBSCRIBERS};
/// `auth_failure` starts at most [`AUTH_FAILURE_BURST`] refreshes per this window.
pub const AUTH_FAILURE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// Refreshes `auth_failure` may start within [`AUTH_FAILURE_INTERVAL`].
pub const AUTH_FAILURE_BURST: usize = 3;
/// Default `api_group`.
pub const DEFAULT_API_GROUP: &str = "avs-agent";
/// A client must send its request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ApiRequest {
    /// The current access token.
    Token,
    /// AVS refused this token.
    AuthFailure {
        /// The refused token.
        token: AccessToken,
    },
    /// Stream auth state changes.
    Subscribe,
    /// Agent status.
    Status,
    /// Open the pairing window.
    Pair,
    /// Forget the account.
    Reset,
    /// Ping AVS with the current token.
    Check,
    /// Run code-based linking.
    Cbl,
}

/// An answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiResponse {
    /// The current token.
    Token {
        /// The token (secret).
        access_token: AccessToken,
        /// Seconds until it expires.
        expires_in_secs: u64,
    },
    /// Auth state (subscribe).
    AuthState {
        /// The SDK auth state now.
        state: AuthState,
        /// The SDK error code of the last failure (`SUCCESS` when none).
        error: AuthError,
        /// How many access tokens the agent has published since it started: a line whose
        /// `token_gen` differs from the last one means "fetch the token again", also when the
        /// state stayed `REFRESHED` (a refresh swapped the token). Not the token itself; absent
        /// from agents before it existed (read as 0).
        #[serde(default)]
        token_gen: u64,
    },
    /// The agent's status (`status`).
    Status(StatusReport),
    /// The pairing window after `pair`.
    Window {
        /// The window.
        window: PairingWindow,
    },
    /// AVS ping result.
    Check {
        /// True when AVS accepted the token.
        ok: bool,
        /// What happened.
        message: String,
    },
    /// CBL: what to tell the user.
    CblPrompt(CblPrompt),
    /// The request was carried out.
    Ok {
        /// What was done.
        message: String,
    },
    /// The request failed.
    Error {
        /// What kind of failure, for clients that act on it (absent from agents before it
        /// existed: read as [`ApiErrorKind::Other`]).
        #[serde(default)]
        kind: ApiErrorKind,
        /// What went wrong and what to do, for people.
        message: String,
    },
}

impl ApiResponse {
    fn error(kind: ApiErrorKind, message: impl std::fmt::Display) -> Self {
        ApiResponse::Error {
            kind,
            message: message.to_string(),
        }
    }
}

/// The kinds of `error` answers. New kinds may appear; a client reads one it does not know as
/// [`ApiErrorKind::Other`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    /// The request line was too long or not a request.
    BadRequest,
    /// There is no valid access token now (unpaired, or refreshing failed); `status` says why.
    NoToken,
    /// The pairing window is locked after too many wrong setup codes.
    LockedOut,
    /// The speaker could not write its state (token store, pairing counter).
    Storage,
    /// Code-based linking is not configured (no `client_id`).
    CblNotConfigured,
    /// Code-based linking is already running.
    CblBusy,
    /// Code-based linking ran and failed (expired, refused, LWA unreachable).
    CblFailed,
    /// The agent is shutting down.
    Stopped,
    /// Too many connections (in all, of this kind, or of this user); try again shortly.
    Busy,
    /// This user may not make this request (`pair`, `reset`, `cbl` need root or the agent's
    /// user; everything needs at least the `api_group`).
    Forbidden,
    /// A kind this client does not know.
    #[default]
    #[serde(other)]
    Other,
}

/// Why [`call`] could not complete.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The socket refused or does not exist.
    #[error("cannot connect to the agent at {}: {source} (is avs-device-agent run going, and may this user use its socket?)", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[source] serde_json::Error),
    /// Writing the request failed.
    #[error("cannot send the request to the agent: {0}")]
    Send(#[source] std::io::Error),
    /// Reading an answer failed (or a line was too long).
    #[error("bad answer from the agent: {0}")]
    Read(#[source] std::io::Error),
    /// An answer was not JSON of the expected shape.
    #[error("bad answer from the agent: {0}")]
    Parse(#[source] serde_json::Error),
}

/// Binds the socket (removing a stale one) with mode 0660.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // A live agent answers; a stale socket file refuses.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another agent is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves the socket until shutdown with the default `api_group`; removes the socket file at
/// the end.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(
        listener,
        path,
        core,
        Policy::new(DEFAULT_API_GROUP),
        shutdown,
    )
    .await
}

/// The limits and state every connection shares.
#[derive(Debug)]
struct Shared {
    subscribers: Arc<Semaphore>,
    /// When `auth_failure` started its recent refreshes.
    auth_failures: std::sync::Mutex<std::collections::VecDeque<tokio::time::Instant>>,
}

/// [`serve`] with an explicit access policy.
pub async fn serve_with(
    listener: UnixListener,
    path: PathBuf,
    core: Arc<Core>,
    policy: Policy,
    mut shutdown: watch::Receiver<bool>,
) {
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    let per_uid = access::PerUid::default();
    let shared = Arc::new(Shared {
        subscribers: Arc::new(Semaphore::new(MAX_SUBSCRIBERS)),
        auth_failures: std::sync::Mutex::new(std::collections::VecDeque::new()),
    });
    // Refusals are answered by short tasks, themselves bounded.
    let refusals = Arc::new(Semaphore::new(16));
    loop {
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "local API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let (uid, role) = policy.classify(&stream);
        let (role, uid_slot, permit) = match admit(uid, role, &per_uid, &clients) {
            Ok(a) => a,
            Err((kind, message)) => {
                tracing::warn!(uid, ?kind, "local API: refusing a connection");
                if let Ok(r) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(refuse(stream, kind, message, r));
                }
                continue;
            }
        };
        let core = core.clone();
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = handle(stream, &core, role, permit, &shared) => {}
                _ = stop.changed() => {}
            }
            drop(uid_slot);
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// A connection's places: its role allows the socket at all, then a place in its uid's share,
/// then one of the request/response places; otherwise why not.
fn admit(
    uid: u32,
    role: Option<Role>,
    per_uid: &access::PerUid,
    clients: &Arc<Semaphore>,
) -> Result<(Role, access::UidSlot, tokio::sync::OwnedSemaphorePermit), (ApiErrorKind, &'static str)>
{
    let Some(role) = role else {
        return Err((
            ApiErrorKind::Forbidden,
            "this user may not use the agent's socket (join its api_group)",
        ));
    };
    let Some(uid_slot) = per_uid.acquire(uid) else {
        return Err((
            ApiErrorKind::Busy,
            "this user holds too many connections to the agent; close some",
        ));
    };
    match clients.clone().try_acquire_owned() {
        Ok(permit) => Ok((role, uid_slot, permit)),
        Err(_) => Err((
            ApiErrorKind::Busy,
            "the agent has too many clients; try again in a moment",
        )),
    }
}

/// Answers a refused connection's request with `Error{kind, message}`, a second at most for
/// each way; `_place` is one of the bounded refusal places.
async fn refuse(
    stream: UnixStream,
    kind: ApiErrorKind,
    message: &'static str,
    _place: tokio::sync::OwnedSemaphorePermit,
) {
    let (rd, mut w) = stream.into_split();
    // Take the request first, so the close does not reset the connection under the answer.
    // It may carry a token: the reader wipes it on every path, also when reading it failed
    // half-way or took too long.
    let mut reader = LineReader::new(rd, MAX_LINE);
    let _ = timeout(Duration::from_secs(1), reader.next_line("request", |_| ())).await;
    drop(reader);
    let _ = timeout(
        Duration::from_secs(1),
        write(&mut w, &ApiResponse::error(kind, message)),
    )
    .await;
}

async fn write(w: &mut tokio::net::unix::OwnedWriteHalf, resp: &ApiResponse) -> bool {
    // An answer may carry a token: encoded without partial copies, wiped on drop.
    let Ok(line) = line::encode_line(resp, MAX_LINE) else {
        return false;
    };
    matches!(
        timeout(REQUEST_TIMEOUT, w.write_all(&line)).await,
        Ok(Ok(()))
    )
}

/// One client: requests and answers until it hangs up, says nothing for [`REQUEST_TIMEOUT`],
/// sends a line too long, or subscribes (then the subscription is all it gets).
async fn handle(
    stream: UnixStream,
    core: &Core,
    role: Role,
    permit: tokio::sync::OwnedSemaphorePermit,
    shared: &Shared,
) {
    let (r, mut w) = stream.into_split();
    // Both ends read lines through a LineReader ([`line`]): bounded by MAX_LINE, and wiped.
    let mut reader = LineReader::new(r, MAX_LINE);
    loop {
        let req = match next_request(&mut reader, &mut w).await {
            Next::Request(req) => req,
            Next::Answered => continue,
            Next::Over => return,
        };
        if let ApiRequest::Subscribe = req {
            return subscribe_instead(permit, core, shared, &mut reader, &mut w).await;
        }
        if !answer(req, &mut w, core, role, shared).await {
            return;
        }
    }
}

/// What the client's next line gave.
enum Next {
    /// A request to answer.
    Request(ApiRequest),
    /// A line that is no request, answered with `bad_request`.
    Answered,
    /// The connection is over: the client hung up or was too slow, its line was too long
    /// (answered), or an answer could not be written.
    Over,
}

async fn next_request(
    reader: &mut LineReader<tokio::net::unix::OwnedReadHalf>,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) -> Next {
    // The line may carry a token (`auth_failure`): parsed in the reader's buffer and wiped
    // there as soon as it is parsed; a line cut off for its length or its time is wiped too.
    let read = timeout(
        REQUEST_TIMEOUT,
        reader.next_line("request", |l| serde_json::from_slice::<ApiRequest>(l)),
    )
    .await;
    let parsed = match read {
        Ok(Ok(Some(parsed))) => parsed,
        Ok(Ok(None)) => return Next::Over,
        Ok(Err(e)) => {
            let _ = write(w, &ApiResponse::error(ApiErrorKind::BadRequest, e)).await;
            return Next::Over;
        }
        Err(_) => return Next::Over,
    };
    match parsed {
        Ok(req) => Next::Request(req),
        Err(e) => {
            let message = format!(
                "not a request (line {} column {}): expected {{\"op\":\"token\"}} etc.",
                e.line(),
                e.column()
            );
            let bad = ApiResponse::error(ApiErrorKind::BadRequest, message);
            if write(w, &bad).await {
                Next::Answered
            } else {
                Next::Over
            }
        }
    }
}

/// `subscribe`: the connection trades its request/response place (`permit`) for a subscriber
/// place, or is told the subscribers are too many.
async fn subscribe_instead(
    permit: tokio::sync::OwnedSemaphorePermit,
    core: &Core,
    shared: &Shared,
    reader: &mut LineReader<tokio::net::unix::OwnedReadHalf>,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) {
    let Ok(sub) = shared.subscribers.clone().try_acquire_owned() else {
        let _ = write(
            w,
            &ApiResponse::error(
                ApiErrorKind::Busy,
                "the agent has too many subscribers; try again in a moment",
            ),
        )
        .await;
        return;
    };
    drop(permit);
    subscribe(&core.delegate, reader, w).await;
    drop(sub);
}

async fn answer(
    req: ApiRequest,
    w: &mut tokio::net::unix::OwnedWriteHalf,
    core: &Core,
    role: Role,
    shared: &Shared,
) -> bool {
    if let Some(forbidden) = forbidden(&req, role) {
        return write(w, &forbidden).await;
    }
    let delegate = &core.delegate;
    let resp = match req {
        ApiRequest::Token => token(delegate),
        ApiRequest::AuthFailure { token } => ApiResponse::Ok {
            message: auth_failure(&token, delegate, shared).into(),
        },
        // Handled before (it changes the connection's budget).
        ApiRequest::Subscribe => return false,
        ApiRequest::Status => ApiResponse::Status(core.status_report()),
        ApiRequest::Pair => pair(core),
        ApiRequest::Reset => reset(delegate).await,
        ApiRequest::Check => check(delegate).await,
        // Streams more than one answer.
        ApiRequest::Cbl => return cbl(core, w).await,
    };
    write(w, &resp).await
}

/// The answer to a request `role` may not make: `pair`, `reset` and `cbl` are for admins only.
fn forbidden(req: &ApiRequest, role: Role) -> Option<ApiResponse> {
    let admin_only = matches!(req, ApiRequest::Pair | ApiRequest::Reset | ApiRequest::Cbl);
    (role != Role::Admin && admin_only).then(|| {
        ApiResponse::error(
            ApiErrorKind::Forbidden,
            "pair, reset and cbl change who the speaker belongs to: run them as root or as the \
             agent's user",
        )
    })
}

/// `token`: the current access token and its lifetime, or why there is none.
fn token(delegate: &crate::auth_delegate::AuthDelegate) -> ApiResponse {
    match delegate.auth_token().map(|t| t.to_parts()) {
        Some((token, expires_at)) => ApiResponse::Token {
            access_token: token,
            expires_in_secs: expires_at
                .saturating_duration_since(tokio::time::Instant::now())
                .as_secs(),
        },
        None if !delegate.is_paired() => ApiResponse::error(ApiErrorKind::NoToken, NOT_LINKED),
        None => {
            let st = delegate.status().state;
            ApiResponse::error(
                ApiErrorKind::NoToken,
                format!("no valid access token: {} ({st})", st.in_words()),
            )
        }
    }
}

/// `auth_failure`: starts a refresh when `token` is the current one, at most
/// [`AUTH_FAILURE_BURST`] times per [`AUTH_FAILURE_INTERVAL`]; the words say what happened.
fn auth_failure(
    token: &AccessToken,
    delegate: &crate::auth_delegate::AuthDelegate,
    shared: &Shared,
) -> &'static str {
    let current = delegate
        .auth_token()
        .is_some_and(|t| !token.is_empty() && t.to_parts().0 == *token);
    if !current {
        return "ignored: that is not the current token (ask for `token` again)";
    }
    let now = tokio::time::Instant::now();
    let mut recent = match shared.auth_failures.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    // Forget the requests that have left the window, then count the rest.
    while recent
        .front()
        .is_some_and(|at| now.duration_since(*at) >= AUTH_FAILURE_INTERVAL)
    {
        recent.pop_front();
    }
    if recent.len() >= AUTH_FAILURE_BURST {
        "too many refreshes requested lately; the token is refreshed on its schedule"
    } else {
        recent.push_back(now);
        delegate.on_auth_failure(token);
        "refresh requested"
    }
}

/// `pair`: opens the pairing window.
fn pair(core: &Core) -> ApiResponse {
    match core.pairing.open() {
        Ok(window) => ApiResponse::Window { window },
        Err(e @ OpenError::LockedOut { .. }) => ApiResponse::error(ApiErrorKind::LockedOut, e),
        Err(e @ OpenError::Storage(_)) => ApiResponse::error(ApiErrorKind::Storage, e),
    }
}

/// `reset`: forgets the account.
async fn reset(delegate: &crate::auth_delegate::AuthDelegate) -> ApiResponse {
    match delegate.clear_data().await {
        Ok(()) => ApiResponse::Ok {
            message: "account forgotten; the speaker is unpaired".into(),
        },
        Err(e @ AccountError::Store(_)) => ApiResponse::error(ApiErrorKind::Storage, e),
        Err(e @ AccountError::Stopped(_)) => ApiResponse::error(ApiErrorKind::Stopped, e),
    }
}

/// `subscribe`: one `auth_state` line now, then one on every change of `(state, error)` and one
/// for every new access token (a refresh that keeps the state `REFRESHED` changes nothing else,
/// and a client holding the old token must hear of it). Both watches are read after each wake,
/// so a state change and its token usually come as one line; a line may repeat the state.
/// Ends when the client hangs up (its EOF frees the place at once) or sends anything.
async fn subscribe(
    delegate: &crate::auth_delegate::AuthDelegate,
    reader: &mut LineReader<tokio::net::unix::OwnedReadHalf>,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) -> bool {
    let mut states = delegate.subscribe();
    let mut tokens = delegate.subscribe_tokens();
    loop {
        tokio::select! {
            r = states.changed() => if r.is_err() { return false },
            r = tokens.changed() => if r.is_err() { return false },
            // EOF, an error or any input: the subscription is over.
            () = reader.input_or_end() => return false,
        }
        let s = *states.borrow_and_update();
        let token_gen = *tokens.borrow_and_update();
        let line = ApiResponse::AuthState {
            state: s.state,
            error: s.error,
            token_gen,
        };
        if !write(w, &line).await {
            return false;
        }
    }
}

/// `check`: AVS `/ping` with the current token; a 403 starts a refresh at once.
async fn check(delegate: &crate::auth_delegate::AuthDelegate) -> ApiResponse {
    match delegate.auth_token().map(|t| t.to_parts()) {
        None => ApiResponse::Check {
            ok: false,
            message: format!(
                "no valid access token (auth state {})",
                delegate.status().state
            ),
        },
        Some((token, _)) => match delegate.lwa().ping(&token, Duration::from_secs(30)).await {
            Ok(PingOutcome::Ok) => ApiResponse::Check {
                ok: true,
                message: "AVS accepted the token (ping 204)".into(),
            },
            Ok(PingOutcome::Forbidden) => {
                delegate.on_auth_failure(&token);
                ApiResponse::Check {
                    ok: false,
                    message: "AVS refused the token (403); a refresh was started".into(),
                }
            }
            Ok(PingOutcome::Other(status)) => ApiResponse::Check {
                ok: false,
                message: format!("AVS answered HTTP {status}"),
            },
            Err(e) => ApiResponse::Check {
                ok: false,
                message: e.to_string(),
            },
        },
    }
}

/// `cbl`: streams the prompt, then the outcome; linking goes on if the client leaves.
async fn cbl(core: &Core, w: &mut tokio::net::unix::OwnedWriteHalf) -> bool {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<CblPrompt>(1);
    let run = core.run_cbl(move |p| {
        let _ = tx.try_send(p.clone());
    });
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            Some(p) = rx.recv() => {
                if !write(w, &ApiResponse::CblPrompt(p)).await {
                    // The client left; linking goes on.
                }
            }
        }
    };
    if let Ok(p) = rx.try_recv() {
        let _ = write(w, &ApiResponse::CblPrompt(p)).await;
    }
    let resp = match result {
        Ok(()) => ApiResponse::Ok {
            message: "linked with code-based linking".into(),
        },
        Err(e) => {
            let kind = match &e {
                CblRunError::NoClientId => ApiErrorKind::CblNotConfigured,
                CblRunError::AlreadyRunning => ApiErrorKind::CblBusy,
                CblRunError::Failed(_) => ApiErrorKind::CblFailed,
            };
            ApiResponse::error(kind, e)
        }
    };
    write(w, &resp).await
}

/// Sends one request and collects answers until `last` says stop (client side of the CLI).
pub async fn call(
    socket: &Path,
    req: &ApiRequest,
    mut each: impl FnMut(&ApiResponse) -> bool,
) -> Result<(), CallError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| CallError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
    let (r, mut w) = stream.into_split();
    // A request may carry a token (`auth_failure`): encoded without partial copies.
    let line = line::encode_line(req, MAX_LINE).map_err(CallError::Encode)?;
    w.write_all(&line).await.map_err(CallError::Send)?;
    drop(line);
    let mut reader = LineReader::new(r, MAX_LINE);
    loop {
        // An answer may carry a token: parsed in the reader's buffer and wiped there, on every
        // path, also one cut off half-way.
        let parsed = reader
            .next_line("answer", |l| serde_json::from_slice::<ApiResponse>(l))
            .await
            .map_err(CallError::Read)?;
        let Some(parsed) = parsed else {
            return Ok(());
        };
        let resp = parsed.map_err(CallError::Parse)?;
        if !each(&resp) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_read_by_old_and_new_clients() {
        let old = r#"{"type":"error","message":"no valid access token"}"#;
        let newer = r#"{"type":"error","kind":"kind_from_the_future","message":"m"}"#;
        for (line, kind) in [(old, ApiErrorKind::Other), (newer, ApiErrorKind::Other)] {
            match serde_json::from_str::<ApiResponse>(line).unwrap() {
                ApiResponse::Error { kind: k, .. } => assert_eq!(k, kind, "{line}"),
                other => panic!("{other:?}"),
            }
        }
        let sent =
            serde_json::to_string(&ApiResponse::error(ApiErrorKind::LockedOut, "wait")).unwrap();
        assert_eq!(
            sent,
            r#"{"type":"error","kind":"locked_out","message":"wait"}"#
        );
    }
}
