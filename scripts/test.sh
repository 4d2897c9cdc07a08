#!/usr/bin/env bash
# The project's test command (CI runs exactly this): starts a JetStream nats-server when none is listening
# (installing it when missing), fetches the sentence models the dense-retrieval tests load, then lints,
# checks that no role crate depends on another, runs every test, then checks the Helm chart renders.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-nats.sh
scripts/fetch-model.sh
scripts/fetch-model.sh --model m3e-small
export SWITCHBOARD_TEST_NATS_URL="${SWITCHBOARD_TEST_NATS_URL:-nats://127.0.0.1:${NATS_PORT:-4222}}"

cargo fmt --all -- --check
scripts/check-crate-graph.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/check-chart.sh
