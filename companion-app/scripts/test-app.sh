#!/usr/bin/env bash
# The desktop app's tests beyond `cargo test` (which already runs its Rust and mock-runtime tests).
#
#   test-app.sh build-ui   npm ci + type check + build companion-app/ui/dist (the window's files;
#                          cargo needs them before it compiles the app, so run this first)
#   test-app.sh ui         the web UI's unit tests and Playwright tests in Debian's chromium,
#                          with the Tauri IPC mocked (no display needed)
#   test-app.sh e2e        the real window under Xvfb, driven through tauri-driver and
#                          WebKitWebDriver, pairing a real agent against the real emulator:
#                          window_e2e (online speaker) and window_wifi (offline speaker, the
#                          Wi-Fi step first) (builds what `cargo test --workspace` builds, if
#                          not built yet)
#   test-app.sh            all three
#
# AVS_APP_SCREENSHOTS=<dir> keeps the e2e's screenshots (docs/img/companion for the docs).
# System packages and tauri-driver: ensure_app_test_deps in scripts/lib/deps.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"

build_ui() {
  cd "$here/ui"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build
}

ui_tests() {
  cd "$here/ui"
  [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
  CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}" npx vitest run
}

e2e() {
  cd "$root"
  # Workspace-wide, like scripts/test.sh's `cargo test --workspace`: the same feature resolution,
  # so after it nothing is rebuilt; it also builds the binaries the test starts (lwa-emulator,
  # avs-device-agent, avs-companion-app).
  cargo test --workspace --locked -q --no-run
  timeout 600 cargo test --workspace --locked -q --test window_e2e --test window_wifi \
    -- --ignored --nocapture
}

case "${1:-all}" in
  build-ui) build_ui ;;
  ui) ui_tests ;;
  e2e) e2e ;;
  all) build_ui; ui_tests; e2e ;;
  *) echo "usage: $0 [build-ui|ui|e2e|all]" >&2; exit 2 ;;
esac
