// Starts a forge on a free port over the test store (FORGE_TEST_MONGODB_URI, a fresh database
// per run) and a headless Chromium to drive it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const artifacts = join(root, 'artifacts');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function startForge(label) {
  const uri = process.env.FORGE_TEST_MONGODB_URI;
  if (!uri) throw new Error('FORGE_TEST_MONGODB_URI is unset: run scripts/test');
  const port = await freePort();
  const bin = process.env.FORGE_BIN || join(root, 'target', 'debug', 'forge');
  const data = mkdtempSync(join(tmpdir(), 'forge-e2e-'));
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      FORGE_MONGODB_URI: uri,
      FORGE_DB_NAME: `e2e_${label}_${process.pid}_${Date.now()}`,
      FORGE_BIND: `127.0.0.1:${port}`,
      FORGE_DATA_DIR: data,
      FORGE_LOG: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('forge did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }) };
}

export async function launchBrowser() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
