//! Errors keep their cause as a typed source (issue 11: errors carry kinds, never strings), and
//! what they print names the thing that failed without leaking a URL's query.

use std::error::Error as _;

use lwa_emulator::tls::TlsError;
use lwa_emulator::{
    BrowseError, ConfigParseError, Consent, Emulator, PatternError, Registry, RegistryError,
    ScriptedUser, StartError,
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
    let source = err.source().expect("the parse error is kept");
    let parse = source
        .downcast_ref::<ConfigParseError>()
        .unwrap_or_else(|| panic!("{source:?}"));
    assert_eq!((parse.line, parse.column), (Some(1), Some(1)));
    assert_eq!(
        err.to_string(),
        "config file is not valid: at line 1, column 1: unknown field `bogus`, expected one of \
         `replace_defaults`, `settings`, `users`, `clients`, `products`"
    );
}

/// A config file's secret on a line that does not parse, or as a value of the wrong kind,
/// is neither in the error's message nor in its `Debug`: the error names the line and the
/// key instead.
#[test]
fn a_config_parse_error_names_the_line_and_key_but_not_the_secret_there() {
    const SECRET: &str = "hunter2-client-secret-0123";
    let user =
        "[[users]]\nemail = \"carol@example.com\"\nuser_id = \"amzn1.account.C\"\nname = \"C\"\n";
    let client = "[[clients]]\nclient_id = \"amzn1.application-oa2-client.C\"\nname = \"C\"\nallowed_return_urls = []\n";
    // (file, line, key, problem)
    let cases = [
        // Not TOML: the parser stops right after the secret.
        (
            format!("{user}password = \"{SECRET}\" # ok\n{client}kind = \"web\"\nclient_secret = \"{SECRET}\" x\n"),
            11,
            None,
            "unexpected key or value, expected newline, `#`",
        ),
        // An unterminated string: the rest of the line is the secret.
        (
            format!("{user}password = '{SECRET}\n"),
            5,
            None,
            "invalid literal string, expected `'`",
        ),
        // TOML, but a secret where a number belongs.
        (
            format!("[settings]\naccess_token_lifetime_secs = \"{SECRET}\"\n"),
            2,
            Some("settings.access_token_lifetime_secs"),
            "invalid type: string, expected u64",
        ),
        // A secret given where a client kind belongs.
        (
            format!("{client}kind = \"{SECRET}\"\n"),
            5,
            Some("clients.kind"),
            "unknown variant, expected `device` or `web`",
        ),
    ];
    for (file, line, key, problem) in cases {
        let err = Registry::from_toml_str(&file).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}"), chain(&err).join(" / ")] {
            assert!(!shown.contains(SECRET), "the secret in {shown}");
            assert!(
                !shown.contains("hunter2"),
                "a piece of the secret in {shown}"
            );
        }
        let RegistryError::Parse(parse) = &err else {
            panic!("expected a parse error, got {err:?}");
        };
        assert_eq!(parse.line, Some(line), "{err}");
        assert_eq!(parse.key.as_deref(), key, "{err}");
        assert_eq!(parse.problem, problem, "{err}");
        let key_note = key.map(|k| format!(" (key `{k}`)")).unwrap_or_default();
        assert!(
            err.to_string().ends_with(&format!("{key_note}: {problem}")),
            "{err}"
        );
    }
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
