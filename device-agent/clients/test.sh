#!/usr/bin/env bash
# Tests of the agent's client libraries against the real agent and emulator (debug builds in
# target/debug, built here if missing): the C++ AuthDelegate (CMake + CTest, build dir
# target/clients-cpp) and the Python client (unittest under testing/harness.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
cargo build --locked -q -p device-agent -p lwa-emulator -p companion-app --bins
build="$repo/target/clients-cpp"
cmake -S "$here/cpp" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAVS_PAIR_BIN_DIR="$repo/target/debug" >/dev/null
cmake --build "$build" -j2 >/dev/null
ctest --test-dir "$build" --output-on-failure -j2
AVS_PAIR_BIN_DIR="$repo/target/debug" bash "$here/testing/harness.sh" run -- \
  python3 -m unittest discover -s "$here/python/tests" -v
