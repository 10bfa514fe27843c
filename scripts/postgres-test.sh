#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: `start` installs Debian's `postgresql` when no `initdb`
# is found, creates a cluster in a temporary directory owned by an unprivileged user (initdb
# refuses root), starts it on 127.0.0.1 and prints the line to `eval`:
#
#   export DOORSTEP_TEST_POSTGRES=postgres://doorstep@127.0.0.1:PORT/postgres
#
# The tests create one database per test through that address. `stop` stops the cluster and
# removes its directory; `pause` and `resume` stop and start it on the same data. Usage:
#
#   eval "$(scripts/postgres-test.sh start)"   # …run tests…   scripts/postgres-test.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
state=build/postgres-test
port=${DOORSTEP_TEST_POSTGRES_PORT:-55432}

bin_dir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $found ]]; then
    echo "$found"
    return
  fi
  echo "== installing PostgreSQL from Debian" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "PostgreSQL is missing and installing it needs root (apt-get install postgresql)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

# Run a command as the unprivileged owner of the cluster (ourselves when not root).
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    bin=$(bin_dir)
    owner=$(id -un)
    if [[ $(id -u) -eq 0 ]]; then
      owner=doorstep-pg
      id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
    fi
    if [[ -f $state/data/postmaster.pid ]]; then
      as_owner "$bin/pg_ctl" -D "$state/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$state"
    mkdir -p "$state"
    dir=$(mktemp -d /tmp/doorstep-pg.XXXXXX)
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown "$owner" "$dir"
    ln -s "$dir" "$state/data-root"
    as_owner "$bin/initdb" -D "$dir/data" -U doorstep --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
      { cat "$state/initdb.log" >&2; exit 1; }
    # Tests start many server processes and databases: room for them, and no fsync (a test
    # cluster is thrown away; durability is PostgreSQL's own business in production). Kept in
    # the cluster's configuration, so `resume` starts it the same way.
    cat >>"$dir/data/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$dir'
listen_addresses = '127.0.0.1'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >&2
    ln -s "$dir/data" "$state/data"
    echo "$bin" >"$state/bin"
    echo "$owner" >"$state/owner"
    echo "export DOORSTEP_TEST_POSTGRES=postgres://doorstep@127.0.0.1:$port/postgres"
    ;;
  pause | resume)
    # Stop the cluster (fast: sessions are cut) or start it again on the same data; the
    # tests use this to restart PostgreSQL under running servers.
    bin=$(cat "$state/bin")
    owner=$(cat "$state/owner")
    dir=$(readlink -f "$state/data-root")
    if [[ $1 == pause ]]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    else
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >&2
    fi
    ;;
  stop)
    if [[ -f $state/bin ]]; then
      bin=$(cat "$state/bin")
      owner=$(cat "$state/owner")
      dir=$(readlink -f "$state/data-root")
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop >&2 || true
      rm -rf "$dir" "$state"
    fi
    ;;
  *)
    echo "usage: $0 start|pause|resume|stop" >&2
    exit 2
    ;;
esac
