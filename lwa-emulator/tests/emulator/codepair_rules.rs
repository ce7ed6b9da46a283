//! `POST /auth/O2/create/codepair` word for word: which rule answers when a request breaks
//! several, each answer's exact JSON, and the exact success body. `cbl.rs` tests the flow.

use lwa_emulator::registry::DEFAULT_PRODUCT_ID;
use lwa_emulator::{Emulator, Settings};

use crate::common::*;

/// `body` POSTed with `content_type`; the status and the body as text.
async fn create(
    emu: &lwa_emulator::RunningEmulator,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let response = http()
        .post(emu.url("/auth/O2/create/codepair"))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn the_first_broken_rule_answers_with_lwas_exact_json() {
    let emu = start().await;
    let sd = scope_data(DEFAULT_PRODUCT_ID);
    let no_serial = form_encoded(&sd.replace("DSN-0001", ""));
    let dev = format!("response_type=device_code&client_id={DEVICE}");
    let alexa = format!("{dev}&scope=alexa%3Aall");
    let says = |error: &'static str, what: &str, name: &str| {
        (error, format!("The request {what} parameter : {name}"))
    };
    let invalid = |name: &str| says("invalid_request", "has an invalid", name);
    let missing = |name: &str| says("invalid_request", "is missing a required", name);
    let value = |name: &str| says("InvalidValue", "has an invalid", name);
    let fine = || ("", String::new());
    let form = "application/x-www-form-urlencoded";
    let cases = [
        ("application/json", "{not json".to_owned(), invalid("body")),
        // A repeated scope is allowed (one per scope); any other repeat is not, and comes first.
        (
            form,
            "client_id=a&client_id=b&scope=x&scope=y".to_owned(),
            says("invalid_request", "has a duplicate", "client_id"),
        ),
        (
            form,
            "response_type=code&client_id=no".to_owned(),
            invalid("response_type"),
        ),
        (
            form,
            "response_type=device_code&scope=x".to_owned(),
            missing("client_id"),
        ),
        (
            form,
            "response_type=device_code&client_id=no".to_owned(),
            value("client_id"),
        ),
        (form, format!("{dev}&scope_data=x"), missing("scope")),
        (form, format!("{dev}&scope=%20"), missing("scope")),
        (form, format!("{alexa}&scope=bogus"), value("scope")),
        (
            form,
            format!("{alexa}&scope_data=%7Bnot"),
            value("scope_data"),
        ),
        (
            form,
            format!("{alexa}&scope_data={no_serial}"),
            value("scope_data"),
        ),
        // Without alexa:all, scope_data is not read.
        (
            form,
            format!("{dev}&scope=profile&scope_data=%7Bnot"),
            fine(),
        ),
        (
            form,
            format!("{alexa}&scope_data={}", form_encoded(&sd)),
            fine(),
        ),
    ];
    for (content_type, body, (error, description)) in cases {
        let (status, answer) = create(&emu, content_type, &body).await;
        if error.is_empty() {
            assert_eq!(status, 200, "{body}: {answer}");
        } else {
            assert_eq!(status, 400, "{body}");
            let expected = format!(r#"{{"error_description":"{description}","error":"{error}"}}"#);
            assert_eq!(answer, expected, "{body}");
        }
    }
}

#[tokio::test]
async fn the_answer_is_the_code_pair_json_with_the_configured_page_and_times() {
    let settings = Settings {
        verification_uri: Some("https://amazon.com/us/code".into()),
        codepair_lifetime_secs: 300,
        codepair_interval_secs: 5,
        ..Settings::default()
    };
    let emu = start_with(Emulator::builder().settings(settings)).await;
    let sd = form_encoded(&scope_data(DEFAULT_PRODUCT_ID));
    let body =
        format!("response_type=device_code&client_id={DEVICE}&scope=alexa%3Aall&scope_data={sd}");
    let (status, answer) = create(&emu, "application/x-www-form-urlencoded", &body).await;
    assert_eq!(status, 200, "{answer}");
    let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let device_code = json["device_code"].as_str().expect("a device code");
    let user_code = json["user_code"].as_str().expect("a user code");
    assert_eq!(
        answer,
        format!(
            r#"{{"user_code":"{user_code}","device_code":"{device_code}","verification_uri":"https://amazon.com/us/code","expires_in":300,"interval":5}}"#
        )
    );
}
