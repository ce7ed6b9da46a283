//! Connection slots: who may hold a link connection, and in which phase.
//!
//! A connection costs a stranger nothing until it sends its PAKE message (that message is a
//! counted, paced guess). So the connections that have not got that far ("pending") are held
//! to a budget of their own, smaller than the total, and to a small share per source address:
//!
//! - at most `max_sessions` connections in all;
//! - at most `max_pending` of them pending, and at most `max_pending_per_source` pending from
//!   one address;
//! - a connection that sent its PAKE message is promoted: it leaves the pending budget, so the
//!   `max_sessions - max_pending` places left are kept for peers proving the code (or proven).
//!
//! # A full pending budget evicts, it does not refuse
//!
//! Refusing a newcomer when the pending budget is full lets a stranger with more than
//! `max_pending / max_pending_per_source` addresses (free with IPv6) keep the owner out for
//! as long as it likes: it holds every pending place and re-takes each one the moment its
//! deadline frees it. So a newcomer is never refused for want of a pending place (the
//! SYN-cache answer): it takes the place of a pending connection, which is ended (its task is
//! told through [`Evicted`]; the listener answers its peer `busy` and closes). Which one
//! matters, because the owner's own connection is pending too, for as long as its Hello
//! exchange and its PAKE message take (milliseconds on a LAN). The victim is, in this order:
//!
//! 1. the newcomer's own source's oldest pending connection, if that source already holds its
//!    share: a source only ever churns its own places;
//! 2. otherwise, the pending connection whose source has the most *strikes*, then the most
//!    pending places, then the oldest. A source's strikes are its evictions in a chain with
//!    less than [`STRIKE_MEMORY`] (2 s) between one and the next; a source with no eviction in
//!    the last [`STRIKE_MEMORY`] has none.
//!
//! Oldest-first (not random) gives the owner a guarantee rather than odds: its connection
//! arrives as the newest, so it outlives at least the next `max_pending - 1` arrivals; a random
//! victim would lose it to the very next arrival with probability `1 / max_pending`. The
//! strikes stop an attacker from using the owner's connection as the next victim in a chain:
//! an evicted attacker that reconnects within milliseconds comes back from a struck address, so
//! its connection is the next victim, not the owner's. The owner (no strikes, one pending place)
//! is evicted only when every other pending place is held by a strike-free address with a
//! single place, and it is the oldest of them: the attacker must open `max_pending` connections,
//! each from an address none of whose connections was evicted in the last [`STRIKE_MEMORY`],
//! between the owner's connect and its PAKE message. With the defaults that is 8 strike-free
//! addresses per owner handshake time, e.g. 800 connections a second against a 10 ms
//! handshake, from about 1,600 addresses (each reused only after its strikes have lapsed), or
//! by cycling more addresses than [`STRIKE_SOURCES`] remembers.
//!
//! # Why strikes last 2 s, not a minute
//!
//! An owner evicted anyway (see the limit below) is struck too. A long memory would make its
//! retries the first victims: until the strike lapsed a single timed connection per retry
//! would evict it again, each eviction renewing the strike. A person retrying takes seconds
//! (reading the error, starting again, the companion's discovery), while an evicted attacker
//! that wants its place back reconnects within milliseconds: a memory of 2 s lets the owner's
//! next try start strike-free and still piles strikes on a reconnecting attacker. What it gives
//! up: an attacker may reuse an address 2 s after its last eviction rather than a minute, so
//! the sustained attack above needs about 2 s worth of addresses, not a fresh one per
//! connection (free with IPv6 either way).
//!
//! # The limit that remains
//!
//! An attacker on the same network need not keep the rate above up: it can tell when the owner
//! comes, because the companion's mDNS query and the speaker's answer are multicast and the
//! companion connects a fixed 150 ms after the first answer (companion-app
//! `connect/select.rs`), so a burst of strike-free connections timed to that moment (a few
//! dozen addresses per attempt to cover the jitter; free with IPv6) evicts the owner. The
//! owner's retry starts strike-free, so each retry costs the attacker another full burst, but
//! an attacker able to send one burst can send one per retry. A larger `max_pending` raises the
//! burst in proportion.
//!
//! # Busy, and what is never evicted
//!
//! A newcomer is still refused (`Busy`) when all `max_sessions` places are taken and the pending
//! budget is not full: that takes `max_sessions - max_pending` connections past their PAKE
//! message (paced, counted guesses, or peers that know the code), which idle strangers cannot
//! hold.
//!
//! Connections that sent their PAKE message are never evicted, and an evicted connection never
//! counts as a wrong setup code: [`Slot::promote`] and eviction are decided under one lock, and
//! a connection evicted first is told so by `promote` before its guess is counted.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How long an eviction marks its source as the next to evict: long enough for an attacker's
/// reconnect (milliseconds), shorter than a person's retry (seconds; see the module docs).
pub const STRIKE_MEMORY: Duration = Duration::from_secs(2);

/// How many struck sources are remembered (the least recently struck are forgotten first).
pub const STRIKE_SOURCES: usize = 1024;

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    /// Every slot is taken by a connection that sent its PAKE message.
    #[error("every link slot is taken")]
    Full,
}

/// A pending connection in the table.
#[derive(Debug)]
struct Pending {
    source: IpAddr,
    /// Fired when the connection is evicted.
    evict: oneshot::Sender<()>,
}

/// Evictions of one source's connections.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    last: Instant,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    /// Places held, pending or promoted.
    total: usize,
    /// Pending connections by id: oldest first.
    pending: BTreeMap<u64, Pending>,
    pending_by_source: HashMap<IpAddr, usize>,
    strikes: HashMap<IpAddr, Strikes>,
    /// Connections evicted so far.
    evictions: u64,
}

impl Table {
    fn strikes(&self, source: &IpAddr, now: Instant) -> u32 {
        match self.strikes.get(source) {
            Some(s) if now.saturating_duration_since(s.last) < STRIKE_MEMORY => s.count,
            _ => 0,
        }
    }

    fn pending_of(&self, source: &IpAddr) -> usize {
        self.pending_by_source.get(source).copied().unwrap_or(0)
    }

    /// Takes a pending connection off the books (it is promoted, evicted or gone).
    fn unpend(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if let Some(n) = self.pending_by_source.get_mut(&p.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending_by_source.remove(&p.source);
            }
        }
        Some(p)
    }

    fn strike(&mut self, source: IpAddr, now: Instant) {
        if self.strikes.len() >= STRIKE_SOURCES && !self.strikes.contains_key(&source) {
            self.strikes
                .retain(|_, s| now.saturating_duration_since(s.last) < STRIKE_MEMORY);
            if self.strikes.len() >= STRIKE_SOURCES {
                let stalest = self
                    .strikes
                    .iter()
                    .min_by_key(|(_, s)| s.last)
                    .map(|(ip, _)| *ip);
                if let Some(ip) = stalest {
                    self.strikes.remove(&ip);
                }
            }
        }
        let count = self.strikes(&source, now);
        self.strikes.insert(
            source,
            Strikes {
                count: count.saturating_add(1),
                last: now,
            },
        );
    }
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
    /// A table with these limits: `0 < max_per_source <= max_pending < max_total`, which the
    /// config checks (asserted in debug builds). With `max_pending >= max_total` a newcomer
    /// could be refused `Busy` by pending connections alone, which the module docs rule out.
    pub fn new(max_total: usize, max_pending: usize, max_per_source: usize) -> Self {
        debug_assert!(
            0 < max_per_source && max_per_source <= max_pending && max_pending < max_total,
            "invalid link slot limits: total {max_total}, pending {max_pending}, per source \
             {max_per_source}"
        );
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

    /// A pending slot for a new connection from `source`, evicting a pending connection if
    /// the pending budget or the source's share is used up (see the module docs); refused only
    /// when all `max_sessions` slots are taken, which takes at least `max_sessions -
    /// max_pending` connections past their PAKE message. The [`Evicted`] tells the
    /// connection's task when it must end.
    pub fn acquire(&self, source: IpAddr) -> Result<(Slot, Evicted), NoSlot> {
        self.acquire_at(source, Instant::now())
    }

    fn acquire_at(&self, source: IpAddr, now: Instant) -> Result<(Slot, Evicted), NoSlot> {
        let source = canonical(source);
        let (tx, rx) = oneshot::channel();
        let id = self.with(|t| {
            if let Some(victim) = self.victim(t, source, now) {
                if let Some(p) = t.unpend(victim) {
                    t.total = t.total.saturating_sub(1);
                    t.strike(p.source, now);
                    t.evictions += 1;
                    let _ = p.evict.send(());
                }
            }
            if t.total >= self.inner.max_total {
                return Err(NoSlot::Full);
            }
            let id = t.next_id;
            t.next_id += 1;
            t.pending.insert(id, Pending { source, evict: tx });
            *t.pending_by_source.entry(source).or_insert(0) += 1;
            t.total += 1;
            Ok(id)
        })?;
        let slot = Slot {
            slots: self.clone(),
            id,
            promoted: false,
        };
        Ok((slot, Evicted(rx)))
    }

    /// The pending connection a newcomer from `source` replaces, if it must replace one.
    fn victim(&self, t: &Table, source: IpAddr, now: Instant) -> Option<u64> {
        if t.pending_of(&source) >= self.inner.max_per_source {
            return t
                .pending
                .iter()
                .find(|(_, p)| p.source == source)
                .map(|(id, _)| *id);
        }
        if t.pending.len() < self.inner.max_pending {
            return None;
        }
        t.pending
            .iter()
            .max_by_key(|(id, p)| {
                (
                    t.strikes(&p.source, now),
                    t.pending_of(&p.source),
                    std::cmp::Reverse(**id),
                )
            })
            .map(|(id, _)| *id)
    }

    /// (total, pending) now, for tests and logs.
    pub fn counts(&self) -> (usize, usize) {
        self.with(|t| (t.total, t.pending.len()))
    }

    /// Connections evicted so far, for logs.
    pub fn evictions(&self) -> u64 {
        self.with(|t| t.evictions)
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
    id: u64,
    promoted: bool,
}

impl Slot {
    /// The peer sent its PAKE message: it leaves the pending budget and can no longer be
    /// evicted. False when it was evicted first: the connection is ending, and its guess must
    /// not be answered or counted.
    pub fn promote(&mut self) -> bool {
        if self.promoted {
            return true;
        }
        let id = self.id;
        self.promoted = self.slots.with(|t| t.unpend(id).is_some());
        self.promoted
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (id, promoted) = (self.id, self.promoted);
        self.slots.with(|t| {
            // An evicted connection's place was released when it was evicted.
            if t.unpend(id).is_some() || promoted {
                t.total = t.total.saturating_sub(1);
            }
        });
    }
}

/// Resolves when the connection was evicted (never, once it is promoted or its slot dropped).
#[derive(Debug)]
pub struct Evicted(oneshot::Receiver<()>);

impl Evicted {
    /// Waits for the eviction.
    pub async fn wait(self) {
        if self.0.await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the eviction happened already.
    #[cfg(test)]
    fn happened(&mut self) -> bool {
        self.0.try_recv().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn per_source_pending_and_total_limits() {
        let s = Slots::new(4, 3, 2);
        let (a1, _) = s.acquire(ip(1)).unwrap();
        let (mut a2, _) = s.acquire(ip(1)).unwrap();
        let (b1, _) = s.acquire(ip(2)).unwrap();
        assert_eq!(s.counts(), (3, 3));
        // A peer that sent its PAKE message frees a pending place and its source's share.
        assert!(a2.promote());
        assert!(a2.promote(), "promoting twice is harmless");
        assert_eq!(s.counts(), (3, 2));
        let (a3, _) = s.acquire(ip(1)).unwrap();
        assert_eq!(s.counts(), (4, 3));
        drop((a1, a3, b1));
        assert_eq!(s.counts(), (1, 0));
        drop(a2);
        assert_eq!(s.counts(), (0, 0));
    }

    #[test]
    fn a_source_at_its_share_replaces_its_own_oldest() {
        let s = Slots::new(16, 8, 2);
        let (_a1, mut e1) = s.acquire(ip(1)).unwrap();
        let (_b1, mut eb) = s.acquire(ip(2)).unwrap();
        let (_a2, mut e2) = s.acquire(ip(1)).unwrap();
        // The mapped form of the same address is the same source.
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let (_a3, mut e3) = s.acquire(mapped).unwrap();
        assert!(e1.happened(), "the source's oldest made room");
        assert!(!e2.happened() && !e3.happened() && !eb.happened());
        assert_eq!(s.counts(), (3, 3));
    }

    /// The attack of docs/protocol.md §16: idle strangers from more addresses than
    /// `max_pending / max_pending_per_source` hold every pending place; the owner's newcomer
    /// still gets one, and keeps it while every evicted stranger comes back at once.
    #[test]
    fn a_full_pending_budget_evicts_and_reconnecting_strangers_evict_each_other() {
        let s = Slots::new(16, 8, 2);
        let now = Instant::now();
        let mut held: HashMap<u8, (Slot, Evicted)> = HashMap::new();
        for a in 1..=8 {
            held.insert(a, s.acquire_at(ip(a), now).unwrap());
        }
        assert_eq!(s.counts(), (8, 8));
        let (mut owner, mut owner_evicted) = s.acquire_at(ip(100), now).unwrap();
        assert_eq!(s.counts(), (8, 8), "one stranger made room");
        // Every stranger cut reconnects at once, a thousand times over.
        for _ in 0..1000 {
            let cut: Vec<u8> = held
                .iter_mut()
                .filter_map(|(a, (_, e))| e.happened().then_some(*a))
                .collect();
            assert_eq!(cut.len(), 1, "each newcomer evicts exactly one");
            for a in cut {
                held.remove(&a);
                held.insert(a, s.acquire_at(ip(a), now).unwrap());
            }
            assert!(!owner_evicted.happened(), "the owner's connection stays");
        }
        assert_eq!(s.evictions(), 1001);
        assert!(owner.promote(), "the owner's PAKE message is taken");
        assert_eq!(
            s.counts(),
            (8, 7),
            "seven strangers pending, the owner promoted"
        );
    }

    #[test]
    fn oldest_first_among_equals_and_the_most_crowded_source_first() {
        let s = Slots::new(16, 4, 2);
        let now = Instant::now();
        let (_a, mut ea) = s.acquire_at(ip(1), now).unwrap();
        let (_b1, mut eb1) = s.acquire_at(ip(2), now).unwrap();
        let (_c, mut ec) = s.acquire_at(ip(3), now).unwrap();
        let (_b2, mut eb2) = s.acquire_at(ip(2), now).unwrap();
        // Full: the source with two places loses its oldest, not the older ip(1).
        let (_d, mut ed) = s.acquire_at(ip(4), now).unwrap();
        assert!(eb1.happened());
        assert!(!ea.happened() && !ec.happened() && !eb2.happened());
        // ip(2) is struck: its remaining connection goes next, although ip(1) is older.
        let (_e, _) = s.acquire_at(ip(5), now).unwrap();
        assert!(eb2.happened());
        assert!(!ea.happened() && !ec.happened() && !ed.happened());
        // All strike-free, one place each: the oldest goes.
        let (_f, _) = s.acquire_at(ip(6), now).unwrap();
        assert!(ea.happened());
        assert!(!ec.happened() && !ed.happened());
    }

    /// Without strikes, the owner outlives `max_pending - 1` arrivals from fresh addresses
    /// and no more: the limit stated in the module docs.
    #[test]
    fn fresh_addresses_reach_the_owner_only_after_max_pending_arrivals() {
        let s = Slots::new(16, 8, 2);
        let now = Instant::now();
        let mut held = Vec::new();
        for a in 1..=8 {
            held.push(s.acquire_at(ip(a), now).unwrap());
        }
        let (_owner, mut owner_evicted) = s.acquire_at(ip(100), now).unwrap();
        for a in 0..7 {
            held.push(s.acquire_at(ip(20 + a), now).unwrap());
            assert!(!owner_evicted.happened(), "arrival {a}");
        }
        held.push(s.acquire_at(ip(30), now).unwrap());
        assert!(owner_evicted.happened());
    }

    #[test]
    fn strikes_fade() {
        let s = Slots::new(16, 2, 2);
        let now = Instant::now();
        let (_a, _) = s.acquire_at(ip(1), now).unwrap();
        let (_b, _) = s.acquire_at(ip(2), now).unwrap();
        let (_c, _) = s.acquire_at(ip(3), now).unwrap(); // evicts ip(1): struck
        let (_a2, mut ea2) = s.acquire_at(ip(1), now).unwrap(); // evicts ip(2): struck
        let later = now + STRIKE_MEMORY;
        // Both strikes are forgotten: the oldest (ip(3)) goes, not the struck ip(1).
        let (_d, _) = s.acquire_at(ip(4), later).unwrap();
        assert!(!ea2.happened());
    }

    /// An owner evicted once (by the timed burst of the module docs' limit) and retrying after
    /// a person's interval is not the first victim: its strike has lapsed, so the oldest
    /// strike-free connection goes. The same address reconnecting within milliseconds of its
    /// eviction (as an evicted attacker does) still is the first victim.
    #[test]
    fn an_owner_retrying_after_seconds_is_not_the_first_victim() {
        let s = Slots::new(16, 2, 1);
        let now = Instant::now();
        let (owner, mut owner_evicted) = s.acquire_at(ip(100), now).unwrap();
        let (a, _) = s.acquire_at(ip(1), now).unwrap();
        let (b, _) = s.acquire_at(ip(2), now).unwrap();
        assert!(
            owner_evicted.happened(),
            "the burst evicted the owner: it is struck"
        );
        drop((owner, a, b));
        assert_eq!(s.counts(), (0, 0));

        // Within milliseconds the struck address is still the first to go.
        let soon = now + Duration::from_millis(50);
        let (_c, mut ec) = s.acquire_at(ip(3), soon).unwrap();
        let (again, mut again_evicted) = s.acquire_at(ip(100), soon).unwrap();
        let (_d, _) = s.acquire_at(ip(4), soon).unwrap();
        assert!(
            again_evicted.happened() && !ec.happened(),
            "a quick reconnect is struck"
        );
        drop(again);
        drop((_c, _d));

        // The person retries 3 s after its last eviction: strike-free, so the oldest goes.
        let retry = soon + Duration::from_secs(3);
        let (_e, mut ee) = s.acquire_at(ip(5), retry).unwrap();
        let (_owner, mut owner_evicted) = s.acquire_at(ip(100), retry).unwrap();
        let (_f, _) = s.acquire_at(ip(6), retry).unwrap();
        assert!(ee.happened(), "the oldest strike-free connection goes");
        assert!(
            !owner_evicted.happened(),
            "the owner's retry is not the first victim"
        );
    }

    /// A stranger that comes back within milliseconds of each eviction keeps its strikes for as
    /// long as it keeps that up (each eviction renews them), far past [`STRIKE_MEMORY`]; a
    /// pause longer than that clears them.
    #[test]
    fn strikes_pile_up_while_evictions_keep_coming_and_clear_after_a_pause() {
        let s = Slots::new(16, 2, 2);
        let start = Instant::now();
        let mut now = start;
        let (_a, _) = s.acquire_at(ip(1), now).unwrap();
        let (_b, _) = s.acquire_at(ip(2), now).unwrap();
        // Ten seconds of ip(1) and ip(2) evicting each other, 100 ms apart.
        let mut held = Vec::new();
        for step in 0..100u8 {
            now += Duration::from_millis(100);
            held.push(s.acquire_at(ip(1 + step % 2), now).unwrap());
        }
        assert!(now - start > STRIKE_MEMORY * 4);
        let strikes = |source, at| s.with(|t| t.strikes(&source, at));
        assert_eq!(strikes(ip(1), now) + strikes(ip(2), now), 100);
        assert!(strikes(ip(1), now) >= 49 && strikes(ip(2), now) >= 49);
        // A newcomer from a fresh address evicts one of them, not the other way round.
        let (_fresh, mut fresh_evicted) = s.acquire_at(ip(3), now).unwrap();
        let (_next, _) = s.acquire_at(ip(4), now).unwrap();
        assert!(!fresh_evicted.happened(), "the struck strangers go first");
        // After a pause longer than the memory, nothing is left.
        let later = now + STRIKE_MEMORY + Duration::from_millis(1);
        assert_eq!(strikes(ip(1), later) + strikes(ip(2), later), 0);
    }

    #[test]
    fn the_strike_memory_is_bounded() {
        let s = Slots::new(4, 1, 1);
        let now = Instant::now();
        let mut last = None;
        for n in 0..(STRIKE_SOURCES as u32 + 10) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            last = Some(s.acquire_at(source, now).unwrap());
        }
        let n = s.with(|t| t.strikes.len());
        assert!(n <= STRIKE_SOURCES, "{n} sources remembered");
        drop(last);
    }

    #[test]
    fn promoted_connections_are_never_evicted_and_evicted_ones_cannot_promote() {
        let s = Slots::new(3, 2, 2);
        let (mut a, mut ea) = s.acquire(ip(1)).unwrap();
        assert!(a.promote());
        let (mut b, _) = s.acquire(ip(2)).unwrap();
        let (_c, mut ec) = s.acquire(ip(3)).unwrap();
        assert_eq!(s.counts(), (3, 2));
        // The pending budget is full: the newcomer evicts a pending one (the oldest), never `a`.
        let (mut d, mut ed) = s.acquire(ip(4)).unwrap();
        assert!(!ea.happened() && !ec.happened());
        assert!(!b.promote(), "b was evicted: its PAKE message is not taken");
        drop(b);
        assert_eq!(
            s.counts(),
            (3, 2),
            "an evicted slot's drop releases nothing twice"
        );
        // Every slot taken and the pending budget not full: refused, nobody evicted.
        assert!(d.promote());
        assert_eq!(s.counts(), (3, 1));
        assert_eq!(s.acquire(ip(5)).unwrap_err(), NoSlot::Full);
        assert!(!ec.happened() && !ed.happened());
        // Only promoted connections left: refused.
        let s = Slots::new(2, 1, 1);
        let (mut x, _) = s.acquire(ip(1)).unwrap();
        assert!(x.promote());
        let (mut y, _) = s.acquire(ip(2)).unwrap();
        assert!(y.promote());
        assert_eq!(s.acquire(ip(3)).unwrap_err(), NoSlot::Full);
    }

    #[tokio::test]
    async fn the_evicted_task_is_told_and_a_promoted_one_never() {
        let s = Slots::new(16, 1, 1);
        let (mut a, ea) = s.acquire(ip(1)).unwrap();
        assert!(a.promote());
        let (_b, eb) = s.acquire(ip(2)).unwrap();
        let (_c, _) = s.acquire(ip(3)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), eb.wait())
            .await
            .expect("the evicted connection is told");
        // A promoted connection's eviction never comes: its wait stays pending although its
        // sender is gone.
        let mut wait = std::pin::pin!(ea.wait());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        drop(a);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
    }
}
