//! An in-process GATT connection: what the BLE transport is tested against on machines without a
//! Bluetooth controller (feature `gatt-model`).
//!
//! It keeps the properties of a real ATT bearer that the transport depends on, and lets a test
//! break the ones it must survive:
//!
//! - **MTU**: the central asks for an MTU, the peripheral supports one; the connection uses the
//!   smaller (at least 23). A value longer than MTU − 3 (or 512) is refused, as a stack would
//!   refuse or truncate it.
//! - **Acknowledged, ordered delivery**: a write (companion → agent) reaches the peripheral half
//!   a connection interval later and its response comes back after another half; an indication
//!   (agent → companion) likewise waits for its confirmation. One value in flight per direction,
//!   delivered in order. The peripheral application's queue is bounded, so a slow agent delays
//!   the write responses (backpressure) instead of losing writes.
//! - **Information characteristic**: reads return the peripheral's current value, with the
//!   extra round trips of a long read (Read Blob) when it is longer than MTU − 1.
//! - **Faults** ([`ModelFaults`]): an indication confirmed but lost before the central
//!   application (the only way a value can go missing on a confirmed bearer), a disconnect
//!   right after the n-th write or indication (mid-frame), a central that stops confirming, and
//!   [`ModelControl::disconnect`] at any time.
//!
//! ```
//! # async fn demo() -> Result<(), shared_protocol::gatt::GattLinkError> {
//! use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
//! use shared_protocol::gatt::GattLink as _;
//! let (peripheral, mut acceptor) = ModelPeripheral::new(517, || b"ver=1".to_vec());
//! let (mut central, _control) = peripheral.connect(ModelConnection::mtu(185)).await?;
//! let mut agent_side = acceptor.accept().await.expect("a connection");
//! assert_eq!(central.read_info().await?, b"ver=1");
//! central.send_value(b"hi".to_vec()).await?;
//! assert_eq!(agent_side.recv_value().await?, Some(b"hi".to_vec()));
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::link::{att_payload_for_mtu, GattLink, GattLinkError};
use crate::ble::MAX_ATT_PAYLOAD;

/// The default MTU every BLE stack supports.
pub const DEFAULT_MTU: u16 = 23;

/// Faults to inject into one connection. Counts are 1-based.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelFaults {
    /// The n-th indication is confirmed to the peripheral but never reaches the central
    /// application.
    pub lose_indication: Option<u64>,
    /// The link drops right after the n-th indication reached the central (before its
    /// confirmation).
    pub disconnect_after_indications: Option<u64>,
    /// The link drops right after the n-th write reached the peripheral (before its response).
    pub disconnect_after_writes: Option<u64>,
    /// The central confirms the first n indications and then never again (a hung central).
    pub stop_confirming_after: Option<u64>,
}

/// One connection's parameters, chosen by the connecting central.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelConnection {
    /// The MTU the central asks for.
    pub central_mtu: u16,
    /// The connection interval: one ATT request/response (or indication/confirmation) round
    /// trip takes one interval.
    pub connection_interval: Duration,
    /// Writes the peripheral application may hold before write responses wait for it.
    pub peripheral_queue: usize,
    /// Chunks to lose or delay, to test what the transport detects.
    pub faults: ModelFaults,
}

impl ModelConnection {
    /// A connection asking for `central_mtu`, with a 15 ms connection interval (what desktop
    /// and phone centrals typically settle on).
    pub fn mtu(central_mtu: u16) -> Self {
        Self {
            central_mtu,
            connection_interval: Duration::from_millis(15),
            peripheral_queue: 8,
            faults: ModelFaults::default(),
        }
    }

    /// With another connection interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.connection_interval = interval;
        self
    }

    /// With faults injected (see [`ModelFaults`]).
    pub fn faults(mut self, faults: ModelFaults) -> Self {
        self.faults = faults;
        self
    }
}

/// What crossed one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Writes that reached the peripheral.
    pub writes: u64,
    /// Indications sent by the peripheral.
    pub indications: u64,
    /// Indications confirmed but lost before the central application.
    pub lost_indications: u64,
    /// Information characteristic reads.
    pub info_reads: u64,
}

type InfoSource = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;

struct Shared {
    mtu: u16,
    conn: ModelConnection,
    info: InfoSource,
    down: watch::Sender<bool>,
    writes: AtomicU64,
    indications: AtomicU64,
    lost: AtomicU64,
    info_reads: AtomicU64,
}

impl Shared {
    fn half_trip(&self) -> Duration {
        self.conn.connection_interval / 2
    }

    fn disconnect(&self) {
        self.down.send_replace(true);
    }

    fn stats(&self) -> ModelStats {
        ModelStats {
            writes: self.writes.load(Ordering::Relaxed),
            indications: self.indications.load(Ordering::Relaxed),
            lost_indications: self.lost.load(Ordering::Relaxed),
            info_reads: self.info_reads.load(Ordering::Relaxed),
        }
    }
}

async fn wait_down(down: &mut watch::Receiver<bool>) {
    // The sender lives in `Shared`, which every link holds: an error cannot happen while we run.
    let _ = down.wait_for(|d| *d).await;
}

/// Waits `d` of air time; fails if the link drops meanwhile.
async fn air(down: &mut watch::Receiver<bool>, d: Duration) -> Result<(), GattLinkError> {
    if d.is_zero() {
        tokio::task::yield_now().await;
        return if *down.borrow() {
            Err(GattLinkError::Disconnected)
        } else {
            Ok(())
        };
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wait_down(down) => return Err(GattLinkError::Disconnected),
    }
    if *down.borrow() {
        return Err(GattLinkError::Disconnected);
    }
    Ok(())
}

fn check_value(
    shared: &Shared,
    down: &watch::Receiver<bool>,
    len: usize,
) -> Result<(), GattLinkError> {
    if *down.borrow() {
        return Err(GattLinkError::Disconnected);
    }
    let max = att_payload_for_mtu(shared.mtu);
    if len > max {
        return Err(GattLinkError::ValueTooLong { len, max });
    }
    Ok(())
}

/// The advertised peripheral: centrals connect to it, the agent side accepts the connections.
#[derive(Clone)]
pub struct ModelPeripheral {
    mtu: u16,
    info: InfoSource,
    accept_tx: mpsc::UnboundedSender<ModelPeripheralLink>,
}

impl std::fmt::Debug for ModelPeripheral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPeripheral")
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

/// The agent's end: yields one [`ModelPeripheralLink`] per connecting central.
#[derive(Debug)]
pub struct ModelAcceptor {
    rx: mpsc::UnboundedReceiver<ModelPeripheralLink>,
}

impl ModelAcceptor {
    /// The next connection; `None` when every [`ModelPeripheral`] handle is gone.
    pub async fn accept(&mut self) -> Option<ModelPeripheralLink> {
        self.rx.recv().await
    }
}

impl ModelPeripheral {
    /// A peripheral supporting `mtu`, whose information characteristic reads `info()`.
    pub fn new(
        mtu: u16,
        info: impl Fn() -> Vec<u8> + Send + Sync + 'static,
    ) -> (Self, ModelAcceptor) {
        let (accept_tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                mtu,
                info: Arc::new(info),
                accept_tx,
            },
            ModelAcceptor { rx },
        )
    }

    /// Connects a central: link setup, MTU exchange, service discovery and the subscription to
    /// tx take four connection intervals. Fails with [`GattLinkError::Disconnected`] if the
    /// agent side no longer accepts connections.
    pub async fn connect(
        &self,
        conn: ModelConnection,
    ) -> Result<(ModelCentralLink, ModelControl), GattLinkError> {
        let mtu = conn.central_mtu.min(self.mtu).max(DEFAULT_MTU);
        let (down, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            mtu,
            conn,
            info: self.info.clone(),
            down,
            writes: AtomicU64::new(0),
            indications: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            info_reads: AtomicU64::new(0),
        });
        let (to_peripheral, from_central) = mpsc::channel(conn.peripheral_queue.max(1));
        let (to_central, from_peripheral) = mpsc::unbounded_channel();
        tokio::time::sleep(conn.connection_interval * 4).await;
        let peripheral = ModelPeripheralLink {
            shared: shared.clone(),
            to_central,
            from_central,
            down: shared.down.subscribe(),
        };
        self.accept_tx
            .send(peripheral)
            .map_err(|_| GattLinkError::Disconnected)?;
        let central = ModelCentralLink {
            shared: shared.clone(),
            to_peripheral,
            from_peripheral,
            down: shared.down.subscribe(),
        };
        Ok((central, ModelControl { shared }))
    }
}

/// Test control of one connection.
#[derive(Clone)]
pub struct ModelControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ModelControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelControl")
            .field("mtu", &self.shared.mtu)
            .field("stats", &self.shared.stats())
            .finish()
    }
}

impl ModelControl {
    /// Drops the connection now (both ends see it).
    pub fn disconnect(&self) {
        self.shared.disconnect();
    }

    /// True once the connection is gone.
    pub fn is_disconnected(&self) -> bool {
        *self.shared.down.borrow()
    }

    /// The negotiated MTU.
    pub fn mtu(&self) -> u16 {
        self.shared.mtu
    }

    /// Counters so far.
    pub fn stats(&self) -> ModelStats {
        self.shared.stats()
    }
}

/// The two ends of a model connection, declared together because they are alike but for their
/// channels and how a value is sent: each is a struct (the shared state, a channel each way, the
/// down flag) with `Debug` without the queues, dropping it disconnects the connection (as a real
/// stack does when the app lets go), the MTU, and a [`GattLink`] impl whose `send_value` is the
/// end's own `send`.
macro_rules! link_ends {
    ($($(#[$doc:meta])* $end:ident { $to:ident: $to_ty:ty, $from:ident: $from_ty:ty $(,)? })*) => {$(
        $(#[$doc])*
        pub struct $end {
            shared: Arc<Shared>,
            $to: $to_ty,
            $from: $from_ty,
            down: watch::Receiver<bool>,
        }

        impl std::fmt::Debug for $end {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("mtu", &self.shared.mtu)
                    .finish_non_exhaustive()
            }
        }

        impl Drop for $end {
            fn drop(&mut self) {
                self.shared.disconnect();
            }
        }

        impl $end {
            /// The negotiated MTU.
            pub fn mtu(&self) -> u16 {
                self.shared.mtu
            }

            /// The end of sending the `n`th value: the connection drops here if the faults say
            /// so (`disconnect_after`), else the answer's half of the round trip.
            async fn finish_send(
                &mut self,
                n: u64,
                disconnect_after: Option<u64>,
                half: Duration,
            ) -> Result<(), GattLinkError> {
                if disconnect_after == Some(n) {
                    self.shared.disconnect();
                    return Err(GattLinkError::Disconnected);
                }
                air(&mut self.down, half).await
            }

            /// The next value from the other end; once the connection is down, a value that
            /// had already arrived, then `None`.
            async fn next_value(&mut self) -> Option<Vec<u8>> {
                tokio::select! {
                    biased;
                    v = self.$from.recv() => v,
                    _ = wait_down(&mut self.down) => self.$from.try_recv().ok(),
                }
            }
        }

        impl GattLink for $end {
            fn att_payload(&self) -> usize {
                att_payload_for_mtu(self.shared.mtu)
            }

            async fn send_value(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
                self.send(value).await
            }

            async fn recv_value(&mut self) -> Result<Option<Vec<u8>>, GattLinkError> {
                Ok(self.next_value().await)
            }

            async fn disconnect(&mut self) {
                self.shared.disconnect();
            }
        }
    )*};
}

link_ends! {
    /// The companion's end of a model connection: writes go to rx, indications come from tx.
    ModelCentralLink {
        to_peripheral: mpsc::Sender<Vec<u8>>,
        from_peripheral: mpsc::UnboundedReceiver<Vec<u8>>,
    }
    /// The agent's end of a model connection: writes arrive from rx, indications go to tx.
    ModelPeripheralLink {
        to_central: mpsc::UnboundedSender<Vec<u8>>,
        from_central: mpsc::Receiver<Vec<u8>>,
    }
}

impl ModelCentralLink {
    /// Reads the information characteristic (a long read takes one more round trip per
    /// MTU − 1 bytes).
    pub async fn read_info(&mut self) -> Result<Vec<u8>, GattLinkError> {
        if *self.down.borrow() {
            return Err(GattLinkError::Disconnected);
        }
        let value = (self.shared.info)();
        if value.len() > MAX_ATT_PAYLOAD {
            return Err(GattLinkError::Stack(format!(
                "information value of {} bytes is longer than an attribute can be (512)",
                value.len()
            )));
        }
        let per_read = usize::from(self.shared.mtu) - 1;
        let trips = 1 + value.len().saturating_sub(per_read).div_ceil(per_read);
        for _ in 0..trips {
            air(&mut self.down, self.shared.conn.connection_interval).await?;
        }
        self.shared.info_reads.fetch_add(1, Ordering::Relaxed);
        Ok(value)
    }

    /// A write with response to rx.
    async fn send(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        check_value(&self.shared, &self.down, value.len())?;
        let half = self.shared.half_trip();
        air(&mut self.down, half).await?;
        // The peripheral application takes the write; a full queue delays the response.
        tokio::select! {
            r = self.to_peripheral.send(value) => r.map_err(|_| GattLinkError::Disconnected)?,
            _ = wait_down(&mut self.down) => return Err(GattLinkError::Disconnected),
        }
        let n = self.shared.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let disconnect_after = self.shared.conn.faults.disconnect_after_writes;
        self.finish_send(n, disconnect_after, half).await
    }
}

impl ModelPeripheralLink {
    /// An indication on tx, resolved by the central's confirmation.
    async fn send(&mut self, value: Vec<u8>) -> Result<(), GattLinkError> {
        check_value(&self.shared, &self.down, value.len())?;
        let faults = self.shared.conn.faults;
        let n = self.shared.indications.fetch_add(1, Ordering::Relaxed) + 1;
        if faults.stop_confirming_after.is_some_and(|k| n > k) {
            // Never confirmed: only a disconnect ends the wait (the transport's ack timeout
            // usually comes first).
            wait_down(&mut self.down).await;
            return Err(GattLinkError::Disconnected);
        }
        let half = self.shared.half_trip();
        air(&mut self.down, half).await?;
        if faults.lose_indication == Some(n) {
            self.shared.lost.fetch_add(1, Ordering::Relaxed);
        } else {
            self.to_central
                .send(value)
                .map_err(|_| GattLinkError::Disconnected)?;
        }
        self.finish_send(n, faults.disconnect_after_indications, half)
            .await
    }
}
