#!/usr/bin/env bash
# Makes sure the console's browser test can run: Debian's chromium at /usr/bin/chromium (installed
# with apt-get when missing, with a CJK font) and playwright-core, the driver only, from npm into tests/browser
# (`npm ci` against its package-lock.json, so every run gets the same version; it downloads no
# browser of its own). Needs node and npm (Debian's nodejs and npm packages), installed the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    else
        sudo "$@"
    fi
}

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# Chromium brings no CJK font; without one the Chinese screenshots show boxes.
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
    echo "ensure-browser: installing ${missing[*]} with apt-get" >&2
    as_root apt-get update
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The lock file names the exact version; node_modules is rebuilt only when it is not that one.
wanted=$(node -p 'require("./tests/browser/package-lock.json").packages["node_modules/playwright-core"].version')
installed=$(node -p 'try { require("./tests/browser/node_modules/playwright-core/package.json").version } catch { "" }')
if [[ "$installed" != "$wanted" ]]; then
    (cd tests/browser && npm ci --no-audit --no-fund)
fi
