//! The local Unix-socket API: subscribe gets the current state at once and then changes;
//! bad and oversized lines get an error answer, not a crash; the socket is 0660.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{api_once, link, report_auth_failure, Stack};
use device_agent::local_api::{self, ApiRequest, ApiResponse};
use lwa_emulator::Emulator;
use shared_protocol::lwa::AuthState;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// An agent for the emulator's default product, as the local API's clients meet it, and the
/// path of its socket.
async fn stack() -> (Stack, PathBuf) {
    let stack = Stack::start(Emulator::builder(), |_| {}).await;
    let socket = stack.agent.socket_path().to_path_buf();
    (stack, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_token_and_bad_input() {
    let (stack, socket) = stack().await;
    let Stack { emu, agent, .. } = &stack;
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o660
    );

    let (sub, mut rx) = subscribe(&socket);
    let (first, _) = next(&mut rx).await;
    assert_eq!(
        first,
        AuthState::Uninitialized,
        "current state on subscribe"
    );

    let token = link(emu, agent.delegate()).await;
    let (next_state, _) = next(&mut rx).await;
    assert_eq!(next_state, AuthState::Refreshed);

    match api_once(&socket, &ApiRequest::Token).await {
        ApiResponse::Token {
            access_token,
            expires_in_secs,
        } => {
            assert_eq!(access_token, token);
            assert!(expires_in_secs > 3000);
        }
        other => panic!("{other:?}"),
    }

    // Garbage, then an oversized line: answered with errors, the agent lives on.
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"{\"op\":\"fly\"}\n").await.unwrap();
    let l = lines.next_line().await.unwrap().unwrap();
    assert!(l.contains("\"type\":\"error\""), "{l}");
    w.write_all(&vec![b'x'; local_api::MAX_LINE + 10])
        .await
        .unwrap();
    let l = lines.next_line().await.unwrap().unwrap();
    assert!(l.contains("longer than"), "{l}");
    let st = api_once(&socket, &ApiRequest::Status).await;
    assert!(matches!(st, ApiResponse::Status(s) if s.paired));

    stack.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sub).await;
    assert!(!socket.exists());
}

/// A refresh that swaps the token while the state stays `REFRESHED` is an event for
/// subscribers (the C++ client used to poll around the silence): a line with a new `token_gen`
/// and the same state, and `token` then answers the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_of_every_new_token() {
    let (stack, socket) = stack().await;
    let token = link(&stack.emu, stack.agent.delegate()).await;

    let (sub, mut rx) = subscribe(&socket);
    let (state, gen1) = next(&mut rx).await;
    assert_eq!(state, AuthState::Refreshed, "current state on subscribe");

    let current = || async {
        match api_once(&socket, &ApiRequest::Token).await {
            ApiResponse::Token { access_token, .. } => access_token,
            other => panic!("{other:?}"),
        }
    };
    let old = current().await;
    assert_eq!(old, token);

    // AVS refused the token: the agent refreshes and stays REFRESHED throughout.
    report_auth_failure(&socket, &old).await;
    let (state, gen2) = next(&mut rx).await;
    assert_eq!(state, AuthState::Refreshed, "the state did not change");
    assert!(gen2 > gen1, "a new token_gen: {gen1} -> {gen2}");
    let new = current().await;
    assert_ne!(new, old, "token answers the new token after the event");

    // A second swap is a second event.
    report_auth_failure(&socket, &new).await;
    let (state, gen3) = next(&mut rx).await;
    assert_eq!((state, gen3 > gen2), (AuthState::Refreshed, true));
    assert_ne!(current().await, new);

    stack.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), sub).await;
}

/// The `auth_state` lines of a subscription: (state, token_gen).
type AuthStates = UnboundedReceiver<(AuthState, u64)>;

/// A subscription on `socket`: the task holding it, and its lines.
fn subscribe(
    socket: &std::path::Path,
) -> (JoinHandle<Result<(), local_api::CallError>>, AuthStates) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let socket = socket.to_path_buf();
    let sub = tokio::spawn(async move {
        local_api::call(&socket, &ApiRequest::Subscribe, |r| {
            if let ApiResponse::AuthState {
                state, token_gen, ..
            } = r
            {
                let _ = tx.send((*state, *token_gen));
            }
            true
        })
        .await
    });
    (sub, rx)
}

async fn next(rx: &mut AuthStates) -> (AuthState, u64) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an auth_state line within 10 s")
        .expect("subscription open")
}

/// One request line, one answer line (None: closed without an answer, or anything failed).
async fn raw_call(socket: &std::path::Path, line: &str) -> Option<serde_json::Value> {
    let request = serde_json::from_str(line).unwrap();
    let answer = common::api_line(socket, &request, Duration::from_secs(5)).await;
    answer.ok().flatten()
}

/// Issue 12.3: forty clients subscribe and hang up; their places come back at once, so token
/// and status still answer. (On the old code each hung-up subscriber kept its place until the
/// next state change: after 32 every connection was closed unanswered -> red.) Over the
/// per-uid budget a connection gets one `busy` line before the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_hang_up_free_their_places() {
    let (stack, socket) = stack().await;
    for i in 0..40 {
        let first = raw_call(&socket, r#"{"op":"subscribe"}"#).await;
        assert_eq!(
            first.as_ref().map(|v| v["type"].clone()),
            Some("auth_state".into()),
            "subscriber {i}: {first:?}"
        );
        // Dropped here: the client hangs up without a state change.
    }
    let status = raw_call(&socket, r#"{"op":"status"}"#)
        .await
        .expect("status answers");
    assert_eq!(status["type"], "status", "{status}");
    let token = raw_call(&socket, r#"{"op":"token"}"#)
        .await
        .expect("token answers");
    assert_eq!(token["kind"], "no_token", "{token}");

    // A uid holding its whole budget: the next connection is told `busy`, then closed.
    let mut held = Vec::new();
    for _ in 0..local_api::MAX_PER_UID {
        let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
        s.write_all(b"{\"op\":\"subscribe\"}\n").await.unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        held.push(r);
    }
    let busy = raw_call(&socket, r#"{"op":"status"}"#)
        .await
        .expect("an answer, not a bare close");
    assert_eq!(
        (busy["type"].as_str(), busy["kind"].as_str()),
        (Some("error"), Some("busy")),
        "{busy}"
    );
    drop(held);
    let mut answered = None;
    for _ in 0..50 {
        answered = raw_call(&socket, r#"{"op":"status"}"#).await;
        if answered.as_ref().is_some_and(|v| v["type"] == "status") {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(answered.unwrap()["type"], "status");
    stack.shutdown().await;
}

/// Issue 12.9: as another uid (a throwaway user in a throwaway `api_group`, through setpriv),
/// status and token work but reset and pair are forbidden; a user outside the group is refused
/// outright. (On the old code any client of the socket could reset -> red.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_group_reads_tokens_but_cannot_reset_or_pair() {
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !is_root || which("setpriv").is_none() || which("useradd").is_none() {
        eprintln!("skipped: needs root, setpriv and useradd");
        return;
    }
    let tag = format!("avsq{}", std::process::id());
    let users = Throwaway::new(&tag);
    let sockdir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(sockdir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stack = Stack::start(Emulator::builder(), |cfg| {
        cfg.socket_path = sockdir.path().join("agent.sock");
        cfg.api_group = users.group.clone();
    })
    .await;
    let socket = stack.agent.socket_path().to_path_buf();
    // Past the file mode, to test the agent's own check.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let bin = env!("CARGO_BIN_EXE_avs-device-agent");
    let run_as = |user: &str, group: &str, verb: &str| {
        let out = std::process::Command::new("setpriv")
            .args([
                &format!("--reuid={user}"),
                &format!("--regid={group}"),
                "--init-groups",
                bin,
                verb,
                "--json",
                "--socket",
            ])
            .arg(&socket)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, out) = run_as(&users.member, "users", "status");
    assert_eq!(code, Some(0), "member status: {out}");
    for verb in ["reset", "pair"] {
        let (code, out) = run_as(&users.member, "users", verb);
        assert_eq!(code, Some(1), "member {verb}: {out}");
        assert!(
            out.contains(r#""kind":"forbidden""#),
            "member {verb}: {out}"
        );
    }
    let (code, out) = run_as(&users.outsider, "users", "status");
    assert_ne!(code, Some(0), "outsider status: {out}");
    assert!(out.contains(r#""kind":"forbidden""#), "outsider: {out}");
    stack.shutdown().await;
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// A throwaway group with one member and one outsider, deleted on drop (also on failure).
struct Throwaway {
    group: String,
    member: String,
    outsider: String,
}

impl Throwaway {
    fn new(tag: &str) -> Self {
        let t = Throwaway {
            group: format!("{tag}g"),
            member: format!("{tag}m"),
            outsider: format!("{tag}o"),
        };
        let ok = |args: &[&str]| {
            let st = std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .unwrap();
            assert!(st.success(), "{args:?}");
        };
        ok(&["groupadd", &t.group]);
        // No home, no group of its own, no login shell; `extra` options before the name.
        let useradd = |extra: &[&str], user: &str| {
            let mut args = vec!["useradd", "-M", "-N", "-s", "/usr/sbin/nologin"];
            args.extend_from_slice(extra);
            args.push(user);
            ok(&args);
        };
        useradd(&["-G", &t.group], &t.member);
        useradd(&[], &t.outsider);
        t
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        for u in [&self.member, &self.outsider] {
            let _ = std::process::Command::new("userdel").arg(u).status();
        }
        let _ = std::process::Command::new("groupdel")
            .arg(&self.group)
            .status();
    }
}
