#!/usr/bin/env bash
# Starts the Qdrant server from ../shared/tools/qdrant (a Qdrant 1.18.3 built from its public source; see
# that folder's README) on 127.0.0.1 when it is present and nothing answers on ${QDRANT_GRPC_PORT:-16334}
# yet, storing under ${TMPDIR:-/tmp}/switchboard-qdrant/<port>, and waits up to 120 s for it to be ready.
# Prints the gRPC URL for SWITCHBOARD__QDRANT__URL on success. Without the server it prints nothing and
# exits 0: the tests that need one then say they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

server=../shared/tools/qdrant
grpc_port="${QDRANT_GRPC_PORT:-16334}"
http_port="${QDRANT_HTTP_PORT:-16333}"
[[ -x "$server" ]] || exit 0

ready() {
    curl -sf "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1
}

if ! ready; then
    base="${TMPDIR:-/tmp}/switchboard-qdrant/$grpc_port"
    mkdir -p "$base"
    QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$http_port" \
        QDRANT__SERVICE__GRPC_PORT="$grpc_port" QDRANT__STORAGE__STORAGE_PATH="$base/storage" \
        QDRANT__STORAGE__SNAPSHOTS_PATH="$base/snapshots" QDRANT__TELEMETRY_DISABLED=true \
        nohup "$server" >"$base/qdrant.log" 2>&1 &
    for _ in $(seq 1 1200); do
        ready && break
        sleep 0.1
    done
    ready || { echo "ensure-qdrant: no answer on port $http_port within 120 s; see $base/qdrant.log" >&2; exit 1; }
fi
echo "http://127.0.0.1:$grpc_port"
