//! Tauri's build step: embeds the web UI (`../ui/dist`, built by `npm run build` in
//! `companion-app/ui`) and generates the permission for each app command, so the capability file
//! can grant exactly the commands the window uses.

const COMMANDS: &[&str] = &[
    "get_settings",
    "save_settings",
    "start_discovery",
    "search_again",
    "add_speaker",
    "check_setup_code",
    "start_pairing",
    "retry_pairing",
    "open_sign_in",
    "paste_redirect",
    "cancel_pairing",
    "choose_wifi",
    "answer_account_switch",
];

/// Shown instead of the app when the web UI was not built, so a workspace-wide `cargo clippy` or
/// `cargo test` still compiles on a fresh clone; the window then says what to do.
const NOT_BUILT: &str = r#"<!doctype html><meta charset="utf-8"><title>Speaker Setup</title>
<body style="font:16px system-ui,sans-serif;margin:3rem;max-width:36rem">
<h1>The web UI was not built</h1>
<p>Run <code>npm ci &amp;&amp; npm run build</code> in <code>companion-app/ui</code>, then build the
app again (<code>scripts/test.sh</code> does this).</p></body>"#;

fn main() {
    let dist = std::path::Path::new("../ui/dist/index.html");
    println!("cargo:rerun-if-changed=../ui/dist");
    if !dist.exists() {
        println!(
            "cargo:warning=companion-app/ui/dist is missing: the app shows a 'not built' page. Run `npm ci && npm run build` in companion-app/ui (scripts/test.sh does)"
        );
        let out = std::env::var_os("OUT_DIR").map(std::path::PathBuf::from);
        if let Some(dir) = out.map(|o| o.join("ui-not-built")) {
            if std::fs::create_dir_all(&dir).is_ok()
                && std::fs::write(dir.join("index.html"), NOT_BUILT).is_ok()
            {
                let config = serde_json::json!({ "build": { "frontendDist": dir } });
                println!("cargo:rustc-env=TAURI_CONFIG={config}");
            }
        }
    }
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri build step failed: {e:#}");
        std::process::exit(1);
    }
}
