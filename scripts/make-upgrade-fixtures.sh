#!/usr/bin/env bash
# Makes the files of server/tests/fixtures/upgrade/ with a previous release's binaries, so that
# server/tests/upgrade.rs can prove that today's server and phone open what that release wrote,
# migrate it and serve the same tally (application-services keeps such files as its
# `MigratedDatabaseFile` tests).
#
#   git worktree add /tmp/old <commit>
#   cp core/examples/field_phone.rs /tmp/old/core/examples/   # when that release's lacks `correct`
#   (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old/target cargo build -p doorstep-server \
#       --bin doorstep-server -p doorstep-core --example field_phone)
#
# (`field_phone` is a test harness that only calls the release's core; today's may be copied
# into the release's tree when the release's lacks a command. Everything written to the files
# is the release's own code.)
#   scripts/make-upgrade-fixtures.sh /tmp/old/target/debug server/tests/fixtures/upgrade <commit>
#
# It runs that release's `doorstep-server demo` on a fresh database; two building heads' phones
# (`field_phone` built on that release's core) enroll, record visits and ballots and sync;
# building 3's head then records a day's work offline that never syncs: visits, ballots and a
# correction of a ballot it delivered. The server's tally is saved as that release
# answered it, the server is stopped (SIGTERM: the WAL is checkpointed) and the files are copied:
#   server-<commit>.sqlite   the server database
#   phone-<commit>.sqlite    building 3's phone store, with undelivered work
#   tally-<commit>.json      GET /api/v1/admin/campaigns/election-2025/tally, as that release answered
#   README.md                what is inside
set -euo pipefail
bin=$1
out=$2
commit=$3
password=upgrade-fixture-passphrase
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
DOORSTEP_ADMIN_PASSWORD=$password RUST_LOG=warn "$bin/doorstep-server" demo \
    --db "$work/server.sqlite" --listen "127.0.0.1:$port" >"$work/demo.txt" &
server=$!
for _ in $(seq 1 300); do
    curl -sf "$url/healthz" >/dev/null && break
    sleep 0.1
done
code() { grep -E "building +$1 " "$work/demo.txt" | awk '{print $NF}'; }
phone() { "$bin/examples/field_phone" "$@"; }
first_units() { phone "$1" units "$2" | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin)['units'][:$3]))"; }

phone "$work/phone3.sqlite" enroll "$url" "$(code 3)" "3号楼手机" >/dev/null
phone "$work/phone5.sqlite" enroll "$url" "$(code 5)" "5号楼手机" >/dev/null

# Delivered work: building 3, six doors; building 5, four doors.
i=0
for unit in $(first_units "$work/phone3.sqlite" 3 6); do
    phone "$work/phone3.sqlite" visit election-2025 "$unit" collected >/dev/null
    ballot=$(phone "$work/phone3.sqlite" vote election-2025 "$unit" q1 cand-1 cand-$((2 + i % 3)) cand-5 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ballot"])')
    [ "$i" -eq 0 ] && { first_unit=$unit; first_ballot=$ballot; }
    i=$((i + 1))
done
for unit in $(first_units "$work/phone5.sqlite" 5 4); do
    phone "$work/phone5.sqlite" visit election-2025 "$unit" collected >/dev/null
    phone "$work/phone5.sqlite" vote election-2025 "$unit" q1 cand-2 cand-6 >/dev/null
done
phone "$work/phone3.sqlite" sync >/dev/null
phone "$work/phone5.sqlite" sync >/dev/null

# Undelivered work on building 3's phone: three more doors, never synced.
for unit in $(phone "$work/phone3.sqlite" units 3 | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin)['units'][6:9]))"); do
    phone "$work/phone3.sqlite" visit election-2025 "$unit" collected >/dev/null
    phone "$work/phone3.sqlite" vote election-2025 "$unit" q1 cand-1 cand-7 >/dev/null
done
phone "$work/phone3.sqlite" visit election-2025 "$(first_units "$work/phone3.sqlite" 3 10 | awk '{print $10}')" not_home >/dev/null
# The first owner changes their mind: a correction superseding the ballot delivered earlier.
phone "$work/phone3.sqlite" correct election-2025 "$first_unit" "$first_ballot" q1 cand-8 >/dev/null

token=$(curl -sf -H 'content-type: application/json' \
    -d "{\"login\":\"admin\",\"password\":\"$password\"}" "$url/api/v1/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
mkdir -p "$out"
curl -sf -H "authorization: Bearer $token" "$url/api/v1/admin/campaigns/election-2025/tally" \
    | python3 -m json.tool --sort-keys >"$out/tally-$commit.json"
kill -TERM "$server"
wait "$server" || true
for f in "$work/server.sqlite" "$work/phone3.sqlite"; do
    [ ! -s "$f-wal" ] || { echo "a WAL with content was left beside $f" >&2; exit 1; }
done
cp "$work/server.sqlite" "$out/server-$commit.sqlite"
cp "$work/phone3.sqlite" "$out/phone-$commit.sqlite"
echo "wrote $out/{server,phone,tally}-$commit.*"
