//! Who may use the local API, and how much of it.
//!
//! The socket is 0660 (the agent's user and group), but the file mode is only the first fence:
//! the agent also asks the kernel who is on the other end (`SO_PEERCRED`) and decides per
//! request.
//!
//! - **Admin** (root or the agent's own uid): everything, including `pair`, `reset` and `cbl`,
//!   which change who the speaker belongs to.
//! - **Client** (a member of `api_group`, default `avs-agent`: the AVS client): `token`,
//!   `status`, `subscribe`, `auth_failure`, `check`.
//! - anyone else: refused with `forbidden`.
//!
//! Limits: request/response connections and subscriptions have separate budgets (a subscriber
//! never takes a place a `token` call needs), each uid may hold at most [`MAX_PER_UID`]
//! connections, and a connection over a limit gets one `error` line with kind `busy` before the
//! close.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::{Arc, Mutex};

use tokio::net::UnixStream;

/// Request/response connections at once.
pub const MAX_CLIENTS: usize = 32;
/// Subscriptions at once.
pub const MAX_SUBSCRIBERS: usize = 32;
/// Connections (of any kind) one uid may hold.
pub const MAX_PER_UID: usize = 16;

/// What a peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Root or the agent's own uid: every request.
    Admin,
    /// A member of `api_group`: token, status, subscribe, auth_failure, check.
    Client,
}

/// The agent's side of the policy: its own uid and the group of API clients.
#[derive(Debug, Clone)]
pub struct Policy {
    own_uid: u32,
    api_gid: Option<u32>,
}

impl Policy {
    /// The policy for this process and the group named `api_group` (a group that does not exist
    /// admits nobody but admins).
    pub fn new(api_group: &str) -> Self {
        let own_uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0);
        let api_gid = group_id(api_group);
        if api_gid.is_none() {
            tracing::info!(
                api_group,
                "local API: no such group; only root and the agent's own user may connect"
            );
        }
        Self { own_uid, api_gid }
    }

    /// The role of the peer on `stream`, with its uid; `None`: not allowed at all.
    pub fn classify(&self, stream: &UnixStream) -> (u32, Option<Role>) {
        let Ok(cred) = stream.peer_cred() else {
            return (u32::MAX, None);
        };
        let uid = cred.uid();
        if uid == 0 || uid == self.own_uid {
            return (uid, Some(Role::Admin));
        }
        let Some(gid) = self.api_gid else {
            return (uid, None);
        };
        let member = cred.gid() == gid
            || cred
                .pid()
                .and_then(supplementary_groups)
                .is_some_and(|groups| groups.contains(&gid));
        (uid, member.then_some(Role::Client))
    }
}

/// `name`'s gid from /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// The supplementary groups of process `pid` (the `Groups:` line of its status).
fn supplementary_groups(pid: i32) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Groups:"))?;
    Some(
        line["Groups:".len()..]
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
    )
}

/// Connections held per uid.
#[derive(Debug, Clone, Default)]
pub struct PerUid {
    held: Arc<Mutex<HashMap<u32, usize>>>,
}

/// One connection's share of its uid's budget; released on drop.
#[derive(Debug)]
pub struct UidSlot {
    owner: PerUid,
    uid: u32,
}

impl PerUid {
    /// A place for one more connection of `uid`, if it has fewer than [`MAX_PER_UID`].
    pub fn acquire(&self, uid: u32) -> Option<UidSlot> {
        let mut held = match self.held.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let n = held.entry(uid).or_insert(0);
        if *n >= MAX_PER_UID {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            owner: self.clone(),
            uid,
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut held = match self.owner.held.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = held.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_uid_budget_is_returned_on_drop() {
        let p = PerUid::default();
        let held: Vec<_> = (0..MAX_PER_UID).map(|_| p.acquire(1000).unwrap()).collect();
        assert!(p.acquire(1000).is_none());
        assert!(p.acquire(1001).is_some(), "other uids are not affected");
        drop(held);
        assert!(p.acquire(1000).is_some());
    }

    #[test]
    fn groups_come_from_etc_group() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-avs"), None);
    }
}
