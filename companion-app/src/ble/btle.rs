//! The computer's Bluetooth central through btleplug (BlueZ on Linux, CoreBluetooth on macOS,
//! WinRT on Windows).
//!
//! - Scanning is filtered on the avs-pair service UUID; each new speaker's information
//!   characteristic is read once (connect, read, disconnect) and reported; a speaker silent for
//!   [`ADVERT_TTL`](super::sighting::ADVERT_TTL) is reported lost.
//! - Connecting takes the MTU the stack negotiated on connection (BlueZ and CoreBluetooth
//!   exchange MTUs by themselves), subscribes to tx (indications: the stack confirms each one)
//!   and writes rx with response, one chunk at a time.
//! - A pump task moves tx values from btleplug's stream into a queue the session reads, and
//!   ends the link when the adapter reports the peripheral disconnected.
//! - A write that fails is a lost connection when the link turns out to be down within
//!   [`LOST_LINK_GRACE`]. BlueZ learns of a lost link twice: the ATT bearer closes first and the
//!   remote GATT objects vanish (the write fails with D-Bus's `Method "WriteValue" … doesn't
//!   exist`), while `Device1.Connected` turns false only when the controller's Disconnection
//!   Complete arrives. A single look at `Connected` right after the failure races that window.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use btleplug::api::{
    Central as _, CentralEvent, CentralState, Characteristic, Manager as _, Peripheral as _,
    ScanFilter, ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use shared_protocol::discovery::{
    BLE_INFO_CHAR_UUID, BLE_RX_CHAR_UUID, BLE_SERVICE_UUID, BLE_TX_CHAR_UUID,
};
use shared_protocol::gatt::{att_payload_for_mtu, GattLink, GattLinkError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::sighting::{sighting, Freshness, ADVERT_TTL};
use super::{BleCentral, BleError, BoxFuture, BoxedLink, LinkSetUp};
use crate::discovery::{DiscoveryError, DiscoverySource, SourceEvent, SourceSink, TransportKind};

/// How long reading a speaker's information characteristic may take.
const INFO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a disconnect may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// tx values queued for the session (a whole pairing's worth at MTU 23).
const INBOUND_QUEUE: usize = 256;
/// How long after a failed write BlueZ may take to report the link down (between the ATT
/// bearer's loss and the controller's Disconnection Complete: milliseconds in practice).
const LOST_LINK_GRACE: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The system's first Bluetooth adapter as a [`BleCentral`].
#[derive(Clone)]
pub struct BtleCentral {
    adapter: Adapter,
    known: Arc<Mutex<HashMap<String, PeripheralId>>>,
}

impl fmt::Debug for BtleCentral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BtleCentral")
            .field("known", &lock(&self.known).len())
            .finish_non_exhaustive()
    }
}

fn find_characteristic(p: &Peripheral, uuid: Uuid) -> Option<Characteristic> {
    p.characteristics()
        .into_iter()
        .find(|c| c.uuid == uuid && c.service_uuid == BLE_SERVICE_UUID)
}

async fn disconnect_quietly(p: &Peripheral) {
    let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, p.disconnect()).await;
}

impl BtleCentral {
    /// Opens the first adapter. [`BleError::NoAdapter`] without Bluetooth (no adapter, no
    /// Bluetooth service, no system D-Bus on Linux).
    pub async fn open() -> Result<Self, BleError> {
        let manager = Manager::new().await.map_err(|e| {
            BleError::NoAdapter(format!("cannot reach the system's Bluetooth service: {e}"))
        })?;
        let adapters = manager
            .adapters()
            .await
            .map_err(|e| BleError::NoAdapter(format!("cannot list Bluetooth adapters: {e}")))?;
        let adapter = adapters
            .into_iter()
            .next()
            .ok_or_else(|| BleError::NoAdapter("the system reports no adapter".into()))?;
        // A switched-off adapter opens fine but refuses to scan (BlueZ: StartDiscovery ->
        // org.bluez.Error.NotReady), which the pairing flow would only see as "no speaker
        // found": say so here, in the one line.
        if let Ok(CentralState::PoweredOff) = adapter.adapter_state().await {
            let name = adapter
                .adapter_info()
                .await
                .unwrap_or_else(|_| "adapter".into());
            return Err(BleError::NoAdapter(format!(
                "Bluetooth is switched off ({name}): turn it on and try again"
            )));
        }
        Ok(Self {
            adapter,
            known: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    async fn peripheral(&self, key: &str) -> Result<Peripheral, BleError> {
        let id = lock(&self.known)
            .get(key)
            .cloned()
            .ok_or_else(|| BleError::UnknownPeripheral(key.to_owned()))?;
        self.adapter
            .peripheral(&id)
            .await
            .map_err(|_| BleError::UnknownPeripheral(key.to_owned()))
    }

    /// Connects (unless connected), reads the information characteristic, disconnects again.
    /// The connect and read together may take [`INFO_TIMEOUT`]; the disconnect runs after a
    /// failure or a timeout too (a stalled speaker must not stay connected to the computer,
    /// holding its one connection), itself bounded by [`DISCONNECT_TIMEOUT`].
    async fn read_info(&self, p: &Peripheral) -> Result<Vec<u8>, InfoReadError> {
        // One deadline for all of it: BlueZ's own answer to "connected?" can stall too.
        let deadline = tokio::time::Instant::now() + INFO_TIMEOUT;
        let was_connected = match tokio::time::timeout_at(deadline, p.is_connected()).await {
            Ok(connected) => connected.unwrap_or(false),
            Err(_) => return Err(InfoReadError::TimedOut(INFO_TIMEOUT)),
        };
        let read = async {
            if !was_connected {
                p.connect().await?;
            }
            p.discover_services().await?;
            let info = find_characteristic(p, BLE_INFO_CHAR_UUID)
                .ok_or(InfoReadError::NoInfoCharacteristic)?;
            Ok(p.read(&info).await?)
        };
        let read = tokio::time::timeout_at(deadline, read)
            .await
            .unwrap_or(Err(InfoReadError::TimedOut(INFO_TIMEOUT)));
        if !was_connected {
            disconnect_quietly(p).await;
        }
        read
    }

    /// Connects and sets the link up (services, characteristics, subscription) within `within`.
    /// A connection that fails or stalls after it was made is closed again (bounded by
    /// [`DISCONNECT_TIMEOUT`]): dropping the future half-way would leave the speaker connected.
    async fn connect_link(&self, key: &str, within: Duration) -> Result<BtleLink, BleError> {
        let p = self.peripheral(key).await?;
        let fail = |reason: String| BleError::Connect {
            peripheral: key.to_owned(),
            reason,
        };
        let deadline = tokio::time::Instant::now() + within;
        match tokio::time::timeout_at(deadline, p.connect()).await {
            Ok(connected) => connected.map_err(|e| fail(e.to_string()))?,
            Err(_) => {
                // A pending Connect is cancelled by Disconnect (doc/org.bluez.Device.rst).
                disconnect_quietly(&p).await;
                return Err(BleError::TimedOut(within));
            }
        }
        let setup = async {
            p.discover_services()
                .await
                .map_err(|e| fail(e.to_string()))?;
            let not_speaker = |what| BleError::NotASpeaker {
                peripheral: key.to_owned(),
                what,
            };
            let rx = find_characteristic(&p, BLE_RX_CHAR_UUID).ok_or_else(|| not_speaker("rx"))?;
            let tx = find_characteristic(&p, BLE_TX_CHAR_UUID).ok_or_else(|| not_speaker("tx"))?;
            // Streams first, then subscribe: nothing indicated in between is missed.
            let values = p.notifications().await.map_err(|e| fail(e.to_string()))?;
            let events = self
                .adapter
                .events()
                .await
                .map_err(|e| fail(e.to_string()))?;
            p.subscribe(&tx).await.map_err(|e| fail(e.to_string()))?;
            Ok::<_, BleError>((rx, values, events))
        };
        let setup = tokio::time::timeout_at(deadline, setup)
            .await
            .unwrap_or(Err(BleError::TimedOut(within)));
        let (rx, values, events) = match setup {
            Ok(v) => v,
            Err(e) => {
                disconnect_quietly(&p).await;
                return Err(e);
            }
        };
        let (out, inbound) = mpsc::channel(INBOUND_QUEUE);
        let (down_tx, down) = watch::channel(false);
        let id = p.id();
        let pump = tokio::spawn(async move {
            pump(id, values, events, out).await;
            let _ = down_tx.send(true);
        });
        tracing::debug!(peripheral = %key, mtu = p.mtu(), "BLE link up");
        Ok(BtleLink {
            peripheral: p,
            rx,
            inbound,
            pump,
            down,
        })
    }

    async fn start_scan(&self, sink: SourceSink) -> Result<Box<dyn DiscoverySource>, BleError> {
        let events = self
            .adapter
            .events()
            .await
            .map_err(|e| BleError::Scan(e.to_string()))?;
        self.adapter
            .start_scan(ScanFilter {
                services: vec![BLE_SERVICE_UUID],
            })
            .await
            .map_err(|e| BleError::Scan(e.to_string()))?;
        let fresh = Arc::new(Mutex::new(Freshness::new(ADVERT_TTL)));
        let task = tokio::spawn(scan_loop(self.clone(), events, sink.clone(), fresh.clone()));
        Ok(Box::new(BtleSource {
            central: self.clone(),
            sink,
            fresh,
            task,
        }))
    }
}

/// Follows scan events: new speakers are read and reported, silent ones expire.
async fn scan_loop(
    central: BtleCentral,
    mut events: BoxStream<'static, CentralEvent>,
    sink: SourceSink,
    fresh: Arc<Mutex<Freshness>>,
) {
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        let id = tokio::select! {
            ev = events.next() => match ev {
                Some(CentralEvent::DeviceDiscovered(id))
                | Some(CentralEvent::DeviceUpdated(id))
                | Some(CentralEvent::ServicesAdvertisement { id, .. }) => id,
                Some(_) => continue,
                None => break,
            },
            _ = sweep.tick() => {
                let gone = lock(&fresh).expire(Instant::now());
                for key in gone {
                    lock(&central.known).remove(&key);
                    let _ = sink.send(SourceEvent::Lost { transport: TransportKind::Ble, key });
                }
                continue;
            }
        };
        let Ok(p) = central.adapter.peripheral(&id).await else {
            continue;
        };
        let Ok(Some(props)) = p.properties().await else {
            continue;
        };
        // Some platforms ignore the scan filter.
        if !props.services.contains(&BLE_SERVICE_UUID) {
            continue;
        }
        let key = id.to_string();
        lock(&central.known).insert(key.clone(), id);
        if !lock(&fresh).heard(&key, Instant::now()) {
            continue;
        }
        let (central, sink, name) = (central.clone(), sink.clone(), props.local_name);
        tokio::spawn(async move {
            let info = match central.read_info(&p).await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(peripheral = %key, error = %e, "BLE info read failed");
                    None
                }
            };
            if let Some(s) = sighting(&key, name.as_deref(), info.as_deref()) {
                let _ = sink.send(SourceEvent::Seen(s));
            }
        });
    }
}

/// Moves tx indications into the session's queue until the peripheral disconnects.
async fn pump(
    id: PeripheralId,
    mut values: BoxStream<'static, ValueNotification>,
    mut events: BoxStream<'static, CentralEvent>,
    out: mpsc::Sender<Vec<u8>>,
) {
    loop {
        tokio::select! {
            biased;
            v = values.next() => match v {
                Some(v) if v.uuid == BLE_TX_CHAR_UUID => {
                    if out.send(v.value).await.is_err() {
                        return;
                    }
                }
                Some(_) => {}
                None => return,
            },
            e = events.next() => match e {
                Some(CentralEvent::DeviceDisconnected(d)) if d == id => return,
                Some(_) => {}
                None => return,
            },
        }
    }
}

/// The BLE discovery source.
#[derive(Debug)]
struct BtleSource {
    central: BtleCentral,
    sink: SourceSink,
    fresh: Arc<Mutex<Freshness>>,
    task: JoinHandle<()>,
}

impl DiscoverySource for BtleSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Ble
    }

    fn verify(&self, key: &str) -> Result<(), DiscoveryError> {
        let (central, sink, fresh, key) = (
            self.central.clone(),
            self.sink.clone(),
            self.fresh.clone(),
            key.to_owned(),
        );
        tokio::spawn(async move {
            let alive = match central.peripheral(&key).await {
                Ok(p) => central.read_info(&p).await.is_ok(),
                Err(_) => false,
            };
            if !alive {
                lock(&fresh).forget(&key);
                let _ = sink.send(SourceEvent::Lost {
                    transport: TransportKind::Ble,
                    key,
                });
            }
        });
        Ok(())
    }

    fn shutdown(&self) {
        self.task.abort();
        let adapter = self.central.adapter.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, adapter.stop_scan()).await;
            });
        }
    }
}

impl BleCentral for BtleCentral {
    fn discover(
        &self,
        sink: SourceSink,
    ) -> BoxFuture<'_, Result<Box<dyn DiscoverySource>, BleError>> {
        Box::pin(self.start_scan(sink))
    }

    fn connect(&self, peripheral: &str, within: Duration) -> LinkSetUp<'_> {
        let key = peripheral.to_owned();
        Box::pin(async move { Ok(BoxedLink::new(self.connect_link(&key, within).await?)) })
    }
}

/// One GATT connection to a speaker.
struct BtleLink {
    peripheral: Peripheral,
    rx: Characteristic,
    inbound: mpsc::Receiver<Vec<u8>>,
    pump: JoinHandle<()>,
    /// Turns true when the pump ends: the adapter reported the peripheral disconnected.
    down: watch::Receiver<bool>,
}

impl BtleLink {
    /// Whether the link is down, or goes down within [`LOST_LINK_GRACE`]: BlueZ says the
    /// device is not connected (or no longer knows it), or the pump saw the disconnect event.
    async fn lost(&self) -> bool {
        let mut down = self.down.clone();
        // The disconnect event (a sender dropped by an aborted pump counts as down too).
        let pump_ended = async move {
            let _ = down.wait_for(|d| *d).await;
        };
        // BlueZ's answer; "still connected" (or no answer) leaves it to the event.
        let not_connected = async {
            if matches!(self.peripheral.is_connected().await, Ok(true)) {
                std::future::pending::<()>().await;
            }
        };
        let gone = async {
            tokio::select! {
                () = pump_ended => {}
                () = not_connected => {}
            }
        };
        tokio::time::timeout(LOST_LINK_GRACE, gone).await.is_ok()
    }
}

/// Why a speaker's information characteristic could not be read while scanning (logged at
/// debug level; the speaker is then listed without it, or dropped as gone).
#[derive(Debug, thiserror::Error)]
enum InfoReadError {
    /// Connecting, service discovery or the read failed.
    #[error(transparent)]
    Gatt(#[from] btleplug::Error),
    /// The peripheral has no avs-pair information characteristic.
    #[error("no information characteristic")]
    NoInfoCharacteristic,
    /// Connecting and reading took longer than this.
    #[error("no information within {0:?}")]
    TimedOut(Duration),
}

fn link_error(e: btleplug::Error) -> GattLinkError {
    match e {
        btleplug::Error::NotConnected | btleplug::Error::DeviceNotFound => {
            GattLinkError::Disconnected
        }
        btleplug::Error::TimedOut(d) => GattLinkError::Unacknowledged(d),
        other => GattLinkError::Stack(other.to_string()),
    }
}

impl GattLink for BtleLink {
    fn att_payload(&self) -> usize {
        att_payload_for_mtu(self.peripheral.mtu())
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        // The transport has checked the value against the ATT payload, so the stack never turns
        // it into a long write behind our back.
        match self
            .peripheral
            .write(&self.rx, &value, WriteType::WithResponse)
            .await
        {
            Ok(()) => Ok(()),
            // After a disconnect BlueZ drops the device's GATT objects, so the write fails with
            // a D-Bus error about a missing object or method, not NotConnected, possibly before
            // BlueZ reports the device disconnected (module docs): wait for the link to show.
            Err(e) if self.lost().await => {
                tracing::debug!(error = %e, "BLE write failed: the link is down");
                Err(GattLinkError::Disconnected)
            }
            Err(e) => Err(link_error(e)),
        }
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        Ok(self.inbound.recv().await)
    }

    async fn disconnect(&mut self) {
        self.pump.abort();
        disconnect_quietly(&self.peripheral).await;
    }
}

impl Drop for BtleLink {
    fn drop(&mut self) {
        self.pump.abort();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let p = self.peripheral.clone();
            let task = rt.spawn(async move { disconnect_quietly(&p).await });
            remember(&mut lock_pending(), task);
        }
    }
}

/// Disconnects of dropped links still under way. A command that ends (an error returned with
/// `?`, say) drops its link, and the process would exit before the spawned disconnect ran:
/// the speaker keeps the old connection and subscription, and a companion started right after
/// (a retry after a wrong Wi-Fi password) writes into the old session.
static PENDING_DISCONNECTS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

fn lock_pending() -> MutexGuard<'static, Vec<JoinHandle<()>>> {
    PENDING_DISCONNECTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds `task` to `pending`, forgetting the disconnects already done: a long-running process
/// (the desktop app) drops link after link and never calls [`finish_disconnects`], so the list
/// holds only what is still under way.
fn remember(pending: &mut Vec<JoinHandle<()>>, task: JoinHandle<()>) {
    pending.retain(|t| !t.is_finished());
    pending.push(task);
}

/// Waits for the disconnects of dropped links, all together at most [`DISCONNECT_TIMEOUT`]
/// (they run at once, so one deadline bounds them all).
pub(super) async fn finish_disconnects() {
    let pending = std::mem::take(&mut *lock_pending());
    let deadline = tokio::time::Instant::now() + DISCONNECT_TIMEOUT;
    for task in pending {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_pending_list_holds_only_disconnects_still_under_way() {
        let (_release, held) = tokio::sync::oneshot::channel::<()>();
        let mut pending = vec![tokio::spawn(async move {
            let _ = held.await;
        })];
        for _ in 0..50 {
            let done = tokio::spawn(async {});
            // On this one thread, yielding lets the spawned task run to its end.
            while !done.is_finished() {
                tokio::task::yield_now().await;
            }
            remember(&mut pending, done);
        }
        // The unfinished one and the last one added.
        assert_eq!(pending.len(), 2);
        assert!(!pending[0].is_finished());
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn finishing_waits_one_deadline_for_all() {
        for _ in 0..3 {
            let task = tokio::spawn(std::future::pending::<()>());
            remember(&mut lock_pending(), task);
        }
        let start = tokio::time::Instant::now();
        finish_disconnects().await;
        assert_eq!(start.elapsed(), DISCONNECT_TIMEOUT);
        assert!(lock_pending().is_empty());
    }
}
