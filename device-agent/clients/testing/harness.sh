#!/usr/bin/env bash
# Test harness for the agent's client libraries (C++ AuthDelegate, Python client): the REAL
# lwa-emulator and avs-device-agent binaries on 127.0.0.1, paired the way a user pairs, through
# `avs-companion pair --connect` with the emulator's scripted sign-in (`lwa-emulator browse`).
#
#   harness.sh run [--unpaired] -- CMD ARGS…   start emulator + agent (+ pair), run CMD, clean up
#   harness.sh pair | restart | stop | start | freeze | thaw
#                                               control the agent of the enclosing `run`
#                                               (freeze/thaw: SIGSTOP/SIGCONT, an agent that
#                                               accepts connections but never answers)
#
# `run` exports, for CMD and its children:
#   AVS_PAIR_SOCKET      the agent's local API socket
#   AVS_PAIR_CTL         this script (call "$AVS_PAIR_CTL restart" etc.)
#   AVS_PAIR_EMULATOR    the emulator's base URL (its /v20160207/ping stands in for AVS)
#   AVS_PAIR_AGENT_BIN   the agent binary (for `avs-device-agent token --socket …`)
#   AVS_PAIR_WORK        the temp dir (logs, pid files); removed at the end
# Binaries come from AVS_PAIR_BIN_DIR (default <repo>/target/debug; built there if missing).
# Every process started here is stopped by its pid (pid files), also on failure or Ctrl-C.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin_dir="${AVS_PAIR_BIN_DIR:-$repo/target/debug}"
setup_code=24681357
client_id=amzn1.application-oa2-client.avspairdemo

die() { echo "harness: $*" >&2; exit 1; }

# wait_for FILE PATTERN SECONDS: until FILE contains PATTERN (an event, with a deadline).
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

stop_pid() {
  # stop_pid PIDFILE: TERM, wait up to 10 s, then KILL.
  local f="$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  rm -f "$f"
  kill -TERM "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

start_agent() {
  local w="$AVS_PAIR_WORK"
  : >"$w/agent.out"
  AVS_AGENT_PRODUCT_ID=avs_pair_demo_speaker AVS_AGENT_CLIENT_ID="$client_id" \
  AVS_AGENT_DSN=CLIENT-TEST-1 AVS_AGENT_LWA_BASE_URL="$AVS_PAIR_EMULATOR" AVS_AGENT_STATE_DIR="$w/state" \
  AVS_AGENT_SOCKET_PATH="$AVS_PAIR_SOCKET" AVS_AGENT_LINK_BIND=127.0.0.1:0 AVS_AGENT_MDNS=false \
  AVS_AGENT_BLE=false AVS_AGENT_LOG=info AVS_AGENT_SETUP_CODE="$setup_code" \
    "$AVS_PAIR_AGENT_BIN" run >>"$w/agent.out" 2>>"$w/agent.err" </dev/null &
  echo $! >"$w/agent.pid"
  wait_for "$w/agent.out" AVS_AGENT_READY 30 || { cat "$w/agent.err" >&2; die "agent not ready in 30 s"; }
}

pair_agent() {
  local w="$AVS_PAIR_WORK" link
  link=$(grep -o 'link=[^ ]*' "$w/agent.out" | tail -1 | cut -d= -f2)
  "$AVS_PAIR_AGENT_BIN" pair --socket "$AVS_PAIR_SOCKET" >/dev/null 2>&1 || true
  AVS_COMPANION_CONFIG="$w/companion.toml" "$bin_dir/avs-companion" pair --plain \
    --connect "$link" --setup-code "$setup_code" --client-id "$client_id" \
    --lwa-base-url "$AVS_PAIR_EMULATOR" \
    --browser "$bin_dir/lwa-emulator browse --email alice@example.com --password alexa-pass-1" \
    >"$w/pair.out" 2>&1 || { cat "$w/pair.out" >&2; die "pairing failed"; }
}

cmd_run() {
  local unpaired=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --unpaired) unpaired=1; shift ;;
      --) shift; break ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ $# -gt 0 ] || die "usage: harness.sh run [--unpaired] -- CMD ARGS…"
  for b in avs-device-agent lwa-emulator avs-companion; do
    if [ ! -x "$bin_dir/$b" ]; then
      [ -z "${AVS_PAIR_BIN_DIR:-}" ] || die "$bin_dir/$b missing"
      (cd "$repo" && cargo build -q -p device-agent -p lwa-emulator -p companion-app --bins)
      break
    fi
  done
  AVS_PAIR_WORK=$(mktemp -d /tmp/avs-pair-client-test.XXXXXX)
  export AVS_PAIR_WORK
  trap 'stop_pid "$AVS_PAIR_WORK/agent.pid"; stop_pid "$AVS_PAIR_WORK/emu.pid"; rm -rf "$AVS_PAIR_WORK"' EXIT
  trap 'exit 130' INT TERM
  export AVS_PAIR_AGENT_BIN="$bin_dir/avs-device-agent"
  export AVS_PAIR_SOCKET="$AVS_PAIR_WORK/agent.sock"
  export AVS_PAIR_CTL="$here/harness.sh"
  "$bin_dir/lwa-emulator" serve --bind 127.0.0.1:0 >"$AVS_PAIR_WORK/emu.out" 2>"$AVS_PAIR_WORK/emu.err" </dev/null &
  echo $! >"$AVS_PAIR_WORK/emu.pid"
  wait_for "$AVS_PAIR_WORK/emu.out" LWA_EMULATOR_READY 30 || die "emulator not ready in 30 s"
  AVS_PAIR_EMULATOR=$(grep -o 'base_url=[^ ]*' "$AVS_PAIR_WORK/emu.out" | head -1 | cut -d= -f2)
  export AVS_PAIR_EMULATOR
  start_agent
  [ "$unpaired" = 1 ] || pair_agent
  local rc=0
  "$@" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "---- agent log (last 30 lines) ----" >&2
    tail -30 "$AVS_PAIR_WORK/agent.err" >&2 || true
  fi
  return "$rc"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  pair|restart|stop|start|freeze|thaw)
    [ -n "${AVS_PAIR_WORK:-}" ] || die "$1: only inside 'harness.sh run'"
    case "$1" in
      pair) pair_agent ;;
      stop) stop_pid "$AVS_PAIR_WORK/agent.pid" ;;
      start) start_agent ;;
      restart) stop_pid "$AVS_PAIR_WORK/agent.pid"; start_agent ;;
      freeze) kill -STOP "$(cat "$AVS_PAIR_WORK/agent.pid")" ;;
      thaw) kill -CONT "$(cat "$AVS_PAIR_WORK/agent.pid")" ;;
    esac ;;
  *) die "usage: harness.sh run [--unpaired] -- CMD… | pair | restart | stop | start | freeze | thaw" ;;
esac
