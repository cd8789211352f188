import { describe, expect, it } from 'vitest';
import { mayApprove, mayRun } from '../../../src/chatops/access.ts';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlertRouter, type Notification } from '../../../src/chatops/alerts.ts';
import { FileChatopsState } from '../../../src/store/chatops-state-file.ts';
import type { ChatopsConfig } from '../../../src/chatops/config.ts';

const cfg: ChatopsConfig = {
  file: '/x/chatops.yaml',
  listen: { host: '127.0.0.1', port: 8080 },
  stateDir: '/tmp/state',
  secrets: {},
  clusters: { prod: { inventory: '/x/prod.yaml', approvers: ['U2'] }, dev: { inventory: '/x/dev.yaml' } },
  runbooks: {
    'nospace-recovery': { users: ['U1', 'slack:U2', 'U3'], channels: ['C1'], approvers: ['U1', 'U2', 'U3'], autoRun: false },
    'member-replacement': { users: ['U1'], channels: ['C1'], approvers: ['U2'], clusters: ['dev'], autoRun: false },
  },
  alerts: { etcdNoSpace: { runbook: 'nospace-recovery', clusterLabel: 'cluster', params: {} } },
  cooldownMs: 60_000,
  approvalTimeoutMs: 60_000,
  limits: { maxBodyBytes: 65536, requestTimeoutMs: 10_000, maxConcurrentRuns: 4, maxParamValueLength: 256, maxConnections: 256 },
};

const slack = (id: string) => ({ platform: 'slack' as const, id });

describe('allowlists', () => {
  it('checks runbook, cluster, user and channel', () => {
    expect(mayRun(cfg, 'nospace-recovery', 'prod', slack('U1'), 'C1')).toEqual({ ok: true });
    expect(mayRun(cfg, 'nospace-recovery', 'prod', slack('U2'), 'C1')).toEqual({ ok: true });
    expect(mayRun(cfg, 'nospace-recovery', 'prod', { platform: 'mattermost', id: 'U2' }, 'C1').ok).toBe(false);
    expect(mayRun(cfg, 'nospace-recovery', 'prod', slack('U9'), 'C1').ok).toBe(false);
    expect(mayRun(cfg, 'nospace-recovery', 'prod', slack('U1'), 'C9').ok).toBe(false);
    expect(mayRun(cfg, 'nospace-recovery', 'qa', slack('U1'), 'C1').ok).toBe(false);
    expect(mayRun(cfg, 'power-loss-restore', 'prod', slack('U1'), 'C1').ok).toBe(false);
    expect(mayRun(cfg, 'member-replacement', 'prod', slack('U1'), 'C1').ok).toBe(false);
    expect(mayRun(cfg, 'member-replacement', 'dev', slack('U1'), 'C1').ok).toBe(true);
    expect(mayRun(cfg, 'constructor', 'prod', slack('U1'), 'C1').ok).toBe(false);
  });

  it('an approver is on both lists and is not the requester', () => {
    expect(mayApprove(cfg, 'nospace-recovery', 'prod', slack('U2'), 'slack:U1')).toEqual({ ok: true });
    expect(mayApprove(cfg, 'nospace-recovery', 'prod', slack('U2'), 'slack:U2')).toMatchObject({ ok: false, reason: expect.stringMatching(/another approver/) });
    // U3 approves the runbook but not on prod (the cluster narrows the list)
    expect(mayApprove(cfg, 'nospace-recovery', 'prod', slack('U3'), 'slack:U1').ok).toBe(false);
    expect(mayApprove(cfg, 'nospace-recovery', 'dev', slack('U3'), 'slack:U1').ok).toBe(true);
    expect(mayApprove(cfg, 'nospace-recovery', 'dev', slack('U3'), 'alertmanager:etcdNoSpace').ok).toBe(true);
  });
});

describe('AlertRouter', () => {
  const alert = (over: Partial<Notification['alerts'][number]> = {}) => ({
    status: 'firing', labels: { alertname: 'etcdNoSpace', cluster: 'prod' }, startsAt: '2026-01-01T00:00:00Z', fingerprint: 'f1', ...over,
  });
  const note = (alerts: Notification['alerts'], groupKey = 'g1'): Notification => ({ groupKey, status: 'firing', alerts });

  it('takes an alert once per groupKey+fingerprint+startsAt and once per cluster per cooldown', async () => {
    const r = new AlertRouter(cfg);
    expect((await r.route(note([alert()]), 0)).map((o) => o.outcome)).toEqual(['start']);
    expect((await r.route(note([alert()]), 1000)).map((o) => o.outcome)).toEqual(['duplicate']);
    expect((await r.route(note([alert({ startsAt: '2026-01-01T00:05:00Z' })]), 2000)).map((o) => o.outcome)).toEqual(['cooldown']);
    expect((await r.route(note([alert({ startsAt: '2026-01-01T00:06:00Z' })]), 61_000)).map((o) => o.outcome)).toEqual(['start']);
    expect((await r.route(note([alert({ labels: { alertname: 'etcdNoSpace', cluster: 'dev' }, fingerprint: 'f2' })]), 61_000)).map((o) => o.outcome)).toEqual(['start']);
  });

  it('skips resolved, unmapped, unlabelled and unknown-cluster alerts', async () => {
    const r = new AlertRouter(cfg);
    const out = await r.route(note([
      alert({ status: 'resolved' }),
      alert({ labels: { alertname: 'Other', cluster: 'prod' } }),
      alert({ labels: { alertname: 'etcdNoSpace' }, fingerprint: 'x1' }),
      alert({ labels: { alertname: 'etcdNoSpace', cluster: 'qa' }, fingerprint: 'x2' }),
      alert({ labels: { alertname: 'toString', cluster: 'prod' }, fingerprint: 'x3' }),
    ]), 0);
    expect(out.map((o) => o.outcome)).toEqual(['resolved', 'unmapped', 'no-cluster', 'unknown-cluster', 'unmapped']);
  });

  it('keeps dedupe and cooldown in the state dir: a new router (a restarted serve) on the same dir remembers both', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-alerts-'));
    try {
      expect((await new AlertRouter(cfg, new FileChatopsState(dir)).route(note([alert()]), 0)).map((o) => o.outcome)).toEqual(['start']);
      const restarted = new AlertRouter(cfg, new FileChatopsState(dir));
      expect((await restarted.route(note([alert()]), 1000)).map((o) => o.outcome)).toEqual(['duplicate']);
      expect((await restarted.route(note([alert({ startsAt: '2026-01-01T00:05:00Z' })]), 2000)).map((o) => o.outcome)).toEqual(['cooldown']);
      // past the cooldown (60 s in this config) the expired claim is taken again
      expect((await new AlertRouter(cfg, new FileChatopsState(dir)).route(note([alert({ startsAt: '2026-01-01T00:06:00Z' })]), 61_000)).map((o) => o.outcome)).toEqual(['start']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
