//! HTTPS material: a CA generated at start-up and a leaf certificate it signs.
//!
//! Clients must be able to check the emulator's certificate exactly as they would Amazon's
//! (no "accept invalid certs" switches in the code under test). The emulator makes a throwaway
//! CA, writes its PEM where the client can load it as an extra root, and serves a leaf with the
//! requested subject alternative names. Keys live only in memory.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// SANs every leaf carries.
pub const DEFAULT_SANS: &[&str] = &["127.0.0.1", "::1", "localhost"];

/// The generated CA (PEM) and an acceptor serving the leaf.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A SAN that is neither an IP address nor a DNS name.
    #[error("bad TLS subject alternative name {sans:?}: {source}")]
    BadSan {
        /// All the leaf's SANs, comma-separated (rcgen does not say which one it refused).
        sans: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// Certificate generation failed.
    #[error("generating the TLS certificate failed: {0}")]
    Generate(#[source] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration failed: {0}")]
    Rustls(#[source] rustls::Error),
}

/// Generates the CA and a leaf for `extra_sans` plus [`DEFAULT_SANS`].
pub(crate) fn generate(extra_sans: &[String]) -> Result<TlsMaterial, TlsError> {
    let gen = TlsError::Generate;

    let mut sans: Vec<String> = DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect();
    for san in extra_sans {
        let san = san.trim().trim_start_matches('[').trim_end_matches(']');
        if !san.is_empty() && !sans.iter().any(|s| s.eq_ignore_ascii_case(san)) {
            sans.push(san.to_owned());
        }
    }

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "avs-pair lwa-emulator test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(gen)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params =
        CertificateParams::new(sans.clone()).map_err(|source| TlsError::BadSan {
            sans: sans.join(","),
            source,
        })?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "lwa-emulator");
    leaf_params.is_ca = IsCa::NoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(gen)?;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(gen)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}
