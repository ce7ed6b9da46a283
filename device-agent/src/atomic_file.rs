//! Crash-safe small files: the token store, the attempt counter and the setup code.
//!
//! A speaker loses power whenever someone pulls the plug, so every file the agent owns is
//! replaced, never edited: the new content goes to a temporary file in the same directory, is
//! fsynced, renamed over the old name (atomic on POSIX), and the directory is fsynced so the
//! rename itself survives. A reader therefore sees either the old or the new file, whole.
//! Files are created 0600 inside a 0700 directory: they hold secrets.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Mode of every file the agent writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the state directory.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) if needed and makes it 0700.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o777 != DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` atomically and durably (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `path` (if present) and fsyncs the directory so the removal is durable.
pub fn remove_durable(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(&parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads a file of at most `max_len` bytes. `Ok(None)` when it does not exist.
pub fn read_bounded(path: &Path, max_len: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    file.take(max_len + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is larger than {max_len} bytes"),
        ));
    }
    Ok(Some(buf))
}

/// Moves a bad file out of the way (`<name>.corrupt-<unix seconds>`) so it is kept for a
/// person to look at and never silently overwritten. Returns the new path.
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let dir = parent_dir(path);
    let mut target = dir.join(format!("{name}.corrupt-{ts}"));
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{name}.corrupt-{ts}-{n}"));
        n += 1;
    }
    fs::rename(path, &target)?;
    sync_dir(&dir)?;
    Ok(target)
}

/// Removes temp files a crash left behind for `path`.
pub fn remove_stale_temps(path: &Path) {
    let dir = parent_dir(path);
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.tmp.");
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What the unit tests of the modules that keep files share.
#[cfg(test)]
pub(crate) mod testing {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::{Path, PathBuf};

    /// `name` inside a fresh temporary directory (not created), and the guard that deletes
    /// the directory.
    pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    /// The permission bits of `path`.
    pub fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{mode, scratch};
    use super::*;

    #[test]
    fn writes_replace_whole_files_with_private_modes() {
        let (_tmp, dir) = scratch("state");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("x.json");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp left");
        let moved = move_aside(&file).unwrap();
        assert!(moved.to_string_lossy().contains("x.json.corrupt-"));
        assert!(!file.exists());
        assert!(read_bounded(&file, 10).unwrap().is_none());
        assert!(read_bounded(&moved, 1).is_err());
    }
}
