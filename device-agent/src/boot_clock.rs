//! The boot clock: time since the machine booted, named by the boot it belongs to.
//!
//! The pairing lockout must survive the agent dying (`kill -9`, a crash, a restart by systemd)
//! with its countdown intact, and must not be erased or stretched by the wall clock (a board
//! without an RTC boots in 1970; NTP steps it later). The process's monotonic clock does not
//! outlive the process, and the wall clock cannot be trusted, so the lockout's end is also
//! written as a point on this clock: the kernel's boot id (`/proc/sys/kernel/random/boot_id`,
//! new at every boot) plus the time since boot (`/proc/uptime`, `CLOCK_BOOTTIME`: monotonic,
//! never stepped, counts suspend). A restart within the same boot reads how much of the
//! lockout is left, the time the agent was down included. After a reboot the point means
//! nothing (another boot id) and the lockout resumes from the time left at the last write:
//! the time the power was off does not count, so a power cut never shortens a lockout.
//!
//! No system call beyond reading two `/proc` files: no `unsafe`, no extra dependency. Where
//! they cannot be read (not Linux, `/proc` not mounted) the clock answers `None` and the
//! lockout falls back to the time left at the last write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A point on the boot clock: which boot, and how long after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootInstant {
    /// The kernel's id of this boot (a UUID string).
    pub boot_id: String,
    /// Milliseconds since that boot.
    pub since_boot_ms: u64,
}

impl BootInstant {
    /// This point plus `d` (saturating).
    pub fn after(&self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            boot_id: self.boot_id.clone(),
            since_boot_ms: self.since_boot_ms.saturating_add(ms),
        }
    }

    /// How long from `now` until this point, if both are on the same boot (zero once past).
    pub fn left_at(&self, now: &BootInstant) -> Option<Duration> {
        (self.boot_id == now.boot_id)
            .then(|| Duration::from_millis(self.since_boot_ms.saturating_sub(now.since_boot_ms)))
    }
}

/// A source of [`BootInstant`]s (the system's, or a test's).
pub trait BootClock: std::fmt::Debug + Send + Sync {
    /// Now, or `None` when this machine cannot say.
    fn now(&self) -> Option<BootInstant>;
}

/// The kernel's boot clock, read from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBootClock;

impl BootClock for SystemBootClock {
    fn now(&self) -> Option<BootInstant> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        Some(BootInstant {
            boot_id: parse_boot_id(&id)?,
            since_boot_ms: parse_uptime_ms(&uptime)?,
        })
    }
}

/// A clock that never knows (no `/proc`; unit tests on tokio's paused clock): a lockout then
/// resumes from the time left at the last write.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBootClock;

impl BootClock for NoBootClock {
    fn now(&self) -> Option<BootInstant> {
        None
    }
}

/// The boot id as the kernel prints it (one UUID line).
fn parse_boot_id(text: &str) -> Option<String> {
    let id = text.trim();
    let ok = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    ok.then(|| id.to_owned())
}

/// `/proc/uptime`'s first field ("12345.67 …", seconds with two decimals) in milliseconds.
fn parse_uptime_ms(text: &str) -> Option<u64> {
    let first = text.split_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, "0"));
    let secs: u64 = secs.parse().ok()?;
    let frac = frac.get(..frac.len().min(3))?;
    let frac_ms: u64 = format!("{frac:0<3}").parse().ok()?;
    secs.checked_mul(1000)?.checked_add(frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_format() {
        assert_eq!(parse_uptime_ms("11053.69 3184.99\n"), Some(11_053_690));
        assert_eq!(parse_uptime_ms("7.5 1.0"), Some(7_500));
        assert_eq!(parse_uptime_ms("42 1"), Some(42_000));
        assert_eq!(parse_uptime_ms("x 1"), None);
        assert_eq!(parse_uptime_ms(""), None);
        assert_eq!(
            parse_boot_id("2a83a85d-3051-4573-8388-4066ae6a6c3c\n").as_deref(),
            Some("2a83a85d-3051-4573-8388-4066ae6a6c3c")
        );
        assert_eq!(parse_boot_id("not an id"), None);
    }

    #[test]
    fn the_system_clock_moves_forward_on_one_boot() {
        let Some(a) = SystemBootClock.now() else {
            return; // no /proc here: the lockout falls back to the time left
        };
        let b = SystemBootClock.now().unwrap();
        assert_eq!(a.boot_id, b.boot_id);
        assert!(b.since_boot_ms >= a.since_boot_ms);
    }

    #[test]
    fn time_left_only_on_the_same_boot() {
        let now = BootInstant {
            boot_id: "a".into(),
            since_boot_ms: 1_000,
        };
        let end = now.after(Duration::from_secs(60));
        assert_eq!(end.left_at(&now), Some(Duration::from_secs(60)));
        assert_eq!(
            end.left_at(&now.after(Duration::from_secs(100))),
            Some(Duration::ZERO)
        );
        let other = BootInstant {
            boot_id: "b".into(),
            since_boot_ms: 0,
        };
        assert_eq!(end.left_at(&other), None);
    }
}
