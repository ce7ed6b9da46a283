//! The `lwa-emulator` binary: READY line, HTTPS flags, --log never printing a secret, graceful
//! SIGTERM, and the `browse` subcommand as a BROWSER hook.

use std::time::Duration;

use lwa_emulator::registry::{ALICE_EMAIL, ALICE_PASSWORD, DEFAULT_DEVICE_CLIENT_ID};
use lwa_emulator::{Consent, Emulator, ScriptedUser};
use shared_protocol::lwa::LwaEndpoints;
use shared_protocol::pkce::PkcePair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{
    authorize_url, code_in, exchange_form, http, json_of, refresh_form, run_emulator,
    spawn_emulator, stdout_of_success,
};

#[tokio::test]
async fn ready_line_then_a_logged_flow_that_never_prints_a_secret_then_sigterm() {
    let emu = spawn_emulator(&["--log", "--token-lifetime", "30"]).await;
    assert!(emu.base_url.starts_with("http://127.0.0.1:"));
    let endpoints = LwaEndpoints::from_base(&emu.base_url).unwrap();

    let pkce = PkcePair::generate();
    let redirect_uri = "http://127.0.0.1:1/authresponse";
    let url = authorize_url(&endpoints.authorize, redirect_uri, "BIN-1", "s", &pkce);
    let redirect = ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD)
        .unwrap()
        .authorize(url.as_str(), Consent::Allow)
        .await
        .unwrap();
    let code = code_in(&redirect);
    let tokens = json_of(http().post(endpoints.token.clone()).form(&exchange_form(
        &code,
        redirect_uri,
        &pkce,
    )))
    .await;
    assert_eq!(tokens["expires_in"], 30);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = json_of(
        http()
            .post(endpoints.token.clone())
            .form(&refresh_form(&refresh)),
    )
    .await;
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    let profile = http()
        .get(endpoints.profile.clone())
        .query(&[("access_token", access2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), 200);
    let ping = http()
        .get(format!("{}/ping", emu.base_url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 204);

    let (status, log) = emu.terminate().await;
    assert!(
        status.success(),
        "graceful exit after SIGTERM: {status:?}\n{log}"
    );
    // The log shows the traffic...
    assert!(log.contains("/auth/o2/token"), "{log}");
    assert!(log.contains("grant_type=refresh_token"), "{log}");
    assert!(log.contains("Atzr…(365)"), "{log}");
    // ...but never a secret in full.
    for secret in [
        &code,
        &access,
        &access2,
        &refresh,
        &pkce.verifier.expose_secret().to_owned(),
        &ALICE_PASSWORD.to_owned(),
    ] {
        assert!(!log.contains(secret.as_str()), "secret leaked into the log");
    }
    // Not even a long piece of one.
    assert!(!log.contains(&access[..12]));
    assert!(!log.contains(&code[..8]));
}

#[tokio::test]
async fn https_flags_write_the_ca_and_serve_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca_out = dir.path().join("emulator-ca.pem");
    let emu = spawn_emulator(&[
        "--https",
        "--tls-san",
        "lwa.test",
        "--ca-out",
        ca_out.to_str().unwrap(),
        "--rotate-refresh-tokens",
    ])
    .await;
    assert!(emu.base_url.starts_with("https://127.0.0.1:"));
    assert_eq!(emu.ca.as_deref(), Some(ca_out.to_str().unwrap()));
    let pem = std::fs::read(&ca_out).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let minted = json_of(
        client
            .post(format!("{}/_emulator/tokens/mint", emu.base_url))
            .json(&serde_json::json!({"user": ALICE_EMAIL, "client_id": DEFAULT_DEVICE_CLIENT_ID})),
    )
    .await;
    let old = minted["refresh_token"].as_str().unwrap();
    let refreshed = json_of(
        client
            .post(format!("{}/auth/O2/token", emu.base_url))
            .form(&refresh_form(old)),
    )
    .await;
    assert_ne!(
        refreshed["refresh_token"].as_str().unwrap(),
        old,
        "--rotate-refresh-tokens"
    );
    let (status, _) = emu.terminate().await;
    assert!(status.success());
}

#[tokio::test]
async fn omit_refresh_tokens_flag_answers_refreshes_without_one() {
    let emu = spawn_emulator(&["--omit-refresh-tokens"]).await;
    let minted = json_of(
        http()
            .post(format!("{}/_emulator/tokens/mint", emu.base_url))
            .json(&serde_json::json!({"user": ALICE_EMAIL, "client_id": DEFAULT_DEVICE_CLIENT_ID})),
    )
    .await;
    let old = minted["refresh_token"].as_str().unwrap();
    for _ in 0..2 {
        let refreshed = json_of(
            http()
                .post(format!("{}/auth/O2/token", emu.base_url))
                .form(&refresh_form(old)),
        )
        .await;
        assert!(refreshed["access_token"].is_string(), "{refreshed}");
        assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    }
    let (status, _) = emu.terminate().await;
    assert!(status.success());
    // One refresh-token mode at a time.
    let output = run_emulator(&["--omit-refresh-tokens", "--rotate-refresh-tokens"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[tokio::test]
async fn plain_http_on_a_non_loopback_address_is_refused() {
    let output = run_emulator(&["--bind", "0.0.0.0:0"]).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing plain HTTP"), "{stderr}");
    let output = run_emulator(&["--config", "/nonexistent/registry.toml"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read config file"));
}

/// README: a config file that does not parse is refused at start-up with exit 2, naming the
/// line and key but never the text there (the file holds passwords and client secrets).
#[tokio::test]
async fn a_config_file_that_does_not_parse_exits_2_without_its_text() {
    const SECRET: &str = "hunter2-client-secret-0123";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    std::fs::write(
        &path,
        format!("[settings]\naccess_token_lifetime_secs = \"{SECRET}\"\n"),
    )
    .unwrap();
    let output = run_emulator(&["--config", path.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(
        stderr.contains(
            "config file is not valid: at line 2, column 30 \
             (key `settings.access_token_lifetime_secs`): invalid type: string, expected u64"
        ),
        "{stderr}"
    );
}

/// A one-shot loopback "companion listener": answers one GET and returns its request line.
async fn one_shot_listener() -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(20), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nLinked!")
            .await
            .unwrap();
        request.lines().next().unwrap_or("").to_owned()
    });
    (port, task)
}

#[tokio::test]
async fn browse_subcommand_plays_the_browser_and_lands_on_the_redirect_uri() {
    let emu = Emulator::builder().start().await.unwrap();
    for deny in [false, true] {
        let (port, listener) = one_shot_listener().await;
        let pkce = PkcePair::generate();
        let redirect_uri = format!("http://127.0.0.1:{port}/authresponse");
        let url = authorize_url(
            &emu.endpoints().authorize,
            &redirect_uri,
            "BROWSE-1",
            "state-123",
            &pkce,
        );
        // As a companion would run its BROWSER hook: the URL is the last argument.
        let mut args = vec![
            "browse",
            "--email",
            ALICE_EMAIL,
            "--password",
            ALICE_PASSWORD,
        ];
        if deny {
            args.push("--deny");
        }
        args.push(url.as_str());
        let output = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_lwa-emulator"))
                .args(&args)
                .output(),
        )
        .await
        .unwrap()
        .unwrap();
        let stdout = stdout_of_success("lwa-emulator browse", &output);
        let request_line = listener.await.unwrap();
        let prefix = format!("LANDED status=200 url={redirect_uri}?");
        assert!(stdout.starts_with(&prefix), "{stdout}");
        assert!(
            request_line.starts_with("GET /authresponse?"),
            "{request_line}"
        );
        assert!(request_line.contains("state=state-123"));
        if deny {
            assert!(
                request_line.contains("error=access_denied"),
                "{request_line}"
            );
        } else {
            let target = url::Url::parse(&format!(
                "http://127.0.0.1{}",
                request_line.split(' ').nth(1).unwrap()
            ))
            .unwrap();
            let code = code_in(&target);
            // stdout shows the code shortened, the listener got it in full, and it works.
            assert!(!stdout.contains(&code));
            assert!(stdout.contains(&format!(
                "code={}",
                url::form_urlencoded::byte_serialize(&code.as_bytes()[..4]).collect::<String>()
            )));
            let r = http()
                .post(emu.endpoints().token)
                .form(&exchange_form(&code, &redirect_uri, &pkce))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
    // Wrong password: non-zero exit, a clear message.
    let output = run_emulator(&[
        "browse",
        "--email",
        ALICE_EMAIL,
        "--password",
        "nope",
        &emu.url("/code"),
    ])
    .await;
    assert!(!output.status.success());
}

/// `line` from its target on (`lwa_emulator::…: message`), every loopback port as `PORT`.
fn message_of(line: &str) -> Option<String> {
    let from_target = &line[line.find("lwa_emulator::")?..];
    let mut parts = from_target.split("127.0.0.1:");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for rest in parts {
        out.push_str("127.0.0.1:PORT");
        out.push_str(rest.trim_start_matches(|c: char| c.is_ascii_digit()));
    }
    Some(out)
}

#[tokio::test]
async fn the_log_has_each_request_its_answer_and_its_fault_but_not_the_control_api() {
    let emu = spawn_emulator(&["--log"]).await;
    let url = |path: &str| format!("{}{path}", emu.base_url);
    let ping = url("/ping?access_token=Atza|a-token-not-issued&x=1");
    assert_eq!(http().get(ping).send().await.unwrap().status(), 403);
    let fault = serde_json::json!({"endpoint": "ping", "fault": {"kind": "status", "status": 503}});
    let queued = http().post(url("/_emulator/faults")).json(&fault);
    assert_eq!(queued.send().await.unwrap().status(), 204);
    assert_eq!(http().get(url("/ping")).send().await.unwrap().status(), 503);

    let (status, log) = emu.terminate().await;
    assert!(status.success(), "{log}");
    let messages: Vec<String> = log
        .lines()
        .filter_map(message_of)
        .filter(|m| {
            m.starts_with("lwa_emulator::routes::") || m.starts_with("lwa_emulator::server:")
        })
        .collect();
    assert_eq!(
        messages,
        [
            "lwa_emulator::server: lwa-emulator listening on http://127.0.0.1:PORT",
            "lwa_emulator::routes::observe: GET /ping from 127.0.0.1:PORT access_token=Atza…(23) x=1",
            "lwa_emulator::routes::observe: /ping -> 403",
            // No parameters: the line ends in a space. A fault answers without a "->" line.
            "lwa_emulator::routes::observe: GET /ping from 127.0.0.1:PORT ",
            "lwa_emulator::routes::observe: GET /ping: injecting fault status 503",
        ],
        "{log}"
    );
}

/// After a device-code flow (code pair, `browse --user-code` signing in on the `/code` page,
/// the poll that gets the tokens) and a sign-in on the authorize pages, neither the user code
/// nor the e-mail address is in the `--log` output, in the request log the control API serves,
/// in a control error about them, or in what `browse` prints. The log still shows those
/// requests, with the values as `[redacted]`. ~1 s.
#[tokio::test]
async fn no_user_code_and_no_email_address_in_the_log_or_the_served_request_log() {
    use shared_protocol::lwa::{CodePairRequest, CodePairResponse};

    let emu = spawn_emulator(&["--log"]).await;
    let base = emu.base_url.clone();
    let pair: CodePairResponse = serde_json::from_value(
        json_of(
            http()
                .post(format!("{base}/auth/O2/create/codepair"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    CodePairRequest {
                        client_id: DEFAULT_DEVICE_CLIENT_ID.into(),
                        product_id: lwa_emulator::registry::DEFAULT_PRODUCT_ID.into(),
                        dsn: "DSN-LOG".into(),
                    }
                    .to_form_body(),
                ),
        )
        .await,
    )
    .unwrap();
    let user_code = pair.user_code.clone();
    // The user opens the verification page with the code in its address (the page keeps it
    // through the sign-in as `next=/code?user_code=…`), signs in and approves.
    let verification = format!("{}?user_code={user_code}", pair.verification_uri);
    let browse = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_lwa-emulator"))
            .args(["browse", "--user-code", &user_code, &verification])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let printed = stdout_of_success("lwa-emulator browse --user-code", &browse);
    assert_eq!(printed, "CODE_APPROVED\n");
    let tokens = json_of(http().post(format!("{base}/auth/O2/token")).form(&[
        ("grant_type", "device_code"),
        ("device_code", pair.device_code.expose_secret()),
        ("user_code", &user_code),
    ]))
    .await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    // And a sign-in on the authorize pages.
    let endpoints = LwaEndpoints::from_base(&base).unwrap();
    let pkce = PkcePair::generate();
    let url = authorize_url(
        &endpoints.authorize,
        "http://127.0.0.1:1/authresponse",
        "DSN-LOG",
        "s",
        &pkce,
    );
    ScriptedUser::new(ALICE_EMAIL, ALICE_PASSWORD)
        .unwrap()
        .authorize(url.as_str(), Consent::Allow)
        .await
        .unwrap();
    // A control call about them: the error names neither.
    let refused = http()
        .post(format!("{base}/_emulator/codepairs/{user_code}/approve"))
        .json(&serde_json::json!({ "user": "nobody@example.org" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("unknown user"), "{refused}");

    let served = http()
        .get(format!("{base}/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, log) = emu.terminate().await;
    assert!(status.success(), "{log}");
    // None of the values...
    for (what, text) in [
        ("the log", &log),
        ("the served request log", &served),
        ("the control error", &refused),
    ] {
        for value in [user_code.as_str(), ALICE_EMAIL, "nobody@example.org"] {
            assert!(!text.contains(value), "{value} in {what}:\n{text}");
        }
    }
    // ...though the requests that carried them are there, redacted.
    for line in [
        "POST /ap/signin",
        "email=[redacted]",
        "user_code=[redacted]",
        "next=/code?user_code=%5Bredacted%5D",
        "grant_type=device_code",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    assert!(served.contains("\"user_code\",\"[redacted]\""), "{served}");
}
