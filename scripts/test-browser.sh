#!/usr/bin/env bash
# The console's browser test: builds the binary, makes sure Chromium and playwright-core are there
# (scripts/ensure-browser.sh) and the sentence model too, then drives the console in headless
# Chromium against the real binary (tests/browser/console.test.mjs). Screenshots go to
# target/browser-screenshots/, which CI keeps.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-browser.sh
scripts/fetch-model.sh
SWITCHBOARD_BIN="$(scripts/test-binary.sh)" node tests/browser/console.test.mjs
