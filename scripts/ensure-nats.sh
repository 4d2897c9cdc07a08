#!/usr/bin/env bash
# Makes sure a NATS server with JetStream listens on 127.0.0.1:${NATS_PORT:-4222}, for the
# NatsBus tests and local runs. If nothing listens there, starts the Debian nats-server in the
# background (installing it with apt-get first when missing), storing under
# ${TMPDIR:-/tmp}/switchboard-nats/<port> and logging to nats-server.log there, then waits up to
# 20 s for the port to accept connections. A server already listening is left as it is.
set -euo pipefail

host=127.0.0.1
port="${NATS_PORT:-4222}"
# One directory per port: two servers must never share a JetStream store.
base="${TMPDIR:-/tmp}/switchboard-nats/$port"
log="$base/nats-server.log"
wait_seconds=20

fail() {
    echo "ensure-nats: $*" >&2
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

# Debian puts it in /usr/sbin, which a normal user's PATH may lack.
find_nats_server() {
    command -v nats-server 2>/dev/null || { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; }
}

install_nats_server() {
    echo "ensure-nats: installing nats-server with apt-get" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
}

if listening; then
    echo "ensure-nats: a server already listens on $host:$port"
    exit 0
fi

nats_server="$(find_nats_server || true)"
if [[ -z "$nats_server" ]]; then
    install_nats_server
    nats_server="$(find_nats_server || true)"
    [[ -n "$nats_server" ]] || fail "nats-server is still missing after apt-get install"
fi

mkdir -p "$base/store"
nohup "$nats_server" -a "$host" -p "$port" -js -sd "$base/store" >>"$log" 2>&1 &
pid=$!
disown "$pid"

for _ in $(seq $((wait_seconds * 4))); do
    if listening; then
        echo "ensure-nats: nats-server (pid $pid) ready at nats://$host:$port, log $log"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$log" >&2 || true
        fail "nats-server exited during start-up; see $log"
    fi
    sleep 0.25
done
fail "nats-server (pid $pid) did not accept connections on $host:$port within ${wait_seconds} s; see $log"
