//! The NetworkManager backend, over NetworkManager's D-Bus API (no `nmcli`).
//!
//! What it calls, from NetworkManager's introspection files
//! (`introspection/org.freedesktop.NetworkManager*.xml`, the D-Bus API reference):
//!
//! - scan: `Device.Wireless.RequestScan({})`, wait for `LastScan` to change (bounded), then
//!   `GetAllAccessPoints` and each AP's `Ssid`/`Strength`/`Frequency`/`Flags`/`WpaFlags`/
//!   `RsnFlags`; "known" = a saved profile (`Settings.ListConnections` + `GetSettings`) with the
//!   same SSID bytes.
//! - join: `AddAndActivateConnection(settings, device, ap)` with `key-mgmt` `wpa-psk` (WPA2 and
//!   WPA3 transition) or `sae`, `psk` given once with `psk-flags` 0 (NetworkManager stores it;
//!   `GetSettings` never returns it). The device's `StateChanged(new, old, reason)` signal is
//!   subscribed *before* the call and drives progress: CONFIG 50 = associating, NEED_AUTH 60 =
//!   authenticating, IP_CONFIG 70 = getting an address, ACTIVATED 100 = joined, FAILED 120 = the
//!   reason says why (NO_SECRETS 7 / SUPPLICANT_* 8-11 after NEED_AUTH = wrong password,
//!   SSID_NOT_FOUND 53, IP_CONFIG_UNAVAILABLE 5 / DHCP_* 15-17 = no address).
//! - rollback: `Settings.Connection.Delete()` on the new profile, then
//!   `ActivateConnection(previous, device, "/")`: a typo never strands the speaker.
//!
//! libdbus calls block, so each operation runs on its own connection in `spawn_blocking`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbus::arg::{PropMap, RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::Connection;
use dbus::message::MatchRule;
use dbus::Path;
use shared_protocol::message::{
    ConnectWifi, Ssid, WifiBand, WifiFailure, WifiNetwork, WifiSecurity, WifiStage,
};

use super::{BackendError, BoxFuture, CurrentLink, Joined, NetworkBackend, ProgressTx, Undo};

const NM: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
const DEVICE: &str = "org.freedesktop.NetworkManager.Device";
const WIRELESS: &str = "org.freedesktop.NetworkManager.Device.Wireless";
const AP: &str = "org.freedesktop.NetworkManager.AccessPoint";
const ACTIVE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const SETTINGS: &str = "org.freedesktop.NetworkManager.Settings";
const CONNECTION: &str = "org.freedesktop.NetworkManager.Settings.Connection";
const CALL: Duration = Duration::from_secs(10);

// NMDeviceState and NMDeviceStateReason (nm-dbus-interface.h).
const STATE_CONFIG: u32 = 50;
const STATE_NEED_AUTH: u32 = 60;
const STATE_IP_CONFIG: u32 = 70;
const STATE_ACTIVATED: u32 = 100;
const STATE_FAILED: u32 = 120;
// NM80211ApFlags / NM80211ApSecurityFlags.
const AP_PRIVACY: u32 = 0x1;
const SEC_PSK: u32 = 0x100;
const SEC_8021X: u32 = 0x200;
const SEC_SAE: u32 = 0x400;
const SEC_SUITE_B: u32 = 0x2000;

/// Deadlines of the backend.
#[derive(Debug, Clone)]
pub struct NmTimeouts {
    /// Waiting for a requested scan to finish.
    pub scan: Duration,
    /// From AddAndActivateConnection to ACTIVATED or FAILED.
    pub join: Duration,
}

impl Default for NmTimeouts {
    fn default() -> Self {
        Self {
            scan: Duration::from_secs(15),
            join: Duration::from_secs(90),
        }
    }
}

/// NetworkManager over the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if set).
#[derive(Debug, Clone)]
pub struct NmBackend {
    interface: Option<String>,
    timeouts: NmTimeouts,
    /// A bus address instead of the system bus (tests run a private `dbus-daemon`).
    bus: Option<String>,
}

fn dbus_err(e: dbus::Error) -> BackendError {
    BackendError::Dbus(format!(
        "{}: {}",
        e.name().unwrap_or("error"),
        e.message().unwrap_or("")
    ))
}

/// The security of an access point from its flags (the rules of nmcli's `devices.c`).
pub fn security_of(flags: u32, wpa: u32, rsn: u32) -> WifiSecurity {
    let both = wpa | rsn;
    if both & (SEC_8021X | SEC_SUITE_B) != 0 {
        WifiSecurity::Enterprise
    } else if both & SEC_PSK != 0 {
        WifiSecurity::Wpa2Psk
    } else if rsn & SEC_SAE != 0 {
        WifiSecurity::Wpa3Sae
    } else if flags & AP_PRIVACY == 0 && both == 0 {
        WifiSecurity::Open
    } else {
        // WEP (privacy without WPA), OWE and the rest.
        WifiSecurity::Unsupported
    }
}

/// What a FAILED state's reason means to the user (`passed_auth`: NEED_AUTH was seen).
pub fn failure_of_reason(reason: u32, saw_auth: bool) -> WifiFailure {
    match reason {
        7..=10 => WifiFailure::WrongPassword,
        11 if saw_auth => WifiFailure::WrongPassword,
        11 => WifiFailure::Timeout,
        53 => WifiFailure::NetworkNotFound,
        5 | 6 | 15 | 16 | 17 => WifiFailure::NoAddress,
        _ => WifiFailure::Internal,
    }
}

struct Bus {
    conn: Connection,
}

impl Bus {
    fn open(address: Option<&str>) -> Result<Self, BackendError> {
        let conn = match address {
            None => Connection::new_system().map_err(dbus_err)?,
            Some(a) => {
                let mut ch = dbus::channel::Channel::open_private(a).map_err(dbus_err)?;
                ch.register().map_err(dbus_err)?;
                Connection::from(ch)
            }
        };
        Ok(Self { conn })
    }

    fn get<T: for<'b> dbus::arg::Get<'b> + 'static>(
        &self,
        path: &str,
        iface: &str,
        prop: &str,
    ) -> Result<T, BackendError> {
        self.conn
            .with_proxy(NM, path, CALL)
            .get(iface, prop)
            .map_err(dbus_err)
    }

    fn wifi_device(&self, interface: Option<&str>) -> Result<(String, String), BackendError> {
        let (devices,): (Vec<Path<'static>>,) = self
            .conn
            .with_proxy(NM, NM_PATH, CALL)
            .method_call(NM, "GetDevices", ())
            .map_err(dbus_err)?;
        for d in devices {
            let path = d.to_string();
            if self.get::<u32>(&path, DEVICE, "DeviceType")? != 2 {
                continue;
            }
            let name: String = self.get(&path, DEVICE, "Interface")?;
            if interface.is_none_or(|want| want == name) {
                return Ok((path, name));
            }
        }
        Err(BackendError::NoDevice(interface.map(str::to_owned)))
    }

    fn known_ssids(&self) -> Vec<(String, Vec<u8>)> {
        let Ok((conns,)) = self
            .conn
            .with_proxy(NM, SETTINGS_PATH, CALL)
            .method_call::<(Vec<Path<'static>>,), _, _, _>(SETTINGS, "ListConnections", ())
        else {
            return Vec::new();
        };
        conns
            .iter()
            .filter_map(|c| {
                let (settings,): (HashMap<String, PropMap>,) = self
                    .conn
                    .with_proxy(NM, c.to_string(), CALL)
                    .method_call(CONNECTION, "GetSettings", ())
                    .ok()?;
                let ssid = settings
                    .get("802-11-wireless")?
                    .get("ssid")
                    .and_then(|v| ssid_bytes(&v.0))?;
                Some((c.to_string(), ssid))
            })
            .collect()
    }

    fn scan(
        &self,
        interface: Option<&str>,
        wait: Duration,
    ) -> Result<Vec<WifiNetwork>, BackendError> {
        let (dev, _) = self.wifi_device(interface)?;
        self.request_scan(&dev, wait);
        let (aps,): (Vec<Path<'static>>,) = self
            .conn
            .with_proxy(NM, dev.as_str(), CALL)
            .method_call(WIRELESS, "GetAllAccessPoints", ())
            .map_err(dbus_err)?;
        let known = self.known_ssids();
        let mut best: HashMap<(Vec<u8>, u8), WifiNetwork> = HashMap::new();
        for ap in aps {
            let p = ap.to_string();
            let Ok(raw) = self.get::<Vec<u8>>(&p, AP, "Ssid") else {
                continue;
            };
            let Ok(ssid) = Ssid::new(raw.clone()) else {
                continue;
            };
            let signal = self.get::<u8>(&p, AP, "Strength").unwrap_or(0).min(100);
            let freq = self.get::<u32>(&p, AP, "Frequency").unwrap_or(0);
            let security = security_of(
                self.get(&p, AP, "Flags").unwrap_or(0),
                self.get(&p, AP, "WpaFlags").unwrap_or(0),
                self.get(&p, AP, "RsnFlags").unwrap_or(0),
            );
            let net = WifiNetwork {
                known: !raw.is_empty() && known.iter().any(|(_, k)| *k == raw),
                ssid,
                signal,
                security,
                band: WifiBand::from_mhz(freq),
            };
            let key = (raw, security as u8);
            if best.get(&key).is_none_or(|b| b.signal < net.signal) {
                best.insert(key, net);
            }
        }
        let mut out: Vec<_> = best.into_values().collect();
        out.sort_by_key(|n| std::cmp::Reverse(n.signal));
        Ok(out)
    }

    /// Asks the device for a fresh scan and waits (up to `wait`) until its `LastScan` moves;
    /// a refused request leaves the cached results.
    fn request_scan(&self, dev: &str, wait: Duration) {
        let before: Option<i64> = self.get(dev, WIRELESS, "LastScan").ok();
        let options: PropMap = HashMap::new();
        if let Err(e) = self
            .conn
            .with_proxy(NM, dev, CALL)
            .method_call::<(), _, _, _>(WIRELESS, "RequestScan", (options,))
        {
            // NotAllowed while the device is unavailable or scanning already: use what is known.
            tracing::info!(error = %dbus_err(e), "Wi-Fi scan request refused; using cached results");
        } else if let Some(before) = before {
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                let _ = self.conn.process(Duration::from_millis(200));
                if self.get::<i64>(dev, WIRELESS, "LastScan").ok() != Some(before) {
                    break;
                }
            }
        }
    }

    fn find_ap(
        &self,
        dev: &str,
        ssid: &Ssid,
    ) -> Result<Option<(String, WifiSecurity)>, BackendError> {
        let (aps,): (Vec<Path<'static>>,) = self
            .conn
            .with_proxy(NM, dev, CALL)
            .method_call(WIRELESS, "GetAllAccessPoints", ())
            .map_err(dbus_err)?;
        let mut best: Option<(String, WifiSecurity, u8)> = None;
        for ap in aps {
            let p = ap.to_string();
            if self.get::<Vec<u8>>(&p, AP, "Ssid").ok().as_deref() != Some(ssid.as_bytes()) {
                continue;
            }
            let strength = self.get::<u8>(&p, AP, "Strength").unwrap_or(0);
            let security = security_of(
                self.get(&p, AP, "Flags").unwrap_or(0),
                self.get(&p, AP, "WpaFlags").unwrap_or(0),
                self.get(&p, AP, "RsnFlags").unwrap_or(0),
            );
            if best.as_ref().is_none_or(|b| b.2 < strength) {
                best = Some((p, security, strength));
            }
        }
        Ok(best.map(|(p, s, _)| (p, s)))
    }

    fn previous_connection(&self, dev: &str) -> Option<String> {
        let ac: Path<'static> = self.get(dev, DEVICE, "ActiveConnection").ok()?;
        if &*ac == "/" {
            return None;
        }
        let conn: Path<'static> = self.get(&ac, ACTIVE, "Connection").ok()?;
        Some(conn.to_string())
    }

    fn join(
        &self,
        interface: Option<&str>,
        req: &ConnectWifi,
        progress: &ProgressTx,
        wait: Duration,
    ) -> Result<Joined, WifiFailure> {
        let (dev, _) = self.wifi_device(interface).map_err(join_failed)?;
        let ap = self.find_ap(&dev, &req.ssid).map_err(join_failed)?;
        let security = security_for(ap.as_ref().map(|(_, s)| *s), req)?;
        let previous = self.previous_connection(&dev);
        // Subscribe before the call, so no state change is missed.
        let (events, token) = self.watch_state(&dev)?;
        let settings = settings_for(req, security);
        let ap_path = ap.as_ref().map_or("/".to_owned(), |(p, _)| p.clone());
        let _ = progress.send(WifiStage::Associating);
        let (new_conn, active) = match self.add_and_activate(settings, &dev, ap_path) {
            Ok(paths) => paths,
            Err(failure) => {
                let _ = self.conn.remove_match(token);
                return Err(failure);
            }
        };
        let undo = Undo::NetworkManager {
            device: dev.clone(),
            new_connection: new_conn,
            previous,
        };
        let outcome = self.wait_for_outcome(&dev, &active, &events, progress, wait);
        let _ = self.conn.remove_match(token);
        match outcome {
            Ok(()) => Ok(Joined {
                address: self.address(&dev),
                undo,
            }),
            Err(reason) => {
                if let Err(e) = self.rollback(&undo) {
                    tracing::error!(error = %e, "rollback after a failed join failed");
                }
                Err(reason)
            }
        }
    }

    /// Collects the device's `StateChanged` signals `(new, old, reason)` from now on; the token
    /// removes the match.
    fn watch_state(&self, dev: &str) -> Result<(StateEvents, dbus::channel::Token), WifiFailure> {
        let events: StateEvents = Arc::default();
        let sink = events.clone();
        let rule = MatchRule::new_signal(DEVICE, "StateChanged").with_path(dev.to_owned());
        let token = self
            .conn
            .add_match(rule, move |(new, old, reason): (u32, u32, u32), _, _| {
                if let Ok(mut e) = sink.lock() {
                    e.push((new, old, reason));
                }
                true
            })
            .map_err(|e| join_failed(dbus_err(e)))?;
        Ok((events, token))
    }

    /// `AddAndActivateConnection`: the new connection's and the active connection's paths.
    fn add_and_activate(
        &self,
        settings: Settings,
        dev: &str,
        ap_path: String,
    ) -> Result<(String, String), WifiFailure> {
        let called: Result<(Path<'static>, Path<'static>), dbus::Error> =
            self.conn.with_proxy(NM, NM_PATH, CALL).method_call(
                NM,
                "AddAndActivateConnection",
                (settings, Path::from(dev.to_owned()), Path::from(ap_path)),
            );
        match called {
            Ok((c, a)) => Ok((c.to_string(), a.to_string())),
            Err(e) => Err(match e.name() {
                Some("org.freedesktop.NetworkManager.DoesNotExist")
                | Some("org.freedesktop.NetworkManager.Device.SpecificObjectNotFound") => {
                    WifiFailure::NetworkNotFound
                }
                _ => join_failed(dbus_err(e)),
            }),
        }
    }

    fn wait_for_outcome(
        &self,
        dev: &str,
        active: &str,
        events: &Mutex<Vec<(u32, u32, u32)>>,
        progress: &ProgressTx,
        wait: Duration,
    ) -> Result<(), WifiFailure> {
        let deadline = Instant::now() + wait;
        let mut saw_auth = false;
        let mut last_stage = None;
        loop {
            let batch: Vec<_> = events
                .lock()
                .map(|mut e| e.drain(..).collect())
                .unwrap_or_default();
            for (new, _old, reason) in batch {
                let stage = match new {
                    STATE_CONFIG => Some(WifiStage::Associating),
                    STATE_NEED_AUTH => {
                        saw_auth = true;
                        Some(WifiStage::Authenticating)
                    }
                    STATE_IP_CONFIG => Some(WifiStage::GettingAddress),
                    STATE_ACTIVATED => return Ok(()),
                    STATE_FAILED => {
                        tracing::info!(reason, "Wi-Fi device failed");
                        return Err(failure_of_reason(reason, saw_auth));
                    }
                    _ => None,
                };
                if let Some(s) = stage {
                    if last_stage != Some(s) {
                        last_stage = Some(s);
                        let _ = progress.send(s);
                    }
                }
            }
            // A join that completed before our first look (no signal left to see).
            let state: u32 = self.get(dev, DEVICE, "State").unwrap_or(0);
            let current: Option<Path<'static>> = self.get(dev, DEVICE, "ActiveConnection").ok();
            if state == STATE_ACTIVATED && current.as_deref() == Some(active) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(WifiFailure::Timeout);
            }
            let _ = self.conn.process(Duration::from_millis(100));
        }
    }

    fn address(&self, dev: &str) -> Option<String> {
        let cfg: Path<'static> = self.get(dev, DEVICE, "Ip4Config").ok()?;
        if &*cfg == "/" {
            return None;
        }
        let data: Vec<PropMap> = self
            .get(
                &cfg,
                "org.freedesktop.NetworkManager.IP4Config",
                "AddressData",
            )
            .ok()?;
        data.first()?
            .get("address")
            .and_then(|v| v.0.as_str().map(str::to_owned))
    }

    fn rollback(&self, undo: &Undo) -> Result<(), BackendError> {
        let Undo::NetworkManager {
            device,
            new_connection,
            previous,
        } = undo
        else {
            return Ok(());
        };
        let deleted = self
            .conn
            .with_proxy(NM, new_connection.as_str(), CALL)
            .method_call::<(), _, _, _>(CONNECTION, "Delete", ());
        if let Err(e) = deleted {
            tracing::warn!(error = %dbus_err(e), "could not delete the new Wi-Fi profile");
        }
        if let Some(prev) = previous {
            let _: (Path<'static>,) = self
                .conn
                .with_proxy(NM, NM_PATH, CALL)
                .method_call(
                    NM,
                    "ActivateConnection",
                    (
                        Path::from(prev.clone()),
                        Path::from(device.clone()),
                        Path::from("/"),
                    ),
                )
                .map_err(dbus_err)?;
            tracing::info!("previous network reactivated");
        }
        Ok(())
    }

    fn current(&self, interface: Option<&str>) -> CurrentLink {
        let Ok((dev, name)) = self.wifi_device(interface) else {
            return CurrentLink::default();
        };
        let ssid = self.previous_connection(&dev).and_then(|c| {
            let (settings,): (HashMap<String, PropMap>,) = self
                .conn
                .with_proxy(NM, c, CALL)
                .method_call(CONNECTION, "GetSettings", ())
                .ok()?;
            settings
                .get("802-11-wireless")?
                .get("ssid")
                .and_then(|v| ssid_bytes(&v.0))
                .and_then(|b| Ssid::new(b).ok())
        });
        CurrentLink {
            interface: Some(name),
            ssid,
            address: self.address(&dev),
        }
    }
}

fn ssid_bytes(v: &(dyn RefArg + 'static)) -> Option<Vec<u8>> {
    if let Some(b) = dbus::arg::cast::<Vec<u8>>(v) {
        return Some(b.clone());
    }
    v.as_iter()?
        .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect()
}

/// A device's `StateChanged` signals `(new, old, reason)` as a match collects them.
type StateEvents = Arc<Mutex<Vec<(u32, u32, u32)>>>;

/// A join that failed for a reason of NetworkManager's (logged; the companion hears `internal`).
fn join_failed(e: BackendError) -> WifiFailure {
    tracing::error!(error = %e, "NetworkManager join failed");
    WifiFailure::Internal
}

/// The security to join with: the access point's (`scanned`), or for a hidden network (not in
/// the scan) what the companion implies by sending a key or not; then whether this speaker
/// can join it with the passphrase given.
fn security_for(
    scanned: Option<WifiSecurity>,
    req: &ConnectWifi,
) -> Result<WifiSecurity, WifiFailure> {
    let security = match (scanned, req.hidden) {
        (Some(s), _) => s,
        (None, false) => return Err(WifiFailure::NetworkNotFound),
        // A hidden network is not in the scan: trust the companion on whether it has a key.
        (None, true) if req.passphrase.is_some() => WifiSecurity::Wpa2Psk,
        (None, true) => WifiSecurity::Open,
    };
    if !security.is_supported() {
        return Err(WifiFailure::UnsupportedSecurity);
    }
    if security.needs_passphrase() && !passphrase_fits(req, security) {
        return Err(WifiFailure::WrongPassword);
    }
    Ok(security)
}

fn passphrase_fits(req: &ConnectWifi, security: WifiSecurity) -> bool {
    let Some(p) = &req.passphrase else {
        return false;
    };
    let p = p.expose_secret();
    match security {
        // WPA-PSK: 8-63 printable ASCII, or 64 hex digits (nm-setting-wireless-security.c).
        WifiSecurity::Wpa2Psk => {
            (8..=63).contains(&p.len()) && p.bytes().all(|b| (32..127).contains(&b))
                || p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit())
        }
        WifiSecurity::Wpa3Sae => {
            !p.is_empty() && p.len() <= shared_protocol::message::wifi::MAX_PASSPHRASE_LEN
        }
        _ => true,
    }
}

type Settings = HashMap<&'static str, HashMap<&'static str, Variant<Box<dyn RefArg>>>>;

fn settings_for(req: &ConnectWifi, security: WifiSecurity) -> Settings {
    let name = req.ssid.display();
    let uuid = uuid_v4();
    let mut connection: HashMap<&'static str, Variant<Box<dyn RefArg>>> = HashMap::new();
    connection.insert("id", Variant(Box::new(name)));
    connection.insert("type", Variant(Box::new("802-11-wireless".to_owned())));
    connection.insert("uuid", Variant(Box::new(uuid)));
    let mut wireless: HashMap<&'static str, Variant<Box<dyn RefArg>>> = HashMap::new();
    wireless.insert("ssid", Variant(Box::new(req.ssid.as_bytes().to_vec())));
    wireless.insert("mode", Variant(Box::new("infrastructure".to_owned())));
    if req.hidden {
        wireless.insert("hidden", Variant(Box::new(true)));
    }
    let mut ipv4: HashMap<&'static str, Variant<Box<dyn RefArg>>> = HashMap::new();
    ipv4.insert("method", Variant(Box::new("auto".to_owned())));
    let mut ipv6: HashMap<&'static str, Variant<Box<dyn RefArg>>> = HashMap::new();
    ipv6.insert("method", Variant(Box::new("auto".to_owned())));
    let mut s: Settings = HashMap::new();
    s.insert("connection", connection);
    s.insert("802-11-wireless", wireless);
    s.insert("ipv4", ipv4);
    s.insert("ipv6", ipv6);
    if security.needs_passphrase() {
        let mut sec: HashMap<&'static str, Variant<Box<dyn RefArg>>> = HashMap::new();
        let key_mgmt = if security == WifiSecurity::Wpa3Sae {
            "sae"
        } else {
            "wpa-psk"
        };
        sec.insert("key-mgmt", Variant(Box::new(key_mgmt.to_owned())));
        if let Some(p) = &req.passphrase {
            // The one copy NetworkManager gets; psk-flags 0 = NetworkManager stores it.
            sec.insert("psk", Variant(Box::new(p.expose_secret().to_owned())));
            sec.insert("psk-flags", Variant(Box::new(0u32)));
        }
        s.insert("802-11-wireless-security", sec);
    }
    s
}

fn uuid_v4() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl NmBackend {
    /// NetworkManager, on `interface` (or the first Wi-Fi device).
    pub fn new(interface: Option<String>, timeouts: NmTimeouts) -> Self {
        Self {
            interface,
            timeouts,
            bus: None,
        }
    }

    /// The same, on the bus at `address` rather than the system bus.
    pub fn on_bus(mut self, address: impl Into<String>) -> Self {
        self.bus = Some(address.into());
        self
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Bus, Option<&str>, &NmTimeouts) -> T + Send + 'static,
        on_error: impl FnOnce(BackendError) -> T,
    ) -> T {
        let iface = self.interface.clone();
        let t = self.timeouts.clone();
        let bus = self.bus.clone();
        let joined = tokio::task::spawn_blocking(move || match Bus::open(bus.as_deref()) {
            Ok(bus) => Ok(f(bus, iface.as_deref(), &t)),
            Err(e) => Err(e),
        })
        .await;
        match joined {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => on_error(e),
            Err(e) => on_error(BackendError::Dbus(format!("worker: {e}"))),
        }
    }
}

impl NetworkBackend for NmBackend {
    fn name(&self) -> &'static str {
        "networkmanager"
    }

    fn current(&self) -> BoxFuture<'_, CurrentLink> {
        Box::pin(self.blocking(
            |bus, iface, _| bus.current(iface),
            |_| CurrentLink::default(),
        ))
    }

    fn scan(&self) -> BoxFuture<'_, Result<Vec<WifiNetwork>, BackendError>> {
        Box::pin(self.blocking(|bus, iface, t| bus.scan(iface, t.scan), Err))
    }

    fn join<'a>(
        &'a self,
        req: &'a ConnectWifi,
        progress: &'a ProgressTx,
    ) -> BoxFuture<'a, Result<Joined, WifiFailure>> {
        let req = req.clone();
        let progress = progress.clone();
        Box::pin(self.blocking(
            move |bus, iface, t| bus.join(iface, &req, &progress, t.join),
            |e| {
                tracing::error!(error = %e, "NetworkManager unavailable");
                Err(WifiFailure::Internal)
            },
        ))
    }

    fn rollback<'a>(&'a self, joined: &'a Joined) -> BoxFuture<'a, Result<(), BackendError>> {
        let undo = joined.undo.clone();
        Box::pin(self.blocking(move |bus, _, _| bus.rollback(&undo), Err))
    }
}
