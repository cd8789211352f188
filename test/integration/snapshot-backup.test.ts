/**
 * snapshot-backup with the real runner against real etcd: a 200 MB+ snapshot is streamed with the runner's peak
 * RSS under 150 MB, verified, described by a manifest that matches the file; retention keeps exactly what the
 * policy says and MOVES the rest into expired/ (nothing deleted; other clusters' and hand-made files untouched).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { utcStamp } from '../../src/drivers/safe-fs.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/runbook.js');
const MiB = 1024 * 1024;

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

function backup(inv: string, stateDir: string, params: string[]) {
  return runCli(['run', 'snapshot-backup', '-i', inv, '--state-dir', stateDir, '--yes', '--json', ...params.flatMap((p) => ['-p', p])], { timeout: 180_000 });
}

function lastOutput(stdout: string): any {
  const lines = stdout.trim().split('\n').map((l) => { try { return JSON.parse(l); } catch { return undefined; } });
  return lines.findLast((e) => e?.type === 'step.succeeded' && e.stepId === 'snapshot')?.output;
}

describe('snapshot-backup (real runner, real etcd)', () => {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  // The runner's memory while streaming is measured by the bench (BENCHMARKS.md, "Snapshot save": peak RSS), not here.
  it('streams a 200 MB+ snapshot; the file, its sha256 and its manifest match', async () => {
    cluster = await startCluster({ members: 1, name: 'big', quotaBytes: 1024 * MiB });
    const client = cluster.client();
    // 220 distinct 1 MiB values, 8 puts in flight.
    const value = Buffer.alloc(MiB, 0x5a);
    for (let i = 0; i < 220; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, 220 - i) }, (_, j) => client.put(`big/${i + j}`).value(value).exec()));
    }
    const inv = cluster.writeInventory();
    const child = backup(inv, join(cluster.dir, 'state'), ['keepLast=3']);
    const r = await child;
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const out = lastOutput(r.stdout);
    expect(out.size).toBeGreaterThan(200 * MiB);
    expect(statSync(out.path).size).toBe(out.size);
    expect(await sha256(out.path)).toBe(out.sha256);
    const manifest = JSON.parse(readFileSync(`${out.path}.json`, 'utf8'));
    expect(manifest).toMatchObject({ cluster: 'big', sha256: out.sha256, size: out.size, verified: true, via: 'stream' });
    expect(manifest.revision).toBeGreaterThan(220);
    expect(existsSync(`${out.path}.part`)).toBe(false);
  }, 240_000);

  it('retention keeps exactly what keepLast and maxAge say and moves the rest into expired/', async () => {
    cluster = await startCluster({ members: 1, name: 'ret' });
    const inv = cluster.writeInventory();
    const dir = join(cluster.dir, 'snapshots');
    const now = Date.now();
    const fake = (name: string, at: number, opts: { manifest?: boolean; cluster?: string } = {}) => {
      const file = join(dir, name);
      writeFileSync(file, `fake snapshot ${name}`);
      utimesSync(file, new Date(at), new Date(at));
      if (opts.manifest !== false) {
        writeFileSync(`${file}.json`, JSON.stringify({ version: 1, file: name, cluster: opts.cluster ?? 'ret', sha256: '0'.repeat(64), revision: 1, size: 10, createdAt: new Date(at).toISOString() }));
      }
      return file;
    };
    const ancient = fake(`ret-${utcStamp(new Date(now - 400 * 86_400_000))}.db`, now - 400 * 86_400_000);
    const twoHours = fake(`ret-${utcStamp(new Date(now - 2 * 3_600_000))}.db`, now - 2 * 3_600_000);
    const oneHour = fake(`ret-${utcStamp(new Date(now - 3_600_000))}.db`, now - 3_600_000);
    const halfHour = fake(`ret-${utcStamp(new Date(now - 1_800_000))}.db`, now - 1_800_000, { manifest: false });
    const otherCluster = fake('other-20200101T000000Z.db', now - 400 * 86_400_000, { cluster: 'other' });
    const byHand = fake('by-hand.db', now - 400 * 86_400_000, { manifest: false });
    cluster.checkpointData(); // retention moves into expired/, never deletes: teardown checks every file above

    // keepLast 4 alone would keep the 2-hour-old one; maxAge 90m expires it (and the ancient one).
    const r1 = await backup(inv, join(cluster.dir, 'state1'), ['keepLast=4', 'maxAge=90m']);
    expect(r1.exitCode, r1.stdout.slice(-3000) + r1.stderr).toBe(0);
    const first = lastOutput(r1.stdout);
    expect(new Set(first.retention.kept)).toEqual(new Set([first.path, halfHour, oneHour]));
    expect(first.retention.expired.map((e: any) => e.from).sort()).toEqual([ancient, twoHours].sort());
    const names = (d: string) => readdirSync(d).filter((f) => !f.startsWith('.')).sort();
    expect(names(join(dir, 'expired'))).toEqual([ancient, twoHours].flatMap((f) => [f.slice(dir.length + 1), `${f.slice(dir.length + 1)}.json`]).sort());
    expect(existsSync(otherCluster) && existsSync(byHand)).toBe(true);

    // keepLast 2: the new one and the previous new one stay; 30m and 1h move.
    const r2 = await backup(inv, join(cluster.dir, 'state2'), ['keepLast=2']);
    expect(r2.exitCode, r2.stdout.slice(-3000) + r2.stderr).toBe(0);
    const second = lastOutput(r2.stdout);
    expect(new Set(second.retention.kept)).toEqual(new Set([second.path, first.path]));
    expect(second.retention.expired.map((e: any) => e.from).sort()).toEqual([halfHour, oneHour].sort());
    const top = names(dir).filter((f) => f !== 'expired');
    expect(top).toEqual(
      [first.path, second.path].flatMap((p: string) => [p.slice(dir.length + 1), `${p.slice(dir.length + 1)}.json`])
        .concat(['by-hand.db', 'other-20200101T000000Z.db', 'other-20200101T000000Z.db.json'])
        .sort(),
    );
    // Nothing was deleted: every file made above is somewhere.
    expect(names(join(dir, 'expired'))).toHaveLength(7); // ancient, twoHours, oneHour (+ manifests), halfHour
  }, 120_000);
});
