//! BLE advertising follows the pairing window: on while it is open, off when it closes (by
//! time, after a successful pairing, or on lockout), so a speaker that is not pairing is not
//! discoverable over Bluetooth. The GATT service itself stays registered: a companion that
//! already knows the speaker can still connect and ask for its status, exactly as over TCP.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::BleError;
use crate::pairing::Pairing;

/// Starts and stops the advertisement (BlueZ in production, a recorder in tests).
pub trait Advertiser: Send {
    /// Starts advertising the service UUID with this local name.
    fn start(&mut self, local_name: &str) -> impl Future<Output = Result<(), BleError>> + Send;
    /// Stops advertising (idempotent).
    fn stop(&mut self) -> impl Future<Output = ()> + Send;
}

/// Runs until `shutdown`: advertises while `pairing` is open, then stops advertising.
pub async fn follow_window<A: Advertiser>(
    mut adv: A,
    pairing: Pairing,
    local_name: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut window = pairing.subscribe();
    let mut advertising = false;
    loop {
        let open = pairing.is_open();
        if open && !advertising {
            match adv.start(&local_name).await {
                Ok(()) => {
                    advertising = true;
                    tracing::info!(name = %local_name, "advertising over BLE (pairing window open)");
                }
                Err(e) => tracing::warn!(error = %e, "BLE advertising could not start"),
            }
        } else if !open && advertising {
            adv.stop().await;
            advertising = false;
            tracing::info!("BLE advertising stopped (pairing window closed)");
        }
        let closes_at = pairing.open_until();
        tokio::select! {
            r = window.changed() => if r.is_err() { break },
            _ = async {
                match closes_at {
                    Some(at) => tokio::time::sleep_until(at + Duration::from_millis(10)).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = shutdown.changed() => break,
        }
    }
    if advertising {
        adv.stop().await;
        tracing::info!("BLE advertising stopped (agent stopping)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::PairingConfig;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        Start(String),
        Stop,
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Call>>>, Arc<tokio::sync::Notify>);

    impl Recorder {
        fn calls(&self) -> Vec<Call> {
            self.0.lock().unwrap().clone()
        }

        async fn wait_for(&self, n: usize) -> Vec<Call> {
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let notified = self.1.notified();
                    if self.calls().len() >= n {
                        return self.calls();
                    }
                    notified.await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("expected {n} calls, got {:?}", self.calls()))
        }
    }

    impl Advertiser for Recorder {
        async fn start(&mut self, local_name: &str) -> Result<(), BleError> {
            self.0.lock().unwrap().push(Call::Start(local_name.into()));
            self.1.notify_waiters();
            Ok(())
        }
        async fn stop(&mut self) {
            self.0.lock().unwrap().push(Call::Stop);
            self.1.notify_waiters();
        }
    }

    #[tokio::test]
    async fn advertising_follows_the_window_open_close_expiry_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PairingConfig {
            window: Duration::from_millis(300),
            ..PairingConfig::default()
        };
        let pairing = Pairing::load(dir.path(), cfg).unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let rec = Recorder::default();
        let task = tokio::spawn(follow_window(
            rec.clone(),
            pairing.clone(),
            "avs-abc".into(),
            stop_rx,
        ));
        // Closed at start: nothing advertised.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rec.calls().is_empty());
        // Open → start; close → stop.
        pairing.open().unwrap();
        assert_eq!(rec.wait_for(1).await, vec![Call::Start("avs-abc".into())]);
        pairing.close();
        assert_eq!(rec.wait_for(2).await[1], Call::Stop);
        // Open again, then let it expire by itself.
        pairing.open().unwrap();
        assert_eq!(rec.wait_for(3).await[2], Call::Start("avs-abc".into()));
        let t0 = std::time::Instant::now();
        assert_eq!(rec.wait_for(4).await[3], Call::Stop);
        assert!(t0.elapsed() < Duration::from_secs(2));
        // Open and shut the agent down: advertising stops.
        pairing.open().unwrap();
        rec.wait_for(5).await;
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.calls().last(), Some(&Call::Stop));
        assert_eq!(rec.calls().len(), 6);
    }
}
