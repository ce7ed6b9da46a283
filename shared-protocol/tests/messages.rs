//! Every link message survives a JSON round trip, has the documented `type` tag (which is also
//! its derived name), unknown types decode as `Unknown` rather than failing, and the phases and
//! directions do not mix.

use serde_json::{json, Value};
use shared_protocol::ids::{DeviceId, SessionId, UserId};
use shared_protocol::lwa::{AuthError, AuthState};
use shared_protocol::message::{
    AccountProfile, AccountSwitch, AccountSwitchAnswer, AgentMessage, AgentSummary, AuthFailure,
    AuthFailureClass, AuthResult, Capability, CompanionMessage, DeviceInfo, ErrorBody, ErrorKind,
    Hello, PairingWindow, PlainMessage, Progress, ProgressStage, ProvideAuthorization, Role,
    Status, WireMessage,
};
use shared_protocol::pkce::CodeChallengeMethod;
use shared_protocol::secret::AuthorizationCode;

fn summary() -> AgentSummary {
    AgentSummary {
        device_id: DeviceId::new("3f9a0c2e11d04b7a"),
        friendly_name: "Kitchen speaker".into(),
        paired: false,
        window: PairingWindow::Open {
            closes_in_secs: 842,
        },
    }
}

fn session() -> SessionId {
    "6f1c7c52-3d7e-4c55-9a53-2f0b8f5d9e10"
        .parse()
        .expect("valid uuid")
}

fn all_plain() -> Vec<(PlainMessage, &'static str)> {
    let mut agent = Hello::new(Role::Agent, "avs-device-agent 0.1.0");
    agent.agent = Some(summary());
    vec![
        (
            PlainMessage::Hello(Hello::new(Role::Companion, "avs-companion 0.1.0")),
            "hello",
        ),
        (PlainMessage::Hello(agent), "hello"),
        (
            PlainMessage::PakeStart {
                pake: "QQ".repeat(10),
            },
            "pake_start",
        ),
        (
            PlainMessage::PakeReply {
                pake: "Qg".into(),
                confirm: "AAAA".into(),
            },
            "pake_reply",
        ),
        (
            PlainMessage::PakeConfirm {
                confirm: "AAAA".into(),
            },
            "pake_confirm",
        ),
        (
            PlainMessage::Error(ErrorBody {
                kind: ErrorKind::LockedOut,
                message: "too many wrong setup codes".into(),
                retry_after_secs: Some(120),
                attempts_left: None,
                lockout_secs: None,
            }),
            "error",
        ),
    ]
}

fn all_from_companion() -> Vec<(CompanionMessage, &'static str)> {
    vec![
        (CompanionMessage::GetDeviceInfo, "get_device_info"),
        (
            CompanionMessage::ProvideAuthorization(ProvideAuthorization {
                session_id: session(),
                authorization_code: AuthorizationCode::new("ANcMJpTtVktKiZvfdYaV"),
                client_id: "amzn1.application-oa2-client.abc".into(),
                redirect_uri: "http://127.0.0.1:53682/callback".into(),
            }),
            "provide_authorization",
        ),
        (CompanionMessage::GetStatus, "get_status"),
        (CompanionMessage::Reset, "reset"),
        (
            CompanionMessage::AccountSwitchAnswer(AccountSwitchAnswer {
                session_id: session(),
                replace: false,
            }),
            "account_switch_answer",
        ),
        (
            CompanionMessage::Error(ErrorBody::new(ErrorKind::Malformed, "bad device info")),
            "error",
        ),
    ]
}

fn all_from_agent() -> Vec<(AgentMessage, &'static str)> {
    let failure = AuthFailure {
        class: AuthFailureClass::InvalidGrant,
        error: AuthError::AuthorizationExpired,
        lwa_error: Some("invalid_grant".into()),
        description: Some("The request has an invalid grant parameter : code".into()),
        retry_with_same_code: false,
        linked_by_other: None,
    };
    let alice = AccountProfile::from_lwa(
        "amzn1.account.AEXAMPLE".into(),
        Some("Alice Example"),
        Some("alice@example.com"),
    );
    let bob = AccountProfile::id_only("amzn1.account.BEXAMPLE".into());
    vec![
        (
            AgentMessage::DeviceInfo(DeviceInfo {
                product_id: "avs_pair_speaker".into(),
                dsn: "DSN-0001".into(),
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                code_challenge_method: CodeChallengeMethod::S256,
                session_id: session(),
                network: None,
            }),
            "device_info",
        ),
        (
            AgentMessage::Progress(Progress {
                session_id: session(),
                stage: ProgressStage::ExchangingCode,
            }),
            "progress",
        ),
        (
            AgentMessage::AuthResult(AuthResult::Linked {
                session_id: session(),
                user_id: Some(UserId::new("amzn1.account.AEXAMPLE")),
                account: Some(alice.clone()),
            }),
            "auth_result",
        ),
        (
            AgentMessage::AuthResult(AuthResult::KeptCurrent {
                session_id: session(),
                account: alice.clone(),
                timed_out: false,
            }),
            "auth_result",
        ),
        (
            AgentMessage::ConfirmAccountSwitch(AccountSwitch {
                session_id: session(),
                current: alice.clone(),
                new: bob,
                answer_within_secs: 120,
            }),
            "confirm_account_switch",
        ),
        (
            AgentMessage::AuthResult(AuthResult::Failed {
                session_id: session(),
                failure,
            }),
            "auth_result",
        ),
        (
            AgentMessage::Status(Status {
                summary: summary(),
                auth_state: AuthState::Refreshed,
                auth_error: AuthError::Success,
                user_id: None,
                account: None,
            }),
            "status",
        ),
        (AgentMessage::ResetDone, "reset_done"),
        (
            AgentMessage::Error(ErrorBody::new(
                ErrorKind::UnsupportedMessage,
                "unknown message type",
            )),
            "error",
        ),
    ]
}

/// Each message serializes with its tag, its derived name is that tag, and it reads back equal.
fn assert_round_trips<M: WireMessage + PartialEq>(cases: Vec<(M, &'static str)>) {
    for (msg, tag) in cases {
        let text = serde_json::to_string(&msg).expect("serializes");
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["type"], tag, "{text}");
        assert_eq!(msg.type_name(), tag, "{text}");
        let back: M = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, msg);
    }
}

#[test]
fn every_plain_message_round_trips_with_its_tag() {
    assert_round_trips(all_plain());
}

#[test]
fn every_secure_message_round_trips_with_its_tag() {
    assert_round_trips(all_from_companion());
    assert_round_trips(all_from_agent());
}

#[test]
fn the_catch_all_is_named_unknown() {
    assert_eq!(PlainMessage::Unknown.type_name(), "unknown");
    assert_eq!(CompanionMessage::Unknown.type_name(), "unknown");
    assert_eq!(AgentMessage::Unknown.type_name(), "unknown");
}

#[test]
fn all_error_kinds_and_stages_round_trip() {
    for kind in [
        ErrorKind::IncompatibleVersion,
        ErrorKind::WrongSetupCode,
        ErrorKind::LockedOut,
        ErrorKind::WindowClosed,
        ErrorKind::Busy,
        ErrorKind::UnexpectedMessage,
        ErrorKind::UnsupportedMessage,
        ErrorKind::Malformed,
        ErrorKind::Timeout,
        ErrorKind::Internal,
    ] {
        let msg = AgentMessage::Error(ErrorBody::new(kind, "x"));
        let back: AgentMessage =
            serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(back, msg);
    }
    for window in [
        PairingWindow::Open { closes_in_secs: 1 },
        PairingWindow::Closed,
        PairingWindow::LockedOut { retry_in_secs: 2 },
    ] {
        let back: PairingWindow =
            serde_json::from_str(&serde_json::to_string(&window).unwrap()).unwrap();
        assert_eq!(back, window);
    }
}

#[test]
fn unknown_types_decode_as_unknown() {
    let plain: PlainMessage =
        serde_json::from_value(json!({"type": "pake_start_v2", "x": 1})).unwrap();
    assert_eq!(plain, PlainMessage::Unknown);
    let request: CompanionMessage =
        serde_json::from_value(json!({"type": "firmware_update", "url": "x"})).unwrap();
    assert_eq!(request, CompanionMessage::Unknown);
    let answer: AgentMessage =
        serde_json::from_value(json!({"type": "firmware_progress", "percent": 3})).unwrap();
    assert_eq!(answer, AgentMessage::Unknown);
}

#[test]
fn the_phases_do_not_mix() {
    // A plain-phase message is not a secure-phase message and vice versa.
    let text = serde_json::to_string(&PlainMessage::PakeConfirm {
        confirm: "AA".into(),
    })
    .unwrap();
    assert_eq!(
        serde_json::from_str::<CompanionMessage>(&text).unwrap(),
        CompanionMessage::Unknown
    );
    assert_eq!(
        serde_json::from_str::<AgentMessage>(&text).unwrap(),
        AgentMessage::Unknown
    );
    let text = serde_json::to_string(&CompanionMessage::Reset).unwrap();
    assert_eq!(
        serde_json::from_str::<PlainMessage>(&text).unwrap(),
        PlainMessage::Unknown
    );
}

#[test]
fn the_directions_do_not_mix() {
    // Only `error` travels both ways; every other message is unknown to the end that sends it.
    for (msg, tag) in all_from_companion() {
        let text = serde_json::to_string(&msg).unwrap();
        let read = serde_json::from_str::<AgentMessage>(&text).unwrap();
        assert_eq!(tag == "error", !read.is_unknown(), "{text}");
    }
    for (msg, tag) in all_from_agent() {
        let text = serde_json::to_string(&msg).unwrap();
        let read = serde_json::from_str::<CompanionMessage>(&text).unwrap();
        assert_eq!(tag == "error", !read.is_unknown(), "{text}");
    }
}

#[test]
fn capabilities_are_checked_and_unknown_ones_still_parse() {
    // Byte-compatible with the strings v1.0 peers send.
    let ours = Hello::new(Role::Companion, "c");
    let text = serde_json::to_string(&PlainMessage::Hello(ours.clone())).unwrap();
    assert!(
        text.contains(r#""capabilities":["progress","reset"]"#),
        "{text}"
    );
    assert!(ours.supports(Capability::Reset));
    assert!(!ours.supports(Capability::Cbl));

    // A newer peer's feature parses and is ignored; an absent list is no features.
    let newer = r#"{"type":"hello","version":{"major":1,"minor":4},"min_major":1,"role":"agent",
        "software":"x","capabilities":["cbl","teleport"],"security_schemes":["s"]}"#;
    let PlainMessage::Hello(hello) = serde_json::from_str(newer).unwrap() else {
        panic!("not a hello");
    };
    assert_eq!(hello.capabilities, [Capability::Cbl, Capability::Unknown]);
    assert!(hello.supports(Capability::Cbl));
    assert!(!hello.supports(Capability::Reset));
    assert!(!hello.supports(Capability::Unknown));
    let bare = r#"{"type":"hello","version":{"major":1,"minor":0},"min_major":1,"role":"agent",
        "software":"x","security_schemes":["s"]}"#;
    let PlainMessage::Hello(hello) = serde_json::from_str(bare).unwrap() else {
        panic!("not a hello");
    };
    assert!(hello.capabilities.is_empty());
}

#[test]
fn missing_type_or_fields_are_errors_not_panics() {
    assert!(serde_json::from_value::<PlainMessage>(json!({"pake": "x"})).is_err());
    assert!(serde_json::from_value::<PlainMessage>(json!({"type": "pake_start"})).is_err());
    assert!(serde_json::from_value::<AgentMessage>(json!({"type": "device_info"})).is_err());
    assert!(
        serde_json::from_value::<CompanionMessage>(json!({"type": "provide_authorization"}))
            .is_err()
    );
    assert!(serde_json::from_slice::<AgentMessage>(b"\x00\xff").is_err());
    assert!(serde_json::from_slice::<CompanionMessage>(b"\x00\xff").is_err());
}

#[test]
fn documented_json_examples_parse() {
    // The examples in docs/protocol.md, verbatim.
    let hello = r#"{"type":"hello","version":{"major":1,"minor":0},"min_major":1,"role":"agent",
        "software":"avs-device-agent 0.1.0","capabilities":["progress","reset"],
        "security_schemes":["spake2-ed25519-hkdf-sha256-chacha20poly1305"],
        "agent":{"device_id":"3f9a0c2e11d04b7a","friendly_name":"Kitchen speaker","paired":false,
        "window":{"state":"open","closes_in_secs":842}}}"#;
    assert!(matches!(
        serde_json::from_str::<PlainMessage>(hello).unwrap(),
        PlainMessage::Hello(Hello { agent: Some(_), .. })
    ));
    let failed = r#"{"type":"auth_result","outcome":"failed",
        "session_id":"6f1c7c52-3d7e-4c55-9a53-2f0b8f5d9e10","class":"invalid_grant",
        "error":"AUTHORIZATION_EXPIRED","lwa_error":"invalid_grant",
        "description":"The request has an invalid grant parameter : code",
        "retry_with_same_code":false}"#;
    assert!(matches!(
        serde_json::from_str::<AgentMessage>(failed).unwrap(),
        AgentMessage::AuthResult(AuthResult::Failed { .. })
    ));
}

#[test]
fn every_json_example_in_the_protocol_doc_parses() {
    let doc = include_str!("../../docs/protocol.md");
    let mut checked = 0;
    for block in doc.split("```json").skip(1) {
        let block = block.split("```").next().expect("closed block");
        let values: Vec<Value> = match serde_json::from_str::<Value>(block) {
            Ok(v) => vec![v],
            Err(_) => block
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect(),
        };
        for value in values {
            let plain = serde_json::from_value::<PlainMessage>(value.clone());
            let request = serde_json::from_value::<CompanionMessage>(value.clone());
            let answer = serde_json::from_value::<AgentMessage>(value.clone());
            let known = matches!(&plain, Ok(m) if !m.is_unknown())
                || matches!(&request, Ok(m) if !m.is_unknown())
                || matches!(&answer, Ok(m) if !m.is_unknown());
            assert!(
                known,
                "doc example does not parse as a known message: {value}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} examples found");
}

/// Protocol 1.2's additions are optional for a 1.1 peer: a 1.1 agent's `linked` result and
/// status (no `account`) still parse, and a 1.2 result reads the same to code that ignores the
/// new field. A race's loser is a `window_closed` failure, a class 1.1 companions know.
#[test]
fn the_account_fields_are_optional_both_ways() {
    let old_linked = r#"{"type":"auth_result","outcome":"linked",
        "session_id":"6f1c7c52-3d7e-4c55-9a53-2f0b8f5d9e10","user_id":"amzn1.account.A"}"#;
    let AgentMessage::AuthResult(AuthResult::Linked {
        account, user_id, ..
    }) = serde_json::from_str(old_linked).unwrap()
    else {
        panic!("not linked");
    };
    assert_eq!(
        (account, user_id.unwrap().as_str()),
        (None, "amzn1.account.A")
    );
    let lost = r#"{"type":"auth_result","outcome":"failed",
        "session_id":"6f1c7c52-3d7e-4c55-9a53-2f0b8f5d9e10","class":"window_closed",
        "error":"AUTHORIZATION_FAILED","retry_with_same_code":false,
        "description":"another companion linked this speaker a moment ago (to Alice Example)",
        "linked_by_other":{"account":{"user_id":"amzn1.account.A","name":"Alice Example"}}}"#;
    let AgentMessage::AuthResult(AuthResult::Failed { failure, .. }) =
        serde_json::from_str(lost).unwrap()
    else {
        panic!("not failed");
    };
    assert_eq!(failure.class, AuthFailureClass::WindowClosed);
    let by = failure.linked_by_other.unwrap().account.unwrap();
    assert_eq!(by.short(), "Alice Example");
    // The new capability's wire name.
    assert_eq!(
        serde_json::to_string(&Capability::ConfirmAccountSwitch).unwrap(),
        r#""confirm_account_switch""#
    );
}

/// Issue 15.7 (protocol 1.2): the wrong-code count is optional both ways. A 1.1 agent's
/// `wrong_setup_code` parses with no count; a body without one serializes exactly as 1.1 did;
/// a 1.2 body carries both fields.
#[test]
fn the_wrong_code_count_is_optional_both_ways() {
    let old = r#"{"type":"error","kind":"wrong_setup_code","message":"wrong"}"#;
    match serde_json::from_str::<PlainMessage>(old).unwrap() {
        PlainMessage::Error(body) => {
            assert_eq!((body.attempts_left, body.lockout_secs), (None, None));
            assert_eq!(
                serde_json::to_string(&PlainMessage::Error(body)).unwrap(),
                old,
                "no new keys when there is no count"
            );
        }
        other => panic!("{other:?}"),
    }
    let counted = PlainMessage::Error(
        ErrorBody::new(ErrorKind::WrongSetupCode, "wrong").with_attempts(19, 60),
    );
    let json = serde_json::to_string(&counted).unwrap();
    assert_eq!(
        json,
        r#"{"type":"error","kind":"wrong_setup_code","message":"wrong","attempts_left":19,"lockout_secs":60}"#
    );
    assert_eq!(
        serde_json::from_str::<PlainMessage>(&json).unwrap(),
        counted
    );
}
