//! An agent's GATT service on the in-process GATT model (`shared_protocol::gatt::model`): what
//! the BlueZ peripheral does per subscribed companion, without a Bluetooth stack. Used by the
//! BLE suites here and by the desktop app's tests.

use std::sync::Arc;
use std::time::Duration;

use companion_app::ble::model::ModelCentral;
use device_agent::agent::Agent;
use device_agent::config::AgentConfig;
use lwa_emulator::registry::DEFAULT_PRODUCT_ID;
use lwa_emulator::{Emulator, RunningEmulator};
use shared_protocol::gatt::advert::ble_local_name;
use shared_protocol::gatt::model::{ModelConnection, ModelPeripheral};
use tokio::task::JoinHandle;

/// A model peripheral supporting `mtu` whose info characteristic is the agent's, and the task
/// that serves every central connecting to it with the agent's link handler (abort it to stop).
/// Must run inside a tokio runtime.
pub fn serve_agent(agent: &Arc<Agent>, mtu: u16) -> (ModelPeripheral, JoinHandle<()>) {
    let core = agent.link_context();
    let (peripheral, mut acceptor) =
        ModelPeripheral::new(mtu, move || device_agent::ble::info_value(&core));
    let serving = agent.clone();
    let accept = tokio::spawn(async move {
        while let Some(link) = acceptor.accept().await {
            serving.serve_gatt(link, "model central".into());
        }
    });
    (peripheral, accept)
}

/// The emulator and one unpaired in-process agent (the emulator's default product) whose GATT
/// peripheral is a model peripheral supporting MTU 517. A test fixture: it panics when
/// something does not start.
pub struct ModelSpeaker {
    /// The LWA stand-in the agent uses.
    pub emulator: RunningEmulator,
    /// The agent (shared with the accept task until [`ModelSpeaker::stop`]).
    pub agent: Arc<Agent>,
    /// The speaker's side of the model; give a clone to each central.
    pub peripheral: ModelPeripheral,
    accept: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for ModelSpeaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSpeaker")
            .field("device_id", self.agent.device_id())
            .field("lwa", &self.emulator.base_url())
            .finish_non_exhaustive()
    }
}

impl ModelSpeaker {
    /// Starts the emulator and the agent with setup code `code`. Must run inside a tokio
    /// runtime.
    pub async fn start(code: &str) -> Self {
        Self::start_with(code, |_, _| {}).await
    }

    /// [`ModelSpeaker::start`], with `tune` adjusting the agent's config (given the emulator's
    /// base URL) before the agent starts.
    pub async fn start_with(code: &str, tune: impl FnOnce(&mut AgentConfig, &str)) -> Self {
        let emulator = Emulator::builder()
            .start()
            .await
            .unwrap_or_else(|e| panic!("emulator starts: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("state dir: {e}"));
        let mut cfg = AgentConfig::for_local(dir.path(), emulator.base_url(), code)
            .unwrap_or_else(|e| panic!("agent config: {e}"));
        cfg.product_id = DEFAULT_PRODUCT_ID.into();
        tune(&mut cfg, emulator.base_url());
        let agent = Agent::start(cfg)
            .await
            .unwrap_or_else(|e| panic!("agent starts: {e}"));
        let agent = Arc::new(agent);
        let (peripheral, accept) = serve_agent(&agent, 517);
        Self {
            emulator,
            agent,
            peripheral,
            accept,
            _dir: dir,
        }
    }

    /// A companion-side central that has this speaker in range as `key`.
    pub fn central(&self, conn: ModelConnection, key: &str) -> ModelCentral {
        let central = ModelCentral::new(conn);
        central.add_speaker(
            key,
            &ble_local_name(self.agent.device_id()),
            self.peripheral.clone(),
        );
        central
    }

    /// Stops serving, then the agent (every other handle to it must be gone) and the emulator.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let agent = Arc::try_unwrap(self.agent)
            .unwrap_or_else(|_| panic!("no other handle to the agent is left"));
        tokio::time::timeout(Duration::from_secs(10), agent.shutdown())
            .await
            .unwrap_or_else(|_| panic!("the agent stops within 10 s"));
        self.emulator.shutdown().await;
    }
}
