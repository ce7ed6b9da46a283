//! Who is on the other end of a loopback connection: only the companion's own user may use the
//! sign-in listener.
//!
//! Loopback is shared by every user of the machine. Without this check another local user who
//! learns the sign-in's `state` could sign in to Amazon as themselves and deliver *their*
//! authorization code to the listener, linking the owner's speaker to their account (account
//! injection, RFC 6749 §10.12; RFC 8252 §8.3 notes that loopback listeners are reachable by any
//! local process). The `state` is kept off every command line ([`super::launch`]), and this
//! check refuses connections that other users open at all.
//!
//! **Linux**: the kernel lists every TCP socket of the network namespace in `/proc/net/tcp` and
//! `/proc/net/tcp6` with the uid that created it. For an accepted connection, the client's
//! socket is the row whose local address is our peer address and whose remote address is our
//! local address; our own accepted socket is the mirror row, and carries our uid. The connection
//! is accepted only when both rows are found and name the same uid. A row in TIME_WAIT (inode 0,
//! printed with uid 0) does not count: its owner is unknown.
//!
//! **Elsewhere** no unprivileged, documented API maps a loopback TCP connection to a user
//! (macOS and the BSDs expose socket owners only through `sysctl` pcb lists meant for `netstat`;
//! Windows' `GetExtendedTcpTable` gives a pid per connection, from which the token's user can be
//! read). Those are not implemented here, so on other systems [`check`] answers
//! [`PeerCheck::Unsupported`] and the listener relies on the secrecy of the `state` and of the
//! one-time start URL alone. docs/companion.md ("Sign-in security") says so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the peer check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCheck {
    /// The peer socket belongs to the same uid as this process's socket.
    SameUser,
    /// The peer socket belongs to another uid.
    OtherUser {
        /// The peer's uid.
        peer: u32,
        /// The companion's own uid (the only one allowed).
        ours: u32,
    },
    /// The rows could not be found or read (the peer already closed, or /proc is missing):
    /// refused, since nobody can say who it was.
    Unknown,
    /// This operating system has no check here (see the module docs): allowed.
    Unsupported,
}

impl PeerCheck {
    /// True when the connection may be served.
    pub fn allowed(self) -> bool {
        matches!(self, PeerCheck::SameUser | PeerCheck::Unsupported)
    }
}

/// Checks the connection whose local address is `local` and remote address is `peer`
/// (blocking: reads two small procfs files).
pub fn check(local: SocketAddr, peer: SocketAddr) -> PeerCheck {
    if cfg!(target_os = "linux") {
        let mut rows = Vec::new();
        // thread-self: this thread's network namespace (a thread may have joined another one;
        // /proc/net follows the process's main thread). Older kernels: /proc/net.
        let base = if std::path::Path::new("/proc/thread-self/net").exists() {
            "/proc/thread-self/net"
        } else {
            "/proc/net"
        };
        for file in ["tcp", "tcp6"] {
            if let Ok(text) = std::fs::read_to_string(format!("{base}/{file}")) {
                rows.extend(text.lines().filter_map(parse_row));
            }
        }
        judge(&rows, local, peer)
    } else {
        PeerCheck::Unsupported
    }
}

/// One socket of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    uid: u32,
    inode: u64,
}

fn judge(rows: &[Row], local: SocketAddr, peer: SocketAddr) -> PeerCheck {
    let find = |l: SocketAddr, r: SocketAddr| {
        rows.iter()
            .find(|row| row.local == l && row.remote == r && row.inode != 0)
            .map(|row| row.uid)
    };
    let local = unmapped(local);
    let peer = unmapped(peer);
    match (find(local, peer), find(peer, local)) {
        (Some(ours), Some(theirs)) if ours == theirs => PeerCheck::SameUser,
        (Some(ours), Some(theirs)) => PeerCheck::OtherUser { peer: theirs, ours },
        _ => PeerCheck::Unknown,
    }
}

/// `::ffff:a.b.c.d` as the IPv4 address it is (an IPv6 socket talking to 127.0.0.1).
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// `  0: 0100007F:1F90 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000  1000 0 12345 …`
fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next().filter(|s| s.ends_with(':'))?;
    let local = parse_addr(fields.next()?)?;
    let remote = parse_addr(fields.next()?)?;
    // st, tx:rx queue, tr:tm->when, retrnsmt
    let mut fields = fields.skip(4);
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(Row {
        local: unmapped(local),
        remote: unmapped(remote),
        uid,
        inode,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6). The kernel prints each 32-bit word
/// of the network-order address as a host-order integer, the port as a plain number.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex4(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    fn row(local: &str, remote: &str, uid: u32, inode: u64) -> String {
        format!("   3: {local} {remote} 01 00000000:00000000 00:00000000 00000000  {uid}        0 {inode} 1 0000000000000000 20 4 30 10 -1")
    }

    #[test]
    fn parses_the_kernel_format_both_families() {
        let lo = hex4(Ipv4Addr::LOCALHOST);
        let r = parse_row(&row(&format!("{lo}:1F90"), &format!("{lo}:D2C4"), 1000, 77)).unwrap();
        assert_eq!(r.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(r.remote, "127.0.0.1:53956".parse().unwrap());
        assert_eq!((r.uid, r.inode), (1000, 77));
        let v6_lo = format!("{}{}", "00000000".repeat(3), {
            let b = Ipv6Addr::LOCALHOST.octets();
            format!("{:08X}", u32::from_ne_bytes([b[12], b[13], b[14], b[15]]))
        });
        let r = parse_row(&row(
            &format!("{v6_lo}:0050"),
            &format!("{v6_lo}:0051"),
            0,
            9,
        ))
        .unwrap();
        assert_eq!(r.local, "[::1]:80".parse().unwrap());
        assert!(parse_row("  sl  local_address rem_address   st tx_queue").is_none());
    }

    #[test]
    fn only_a_live_socket_of_the_same_uid_passes() {
        let ours: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let r = |local, remote, uid, inode| Row {
            local,
            remote,
            uid,
            inode,
        };
        let same = [r(ours, peer, 1000, 1), r(peer, ours, 1000, 2)];
        assert_eq!(judge(&same, ours, peer), PeerCheck::SameUser);
        let other = [r(ours, peer, 1000, 1), r(peer, ours, 1001, 2)];
        assert_eq!(
            judge(&other, ours, peer),
            PeerCheck::OtherUser {
                peer: 1001,
                ours: 1000
            }
        );
        // A closed peer (TIME_WAIT: inode 0, uid 0) is unknown even to root.
        let gone = [r(ours, peer, 0, 1), r(peer, ours, 0, 0)];
        assert_eq!(judge(&gone, ours, peer), PeerCheck::Unknown);
        assert!(!PeerCheck::Unknown.allowed());
        // An IPv6 socket talking to 127.0.0.1 is listed with mapped addresses.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:50000".parse().unwrap();
        assert_eq!(unmapped(mapped), peer);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_loopback_connection_is_our_own() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(
            check(server.local_addr().unwrap(), peer),
            PeerCheck::SameUser
        );
        drop(client);
    }
}
