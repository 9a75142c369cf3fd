#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the ledger tests and export GUIMO_TEST_POSTGRES_URL.
# Source it (`. .ci/postgres.sh`) so the variable reaches `make test`. Idempotent and fast when the
# server already runs: installs Debian's postgresql only if no server binaries exist, creates the
# cluster once under $GUIMO_PG_DIR, listens on 127.0.0.1 only, trusts loopback connections.
# Never fatal: if anything fails, the PostgreSQL tests skip and say why.

_guimo_pg() {
  local port="${GUIMO_PG_PORT:-54329}" dir="${GUIMO_PG_DIR:-/tmp/guimo-postgres}" db="guimo_test" run_as=()
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "postgres.sh: installing Debian's postgresql" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || return 1
      bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    else
      echo "postgres.sh: no PostgreSQL server binaries and not root: cannot install" >&2
      return 1
    fi
  fi
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || return 1
    run_as=(runuser -u postgres --)  # initdb and postgres refuse to run as root
  fi
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
    fi
    "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null || return 1
  fi
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" || return 1
  export GUIMO_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/$db"
  echo "postgres.sh: GUIMO_TEST_POSTGRES_URL=$GUIMO_TEST_POSTGRES_URL" >&2
}

_guimo_pg || echo "postgres.sh: could not start PostgreSQL; the PostgreSQL tests will skip" >&2
unset -f _guimo_pg
