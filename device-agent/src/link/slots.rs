//! Connection slots: who may hold a link connection, and in which phase.
//!
//! A connection costs a stranger nothing until it sends its PAKE message (that message is a
//! counted, paced guess). So the connections that have not got that far ("pending") are held
//! to a budget of their own, smaller than the total, and to a small share per source address:
//!
//! - at most `max_sessions` connections in all;
//! - at most `max_pending` of them pending, and at most `max_pending_per_source` pending from
//!   one address — idle strangers can fill the pending budget only from many addresses, and
//!   never the whole table;
//! - a connection that sent its PAKE message is promoted: it leaves the pending budget, so the
//!   `max_sessions - max_pending` places left are kept for peers proving the code (or proven).
//!
//! Pending connections are also short-lived (the Hello and the PAKE message each have a
//! deadline of a few seconds, see [`super::session`]), so a stranger who reconnects whenever
//! cut holds a pending place for at most those seconds at a time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    /// Every slot is taken.
    #[error("every link slot is taken")]
    Full,
    /// The budget for connections that have not sent their PAKE message is used up.
    #[error("too many connections have not started the handshake")]
    PendingFull,
    /// This address already holds its share of such connections.
    #[error("this address already holds its share of unstarted connections")]
    SourceFull,
}

#[derive(Debug, Default)]
struct Table {
    total: usize,
    pending: usize,
    pending_by_source: HashMap<IpAddr, usize>,
}

/// The slot table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Slots {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_total: usize,
    max_pending: usize,
    max_per_source: usize,
    table: Mutex<Table>,
}

impl Slots {
    /// A table with these limits (`max_pending < max_total` is checked by the config).
    pub fn new(max_total: usize, max_pending: usize, max_per_source: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_total,
                max_pending,
                max_per_source,
                table: Mutex::new(Table::default()),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        let mut g = match self.inner.table.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A pending slot for a new connection from `source`.
    pub fn acquire(&self, source: IpAddr) -> Result<Slot, NoSlot> {
        let source = canonical(source);
        self.with(|t| {
            if t.total >= self.inner.max_total {
                return Err(NoSlot::Full);
            }
            if t.pending >= self.inner.max_pending {
                return Err(NoSlot::PendingFull);
            }
            let mine = t.pending_by_source.entry(source).or_insert(0);
            if *mine >= self.inner.max_per_source {
                return Err(NoSlot::SourceFull);
            }
            *mine += 1;
            t.pending += 1;
            t.total += 1;
            Ok(())
        })?;
        Ok(Slot {
            slots: self.clone(),
            source,
            pending: true,
        })
    }

    /// (total, pending) now, for tests and logs.
    pub fn counts(&self) -> (usize, usize) {
        self.with(|t| (t.total, t.pending))
    }

    fn leave_pending(&self, source: IpAddr) {
        self.with(|t| {
            t.pending = t.pending.saturating_sub(1);
            if let Some(n) = t.pending_by_source.get_mut(&source) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    t.pending_by_source.remove(&source);
                }
            }
        });
    }
}

/// An IPv4 peer on a dual-stack socket arrives as `::ffff:a.b.c.d`; count it as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One connection's place; released on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Slots,
    source: IpAddr,
    pending: bool,
}

impl Slot {
    /// The peer sent its PAKE message: it leaves the pending budget.
    pub fn promote(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.slots.leave_pending(self.source);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.promote();
        self.slots.with(|t| t.total = t.total.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn per_source_pending_and_total_limits() {
        let s = Slots::new(4, 3, 2);
        let a1 = s.acquire(ip(1)).unwrap();
        let mut a2 = s.acquire(ip(1)).unwrap();
        assert_eq!(s.acquire(ip(1)).unwrap_err(), NoSlot::SourceFull);
        // The mapped form of the same address is the same source.
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(s.acquire(mapped).unwrap_err(), NoSlot::SourceFull);
        let b1 = s.acquire(ip(2)).unwrap();
        assert_eq!(s.acquire(ip(3)).unwrap_err(), NoSlot::PendingFull);
        // A peer that sent its PAKE message frees a pending place and its source's share.
        a2.promote();
        assert_eq!(s.counts(), (3, 2));
        let a3 = s.acquire(ip(1)).unwrap();
        assert_eq!(s.acquire(ip(4)).unwrap_err(), NoSlot::Full);
        drop((a1, a3, b1));
        assert_eq!(s.counts(), (1, 0));
        drop(a2);
        assert_eq!(s.counts(), (0, 0));
    }
}
