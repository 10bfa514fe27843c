#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: checks formatting and clippy, starts a
# throwaway PostgreSQL (scripts/postgres-test.sh, installed from Debian when missing), runs the
# Rust workspace tests (on SQLite and on that PostgreSQL), then the Kotlin and Python binding tests and the dashboard's browser tests
# (each installs what it needs when missing), and ends with one line `N passed, N failed`
# summing all of them (fmt and clippy count as one check each). Exit status is non-zero when
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
log=build/test-all.log
: > "$log"

lint_passed=0
lint_failed=0
echo "== cargo fmt --check"
if cargo fmt --all --check; then lint_passed=$((lint_passed + 1)); else lint_failed=$((lint_failed + 1)); fi
echo "== cargo clippy (warnings are errors)"
if cargo clippy -q --workspace --all-targets -- -D warnings; then
  lint_passed=$((lint_passed + 1))
else
  lint_failed=$((lint_failed + 1))
fi

echo "== PostgreSQL for the storage tests (a throwaway cluster, stopped at the end)"
if pg_env=$(scripts/postgres-test.sh start); then
  eval "$pg_env"
  trap 'scripts/postgres-test.sh stop >/dev/null 2>&1' EXIT
else
  echo "could not start PostgreSQL: the PostgreSQL tests will fail"
fi

echo "== Rust workspace tests"
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee -a "$log"
rust_status=${PIPESTATUS[0]}
read -r rust_passed rust_failed < <(
  grep -E '^test result:' "$log" |
    sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' |
    awk '{p+=$1; f+=$2} END {print p+0, f+0}'
)
if [[ $rust_status -ne 0 && $rust_failed -eq 0 ]]; then
  # A build failure runs no test at all; count it as a failure so it can't look green.
  rust_failed=1
fi

bind_passed=0
bind_failed=0
if [[ -x scripts/bindings-test.sh ]]; then
  echo "== Binding tests (Kotlin, Python, Swift generation)"
  scripts/bindings-test.sh 2>&1 | tee build/bindings-test.log
  bind_status=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' build/bindings-test.log | tail -n 1)
  if [[ -n $line ]]; then
    bind_passed=$(echo "$line" | cut -d' ' -f1)
    bind_failed=$(echo "$line" | cut -d' ' -f3)
  fi
  if [[ $bind_status -ne 0 && $bind_failed -eq 0 ]]; then
    bind_failed=1
  fi
fi

browser_passed=0
browser_failed=0
echo "== Browser tests (dashboard in Chromium)"
scripts/browser-test.sh 2>&1 | tee build/browser-test-all.log
browser_status=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' build/browser-test-all.log | tail -n 1)
if [[ -n $line ]]; then
  browser_passed=$(echo "$line" | cut -d' ' -f1)
  browser_failed=$(echo "$line" | cut -d' ' -f3)
fi
if [[ $browser_status -ne 0 && $browser_failed -eq 0 ]]; then
  browser_failed=1
fi

# PostgreSQL is stopped before the summary, so that the summary is the last line.
scripts/postgres-test.sh stop >/dev/null 2>&1
trap - EXIT

passed=$((lint_passed + rust_passed + bind_passed + browser_passed))
failed=$((lint_failed + rust_failed + bind_failed + browser_failed))
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
