//! Finding (and, for the demo, building) the real binaries: `lwa-emulator`,
//! `avs-device-agent`, `avs-companion`.
//!
//! End-to-end runs use the binaries a user would run, not library calls dressed up as
//! processes. They live next to each other in cargo's target dir (`target/<profile>/`); a test
//! binary runs from `target/<profile>/deps/`, the demo from `target/<profile>/`.
//! `AVS_PAIR_BIN_DIR` overrides the search.
//!
//! Tests can't run `cargo build` themselves (cargo holds the build-dir lock while tests run),
//! so they need the binaries built first: `cargo test --workspace` builds every package's
//! binaries before it runs any test, and `scripts/test.sh` does exactly that.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the directory with the binaries.
pub const BIN_DIR_ENV: &str = "AVS_PAIR_BIN_DIR";

/// The three binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `lwa-emulator`.
    pub emulator: PathBuf,
    /// `avs-device-agent`.
    pub agent: PathBuf,
    /// `avs-companion`.
    pub companion: PathBuf,
}

/// Why the binaries are not at hand.
#[derive(Debug, thiserror::Error)]
pub enum BinsError {
    /// Not in any directory we looked in.
    #[error("the avs-pair binaries (lwa-emulator, avs-device-agent, avs-companion) are not built; looked in {}. Build them first: cargo build -p lwa-emulator -p device-agent -p companion-app --bins (cargo test --workspace and scripts/test.sh do this)", joined(looked_in))]
    NotBuilt {
        /// The directories searched, in order.
        looked_in: Vec<PathBuf>,
    },
    /// `cargo` could not be started.
    #[error("cannot run cargo build: {0}")]
    Cargo(#[source] std::io::Error),
    /// `cargo build` ran and failed.
    #[error("cargo build of the avs-pair binaries failed ({0})")]
    BuildFailed(std::process::ExitStatus),
}

/// The packages that own them (for `cargo build -p …`).
pub const PACKAGES: [&str; 3] = ["lwa-emulator", "device-agent", "companion-app"];

impl Bins {
    /// Looks in `$AVS_PAIR_BIN_DIR`, next to this executable, and one level up.
    pub fn locate() -> Result<Bins, BinsError> {
        let dirs = candidate_dirs();
        for dir in &dirs {
            if let Some(b) = Self::in_dir(dir) {
                return Ok(b);
            }
        }
        Err(BinsError::NotBuilt { looked_in: dirs })
    }

    /// The binaries in one directory, if all three are there.
    pub fn in_dir(dir: &Path) -> Option<Bins> {
        let b = Bins {
            emulator: dir.join(exe("lwa-emulator")),
            agent: dir.join(exe("avs-device-agent")),
            companion: dir.join(exe("avs-companion")),
        };
        (b.emulator.is_file() && b.agent.is_file() && b.companion.is_file()).then_some(b)
    }

    /// Runs `cargo build` for the three packages with the profile this executable was built
    /// with (only when run by cargo: `$CARGO` is set), then locates them.
    pub fn build_then_locate() -> Result<Bins, BinsError> {
        let Some(cargo) = std::env::var_os("CARGO") else {
            return Self::locate();
        };
        let mut cmd = Command::new(cargo);
        cmd.arg("build").arg("--quiet");
        if current_profile_dir().as_deref() == Some("release") {
            cmd.arg("--release");
        }
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        cmd.arg("--bins");
        let status = cmd.status().map_err(BinsError::Cargo)?;
        if !status.success() {
            return Err(BinsError::BuildFailed(status));
        }
        Self::locate()
    }
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn joined(dirs: &[PathBuf]) -> String {
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    shown.join(", ")
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(BIN_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            dirs.push(dir.to_owned());
            if let Some(up) = dir.parent() {
                dirs.push(up.to_owned());
            }
        }
    }
    dirs
}

/// `debug` or `release` (the directory name under target/), from this executable's path.
fn current_profile_dir() -> Option<String> {
    let me = std::env::current_exe().ok()?;
    let mut dir = me.parent()?;
    if dir.file_name()? == "deps" {
        dir = dir.parent()?;
    }
    Some(dir.file_name()?.to_string_lossy().into_owned())
}
