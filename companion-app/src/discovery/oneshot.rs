//! A one-shot mDNS query (RFC 6762 §5.1) beside the long-lived browse: finds a speaker that is
//! already advertising in one round trip.
//!
//! Why it exists (measured, `docs/benchmarks.md`): a browse through mdns-sd is answered by the
//! speaker's mdns-sd responder (a) only after a random 10–50 ms delay (RFC 6762 §6, shared PTR
//! records), on top of the browser's own random 10–50 ms before its first query, and (b) not
//! at all when the query lands within 1 s of the responder's last multicast of the records: it
//! enforces "at most one multicast per record per second" by dropping the answer, even for a
//! query asking for a unicast reply (the QU bit; mdns-sd 0.21.7 ignores it). The browse then
//! resolves on its retry, ~1.05 s later. That happens whenever the companion starts within
//! ~3 s of the speaker's window opening or closing (each change re-probes and announces twice).
//!
//! A query sent from a port other than 5353 is a "one-shot" (legacy) query: RFC 6762 §6.7 says
//! the responder MUST answer it by unicast, to the querier's address and port, with the
//! question echoed and TTLs of at most 10 s. Unicast answers are not multicasts, so neither the
//! rate limit nor the shared-record delay applies: mdns-sd (and avahi, Apple's mDNSResponder,
//! python-zeroconf) answer at once, with the PTR, SRV, TXT and A records in one packet.
//!
//! So the companion sends that query on each selected interface at start (and twice more within
//! half a second, for a lost packet or a speaker still probing), reads the unicast answers for
//! [`LISTEN`], and reports each complete one (PTR → SRV + TXT + A) as a sighting through the
//! same TXT parsing as the browse. The browse keeps running: it is what sees speakers that
//! appear later, changes and goodbyes. A one-shot answer never replaces what the browse already
//! reported for the same instance ([`Resolved`]), since the browse's is richer (IPv6 addresses).
//! A speaker seen through a one-shot answer only is verified with a one-shot query too (mdns-sd
//! has no record of it, so its own verify would never report it gone). IPv4 only: the browse
//! covers IPv6.
//!
//! Answers are untrusted input: the parser is bounded (packet size, record count, name length,
//! compression pointers only backwards), never panics, and keeps only answers to our query id
//! from port 5353.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared_protocol::discovery::MDNS_SERVICE_TYPE;

/// When the query is sent, from the start: at once, then again for a lost packet or a speaker
/// that was still probing (it answers nothing until it has announced).
pub const SEND_AT: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(150),
    Duration::from_millis(500),
];

/// How long answers are read. Later speakers are found by the browse.
pub const LISTEN: Duration = Duration::from_millis(1500);

/// The mDNS group and port.
const MDNS_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353);
/// The largest answer read (RFC 6762 §17: 9000 bytes).
const MAX_PACKET: usize = 9000;
/// Records read from one answer at most.
const MAX_RECORDS: usize = 256;
/// A DNS name's longest wire length (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;

/// One speaker as a one-shot answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The instance's full name (`avs-<id>._avs-pair._tcp.local.`), as the browse names it.
    pub instance: String,
    /// The link's port (SRV).
    pub port: u16,
    /// The TXT record's RDATA, undecoded.
    pub txt: Vec<u8>,
    /// The host's IPv4 addresses (A records of the SRV target).
    pub addrs: Vec<Ipv4Addr>,
}

/// Why an answer was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Ends inside a header, name or record.
    #[error("truncated")]
    Truncated,
    /// A name is longer than 255 bytes or its compression pointer does not point backwards.
    #[error("bad name")]
    BadName,
    /// Not a response to our query (a query, another id, an error code).
    #[error("not an answer to this query")]
    NotOurs,
}

/// The query: one PTR question for the service type, class IN, id `id`. No QU bit: a one-shot
/// query is answered by unicast because of its source port.
pub fn query_packet(id: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // flags 0, 1 question
    for label in MDNS_SERVICE_TYPE.split('.').filter(|l| !l.is_empty()) {
        // The service type's labels are short constants.
        p.push(label.len().min(63) as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&TYPE_PTR.to_be_bytes());
    p.extend_from_slice(&CLASS_IN.to_be_bytes());
    p
}

struct Reader<'a> {
    p: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).ok_or(WireError::Truncated)?;
        let s = self.p.get(self.at..end).ok_or(WireError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn name(&mut self) -> Result<String, WireError> {
        let (name, next) = read_name(self.p, self.at)?;
        self.at = next;
        Ok(name)
    }
}

/// Reads the name at `at` (following compression pointers, each strictly backwards); returns it
/// as dotted text with a trailing dot (as mdns-sd names instances) and where it ends in place.
fn read_name(p: &[u8], mut at: usize) -> Result<(String, usize), WireError> {
    let mut out = String::new();
    let mut wire_len = 0usize;
    let mut end = None;
    let mut floor = at;
    loop {
        let len = *p.get(at).ok_or(WireError::Truncated)?;
        match len {
            0 => {
                let end = end.unwrap_or(at + 1);
                if out.is_empty() {
                    out.push('.');
                }
                return Ok((out, end));
            }
            l if l & 0xC0 == 0xC0 => {
                let lo = *p.get(at + 1).ok_or(WireError::Truncated)?;
                let target = usize::from(l & 0x3F) << 8 | usize::from(lo);
                if target >= floor {
                    return Err(WireError::BadName);
                }
                end.get_or_insert(at + 2);
                floor = target;
                at = target;
            }
            l if l & 0xC0 != 0 => return Err(WireError::BadName),
            l => {
                let l = usize::from(l);
                let label = p.get(at + 1..at + 1 + l).ok_or(WireError::Truncated)?;
                wire_len += l + 1;
                if wire_len > MAX_NAME {
                    return Err(WireError::BadName);
                }
                out.push_str(&String::from_utf8_lossy(label));
                out.push('.');
                at += 1 + l;
            }
        }
    }
}

/// Reads a response to query `id`: every instance of the service it describes completely
/// (PTR, SRV, TXT and at least one A record of the SRV target). Anything else in it is ignored.
pub fn parse_answers(packet: &[u8], id: u16) -> Result<Vec<Answer>, WireError> {
    let mut r = Reader { p: packet, at: 0 };
    let got_id = r.u16()?;
    let flags = r.u16()?;
    // QR set, opcode 0, rcode 0.
    if got_id != id || flags & 0x8000 == 0 || flags & 0x7800 != 0 || flags & 0x000F != 0 {
        return Err(WireError::NotOurs);
    }
    let qd = usize::from(r.u16()?);
    let counts = [r.u16()?, r.u16()?, r.u16()?];
    for _ in 0..qd.min(MAX_RECORDS) {
        r.name()?;
        r.take(4)?;
    }
    let total = counts.iter().map(|&c| usize::from(c)).sum::<usize>();
    let mut records = Records::default();
    for _ in 0..total.min(MAX_RECORDS) {
        records.read(&mut r, packet)?;
    }
    Ok(records.answers())
}

/// The records of a response that describe instances of the service, by owner name. A response
/// may carry them in any order and section, so they are collected first and joined after.
#[derive(Default)]
struct Records {
    ptrs: Vec<String>,
    srvs: Vec<(String, u16, String)>,
    txts: Vec<(String, Vec<u8>)>,
    a: Vec<(String, Ipv4Addr)>,
}

impl Records {
    /// Reads the record at `r` and keeps it if it is one of ours.
    fn read(&mut self, r: &mut Reader<'_>, packet: &[u8]) -> Result<(), WireError> {
        let owner = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()? & 0x7FFF; // the top bit is mDNS's cache-flush flag
        r.take(4)?; // TTL: the browse keeps the lifetime; a one-shot answer is used at once
        let rdlen = usize::from(r.u16()?);
        let start = r.at;
        let rdata = r.take(rdlen)?;
        if class != CLASS_IN {
            return Ok(());
        }
        match rtype {
            TYPE_PTR if owner.eq_ignore_ascii_case(MDNS_SERVICE_TYPE) => {
                let (target, _) = read_name(packet, start)?;
                if !self.ptrs.iter().any(|p| p.eq_ignore_ascii_case(&target)) {
                    self.ptrs.push(target);
                }
            }
            TYPE_SRV if rdlen >= 7 => {
                let port = u16::from_be_bytes([rdata[4], rdata[5]]);
                let (target, _) = read_name(packet, start + 6)?;
                self.srvs.push((owner, port, target));
            }
            TYPE_TXT => self.txts.push((owner, rdata.to_vec())),
            TYPE_A if rdlen == 4 => self
                .a
                .push((owner, Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]))),
            _ => {}
        }
        Ok(())
    }

    /// Every instance with a PTR, its SRV, its TXT and at least one address of the SRV target.
    fn answers(self) -> Vec<Answer> {
        let mut out = Vec::new();
        for instance in self.ptrs {
            let Some((_, port, target)) = self
                .srvs
                .iter()
                .find(|s| s.0.eq_ignore_ascii_case(&instance))
            else {
                continue;
            };
            let Some((_, txt)) = self
                .txts
                .iter()
                .find(|t| t.0.eq_ignore_ascii_case(&instance))
            else {
                continue;
            };
            let mut addrs: Vec<Ipv4Addr> = self
                .a
                .iter()
                .filter(|(o, _)| o.eq_ignore_ascii_case(target))
                .map(|(_, ip)| *ip)
                .collect();
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                continue;
            }
            out.push(Answer {
                port: *port,
                txt: txt.clone(),
                addrs,
                instance,
            });
        }
        out
    }
}

/// The instances the browse has reported: a one-shot answer for one of them is dropped (the
/// browse's report is newer or richer). Shared by the browse thread and the one-shot thread;
/// each reports while holding it, so their reports reach the merge in a consistent order.
#[derive(Debug, Clone, Default)]
pub struct Resolved(Arc<Mutex<HashSet<String>>>);

impl Resolved {
    /// Runs `report` unless the browse has reported `instance`.
    pub fn unless_browsed(&self, instance: &str, report: impl FnOnce()) {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&instance.to_ascii_lowercase()) {
            report();
        }
    }

    /// True when the browse has reported `instance`.
    pub fn contains(&self, instance: &str) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.contains(&instance.to_ascii_lowercase())
    }

    /// Marks `instance` as reported by the browse and runs `report`.
    pub fn browsed(&self, instance: &str, report: impl FnOnce()) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(instance.to_ascii_lowercase());
        report();
    }
}

/// The IPv4 addresses to send the query from: each up interface's (those named, if any).
pub fn query_interfaces(names: Option<&[String]>) -> Vec<Ipv4Addr> {
    let Ok(all) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<Ipv4Addr> = all
        .into_iter()
        .filter(|i| match names {
            Some(n) => n.contains(&i.name),
            None => i.is_oper_up() || i.is_loopback(),
        })
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Sends the one-shot query from a fresh socket on each of `interfaces` at the [`SEND_AT`]
/// times (those before `listen`) and hands every complete answer to `on_answer`, until `listen`
/// ([`LISTEN`] at start) has passed or `stop` is set. Blocking: run it on its own thread.
pub fn run(
    interfaces: &[Ipv4Addr],
    listen: Duration,
    stop: &AtomicBool,
    mut on_answer: impl FnMut(Answer),
) -> std::io::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let s2 = socket2::SockRef::from(&socket);
    s2.set_multicast_ttl_v4(255)?;
    s2.set_multicast_loop_v4(true)?;
    let id: u16 = rand::random();
    let query = query_packet(id);
    let started = Instant::now();
    let mut sent = 0;
    let mut buf = vec![0u8; MAX_PACKET];
    while !stop.load(Ordering::Relaxed) {
        let now = started.elapsed();
        if now >= listen {
            break;
        }
        if let Some(at) = SEND_AT.get(sent) {
            if now >= *at {
                send_query(&socket, interfaces, &query);
                sent += 1;
                continue;
            }
        }
        let next_send = SEND_AT.get(sent).copied().unwrap_or(listen);
        // Wake at the next send, the end, or every 100 ms to notice `stop`.
        let wait = next_send
            .min(listen)
            .saturating_sub(now)
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        socket.set_read_timeout(Some(wait))?;
        receive(&socket, &mut buf, id, &mut on_answer)?;
    }
    Ok(())
}

/// Sends `query` out of each of `interfaces` (one that fails is skipped: the others may
/// still reach the speaker).
fn send_query(socket: &UdpSocket, interfaces: &[Ipv4Addr], query: &[u8]) {
    let s2 = socket2::SockRef::from(socket);
    for ip in interfaces {
        let out = s2
            .set_multicast_if_v4(ip)
            .and_then(|()| socket.send_to(query, MDNS_V4));
        if let Err(e) = out {
            tracing::debug!(interface = %ip, "one-shot mDNS query not sent: {e}");
        }
    }
}

/// Waits (up to the socket's read timeout) for one packet and hands its complete answers to
/// `on_answer`. A timeout is no error; a packet not from the mDNS port or not an answer to
/// query `id` is skipped.
fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    id: u16,
    on_answer: &mut impl FnMut(Answer),
) -> std::io::Result<()> {
    match socket.recv_from(buf) {
        Ok((n, from)) => {
            // Responders answer from the mDNS port (RFC 6762 §6.7).
            if from.port() != MDNS_V4.port() {
                return Ok(());
            }
            match parse_answers(buf.get(..n).unwrap_or_default(), id) {
                Ok(answers) => answers.into_iter().for_each(on_answer),
                Err(e) => tracing::debug!(%from, "ignoring an mDNS answer: {e}"),
            }
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The socket addresses of an answer, for an [`super::Endpoint::Tcp`].
pub fn socket_addrs(answer: &Answer) -> Vec<SocketAddr> {
    answer
        .addrs
        .iter()
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .map(|ip| SocketAddr::new(IpAddr::V4(*ip), answer.port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(out: &mut Vec<u8>, n: &str) {
        for l in n.split('.').filter(|l| !l.is_empty()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
    }

    fn record(out: &mut Vec<u8>, owner: &[u8], rtype: u16, class: u16, rdata: &[u8]) {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&10u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }

    /// An answer shaped like mdns-sd's legacy-unicast one: the question echoed, the PTR as the
    /// answer, SRV/TXT/A as additionals, names compressed against the question.
    fn answer(id: u16, with_a: bool) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&0x8400u16.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, if with_a { 3 } else { 2 }]);
        let q = p.len(); // 12
        name(&mut p, MDNS_SERVICE_TYPE);
        p.extend_from_slice(&[0, 12, 0, 1]);
        let ptr_owner = [0xC0, q as u8];
        // PTR rdata: "avs-d1" + pointer to the type.
        let mut inst = vec![6];
        inst.extend_from_slice(b"avs-d1");
        inst.extend_from_slice(&ptr_owner);
        record(&mut p, &ptr_owner, TYPE_PTR, CLASS_IN, &inst);
        let inst_at = p.len() - inst.len();
        let inst_ptr = [0xC0, inst_at as u8];
        let mut srv = vec![0, 0, 0, 0, 0x1B, 0x58]; // port 7000
        name(&mut srv, "avs-d1.local.");
        record(&mut p, &inst_ptr, TYPE_SRV, CLASS_IN | 0x8000, &srv);
        let host_at = p.len() - (srv.len() - 6);
        record(&mut p, &inst_ptr, TYPE_TXT, CLASS_IN | 0x8000, b"\x05id=d1");
        if with_a {
            record(
                &mut p,
                &[0xC0, host_at as u8],
                TYPE_A,
                CLASS_IN | 0x8000,
                &[10, 0, 0, 1],
            );
        }
        p
    }

    #[test]
    fn a_complete_answer_names_the_instance_port_txt_and_address() {
        let got = parse_answers(&answer(7, true), 7).unwrap();
        assert_eq!(
            got,
            vec![Answer {
                instance: format!("avs-d1.{MDNS_SERVICE_TYPE}"),
                port: 7000,
                txt: b"\x05id=d1".to_vec(),
                addrs: vec![Ipv4Addr::new(10, 0, 0, 1)],
            }]
        );
    }

    /// A real answer: python-zeroconf 0.154 (another responder than the agent's mdns-sd) to
    /// [`query_packet`] with id 0x5a5a, captured across a veth (also `fuzz/seeds/mdns_answer/`).
    /// Names compressed, an NSEC record among the additionals, TXT in its own order.
    const ZEROCONF_ANSWER: [&str; 6] = [
        "5a5a84000001000100000004095f6176732d70616972045f746370056c6f63616c00000c0001c00c",
        "000c000100001194000a076176732d7a6331c00cc03200210001000000780010000000001bd30761",
        "76732d7a6331c01bc04e002f0001000000780005c04e000140c03200100001000011940069057665",
        "723d311269643d6b69746368656e2d737065616b65720c6e616d653d4b69746368656e0870616972",
        "65643d3009706169723d6f70656e2f7365633d7370616b65322d656432353531392d686b64662d73",
        "68613235362d6368616368613230706f6c7931333035c04e000100010000007800040a580001",
    ];

    #[test]
    fn python_zeroconfs_answer_to_the_one_shot_query_is_read() {
        let hex: String = ZEROCONF_ANSWER.concat();
        let packet: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let got = parse_answers(&packet, 0x5a5a).unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].instance, "avs-zc1._avs-pair._tcp.local.");
        assert_eq!(got[0].port, 7123);
        assert_eq!(got[0].addrs, vec![Ipv4Addr::new(10, 88, 0, 1)]);
        assert!(got[0].txt.starts_with(b"\x05ver=1\x12id=kitchen-speaker"));
    }

    #[test]
    fn a_one_shot_answer_never_replaces_what_the_browse_reported() {
        let r = Resolved::default();
        let mut reported = Vec::new();
        r.unless_browsed("avs-d1._avs-pair._tcp.local.", || {
            reported.push("one-shot 1")
        });
        r.browsed("avs-d1._avs-pair._tcp.local.", || reported.push("browse"));
        // Names are case-insensitive: the same instance.
        r.unless_browsed("AVS-D1._avs-pair._tcp.local.", || {
            reported.push("one-shot 2")
        });
        assert_eq!(reported, ["one-shot 1", "browse"]);
        assert!(r.contains("avs-d1._AVS-PAIR._tcp.local."));
        assert!(!r.contains("avs-d2._avs-pair._tcp.local."));
    }

    #[test]
    fn incomplete_foreign_and_broken_answers_give_nothing() {
        // No address record: not usable yet (the browse will complete it).
        assert_eq!(parse_answers(&answer(7, false), 7), Ok(vec![]));
        // Another query's answer.
        assert_eq!(parse_answers(&answer(8, true), 7), Err(WireError::NotOurs));
        // Our own query looped back.
        assert_eq!(parse_answers(&query_packet(7), 7), Err(WireError::NotOurs));
        // Cut anywhere: never a panic, never an answer missing a part.
        let full = answer(7, true);
        for n in 0..full.len() {
            if let Ok(a) = parse_answers(&full[..n], 7) {
                assert!(a.is_empty(), "cut at {n}: {a:?}");
            }
        }
        // A compression pointer to itself (a loop) is refused.
        let mut looped = full[..12].to_vec();
        looped[5] = 1; // one question
        looped.extend_from_slice(&[0xC0, 12, 0, 12, 0, 1]);
        assert_eq!(parse_answers(&looped, 7), Err(WireError::BadName));
    }
}
