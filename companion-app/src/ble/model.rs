//! A [`BleCentral`] over the protocol crate's in-process GATT model (feature `gatt-model`), so
//! tests run the companion's real discovery merge and pairing flow over "Bluetooth" on
//! machines without a controller.
//!
//! Each registered speaker is a [`ModelPeripheral`] with the key and local name a scan would
//! report. Discovery connects to each one, reads its information characteristic and reports it
//! through the same [`sighting`](super::sighting::sighting) code as the btleplug central.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shared_protocol::gatt::model::{ModelConnection, ModelControl, ModelFaults, ModelPeripheral};

use super::sighting::sighting;
use super::{BleCentral, BleError, BoxFuture, BoxedLink, LinkSetUp};
use crate::discovery::{DiscoveryError, DiscoverySource, SourceEvent, SourceSink, TransportKind};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Speaker {
    key: String,
    local_name: String,
    peripheral: ModelPeripheral,
}

#[derive(Default)]
struct State {
    speakers: Vec<Speaker>,
    controls: Vec<ModelControl>,
}

/// The model central.
#[derive(Clone)]
pub struct ModelCentral {
    connection: ModelConnection,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for ModelCentral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelCentral")
            .field("connection", &self.connection)
            .field("speakers", &lock(&self.state).speakers.len())
            .finish()
    }
}

impl ModelCentral {
    /// A central whose pairing connections use `connection` (MTU, interval, faults).
    /// Discovery reads use the same parameters without faults.
    pub fn new(connection: ModelConnection) -> Self {
        Self {
            connection,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Puts a speaker in range under `key`, advertising `local_name`.
    pub fn add_speaker(&self, key: &str, local_name: &str, peripheral: ModelPeripheral) {
        lock(&self.state).speakers.push(Speaker {
            key: key.to_owned(),
            local_name: local_name.to_owned(),
            peripheral,
        });
    }

    /// Control of the pairing connections made so far, oldest first.
    pub fn connections(&self) -> Vec<ModelControl> {
        lock(&self.state).controls.clone()
    }

    fn speaker(&self, key: &str) -> Option<Speaker> {
        lock(&self.state)
            .speakers
            .iter()
            .find(|s| s.key == key)
            .cloned()
    }
}

async fn read_sighting(speaker: &Speaker, connection: ModelConnection) -> Option<SourceEvent> {
    let clean = connection.faults(ModelFaults::default());
    let info = match speaker.peripheral.connect(clean).await {
        Ok((mut link, _control)) => link.read_info().await.ok(),
        Err(_) => None,
    };
    sighting(&speaker.key, Some(&speaker.local_name), info.as_deref()).map(SourceEvent::Seen)
}

/// The model's discovery source.
#[derive(Debug)]
struct ModelSource {
    central: ModelCentral,
    sink: SourceSink,
}

impl DiscoverySource for ModelSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Ble
    }

    fn verify(&self, key: &str) -> Result<(), DiscoveryError> {
        let (central, sink, key) = (self.central.clone(), self.sink.clone(), key.to_owned());
        tokio::spawn(async move {
            let seen = match central.speaker(&key) {
                Some(s) => read_sighting(&s, central.connection).await,
                None => None,
            };
            let _ = sink.send(seen.unwrap_or(SourceEvent::Lost {
                transport: TransportKind::Ble,
                key,
            }));
        });
        Ok(())
    }

    fn shutdown(&self) {}
}

impl BleCentral for ModelCentral {
    fn discover(
        &self,
        sink: SourceSink,
    ) -> BoxFuture<'_, Result<Box<dyn DiscoverySource>, BleError>> {
        Box::pin(async move {
            let speakers = lock(&self.state).speakers.clone();
            let (central, report) = (self.clone(), sink.clone());
            tokio::spawn(async move {
                for s in speakers {
                    if let Some(ev) = read_sighting(&s, central.connection).await {
                        let _ = report.send(ev);
                    }
                }
            });
            Ok(Box::new(ModelSource {
                central: self.clone(),
                sink,
            }) as Box<dyn DiscoverySource>)
        })
    }

    fn connect(&self, peripheral: &str, within: Duration) -> LinkSetUp<'_> {
        let key = peripheral.to_owned();
        Box::pin(async move {
            let speaker = self
                .speaker(&key)
                .ok_or_else(|| BleError::UnknownPeripheral(key.clone()))?;
            // Nothing is left behind when this is dropped half-way: the model's connection
            // goes with its future.
            let connecting = speaker.peripheral.connect(self.connection);
            let (link, control) = tokio::time::timeout(within, connecting)
                .await
                .map_err(|_| BleError::TimedOut(within))?
                .map_err(|e| BleError::Connect {
                    peripheral: key.clone(),
                    reason: e.to_string(),
                })?;
            lock(&self.state).controls.push(control);
            Ok(BoxedLink::new(link))
        })
    }
}
