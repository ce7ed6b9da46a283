//! The NetworkManager backend, for real, over real D-Bus: each test starts its own
//! `dbus-daemon` on a private socket and python-dbusmock's `networkmanager` template on it
//! (Debian python3-dbusmock; scripts/lib/deps.sh installs it), and drives
//! [`NmBackend`] against it. The host's buses are never touched.
//!
//! The template answers `AddAndActivateConnection` with instant success and has no failure
//! path, so the failure tests replace that method (dbusmock's `AddMethod`) with one that does
//! what NetworkManager does on the wire, from its D-Bus API reference
//! (introspection/org.freedesktop.NetworkManager.xml, ...Device.xml, nm-dbus-interface.h):
//! store the profile (`Settings.AddConnection`), return `(connection, active_connection)`, and
//! walk the device through `StateChanged(new, old, reason)`: a wrong PSK goes CONFIG 50 →
//! NEED_AUTH 60 (reason 8, supplicant disconnect) → FAILED 120 (reason 7, NO_SECRETS); an SSID
//! never seen fails 50 → 120 (53, SSID_NOT_FOUND); a DHCP timeout 50 → 60 → 70 IP_CONFIG →
//! 120 (5, IP_CONFIG_UNAVAILABLE).
#![allow(clippy::unwrap_used)]
#![cfg(all(target_os = "linux", feature = "networkmanager"))]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbus::arg::{PropMap, RefArg};
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::Connection;
use dbus::Path;
use device_agent::lwa_client::LwaClient;
use device_agent::network::nm::{NmBackend, NmTimeouts};
use device_agent::network::{ConnectivityChecker, Network, NetworkBackend};
use lwa_emulator::Emulator;
use shared_protocol::lwa::LwaEndpoints;
use shared_protocol::message::{
    ConnectWifi, Ssid, WifiBand, WifiFailure, WifiResult, WifiSecurity, WifiStage,
};
use shared_protocol::secret::WifiPassphrase;

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const MOCK: &str = "org.freedesktop.DBus.Mock";
const DEV: &str = "/org/freedesktop/NetworkManager/Devices/wlan0";
const T: Duration = Duration::from_secs(5);

/// A private bus with the mock on it; both killed (by pid) and the directory removed on drop.
struct MockNm {
    _dir: tempfile::TempDir,
    daemon: Child,
    mock: Child,
    address: String,
    conn: Connection,
}

impl Drop for MockNm {
    fn drop(&mut self) {
        let _ = self.mock.kill();
        let _ = self.mock.wait();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl MockNm {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:dir={}</listen>
<auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/><allow user="*"/></policy></busconfig>"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        let mock = Command::new("/usr/bin/python3")
            .args(["-m", "dbusmock", "--system", "--template", "networkmanager"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3-dbusmock");
        let mut ch = dbus::channel::Channel::open_private(&address).unwrap();
        ch.register().unwrap();
        let conn = Connection::from(ch);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (has,): (bool,) = conn
                .with_proxy("org.freedesktop.DBus", "/org/freedesktop/DBus", T)
                .method_call("org.freedesktop.DBus", "NameHasOwner", (NM,))
                .unwrap();
            if has {
                break;
            }
            assert!(Instant::now() < deadline, "the mock did not take its name");
            // Wait for the next bus message (NameOwnerChanged arrives when it does).
            let _ = conn.process(Duration::from_millis(50));
        }
        let nm = Self {
            _dir: dir,
            daemon,
            mock,
            address,
            conn,
        };
        let (_dev,): (String,) = nm.call(NM_PATH, "AddWiFiDevice", ("wlan0", "wlan0", 100u32));
        // Home: WPA2 on 5 GHz (two APs: the scan keeps the stronger); Cafe open on 2.4 GHz;
        // Office 802.1X; Lab WPA3-SAE only.
        nm.ap("home", "Home", 5180, 60, 0x100);
        nm.ap("home2", "Home", 5180, 80, 0x100);
        nm.ap("cafe", "Cafe", 2412, 50, 0);
        nm.ap("office", "Office", 5955, 40, 0x200);
        nm.ap("lab", "Lab", 5200, 30, 0x400);
        // The speaker is on Home now (a saved profile and an active connection).
        let (home,): (String,) = nm.call(NM_PATH, "AddWiFiConnection", (DEV, "home", "Home", ""));
        let (_ac,): (String,) = nm.call(
            NM_PATH,
            "AddActiveConnection",
            (
                vec![DEV],
                home.as_str(),
                "/org/freedesktop/NetworkManager/AccessPoint/home",
                "home",
                2u32,
            ),
        );
        nm
    }

    fn call<A: dbus::arg::AppendAll, R: dbus::arg::ReadAll>(&self, path: &str, m: &str, a: A) -> R {
        self.conn
            .with_proxy(NM, path, T)
            .method_call(MOCK, m, a)
            .unwrap_or_else(|e| panic!("{m}: {e:?}"))
    }

    fn ap(&self, name: &str, ssid: &str, freq: u32, strength: u8, security: u32) {
        let bssid = format!(
            "00:11:22:33:44:{:02x}",
            name.len() * 7 + usize::from(strength)
        );
        let (_p,): (String,) = self.call(
            NM_PATH,
            "AddAccessPoint",
            (
                DEV,
                name,
                ssid,
                bssid.as_str(),
                2u32,
                freq,
                54_000u32,
                strength,
                security,
            ),
        );
    }

    /// Replaces AddAndActivateConnection with one that stores the profile, takes the device off
    /// its current connection (one activation per device) and walks it through `states`
    /// (new, old, reason), as NetworkManager does.
    fn failing_activation(&self, states: &[(u32, u32, u32)]) {
        let seq: Vec<String> = states
            .iter()
            .map(|(n, o, r)| format!("({n}, {o}, {r})"))
            .collect();
        let code = format!(
            "conn = self.SettingsAddConnection(args[0])\n\
             dev = objects[args[1]]\n\
             dev.Set('{NM}.Device', 'ActiveConnection', dbus.ObjectPath('/'))\n\
             for (n, o, r) in [{}]:\n\
             \x20   dev.Set('{NM}.Device', 'State', dbus.UInt32(n))\n\
             \x20   dev.Set('{NM}.Device', 'StateReason', (dbus.UInt32(n), dbus.UInt32(r)))\n\
             \x20   dev.EmitSignal('{NM}.Device', 'StateChanged', 'uuu', [dbus.UInt32(n), dbus.UInt32(o), dbus.UInt32(r)])\n\
             ret = (dbus.ObjectPath(conn), dbus.ObjectPath('/org/freedesktop/NetworkManager/ActiveConnection/new'))\n",
            seq.join(", ")
        );
        let () = self.call(
            NM_PATH,
            "AddMethod",
            (
                NM,
                "AddAndActivateConnection",
                "a{sa{sv}}oo",
                "oo",
                code.as_str(),
            ),
        );
    }

    fn get<R: for<'b> dbus::arg::Get<'b> + 'static>(&self, path: &str, iface: &str, p: &str) -> R {
        self.conn.with_proxy(NM, path, T).get(iface, p).unwrap()
    }

    /// The SSID of the profile active on the device now.
    fn active_ssid(&self) -> Option<Vec<u8>> {
        let ac: Path<'static> = self.get(DEV, &format!("{NM}.Device"), "ActiveConnection");
        if &*ac == "/" {
            return None;
        }
        let conn: Path<'static> = self.get(&ac, &format!("{NM}.Connection.Active"), "Connection");
        let (s,): (std::collections::HashMap<String, PropMap>,) = self
            .conn
            .with_proxy(NM, conn, T)
            .method_call(format!("{NM}.Settings.Connection"), "GetSettings", ())
            .unwrap();
        let v = &s.get("802-11-wireless")?.get("ssid")?.0;
        v.as_iter()
            .map(|it| it.map(|x| x.as_u64().unwrap() as u8).collect())
            .or_else(|| dbus::arg::cast::<Vec<u8>>(&**v).cloned())
    }

    /// Asserts that a failed join of `ssid` was undone: Home is active again and the new
    /// profile is deleted.
    #[track_caller]
    fn assert_rolled_back_from(&self, ssid: &[u8]) {
        let ssid_text = String::from_utf8_lossy(ssid);
        assert_eq!(
            self.active_ssid().as_deref(),
            Some(&b"Home"[..]),
            "Home is active again after {ssid_text}"
        );
        assert!(
            !self.profiles().iter().any(|p| p == ssid),
            "the profile of {ssid_text} is deleted"
        );
    }

    /// The SSIDs of all saved profiles.
    fn profiles(&self) -> Vec<Vec<u8>> {
        let (conns,): (Vec<Path<'static>>,) = self
            .conn
            .with_proxy(NM, "/org/freedesktop/NetworkManager/Settings", T)
            .method_call(format!("{NM}.Settings"), "ListConnections", ())
            .unwrap();
        conns
            .iter()
            .filter_map(|c| {
                let (s,): (std::collections::HashMap<String, PropMap>,) = self
                    .conn
                    .with_proxy(NM, c.clone(), T)
                    .method_call(format!("{NM}.Settings.Connection"), "GetSettings", ())
                    .ok()?;
                let v = &s.get("802-11-wireless")?.get("ssid")?.0;
                v.as_iter()
                    .map(|it| it.map(|x| x.as_u64().unwrap() as u8).collect())
                    .or_else(|| dbus::arg::cast::<Vec<u8>>(&**v).cloned())
            })
            .collect()
    }

    fn backend(&self) -> NmBackend {
        NmBackend::new(
            Some("wlan0".into()),
            NmTimeouts {
                scan: Duration::from_secs(2),
                join: Duration::from_secs(10),
            },
        )
        .on_bus(self.address.clone())
    }
}

fn req(ssid: &str, pass: Option<&str>) -> ConnectWifi {
    ConnectWifi {
        ssid: Ssid::new(ssid.as_bytes().to_vec()).unwrap(),
        passphrase: pass.map(WifiPassphrase::new),
        hidden: false,
    }
}

fn checker(base: &str) -> ConnectivityChecker {
    let lwa = LwaClient::new(LwaEndpoints::from_base(base).unwrap(), None).unwrap();
    ConnectivityChecker::new(lwa, Duration::from_secs(2))
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
}

async fn connect(net: &Network, r: ConnectWifi) -> (WifiResult, Vec<WifiStage>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = net.connect(r, &tx).await;
    drop(tx);
    let mut stages = Vec::new();
    while let Some(s) = rx.recv().await {
        stages.push(s);
    }
    (out, stages)
}

fn reason(r: &WifiResult) -> Option<WifiFailure> {
    match r {
        WifiResult::Failed { reason, .. } => Some(*reason),
        WifiResult::Connected { .. } => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_lists_networks_with_security_band_and_known() {
    let nm = MockNm::start();
    let nets = nm.backend().scan().await.unwrap();
    let names: Vec<String> = nets.iter().map(|n| n.ssid.display()).collect();
    assert_eq!(
        names,
        ["Home", "Cafe", "Office", "Lab"],
        "strongest first, one per SSID"
    );
    assert_eq!(nets[0].signal, 80, "the stronger Home AP");
    assert_eq!(nets[0].security, WifiSecurity::Wpa2Psk);
    assert_eq!(nets[0].band, WifiBand::Ghz5);
    assert!(nets[0].known);
    assert_eq!(nets[1].security, WifiSecurity::Open);
    assert_eq!(nets[1].band, WifiBand::Ghz2_4);
    assert!(!nets[1].known);
    assert_eq!(nets[2].security, WifiSecurity::Enterprise);
    assert_eq!(nets[2].band, WifiBand::Ghz6);
    assert_eq!(nets[3].security, WifiSecurity::Wpa3Sae);
    let cur = nm.backend().current().await;
    assert_eq!(cur.interface.as_deref(), Some("wlan0"));
    assert_eq!(cur.ssid.unwrap().as_bytes(), b"Home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ok_then_internet_check_passes() {
    let nm = MockNm::start();
    let emu = Emulator::builder().start().await.unwrap();
    let net = Network::new(Arc::new(nm.backend()), checker(emu.base_url()));
    let (r, stages) = connect(&net, req("Cafe", None)).await;
    assert!(matches!(r, WifiResult::Connected { .. }), "{r:?}");
    assert_eq!(stages.first(), Some(&WifiStage::Associating));
    assert_eq!(stages.last(), Some(&WifiStage::CheckingInternet));
    assert_eq!(nm.active_ssid().as_deref(), Some(&b"Cafe"[..]));
    assert!(net.status().await.online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_rolls_back_to_the_previous_network() {
    let nm = MockNm::start();
    nm.failing_activation(&[(50, 100, 0), (60, 50, 8), (120, 60, 7)]);
    let net = Network::new(Arc::new(nm.backend()), checker(&closed_port()));
    let (r, stages) = connect(&net, req("Lab", Some("not the password"))).await;
    assert_eq!(reason(&r), Some(WifiFailure::WrongPassword), "{r:?}");
    match &r {
        WifiResult::Failed { message, .. } => assert_eq!(message, "Wrong password for Lab"),
        _ => unreachable!(),
    }
    assert!(stages.contains(&WifiStage::Authenticating), "{stages:?}");
    nm.assert_rolled_back_from(b"Lab");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssid_not_found() {
    let nm = MockNm::start();
    let net = Network::new(Arc::new(nm.backend()), checker(&closed_port()));
    // Not in the scan and not hidden: refused before NetworkManager is asked.
    let (r, _) = connect(&net, req("Nowhere", Some("password1"))).await;
    assert_eq!(reason(&r), Some(WifiFailure::NetworkNotFound));
    // Hidden: NetworkManager probes and gives up with SSID_NOT_FOUND.
    nm.failing_activation(&[(50, 100, 0), (120, 50, 53)]);
    let mut hidden = req("Nowhere", Some("password1"));
    hidden.hidden = true;
    let (r, _) = connect(&net, hidden).await;
    assert_eq!(reason(&r), Some(WifiFailure::NetworkNotFound), "{r:?}");
    nm.assert_rolled_back_from(b"Nowhere");
    // Enterprise is refused as unsupported, without touching the current network.
    let (r, _) = connect(&net, req("Office", Some("password1"))).await;
    assert_eq!(reason(&r), Some(WifiFailure::UnsupportedSecurity));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_timeout_is_no_address() {
    let nm = MockNm::start();
    nm.failing_activation(&[(50, 100, 0), (60, 50, 0), (70, 60, 0), (120, 70, 5)]);
    let net = Network::new(Arc::new(nm.backend()), checker(&closed_port()));
    let (r, stages) = connect(&net, req("Lab", Some("right password"))).await;
    assert_eq!(reason(&r), Some(WifiFailure::NoAddress), "{r:?}");
    assert!(stages.contains(&WifiStage::GettingAddress));
    assert_eq!(nm.active_ssid().as_deref(), Some(&b"Home"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_internet_rolls_back_and_reports_offline() {
    let nm = MockNm::start();
    let net = Network::new(Arc::new(nm.backend()), checker(&closed_port()));
    let (r, stages) = connect(&net, req("Cafe", None)).await;
    assert_eq!(reason(&r), Some(WifiFailure::NoInternet), "{r:?}");
    assert_eq!(stages.last(), Some(&WifiStage::CheckingInternet));
    nm.assert_rolled_back_from(b"Cafe");
    // The status the companion sees: offline, so it must not open the sign-in.
    let status = net.status().await;
    assert!(!status.online);
    assert!(status.can_provision);
}
