#!/usr/bin/env bash
# Measures Switchboard's embedder beside sentence-transformers on PyTorch, in one run on this machine:
# the same model directory, texts, sequence length and thread count, one text at a time and in
# batches of 32, on short texts (the CSV given) and long ones (consecutive texts of it joined until each
# is over 500 characters). A benchmark, not part of the test command: it installs torch and
# sentence-transformers (several GB) into a virtual environment of its own, target/bench-venv.
#
# Usage: scripts/bench-embed-reference.sh TEXTS.csv [--column text] [--threads 2] [--limit N]
#   needs target/release/switchboard (cargo build --release --bin switchboard) and the model
#   (scripts/fetch-model.sh); SWITCHBOARD__EMBEDDER__MAX_SEQUENCE_LENGTH sets the length for both.
set -euo pipefail

fail() {
    echo "bench-embed-reference: $*" >&2
    exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 ]] || fail "usage: $0 TEXTS.csv [--column text] [--threads 2] [--limit N]"
texts="$1"
shift
column=text threads=2 limit=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --column) column="$2" ;;
    --threads) threads="$2" ;;
    --limit) limit="$2" ;;
    *) fail "unknown option $1" ;;
    esac
    shift 2
done
[[ -f "$texts" ]] || fail "$texts is not a file"
binary="$root/target/release/switchboard"
[[ -x "$binary" ]] || fail "$binary is missing: cargo build --release --bin switchboard"
model="${SWITCHBOARD__EMBEDDER__MODEL_DIR:-$root/models/all-MiniLM-L6-v2}"
[[ -d "$model" ]] || fail "no model in $model: scripts/fetch-model.sh"
length="${SWITCHBOARD__EMBEDDER__MAX_SEQUENCE_LENGTH:-128}"

venv="$root/target/bench-venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
    echo "bench-embed-reference: installing torch and sentence-transformers into $venv (several GB)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch sentence-transformers
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Both sides read the same files: the short texts as given (cut to --limit), and the long ones made
# from them.
"$venv/bin/python" - "$texts" "$column" "$work" "$limit" <<'PY'
import csv, sys
path, column, work, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(path, newline="", encoding="utf-8") as f:
    texts = [row[column] for row in csv.DictReader(f) if row[column].strip()]
if limit:
    texts = texts[: int(limit)]
long, current = [], ""
for text in texts:
    current = f"{current} {text}".strip()
    if len(current) > 500:
        long.append(current)
        current = ""
for name, rows in (("short", texts), ("long", long)):
    with open(f"{work}/{name}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerows([t] for t in rows)
PY

reference() {
    HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error \
        "$venv/bin/python" - "$model" "$1" "$2" "$threads" "$length" 2>"$work/reference.log" <<'PY'
import csv, sys, time, warnings
warnings.filterwarnings("ignore")
model_dir, path, batch, threads, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import torch
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = length
with open(path, newline="", encoding="utf-8") as f:
    texts = [row["text"] for row in csv.DictReader(f)]
model.encode(texts[:1])
started = time.perf_counter()
if batch == 1:
    for text in texts:
        model.encode([text], batch_size=1)
else:
    model.encode(texts, batch_size=batch)
seconds = time.perf_counter() - started
print(f"{len(texts) / seconds:.1f}")
PY
}

switchboard() {
    SWITCHBOARD__EMBEDDER__THREADS="$threads" SWITCHBOARD__EMBEDDER__MODEL_DIR="$model" \
        SWITCHBOARD__EMBEDDER__MAX_SEQUENCE_LENGTH="$length" \
        "$binary" bench-embed --texts "$1" --batch "$2" --json 2>/dev/null |
        "$venv/bin/python" -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["texts_per_second"])'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $threads threads; $length tokens at most"
echo "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'), sentence-transformers $("$venv/bin/python" -c 'import sentence_transformers as s; print(s.__version__)')"
printf '%-6s %6s %6s %7s %14s %12s %6s\n' texts count chars batch sentence-tf/s switchboard/s ratio
for set in short long; do
    file="$work/$set.csv"
    read -r count chars < <("$venv/bin/python" -c 'import csv, sys; t = [r["text"] for r in csv.DictReader(open(sys.argv[1]))]; print(len(t), round(sum(map(len, t)) / len(t)))' "$file")
    for batch in 1 32; do
        st=$(reference "$file" "$batch") || { cat "$work/reference.log" >&2; fail "sentence-transformers failed"; }
        sb=$(switchboard "$file" "$batch") || fail "switchboard bench-embed failed (run it alone to see why)"
        ratio=$("$venv/bin/python" -c "print(f'{$sb / $st:.2f}')")
        printf '%-6s %6d %6d %7d %14s %12s %6s\n' "$set" "$count" "$chars" "$batch" "$st" "$sb" "$ratio"
    done
done
