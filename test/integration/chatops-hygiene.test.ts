/**
 * `runbook serve` as an HTTP server on 127.0.0.1 (no etcd, no chat): limits that hold (a slow client is cut off
 * near its request timeout, not 30+ s later; connections past the cap are closed), HEAD on /metrics and /healthz,
 * and metrics by Prometheus conventions (build info, process metrics, a started counter apart from the outcomes).
 * Each request loop here is bounded (a handful of sockets) and stops by itself.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChatopsConfig, resolveSecrets } from '../../src/chatops/config.ts';
import { createMetrics } from '../../src/chatops/metrics.ts';
import { ROUTES, startChatopsServer, type ChatopsServer } from '../../src/chatops/server.ts';
import type { JournalRecord } from '../../src/events/types.ts';
import { VERSION } from '../../src/cli/version.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
let dir = '';
let server: ChatopsServer;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-hygiene-'));
  fs.writeFileSync(path.join(dir, 'cluster.yaml'), 'name: smoke\nmembers:\n  - { name: m1, clientURL: "http://127.0.0.1:1", peerURL: "http://127.0.0.1:2", driver: { type: none } }\n');
  const file = path.join(dir, 'chatops.yaml');
  fs.writeFileSync(file, `
listen: 127.0.0.1:0
stateDir: ./state
secrets:
  alertmanagerToken: { env: AM_TOKEN }
clusters:
  smoke: ./cluster.yaml
runbooks:
  chatops-smoke:
    file: ${path.join(REPO, 'test/fixtures/valid/chatops-smoke.yaml')}
    users: [U1]
    channels: [C1]
limits:
  requestTimeout: 500ms
  maxConnections: 3
`);
  const env = { AM_TOKEN: 'am-token-3f9a1c7e5b2d4f6a' };
  const config = loadChatopsConfig(file, env);
  server = await startChatopsServer({ config, secrets: resolveSecrets(config, env), version: VERSION, log: () => {} });
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
/** Resolves with what the server sent before it closed the connection; rejects if it is still open after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    s.on('data', (d) => { got += d.toString(); });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`still open after ${ms} ms`));
    }, ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(got);
    });
    s.once('error', () => {});
  });
}

describe('limits that hold', () => {
  it('a client that sends its headers slowly is cut off near the request timeout (500 ms), not after Node\'s 30 s check interval', async () => {
    const s = await connect();
    s.write('POST /alertmanager HTTP/1.1\r\nHost: x\r\n');
    // Trickle a header byte now and then, as a slowloris client does; the server must not wait for the rest.
    const drip = setInterval(() => { if (!s.destroyed) s.write('X'); }, 100);
    try {
      const answer = await closedWithin(s, 10_000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    } finally {
      clearInterval(drip);
    }
  });

  it('connections past maxConnections (3) are closed at once; the server still answers once one is free', async () => {
    const held = [await connect(), await connect(), await connect()];
    try {
      const extra = await connect();
      const answer = await closedWithin(extra, 5_000);
      expect(answer).toBe('');
    } finally {
      for (const h of held) h.destroy();
    }
    // The held ones are gone: a normal request works again (poll: the server learns of the closes asynchronously).
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await fetch(`${server.url}${ROUTES.healthz}`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });
});

describe('metrics', () => {
  it('HEAD /metrics and /healthz answer like GET without a body', async () => {
    for (const route of [ROUTES.metrics, ROUTES.healthz]) {
      const head = await fetch(`${server.url}${route}`, { method: 'HEAD' });
      expect(head.status, route).toBe(200);
      expect(head.headers.get('content-type')).toBe((await fetch(`${server.url}${route}`)).headers.get('content-type'));
      expect(await head.text()).toBe('');
    }
  });

  it('build info, process metrics, and a started counter apart from the outcomes', async () => {
    const text = await (await fetch(`${server.url}${ROUTES.metrics}`)).text();
    expect(text).toMatch(new RegExp(`runbook_build_info\\{version="${VERSION.replace(/\./g, '\\.')}",node_version="${process.versions.node.replace(/\./g, '\\.')}"\\} 1`));
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/# TYPE runbook_runs_started_total counter/);

    // One run that starts and ends: one start, one outcome; sum(runbook_runs_total) counts it once.
    const m = createMetrics();
    m.started.inc({ runbook: 'r', how: 'new' });
    m.observe('r', { type: 'run.finished', status: 'succeeded', durationMs: 1, seq: 9, ts: new Date().toISOString(), runId: 'x' } as JournalRecord);
    const total = (await m.registry.getSingleMetric('runbook_runs_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    const started = (await m.registry.getSingleMetric('runbook_runs_started_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    expect({ total, started }).toEqual({ total: 1, started: 1 });
  });
});
