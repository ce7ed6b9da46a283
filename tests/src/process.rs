//! Child processes whose output we can wait on and whose end we control.
//!
//! Every process the harness or the demo starts (emulator, agent, companion), inside a network
//! namespace or not, is a [`ManagedProcess`]: its stdout and stderr are copied line by line to
//! log files (kept for a failing test to print) and into memory, where
//! [`ManagedProcess::wait_for_line`] waits for a readiness line such as `AVS_AGENT_READY …` with
//! a deadline instead of sleeping. Dropping it stops the process (`SIGTERM`, a grace period,
//! `SIGKILL`) and reaps it; while it lives its pid is in [`crate::cleanup`] so an interrupt
//! kills it too.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cleanup::{self, Resource, Token};

/// Lines kept in memory per stream; the log file keeps everything.
const MAX_LINES_IN_MEMORY: usize = 20_000;
/// Longest line kept (a runaway line is cut, not buffered without bound).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

#[derive(Default)]
struct Output {
    stdout: Vec<String>,
    stderr: Vec<String>,
    stdout_closed: bool,
    stderr_closed: bool,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Output> {
    shared.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why waiting for a line failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("{label}: no matching line within {waited:?}\n{tail}")]
    Timeout {
        /// The process.
        label: String,
        /// How long we waited.
        waited: Duration,
        /// The last lines of its output.
        tail: String,
    },
    /// The stream closed (the process exited) before a matching line.
    #[error("{label}: exited before printing the expected line\n{tail}")]
    Exited {
        /// The process.
        label: String,
        /// The last lines of its output.
        tail: String,
    },
}

/// A started child process with captured output.
#[derive(Debug)]
pub struct ManagedProcess {
    label: String,
    child: Option<Child>,
    pid: u32,
    shared: Shared,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    readers: Vec<std::thread::JoinHandle<()>>,
    token: Option<Token>,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("stdout_lines", &self.stdout.len())
            .field("stderr_lines", &self.stderr.len())
            .finish()
    }
}

impl ManagedProcess {
    /// Starts `command` (stdin closed, stdout/stderr captured) and logs to
    /// `log_dir/<label>.stdout` and `.stderr`.
    pub fn spawn(
        mut command: Command,
        label: &str,
        log_dir: &Path,
    ) -> std::io::Result<ManagedProcess> {
        let stdout_log = log_dir.join(format!("{label}.stdout"));
        let stderr_log = log_dir.join(format!("{label}.stderr"));
        let out_file = File::create(&stdout_log)?;
        let err_file = File::create(&stderr_log)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start {label} ({:?}): {e}", command.get_program()),
            )
        })?;
        let pid = child.id();
        let token = cleanup::register(Resource::Process(pid));
        let shared: Shared = Arc::default();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(pump(out, out_file, Stream::Stdout, shared.clone(), label)?);
        }
        if let Some(err) = child.stderr.take() {
            readers.push(pump(err, err_file, Stream::Stderr, shared.clone(), label)?);
        }
        Ok(ManagedProcess {
            label: label.to_owned(),
            child: Some(child),
            pid,
            shared,
            stdout_log,
            stderr_log,
            readers,
            token: Some(token),
            status: None,
        })
    }

    /// The name given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Log file paths (stdout, stderr).
    pub fn log_paths(&self) -> (&Path, &Path) {
        (&self.stdout_log, &self.stderr_log)
    }

    /// Waits until a line of `stream` satisfies `pred` and returns it. Lines printed before the
    /// call count too.
    pub fn wait_for_line(
        &self,
        stream: Stream,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Result<String, WaitError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut guard = lock(&self.shared);
        let mut seen = 0;
        loop {
            let (lines, closed) = match stream {
                Stream::Stdout => (&guard.stdout, guard.stdout_closed),
                Stream::Stderr => (&guard.stderr, guard.stderr_closed),
            };
            if let Some(line) = lines[seen..].iter().find(|l| pred(l)) {
                return Ok(line.clone());
            }
            seen = lines.len();
            if closed {
                drop(guard);
                return Err(WaitError::Exited {
                    label: self.label.clone(),
                    tail: self.tail(30),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                drop(guard);
                return Err(WaitError::Timeout {
                    label: self.label.clone(),
                    waited: now - start,
                    tail: self.tail(30),
                });
            }
            guard = self
                .shared
                .1
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// All stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.shared).stdout.clone()
    }

    /// All stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.shared).stderr.clone()
    }

    /// Whether a stderr line so far contains `needle`.
    pub fn stderr_has(&self, needle: &str) -> bool {
        lock(&self.shared).stderr.iter().any(|l| l.contains(needle))
    }

    /// The last `n` lines of each stream, labelled, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let out = lock(&self.shared);
        let pick = |v: &Vec<String>| v[v.len().saturating_sub(n)..].join("\n    ");
        format!(
            "  --- {} stdout (last {n} lines; full log {}) ---\n    {}\n  --- {} stderr (last {n} lines; full log {}) ---\n    {}",
            self.label,
            self.stdout_log.display(),
            pick(&out.stdout),
            self.label,
            self.stderr_log.display(),
            pick(&out.stderr)
        )
    }

    /// The exit status if it has exited (non-blocking).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        if let Some(s) = status {
            self.finished(s);
        }
        Ok(status)
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a signal (e.g. `SIGKILL` to simulate a crash, `SIGINT` for a Ctrl-C).
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid).map_err(|_| std::io::Error::other("pid out of range"))?;
        kill(Pid::from_raw(pid), signal).map_err(std::io::Error::from)
    }

    /// `SIGTERM`, up to `grace` to exit, then `SIGKILL`; reaps the process.
    pub fn terminate(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.try_wait()? {
            return Ok(s);
        }
        self.signal(Signal::SIGTERM)?;
        if let Some(s) = self.wait_timeout(grace)? {
            return Ok(s);
        }
        self.signal(Signal::SIGKILL)?;
        let status = match self.child.as_mut() {
            Some(child) => child.wait()?,
            None => return Err(std::io::Error::other("no child handle")),
        };
        self.finished(status);
        Ok(status)
    }

    fn finished(&mut self, status: ExitStatus) {
        self.status = Some(status);
        if let Some(token) = self.token.take() {
            cleanup::release(token);
        }
        // The pipes close when the process (and anything that inherited them) is gone.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Err(e) = self.terminate(Duration::from_secs(3)) {
                eprintln!("avs-pair harness: stopping {} failed: {e}", self.label);
            }
        }
    }
}

fn pump(
    stream: impl Read + Send + 'static,
    mut file: File,
    which: Stream,
    shared: Shared,
    label: &str,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("log-{label}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader
                    .by_ref()
                    .take(MAX_LINE_BYTES as u64)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let _ = file.write_all(&buf);
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        let mut out = lock(&shared);
                        let lines = match which {
                            Stream::Stdout => &mut out.stdout,
                            Stream::Stderr => &mut out.stderr,
                        };
                        if lines.len() < MAX_LINES_IN_MEMORY {
                            lines.push(line);
                        }
                        drop(out);
                        shared.1.notify_all();
                    }
                }
            }
            let _ = file.flush();
            let mut out = lock(&shared);
            match which {
                Stream::Stdout => out.stdout_closed = true,
                Stream::Stderr => out.stderr_closed = true,
            }
            drop(out);
            shared.1.notify_all();
        })
}
