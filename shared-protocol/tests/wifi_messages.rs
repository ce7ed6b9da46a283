//! The network messages of protocol 1.1: SSIDs as exact bytes, the passphrase redacted, and
//! the compatibility rules (a 1.0 DeviceInfo without `network` still parses; a 1.1 message
//! reaches a peer that does not know it as `unknown`).
#![allow(clippy::unwrap_used)]

use shared_protocol::message::{
    AgentMessage, CompanionMessage, ConnectWifi, DeviceInfo, Ssid, WifiFailure, WifiResult,
    WireMessage,
};
use shared_protocol::secret::WifiPassphrase;

#[test]
fn ssid_bytes_survive_the_wire() {
    for bytes in [
        b"Home-5G".to_vec(),
        vec![0xff, 0x00, 0x80],
        vec![],
        vec![b'x'; 32],
    ] {
        let ssid = Ssid::new(bytes.clone()).unwrap();
        let json = serde_json::to_string(&ssid).unwrap();
        let back: Ssid = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_bytes(), bytes.as_slice());
    }
    assert!(Ssid::new(vec![b'x'; 33]).is_err());
    // 33 bytes, odd length, not hex: refused when parsing too.
    for bad in [
        "\"".to_owned() + &"78".repeat(33) + "\"",
        "\"abc\"".into(),
        "\"zz\"".into(),
    ] {
        assert!(serde_json::from_str::<Ssid>(&bad).is_err(), "{bad}");
    }
    assert_eq!(Ssid::new(vec![b'a', 0xff]).unwrap().display(), "a\u{fffd}");
    assert_eq!(Ssid::new(vec![b'a', 0x07]).unwrap().display(), "a\\u{7}");
}

#[test]
fn passphrase_is_redacted_but_crosses_the_sealed_link() {
    let msg = CompanionMessage::ConnectWifi(ConnectWifi {
        ssid: Ssid::new(b"Home".to_vec()).unwrap(),
        passphrase: Some(WifiPassphrase::new("hunter22-secret")),
        hidden: true,
    });
    assert!(!format!("{msg:?}").contains("hunter22"));
    let json = serde_json::to_string(&msg).unwrap();
    assert!(json.contains("\"type\":\"connect_wifi\""), "{json}");
    let back: CompanionMessage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, msg);
    assert_eq!(msg.type_name(), "connect_wifi");
}

#[test]
fn results_name_the_network_and_the_reason() {
    let r = WifiResult::Failed {
        ssid: Ssid::new(b"Home-5G".to_vec()).unwrap(),
        reason: WifiFailure::WrongPassword,
        message: WifiFailure::WrongPassword.describe(&Ssid::new(b"Home-5G".to_vec()).unwrap()),
    };
    let json = serde_json::to_value(AgentMessage::WifiResult(r)).unwrap();
    assert_eq!(json["type"], "wifi_result");
    assert_eq!(json["outcome"], "failed");
    assert_eq!(json["reason"], "wrong_password");
    assert_eq!(json["message"], "Wrong password for Home-5G");
}

#[test]
fn older_and_newer_peers() {
    // A 1.0 agent's DeviceInfo has no `network`: parsed as unknown network status.
    let old = r#"{"product_id":"p","dsn":"d","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","code_challenge_method":"S256","session_id":"5f1d1f0e-8d1a-4b8e-9a57-1b6a2b0f3c4d"}"#;
    let info: DeviceInfo = serde_json::from_str(old).unwrap();
    assert!(info.network.is_none());
    // A 1.0 peer sees a 1.1 message as unknown (this build's catch-all stands in for it):
    let future = r#"{"type":"wifi_something_newer","x":1}"#;
    assert!(serde_json::from_str::<AgentMessage>(future)
        .unwrap()
        .is_unknown());
    // An unknown failure reason from a newer agent reads as internal, not as a parse error.
    let r: WifiResult = serde_json::from_str(
        r#"{"outcome":"failed","ssid":"686f6d65","reason":"radio_on_fire","message":"m"}"#,
    )
    .unwrap();
    assert!(matches!(
        r,
        WifiResult::Failed {
            reason: WifiFailure::Internal,
            ..
        }
    ));
}
