//! Errors keep their cause as a typed source (issue 11: errors carry kinds, never strings), and
//! what they print names the thing that failed without leaking a URL's query.

use std::error::Error as _;

use lwa_emulator::tls::TlsError;
use lwa_emulator::{
    BrowseError, Consent, Emulator, PatternError, Registry, RegistryError, ScriptedUser, StartError,
};

/// Every message in `err`'s source chain, outermost first.
fn chain(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

#[tokio::test]
async fn a_failed_request_keeps_reqwests_error_and_prints_no_query() {
    // A loopback port nobody listens on: the first request is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut user = ScriptedUser::new("alice@example.com", "pw").unwrap();
    let err = user
        .browse(
            &format!("http://127.0.0.1:{port}/ap/oa?client_id=c&state=QUERY-SECRET"),
            Consent::Allow,
        )
        .await
        .unwrap_err();
    let BrowseError::Request { url, .. } = &err else {
        panic!("expected a request error, got {err:?}");
    };
    assert_eq!(url, &format!("http://127.0.0.1:{port}/ap/oa"));
    let source = err.source().expect("the reqwest error is kept");
    assert!(
        source.downcast_ref::<reqwest::Error>().is_some(),
        "{source:?}"
    );
    for line in chain(&err) {
        assert!(!line.contains("QUERY-SECRET"), "query leaked: {line}");
    }
}

#[tokio::test]
async fn a_bad_url_names_which_url_and_keeps_the_parse_error() {
    let mut user = ScriptedUser::new("alice@example.com", "pw").unwrap();
    let err = user
        .enter_user_code("not a url", "ABCD", Consent::Allow)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BrowseError::BadUrl {
                what: "verification URI",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the verification URI is not a valid URL: "),
        "{err}"
    );
    let source = err.source().expect("the parse error is kept");
    assert!(
        source.downcast_ref::<url::ParseError>().is_some(),
        "{source:?}"
    );
}

#[test]
fn config_file_errors_name_the_file_and_keep_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let err = Registry::load(&missing).unwrap_err();
    let RegistryError::Read { path, source } = &err else {
        panic!("expected a read error, got {err:?}");
    };
    assert_eq!(path, &missing);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let err = Registry::from_toml_str("bogus = 1").unwrap_err();
    assert!(matches!(err, RegistryError::Parse(_)), "{err:?}");
    let source = err.source().expect("the TOML error is kept");
    assert!(
        source.downcast_ref::<toml::de::Error>().is_some(),
        "{source:?}"
    );
    assert!(
        err.to_string().starts_with("config file is not valid: "),
        "{err}"
    );
}

#[test]
fn a_bad_return_url_pattern_names_client_and_entry_and_keeps_the_reason() {
    let err = Registry::from_toml_str(
        r#"
        [[clients]]
        client_id = "amzn1.application-oa2-client.BAD"
        kind = "device"
        allowed_return_urls = ["ftp://127.0.0.1:*/cb"]
        name = "Bad"
        "#,
    )
    .unwrap_err();
    let RegistryError::BadReturnUrl {
        client,
        pattern,
        source,
    } = &err
    else {
        panic!("expected a bad return URL, got {err:?}");
    };
    assert_eq!(client.as_str(), "amzn1.application-oa2-client.BAD");
    assert_eq!(pattern, "ftp://127.0.0.1:*/cb");
    assert_eq!(source, &PatternError::Scheme("ftp".into()));
    assert_eq!(
        err.to_string(),
        "config file is inconsistent: client amzn1.application-oa2-client.BAD: \
         return URL \"ftp://127.0.0.1:*/cb\": scheme \"ftp\" is not http or https"
    );
}

#[tokio::test]
async fn a_san_rcgen_refuses_is_named_with_rcgens_reason() {
    // Not ASCII: neither an IP address nor a DNS name rcgen accepts.
    let err = Emulator::builder()
        .https(vec!["bücher.test".into()])
        .start()
        .await
        .unwrap_err();
    let StartError::Tls(TlsError::BadSan { sans, source }) = &err else {
        panic!("expected a bad SAN, got {err:?}");
    };
    assert!(sans.contains("bücher.test"), "{sans}");
    assert!(err.to_string().contains("bücher.test"), "{err}");
    assert!(!source.to_string().is_empty());
}
