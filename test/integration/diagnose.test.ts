/**
 * `runbook diagnose` against real clusters: healthy (exit 0), NOSPACE (alarm, usage over the quota, fragmentation,
 * nospace-recovery recommended, exit 6), compaction read back, members down (member-replacement, then no quorum →
 * power-loss-restore), and TLS certificates: near expiry (warning) and expired (critical, with the fix named).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/output.ts';
import type { Diagnosis } from '../../src/diagnose/types.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';

const clusters: TestCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.teardown()));
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_') && !k.startsWith('RUNBOOK_')) env[k] = v;
  const io: Io = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), isTTY: false, color: false, env, cwd: process.cwd() };
  const code = await main(['diagnose', ...args], io);
  return { code, out, err };
}

async function diagnoseJson(args: string[]): Promise<{ code: number; d: Diagnosis }> {
  const r = await run([...args, '--json']);
  try {
    return { code: r.code, d: JSON.parse(r.out) as Diagnosis };
  } catch {
    throw new Error(`diagnose --json did not print JSON (exit ${r.code}):\n${r.out}\n${r.err}`);
  }
}

const codes = (d: Diagnosis, severity?: string) => d.findings.filter((f) => !severity || f.severity === severity).map((f) => f.code);

/** A 3-member cluster of the test's own (torn down after the file), with its inventory. */
async function ownCluster(): Promise<{ cluster: TestCluster; inv: string }> {
  const cluster = await startCluster({ members: 3 });
  clusters.push(cluster);
  return { cluster, inv: cluster.writeInventory() };
}

/**
 * A fresh 3-member cluster filled until a member's db is over the quota: etcd refuses a write once size + request
 * would pass the quota, size as of the last backend commit, so the db ends anywhere from just under the quota to
 * well over it. Fresh clusters are filled until one is over it (3 tries); the last one is returned either way.
 */
async function overQuotaCluster(): Promise<{ cluster: TestCluster; inv: string; code: number; d: Diagnosis }> {
  let last!: { cluster: TestCluster; inv: string; code: number; d: Diagnosis };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const { cluster, inv } = await ownCluster();
    await cluster.fillToNospace();
    const { code, d } = await diagnoseJson(['-i', inv]);
    last = { cluster, inv, code, d };
    if (d.members.some((m) => (m.usage ?? 0) > 1)) break;
  }
  return last;
}

// Each test starts a cluster of its own and brings it where it needs it (NOSPACE, members down): any order passes.
describe('diagnose on a 3-member cluster', () => {
  it('healthy: exit 0, every member with its numbers, quota from the inventory, auto-compaction off noticed', async () => {
    const { cluster, inv } = await ownCluster();
    const { code, d } = await diagnoseJson(['-i', inv]);
    expect(code).toBe(0);
    expect(d.status).not.toBe('critical');
    expect(codes(d, 'critical')).toEqual([]);
    expect(d.recommendations).toEqual([]);
    expect(d.alarms).toEqual([]);
    expect(d.leader?.name).toMatch(/^m[123]$/);
    expect(d.raftTerm).toBeGreaterThan(0);
    expect(d.compactRevision).toBe(0);
    expect(d.members).toHaveLength(3);
    for (const m of d.members) {
      expect(m).toMatchObject({ reachable: true, quotaBytes: cluster.quotaBytes, quotaSource: 'member /metrics', version: expect.stringMatching(/^3\./), autoCompactionDisabled: true });
      expect(m.flags?.from).toMatch(/^argv of pid \d+$/);
      expect(m.flags?.quotaBackendBytes).toBe(String(cluster.quotaBytes));
    }
    expect(codes(d)).toContain('auto-compaction-off');

    // The same read through --endpoints (no inventory, no flags): the quota still comes from the members.
    const e = await diagnoseJson(['--endpoints', cluster.endpoints.join(',')]);
    expect(e.code).toBe(0);
    expect(e.d.members.every((m) => m.reachable && m.quotaBytes === cluster.quotaBytes && m.quotaSource === 'member /metrics' && m.autoCompactionDisabled === null)).toBe(true);

    // Fallbacks, named as such, when /metrics cannot be read (a metricsURL where nothing listens): the inventory's
    // quotaBytes, else the member's own --quota-backend-bytes.
    const blind = cluster.inventory().members.map((m) => ({ ...m, metricsURL: 'http://127.0.0.1:9' }));
    const inv2 = cluster.writeInventory(join(cluster.dir, 'no-metrics.yaml'), { members: blind });
    const i2 = await diagnoseJson(['-i', inv2]);
    expect(i2.d.members.map((m) => [m.quotaBytes, m.quotaSource])).toEqual(Array(3).fill([cluster.quotaBytes, 'inventory']));
    const noQuota = cluster.writeInventory(join(cluster.dir, 'no-quota.yaml'), { quotaBytes: undefined, members: blind });
    const q = await diagnoseJson(['-i', noQuota]);
    expect(q.d.members.map((m) => [m.quotaBytes, m.quotaSource])).toEqual(Array(3).fill([cluster.quotaBytes, 'member flag --quota-backend-bytes']));

    // An inventory quota the members do not run with: a warning naming both, the members' value used.
    const stale = cluster.writeInventory(join(cluster.dir, 'stale-quota.yaml'), { quotaBytes: 4 * cluster.quotaBytes });
    const st = await diagnoseJson(['-i', stale]);
    expect(st.d.members.every((m) => m.quotaBytes === cluster.quotaBytes && m.quotaSource === 'member /metrics')).toBe(true);
    expect(st.d.findings).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'quota-mismatch', message: expect.stringMatching(/inventory says quotaBytes 64\.0 MiB but the members run with 16\.0 MiB/) }));
  }, 120_000);

  it('NOSPACE: the alarm, usage above the quota, fragmentation, nospace-recovery with the exact command; exit 6', async () => {
    const { inv, code, d } = await overQuotaCluster();
    expect(code).toBe(6);
    expect(d.status).toBe('critical');
    expect(d.alarms.map((a) => a.alarm)).toContain('NOSPACE');
    expect(codes(d, 'critical')).toContain('nospace-alarm');
    expect(Math.max(...d.members.map((m) => m.usage!))).toBeGreaterThan(1);
    for (const m of d.members) {
      expect(m.fragmentation).toBeGreaterThanOrEqual(0);
      expect(m.fragmentation).toBeLessThan(1);
      expect(m.dbSizeInUse).toBeLessThanOrEqual(m.dbSize!);
    }
    expect(d.recommendations[0]).toMatchObject({ runbook: 'nospace-recovery', command: `runbook run nospace-recovery -i ${inv}`, plan: `runbook plan nospace-recovery -i ${inv}` });

    const text = await run(['-i', inv]);
    expect(text.code).toBe(6);
    expect(text.out).toMatch(/: CRITICAL/);
    expect(text.out).toMatch(/✗ critical {2}NOSPACE alarm on m\d/);
    expect(text.out).toMatch(/m\d +(leader|follower) +\d+\.\d MiB +\d+\.\d MiB +\d+% +16\.0 MiB \(member \/metrics\) +1\d\d%/);
    expect(text.out).toContain(`runbook run nospace-recovery -i ${inv}`);
  }, 180_000);

  it('--endpoints on a 24 MiB-quota cluster in NOSPACE: diagnose and plan use the quota the members report (not 2 GiB)', async () => {
    const small = await startCluster({ members: 3, quotaBytes: 24 * 1024 * 1024, name: 'q24' });
    clusters.push(small);
    await small.fillToNospace();
    const endpoints = small.endpoints.join(',');
    const { d } = await diagnoseJson(['--endpoints', endpoints]);
    expect(d.alarms.map((a) => a.alarm)).toContain('NOSPACE');
    expect(d.members.map((m) => [m.quotaBytes, m.quotaSource])).toEqual(Array(3).fill([24 * 1024 * 1024, 'member /metrics']));
    expect(Math.max(...d.members.map((m) => m.usage!))).toBeGreaterThanOrEqual(0.95);
    const text = await run(['--endpoints', endpoints]);
    expect(text.out).toMatch(/24\.0 MiB \(member \/metrics\) +(9[5-9]|1\d\d)%/);

    const plan = await execa(process.execPath, [join(import.meta.dirname, '../../bin/runbook.js'), 'plan', 'nospace-recovery', '--endpoints', endpoints, '--state-dir', join(small.dir, 'plan-state')], { reject: false, env: { NO_COLOR: '1' } });
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/preflight: .*db sizes: .*\((9[5-9]|1\d\d)%\).*; quota 24\.0 MiB \(member \/metrics\)/);
    expect(plan.stdout).toMatch(/below 95% of the quota of 24\.0 MiB \(member \/metrics\) \(now: .*\((9[5-9]|1\d\d)%\)/);
    expect(plan.stdout).not.toMatch(/2\.0 GiB/);
  }, 120_000);

  it('reads the compact revision back and reports the gap', async () => {
    const { cluster, inv } = await ownCluster();
    const client = cluster.client();
    for (let i = 0; i < 10; i++) await client.put(`runbook-test/rev/${i}`).value(String(i)).exec();
    const { header } = await client.get('anything').exec();
    const revision = Number(header.revision);
    await client.kv.compact({ revision: revision - 3, physical: true }).catch((err: Error) => {
      if (!/compacted/.test(err.message)) throw err;
    });
    const { d } = await diagnoseJson(['-i', inv]);
    expect(d.compactRevision).toBe(revision - 3);
    expect(d.compactionGap).toBe(d.revision! - (revision - 3));
  }, 60_000);

  it('a member down: member-replacement for it; two down: no quorum, power-loss-restore', async () => {
    // On a cluster in NOSPACE: nospace-recovery comes first, with the member down allowed.
    const { cluster, inv } = await ownCluster();
    await cluster.fillToNospace();
    const [, second, third] = cluster.members.map((m) => m.name) as [string, string, string];
    await cluster.kill(third);
    const one = await diagnoseJson(['-i', inv, '--timeout', '2s']);
    expect(one.code).toBe(6);
    expect(one.d.members.find((m) => m.name === third)).toMatchObject({ reachable: false, error: expect.any(String) });
    expect(one.d.findings).toContainEqual(expect.objectContaining({ severity: 'critical', code: 'member-down', member: third }));
    expect(one.d.recommendations.map((r) => r.runbook)).toEqual(['nospace-recovery', 'member-replacement']);
    expect(one.d.recommendations[0]!.command).toBe(`runbook run nospace-recovery -i ${inv} -p allowUnreachable=true`);
    expect(one.d.recommendations[1]!.command).toBe(`runbook run member-replacement -i ${inv} -p member=${third}`);

    await cluster.kill(second);
    const two = await diagnoseJson(['-i', inv, '--timeout', '2s']);
    expect(two.code).toBe(6);
    expect(codes(two.d, 'critical')).toContain('no-quorum');
    expect(two.d.recommendations.map((r) => r.runbook)).toEqual(['power-loss-restore']);
    expect(two.d.recommendations[0]!.command).toBe(`runbook run power-loss-restore -i ${inv}`);
  }, 120_000);
});

/** A client certificate signed by the cluster's CA that expired in 2020 (openssl ca with explicit dates). */
async function expiredClientCert(tlsDir: string): Promise<{ cert: string; key: string }> {
  const dir = join(tlsDir, 'expired');
  mkdirSync(join(dir, 'db'), { recursive: true });
  writeFileSync(join(dir, 'db', 'index.txt'), '');
  writeFileSync(join(dir, 'db', 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca = test\n[test]\ndatabase = ${dir}/db/index.txt\nnew_certs_dir = ${dir}/db\nserial = ${dir}/db/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n[ext]\nextendedKeyUsage = clientAuth\nkeyUsage = digitalSignature\n`,
  );
  const key = join(dir, 'client.key');
  const csr = join(dir, 'client.csr');
  const cert = join(dir, 'client.crt');
  await execa('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=root'], { stdin: 'ignore' });
  await execa('openssl', [
    'ca', '-batch', '-config', join(dir, 'ca.cnf'), '-cert', join(tlsDir, 'ca.crt'), '-keyfile', join(tlsDir, 'ca.key'), '-in', csr, '-out', cert,
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extensions', 'ext', '-notext',
  ], { stdin: 'ignore' });
  return { cert, key };
}

describe('diagnose and TLS certificates', () => {
  it('flags certificates expiring within 30 days (warning, exit 0) and an expired client certificate (critical, renew it)', async () => {
    const cluster = await startCluster({ members: 1, tls: true });
    clusters.push(cluster);
    const inv = cluster.writeInventory();
    const ok = await diagnoseJson(['-i', inv]);
    expect(ok.code).toBe(0);
    expect(ok.d.members[0]).toMatchObject({ reachable: true });
    // The test certificates are valid for 2 days: client cert, CA (client config and --trusted-ca-file: one entry), server cert.
    const roles = ok.d.certificates.map((c) => c.role);
    expect(roles).toEqual(expect.arrayContaining(['client cert', 'm1 server cert (--cert-file)', expect.stringMatching(/^CA \(client config\), m1 client CA \(--trusted-ca-file\)$/)]));
    expect(ok.d.certificates.every((c) => c.status === 'expiring' && c.daysLeft! <= 2 && c.daysLeft! >= 0)).toBe(true);
    expect(codes(ok.d, 'warning').filter((c) => c === 'cert-expiring')).toHaveLength(3);

    const expired = await expiredClientCert(join(cluster.dir, 'tls'));
    const badInv = cluster.writeInventory(join(cluster.dir, 'expired.yaml'), { tls: { ...cluster.tls!, cert: expired.cert, key: expired.key } });
    const bad = await diagnoseJson(['-i', badInv, '--timeout', '3s']);
    expect(bad.code).toBe(6);
    const client = bad.d.certificates.find((c) => c.role === 'client cert')!;
    expect(client).toMatchObject({ status: 'expired', path: expired.cert, notAfter: '2020-01-02T00:00:00.000Z' });
    expect(bad.d.findings).toContainEqual(expect.objectContaining({ severity: 'critical', code: 'cert-expired', message: expect.stringContaining(expired.cert) }));
    // The member refuses the handshake; the fix is the certificate, not a restore.
    expect(bad.d.recommendations).toHaveLength(1);
    expect(bad.d.recommendations[0]!.runbook).toBeUndefined();
    expect(bad.d.recommendations[0]!.reason).toMatch(/renew/);
    const text = await run(['-i', badInv, '--timeout', '3s']);
    expect(text.out).toMatch(/✗ client cert: .*client\.crt — expired 2020-01-02/);
  }, 120_000);
});
