//! The BlueZ peripheral (through `bluer`): registers the avs-pair GATT application, advertises
//! while the pairing window is open, and turns each subscribed companion into a [`GattLink`].
//!
//! BlueZ calls us for three things: a read of `info` (answered from the live agent state), a
//! write to `rx` (queued for the session; the Write Response goes back only once the queue took
//! it, which is the flow control towards the companion), and the start of an indication session
//! on `tx` (a companion subscribed: one session begins). Indications wait for the companion's
//! confirmation ([`CharacteristicNotifier::notify`] with `indicate` only).
//!
//! One companion at a time: the first device that writes after subscribing owns the session;
//! writes from any other device are refused with `InProgress` until it ends. When the session
//! ends the agent disconnects the companion, so the next pairing starts from a fresh connection;
//! unless a new companion's Hello ended it (its companion left without disconnecting while the
//! central kept the subscription): then the next session starts on the same link with that
//! Hello ([`super::newcomer`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicNotifier, CharacteristicNotify,
    CharacteristicNotifyMethod, CharacteristicRead, CharacteristicWrite, CharacteristicWriteMethod,
    CharacteristicWriteRequest, ReqError, Service,
};
use bluer::{Adapter, Address, Session};
use shared_protocol::discovery::{
    BLE_INFO_CHAR_UUID, BLE_RX_CHAR_UUID, BLE_SERVICE_UUID, BLE_TX_CHAR_UUID,
};
use shared_protocol::gatt::advert::ble_local_name;
use shared_protocol::gatt::{att_payload_for_mtu, GattLink, GattLinkError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::advertising::{follow_window, Advertiser};
use super::{info_value, serve_link, BleError};
use crate::core::Core;
use crate::link::LinkConfig;

/// Chunks a session may have queued before write responses wait for it.
const RX_QUEUE: usize = 8;
/// The default ATT MTU, until a write tells us the negotiated one.
const DEFAULT_MTU: u16 = 23;
/// How long disconnecting a companion may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an rx write waits for the session of a subscription in flight: BlueZ answers the
/// central's CCC write without waiting for our StartNotify handling, so its first write can
/// arrive before the session is installed.
const SUBSCRIBE_GRACE: Duration = Duration::from_secs(2);

/// How long a new subscription waits for the session before it to end (its companion has
/// usually just unsubscribed) before it is turned away.
const HANDOVER_GRACE: Duration = Duration::from_secs(2);

/// A found, powered adapter.
pub(super) struct Peripheral {
    session: Session,
    adapter: Adapter,
}

impl Peripheral {
    /// Connects to BlueZ and finds the adapter (`name`, or the default one), powering it on.
    /// The error is the reason BLE cannot be used, for the "no adapter" line.
    pub(super) async fn open(name: Option<&str>) -> Result<Self, BleError> {
        let session = Session::new().await.map_err(BleError::NoBus)?;
        let adapter = match name {
            Some(n) => session.adapter(n).map_err(|source| BleError::Adapter {
                adapter: n.to_owned(),
                source,
            })?,
            None => session.default_adapter().await.map_err(|e| match e.kind {
                bluer::ErrorKind::NotFound => BleError::NoAdapter,
                _ => BleError::ListAdapters(e),
            })?,
        };
        let powered = adapter
            .is_powered()
            .await
            .map_err(|source| BleError::Adapter {
                adapter: adapter.name().to_owned(),
                source,
            })?;
        if !powered {
            adapter
                .set_powered(true)
                .await
                .map_err(|source| BleError::PoweredOff {
                    adapter: adapter.name().to_owned(),
                    source,
                })?;
        }
        Ok(Self { session, adapter })
    }

    pub(super) fn adapter_name(&self) -> &str {
        self.adapter.name()
    }

    /// Registers the GATT application and runs until `shutdown`.
    pub(super) async fn serve(
        self,
        ctx: Arc<Core>,
        limits: LinkConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, BleError> {
        let (notifier_tx, notifier_rx) = mpsc::channel(2);
        let route = Arc::new(Route::default());
        let app = Application {
            services: vec![Service {
                uuid: BLE_SERVICE_UUID,
                primary: true,
                characteristics: vec![
                    info_characteristic(ctx.clone()),
                    rx_characteristic(route.clone()),
                    tx_characteristic(notifier_tx),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let app = self
            .adapter
            .serve_gatt_application(app)
            .await
            .map_err(BleError::RegisterService)?;
        Ok(tokio::spawn(self.run(
            app,
            route,
            notifier_rx,
            ctx,
            limits,
            shutdown,
        )))
    }

    async fn run(
        self,
        app: ApplicationHandle,
        route: Arc<Route>,
        mut notifiers: mpsc::Receiver<CharacteristicNotifier>,
        ctx: Arc<Core>,
        limits: LinkConfig,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let advertiser = BluezAdvertiser {
            adapter: self.adapter.clone(),
            handle: None,
        };
        let adv_task = tokio::spawn(follow_window(
            advertiser,
            ctx.pairing.clone(),
            ble_local_name(&ctx.device_id),
            shutdown.clone(),
        ));
        let mut current: Option<JoinHandle<()>> = None;
        loop {
            let notifier = tokio::select! {
                n = notifiers.recv() => match n {
                    Some(n) => n,
                    None => break,
                },
                _ = shutdown.changed() => break,
            };
            if let Some(session) = current.as_mut().filter(|s| !s.is_finished()) {
                // Often the companion before has just left (a retry right after a failure) and
                // its session is still winding down: let it end rather than turn the newcomer
                // away, whose writes would otherwise land in the old session.
                let ended = tokio::select! {
                    r = tokio::time::timeout(HANDOVER_GRACE, session) => r.is_ok(),
                    _ = shutdown.changed() => break,
                };
                if !ended {
                    tracing::info!(
                        "another companion subscribed over BLE while one is pairing; it is ignored"
                    );
                    continue;
                }
            }
            current = Some(self.start_session(notifier, &route, &ctx, &limits));
        }
        if let Some(session) = current {
            session.abort();
        }
        let _ = adv_task.await;
        drop(app);
        drop(self.session);
        tracing::debug!("BLE peripheral stopped");
    }

    /// Routes rx writes to a new session for the companion that subscribed with `notifier`
    /// and serves it; the route is cleared when that session ends (unless a newer one has
    /// taken it).
    fn start_session(
        &self,
        notifier: CharacteristicNotifier,
        route: &Arc<Route>,
        ctx: &Arc<Core>,
        limits: &LinkConfig,
    ) -> JoinHandle<()> {
        if !notifier.confirming() {
            tracing::warn!("the BLE tx session is not confirmed (notify instead of indicate)");
        }
        let (tx, inbound) = mpsc::channel(RX_QUEUE);
        let mtu = Arc::new(AtomicU16::new(DEFAULT_MTU));
        let device = Arc::new(Mutex::new(None));
        let generation = route.install(Active {
            tx,
            mtu: mtu.clone(),
            device: device.clone(),
        });
        let link = BluezLink {
            notifier,
            inbound,
            mtu,
            device,
            adapter: self.adapter.clone(),
        };
        let (ctx, limits, route) = (ctx.clone(), limits.clone(), route.clone());
        tokio::spawn(async move {
            serve_link(link, "companion", &ctx, &limits).await;
            route.clear(generation);
        })
    }
}

/// Where rx writes go: the current session, bound to the first device that writes.
#[derive(Default)]
struct Route {
    current: Mutex<Option<(u64, Active)>>,
    generation: AtomicU64,
    installed: tokio::sync::Notify,
}

#[derive(Clone)]
struct Active {
    tx: mpsc::Sender<Vec<u8>>,
    mtu: Arc<AtomicU16>,
    device: Arc<Mutex<Option<Address>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Route {
    fn install(&self, active: Active) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.current) = Some((generation, active));
        self.installed.notify_waiters();
        generation
    }

    fn active(&self) -> Option<Active> {
        lock(&self.current).as_ref().map(|(_, a)| a.clone())
    }

    /// The current session, waiting up to [`SUBSCRIBE_GRACE`] for one being installed.
    async fn wait_active(&self) -> Option<Active> {
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_GRACE;
        loop {
            // Registered before the check, so an install in between is not missed.
            let installed = self.installed.notified();
            tokio::pin!(installed);
            installed.as_mut().enable();
            if let Some(a) = self.active() {
                return Some(a);
            }
            if tokio::time::timeout_at(deadline, installed).await.is_err() {
                return self.active();
            }
        }
    }

    fn clear(&self, generation: u64) {
        let mut cur = lock(&self.current);
        if cur.as_ref().is_some_and(|(g, _)| *g == generation) {
            *cur = None;
        }
    }

    async fn deliver(
        &self,
        value: Vec<u8>,
        req: CharacteristicWriteRequest,
    ) -> Result<(), ReqError> {
        // Subscribe to tx first: the answers have nowhere to go otherwise.
        let Some(active) = self.wait_active().await else {
            return Err(ReqError::NotPermitted);
        };
        {
            let mut device = lock(&active.device);
            match *device {
                Some(d) if d != req.device_address => return Err(ReqError::InProgress),
                Some(_) => {}
                None => *device = Some(req.device_address),
            }
        }
        if req.offset != 0 {
            return Err(ReqError::InvalidOffset);
        }
        active.mtu.store(req.mtu, Ordering::Relaxed);
        // Waits while the session's queue is full: the write response is the backpressure.
        active.tx.send(value).await.map_err(|_| ReqError::Failed)
    }
}

fn info_characteristic(ctx: Arc<Core>) -> Characteristic {
    Characteristic {
        uuid: BLE_INFO_CHAR_UUID,
        read: Some(CharacteristicRead {
            read: true,
            fun: Box::new(move |req| {
                let value = info_value(&ctx);
                Box::pin(async move {
                    // A long read (Read Blob) asks for the rest from an offset.
                    value
                        .get(usize::from(req.offset)..)
                        .map(<[u8]>::to_vec)
                        .ok_or(ReqError::InvalidOffset)
                })
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rx_characteristic(route: Arc<Route>) -> Characteristic {
    Characteristic {
        uuid: BLE_RX_CHAR_UUID,
        write: Some(CharacteristicWrite {
            // Write Request (acknowledged) only; no Write Command.
            write: true,
            write_without_response: false,
            method: CharacteristicWriteMethod::Fun(Box::new(move |value, req| {
                let route = route.clone();
                Box::pin(async move { route.deliver(value, req).await })
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tx_characteristic(notifiers: mpsc::Sender<CharacteristicNotifier>) -> Characteristic {
    Characteristic {
        uuid: BLE_TX_CHAR_UUID,
        notify: Some(CharacteristicNotify {
            // Indications only, so every chunk is confirmed by the companion's stack.
            notify: false,
            indicate: true,
            method: CharacteristicNotifyMethod::Fun(Box::new(move |notifier| {
                let notifiers = notifiers.clone();
                Box::pin(async move {
                    let _ = notifiers.send(notifier).await;
                })
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One companion's connection as a [`GattLink`].
struct BluezLink {
    notifier: CharacteristicNotifier,
    inbound: mpsc::Receiver<Vec<u8>>,
    mtu: Arc<AtomicU16>,
    device: Arc<Mutex<Option<Address>>>,
    adapter: Adapter,
}

async fn disconnect_device(adapter: &Adapter, address: Address) {
    if let Ok(device) = adapter.device(address) {
        match tokio::time::timeout(DISCONNECT_TIMEOUT, device.disconnect()).await {
            Ok(Ok(())) => tracing::debug!(%address, "BLE companion disconnected"),
            Ok(Err(e)) => tracing::debug!(%address, error = %e, "BLE disconnect failed"),
            Err(_) => tracing::debug!(%address, "BLE disconnect timed out"),
        }
    }
}

impl GattLink for BluezLink {
    fn att_payload(&self) -> usize {
        att_payload_for_mtu(self.mtu.load(Ordering::Relaxed))
    }

    async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        // The transport has checked the value against the ATT payload.
        self.notifier.notify(value).await.map_err(|e| match e.kind {
            bluer::ErrorKind::NotificationSessionStopped
            | bluer::ErrorKind::IndicationUnconfirmed => GattLinkError::Disconnected,
            _ => GattLinkError::Stack(e.to_string()),
        })
    }

    async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
        let stopped = self.notifier.stopped();
        tokio::select! {
            biased;
            v = self.inbound.recv() => Ok(v),
            _ = stopped => Ok(self.inbound.try_recv().ok()),
        }
    }

    async fn disconnect(&mut self) {
        let address = *lock(&self.device);
        // A companion that unsubscribed has left already; disconnecting its address now could
        // cut the next connection from the same central (the same phone retrying).
        if self.notifier.is_stopped() {
            return;
        }
        if let Some(address) = address {
            disconnect_device(&self.adapter, address).await;
        }
    }
}

impl Drop for BluezLink {
    fn drop(&mut self) {
        let address = *lock(&self.device);
        if self.notifier.is_stopped() {
            return;
        }
        if let (Some(address), Ok(rt)) = (address, tokio::runtime::Handle::try_current()) {
            let adapter = self.adapter.clone();
            rt.spawn(async move { disconnect_device(&adapter, address).await });
        }
    }
}

/// Advertising through BlueZ's LEAdvertisingManager.
struct BluezAdvertiser {
    adapter: Adapter,
    handle: Option<AdvertisementHandle>,
}

impl Advertiser for BluezAdvertiser {
    async fn start(&mut self, local_name: &str) -> Result<(), BleError> {
        let adv = Advertisement {
            service_uuids: BTreeSet::from([BLE_SERVICE_UUID]),
            local_name: Some(local_name.to_owned()),
            discoverable: Some(true),
            ..Default::default()
        };
        let handle = self
            .adapter
            .advertise(adv)
            .await
            .map_err(BleError::Advertise)?;
        self.handle = Some(handle);
        Ok(())
    }

    async fn stop(&mut self) {
        // Dropping the handle unregisters the advertisement.
        self.handle = None;
    }
}
