#!/usr/bin/env bash
# The project's test command (CI runs exactly this): starts a JetStream nats-server and PostgreSQL when
# none is listening (installing them when missing), fetches the sentence models the dense-retrieval
# tests load, then lints, checks that no role crate depends on another, runs every test (the vector-store suite also against the
# Qdrant server in ../shared/tools when present), then checks the Helm chart renders and drives the
# web console in real headless Chromium (scripts/test-browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-nats.sh
scripts/ensure-postgres.sh
scripts/fetch-model.sh
scripts/fetch-model.sh --model all-MiniLM-L6-v2
scripts/fetch-model.sh --model m3e-small
export SWITCHBOARD_TEST_NATS_URL="${SWITCHBOARD_TEST_NATS_URL:-nats://127.0.0.1:${NATS_PORT:-4222}}"
export SWITCHBOARD_TEST_POSTGRES_URL="${SWITCHBOARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:${PGPORT:-5432}/test}"
# MySQL/MariaDB is tested when one already listens (as on the project's machines); none is installed.
if [[ -z "${SWITCHBOARD_TEST_MYSQL_URL:-}" ]] && (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
    export SWITCHBOARD_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/test"
fi
# A fresh clone builds once: incremental compilation would only add its caches (2.4 GB here) to a
# target directory of about 20 GB, and a CI run's linker once died of a full disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
scripts/check-crate-graph.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
# The vector-store conformance suite runs its server half against ../shared/tools/qdrant when present,
# in the same run: a second `cargo test -p` would resolve other features and rebuild for minutes.
qdrant_url=$(scripts/ensure-qdrant.sh)
if [[ -n "$qdrant_url" ]]; then
    export SWITCHBOARD_TEST_QDRANT_URL="$qdrant_url"
else
    echo "test: no Qdrant server at ../shared/tools/qdrant; the server half of the conformance suite is skipped"
fi
cargo test --workspace --locked
scripts/check-chart.sh
# The web console in headless Chromium against the binary cargo test just built (about a minute).
scripts/test-browser.sh
