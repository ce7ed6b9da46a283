#!/usr/bin/env bash
# Resource numbers for the device agent: binary size (the dist profile: what the .deb ships;
# opt-level z, fat LTO, panic=abort, stripped), peak RSS while pairing
# (VmHWM: the link handshake, device info and code exchange, then CBL), idle RSS and thread
# count after pairing, idle wakeups per minute (voluntary + involuntary context switches of all
# threads over 60 s, from /proc/PID/task/*/status). Everything runs on 127.0.0.1 against the
# lwa-emulator binary; mDNS is off (it would need a network namespace here), and BLE (no host D-Bus).
#
#   device-agent/scripts/measure.sh [seconds]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-60}"
cargo build --profile dist -q -p device-agent --bin avs-device-agent
cargo build --release -q -p lwa-emulator -p companion-app
bin=target/dist/avs-device-agent
emu_bin=target/release/lwa-emulator
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$emu_bin" serve --bind 127.0.0.1:0 >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "http://" "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.out" | head -1)

AVS_AGENT_PRODUCT_ID=avs_pair_demo_speaker AVS_AGENT_CLIENT_ID=amzn1.application-oa2-client.avspairdemo \
AVS_AGENT_DSN=MEASURE-1 AVS_AGENT_LWA_BASE_URL="$base" AVS_AGENT_STATE_DIR="$work/state" \
AVS_AGENT_LINK_BIND=127.0.0.1:0 AVS_AGENT_MDNS=false AVS_AGENT_BLE=false AVS_AGENT_LOG=warn AVS_AGENT_SETUP_CODE=24681357 \
  "$bin" run >"$work/agent.out" 2>"$work/agent.err" &
agent=$!
pids+=($agent)
for _ in $(seq 100); do grep -q AVS_AGENT_READY "$work/agent.out" 2>/dev/null && break; sleep 0.1; done
socket=$(grep -o 'socket=[^ ]*' "$work/agent.out" | cut -d= -f2)
link=$(grep -o 'link=[^ ]*' "$work/agent.out" | cut -d= -f2)
rss_before=$(awk '/VmRSS/ {print $2}' /proc/"$agent"/status)

# Pair over the link as a user would: companion, setup code, scripted sign-in on the emulator.
AVS_COMPANION_CONFIG="$work/companion.toml" target/release/avs-companion pair --plain \
  --connect "$link" --setup-code 24681357 --client-id amzn1.application-oa2-client.avspairdemo \
  --lwa-base-url "$base" --browser "$emu_bin browse --email alice@example.com --password alexa-pass-1" \
  >"$work/pair.out" 2>&1 || { cat "$work/pair.out" >&2; exit 1; }
grep -m1 '^Linked' "$work/pair.out"

# Pair with code-based linking, approved through the emulator's control API.
"$bin" cbl --socket "$socket" >"$work/cbl.out" &
cbl=$!
for _ in $(seq 100); do grep -q "enter the code" "$work/cbl.out" 2>/dev/null && break; sleep 0.1; done
code=$(grep -o 'enter the code [A-Z]*' "$work/cbl.out" | awk '{print $4}')
curl -fsS -X POST -H 'content-type: application/json' -d '{"user":"alice@example.com"}' \
  "$base/_emulator/codepairs/$code/approve" >/dev/null
wait "$cbl"
for _ in $(seq 100); do "$bin" token --socket "$socket" >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" status --socket "$socket" | grep auth

# Sum over threads; a thread that ends in the window would make the difference negative, so
# the window's count is taken per thread id and only threads present at both ends count.
switches() { for t in /proc/"$agent"/task/*; do echo "${t##*/} $(awk '/ctxt_switches/ {s+=$2} END {print s}' "$t/status" 2>/dev/null)"; done; }
sleep 3
switches >"$work/before"
sleep "$secs"
switches >"$work/after"
delta=$(awk 'NR==FNR {b[$1]=$2; next} ($1 in b) {d+=$2-b[$1]} END {print d+0}' "$work/before" "$work/after")
size=$(stat -c %s "$bin")
rss=$(awk '/VmRSS/ {print $2}' /proc/"$agent"/status)
peak=$(awk '/VmHWM/ {print $2}' /proc/"$agent"/status)
threads=$(awk '/Threads/ {print $2}' /proc/"$agent"/status)
echo "binary_size_bytes=$size ($(numfmt --to=iec "$size"))"
echo "rss_before_pairing_kib=$rss_before peak_rss_while_pairing_kib=$peak"
echo "idle_rss_kib=$rss threads=$threads"
echo "context_switches_in_${secs}s=$delta per_min=$(( delta * 60 / secs ))"
