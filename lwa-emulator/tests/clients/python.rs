//! A stock Python OAuth 2.0 client (requests + requests-oauthlib from PyPI) completes
//! authorization code + PKCE, a bearer call and a refresh against the emulator.
//! Needs `pip install requests requests-oauthlib` (scripts/test.sh installs them); skips with a
//! printed reason when python3 or the modules are missing.

use std::time::Duration;

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, ALICE_USER_ID, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
};
use lwa_emulator::Emulator;
use serde_json::Value;

use crate::stdout_of_success;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/oauth_pkce_client.py"
);

#[tokio::test]
async fn requests_oauthlib_completes_pkce_and_refresh() {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import requests, requests_oauthlib, oauthlib"])
        .output()
        .await;
    match probe {
        Err(e) => {
            println!("SKIPPED: python3 not runnable ({e})");
            return;
        }
        Ok(out) if !out.status.success() => {
            println!(
                "SKIPPED: Python modules missing (pip install requests requests-oauthlib): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return;
        }
        Ok(_) => {}
    }
    let emu = Emulator::builder().start().await.unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .args([
                SCRIPT,
                emu.base_url(),
                DEFAULT_DEVICE_CLIENT_ID,
                "http://127.0.0.1:8765/callback",
                DEFAULT_PRODUCT_ID,
                ALICE_EMAIL,
                ALICE_PASSWORD,
            ])
            .output(),
    )
    .await
    .expect("python client finishes within 60 s")
    .unwrap();
    let stdout = stdout_of_success("python client", &output);
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["user_id"], ALICE_USER_ID);

    // What oauthlib sent: PKCE S256 on the authorize URL, the verifier on the exchange, and a
    // refresh with the client id in the body.
    let requests = emu.requests();
    let authorize = requests.iter().find(|r| r.path == "/ap/oa").unwrap();
    assert_eq!(authorize.query_param("code_challenge_method"), Some("S256"));
    assert!(authorize.query_param("state").is_some());
    let token_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/auth/o2/token")
        .collect();
    assert_eq!(token_calls.len(), 2);
    assert_eq!(
        token_calls[0].param("grant_type"),
        Some("authorization_code")
    );
    assert!(token_calls[0].param("code_verifier").is_some());
    assert_eq!(token_calls[1].param("grant_type"), Some("refresh_token"));
    assert_eq!(
        token_calls[1].param("client_id"),
        Some(DEFAULT_DEVICE_CLIENT_ID)
    );
    assert!(token_calls.iter().all(|r| r.status == Some(200)));
}
