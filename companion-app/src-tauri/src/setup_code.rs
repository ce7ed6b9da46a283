//! Checking a setup code while it is typed, with the protocol crate's own parser, so the window
//! and the handshake can never disagree about what a valid code is.
//!
//! A code still being typed is "incomplete", not wrong: fewer than 8 digits says nothing until
//! the user tries to continue. A typo in the manual code's check digit shows up the moment the
//! 9th digit is typed, before it costs one of the speaker's limited attempts.
//!
//! The answer never contains the code, and the code is not kept: it is parsed and dropped
//! (zeroized) right here. Pairing receives it again, once, in `start_pairing`.

use shared_protocol::setup_code::{SetupCode, SetupCodeError};

use crate::ipc::{CodeFormat, CodeStatus, SetupCodeCheck};

/// Longest input looked at (a QR payload with a 64-character device id is ~80 characters).
pub const MAX_INPUT_LEN: usize = 256;

/// What the typed text is so far.
pub fn check(input: &str) -> SetupCodeCheck {
    let text = input.trim();
    if text.len() > MAX_INPUT_LEN {
        return invalid(None, "That is too long to be a setup code.".into());
    }
    if text.is_empty() {
        return incomplete(None, String::new());
    }
    if text.contains(':') || text.to_ascii_uppercase().starts_with("AVSPAIR") {
        return check_qr(text);
    }
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let only_digits = text
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if only_digits && digits < 8 {
        let left = 8 - digits;
        let message = format!(
            "{left} more digit{} to go.",
            if left == 1 { "" } else { "s" }
        );
        return incomplete(Some(CodeFormat::Digits), message);
    }
    let format = if digits == 9 {
        CodeFormat::Manual
    } else {
        CodeFormat::Digits
    };
    match SetupCode::parse(text) {
        Ok(_code) => SetupCodeCheck {
            status: CodeStatus::Valid,
            format: Some(format),
            message: match format {
                CodeFormat::Manual => "Check digit matches.".into(),
                _ => "8 digits.".into(),
            },
            device_id: None,
        },
        Err(e) => invalid(Some(format), explain(&e)),
    }
}

fn check_qr(text: &str) -> SetupCodeCheck {
    if !text.contains(':') {
        // "AVSPAIR" being pasted or typed: wait for the rest.
        return incomplete(Some(CodeFormat::Qr), String::new());
    }
    match SetupCode::parse_qr(text) {
        Ok((device, _code)) => SetupCodeCheck {
            status: CodeStatus::Valid,
            format: Some(CodeFormat::Qr),
            message: "Setup code read from the QR code.".into(),
            device_id: Some(device.as_str().to_owned()),
        },
        Err(e) => invalid(Some(CodeFormat::Qr), explain(&e)),
    }
}

fn explain(e: &SetupCodeError) -> String {
    match e {
        SetupCodeError::BadCheckDigit => {
            "The last digit doesn't match the others: a digit was probably mistyped.".into()
        }
        SetupCodeError::NonDigit { .. } => "Use digits only (spaces and dashes are fine).".into(),
        SetupCodeError::WrongLength { found } if *found > 9 => {
            format!("That is {found} digits: a setup code has 8, or 9 with the check digit.")
        }
        other => {
            let s = other.to_string();
            let mut chars = s.chars();
            match chars.next() {
                Some(c) => format!("{}{}.", c.to_uppercase(), chars.as_str()),
                None => s,
            }
        }
    }
}

fn incomplete(format: Option<CodeFormat>, message: String) -> SetupCodeCheck {
    SetupCodeCheck {
        status: CodeStatus::Incomplete,
        format,
        message,
        device_id: None,
    }
}

fn invalid(format: Option<CodeFormat>, message: String) -> SetupCodeCheck {
    SetupCodeCheck {
        status: CodeStatus::Invalid,
        format,
        message,
        device_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_incomplete_until_eight_digits() {
        assert_eq!(check("").status, CodeStatus::Incomplete);
        let c = check("2468 13");
        assert_eq!(c.status, CodeStatus::Incomplete);
        assert_eq!(c.message, "2 more digits to go.");
        assert_eq!(check("2468 135").message, "1 more digit to go.");
    }

    #[test]
    fn eight_digits_and_the_manual_code_with_its_check_digit() {
        let code = SetupCode::from_digits("24681357").unwrap();
        assert_eq!(check("2468 1357").status, CodeStatus::Valid);
        let manual = code.manual_code();
        let c = check(&manual);
        assert_eq!(
            (c.status, c.format),
            (CodeStatus::Valid, Some(CodeFormat::Manual))
        );
        // One digit off in the check digit.
        let last = manual.chars().last().unwrap().to_digit(10).unwrap();
        let wrong = format!("{}{}", &manual[..manual.len() - 1], (last + 1) % 10);
        let c = check(&wrong);
        assert_eq!(c.status, CodeStatus::Invalid);
        assert!(c.message.contains("mistyped"), "{}", c.message);
        assert!(!c.message.contains("2468"));
    }

    #[test]
    fn trivial_letters_and_too_long_are_invalid() {
        assert_eq!(check("1111 1111").status, CodeStatus::Invalid);
        assert_eq!(check("1234 5a").status, CodeStatus::Invalid);
        assert_eq!(check("1234 5678 901").status, CodeStatus::Invalid);
        assert_eq!(check(&"1".repeat(300)).status, CodeStatus::Invalid);
    }

    #[test]
    fn a_qr_payload_names_its_device() {
        let code = SetupCode::from_digits("24681357").unwrap();
        let qr = code.qr_payload(&"dev-42".into());
        let c = check(&qr);
        assert_eq!(c.status, CodeStatus::Valid);
        assert_eq!(c.device_id.as_deref(), Some("dev-42"));
        assert_eq!(check("AVSPAIR").status, CodeStatus::Incomplete);
        assert_eq!(check("OTHER:1:x:123456789").status, CodeStatus::Invalid);
    }
}
