//! One agent per state directory.
//!
//! Two agents on the same state directory would race on the token file and the attempt
//! counter, and the second one used to fail late with a misleading error (the link port or the
//! socket in use, whose suggested fix is wrong). The agent therefore takes an exclusive advisory
//! lock (`flock`) on `<state_dir>/agent.lock` before touching anything else, and writes its pid
//! into the file so that the second agent can say who holds it. The kernel drops the lock when
//! the process ends, however it ends, so a crash never leaves a stale lock behind.
//!
//! The lock is also where an unwritable state directory is first noticed, so that failure is
//! reported here with the path and the fix instead of as a bare "permission denied".

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::atomic_file;

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "agent.lock";

/// The longest pid text read back from a lock file (a pid is at most 10 digits).
const MAX_PID_LEN: u64 = 32;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    /// Another process holds the lock.
    #[error("another avs-device-agent ({}) is using this state dir {}", holder(*.pid), .path.display())]
    Busy {
        /// The state directory.
        path: PathBuf,
        /// The holder's pid, as it wrote it (None if unreadable).
        pid: Option<u32>,
    },
    /// The directory (or the lock file in it) cannot be created or written.
    #[error("cannot write {}: permission denied; give the user the agent runs as write access to it (e.g. chown that user {}) or set state_dir to a directory it can write", .path.display(), .path.display())]
    NotWritable {
        /// The state directory.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("state dir {}: could not {op}: {source}", .path.display())]
    Io {
        /// The state directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Creates the state directory (0700) if needed and takes the lock without waiting.
    pub fn acquire(state_dir: &Path) -> Result<Self, StateLockError> {
        let fail = |op: &'static str| {
            move |source: io::Error| match source.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    StateLockError::NotWritable {
                        path: state_dir.to_path_buf(),
                    }
                }
                _ => StateLockError::Io {
                    path: state_dir.to_path_buf(),
                    op,
                    source,
                },
            }
        };
        atomic_file::ensure_private_dir(state_dir).map_err(fail("create the directory"))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(state_dir.join(LOCK_FILE))
            .map_err(fail("open the lock file"))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(StateLockError::Busy {
                    path: state_dir.to_path_buf(),
                    pid: read_pid(&mut file),
                })
            }
            Err((_, errno)) => return Err(fail("lock the lock file")(io::Error::from(errno))),
        };
        let file: &mut File = &mut lock;
        (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.flush()
        })()
        .map_err(fail("write the lock file"))?;
        Ok(Self { _lock: lock })
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(MAX_PID_LEN).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
