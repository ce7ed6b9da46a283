//! The setup code: the 8-digit secret printed on the speaker that keys the link handshake.
//!
//! Why this shape:
//!
//! - **8 digits** (10^8 codes) because a person has to type it. It is never sent anywhere: it only
//!   keys SPAKE2 (see [`crate::session`]), so a passive listener learns nothing and an active one
//!   gets one guess per connection, which the agent counts and limits.
//! - **Trivial codes are refused** (all one digit, `12345678`, `87654321`): they are the first
//!   guesses of anyone trying codes by hand, and a provisioning tool that emits one is broken.
//! - **Manual code** `1234-5670-9`: the 8 digits plus a [Verhoeff] check digit, so a typo
//!   (single digit or adjacent swap, the two most common) is caught before it costs an attempt
//!   against the agent's limit.
//! - **QR payload** `AVSPAIR:1:<device-id>:<8 digits + check digit>`: the version number lets the
//!   format change later; the device id lets a scanner pick the right speaker.
//!
//! [`SetupCode`] is a secret: `Debug`/`Display` are redacted, the digits are zeroized on drop,
//! and errors never repeat the input.
//!
//! [Verhoeff]: https://en.wikipedia.org/wiki/Verhoeff_algorithm

use rand::Rng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::DeviceId;

/// Number of digits in a setup code.
pub const SETUP_CODE_DIGITS: usize = 8;
/// The QR payload prefix (before the first `:`).
pub const QR_PREFIX: &str = "AVSPAIR";
/// The QR payload format version this build writes and reads.
pub const QR_VERSION: &str = "1";
/// Longest device id accepted inside a QR payload.
const MAX_QR_DEVICE_ID_LEN: usize = 64;

/// Why a setup code was refused. Never contains the code or any digit of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupCodeError {
    /// Nothing was entered.
    #[error("the setup code is empty")]
    Empty,
    /// A character other than a digit, space or dash.
    #[error("character {position} of the setup code is not a digit (only digits, spaces and dashes are allowed)")]
    NonDigit {
        /// 1-based position in the input, counting characters.
        position: usize,
    },
    /// Not 8 digits (code) or 9 digits (manual code with check digit).
    #[error("the setup code has {found} digits; expected 8, or 9 for the manual code with its check digit")]
    WrongLength {
        /// How many digits were found.
        found: usize,
    },
    /// The 9th digit does not match the first eight.
    #[error("the check digit (last digit) does not match: a digit was probably mistyped")]
    BadCheckDigit,
    /// A code anyone would guess first.
    #[error("the setup code is too easy to guess: {reason}")]
    Trivial {
        /// Which rule it breaks ("all digits are the same"), without the digits.
        reason: &'static str,
    },
    /// Looks like a QR payload (has a `:`) but not ours.
    #[error("the QR code is not an avs-pair setup code (expected it to start with \"AVSPAIR:\")")]
    UnknownQrPrefix,
    /// Our prefix, another version.
    #[error("the QR code uses avs-pair setup format version {version:?}; this build reads version 1: update the app")]
    UnsupportedQrVersion {
        /// The version field (not secret).
        version: String,
    },
    /// Our prefix and version, broken body.
    #[error("the QR code is damaged: {0}")]
    MalformedQr(&'static str),
}

/// The 8-digit setup code. Secret: redacted formatting, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SetupCode(String);

impl SetupCode {
    /// Parses what a person typed or a scanner read:
    ///
    /// - 8 digits (`12345670`, `1234 5670`, `1234-5670`);
    /// - the manual code, 8 digits + Verhoeff check digit (`1234-5670-?`), checked;
    /// - a QR payload `AVSPAIR:1:<device-id>:<9 digits>` (see [`SetupCode::parse_qr`] to also
    ///   get the device id).
    pub fn parse(input: &str) -> Result<SetupCode, SetupCodeError> {
        let trimmed = input.trim();
        if trimmed.contains(':') {
            return Self::parse_qr(trimmed).map(|(_, code)| code);
        }
        let mut digits = zeroize::Zeroizing::new(String::with_capacity(16));
        for (index, ch) in trimmed.chars().enumerate() {
            match ch {
                '0'..='9' => {
                    if digits.len() > SETUP_CODE_DIGITS + 1 {
                        // Keep counting without growing: the length error reports the count.
                        continue;
                    }
                    digits.push(ch);
                }
                ' ' | '-' => {}
                _ => {
                    return Err(SetupCodeError::NonDigit {
                        position: index + 1,
                    })
                }
            }
        }
        let found = trimmed.chars().filter(char::is_ascii_digit).count();
        match found {
            0 => Err(SetupCodeError::Empty),
            SETUP_CODE_DIGITS => Self::from_digits(&digits),
            9 => Self::from_manual_digits(&digits),
            _ => Err(SetupCodeError::WrongLength { found }),
        }
    }

    /// Parses a QR payload `AVSPAIR:1:<device-id>:<8 digits + check digit>`.
    pub fn parse_qr(input: &str) -> Result<(DeviceId, SetupCode), SetupCodeError> {
        let mut parts = input.trim().splitn(4, ':');
        let prefix = parts.next().unwrap_or_default();
        if !prefix.eq_ignore_ascii_case(QR_PREFIX) {
            return Err(SetupCodeError::UnknownQrPrefix);
        }
        let version = parts
            .next()
            .ok_or(SetupCodeError::MalformedQr("the version field is missing"))?;
        if version != QR_VERSION {
            // At most 16 characters (a byte cut could split a character and panic: found by
            // the setup_code_qr fuzz target).
            let version = version.chars().take(16).collect();
            return Err(SetupCodeError::UnsupportedQrVersion { version });
        }
        let device_id = parts
            .next()
            .ok_or(SetupCodeError::MalformedQr("the device id is missing"))?;
        if device_id.is_empty()
            || device_id.len() > MAX_QR_DEVICE_ID_LEN
            || !device_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SetupCodeError::MalformedQr(
                "the device id is empty, too long or has characters other than letters, digits, '-' and '_'",
            ));
        }
        let code = parts
            .next()
            .ok_or(SetupCodeError::MalformedQr("the code field is missing"))?;
        if code.len() != SETUP_CODE_DIGITS + 1 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SetupCodeError::MalformedQr(
                "the code field is not 9 digits",
            ));
        }
        let code = Self::from_manual_digits(code)?;
        Ok((DeviceId::new(device_id), code))
    }

    /// A fresh random code from the OS RNG, never a trivial one.
    pub fn generate() -> SetupCode {
        let mut rng = rand::rngs::OsRng;
        loop {
            let n: u32 = rng.gen_range(0..100_000_000);
            let digits = zeroize::Zeroizing::new(format!("{n:08}"));
            if let Ok(code) = Self::from_digits(&digits) {
                return code;
            }
        }
    }

    /// Exactly 8 ASCII digits; refuses trivial codes.
    pub fn from_digits(digits: &str) -> Result<SetupCode, SetupCodeError> {
        if digits.is_empty() {
            return Err(SetupCodeError::Empty);
        }
        if let Some(index) = digits.chars().position(|c| !c.is_ascii_digit()) {
            return Err(SetupCodeError::NonDigit {
                position: index + 1,
            });
        }
        if digits.len() != SETUP_CODE_DIGITS {
            return Err(SetupCodeError::WrongLength {
                found: digits.len(),
            });
        }
        if let Some(reason) = trivial_reason(digits) {
            return Err(SetupCodeError::Trivial { reason });
        }
        Ok(SetupCode(digits.to_owned()))
    }

    /// 9 ASCII digits: the code and its Verhoeff check digit.
    fn from_manual_digits(digits: &str) -> Result<SetupCode, SetupCodeError> {
        if !verhoeff_valid(digits) {
            return Err(SetupCodeError::BadCheckDigit);
        }
        Self::from_digits(&digits[..SETUP_CODE_DIGITS])
    }

    /// The manual-entry form: `1234-5678-C`, C the Verhoeff check digit.
    pub fn manual_code(&self) -> String {
        let d = &self.0;
        format!("{}-{}-{}", &d[..4], &d[4..], verhoeff_check_digit(d))
    }

    /// The QR payload: `AVSPAIR:1:<device-id>:<8 digits><check digit>`.
    pub fn qr_payload(&self, device_id: &DeviceId) -> String {
        format!(
            "{QR_PREFIX}:{QR_VERSION}:{}:{}{}",
            device_id.as_str(),
            self.0,
            verhoeff_check_digit(&self.0)
        )
    }

    /// The 8 digits. Every call site is a place the secret leaves its box.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetupCode({})", crate::secret::REDACTED)
    }
}

impl std::fmt::Display for SetupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::secret::REDACTED)
    }
}

impl std::str::FromStr for SetupCode {
    type Err = SetupCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `Some(reason)` when an 8-digit code is one anyone would try first.
fn trivial_reason(digits: &str) -> Option<&'static str> {
    let bytes = digits.as_bytes();
    if bytes.iter().all(|&b| b == bytes[0]) {
        Some("all eight digits are the same")
    } else if digits == "12345678" {
        Some("12345678 is an ascending run")
    } else if digits == "87654321" {
        Some("87654321 is a descending run")
    } else {
        None
    }
}

// Verhoeff tables: the dihedral group D5 multiplication, the position permutation's powers,
// the inverse.
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
/// Verhoeff's position permutation; the digit `i` places from the right goes through it `i` times.
const VERHOEFF_PERMUTATION: [u8; 10] = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4];
/// `VERHOEFF_P[i]` is the permutation applied `i` times (its order is 8), computed here rather
/// than written out so that no row can hold a typo.
const VERHOEFF_P: [[u8; 10]; 8] = verhoeff_powers();

const fn verhoeff_powers() -> [[u8; 10]; 8] {
    let mut p = [[0u8; 10]; 8];
    let mut d = 0;
    while d < 10 {
        p[0][d] = d as u8;
        d += 1;
    }
    let mut i = 1;
    while i < 8 {
        let mut d = 0;
        while d < 10 {
            p[i][d] = VERHOEFF_PERMUTATION[p[i - 1][d] as usize];
            d += 1;
        }
        i += 1;
    }
    p
}
const VERHOEFF_INV: [u8; 10] = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

/// Runs the Verhoeff checksum over ASCII digits; `offset` is 1 when computing a check digit
/// (the digit to be appended takes position 0), 0 when validating.
fn verhoeff_state(digits: &str, offset: usize) -> u8 {
    digits.bytes().rev().enumerate().fold(0u8, |c, (i, b)| {
        let digit = usize::from(b.wrapping_sub(b'0') % 10);
        VERHOEFF_D[usize::from(c)][usize::from(VERHOEFF_P[(i + offset) % 8][digit])]
    })
}

/// The Verhoeff check digit of a string of ASCII digits.
pub fn verhoeff_check_digit(digits: &str) -> char {
    char::from(b'0' + VERHOEFF_INV[usize::from(verhoeff_state(digits, 1))])
}

/// True when the last ASCII digit is the Verhoeff check digit of the ones before it.
pub fn verhoeff_valid(digits_with_check: &str) -> bool {
    !digits_with_check.is_empty()
        && digits_with_check.bytes().all(|b| b.is_ascii_digit())
        && verhoeff_state(digits_with_check, 0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verhoeff_known_vectors() {
        // Wikipedia's worked example: 236 -> check digit 3.
        assert_eq!(verhoeff_check_digit("236"), '3');
        assert!(verhoeff_valid("2363"));
        assert!(!verhoeff_valid("2364"));
        // Another published example: 12345 -> 1.
        assert_eq!(verhoeff_check_digit("12345"), '1');
        assert!(verhoeff_valid("123451"));
        // Rosetta Code's third: 123456789012 -> 0.
        assert_eq!(verhoeff_check_digit("123456789012"), '0');
    }

    #[test]
    fn verhoeff_position_powers_are_the_published_table() {
        // The published table's last row; one more application gives the identity (order 8).
        assert_eq!(VERHOEFF_P[7], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]);
        let next = VERHOEFF_P[7].map(|d| VERHOEFF_PERMUTATION[usize::from(d)]);
        assert_eq!(next, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(VERHOEFF_P[0], next);
    }

    #[test]
    fn verhoeff_catches_every_single_digit_error_and_adjacent_swap() {
        let base = "40710839";
        let good = format!("{base}{}", verhoeff_check_digit(base));
        assert!(verhoeff_valid(&good));
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            for d in b'0'..=b'9' {
                if d == bytes[i] {
                    continue;
                }
                let mut bad = bytes.to_vec();
                bad[i] = d;
                assert!(!verhoeff_valid(std::str::from_utf8(&bad).unwrap()));
            }
            if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
                let mut swapped = bytes.to_vec();
                swapped.swap(i, i + 1);
                assert!(!verhoeff_valid(std::str::from_utf8(&swapped).unwrap()));
            }
        }
    }

    #[test]
    fn parses_plain_spaced_and_dashed_codes() {
        for input in ["40710839", " 4071 0839 ", "4071-0839", "40 71-08 39"] {
            let code = SetupCode::parse(input).unwrap();
            assert_eq!(code.expose_secret(), "40710839");
        }
    }

    #[test]
    fn manual_code_round_trips_and_checks() {
        let code = SetupCode::from_digits("40710839").unwrap();
        let manual = code.manual_code();
        assert_eq!(manual.len(), 11);
        assert_eq!(&manual[..10], "4071-0839-");
        assert_eq!(SetupCode::parse(&manual).unwrap(), code);
        assert_eq!(SetupCode::parse(&manual.replace('-', "")).unwrap(), code);
        let check = manual.as_bytes()[10];
        let wrong = if check == b'9' {
            '0'
        } else {
            char::from(check + 1)
        };
        let bad = format!("{}{}", &manual[..10], wrong);
        assert_eq!(SetupCode::parse(&bad), Err(SetupCodeError::BadCheckDigit));
    }

    #[test]
    fn documented_examples() {
        // docs/protocol.md §10.
        let code = SetupCode::from_digits("40710839").unwrap();
        assert_eq!(code.manual_code(), "4071-0839-1");
        assert_eq!(
            code.qr_payload(&DeviceId::new("3f9a0c2e11d04b7a")),
            "AVSPAIR:1:3f9a0c2e11d04b7a:407108391"
        );
    }

    #[test]
    fn qr_payload_round_trips() {
        let code = SetupCode::from_digits("40710839").unwrap();
        let id = DeviceId::new("a1b2c3d4e5f6");
        let qr = code.qr_payload(&id);
        assert!(qr.starts_with("AVSPAIR:1:a1b2c3d4e5f6:40710839"));
        let (back_id, back_code) = SetupCode::parse_qr(&qr).unwrap();
        assert_eq!(back_id, id);
        assert_eq!(back_code, code);
        assert_eq!(SetupCode::parse(&qr).unwrap(), code);
    }

    #[test]
    fn qr_errors_say_what_is_wrong() {
        assert_eq!(
            SetupCode::parse("WIFI:S:home;;"),
            Err(SetupCodeError::UnknownQrPrefix)
        );
        assert_eq!(
            SetupCode::parse("AVSPAIR:2:abc:407108397"),
            Err(SetupCodeError::UnsupportedQrVersion {
                version: "2".into()
            })
        );
        assert!(matches!(
            SetupCode::parse("AVSPAIR:1:abc"),
            Err(SetupCodeError::MalformedQr(_))
        ));
        assert!(matches!(
            SetupCode::parse("AVSPAIR:1::407108397"),
            Err(SetupCodeError::MalformedQr(_))
        ));
        assert!(matches!(
            SetupCode::parse("AVSPAIR:1:abc:4071083"),
            Err(SetupCodeError::MalformedQr(_))
        ));
        let code = SetupCode::from_digits("40710839").unwrap();
        let qr = code.qr_payload(&DeviceId::new("abc"));
        let mut bad = qr.into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'9' {
            b'0'
        } else {
            bad[last] + 1
        };
        assert_eq!(
            SetupCode::parse(std::str::from_utf8(&bad).unwrap()),
            Err(SetupCodeError::BadCheckDigit)
        );
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let long = "1".repeat(10_000);
        for (input, why) in [
            ("", SetupCodeError::Empty),
            (" - ", SetupCodeError::Empty),
            ("1234567", SetupCodeError::WrongLength { found: 7 }),
            ("1234567890", SetupCodeError::WrongLength { found: 10 }),
            ("4071x839", SetupCodeError::NonDigit { position: 5 }),
            (&long, SetupCodeError::WrongLength { found: 10_000 }),
        ] {
            assert_eq!(SetupCode::parse(input), Err(why), "{input:.12}");
        }
        assert_eq!(
            SetupCode::from_digits("4071 839"),
            Err(SetupCodeError::NonDigit { position: 5 })
        );
    }

    #[test]
    fn trivial_codes_are_refused_with_a_reason() {
        for digits in ["00000000", "77777777", "12345678", "87654321"] {
            let err = SetupCode::parse(digits).unwrap_err();
            assert!(matches!(err, SetupCodeError::Trivial { .. }), "{digits}");
            assert!(err.to_string().contains("too easy to guess"));
        }
        // A trivial code with a correct check digit is still refused.
        let manual = format!("00000000{}", verhoeff_check_digit("00000000"));
        assert!(matches!(
            SetupCode::parse(&manual),
            Err(SetupCodeError::Trivial { .. })
        ));
    }

    #[test]
    fn generate_is_valid_and_varies() {
        let codes: Vec<SetupCode> = (0..32).map(|_| SetupCode::generate()).collect();
        for code in &codes {
            assert_eq!(
                SetupCode::from_digits(code.expose_secret()).as_ref(),
                Ok(code)
            );
        }
        assert!(codes.iter().any(|c| c != &codes[0]));
    }

    #[test]
    fn formatting_is_redacted_and_errors_never_echo_digits() {
        let code = SetupCode::from_digits("40710839").unwrap();
        assert_eq!(format!("{code:?}"), "SetupCode([redacted])");
        assert_eq!(format!("{code}"), "[redacted]");
        let err = SetupCode::parse("40710830x").unwrap_err();
        assert!(!err.to_string().contains("4071"));
    }
}
