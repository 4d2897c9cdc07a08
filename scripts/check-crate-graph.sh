#!/usr/bin/env bash
# Fails when the crate graph runs against the pipeline: a role crate (services/roles/*) that depends on
# another role crate, or a library crate (services/libs/*) that depends on a role crate. What several
# roles share belongs in a library; only the binary (services/switchboard) and the end-to-end tests
# depend on roles. Dev-dependencies count too: a role's tests must not need another role either.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --format-version 1 --no-deps --offline | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
root = meta["workspace_root"]
def kind(pkg):
    rel = os.path.relpath(os.path.dirname(pkg["manifest_path"]), root)
    for k in ("roles", "libs"):
        if rel.startswith(os.path.join("services", k) + os.sep):
            return k
    return None
kinds = {p["name"]: kind(p) for p in meta["packages"]}
wrong = []
for p in meta["packages"]:
    k = kinds[p["name"]]
    if k is None:
        continue
    for d in p["dependencies"]:
        if kinds.get(d["name"]) == "roles" and d["name"] != p["name"]:
            dev = " (dev)" if d.get("kind") == "dev" else ""
            wrong.append(k[:-1] + " " + p["name"] + " depends on role " + d["name"] + dev)
if wrong:
    print("the crate graph runs against the pipeline:", *wrong, sep="\n  ", file=sys.stderr)
    sys.exit(1)
roles = sorted(n for n, k in kinds.items() if k == "roles")
libs = sorted(n for n, k in kinds.items() if k == "libs")
print(f"crate graph: {len(roles)} roles depend on libraries only; {len(libs)} libraries depend on no role")
'
