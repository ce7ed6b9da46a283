//! The setup code: given (config / `AVS_AGENT_SETUP_CODE`), read from its file, or generated
//! on first start, stored 0600, and shown once with its manual form and a QR code.
//!
//! The agent stores the code itself because SPAKE2 needs the password on both ends; the file
//! is as sensitive as the label on the speaker and is treated like the token store.

use std::path::Path;

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use shared_protocol::ids::DeviceId;
use shared_protocol::setup_code::{SetupCode, SetupCodeError};
use zeroize::Zeroizing;

use crate::atomic_file;

/// The provisioned code and whether it was just generated (then show it once).
#[derive(Debug)]
pub struct Provisioned {
    /// The code keying the PAKE.
    pub code: SetupCode,
    /// True when it was generated now (first start): show it to the owner once.
    pub generated: bool,
}

/// Provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The file holds something that is not a setup code.
    #[error("setup code file {path}: {source}; fix: write 8 non-trivial digits into it, or delete it to generate a new code (and print a new label)")]
    BadFile {
        /// The file (or `AVS_AGENT_SETUP_CODE`).
        path: String,
        /// What is wrong with it (never the content).
        source: BadCode,
    },
    /// The file could not be read or written.
    #[error("setup code file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The read or write error.
        source: std::io::Error,
    },
}

/// What is wrong with a stored or given setup code.
#[derive(Debug, thiserror::Error)]
pub enum BadCode {
    /// The file is not UTF-8.
    #[error("not text")]
    NotText,
    /// The text is not an acceptable setup code.
    #[error(transparent)]
    Invalid(#[from] SetupCodeError),
}

/// Finds or makes the setup code.
pub fn provision(given: Option<&str>, file: &Path) -> Result<Provisioned, ProvisionError> {
    let path = file.display().to_string();
    if let Some(given) = given {
        let code = SetupCode::parse(given).map_err(|e| ProvisionError::BadFile {
            path: "AVS_AGENT_SETUP_CODE".into(),
            source: e.into(),
        })?;
        return Ok(Provisioned {
            code,
            generated: false,
        });
    }
    match atomic_file::read_bounded(file, 256) {
        Ok(Some(bytes)) => {
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes).map_err(|_| ProvisionError::BadFile {
                path: path.clone(),
                source: BadCode::NotText,
            })?;
            let code = SetupCode::parse(text.trim()).map_err(|e| ProvisionError::BadFile {
                path: path.clone(),
                source: e.into(),
            })?;
            Ok(Provisioned {
                code,
                generated: false,
            })
        }
        Ok(None) => {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                atomic_file::ensure_private_dir(dir).map_err(|source| ProvisionError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            let code = SetupCode::generate();
            let content = Zeroizing::new(format!("{}\n", code.expose_secret()));
            atomic_file::write_atomic(file, content.as_bytes())
                .map_err(|source| ProvisionError::Io { path, source })?;
            Ok(Provisioned {
                code,
                generated: true,
            })
        }
        Err(source) => Err(ProvisionError::Io { path, source }),
    }
}

/// The first-start banner: the code, its manual form and a terminal QR code of the payload.
pub fn first_start_banner(code: &SetupCode, device_id: &DeviceId) -> String {
    let payload = Zeroizing::new(code.qr_payload(device_id));
    let qr = QrCode::new(payload.as_bytes())
        .map(|q| q.render::<Dense1x2>().quiet_zone(true).build())
        .unwrap_or_else(|_| "(QR code could not be rendered)".to_owned());
    let digits = code.expose_secret();
    format!(
        "\n=== avs-device-agent: new setup code (shown once; it is also in the setup code file) ===\n\
         setup code:  {} {}\n\
         manual code: {}\n\
         {qr}\n",
        &digits[..4],
        &digits[4..],
        code.manual_code()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::testing::{mode, scratch};

    #[test]
    fn generates_once_then_reads_back() {
        let (_tmp, file) = scratch("state/setup-code");
        let a = provision(None, &file).unwrap();
        assert!(a.generated);
        let b = provision(None, &file).unwrap();
        assert!(!b.generated);
        assert_eq!(a.code.expose_secret(), b.code.expose_secret());
        assert_eq!(mode(&file), 0o600);
        std::fs::write(&file, "11111111").unwrap();
        let e = provision(None, &file).unwrap_err().to_string();
        assert!(e.contains("fix:") && !e.contains("11111111"), "{e}");
        let banner = first_start_banner(&a.code, &DeviceId::new("abc"));
        assert!(banner.contains(&a.code.manual_code()));
    }
}
