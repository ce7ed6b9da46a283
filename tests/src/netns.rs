//! A virtual home network made of Linux network namespaces, for tests and the demo.
//!
//! mDNS must never run in the root network namespace of these machines (a daemon joins the
//! multicast group on every real interface before any filter applies; see
//! `shared/reference/mdns-notes.md` §2). So everything that speaks mDNS runs inside namespaces
//! this module creates, joined by veth links with private addresses it picks, and removes again:
//!
//! - two hosts (`speaker`, `laptop`): one veth pair, a /30;
//! - three or more (two speakers, a `cloud`): every host's veth ends on a bridge in a hidden
//!   `switch` namespace, a /28.
//!
//! Names are unique per process and net (`avsp-<pid>-<n>-<host>`), so test binaries can run at
//! the same time; namespaces left by a process that died without cleaning up (`SIGKILL`) are
//! swept by the next [`TestNet`] built. Inside every host the link is called [`LINK_NAME`], so
//! `mdns_interfaces = ["avs0"]` works everywhere.
//!
//! Teardown: [`TestNet`]'s `Drop` (normal end and panics) kills what still runs in its
//! namespaces and deletes them; [`crate::cleanup`] does the same on Ctrl-C/`SIGTERM`.
//!
//! Needs root and iproute2; [`TestNet::check_available`] says why not, and [`require_netns!`]
//! skips a test with that message.

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cleanup::{self, Resource, Token};
use crate::process::ManagedProcess;

/// Set (to anything) to keep a net's log dir when it is dropped during a panic (a failed
/// test), so a flake's agent and companion logs can be read afterwards; the path is printed.
/// Off by default: CI machines are thrown away, and the dirs would pile up on a developer's.
pub const KEEP_FAILED_LOGS_ENV: &str = "AVS_PAIR_KEEP_FAILED_LOGS";

/// The link's name inside every host namespace.
pub const LINK_NAME: &str = "avs0";
/// Prefix of every namespace the harness creates.
pub const NAME_PREFIX: &str = "avsp-";
/// Where `ip netns` keeps its namespace handles.
const NETNS_RUN_DIR: &str = "/run/netns";
/// The /16 the harness carves its subnets from (never routed anywhere: the namespaces have no
/// other link).
const BASE_NET: [u8; 2] = [10, 231];

static NET_COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long a new link may take to become usable.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the harness can't build namespaces here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Not running as root.
    #[error("network namespaces need root (running as uid {0}); CI runs as root")]
    NotRoot(u32),
    /// `ip` (iproute2) is missing.
    #[error("the `ip` command (iproute2) is missing: apt-get install iproute2")]
    NoIproute,
}

/// A failure while building or driving the network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The harness cannot run here.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// An `ip` command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// No host by that name.
    #[error("no host named {0:?} in this test network")]
    NoSuchHost(String),
    /// A bad builder configuration.
    #[error("bad test network: {0}")]
    Config(String),
    /// I/O (temp dir, log files, spawning).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Entering a namespace failed.
    #[error("cannot enter namespace {0}: {1}")]
    Enter(String, #[source] EnterError),
    /// Listing the interfaces failed.
    #[error("getifaddrs: {0}")]
    Interfaces(#[source] nix::errno::Errno),
    /// A host's veth end never came up and running.
    #[error("{host}: link {link} not running after {timeout:?}")]
    LinkNotRunning {
        /// The host whose namespace holds the link.
        host: String,
        /// The interface name.
        link: String,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Why a thread could not move into a namespace.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The namespace's handle under /run/netns could not be opened or read.
    #[error("{}: {source}", path.display())]
    Handle {
        /// The handle file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// setns(2) refused.
    #[error("setns: {0}")]
    Setns(#[source] nix::errno::Errno),
    /// The thread's own namespace could not be read back.
    #[error("/proc/thread-self/ns/net: {0}")]
    OwnNamespace(#[source] std::io::Error),
    /// setns returned but the thread is elsewhere.
    #[error("thread is in netns inode {have}, expected {want}")]
    Elsewhere {
        /// The inode the thread is in.
        have: u64,
        /// The namespace's inode.
        want: u64,
    },
}

/// One machine on the test network.
#[derive(Debug, Clone)]
pub struct Host {
    /// The short name (`speaker`).
    pub name: String,
    /// The namespace (`avsp-1234-0-speaker`).
    pub netns: String,
    /// Its link ([`LINK_NAME`]).
    pub link: String,
    /// Its address on the link.
    pub addr: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
}

/// Builds a [`TestNet`].
#[derive(Debug, Clone)]
pub struct NetBuilder {
    hosts: Vec<String>,
    ipv6: bool,
}

impl NetBuilder {
    /// Adds a host (namespace). Names: lowercase letters, digits, `-`; at most 20 characters.
    pub fn host(mut self, name: &str) -> Self {
        self.hosts.push(name.to_owned());
        self
    }

    /// IPv6 on the links (on by default, as at home: link-local addresses appear in mDNS
    /// answers). Off: IPv4 only.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// Creates the namespaces and links.
    pub fn build(self) -> Result<TestNet, NetError> {
        TestNet::check_available()?;
        if self.hosts.len() < 2 || self.hosts.len() > 14 {
            return Err(NetError::Config(format!(
                "2 to 14 hosts, got {}",
                self.hosts.len()
            )));
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let ok = !h.is_empty()
                && h.len() <= 20
                && h.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok || self.hosts[..i].contains(h) || h == "switch" {
                return Err(NetError::Config(format!(
                    "bad or duplicate host name {h:?}"
                )));
            }
        }
        sweep_stale();
        TestNet::create(self)
    }
}

/// The virtual network. Dropping it stops its processes and removes its namespaces.
#[derive(Debug)]
pub struct TestNet {
    id: String,
    hosts: Vec<Host>,
    switch: Option<String>,
    created: Vec<(String, Token)>,
    pids: Arc<Mutex<Vec<u32>>>,
    log_dir: Option<tempfile::TempDir>,
    log_dir_token: Option<Token>,
    log_dir_path: PathBuf,
}

impl TestNet {
    /// Root and iproute2 present?
    pub fn check_available() -> Result<(), Unavailable> {
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Err(Unavailable::NotRoot(uid.as_raw()));
        }
        let ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ip {
            Ok(s) if s.success() => Ok(()),
            _ => Err(Unavailable::NoIproute),
        }
    }

    /// A builder with no hosts.
    pub fn builder() -> NetBuilder {
        NetBuilder {
            hosts: Vec::new(),
            ipv6: true,
        }
    }

    /// The usual pair: `speaker` and `laptop` on one veth.
    pub fn speaker_and_laptop() -> Result<TestNet, NetError> {
        Self::builder().host("speaker").host("laptop").build()
    }

    fn create(b: NetBuilder) -> Result<TestNet, NetError> {
        let n = NET_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let id = format!("{NAME_PREFIX}{pid}-{n}");
        let (base, prefix_len) = pick_subnet(pid, n, b.hosts.len());
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("{id}-logs-"))
            .tempdir()?;
        let log_dir_path = log_dir.path().to_owned();
        let log_dir_token = cleanup::register(Resource::Dir(log_dir_path.clone()));
        let mut net = TestNet {
            hosts: Vec::new(),
            switch: None,
            created: Vec::new(),
            pids: Arc::default(),
            log_dir: Some(log_dir),
            log_dir_token: Some(log_dir_token),
            log_dir_path,
            id,
        };
        // From here on, an early return drops `net`, which removes what was created so far.
        for (i, name) in b.hosts.iter().enumerate() {
            let netns = format!("{}-{name}", net.id);
            net.add_namespace(&netns)?;
            let host_octet =
                u8::try_from(i + 1).map_err(|_| NetError::Config("too many hosts".into()))?;
            net.hosts.push(Host {
                name: name.clone(),
                netns,
                link: LINK_NAME.to_owned(),
                addr: Ipv4Addr::from(u32::from(base) + u32::from(host_octet)),
                prefix_len,
            });
        }
        // Links created below inherit `default`. Duplicate address detection on a fresh veth
        // keeps its IPv6 link-local address "tentative" for 1-2 s, and an mDNS daemon started
        // in that window ignores the interface until its next interface re-scan (5 s): a
        // settled home network has no such window, so the virtual one must not either.
        let mut all_ns: Vec<String> = net.hosts.iter().map(|h| h.netns.clone()).collect();
        all_ns.extend(net.switch.clone());
        for ns in &all_ns {
            let settings: &[(&str, &str)] = if b.ipv6 {
                &[
                    ("net.ipv6.conf.all.accept_dad", "0"),
                    ("net.ipv6.conf.default.accept_dad", "0"),
                ]
            } else {
                &[
                    ("net.ipv6.conf.all.disable_ipv6", "1"),
                    ("net.ipv6.conf.default.disable_ipv6", "1"),
                ]
            };
            sysctls(ns, settings)?;
        }
        if net.hosts.len() == 2 {
            let (a, b2) = (&net.hosts[0].netns, &net.hosts[1].netns);
            ip(&[
                "link", "add", LINK_NAME, "netns", a, "type", "veth", "peer", "name", LINK_NAME,
                "netns", b2,
            ])?;
        } else {
            let sw = format!("{}-switch", net.id);
            net.add_namespace(&sw)?;
            net.switch = Some(sw.clone());
            ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
            // Flood multicast to every port: mDNS must reach every host.
            ip(&[
                "-n",
                &sw,
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", &sw, "link", "set", "br0", "up"])?;
            for (i, host) in net.hosts.iter().enumerate() {
                let port = format!("p{i}");
                ip(&[
                    "link",
                    "add",
                    LINK_NAME,
                    "netns",
                    &host.netns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &port,
                    "netns",
                    &sw,
                ])?;
                ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
                ip(&["-n", &sw, "link", "set", &port, "up"])?;
            }
        }
        for host in &net.hosts {
            let ns = host.netns.as_str();
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            let cidr = format!("{}/{}", host.addr, host.prefix_len);
            ip(&["-n", ns, "addr", "add", &cidr, "dev", LINK_NAME])?;
            ip(&["-n", ns, "link", "set", LINK_NAME, "up"])?;
        }
        // `ip` reports the link up at once, but the kernel raises IFF_RUNNING (what mDNS
        // libraries check before using an interface) only when its link watcher runs, up to
        // ~1 s later. Wait for it, so a process started next sees a working network.
        let names: Vec<String> = net.hosts.iter().map(|h| h.name.clone()).collect();
        for name in names {
            net.run_in(&name, || wait_running(&name, LINK_NAME, LINK_READY_TIMEOUT))??;
        }
        Ok(net)
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), NetError> {
        ip(&["netns", "add", name])?;
        let token = cleanup::register(Resource::Namespace(name.to_owned()));
        self.created.push((name.to_owned(), token));
        Ok(())
    }

    /// This net's unique prefix (`avsp-<pid>-<n>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Result<&Host, NetError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| NetError::NoSuchHost(name.to_owned()))
    }

    /// Every namespace this net created (hosts and switch).
    pub fn namespaces(&self) -> Vec<String> {
        self.created.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Where process logs go (removed with the net unless [`TestNet::keep_logs`]).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir_path
    }

    /// Keeps the log dir after the net is dropped (e.g. when a test failed); returns its path.
    pub fn keep_logs(&mut self) -> PathBuf {
        if let Some(dir) = self.log_dir.take() {
            let _ = dir.keep();
        }
        if let Some(t) = self.log_dir_token.take() {
            cleanup::release(t);
        }
        self.log_dir_path.clone()
    }

    /// A command that will run inside `host`'s namespace (`ip netns exec`).
    pub fn command(
        &self,
        host: &str,
        program: impl AsRef<std::ffi::OsStr>,
    ) -> Result<Command, NetError> {
        let host = self.host(host)?;
        let mut cmd = Command::new("ip");
        cmd.arg("netns").arg("exec").arg(&host.netns).arg(program);
        Ok(cmd)
    }

    /// Starts `command` (from [`TestNet::command`]) with its output captured under
    /// [`TestNet::log_dir`]; the net kills it on drop if it is still running.
    pub fn spawn(&self, command: Command, label: &str) -> Result<ManagedProcess, NetError> {
        let p = ManagedProcess::spawn(command, label, self.log_dir())?;
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.pid());
        Ok(p)
    }

    /// Runs a command in `host` to completion and returns its stdout (for `ip`, `ss`, …).
    pub fn exec(&self, host: &str, program: &str, args: &[&str]) -> Result<String, NetError> {
        let mut cmd = self.command(host, program)?;
        cmd.args(args);
        run_checked(cmd)
    }

    /// Takes `host`'s link down or up (a cable pulled).
    pub fn set_link(&self, host: &str, up: bool) -> Result<(), NetError> {
        let h = self.host(host)?;
        ip(&[
            "-n",
            &h.netns,
            "link",
            "set",
            &h.link,
            if up { "up" } else { "down" },
        ])
        .map(drop)
    }

    /// Runs `f` on a fresh thread that has entered `host`'s network namespace: every socket it
    /// opens, and every thread it spawns (an mDNS daemon, a tokio runtime built inside `f`),
    /// lives in that namespace. Checked before `f` runs: if the thread is not in the namespace,
    /// `f` is never called.
    pub fn run_in<F, R>(&self, host: &str, f: F) -> Result<R, NetError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let netns = self.host(host)?.netns.clone();
        let handle_path = Path::new(NETNS_RUN_DIR).join(&netns);
        std::thread::scope(|scope| {
            let joined = std::thread::Builder::new()
                .name(format!("in-{host}"))
                .spawn_scoped(scope, move || -> Result<R, NetError> {
                    enter_namespace(&handle_path).map_err(|e| NetError::Enter(netns.clone(), e))?;
                    Ok(f())
                })?
                .join();
            match joined {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs the future `make` returns to completion on a current-thread tokio runtime inside
    /// `host`'s network namespace ([`TestNet::run_in`]): the future is built and polled on the
    /// entered thread, so every socket and mDNS daemon it opens lives in the namespace.
    pub fn block_on_in<M, F>(&self, host: &str, make: M) -> Result<F::Output, NetError>
    where
        M: FnOnce() -> F + Send,
        F: std::future::Future,
        F::Output: Send,
    {
        self.run_in(host, move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(make()))
        })?
        .map_err(NetError::from)
    }

    fn teardown(&mut self) {
        let pids: Vec<u32> =
            std::mem::take(&mut *self.pids.lock().unwrap_or_else(|e| e.into_inner()));
        cleanup::terminate_pids(&pids, Duration::from_secs(2));
        // Anything else started in our namespaces by hand (`ip netns exec` from a test).
        for (ns, _) in &self.created {
            for pid in pids_in_namespace(ns) {
                cleanup::terminate_pids(&[pid], Duration::from_millis(500));
            }
        }
        for (ns, token) in self.created.drain(..).rev() {
            delete_namespace(&ns);
            cleanup::release(token);
        }
        if std::thread::panicking() && std::env::var_os(KEEP_FAILED_LOGS_ENV).is_some() {
            let dir = self.keep_logs();
            eprintln!(
                "{KEEP_FAILED_LOGS_ENV}: the failed test's process logs are kept in {}",
                dir.display()
            );
            return;
        }
        if let Some(t) = self.log_dir_token.take() {
            cleanup::release(t);
        }
        drop(self.log_dir.take());
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Skips the calling test (returns from it) with a message when namespaces are unavailable.
#[macro_export]
macro_rules! require_netns {
    () => {
        if let Err(why) = $crate::netns::TestNet::check_available() {
            eprintln!("SKIPPED {}: {why}", module_path!());
            return;
        }
    };
}

/// `ip netns del`, quietly (it may already be gone).
pub fn delete_namespace(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Every namespace name `ip netns list` shows.
pub fn list_namespaces() -> Vec<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "list"]);
    run_checked(cmd)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The harness's namespaces created by the process `pid` (`avsp-<pid>-…`).
pub fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("{NAME_PREFIX}{pid}-");
    list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// The harness's namespaces that belong to a live process, or to none (leftovers).
pub fn harness_namespaces() -> Vec<String> {
    list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(NAME_PREFIX))
        .collect()
}

/// Prefixes of every namespace a test of this workspace creates: the harness's
/// (`avsp-<pid>-<n>-<host>`) and the device-agent crate's own mDNS test (`avsda-mdns-<pid>`).
pub const OUR_PREFIXES: &[&str] = &[NAME_PREFIX, "avsda-"];

/// Where [`sweep_stale`] records each leaked namespace before deleting it (one name a line), so
/// a check after all suites sees leaks that a later [`TestNet::build`] already cleaned up.
/// `scripts/test.sh` sets it to a fresh file for the run; unset, nothing is recorded.
pub const LEAK_LEDGER_ENV: &str = "AVS_TEST_LEAK_LEDGER";

/// The process that created a namespace of ours, from its name (`avsp-<pid>-…`,
/// `avsda-…-<pid>`).
pub fn namespace_owner(name: &str) -> Option<i32> {
    if let Some(rest) = name.strip_prefix(NAME_PREFIX) {
        rest.split('-').next()?.parse().ok()
    } else if let Some(rest) = name.strip_prefix("avsda-") {
        rest.rsplit('-').next()?.parse().ok()
    } else {
        None
    }
}

/// Namespaces of ours (any of [`OUR_PREFIXES`]) whose creating process is gone: leaks.
pub fn leaked_namespaces() -> Vec<String> {
    list_namespaces()
        .into_iter()
        .filter(|n| OUR_PREFIXES.iter().any(|p| n.starts_with(p)))
        .filter(|n| {
            namespace_owner(n)
                .is_none_or(|pid| !cleanup::is_running(nix::unistd::Pid::from_raw(pid)))
        })
        .collect()
}

/// Appends `name` to the leak ledger at `ledger`.
pub fn record_leak(ledger: &Path, name: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)?;
    writeln!(f, "{name}")
}

/// The namespaces recorded in the leak ledger at `ledger` (empty when there is none).
pub fn ledger_entries(ledger: &Path) -> Vec<String> {
    std::fs::read_to_string(ledger)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Removes namespaces whose creating process no longer exists (it was `SIGKILL`ed), recording
/// each in the leak ledger ([`LEAK_LEDGER_ENV`]) first: a leak is cleaned up, never hidden.
pub fn sweep_stale() {
    let ledger = std::env::var_os(LEAK_LEDGER_ENV).map(PathBuf::from);
    for ns in harness_namespaces() {
        if let Some(pid) = namespace_owner(&ns) {
            if !cleanup::is_running(nix::unistd::Pid::from_raw(pid)) {
                eprintln!(
                    "avs-pair harness: removing namespace {ns}, leaked by finished process {pid}"
                );
                if let Some(ledger) = &ledger {
                    if let Err(e) = record_leak(ledger, &ns) {
                        eprintln!(
                            "avs-pair harness: cannot record the leak in {}: {e}",
                            ledger.display()
                        );
                    }
                }
                for p in pids_in_namespace(&ns) {
                    cleanup::terminate_pids(&[p], Duration::from_millis(500));
                }
                delete_namespace(&ns);
            }
        }
    }
}

/// Processes whose network namespace is `name` (`ip netns pids`).
pub fn pids_in_namespace(name: &str) -> Vec<u32> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "pids", name]);
    run_checked(cmd)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Picks a subnet in 10.231.0.0/16: a /28-aligned block chosen from the pid, the net counter and
/// the clock (so concurrent runs rarely share one; sharing would still be harmless, the
/// namespaces being isolated). Returns the network address and the prefix: /30 for two hosts,
/// /28 for more.
fn pick_subnet(pid: u32, n: u32, hosts: usize) -> (Ipv4Addr, u8) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = pid
        .wrapping_mul(2_654_435_761)
        .wrapping_add(n.wrapping_mul(40_503))
        .wrapping_add(nanos / 1000);
    // Skip block 0 (10.231.0.0/28) so no address ends up as x.x.0.0-ish.
    let block = (mix % 4095) + 1;
    let base = (u32::from(BASE_NET[0]) << 24) | (u32::from(BASE_NET[1]) << 16) | (block << 4);
    let prefix = if hosts <= 2 { 30 } else { 28 };
    (Ipv4Addr::from(base), prefix)
}

/// Waits (polling the kernel's flags, with a deadline) until `link` is up and running in the
/// calling thread's network namespace.
fn wait_running(host: &str, link: &str, timeout: Duration) -> Result<(), NetError> {
    use nix::net::if_::InterfaceFlags;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let running = nix::ifaddrs::getifaddrs()
            .map_err(NetError::Interfaces)?
            .any(|a| {
                a.interface_name == link
                    && a.flags
                        .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
            });
        if running {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(NetError::LinkNotRunning {
                host: host.to_owned(),
                link: link.to_owned(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn enter_namespace(handle: &Path) -> Result<(), EnterError> {
    let handle_error = |source| EnterError::Handle {
        path: handle.to_owned(),
        source,
    };
    let file = std::fs::File::open(handle).map_err(handle_error)?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(EnterError::Setns)?;
    // Proof, not trust: this thread's netns must now be the namespace's inode.
    let want = std::fs::metadata(handle).map_err(handle_error)?.ino();
    let have = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(EnterError::OwnNamespace)?
        .ino();
    if want != have {
        return Err(EnterError::Elsewhere { have, want });
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<String, NetError> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run_checked(cmd)
}

/// Writes sysctls inside a namespace (one `sh` for all of them).
fn sysctls(ns: &str, pairs: &[(&str, &str)]) -> Result<(), NetError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let script: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("echo {value} > /proc/sys/{}", key.replace('.', "/")))
        .collect();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "sh", "-c", &script.join(" && ")]);
    run_checked(cmd).map(drop)
}

fn run_checked(mut cmd: Command) -> Result<String, NetError> {
    let rendered = format!("{cmd:?}").replace('"', "");
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Command {
            command: rendered,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_stay_in_the_private_block() {
        for pid in [1, 77, 4_194_304] {
            for n in 0..50 {
                let (net, p) = pick_subnet(pid, n, 2);
                let o = net.octets();
                assert_eq!((o[0], o[1]), (10, 231));
                assert_eq!(o[3] % 16, 0, "aligned");
                assert_ne!((o[2], o[3]), (0, 0));
                assert_eq!(p, 30);
            }
        }
        assert_eq!(pick_subnet(5, 5, 3).1, 28);
    }
}
