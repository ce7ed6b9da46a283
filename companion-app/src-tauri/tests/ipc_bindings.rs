//! The window's TypeScript types (`ui/src/bindings.ts`) are generated from `src/ipc.rs`: this
//! fails while the file is stale, so a Rust change to the contract cannot ship without the UI
//! seeing it. `AVS_UPDATE_BINDINGS=1 cargo test -p avs-companion-app --test ipc_bindings`
//! rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn the_ui_bindings_are_generated_from_ipc_rs_and_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    let fresh = avs_companion_app::ipc::typescript();
    if std::env::var_os("AVS_UPDATE_BINDINGS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "{} is stale: run AVS_UPDATE_BINDINGS=1 cargo test -p avs-companion-app --test ipc_bindings",
        path.display()
    );
}
