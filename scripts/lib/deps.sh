# Shared install helpers for scripts/*.sh. Sourced, not run.
#
# Each ensure_* checks first and installs only what is missing, so a second run costs nothing.

_apt_updated=0
apt_install() {
  # $@: Debian package names.
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: $* (run as root, or install them: apt-get install $*)" >&2
    return 1
  fi
  if [ "$_apt_updated" = 0 ]; then
    apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Commands the demo needs: iproute2 for network namespaces.
ensure_demo_deps() {
  local missing=()
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Everything the test suites need.
ensure_test_deps() {
  local missing=()
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  # device-agent/tests/store_syscalls.rs reads the order of a store write's system calls.
  command -v strace >/dev/null 2>&1 || missing+=(strace)
  # tests/tests/first_run_input.rs runs the CLI on a pseudo-terminal with util-linux `script`.
  command -v script >/dev/null 2>&1 || missing+=(bsdutils)
  # The BlueZ stand-in (tests/bluez/standin.py, tests/tests/ble_bluez.rs): private buses, and
  # Debian's python3 with its D-Bus and GLib bindings (run as /usr/bin/python3).
  command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
  if ! /usr/bin/python3 -c 'import dbus, dbus.mainloop.glib; from gi.repository import GLib' >/dev/null 2>&1; then
    missing+=(python3 python3-dbus python3-gi)
  fi
  # The NetworkManager backend's tests (device-agent/tests/wifi_nm.rs): python-dbusmock's
  # `networkmanager` template on a private bus.
  if ! /usr/bin/python3 -c 'import dbusmock.templates.networkmanager' >/dev/null 2>&1; then
    missing+=(python3-dbusmock)
  fi
  # `systemd-analyze verify` on the agent's unit (ble_bluez.rs).
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! python3 -c 'import requests, requests_oauthlib' >/dev/null 2>&1; then
    python3 -m pip install --quiet requests requests-oauthlib
  fi
}

# System libraries the Tauri desktop app (companion-app/src-tauri, a workspace member) links
# against; `cargo build/clippy/test --workspace` needs them. See shared tauri-notes.
ensure_app_build_deps() {
  local pkgs=(build-essential pkg-config libssl-dev file libwebkit2gtk-4.1-dev libgtk-3-dev
    libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev
    libxdo-dev)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# What the desktop app's UI and real-window tests need (companion-app/scripts/test-app.sh):
# Xvfb for a display, Debian's WebKitWebDriver and chromium (never a downloaded browser), fonts,
# Node's npm for the web UI, and tauri-driver (built from crates.io, ~1 min once).
ensure_app_test_deps() {
  local pkgs=(xvfb xauth webkit2gtk-driver chromium fonts-liberation)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
    cargo install --quiet tauri-driver --version '^2' --locked
  fi
}

# The agent's client libraries (device-agent/clients): CMake and RapidJSON for the C++
# AuthDelegate (gcc comes with the machine).
ensure_client_deps() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  [ -f /usr/include/rapidjson/document.h ] || missing+=(rapidjson-dev)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# Building, installing and checking the Debian packages (scripts/packages.sh): cargo-deb from
# crates.io (compiled once), Xvfb, xwd and xwininfo for the app's screenshot, systemd-analyze
# for the unit, dpkg-shlibdeps for the agent's dependencies.
ensure_package_deps() {
  local missing=()
  command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
  command -v xwd >/dev/null 2>&1 || missing+=(x11-apps)
  command -v xwininfo >/dev/null 2>&1 || missing+=(x11-utils)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
  if ! command -v cargo-deb >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deb" ]; then
    cargo install --quiet cargo-deb --version '^3' --locked
  fi
}
