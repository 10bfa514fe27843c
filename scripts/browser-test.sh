#!/usr/bin/env bash
# The dashboard's browser tests (tests/browser): installs what they need when missing —
# Debian's chromium, the CJK font fonts-wqy-microhei, poppler-utils (pdftotext), and the npm
# packages pinned in tests/browser/package-lock.json (playwright-core drives Debian's Chromium;
# it never downloads a browser) — builds the demo server and the command-line phone, runs
# `node --test`, and ends with one `N passed, N failed` line (non-zero exit on any failure).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n== %s\n' "$*"; }

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v pdftotext >/dev/null || need+=(poppler-utils)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
if ((${#need[@]})); then
    step "installing ${need[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet: refresh them once and retry.
    apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; } ||
        { echo "0 passed, 1 failed"; exit 1; }
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    step "installing playwright-core, jsqr, pngjs (npm ci, versions from package-lock.json)"
    (cd tests/browser && npm ci --no-audit --no-fund --silent) || { echo "0 passed, 1 failed"; exit 1; }
fi

step "building doorstep-server and the field_phone example"
# The workspace's whole target set, as `cargo test --workspace --all-targets` builds it: after
# the Rust tests this is a no-op, where building one package alone would recompile the
# dependencies with another feature set.
cargo build -q --workspace --all-targets || { echo "0 passed, 1 failed"; exit 1; }

step "browser tests (node --test, Chromium headless)"
log=$ROOT/build/browser-test.log
mkdir -p build
(cd tests/browser && node --test --test-concurrency=1) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -E '^# pass [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
failed=$(grep -E '^# fail [0-9]+' "$log" | tail -n 1 | awk '{print $3}')
passed=${passed:-0}
failed=${failed:-0}
if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
