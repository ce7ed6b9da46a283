//! Process-wide record of everything the harness created, for the exits where `Drop` never runs.
//!
//! Drop guards clean up on a normal return and on a panic (unwinding runs them). They do not run
//! when the process is interrupted by Ctrl-C, `SIGTERM` or a closed terminal: the default action
//! of those signals ends the process on the spot, leaving network namespaces, child processes and
//! temp dirs behind. So every resource is also entered here while it lives, and a signal thread
//! (installed once, by the first resource) removes whatever is still registered and then exits
//! with the conventional `128 + signal` status.
//!
//! Owners release their entry after cleaning up themselves, so the registry only ever holds what
//! is still alive.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Something to remove on interrupt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A child process: `SIGTERM`, a short grace period, then `SIGKILL`.
    Process(u32),
    /// A network namespace: `ip netns del`.
    Namespace(String),
    /// A directory: removed recursively.
    Dir(PathBuf),
}

/// A registered resource; hand it back with [`release`] once the owner has cleaned up.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "release the token when the resource is gone"]
pub struct Token(u64);

#[derive(Default)]
struct Registry {
    next: u64,
    items: BTreeMap<u64, Resource>,
    /// Set by [`cleanup_all`]: nothing new may outlive it.
    closing: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    items: BTreeMap::new(),
    closing: false,
});
static HANDLER: Once = Once::new();

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves consistent data (inserts and removes are atomic).
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a resource and makes sure the signal handler is installed. If an interrupt is
/// already being cleaned up, the resource is removed at once instead (it was created while the
/// cleanup ran, and the process is about to exit).
pub fn register(resource: Resource) -> Token {
    install_signal_handler();
    let mut reg = registry();
    if reg.closing {
        drop(reg);
        remove(&[resource]);
        return Token(0);
    }
    reg.next += 1;
    let id = reg.next;
    reg.items.insert(id, resource);
    Token(id)
}

/// Forgets a resource (its owner removed it).
pub fn release(token: Token) {
    registry().items.remove(&token.0);
}

/// What is still registered (for tests of the harness itself).
pub fn registered() -> Vec<Resource> {
    registry().items.values().cloned().collect()
}

/// The signal being handled, 0 when none.
static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// Held by the cleanup thread from the moment it takes a signal until the process exits.
static INTERRUPT: Mutex<()> = Mutex::new(());

/// When a signal is being handled, waits for its cleanup to end the process (128 + signal) and
/// never returns. Call it before reporting a failure: the interrupt's own teardown (killed
/// children) must not turn into a different error and exit code.
pub fn exit_if_interrupted() {
    let sig = INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst);
    if sig != 0 {
        let _wait = INTERRUPT.lock().unwrap_or_else(|e| e.into_inner());
        std::process::exit(128 + sig);
    }
}

/// Installs the `SIGINT`/`SIGTERM`/`SIGHUP` handler once per process. Called by [`register`];
/// public so a binary can install it before it creates anything.
pub fn install_signal_handler() {
    HANDLER.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("avs-pair harness: cannot install the signal handler ({e}); an interrupt may leave namespaces behind");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("avsp-cleanup".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Held until the process exits, so `exit_if_interrupted` waits for the end
                    // of the cleanup instead of racing it with another exit code.
                    let _handling = INTERRUPT.lock().unwrap_or_else(|e| e.into_inner());
                    INTERRUPTED.store(sig, std::sync::atomic::Ordering::SeqCst);
                    eprintln!("\ninterrupted (signal {sig}): removing the test network, processes and temp files…");
                    cleanup_all();
                    std::process::exit(128 + sig);
                }
            });
        if let Err(e) = spawned {
            eprintln!("avs-pair harness: cannot start the cleanup thread ({e})");
        }
    });
}

/// Removes everything still registered: processes first (a namespace with a live process in it
/// would outlive `ip netns del`), then namespaces, then directories.
pub fn cleanup_all() {
    let items: Vec<Resource> = {
        let mut reg = registry();
        reg.closing = true;
        std::mem::take(&mut reg.items).into_values().collect()
    };
    remove(&items);
}

fn remove(items: &[Resource]) {
    let pids: Vec<u32> = items
        .iter()
        .filter_map(|r| match r {
            Resource::Process(pid) => Some(*pid),
            _ => None,
        })
        .collect();
    terminate_pids(&pids, Duration::from_millis(1500));
    for r in items {
        if let Resource::Namespace(name) = r {
            crate::netns::delete_namespace(name);
        }
    }
    for r in items {
        if let Resource::Dir(dir) = r {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `SIGTERM` to each pid, wait up to `grace` for them to exit, `SIGKILL` the rest. Works on pids
/// we cannot `wait()` for (the signal path has no `Child` handles): a zombie counts as exited.
pub fn terminate_pids(pids: &[u32], grace: Duration) {
    let live: Vec<Pid> = pids
        .iter()
        .filter_map(|p| i32::try_from(*p).ok())
        .map(Pid::from_raw)
        .filter(|p| is_running(*p))
        .collect();
    for pid in &live {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| is_running(*p)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in live.iter().filter(|p| is_running(**p)) {
        let _ = kill(*pid, Signal::SIGKILL);
    }
}

/// True when the process exists and is not a zombie.
pub fn is_running(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}
