//! Tauri's build step: embeds the web UI (`../ui/dist`, built by `npm run build` in
//! `companion-app/ui`) and generates the permission for each app command, so the capability file
//! can grant exactly the commands the window uses.

const COMMANDS: &[&str] = &[
    "get_settings",
    "save_settings",
    "start_discovery",
    "add_speaker",
    "check_setup_code",
    "start_pairing",
    "retry_pairing",
    "open_sign_in",
    "paste_redirect",
    "cancel_pairing",
];

fn main() {
    let dist = std::path::Path::new("../ui/dist/index.html");
    println!("cargo:rerun-if-changed=../ui/dist");
    if !dist.exists() {
        println!(
            "cargo:warning=companion-app/ui/dist is missing: run `npm ci && npm run build` in companion-app/ui (scripts/test.sh does)"
        );
    }
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri build step failed: {e:#}");
        std::process::exit(1);
    }
}
