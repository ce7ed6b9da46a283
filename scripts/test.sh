#!/usr/bin/env bash
# Every test avs-pair has: formatting, lints, unit, integration and end-to-end tests.
#
# Installs what a fresh Debian machine with only the Rust toolchain, gcc, Python and Node lacks
# (as root: apt-get; Python packages with pip), then runs the suites. End-to-end tests that need
# network namespaces run when this runs as root (CI does) and skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh

step() { printf '\n==> %s\n' "$*"; }

# A CI checkout builds once from scratch: incremental caches only cost disk there (they doubled
# the target dir, and a CI run ended in "No space left on device").
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
# Say so plainly before a build fails half-way for want of disk (a clean build needs ~10 GiB).
free_kib=$(df -Pk . | awk 'NR==2 {print $4}')
if [ -n "$free_kib" ] && [ "$free_kib" -lt $((8 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR==2 {print $6}'); a clean build of the workspace needs about 10 GiB" >&2
fi

step "installing what this machine lacks"
ensure_test_deps
ensure_app_build_deps
ensure_app_test_deps
ensure_client_deps
if [ "$(id -u)" = 0 ]; then ensure_package_deps; fi

step "desktop app web UI: npm ci, type check, build (the app embeds it at compile time)"
bash companion-app/scripts/test-app.sh build-ui

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# Namespaces a suite leaks are swept by the next one; the sweep records them here so the check
# after the last suite still sees them (tests/tests/leaves_nothing.rs, last step below).
# Namespaces an EARLIER run left (its owner is gone) are not this run's leaks: remove them first,
# saying so, so the ledger below records only what this run's suites leak.
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null 2>&1; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(avsp|avsda)-' || true); do
    owner=$(sed -nE 's/^avsp-([0-9]+)-.*/\1/p; s/^avsda-.*-([0-9]+)$/\1/p' <<<"$ns")
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      echo "removing namespace $ns left by an earlier run (pid $owner is gone)"
      ip netns delete "$ns" || true
    fi
  done
fi
AVS_TEST_LEAK_LEDGER="$(mktemp -t avs-pair-leaks.XXXXXX)"
export AVS_TEST_LEAK_LEDGER
cargo test --workspace --locked -- --test-threads="${AVS_TEST_THREADS:-2}"

step "desktop app: web UI tests in chromium (mocked IPC), real window e2e under Xvfb"
bash companion-app/scripts/test-app.sh ui
bash companion-app/scripts/test-app.sh e2e

step "agent clients: C++ AuthDelegate (CTest) and Python client, against the real agent and emulator"
bash device-agent/clients/test.sh

if [ "$(id -u)" = 0 ]; then
  step "Debian packages: agent (cargo-deb) and desktop app (tauri bundle): dpkg -i, check, start, dpkg -r"
  bash scripts/packages.sh --ci
else
  step "Debian packages: skipped (installing packages needs root)"
fi

step "nothing left behind by any suite (namespaces swept during the run, or still there)"
cargo test -p avs-pair-tests --locked --test leaves_nothing -- --ignored --exact after_all_suites_nothing_is_left
rm -f "$AVS_TEST_LEAK_LEDGER"
