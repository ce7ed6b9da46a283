//! The curl flow of the AVS tutorials, unchanged except for the host: authorization URL in (a
//! web client), code out, `curl -X POST --data "grant_type=authorization_code&code=…&client_id=…
//! &client_secret=…&redirect_uri=…"`, then the same with `grant_type=refresh_token`; plus the
//! CBL `curl -d` calls of the AIA quick-start guide.

use std::process::Output;

use lwa_emulator::registry::{
    ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID, DEFAULT_PRODUCT_ID,
    DEFAULT_WEB_CLIENT_ID, DEFAULT_WEB_CLIENT_SECRET,
};
use lwa_emulator::{Consent, Emulator, RunningEmulator, ScriptedUser};
use serde_json::Value;

fn curl_available() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

async fn curl(args: &[&str]) -> Output {
    tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .await
        .unwrap()
}

/// A running emulator, or `None` (said on stdout) where curl is not installed.
async fn emulator_if_curl() -> Option<RunningEmulator> {
    if !curl_available() {
        println!("SKIPPED: curl is not installed (scripts/test.sh installs it)");
        return None;
    }
    Some(Emulator::builder().start().await.unwrap())
}

/// The tutorial's `scope_data` for the default product and serial number 123456.
fn tutorial_scope_data() -> String {
    format!(
        r#"{{"alexa:all":{{"productID":"{DEFAULT_PRODUCT_ID}","productInstanceAttributes":{{"deviceSerialNumber":"123456"}}}}}}"#
    )
}

fn json(output: &Output) -> Value {
    let stdout = crate::stdout_of_success("curl", output);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn avs_tutorial_curl_flow_with_a_web_client() {
    let Some(emu) = emulator_if_curl().await else {
        return;
    };
    let host = emu.base_url();
    // Step 1: the authorization URL, as the tutorial writes it (www.amazon.com → the emulator).
    let redirect_uri = "http://localhost:3000/authresponse";
    let scope_data = tutorial_scope_data();
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let authorize = format!(
        "{host}/ap/oa?client_id={DEFAULT_WEB_CLIENT_ID}&scope=alexa%3Aall&scope_data={}&response_type=code&redirect_uri={}",
        enc(&scope_data),
        enc(redirect_uri)
    );
    // Step 2: the user logs in; the code is read off the address bar.
    let landed = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD)
        .unwrap()
        .authorize(&authorize, Consent::Allow)
        .await
        .unwrap();
    assert!(landed
        .as_str()
        .starts_with("http://localhost:3000/authresponse?code="));
    let code = landed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    // Step 3: curl exchanges it, values pasted raw into --data as in the tutorial.
    let data = format!(
        "grant_type=authorization_code&code={code}&client_id={DEFAULT_WEB_CLIENT_ID}&client_secret={DEFAULT_WEB_CLIENT_SECRET}&redirect_uri={redirect_uri}"
    );
    let token_url = format!("{host}/auth/o2/token");
    let tokens = json(&curl(&["-X", "POST", "--data", &data, &token_url]).await);
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("Atzr|"));

    // Step 4: refresh, refresh token pasted raw (with its `|`).
    let data = format!(
        "grant_type=refresh_token&refresh_token={refresh}&client_id={DEFAULT_WEB_CLIENT_ID}&client_secret={DEFAULT_WEB_CLIENT_SECRET}"
    );
    let refreshed = json(&curl(&["-X", "POST", "--data", &data, &token_url]).await);
    assert!(refreshed["access_token"]
        .as_str()
        .unwrap()
        .starts_with("Atza|"));
    assert_eq!(refreshed["refresh_token"].as_str().unwrap(), refresh);

    // The same refresh without the secret gets LWA's answer for web clients.
    let data = format!(
        "grant_type=refresh_token&refresh_token={refresh}&client_id={DEFAULT_WEB_CLIENT_ID}"
    );
    let out = curl(&[
        "-X",
        "POST",
        "--data",
        &data,
        "--write-out",
        "\n%{http_code}",
        &token_url,
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n400"), "{text}");
    assert!(text.contains(r#""error":"invalid_request""#), "{text}");

    // The exchange arrived as curl sends it: form-encoded, fields in the tutorial's order.
    let exchange = emu
        .requests()
        .into_iter()
        .find(|r| r.param("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        exchange.param_names(),
        vec![
            "grant_type",
            "code",
            "client_id",
            "client_secret",
            "redirect_uri"
        ]
    );
    assert!(exchange.header("user-agent").unwrap().starts_with("curl/"));
}

#[tokio::test]
async fn aia_quick_start_cbl_with_curl() {
    let Some(emu) = emulator_if_curl().await else {
        return;
    };
    let scope_data = tutorial_scope_data();
    let pair = json(
        &curl(&[
            "-d",
            &format!("response_type=device_code&client_id={DEFAULT_DEVICE_CLIENT_ID}&scope=alexa:all&scope_data={scope_data}"),
            &emu.url("/auth/O2/create/codepair"),
        ])
        .await,
    );
    let user_code = pair["user_code"].as_str().unwrap();
    let device_code = pair["device_code"].as_str().unwrap();
    let poll = format!("grant_type=device_code&device_code={device_code}&user_code={user_code}");
    let pending = curl(&["-d", &poll, &emu.url("/auth/O2/token")]).await;
    assert!(String::from_utf8_lossy(&pending.stdout).contains("authorization_pending"));
    ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD)
        .unwrap()
        .enter_user_code(
            pair["verification_uri"].as_str().unwrap(),
            user_code,
            Consent::Allow,
        )
        .await
        .unwrap();
    let tokens = json(&curl(&["-d", &poll, &emu.url("/auth/O2/token")]).await);
    assert!(tokens["access_token"]
        .as_str()
        .unwrap()
        .starts_with("Atza|"));
}
