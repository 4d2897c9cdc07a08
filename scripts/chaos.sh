#!/usr/bin/env bash
# The chaos run (services/switchboard/tests/chaos): its own nats-server, every role in a process of its
# own on the Qdrant server in ../shared/tools, N tickets at a steady rate while roles and nats-server
# are killed with SIGKILL, nats-server, the Qdrant server and an LLM stand-in are each down for a minute and intake's
# NATS connection is cut after publishes; then every accepted
# ticket is classified from the stream. The last line printed is the JSON summary; the exit status is
# non-zero unless nothing was lost or decided twice.
#
#   scripts/chaos.sh [--tickets N] [--rate PER_SECOND] [--kill-every SECONDS] [--cut-every K]
#                    [--nats-down SECONDS] [--qdrant-down SECONDS] [--llm-down SECONDS] [--seed S] [--json]
#
# It builds what the test command builds (so nothing is compiled again after a test run) and runs
# that test binary with these arguments; `cargo test` runs it at its defaults, 1,000 tickets.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-nats.sh >&2
# As scripts/test.sh builds, or its test binaries would be built again.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
binary=$(cargo test --workspace --locked --no-run --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "chaos" and m.get("executable"):
        print(m["executable"])
')
if [[ -z "$binary" ]]; then
    echo "chaos: the build gave no chaos test binary; see the build output above" >&2
    exit 1
fi
exec "$binary" "$@"
