//! Every command is wired all the way through. A `#[tauri::command]` reaches the window only when
//! it is (1) in `generate_handler!` in `lib.rs`, (2) in `build.rs`'s `COMMANDS` (which generates
//! its `allow-<name>` permission) and (3) granted by a capability file. Miss (2) and (3) together
//! and everything still compiles: the window's call is just denied at run time ("not allowed"),
//! which is how `choose_wifi` once shipped without its permission. The UI side is checked too:
//! every command `ui/src/ipc.ts` invokes exists in Rust, and every Rust command has its wrapper.
//!
//! Plain text checks over the sources (no build of the app needed beyond this test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of the functions marked `#[tauri::command]` in `src/`.
fn tauri_commands() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = read(&file);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("#[tauri::command") {
            rest = &rest[at..];
            // The next `fn` after the attribute (past doc comments, `pub`, `async`).
            let f = rest.find("fn ").expect("a fn after #[tauri::command]");
            let after = &rest[f + 3..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(!name.is_empty(), "{}: unnamed command", file.display());
            names.insert(name);
            rest = after;
        }
    }
    names
}

/// The quoted strings inside the first `[ ... ]` after the `=` or `:` that follows `marker`
/// in `text` (`const COMMANDS: &[&str] = &[…]`, `"permissions": […]`).
fn quoted_list(text: &str, marker: &str) -> BTreeSet<String> {
    let start = text.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let body = &text[start + marker.len()..];
    let body = &body[body.find(['=', ':']).unwrap()..];
    let open = body.find('[').unwrap();
    let close = body[open..].find(']').unwrap() + open;
    body[open + 1..close]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn build_rs_commands() -> BTreeSet<String> {
    quoted_list(&read(&root().join("build.rs")), "const COMMANDS: &[&str]")
}

fn handler_commands() -> BTreeSet<String> {
    let lib = read(&root().join("src/lib.rs"));
    let start = lib
        .find("generate_handler![")
        .expect("generate_handler! in lib.rs");
    let body = &lib[start..];
    let body = &body[..body.find(']').unwrap()];
    body.split([',', '[', '\n'])
        .filter_map(|item| item.trim().strip_prefix("commands::"))
        .map(str::to_owned)
        .collect()
}

/// `allow-<name>` permissions granted by any capability file, as command names.
fn granted_commands() -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    let dir = root().join("capabilities");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        files += 1;
        let text = read(&path);
        for perm in quoted_list(&text, "\"permissions\"") {
            if let Some(cmd) = perm.strip_prefix("allow-") {
                granted.insert(cmd.replace('-', "_"));
            }
        }
    }
    assert!(files > 0, "no capability file in {}", dir.display());
    granted
}

/// The command names `ui/src/ipc.ts` invokes (`call<T>("name"`).
fn ui_commands() -> BTreeSet<String> {
    let ipc = read(&root().join("../ui/src/ipc.ts"));
    ipc.split("call<")
        .skip(1)
        .filter_map(|rest| {
            let q = rest.find("(\"")?;
            let name = &rest[q + 2..];
            Some(name[..name.find('"')?].to_owned())
        })
        .collect()
}

/// Fails with `what` and the names in `want` that `have` lacks, if any.
#[track_caller]
fn assert_all_in(want: &BTreeSet<String>, have: &BTreeSet<String>, what: &str) {
    let missing: Vec<&String> = want.difference(have).collect();
    assert!(missing.is_empty(), "{what}: {missing:?}");
}

/// [`assert_all_in`] both ways: `list` names exactly the `commands`.
#[track_caller]
fn assert_same(commands: &BTreeSet<String>, list: &BTreeSet<String>, lacks: &str, extra: &str) {
    assert_all_in(commands, list, lacks);
    assert_all_in(list, commands, extra);
}

#[test]
fn every_command_is_registered_permitted_and_granted() {
    let commands = tauri_commands();
    assert!(
        commands.len() >= 10 && commands.contains("choose_wifi"),
        "the scan found too few commands: {commands:?}"
    );
    let in_handler = handler_commands();
    let in_build = build_rs_commands();
    let granted = granted_commands();
    assert_all_in(
        &commands,
        &in_handler,
        "#[tauri::command]s missing from generate_handler! in src/lib.rs",
    );
    // And nothing stale either: a listed name that is no command any more.
    assert_same(
        &commands,
        &in_build,
        "#[tauri::command]s missing from COMMANDS in build.rs (no allow-<name> permission is generated)",
        "build.rs lists non-commands",
    );
    assert_same(
        &commands,
        &granted,
        "#[tauri::command]s no capability grants (add \"allow-<name>\" to capabilities/default.json)",
        "capabilities grant non-commands",
    );
}

#[test]
fn the_window_calls_exactly_the_rust_commands() {
    assert_same(
        &tauri_commands(),
        &ui_commands(),
        "Rust commands without a wrapper in ui/src/ipc.ts",
        "ui/src/ipc.ts invokes commands Rust does not have",
    );
}

#[test]
fn each_granted_command_has_its_generated_permission_file() {
    // build.rs writes permissions/autogenerated/<name>.toml; a missing one means the build
    // step did not run with the current list (the file is committed).
    for cmd in build_rs_commands() {
        let file = root().join(format!("permissions/autogenerated/{cmd}.toml"));
        assert!(file.is_file(), "{} is missing", file.display());
    }
}
