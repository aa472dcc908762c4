#!/usr/bin/env bash
# Start a throw-away PostgreSQL for the collector tests and print how to reach it:
#
#     eval "$(.ci/setup-postgres.sh)"      # or: source .ci/setup-postgres.sh
#
# Installs Debian's postgresql when it is missing (as root; never with PINSET_PG_INSTALL=no,
# which is how `make test` calls it), then runs a cluster in
# a temporary directory with pg_ctl on a free 127.0.0.1 port, as the postgres user
# when started by root (PostgreSQL refuses to run as root). Creates the role
# "pinset" (password "pinset", CREATEDB: each test makes its own database; pg_signal_backend:
# DROP DATABASE … WITH (FORCE) may end an autovacuum worker) and prints
#     export PINSET_TEST_POSTGRES_URL=postgresql+psycopg://pinset:pinset@127.0.0.1:PORT/postgres
# Reuses a cluster this script already started (PINSET_PG_DIR, default /tmp/pinset-pg).
# Stop it with: pg_ctl -D "$PINSET_PG_DIR/data" stop  (as the same user).

_pinset_pg_setup() (
    set -euo pipefail
    log() { echo "setup-postgres: $*" >&2; }
    dir="${PINSET_PG_DIR:-/tmp/pinset-pg}"
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        if [ "${PINSET_PG_INSTALL:-yes}" = no ]; then
            log "PostgreSQL is not installed: apt-get install postgresql"
            return 1
        fi
        if [ "$(id -u)" != 0 ]; then
            log "PostgreSQL is not installed and I am not root: apt-get install postgresql"
            return 1
        fi
        log "installing Debian's postgresql"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
        bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    fi
    as_owner=()
    if [ "$(id -u)" = 0 ]; then
        as_owner=(runuser -u postgres --)
    fi
    run() { "${as_owner[@]}" "$@"; }
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    if [ -f "$dir/port" ] && run "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        port="$(cat "$dir/port")"
        log "reusing the cluster in $dir on port $port"
    else
        rm -rf "$dir/data"
        port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        run "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --no-instructions >&2
        run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" \
            start >&2
        echo "$port" | run tee "$dir/port" >/dev/null
        run "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
            -c "CREATE ROLE pinset LOGIN CREATEDB PASSWORD 'pinset'" \
            -c "GRANT pg_signal_backend TO pinset" >&2
        log "started PostgreSQL in $dir on 127.0.0.1:$port"
    fi
    echo "postgresql+psycopg://pinset:pinset@127.0.0.1:$port/postgres"
)

if _pinset_pg_url="$(_pinset_pg_setup)"; then
    export PINSET_TEST_POSTGRES_URL="$_pinset_pg_url"
    echo "export PINSET_TEST_POSTGRES_URL=$_pinset_pg_url"
else
    echo "setup-postgres: failed; PostgreSQL tests will be skipped" >&2
fi
unset _pinset_pg_url
