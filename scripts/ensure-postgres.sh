#!/usr/bin/env bash
# Makes sure a PostgreSQL server listens on 127.0.0.1:${PGPORT:-5432} with a database `test` that the
# user `postgres` reaches without a password, for the database-import tests. If nothing listens there,
# creates a cluster under ${TMPDIR:-/tmp}/switchboard-postgres/<port> (installing Debian's postgresql
# with apt-get first when missing), starts it, logging to postgres.log there, and creates the database.
# A server already listening is left as it is.
set -euo pipefail

host=127.0.0.1
port="${PGPORT:-5432}"
base="${TMPDIR:-/tmp}/switchboard-postgres/$port"
data="$base/data"
log="$base/postgres.log"

fail() {
    echo "ensure-postgres: $*" >&2
    exit 1
}

listening() {
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Debian keeps the server's programs under /usr/lib/postgresql/<version>/bin, off the PATH.
find_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
    done
    return 1
}

if listening; then
    echo "ensure-postgres: a server already listens on $host:$port"
    exit 0
fi

bin="$(find_bin || true)"
if [[ -z "$bin" ]]; then
    echo "ensure-postgres: installing postgresql with apt-get" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    bin="$(find_bin || true)"
    [[ -n "$bin" ]] || fail "pg_ctl is still missing after apt-get install"
fi

# The server refuses to run as root: root runs it as the package's `postgres` user.
run_as() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
mkdir -p "$base"
[[ "$(id -u)" -eq 0 ]] && chown postgres: "$base"
if [[ ! -s "$data/PG_VERSION" ]]; then
    run_as "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
fi
run_as "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 \
    -o "-h $host -p $port -k $base" start >/dev/null || {
    tail -n 20 "$log" >&2 || true
    fail "the server did not start; see $log"
}
if ! run_as "$bin/psql" -h "$host" -p "$port" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    run_as "$bin/createdb" -h "$host" -p "$port" -U postgres test
fi
echo "ensure-postgres: PostgreSQL ready at postgres://postgres@$host:$port/test, log $log"
