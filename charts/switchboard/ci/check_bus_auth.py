#!/usr/bin/env python3
"""Who may publish on the bus, as the chart sets it up, on a real nats-server.

Takes a render of the chart (its default values: nats.auth and signing on) and:
  - starts nats-server with JetStream and the render's authorization block (Secret <fullname>-bus,
    key authorization.conf), the way an operator includes it;
  - starts the switchboard binary with every role, configured as the chart configures a role's pod:
    the ConfigMap's switchboard.toml and the Deployment's environment, its Secret references read
    from the render (only the addresses, the data directory and the embedder are local);
  - shows, with the NATS client for Python:
      * a client without credentials is refused;
      * a connector (nats.auth.connectorUser) publishes a CloudEvent on <prefix>.inbound.web through
        JetStream, and the roles, connected as nats.auth.user, decide it;
      * the connector is refused publishing on internal subjects, KV and the JetStream API, and
        subscribing to the pipeline's subjects and to the roles' replies;
      * a client that may publish on internal subjects but lacks the signing key (the roles' user,
        without the key) gets its message stored, and the parser rejects and counts it.
Prints one line of what it showed; exits non-zero naming the first thing that did not hold.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import nats
import yaml

WAIT = 90


def fail(why):
    print(f"check_bus_auth: FAIL: {why}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def objects(render):
    with open(render) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def bus_secret(docs):
    for d in docs:
        if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-bus"):
            return d["metadata"]["name"], {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
    fail("the render has no <fullname>-bus Secret: are nats.auth and signing on?")


def role_env(docs, secret_name, secret):
    """The intake Deployment's environment, its references to the bus Secret resolved."""
    for d in docs:
        if d["kind"] != "Deployment" or not d["metadata"]["name"].endswith("-intake"):
            continue
        env = {}
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
                continue
            ref = e["valueFrom"]["secretKeyRef"]
            if ref["name"] != secret_name:
                fail(f"{e['name']} comes from Secret {ref['name']}, which this check does not have")
            env[e["name"]] = secret[ref["key"]]
        return env
    fail("the render has no intake Deployment")


def config_text(docs):
    for d in docs:
        if d["kind"] == "ConfigMap" and "switchboard.toml" in d.get("data", {}):
            return d["data"]["switchboard.toml"]
    fail("the render has no ConfigMap with switchboard.toml")


def wait_for(what, check, seconds=WAIT):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if check():
            return
        time.sleep(0.3)
    fail(f"{what} within {seconds} s")


def metric(addr, name, **labels):
    """The sum of the series of `name` whose labels include `labels`."""
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def probe(url, stream, prefix, users, passwords, addr):
    (roles_user, connector_user) = users
    (roles_password, connector_password) = passwords

    async def quiet(_):
        pass

    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=quiet)
        await nc.close()
        fail("a client without credentials was let in")
    except Exception as e:  # nats-py raises the server's -ERR as a plain Error
        if "authorization violation" not in str(e).lower():
            fail(f"a client without credentials failed otherwise than refused: {e!r}")

    errors = []

    async def collect(e):
        errors.append(str(e))

    connector = await nats.connect(
        url, user=connector_user, password=connector_password, error_cb=collect, allow_reconnect=False
    )
    event = {
        "specversion": "1.0",
        "id": "check-bus-auth-1",
        "source": "check-chart",
        "type": "ticket.created",
        "data": {"text": "I cannot log in although my password is right"},
    }
    ack = await connector.jetstream().publish(f"{prefix}.inbound.web", json.dumps(event).encode(), timeout=10)
    if ack.stream != stream:
        fail(f"the connector's event was stored in stream {ack.stream}, not {stream}")
    await asyncio.to_thread(
        wait_for, "the connector's ticket decided", lambda: metric(addr, "switchboard_decisions_total") >= 1
    )

    forbidden = [f"{prefix}.received", f"{prefix}.routed", f"{prefix}.feedback.corrected",
                 "$KV.switchboard_accounts.admin", f"$JS.API.STREAM.INFO.{stream}"]
    for subject in forbidden:
        await connector.publish(subject, b"forged")
    for subject in [f"{prefix}.>", "_SWITCHBOARD_INBOX.>"]:
        await connector.subscribe(subject)
    await connector.flush()
    deadline = time.monotonic() + 10
    want = [f'publish to "{s}"'.lower() for s in forbidden] + [
        f'subscription to "{s}"'.lower() for s in [f"{prefix}.>", "_SWITCHBOARD_INBOX.>"]
    ]
    while time.monotonic() < deadline and not all(any(w in e.lower() for e in errors) for w in want):
        await asyncio.sleep(0.2)
    missing = [w for w in want if not any(w in e.lower() for e in errors)]
    if missing:
        fail(f"the connector was not refused: {missing}; the server said {errors}")
    await connector.close()

    # The roles' user without the signing key: the server stores it, the parser rejects it.
    insider = await nats.connect(
        url, user=roles_user, password=roles_password, inbox_prefix=b"_SWITCHBOARD_INBOX", allow_reconnect=False
    )
    await insider.jetstream().publish(f"{prefix}.received", b"forged by a client without the key", timeout=10)
    await insider.close()
    await asyncio.to_thread(
        wait_for,
        "the parser's rejection of the unsigned message counted",
        lambda: metric(addr, "switchboard_messages_total", role="parser", outcome="rejected") == 1,
    )
    return len(forbidden)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--render", required=True)
    p.add_argument("--binary", required=True)
    p.add_argument("--nats-server", required=True)
    p.add_argument("--work", required=True)
    args = p.parse_args()

    docs = objects(args.render)
    secret_name, secret = bus_secret(docs)
    env = role_env(docs, secret_name, secret)
    users = re.findall(r'^\s*user: "([^"]+)"', secret["authorization.conf"], re.M)
    if len(users) != 2:
        fail(f"authorization.conf names users {users}, want the roles' and the connectors'")
    prefix, stream = env["SWITCHBOARD__SUBJECT_PREFIX"], env["SWITCHBOARD__BUS__NATS__STREAM"]
    if users[0] != env.get("SWITCHBOARD__BUS__NATS__USER"):
        fail(f"the pods connect as {env.get('SWITCHBOARD__BUS__NATS__USER')}, the server knows the roles as {users[0]}")

    work = tempfile.mkdtemp(dir=args.work, prefix="bus-auth-")
    with open(os.path.join(work, "authorization.conf"), "w") as f:
        f.write(secret["authorization.conf"])
    port = free_port()
    with open(os.path.join(work, "nats.conf"), "w") as f:
        f.write(f'listen: 127.0.0.1:{port}\njetstream {{ store_dir: "{work}/js" }}\ninclude "authorization.conf"\n')
    with open(os.path.join(work, "switchboard.toml"), "w") as f:
        f.write(config_text(docs))
    url = f"nats://127.0.0.1:{port}"

    procs = []
    try:
        server_log = open(os.path.join(work, "nats.log"), "w")
        procs.append(subprocess.Popen([args.nats_server, "-c", os.path.join(work, "nats.conf")],
                                      stdout=server_log, stderr=subprocess.STDOUT))

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for("nats-server listening", listening, 20)

        env.update({
            "SWITCHBOARD__BUS__NATS__URL": url,
            "SWITCHBOARD__DATA_DIR": os.path.join(work, "data"),
            "SWITCHBOARD__HTTP__ADDR": "127.0.0.1:0",
            "SWITCHBOARD__GRPC__ADDR": "127.0.0.1:0",
            "SWITCHBOARD__QDRANT__URL": "",
            "SWITCHBOARD__EMBEDDER__KIND": "none",
            "SWITCHBOARD__AUTH__OPEN_METRICS": "true",
            "SWITCHBOARD__TELEMETRY__LOG_FORMAT": "json",
        })
        env.pop("SWITCHBOARD__TELEMETRY__OTLP_ENDPOINT", None)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD") and k != "RUST_LOG"}
        child_env.update(env)
        log_path = os.path.join(work, "switchboard.log")
        log = open(log_path, "w")
        procs.append(subprocess.Popen([args.binary, "run", "--config", os.path.join(work, "switchboard.toml")],
                                      env=child_env, stdout=subprocess.DEVNULL, stderr=log))
        addr = []

        def started():
            if procs[-1].poll() is not None:
                fail(f"switchboard run exited: {open(log_path).read()[-3000:]}")
            for line in open(log_path):
                found = re.search(r'"http_addr":"([^"]+)"', line) if '"switchboard started"' in line else None
                if found:
                    addr.append(found.group(1))
                    return True
            return False

        wait_for("switchboard run started on the chart's NATS users", started, 180)
        n_forbidden = asyncio.run(probe(url, stream, prefix, users, (env["SWITCHBOARD__BUS__NATS__PASSWORD"],
                                                                      secret["nats-connector-password"]), addr[0]))
        # The server logs every refusal with the user: all of them must be the connector's, none a
        # role's (a subject the roles need and the block forgot).
        refused = [line.strip() for line in open(os.path.join(work, "nats.log")) if "Violation" in line]
        by_roles = [line for line in refused if f'User "{users[0]}"' in line]
        if by_roles:
            fail(f"the server refused the roles' user: {by_roles[:3]}")
        if not any(f'User "{users[1]}"' in line for line in refused):
            fail(f"the server's log names no refusal of {users[1]}: {refused[:3]}")
        version = subprocess.run([args.nats_server, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"bus permissions: {version} with the chart's authorization.conf refused a client without "
              f"credentials; a connector's CloudEvent on {prefix}.inbound.web was decided by every role connected "
              f"as {users[0]} with the signing key, and the server refused them nothing; {users[1]} was refused publishing on {n_forbidden} internal, "
              f"KV and JetStream API subjects and subscribing to {prefix}.> and the roles' replies; a message on "
              f"{prefix}.received from a client without the key was stored by the server and rejected and "
              f"counted by the parser")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
