#!/usr/bin/env bash
# Builds target/debug/switchboard as scripts/test.sh's `cargo test` builds it and prints its path, for
# the checks that run the binary itself (scripts/check-chart.sh, scripts/test-browser.sh). Right after
# that test run it builds nothing. A plain `cargo build --bin switchboard` resolves the features
# without the tests' dev-dependencies, so it compiled the crate again and linked another 300 MB
# binary of the same code; each script did so, in every CI run.
set -euo pipefail
cd "$(dirname "$0")/.."
# As scripts/test.sh builds, or every crate would be built again.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --locked --no-run --quiet >&2
echo "$PWD/target/debug/switchboard"
