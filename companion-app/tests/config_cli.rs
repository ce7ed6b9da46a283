//! `avs-companion config` as a first-time user meets it (issue 15.1, 15.2): a client id or a
//! redirect URI that cannot work is refused when it is set (exit 2, the reason and the fix),
//! nothing is saved, and `--unset-redirect-uri` goes back to the default.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GOOD_ID: &str = "amzn1.application-oa2-client.0123456789abcdef0123456789abcdef";

fn companion(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avs-companion"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("AVS_COMPANION_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args` and checks it fails as a usage error (exit 2) whose message contains `says`.
#[track_caller]
fn refused(config: &Path, args: &[&str], says: &str) {
    let o = companion(config, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: {err}");
}

/// A config file path in a fresh directory, after `config <set>` was refused with `says`
/// and nothing was saved.
#[track_caller]
fn refused_setting(set: &[&str], says: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("companion.toml");
    refused(&path, &[&["config"], set].concat(), says);
    assert!(!path.exists(), "nothing saved");
    (dir, path)
}

/// Runs `args` and checks it succeeds.
#[track_caller]
fn succeeds(config: &Path, args: &[&str]) {
    let o = companion(config, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
}

#[test]
fn a_client_id_of_the_wrong_shape_is_refused_when_set() {
    let (_dir, path) = refused_setting(
        &["--client-id", "foo"],
        "client id \"foo\" is not an LWA client id: they look like \
         amzn1.application-oa2-client.<32 hex digits>; copy it from your security \
         profile's settings for Android/iOS or 'Other devices and platforms'",
    );

    succeeds(&path, &["config", "--client-id", GOOD_ID]);
    assert!(std::fs::read_to_string(&path).unwrap().contains(GOOD_ID));

    // pair with a bad --client-id stops before any speaker or browser.
    let pair = [
        "pair",
        "--client-id",
        "foo",
        "--connect",
        "127.0.0.1:9",
        "--setup-code",
        "1234-5678",
        "--no-browser",
    ];
    refused(&path, &pair, "is not an LWA client id");
}

#[test]
fn a_redirect_uri_lwa_cannot_use_is_refused_and_can_be_unset() {
    let (_dir, path) = refused_setting(
        &["--redirect-uri", "ftp://x"],
        "redirect URI \"ftp://x\": LWA returns only to http://127.0.0.1[:port]/path \
         (or [::1], localhost), https://…, or an app's own scheme (amzn://… or \
         com.example.app:/…)",
    );

    let uri = "http://127.0.0.1:9745/authresponse";
    succeeds(&path, &["config", "--redirect-uri", uri]);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("http://127.0.0.1:9745/authresponse"));

    succeeds(&path, &["config", "--unset-redirect-uri"]);
    assert!(!std::fs::read_to_string(&path)
        .unwrap()
        .contains("redirect_uri"));
}

#[test]
fn a_broken_config_file_is_named_with_its_line_by_pair_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("companion.toml");
    std::fs::write(&path, "region = \"eu\"\n\nclient_id = amzn1\n").unwrap();
    let want = format!(
        "{} is not a valid companion config: line 3: ",
        path.display()
    );
    for args in [
        &["status", "--connect", "127.0.0.1:9"][..],
        &[
            "pair",
            "--connect",
            "127.0.0.1:9",
            "--setup-code",
            "1234-5670-9",
        ][..],
    ] {
        refused(&path, args, &want);
    }
}
