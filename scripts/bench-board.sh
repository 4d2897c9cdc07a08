#!/usr/bin/env bash
# The decision board's first paint with 10,000 decisions (BOARD_TICKETS to change it), in headless
# Chromium against the real binary: prints the figure. Not part of scripts/test.sh: deciding 10,000
# tickets takes longer than the test budget on a 2-core machine. Pass SWITCHBOARD_BIN to bench a
# release build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-browser.sh
cargo build --locked --bin switchboard
node tests/browser/board-benchmark.mjs
