//! Starting an emulator: what is refused, in which order (nothing is bound or written for a
//! config that is refused), the base URL it reports, and the CA it writes in HTTPS mode.
//! `https.rs` has the plain-HTTP rule and a full HTTPS login; these pin the rest of `start`.

use std::net::{SocketAddr, TcpListener};

use lwa_emulator::{Emulator, EmulatorBuilder, Settings, SettingsError, StartError};
use reqwest::StatusCode;

use crate::common::*;

/// A loopback port something else is listening on (held by the returned listener).
fn taken_port() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("an address");
    (listener, addr)
}

/// The error `builder` fails to start with.
async fn refused(builder: EmulatorBuilder) -> StartError {
    match builder.start().await {
        Ok(emu) => panic!("started at {}", emu.base_url()),
        Err(e) => e,
    }
}

/// Settings that cannot work: tokens that expire as they are issued.
fn zero_lifetime() -> Settings {
    Settings {
        access_token_lifetime_secs: 0,
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_config_is_checked_before_anything_is_bound_registry_then_settings_then_address() {
    let (_held, taken) = taken_port();
    let mut registry = lwa_emulator::Registry::default();
    for client in &mut registry.clients {
        client.client_secret = None;
    }
    let nowhere: SocketAddr = "192.0.2.1:0".parse().expect("an address");

    let bad_registry = Emulator::builder()
        .registry(registry)
        .settings(zero_lifetime())
        .bind(nowhere);
    let e = refused(bad_registry).await;
    assert!(matches!(e, StartError::Registry(_)), "{e:?}");
    assert!(e.to_string().contains("needs a client_secret"), "{e}");

    let bad_settings = Emulator::builder().settings(zero_lifetime()).bind(taken);
    let e = refused(bad_settings).await;
    assert_eq!(
        e.to_string(),
        "invalid settings: access_token_lifetime_secs must be at least 1"
    );
    let zero = SettingsError::ZeroAccessTokenLifetime;
    assert!(matches!(e, StartError::Settings(s) if s == zero), "{e:?}");

    // Plain HTTP off loopback is refused before a bind is tried (this one would fail).
    let e = refused(Emulator::builder().bind(nowhere)).await;
    assert!(
        matches!(e, StartError::PlainHttpNotLoopback(a) if a == nowhere),
        "{e:?}"
    );

    let e = refused(Emulator::builder().bind(taken)).await;
    let message = e.to_string();
    match e {
        StartError::Bind(addr, io) => {
            assert_eq!(addr, taken);
            assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
            assert!(
                message.starts_with(&format!("cannot listen on {taken}: ")),
                "{message}"
            );
        }
        other => panic!("expected Bind, got {other:?}"),
    }
}

#[tokio::test]
async fn https_binds_before_it_writes_the_ca_and_reports_a_ca_it_cannot_write() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = dir.path().join("ca.pem");
    let (_held, taken) = taken_port();
    let e = refused(
        Emulator::builder()
            .https(vec![])
            .ca_out(ca.clone())
            .bind(taken),
    )
    .await;
    assert!(matches!(e, StartError::Bind(..)), "{e:?}");
    assert!(
        !ca.exists(),
        "no CA written for an emulator that did not start"
    );

    let unwritable = dir.path().join("missing-dir").join("ca.pem");
    let e = refused(Emulator::builder().https(vec![]).ca_out(unwritable.clone())).await;
    let message = e.to_string();
    match e {
        StartError::CaOut(path, _) => assert_eq!(path, unwritable),
        other => panic!("expected CaOut, got {other:?}"),
    }
    let expected = format!(
        "cannot write the CA certificate to {}: ",
        unwritable.display()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[tokio::test]
async fn a_specific_address_is_the_base_url_and_in_the_certificate() {
    let bind: SocketAddr = "127.0.0.2:0".parse().expect("an address");
    let plain = start_with(Emulator::builder().bind(bind)).await;
    let port = plain.local_addr().port();
    assert_eq!(plain.base_url(), format!("http://127.0.0.2:{port}"));
    assert_eq!(
        plain.endpoints().token.as_str(),
        format!("http://127.0.0.2:{port}/auth/o2/token")
    );
    assert_eq!(plain.ca_cert_path(), None);
    plain.shutdown().await;

    // 127.0.0.2 is not one of the default names: the bind address is added to them.
    let tls = start_with(Emulator::builder().bind(bind).https(vec![])).await;
    let pem = tls.ca_cert_pem().expect("a CA").to_owned();
    let written = std::fs::read_to_string(tls.ca_cert_path().expect("a CA file")).expect("read");
    assert_eq!(written, pem);
    let port = tls.local_addr().port();
    assert_eq!(tls.base_url(), format!("https://127.0.0.2:{port}"));
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM"))
        .build()
        .expect("a client");
    assert_eq!(
        status_of(trusting.get(tls.url("/_emulator/health"))).await,
        StatusCode::OK
    );
    tls.shutdown().await;
}
