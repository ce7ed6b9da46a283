#!/usr/bin/env bash
# The two Debian packages: build them, install them with dpkg on this machine, check what they
# put where, start what they install, and remove them again.
#
#   scripts/packages.sh                 agent .deb from the dist profile, app .deb from release
#   scripts/packages.sh --ci            both from the debug builds `cargo test` already made
#                                       (no extra compile, fast compression; the package layout
#                                       is what is checked; cargo-deb warns that it is meant for
#                                       release profiles)
#   scripts/packages.sh --keep DIR      also copy the .debs and the screenshot to DIR
#
# Agent: cargo-deb (`[package.metadata.deb]` in device-agent/Cargo.toml): /usr/bin binary, the
# systemd unit (installed disabled), /etc/avs-device-agent/agent.toml (conffile, 0640
# root:avs-agent), the avs-agent and bluetooth groups (postinst: the unit's SupplementaryGroups=
# must exist, or systemd fails the start with 216/GROUP; bluez, which owns the bluetooth group, is
# only recommended), `systemd-analyze verify` on the installed unit, and its credentials step:
# every group the unit names resolves and the agent runs with exactly that user and those groups
# (setpriv); where systemd is PID 1 the unit is really started and must get past that step.
# App: Tauri's bundler (`tauri bundle --bundles deb`, the @tauri-apps/cli npm package), started
# under Xvfb for one screenshot. Everything installed is removed (dpkg -r, then purge) and every
# process started is stopped by its pid, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib/deps.sh

mode=dist
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) mode=ci; shift ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "packages.sh installs packages: run it as root" >&2; exit 1; }

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "packages.sh: $*" >&2; exit 1; }
t_start=$SECONDS

ensure_package_deps

work=$(mktemp -d /tmp/avs-pair-packages.XXXXXX)
pids=()
installed=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for pkg in "${installed[@]}"; do dpkg -P "$pkg" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ "$mode" = ci ]; then
  agent_profile=dev; agent_dir=debug; app_flag=--debug; app_dir=debug
else
  agent_profile=dist; agent_dir=dist; app_flag=""; app_dir=release
fi

# ---------------------------------------------------------------- the agent
step "agent .deb (cargo deb, profile $agent_profile)"
t0=$SECONDS
if [ "$mode" = ci ]; then
  cargo build --locked -q -p device-agent --bin avs-device-agent
  cargo deb --no-build --fast -p device-agent --profile "$agent_profile" -o "$work/" >/dev/null 2>"$work/deb.err" \
    || { cat "$work/deb.err" >&2; fail "cargo deb failed"; }
else
  cargo deb -p device-agent --profile "$agent_profile" --locked -o "$work/" >/dev/null
fi
agent_deb=$(ls "$work"/avs-device-agent_*.deb)
echo "built $(basename "$agent_deb"): $(stat -c %s "$agent_deb") bytes in $((SECONDS - t0)) s"

step "agent .deb: install, check, verify the unit"
# The groups outlive a purge by design; drop unused ones so postinst's groupadd is exercised
# (bluetooth only without bluez, which owns it: then this is "a machine without bluez").
if getent group avs-agent >/dev/null && [ -z "$(getent group avs-agent | cut -d: -f4)" ]; then
  groupdel avs-agent
fi
bluez_installed=0
dpkg-query -W -f='${Status}' bluez 2>/dev/null | grep -q 'install ok installed' && bluez_installed=1
if [ "$bluez_installed" = 0 ] && getent group bluetooth >/dev/null \
    && [ -z "$(getent group bluetooth | cut -d: -f4)" ]; then
  groupdel bluetooth
fi
installed+=(avs-device-agent)   # before dpkg -i: a failed postinst leaves it half-installed
dpkg -i "$agent_deb" >/dev/null
unit=$(dpkg -L avs-device-agent | grep '/systemd/system/avs-device-agent.service$') || fail "no systemd unit in the package"
for f in /usr/bin/avs-device-agent /etc/avs-device-agent/agent.toml /usr/share/doc/avs-pair/agent.md; do
  dpkg -L avs-device-agent | grep -qx "$f" || fail "$f not in the package"
  [ -e "$f" ] || fail "$f not installed"
done
getent group avs-agent >/dev/null || fail "postinst did not create the avs-agent group"
[ "$(stat -c '%a %U:%G' /etc/avs-device-agent/agent.toml)" = "640 root:avs-agent" ] \
  || fail "agent.toml is $(stat -c '%a %U:%G' /etc/avs-device-agent/agent.toml), want 640 root:avs-agent"
dpkg-query -W -f='${Conffiles}\n' avs-device-agent | grep -q '/etc/avs-device-agent/agent.toml' \
  || fail "agent.toml is not a conffile"
avs-device-agent --version
systemd-analyze verify "$unit"
echo "unit $unit verified"
# The unit's credentials step (systemd fails it with 216/GROUP when a group does not exist):
# every Group=/SupplementaryGroups= name resolves, bluetooth included when bluez is absent.
getent group bluetooth >/dev/null || fail "postinst did not create the bluetooth group (bluez installed: $bluez_installed)"
unit_groups=$(sed -n 's/^\(Group\|SupplementaryGroups\)=//p' "$unit" | tr ' ' '\n' | sort -u | grep .) \
  || fail "the unit names no groups"
for g in $unit_groups; do
  getent group "$g" >/dev/null || fail "the unit's group $g does not exist: systemd would fail the start (216/GROUP)"
done
# The same step by hand: the installed agent runs as an unprivileged user with exactly the unit's
# primary and supplementary groups.
primary=$(sed -n 's/^Group=//p' "$unit" | head -1)
setpriv --reuid=nobody --regid="$primary" --groups="$(echo $unit_groups | tr ' ' ,)" \
  /usr/bin/avs-device-agent --version >/dev/null \
  || fail "the agent does not run with the unit's groups ($primary; $unit_groups)"
echo "unit groups: $(echo $unit_groups) (all exist; agent runs with them)"
if [ -d /run/systemd/system ]; then
  # systemd is PID 1: start the unit for real. The default config has no product_id, so the
  # agent itself exits 1; what matters is that systemd got past the credentials (not 216).
  systemctl daemon-reload
  systemctl start avs-device-agent >/dev/null 2>&1 || true
  status=$(systemctl show -p ExecMainStatus --value avs-device-agent)
  systemctl stop avs-device-agent >/dev/null 2>&1 || true
  systemctl reset-failed avs-device-agent >/dev/null 2>&1 || true
  [ "$status" != 216 ] || fail "systemd could not set the unit's groups (216/GROUP)"
  echo "systemctl start: got past the credentials step (main status ${status:-none})"
else
  echo "systemd is not PID 1 here: the unit was not started (groups checked above)"
fi
# The conffile survives an upgrade with the admin's edit (dpkg keeps it, no prompt).
echo 'product_id = "edited_by_admin"' >>/etc/avs-device-agent/agent.toml
dpkg -i --force-confold "$agent_deb" >/dev/null
grep -q edited_by_admin /etc/avs-device-agent/agent.toml || fail "reinstall replaced the edited conffile"
# The default config alone names what is missing (product_id), and exits non-zero.
sed -i '/edited_by_admin/d' /etc/avs-device-agent/agent.toml
if avs-device-agent run --config /etc/avs-device-agent/agent.toml --state-dir "$work/state" \
    --socket-path "$work/agent.sock" --mdns false --ble false >"$work/run.out" 2>&1; then
  fail "the agent started without a product_id"
fi
grep -qi product_id "$work/run.out" || { cat "$work/run.out" >&2; fail "the start error does not name product_id"; }

# ---------------------------------------------------------------- the desktop app
step "desktop app .deb (tauri bundle --bundles deb ${app_flag:-(release)})"
t0=$SECONDS
# The web UI the app embeds (scripts/test.sh built it already), and the Tauri CLI (npm).
tauri="$repo/companion-app/ui/node_modules/.bin/tauri"
if [ "$mode" != ci ] || [ ! -f companion-app/ui/dist/index.html ] || [ ! -x "$tauri" ]; then
  bash companion-app/scripts/test-app.sh build-ui >/dev/null
fi
if [ "$mode" = ci ]; then
  cargo build --locked -q -p avs-companion-app --bin avs-companion-app
else
  (cd companion-app/src-tauri && "$tauri" build --ci --no-bundle >/dev/null)
fi
(cd companion-app/src-tauri && "$tauri" bundle --ci $app_flag --bundles deb --config '{"bundle":{"active":true}}' >"$work/bundle.log" 2>&1) \
  || { cat "$work/bundle.log" >&2; fail "tauri bundle failed"; }
app_deb=$(ls -t "$target_dir/$app_dir/bundle/deb/"*.deb | head -1)
cp "$app_deb" "$work/"
app_pkg=$(dpkg-deb -f "$app_deb" Package)
echo "built $(basename "$app_deb"): $(stat -c %s "$app_deb") bytes in $((SECONDS - t0)) s"

step "desktop app .deb: install, check, start under Xvfb, one screenshot"
installed+=("$app_pkg")
dpkg -i "$app_deb" >/dev/null || fail "dpkg -i $(basename "$app_deb") failed (its dependencies come with the app build deps)"
app_bin=$(dpkg -L "$app_pkg" | grep '^/usr/bin/' | head -1) || fail "no binary in /usr/bin"
dpkg -L "$app_pkg" | grep -q '\.desktop$' || fail "no .desktop file in the package"
echo "installed $app_pkg: $app_bin"

# Xvfb picks a free display itself (-displayfd): no race with other tests' displays.
Xvfb -displayfd 3 -screen 0 1280x860x24 -nolisten tcp 3>"$work/display" >"$work/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$work/display" ] && break; sleep 0.05; done
[ -s "$work/display" ] || { cat "$work/xvfb.log" >&2; fail "Xvfb did not start"; }
display=":$(tr -d '[:space:]' <"$work/display")"
mkdir -p "$work/home" "$work/run" && chmod 0700 "$work/run"
# mDNS off (never in the root network namespace), its own config, and no D-Bus bus of the host.
AVS_COMPANION_MDNS=off AVS_COMPANION_CONFIG="$work/companion.toml" \
DBUS_SESSION_BUS_ADDRESS="unix:path=$work/no-session-bus" DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/no-system-bus" \
HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_RUNTIME_DIR="$work/run" DISPLAY="$display" \
  "$app_bin" >"$work/app.log" 2>&1 &
pids+=($!)
app_pid=$!
# Wait for the window, then for content (more than a blank page's colours), with a deadline.
shot="$work/app.png"
ok=0
for _ in $(seq 300); do
  kill -0 "$app_pid" 2>/dev/null || { cat "$work/app.log" >&2; fail "the app exited"; }
  if xwininfo -root -tree -display "$display" 2>/dev/null | grep -q '"Speaker Setup"'; then
    colours=$(xwd -root -silent -display "$display" | python3 scripts/lib/xwd2png.py "$shot")
    if [ "$colours" -gt 20 ]; then ok=1; break; fi
  fi
  sleep 0.1
done
[ "$ok" = 1 ] || { cat "$work/app.log" >&2; fail "no window with content within 30 s"; }
echo "screenshot: $(stat -c %s "$shot") bytes, $colours+ colours"

step "remove both packages"
kill "$app_pid" 2>/dev/null || true
for pkg in "${installed[@]}"; do dpkg -r "$pkg" >/dev/null; done
[ ! -e /usr/bin/avs-device-agent ] || fail "dpkg -r left /usr/bin/avs-device-agent"
[ ! -e "$app_bin" ] || fail "dpkg -r left $app_bin"
[ -e /etc/avs-device-agent/agent.toml ] || fail "dpkg -r removed the conffile (only purge may)"
for pkg in "${installed[@]}"; do
  # Only a package with conffiles left is still known to dpkg after -r.
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q config-files; then dpkg -P "$pkg" >/dev/null; fi
done
installed=()
[ ! -e /etc/avs-device-agent/agent.toml ] || fail "purge left the conffile"

if [ -n "$keep" ]; then
  mkdir -p "$keep" && cp "$agent_deb" "$work/$(basename "$app_deb")" "$shot" "$keep/"
fi
step "packages: ok in $((SECONDS - t_start)) s (agent $(stat -c %s "$agent_deb") bytes, app $(stat -c %s "$app_deb") bytes)"
