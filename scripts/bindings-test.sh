#!/usr/bin/env bash
# The binding tests in one command: build the doorstep-ffi cdylib and the demo server, generate
# Kotlin, Swift and Python into build/bindings/ (never committed), install kotlinc and JNA when
# missing, check the Swift output, run the Kotlin test on the JVM and the Python test, and end
# with one `N passed, N failed` line (non-zero exit on any failure).
#
#   scripts/bindings-test.sh           the tests (debug build)
#   scripts/bindings-test.sh --app [--day]   the building head's app in a window against a demo
#                                      server of its own (--day: a scripted day of canvassing;
#                                      without a DISPLAY under Xvfb, each step saved as a PNG)
#   scripts/bindings-test.sh --bench   FFI overhead benches instead (release build): Rust,
#                                      Kotlin and Python, 10,000 record_visit calls each
#                                      (BENCH_CALLS=N to change), JSON lines on stdout
set -euo pipefail
# The deliberate-panic tests print the panic message; a backtrace under it is only noise.
export RUST_BACKTRACE=0

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/bindings
TOOLS=$ROOT/build/tools
KOTLIN_VERSION=2.4.20
KOTLINC=$TOOLS/node_modules/kotlin-compiler/bin/kotlinc
KOTLIN_LIB=$TOOLS/node_modules/kotlin-compiler/lib
JNA=/usr/share/java/jna.jar
# ZXing (Debian's libzxing-core-java + libzxing-javase-java): the app reads enrollment QR images.
ZXING="/usr/share/java/core.jar:/usr/share/java/javase.jar"

MODE=test
if [[ "${1:-}" == "--bench" ]]; then
    MODE=bench
elif [[ "${1:-}" == "--app" ]]; then
    # The building head's app against a demo server of its own; `--app --day` plays a
    # scripted day of canvassing in it (README, "The building head's app").
    MODE=app
    DAY=${2:-}
fi

step() { printf '\n== %s\n' "$*"; }

# --- tools ------------------------------------------------------------------------------------
if [[ ! -x $KOTLINC ]]; then
    step "installing kotlinc $KOTLIN_VERSION into build/tools"
    mkdir -p "$TOOLS"
    npm install --silent --prefix "$TOOLS" "kotlin-compiler@$KOTLIN_VERSION"
fi
apt_install() {
    # A fresh machine may have no package lists yet: refresh them once and retry.
    apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}
if ! command -v xvfb-run >/dev/null || ! command -v xauth >/dev/null; then
    step "installing Xvfb (xvfb, xauth): the app's window in tests and the demo"
    apt_install xvfb xauth
fi
if [[ ! -f $JNA ]]; then
    step "installing JNA (libjna-java)"
    apt_install libjna-java
fi
if ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
    step "installing the CJK font the screens are drawn with (fonts-wqy-microhei)"
    apt_install fonts-wqy-microhei
fi
if ! dpkg -s libzxing-core-java libzxing-javase-java >/dev/null 2>&1; then
    step "installing ZXing (libzxing-core-java, libzxing-javase-java)"
    apt_install libzxing-core-java libzxing-javase-java
fi

# --- build and generate -----------------------------------------------------------------------
if [[ $MODE == bench ]]; then
    # Benches load the release library from their own folder, so a test run meanwhile cannot
    # swap a debug build under them.
    OUT=$ROOT/build/bindings-bench
    PROFILE_DIR=release
    CARGO_PROFILE=(--release)
else
    PROFILE_DIR=debug
    CARGO_PROFILE=()
fi
step "building doorstep-ffi ($PROFILE_DIR, feature testing), uniffi-bindgen and doorstep-server"
cargo build -q "${CARGO_PROFILE[@]}" -p doorstep-ffi --features testing --lib --bin uniffi-bindgen
if [[ $MODE != bench ]]; then
    cargo build -q -p doorstep-server --bin doorstep-server
fi
LIB=$ROOT/target/$PROFILE_DIR/libdoorstep_ffi.so

step "generating Kotlin, Swift and Python into ${OUT#"$ROOT"/}"
rm -rf "$OUT"
mkdir -p "$OUT"
"$ROOT/target/$PROFILE_DIR/uniffi-bindgen" generate "$LIB" \
    -l kotlin -l swift -l python --no-format -o "$OUT" >/dev/null
cp "$LIB" "$OUT/"

# The generated Kotlin compiles once per distinct content (it takes most of a minute).
KT=$OUT/uniffi/doorstep_ffi/doorstep_ffi.kt
KT_HASH=$(sha256sum "$KT" | cut -c1-16)
BINDINGS_JAR=$TOOLS/doorstep_ffi-$KT_HASH.jar
if [[ ! -f $BINDINGS_JAR ]]; then
    step "compiling the generated Kotlin"
    rm -f "$TOOLS"/doorstep_ffi-*.jar
    "$KOTLINC" -nowarn "$KT" -cp "$JNA" -d "$BINDINGS_JAR"
fi
APP_JAR=$OUT/mobile-demo.jar
# kotlinx-coroutines ships with the compiler package: app-core's StateFlows and dispatchers.
COROUTINES=$KOTLIN_LIB/kotlinx-coroutines-core-jvm.jar
RUN_CP="$APP_JAR:$BINDINGS_JAR:$JNA:$COROUTINES:$ZXING:$KOTLIN_LIB/kotlin-stdlib.jar"

compile_app() {
    step "compiling mobile-demo"
    # app-core (the part an Android app keeps) and the JVM test app over it.
    "$KOTLINC" -nowarn "$ROOT"/mobile-demo/src/*.kt \
        $(find "$ROOT/mobile-demo/app-core/src" "$ROOT/mobile-demo/app-desktop/src" -name '*.kt' | sort) \
        -cp "$BINDINGS_JAR:$JNA:$COROUTINES:$ZXING" -d "$APP_JAR"
}

if [[ $MODE == app ]]; then
    compile_app
    DEMO=$ROOT/build/app-demo
    rm -rf "$DEMO"
    mkdir -p "$DEMO"
    PORT=${DOORSTEP_APP_PORT:-18080}
    step "starting the demo server on 127.0.0.1:$PORT (database build/app-demo/server.sqlite)"
    "$ROOT/target/debug/doorstep-server" demo --db "$DEMO/server.sqlite" --listen "127.0.0.1:$PORT" \
        >"$DEMO/server.log" 2>&1 &
    SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
    # Up when it accepts connections (the codes are printed just before it listens).
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        kill -0 $SERVER_PID 2>/dev/null || { cat "$DEMO/server.log"; exit 1; }
        sleep 0.2
    done
    CODE=$(awk '$1 == "building" && $2 == "1" { print $4 }' "$DEMO/server.log")
    [[ -n $CODE ]] || { cat "$DEMO/server.log"; echo "the demo server printed no code"; exit 1; }
    sed -n '/doorstep demo/,/campaign:/p' "$DEMO/server.log"
    step "the app joins building 1 with code $CODE"
    APP=(java -Djna.library.path="$OUT" -cp "$RUN_CP" doorstep.desktop.AppKt "$DEMO/phone"
        --server "http://127.0.0.1:$PORT" --code "$CODE")
    if [[ $DAY == --day ]]; then
        APP+=(--day)
        export DOORSTEP_SHOTS=$ROOT/build/screenshots/app-day
        rm -rf "$DOORSTEP_SHOTS"
    fi
    if [[ -n ${DISPLAY:-} ]]; then
        "${APP[@]}"
    else
        # No display here: the window runs under Xvfb; the day's steps are saved as PNGs.
        echo "(no DISPLAY: running under Xvfb; each step of --day is saved in build/screenshots/app-day)"
        xvfb-run -a -s '-screen 0 1280x1024x24' "${APP[@]}" --exit
    fi
    exit 0
fi

if [[ $MODE == bench ]]; then
    CALLS=${BENCH_CALLS:-10000}
    compile_app
    step "bench: Rust"
    cargo run -q --release -p doorstep-ffi --features testing --example bench_ffi -- "$CALLS"
    step "bench: Kotlin"
    java -ea -Djna.library.path="$OUT" -cp "$RUN_CP" doorstep.demo.DoorstepBenchKt "$CALLS"
    step "bench: the app (cold start, taps; plain and encrypted store)"
    mkdir -p "$ROOT/target/bench"
    java -ea -Djava.awt.headless=true -Djna.library.path="$OUT" -cp "$RUN_CP" doorstep.demo.AppBenchKt |
        tee "$ROOT/target/bench/app.jsonl"
    step "bench: Python"
    PYTHONPATH=$OUT python3 "$ROOT/bindings/tests/python/bench_ffi.py" "$CALLS"
    exit 0
fi

PASSED=0
FAILED=0
# Adds the counts of a suite's last `N passed, N failed` line; a suite that never printed
# one (it crashed) counts as one failure.
tally() {
    local log=$1 line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ -z $line ]]; then
        FAILED=$((FAILED + 1))
        echo "(no result line: counted as one failure)"
        return
    fi
    PASSED=$((PASSED + $(echo "$line" | cut -d' ' -f1)))
    FAILED=$((FAILED + $(echo "$line" | cut -d' ' -f3)))
}

# --- Swift: no toolchain here, so check what the generator produced ---------------------------
step "Swift: generated files and expected types"
SWIFT_LOG=$OUT/swift-check.log
: >"$SWIFT_LOG"
swift_ok=0
swift_failed=0
swift_check() {
    local what=$1 file=$2 pattern=$3
    if [[ -s $OUT/$file ]] && grep -Eq "$pattern" "$OUT/$file"; then
        swift_ok=$((swift_ok + 1))
        echo "ok    $what" | tee -a "$SWIFT_LOG"
    else
        swift_failed=$((swift_failed + 1))
        echo "FAIL  $what ($file lacks /$pattern/)" | tee -a "$SWIFT_LOG"
    fi
}
swift_check "Swift: DoorstepReplica class" doorstep_ffi.swift 'class DoorstepReplica\b'
swift_check "Swift: ApiError enum" doorstep_ffi.swift 'enum ApiError\b'
swift_check "Swift: SyncTransport protocol" doorstep_ffi.swift 'protocol SyncTransport\b'
swift_check "Swift: C header declares the FFI" doorstep_ffiFFI.h 'uniffi_doorstep_ffi_fn_method_doorstepreplica_sync'
swift_check "Swift: module map names the header" doorstep_ffiFFI.modulemap 'header "doorstep_ffiFFI.h"'
echo "$swift_ok passed, $swift_failed failed" | tee -a "$SWIFT_LOG"
tally "$SWIFT_LOG"

# --- Kotlin on the JVM ------------------------------------------------------------------------
compile_app
step "Kotlin test (java -ea)"
KOTLIN_LOG=$OUT/kotlin-test.log
# Screens are painted headless into PNGs kept under build/screenshots/app (test artefacts).
java -ea -Djava.awt.headless=true -Ddoorstep.screenshots="$ROOT/build/screenshots/app" \
    -Djna.library.path="$OUT" -cp "$RUN_CP" doorstep.demo.DoorstepTestKt \
    "$ROOT/target/debug/doorstep-server" 2>&1 | tee "$KOTLIN_LOG" || true
tally "$KOTLIN_LOG"
step "the app's window under Xvfb (every screen, taps as clicks)"
WINDOW_LOG=$OUT/window-test.log
xvfb-run -a -s '-screen 0 1280x1024x24' java -ea -Djna.library.path="$OUT" -cp "$RUN_CP" \
    doorstep.demo.WindowTestKt "$ROOT/build/screenshots/app" 2>&1 | tee "$WINDOW_LOG" || true
tally "$WINDOW_LOG"
# The README shows two of the app's screens, as the tests painted them.
if [[ -f $ROOT/build/screenshots/app/door-list-large.png ]]; then
    cp "$ROOT/build/screenshots/app/door-list-large.png" "$ROOT/docs/screenshots/app-door-list-large.png"
fi
if [[ -f $ROOT/build/screenshots/app/window-ballot.png ]]; then
    cp "$ROOT/build/screenshots/app/window-ballot.png" "$ROOT/docs/screenshots/app-window-ballot.png"
fi

# --- Python -----------------------------------------------------------------------------------
step "Python test"
PYTHON_LOG=$OUT/python-test.log
PYTHONPATH=$OUT python3 "$ROOT/bindings/tests/python/test_doorstep.py" \
    "$ROOT/target/debug/doorstep-server" 2>&1 | tee "$PYTHON_LOG" || true
tally "$PYTHON_LOG"

echo
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
