#!/usr/bin/env bash
# The main job: a full pairing on this one machine against the built-in LWA emulator.
# As root it builds a virtual home network (speaker and laptop network namespaces joined by a
# veth pair) and removes it afterwards; otherwise it runs everything on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
if [ "$(id -u)" = 0 ]; then ensure_demo_deps; fi
cargo build --locked -q -p lwa-emulator -p device-agent -p companion-app -p avs-pair-tests --bins
exec cargo run --locked -q -p avs-pair-tests --bin avs-pair-demo -- "$@"
