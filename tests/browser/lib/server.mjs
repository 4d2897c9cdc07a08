// Starts the real switchboard binary on the embedded default for a browser test: a fresh data
// directory, free ports, the demo history imported, and the admin's one-time password read from
// its output, as a person running scripts/demo.sh would see it.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../../..');

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The binary's environment: its data directory and listeners, and the model under the checkout. */
async function environment(dataDir) {
  return {
    ...process.env,
    SWITCHBOARD__DATA_DIR: dataDir,
    SWITCHBOARD__HTTP__ADDR: `127.0.0.1:${await freePort()}`,
    SWITCHBOARD__GRPC__ADDR: `127.0.0.1:${await freePort()}`,
    SWITCHBOARD__EMBEDDER__MODEL_DIR: path.join(ROOT, 'models/use-multilingual'),
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
}

/**
 * Imports the demo history, department descriptions and policies into a fresh data directory and serves every role until `stop()`;
 * `settings` are more SWITCHBOARD__ variables for both.
 */
export async function start({ binary = process.env.SWITCHBOARD_BIN ?? path.join(ROOT, 'target/debug/switchboard'), settings = {} } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'switchboard-browser-'));
  const env = { ...(await environment(dataDir)), ...settings };
  execFileSync(binary, ['import', 'deploy/demo/history.csv', '--id-column', 'id', '--created-at-column', 'created_at',
    '--resolved-at-column', 'resolved_at', '--problem-type-column', 'problem_type'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(binary, ['departments', 'import', 'deploy/demo/departments.csv'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(binary, ['docs', 'import', 'deploy/demo/policies/device-repairs.md', 'deploy/demo/policies/account-security.md',
    'deploy/demo/policies/housing-fund.txt'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const child = spawn(binary, ['run'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const base = `http://${env.SWITCHBOARD__HTTP__ADDR}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`switchboard run exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`switchboard was not ready within 120 s:\n${output}`);
    const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const password = output.match(/one-time password (\S+)/)?.[1];
  if (!password) throw new Error(`no one-time admin password in the output:\n${output}`);
  return {
    base,
    password,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A small JSON client for what the test does beside the browser (submitting tickets as a connector). */
export function client(base, token) {
  return async function call(pathname, { method = 'GET', body } = {}) {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${base}${pathname}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/** Logs in over the API and returns a client holding the session token. */
export async function login(base, name, password) {
  const response = await fetch(`${base}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });
  if (!response.ok) throw new Error(`login ${name}: ${response.status} ${await response.text()}`);
  return client(base, (await response.json()).token);
}
