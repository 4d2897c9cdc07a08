#!/usr/bin/env python3
"""Checks of the chart's renders that need a YAML parser; scripts/check-chart.sh runs it.

  check_render.py --repo DIR --work DIR LABEL=RENDER.yaml ...

For every render:
  - each core Kubernetes object validates strictly (unknown fields rejected) against the
    Kubernetes schema of the chart's oldest supported version and of the newest that
    kubernetes-validate knows; the custom resources (ServiceMonitor, PrometheusRule,
    ScaledObject) are not in that schema, are named as skipped, and get the structural
    checks below instead;
  - what each label's values must produce (see EXPECT below).
Across renders:
  - every PromQL expression in the alerts and dashboards names only metric series the
    binary exports (read from services/libs/runtime/src/metrics.rs) and only labels
    those series carry (or that the scrape adds);
  - with --scrape, the /metrics text of a running binary: it must export exactly the
    series read from metrics.rs, with the same labels, so the expressions are checked
    against what the binary really exports;
  - the dashboards parse, have stable distinct uids and a datasource variable every
    query uses.
It writes the rendered alert groups to WORK/rules.yaml (for `promtool check rules`) and,
without their annotations, to WORK/rules-test.yaml (for `promtool test rules`: promtool
compares annotations exactly, so the tests pin the expressions and labels; the
annotation templates are checked by `promtool check rules`).
"""

import argparse
import functools
import json
import os
import re
import sys

import yaml

import kubernetes_validate
import kubernetes_validate.utils as kv_utils

ROLES = ["intake", "parser", "sentiment", "retriever", "router", "assign", "feedback", "metrics", "console"]
# Roles with a durable JetStream consumer named after the role (the console has none).
CONSUMERS = [r for r in ROLES if r != "console"]
# The roles that open the knowledge base and so get the Qdrant key.
KNOWLEDGE_ROLES = ["retriever", "feedback"]
# Chart.yaml's kubeVersion floor, and the newest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.25.0", kv_utils.latest_version()]
CRD_GROUPS = {"monitoring.coreos.com", "keda.sh"}
RELEASE = "t"
FULL = f"{RELEASE}-switchboard"

failures = []


def fail(msg):
    failures.append(msg)


# kubernetes-validate reads and parses its schema files on every call; the definitions file
# is large, so cache them (the schemas are only read).
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def name(d):
    return d["metadata"]["name"]


def role_of(d):
    return d["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def container(dep):
    return dep["spec"]["template"]["spec"]["containers"][0]


def env_of(dep):
    return {e["name"]: e for e in container(dep).get("env", [])}


# ---------------------------------------------------------------- Kubernetes schema

validated = {}  # (version, canonical json) -> error or None: renders repeat many objects


def validate_core(label, docs, skipped):
    for d in docs:
        group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
        if group in CRD_GROUPS:
            skipped.add(f'{d["kind"]} ({d["apiVersion"]})')
            continue
        key = json.dumps(d, sort_keys=True)
        for version in K8S_VERSIONS:
            if (version, key) not in validated:
                try:
                    kubernetes_validate.validate(d, version, strict=True)
                    validated[(version, key)] = None
                except kv_utils.ValidationError as e:
                    path = "/".join(str(p) for p in e.path)
                    validated[(version, key)] = f"{e.message} at {path or '/'}"
                except kv_utils.SchemaNotFoundError:
                    validated[(version, key)] = "no schema for this kind (not a core kind, not a known CRD)"
            err = validated[(version, key)]
            if err:
                fail(f"{label}: {d['kind']} {name(d)} is not valid Kubernetes {version}: {err}")


# ---------------------------------------------------------------- shape of each render


def check_deployments(label, docs, roles, scaled=()):
    deps = {role_of(d): d for d in by_kind(docs, "Deployment")}
    if sorted(deps) != sorted(roles):
        fail(f"{label}: Deployments for {sorted(deps)}, want {sorted(roles)}")
    for role, dep in deps.items():
        c = container(dep)
        if c.get("readinessProbe", {}).get("httpGet") != {"path": "/readyz", "port": "http"}:
            fail(f"{label}: {role}: readiness is not /readyz on the http port: {c.get('readinessProbe')}")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get("http") != 8080:
            fail(f"{label}: {role}: the http port is not 8080 (where the binary serves /readyz)")
        if c.get("startupProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            fail(f"{label}: {role}: no startupProbe on /healthz")
        env = env_of(dep)
        if env.get("SWITCHBOARD__BUS__NATS__STREAM", {}).get("value") != "TICKETS":
            fail(f"{label}: {role}: SWITCHBOARD__BUS__NATS__STREAM is not the values' nats.stream")
        if env.get("SWITCHBOARD__TELEMETRY__SERVICE_NAME", {}).get("value") != f"switchboard-{role}":
            fail(f"{label}: {role}: traces not named switchboard-{role}")
        has_replicas = "replicas" in dep["spec"]
        if (role in scaled) == has_replicas:
            fail(f"{label}: {role}: autoscaled={role in scaled} but replicas "
                 f"{'set' if has_replicas else 'missing'} (an autoscaled Deployment must leave replicas to it)")
    return deps


def check_spread(label, deps, want):
    for role, dep in deps.items():
        tsc = dep["spec"]["template"]["spec"].get("topologySpreadConstraints")
        if not want:
            if tsc:
                fail(f"{label}: {role}: topology spread rendered though disabled")
            continue
        keys = [t["topologyKey"] for t in tsc or []]
        if keys != ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]:
            fail(f"{label}: {role}: topology spread over {keys}, want zone then hostname")
        for t in tsc or []:
            sel = t["labelSelector"]["matchLabels"]
            if sel.get("app.kubernetes.io/component") != role:
                fail(f"{label}: {role}: topology spread selects {sel}, not the role's pods")


def check_pdbs(label, docs, deps, want):
    pdbs = {role_of(d): d for d in by_kind(docs, "PodDisruptionBudget")}
    if not want:
        if pdbs:
            fail(f"{label}: PodDisruptionBudgets rendered though disabled")
        return
    if sorted(pdbs) != sorted(deps):
        fail(f"{label}: PodDisruptionBudgets for {sorted(pdbs)}, want one per role {sorted(deps)}")
    for role, pdb in pdbs.items():
        pod_labels = deps[role]["spec"]["template"]["metadata"]["labels"]
        sel = pdb["spec"]["selector"]["matchLabels"]
        if any(pod_labels.get(k) != v for k, v in sel.items()):
            fail(f"{label}: {role}: the PDB's selector {sel} does not select the role's pods")
        if pdb["spec"].get("maxUnavailable") != 1:
            fail(f"{label}: {role}: PDB maxUnavailable is {pdb['spec'].get('maxUnavailable')}, want 1")


def check_hpas(label, docs, want_roles):
    hpas = {role_of(d): d for d in by_kind(docs, "HorizontalPodAutoscaler")}
    if sorted(hpas) != sorted(want_roles):
        fail(f"{label}: HPAs for {sorted(hpas)}, want {sorted(want_roles)}")
    for role, h in hpas.items():
        spec = h["spec"]
        if spec["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULL}-{role}"}:
            fail(f"{label}: {role}: the HPA targets {spec['scaleTargetRef']}")
        cpu = [m for m in spec.get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
        if len(cpu) != 1 or cpu[0]["resource"]["target"].get("averageUtilization") != 70:
            fail(f"{label}: {role}: the HPA has no CPU utilisation target of 70")


def check_scaledobjects(label, docs, want_roles, cpu_trigger):
    sos = {role_of(d): d for d in by_kind(docs, "ScaledObject")}
    if sorted(sos) != sorted(want_roles):
        fail(f"{label}: ScaledObjects for {sorted(sos)}, want {sorted(want_roles)}")
    for role, so in sos.items():
        spec = so["spec"]
        if spec["scaleTargetRef"].get("name") != f"{FULL}-{role}":
            fail(f"{label}: {role}: the ScaledObject targets {spec['scaleTargetRef']}")
        if not isinstance(spec.get("minReplicaCount"), int) or not isinstance(spec.get("maxReplicaCount"), int):
            fail(f"{label}: {role}: min/maxReplicaCount are not integers")
        js = [t for t in spec["triggers"] if t["type"] == "nats-jetstream"]
        if len(js) != 1:
            fail(f"{label}: {role}: want one nats-jetstream trigger, got {spec['triggers']}")
            continue
        md = js[0]["metadata"]
        want = {"stream": "TICKETS", "consumer": role, "account": "$G",
                "natsServerMonitoringEndpoint": "nats.nats.svc:8222"}
        for k, v in want.items():
            if md.get(k) != v:
                fail(f"{label}: {role}: trigger {k} is {md.get(k)!r}, want {v!r}")
        # KEDA's trigger metadata is map[string]string: a number here is rejected by the CRD.
        for k, v in md.items():
            if not isinstance(v, str):
                fail(f"{label}: {role}: trigger metadata {k} is {type(v).__name__}, KEDA wants strings")
        cpu = [t for t in spec["triggers"] if t["type"] == "cpu"]
        if bool(cpu) != cpu_trigger:
            fail(f"{label}: {role}: cpu trigger present={bool(cpu)}, want {cpu_trigger}")


def check_monitoring(label, docs, services):
    sms = by_kind(docs, "ServiceMonitor")
    if len(sms) != 1:
        fail(f"{label}: {len(sms)} ServiceMonitors, want 1")
    else:
        sel = sms[0]["spec"]["selector"]["matchLabels"]
        selected = [s for s in services if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if len(selected) != len(services):
            fail(f"{label}: the ServiceMonitor selects {len(selected)} of {len(services)} role Services")
        for s in services:
            if not any(p["name"] == "http" for p in s["spec"]["ports"]):
                fail(f"{label}: Service {name(s)} has no http port to scrape")
        ep = sms[0]["spec"]["endpoints"]
        if [(e["port"], e["path"]) for e in ep] != [("http", "/metrics")]:
            fail(f"{label}: the ServiceMonitor scrapes {ep}, want port http path /metrics")
    rules = by_kind(docs, "PrometheusRule")
    if len(rules) != 1:
        fail(f"{label}: {len(rules)} PrometheusRules, want 1")
    dash = [d for d in by_kind(docs, "ConfigMap") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if len(dash) != 4:
        fail(f"{label}: {len(dash)} dashboard ConfigMaps labelled for the Grafana sidecar, want 4")
    return rules, dash


def check_ingresses(label, docs, want_intake):
    ings = {name(d): d for d in by_kind(docs, "Ingress")}
    console = ings.get(FULL)
    if console is None:
        fail(f"{label}: no console Ingress {FULL}")
    intake = ings.get(f"{FULL}-intake")
    if want_intake:
        if intake is None:
            fail(f"{label}: no intake Ingress")
        else:
            paths = intake["spec"]["rules"][0]["http"]["paths"]
            got = [(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in paths]
            if got != [("/v1/tickets", "Exact", f"{FULL}-intake")]:
                fail(f"{label}: the intake Ingress routes {got}, want only /v1/tickets to the intake")
            if console and intake["spec"]["rules"][0]["host"] == console["spec"]["rules"][0]["host"]:
                fail(f"{label}: the intake and console Ingresses share a host; /v1/tickets would collide")
    # Only the intake and the console (and the router and metrics APIs the console's pages call)
    # are reachable from outside.
    allowed = {f"{FULL}-{r}" for r in ("console", "router", "metrics", "intake")}
    for ing in ings.values():
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                svc = p["backend"]["service"]["name"]
                if svc not in allowed:
                    fail(f"{label}: Ingress {name(ing)} exposes {svc} at {p['path']}")


BUS_SECRET = f"{FULL}-bus"
BUS_KEYS = ["authorization.conf", "nats-connector-password", "nats-password", "signing-key"]


def key_secrets(docs):
    """The Secrets of qdrant.apiKey and llm.apiKey: all but the bus Secret."""
    return [s for s in by_kind(docs, "Secret") if name(s) != BUS_SECRET]


def check_bus(label, docs, deps, on):
    """nats.auth and signing: every pod connects as the roles' user and signs with the key of the
    bus Secret, which also holds the server's authorization block; or, off, none of that."""
    bus = [s for s in by_kind(docs, "Secret") if name(s) == BUS_SECRET]
    if on and [sorted(s["data"]) for s in bus] != [BUS_KEYS]:
        fail(f"{label}: want the Secret {BUS_SECRET} with {BUS_KEYS}, got {[sorted(s['data']) for s in bus]}")
    if not on and bus:
        fail(f"{label}: renders {BUS_SECRET} with nats.auth and signing off")
    for role, dep in deps.items():
        env = env_of(dep)
        for var, key in (("SWITCHBOARD__BUS__NATS__PASSWORD", "nats-password"), ("SWITCHBOARD__BUS__SIGNING_KEY", "signing-key")):
            ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
            got = ref and (ref["name"], ref["key"])
            if on and got != (BUS_SECRET, key):
                fail(f"{label}: {role}: {var} from {got}, want {(BUS_SECRET, key)}")
            if not on and var in env:
                fail(f"{label}: {role}: {var} is set with nats.auth and signing off")
        if on and env.get("SWITCHBOARD__BUS__NATS__USER", {}).get("value") != "switchboard":
            fail(f"{label}: {role}: SWITCHBOARD__BUS__NATS__USER is not nats.auth.user")


def check_keys(label, deps, qdrant_secret, llm_secret):
    """qdrant_secret/llm_secret: (secret name, key) the pods must reference."""
    for role, dep in deps.items():
        env = env_of(dep)
        q = env.get("SWITCHBOARD__QDRANT__API_KEY")
        if role in KNOWLEDGE_ROLES:
            ref = q and q.get("valueFrom", {}).get("secretKeyRef")
            if not ref or (ref["name"], ref["key"]) != qdrant_secret:
                fail(f"{label}: {role}: Qdrant key from {ref}, want {qdrant_secret}")
        elif q:
            fail(f"{label}: {role} holds the Qdrant key but does not open the knowledge base")
        l = env.get("LLM_API_KEY")
        if role == "parser":
            ref = l and l.get("valueFrom", {}).get("secretKeyRef")
            if not ref or (ref["name"], ref["key"]) != llm_secret:
                fail(f"{label}: parser: LLM key from {ref}, want {llm_secret}")
            if env.get("SWITCHBOARD__LLM__API_KEY_ENV", {}).get("value") != "LLM_API_KEY":
                fail(f"{label}: parser: SWITCHBOARD__LLM__API_KEY_ENV does not name LLM_API_KEY")
        elif l:
            fail(f"{label}: {role} holds the LLM key but only the parser calls the LLM")


def check_test_hook(label, docs, roles):
    pods = [d for d in by_kind(docs, "Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    if len(pods) != 1:
        fail(f"{label}: {len(pods)} helm test pods, want 1")
        return
    script = " ".join(pods[0]["spec"]["containers"][0]["args"])
    urls = re.findall(r"http://[^\s]+/readyz", script)
    want = [f"http://{FULL}-{r}:8080/readyz" for r in sorted(roles)]
    if sorted(urls) != want:
        fail(f"{label}: the helm test asks {urls}, want {want}")


# ---------------------------------------------------------------- exported series

def exported_series(repo):
    """{series name: set of labels} from the binary's metrics registry."""
    path = os.path.join(repo, "services/libs/runtime/src/metrics.rs")
    src = open(path).read()
    prefix = re.search(r'Registry::with_prefix\("(\w+)"\)', src).group(1)
    structs = {m.group(1): set(re.findall(r"(\w+)\s*:\s*String", m.group(2)))
               for m in re.finditer(r"struct (\w+) \{([^}]*)\}", src)}
    # `type FloatGauge = Gauge<f64, AtomicU64>;`: an alias names its metric type.
    aliases = dict(re.findall(r"type (\w+) = (\w+)<", src))
    kinds = {}
    for m in re.finditer(
            r"let (\w+) = (?:Family::<(\w+),\s*(\w+)(?:<[^>]*>)?>|(\w+)(?:::<[^>]*>)?::(?:default|new)\()", src):
        var, labels_struct, fam_kind, plain_kind = m.groups()
        kind = fam_kind or plain_kind
        kinds[var] = (aliases.get(kind, kind), structs.get(labels_struct, set()) if labels_struct else set())
    series = {}
    for m in re.finditer(r'registry\.register\(\s*"(\w+)",\s*"[^"]*",\s*(\w+)\.clone\(\)', src):
        metric, var = m.groups()
        if var not in kinds:
            sys.exit(f"check_render: cannot tell the type of {metric} ({var}) in {path}")
        kind, labels = kinds[var]
        base = f"{prefix}_{metric}"
        if kind == "Counter":
            series[f"{base}_total"] = labels
        elif kind == "Gauge":
            series[base] = labels
        elif kind == "Histogram":
            series[f"{base}_bucket"] = labels | {"le"}
            series[f"{base}_sum"] = labels
            series[f"{base}_count"] = labels
        else:
            sys.exit(f"check_render: unknown metric type {kind} of {metric} in {path}")
    if not series:
        sys.exit(f"check_render: found no metrics registered in {path}")
    return series


def scraped_series(path):
    """{series name: set of labels seen} from a scrape of a running binary's /metrics, in the
    Prometheus text format (whose counter families carry their samples' `_total`)."""
    types = {}
    labels = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"# TYPE (\w+) (\w+)", line)
            if m:
                types[m.group(1)] = m.group(2)
                continue
            m = re.match(r"(\w+)(?:\{([^}]*)\})? ", line)
            if m:
                names = set(re.findall(r'(\w+)="', m.group(2) or ""))
                labels.setdefault(m.group(1), set()).update(names)
    series = {}
    suffixes = {"counter": [""], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    for family, kind in types.items():
        if kind not in suffixes:
            sys.exit(f"check_render: the scrape has a {kind} {family}, which this check does not know")
        for suffix in suffixes[kind]:
            series[family + suffix] = labels.get(family + suffix, set())
    if not series:
        sys.exit(f"check_render: no metric families in the scrape {path}")
    return series


# Families whose label values no one knows before the first event, so a binary that has only
# started exports no series of them (and prometheus-client then writes no TYPE line either).
LATE_SERIES = {
    "switchboard_queue_depth": "one per department, set when the assign role first works its queue",
    "switchboard_tickets_rejected_total": "one per field at fault, made by the first rejection",
    "switchboard_hot_issue_tickets": "one per hot problem type, set once the metrics role has counted one",
}


def check_scrape(series, scraped):
    """The registry as read from metrics.rs is what the binary exports: the same series, and on
    those with samples, the same labels. Returns the LATE_SERIES the scrape did not hold."""
    late = [n for n in sorted(set(series) - set(scraped)) if n in LATE_SERIES]
    for name in sorted(set(series) - set(scraped) - set(LATE_SERIES)):
        fail(f"scrape: {name} is registered in metrics.rs but the running binary does not export it")
    for name in sorted(set(scraped) - set(series)):
        fail(f"scrape: the running binary exports {name}, which this check does not find in metrics.rs")
    for name in sorted(set(series) & set(scraped)):
        if scraped[name] and scraped[name] != series[name]:
            fail(f"scrape: {name} carries labels {sorted(scraped[name])}, metrics.rs says {sorted(series[name])}")
    return late


# Labels Prometheus adds when it scrapes through the ServiceMonitor.
TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "endpoint", "container"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
    "bool", "inf", "nan", "le",
}


def promql_names(expr):
    """(metric names, [(metric or None, label)]) an expression refers to."""
    e = re.sub(r"\$\{?\w+\}?", "X", expr)              # Grafana variables ($namespace, ${datasource})
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)           # string literals
    e = re.sub(r"#[^\n]*", "", e)                       # comments
    e = re.sub(r"\[[^\]]*\]", "", e)                   # range selectors
    labels = []
    # label_values(selector, label): its last argument is a label, not a series.
    e = re.sub(r"label_values\((.*),\s*(\w+)\s*\)", lambda m: (labels.append((None, m.group(2))), m.group(1))[1], e)
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        labels += [(None, l.strip()) for l in m.group(2).split(",") if l.strip()]
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    metrics = []
    for m in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", e):
        for lm in re.finditer(r"(\w+)\s*(=~|!~|!=|=)", m.group(2)):
            labels.append((m.group(1), lm.group(1)))
    e = re.sub(r"\{[^}]*\}", " ", e)
    for m in re.finditer(r"\b([A-Za-z_:][\w:]*)\b(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS or re.fullmatch(r"[0-9.e]+", word):
            continue
        metrics.append(word)
    return metrics, labels


def check_expr(where, expr, series):
    metrics, labels = promql_names(expr)
    if not metrics:
        fail(f"{where}: names no metric series: {expr}")
    for m in metrics:
        if m not in series:
            fail(f"{where}: names {m!r}, which the binary does not export (it exports {', '.join(sorted(series))})")
    known = set().union(*(series.get(m, set()) for m in metrics)) | TARGET_LABELS
    for metric, label in labels:
        allowed = (series.get(metric, set()) | TARGET_LABELS) if metric else known
        if label not in allowed:
            fail(f"{where}: label {label!r} is not on {metric or ', '.join(metrics)}")


def check_rules(rules_docs, series, work):
    groups = rules_docs[0]["spec"]["groups"]
    alerts = [r for g in groups for r in g["rules"]]
    for r in alerts:
        check_expr(f"alert {r.get('alert') or r.get('record')}", r["expr"], series)
    with open(os.path.join(work, "rules.yaml"), "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    bare = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in groups]
    with open(os.path.join(work, "rules-test.yaml"), "w") as f:
        yaml.safe_dump({"groups": bare}, f, sort_keys=False)
    return [r["alert"] for r in alerts]


def check_dashboards(dash_cms, series):
    uids = {}
    n_queries = 0
    for cm in dash_cms:
        for key, text in cm["data"].items():
            where = f"dashboard {key}"
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                fail(f"{where}: not JSON: {e}")
                continue
            uid = d.get("uid")
            stem = key.removesuffix(".json")
            if uid != stem:
                fail(f"{where}: uid {uid!r}, want the stable {stem!r}")
            if uid in uids:
                fail(f"{where}: uid {uid} also used by {uids[uid]}")
            uids[uid] = key
            variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
            ds = variables.get("datasource")
            if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
                fail(f"{where}: no Prometheus datasource variable")
            for v in variables.values():
                if v.get("type") == "query":
                    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                    check_expr(f"{where} variable {v['name']}", q, series)
            panels = [p for p in d.get("panels", []) if p.get("type") != "row"]
            if not panels:
                fail(f"{where}: no panels")
            for p in panels:
                for t in [p] + p.get("targets", []):
                    if t.get("datasource", {}).get("uid") != "${datasource}":
                        fail(f"{where}: panel {p.get('title')!r} does not use the datasource variable")
                if not p.get("targets"):
                    fail(f"{where}: panel {p.get('title')!r} has no query")
                for t in p.get("targets", []):
                    n_queries += 1
                    check_expr(f"{where} panel {p.get('title')!r}", t["expr"], series)
    return sorted(uids), n_queries


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--scrape", help="/metrics of a running binary: the series to check against")
    ap.add_argument("renders", nargs="+", help="LABEL=FILE")
    args = ap.parse_args()
    renders = dict(r.split("=", 1) for r in args.renders)
    docs = {label: load(path) for label, path in renders.items()}
    skipped = set()
    for label, ds in docs.items():
        validate_core(label, ds, skipped)
    consumers_autoscaled = [r for r in CONSUMERS if r != "metrics"]
    summary = []

    d = docs["default"]
    deps = check_deployments("default", d, ROLES)
    check_spread("default", deps, True)
    check_pdbs("default", d, deps, True)
    check_hpas("default", d, [])
    check_scaledobjects("default", d, [], False)
    check_test_hook("default", d, ROLES)
    for kind in ("ServiceMonitor", "PrometheusRule", "Ingress"):
        if by_kind(d, kind):
            fail(f"default: renders a {kind}; it is opt-in")
    if key_secrets(d):
        fail("default: renders a Secret for keys; none is configured")
    check_bus("default", d, deps, True)
    for dep in deps.values():
        if "SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT" in env_of(dep):
            fail("default: an OTLP endpoint is set though telemetry.otlpEndpoint is empty")
    check_keys_none = [r for r, dep in deps.items() if {"LLM_API_KEY", "SWITCHBOARD__QDRANT__API_KEY"} & set(env_of(dep))]
    if check_keys_none:
        fail(f"default: {check_keys_none} get keys though none is configured")

    d = docs["off"]
    deps = check_deployments("off", d, ROLES)
    check_spread("off", deps, False)
    check_pdbs("off", d, deps, False)
    check_bus("off", d, deps, False)
    n_off = len(d)

    d = docs["hpa"]
    # Every metrics replica reads every event: its work does not split, so it is never autoscaled.
    deps = check_deployments("hpa", d, ROLES, scaled=[r for r in ROLES if r != "metrics"])
    check_hpas("hpa", d, [r for r in ROLES if r != "metrics"])
    check_scaledobjects("hpa", d, [], False)

    d = docs["on"]
    # KEDA scales every consumer but metrics; the console has no consumer, so its CPU HPA stays.
    deps = check_deployments("on", d, ROLES, scaled=[r for r in ROLES if r != "metrics"])
    check_spread("on", deps, True)
    check_pdbs("on", d, deps, True)
    check_hpas("on", d, ["console"])
    check_scaledobjects("on", d, consumers_autoscaled, cpu_trigger=True)
    services = by_kind(d, "Service")
    _, dash = check_monitoring("on", d, services)
    check_ingresses("on", d, want_intake=True)
    check_keys("on", deps, (f"{FULL}-keys", "qdrant-api-key"), (f"{FULL}-keys", "llm-api-key"))
    secrets = key_secrets(d)
    if [sorted(s["data"]) for s in secrets] != [["llm-api-key", "qdrant-api-key"]]:
        fail(f"on: want one Secret with llm-api-key and qdrant-api-key, got {[s.get('data') for s in secrets]}")
    for role, dep in deps.items():
        if env_of(dep).get("SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT", {}).get("value") != "http://otel-collector.observability:4317":
            fail(f"on: {role}: SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT is not telemetry.otlpEndpoint")
    n_on = len(d)

    d = docs["existing-secrets"]
    deps = check_deployments("existing-secrets", d, ROLES)
    check_keys("existing-secrets", deps, ("my-qdrant", "api-key"), ("my-llm", "deepseek"))
    for role, dep in deps.items():
        ref = env_of(dep).get("SWITCHBOARD__AUTH__OIDC__LOGIN__CLIENT_SECRET", {}).get("valueFrom", {}).get("secretKeyRef")
        if not ref or (ref["name"], ref["key"]) != ("my-sso", "client-secret"):
            fail(f"existing-secrets: {role}: SSO client secret from {ref}, want my-sso/client-secret")
    if key_secrets(d):
        fail("existing-secrets: the chart renders a Secret though both keys name existing Secrets")

    # The alerts as the chart's default thresholds render them (no additionalLabels), which
    # ci/alerts_test.yaml expects.
    d = docs["rules"]
    rules = by_kind(d, "PrometheusRule")
    if len(rules) != 1:
        fail(f"rules: {len(rules)} PrometheusRules with monitoring.prometheusRule.enabled=true, want 1")
    series = exported_series(args.repo)
    late = []
    if args.scrape:
        # Expressions are checked against what the binary exported; its labels are read from
        # metrics.rs, as a series without samples yet (a queue never filled) shows none.
        late = check_scrape(series, scraped_series(args.scrape))
    alerts = check_rules(rules, series, args.work) if rules else []
    uids, n_queries = check_dashboards(dash, series)

    if failures:
        for f in failures:
            print(f"check-chart: FAIL: {f}", file=sys.stderr)
        sys.exit(1)
    n_objects = len({json.dumps(x, sort_keys=True) for ds in docs.values() for x in ds})
    print(f"core objects of {len(docs)} renders ({n_objects} distinct, {n_off} with every option off, {n_on} with every one on) "
          f"valid against Kubernetes {' and '.join(K8S_VERSIONS)} (strict); not in that schema, so checked by shape "
          f"only: {', '.join(sorted(skipped))}")
    source = (f"metrics.rs registers, which a running binary exports ({len(series) - len(late)} of them "
              f"from its start)" if args.scrape else "metrics.rs registers")
    print(f"{len(alerts)} alerts ({', '.join(alerts)}) and {n_queries} queries in dashboards {', '.join(uids)} "
          f"name only the {len(series)} series {source}")
    for name in late:
        print(f"{name}: registered, no series before its first event ({LATE_SERIES[name]})")


if __name__ == "__main__":
    main()
