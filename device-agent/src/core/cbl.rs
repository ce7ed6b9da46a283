//! Code-based linking as the agent runs it: one run at a time, with the configured client id,
//! polling policy and hook (a command told the code, e.g. text to speech), for the CLI verb over
//! the local API and for an embedding program.

use shared_protocol::ids::ClientId;
use tokio::sync::Mutex;

use super::Core;
use crate::cbl::{run_cbl, CblError, CblPolicy, CblPrompt};

/// Why code-based linking did not link.
#[derive(Debug, thiserror::Error)]
pub enum CblRunError {
    /// No `client_id` is configured.
    #[error("code-based linking needs client_id (the \"Other devices and platforms\" client id) in the config")]
    NoClientId,
    /// Another run is in progress.
    #[error("code-based linking is already running")]
    AlreadyRunning,
    /// The run itself failed.
    #[error(transparent)]
    Failed(#[from] CblError),
}

/// What code-based linking needs beyond the core's identity and delegate.
#[derive(Debug)]
pub struct CblRunner {
    client_id: Option<ClientId>,
    policy: CblPolicy,
    hook: Option<String>,
    running: Mutex<()>,
}

impl CblRunner {
    /// `client_id` is the "Other devices and platforms" client id (`None`: CBL refused);
    /// `hook` is run with `sh -c` and the code in `AVS_CBL_*` variables.
    pub fn new(client_id: Option<ClientId>, policy: CblPolicy, hook: Option<String>) -> Self {
        Self {
            client_id,
            policy,
            hook,
            running: Mutex::new(()),
        }
    }
}

impl Core {
    /// Runs CBL (one at a time), calling the hook and `on_prompt` with the code.
    pub async fn run_cbl(&self, on_prompt: impl FnOnce(&CblPrompt)) -> Result<(), CblRunError> {
        let runner = &self.cbl;
        let client_id = runner.client_id.as_ref().ok_or(CblRunError::NoClientId)?;
        let Ok(_running) = runner.running.try_lock() else {
            return Err(CblRunError::AlreadyRunning);
        };
        let hook = runner.hook.as_deref();
        run_cbl(
            &self.delegate,
            client_id,
            &self.product_id,
            &self.dsn,
            &runner.policy,
            |p| {
                if let Some(cmd) = hook {
                    run_hook(cmd, p);
                }
                on_prompt(p);
            },
        )
        .await?;
        Ok(())
    }
}

fn run_hook(cmd: &str, p: &CblPrompt) {
    let spawned = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env("AVS_CBL_USER_CODE", &p.user_code)
        .env("AVS_CBL_VERIFICATION_URI", &p.verification_uri)
        .env("AVS_CBL_EXPIRES_IN", p.expires_in_secs.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false)
        .spawn();
    match spawned {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!(error = %e, "cbl_hook could not be started"),
    }
}
