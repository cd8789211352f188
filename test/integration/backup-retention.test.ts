/**
 * Local retention of the continuous backups on a real stream (the real CLI, a real 3-member cluster under
 * writes): with a full snapshot every 2 s and `--keep-chains 2`, older chains (full snapshot + the segments that
 * only lead up to the next one) are moved into `<dir>/expired/<time>/`, never deleted (every sealed file seen while
 * the stream ran is found again, byte for byte, in place or there); what stays is one contiguous chain from the oldest kept snapshot, so a
 * point after it can still be planned for restore and a point before it is refused, not faked.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { catalog } from '../../src/backup/chain.ts';
import { listSegments } from '../../src/backup/segments.ts';
import { readLog, readStatus } from '../../src/backup/status.ts';
import { listSnapshots } from '../../src/snapshot/list.ts';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { poll } from '../support/backup-workload.ts';
import { killAll } from '../support/child-processes.ts';
import { cli as runCli } from '../support/cli.ts';

const cli = (args: string[]) => runCli(args, { timeout: 240_000 });

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

let cluster: TestCluster | undefined;
const children: ResultPromise[] = [];
afterEach(async () => {
  await killAll(children);
  await cluster?.teardown();
  cluster = undefined;
});

describe('backup retention', () => {
  it('--keep-chains moves whole old chains into expired/<time>/ and keeps one contiguous chain', async () => {
    cluster = await startCluster({ name: 'bk-ret' });
    const c = cluster;
    const inv = c.writeInventory();
    const dir = join(c.dir, 'snapshots');
    const name = c.inventory().name;
    const admin = () => c.client(c.members[0]!.name);
    const stream = cli(['backup', 'stream', '-i', inv, '--fsync-interval', '200ms', '--segment-max-age', '500ms', '--full-every', '2s', '--keep-chains', '2']);
    children.push(stream);
    await poll('the stream to start', () => (readStatus(dir)?.state === 'streaming' ? true : undefined));

    let writing = true;
    let firstRevision = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = Number((await admin().put(`/app/k${i % 50}`).value(String(i)).exec()).header.revision);
        firstRevision ||= r;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const snapshots = () => readLog(dir).filter((e) => e.kind === 'snapshot');
    await poll('two full snapshots', () => (snapshots().length >= 2 ? true : undefined), 60_000);
    // Sealed segments and full snapshots never change: each must still be somewhere at the end, byte for byte.
    const sealedFiles = () => [
      ...listSegments(dir, name).filter((s) => s.manifest).flatMap((s) => [s.path, `${s.path}.json`]),
      ...listSnapshots(dir).filter((e) => e.manifest).flatMap((e) => [e.path, `${e.path}.json`]),
    ];
    const seen = new Map<string, string>();
    const record = () => {
      for (const f of sealedFiles()) {
        if (seen.has(f)) continue;
        try {
          seen.set(f, sha256(f));
        } catch {
          // moved by a retention pass between the listing and the read: seen in its new place only
        }
      }
    };
    record();
    await poll('two retention passes', () => (readLog(dir).filter((e) => e.kind === 'expired').length >= 2 ? true : undefined), 60_000);
    record();
    writing = false;
    await writer;
    const last = Number((await admin().put('/last').value('1').exec()).header.revision);
    await poll(`the stream to hold revision ${last}`, () => ((readStatus(dir)?.durableRevision ?? 0) >= last ? true : undefined));
    stream.kill('SIGTERM');
    expect((await stream).exitCode).toBe(0);

    // Two full snapshots stay; every other one the stream took is under expired/<time>/, with its manifest.
    const cat = await catalog([dir], name, { verify: true });
    expect(cat.bases.length).toBe(2);
    const floor = Math.min(...cat.bases.map((b) => b.manifest!.revision));
    const expiredDir = join(dir, 'expired');
    const passes = readdirSync(expiredDir);
    expect(passes.every((p) => /^\d{8}T\d{6}Z/.test(p))).toBe(true);
    const kept = new Set(cat.bases.map((b) => b.name));
    for (const e of snapshots()) {
      const file = String(e.file);
      if (kept.has(file)) continue;
      expect(passes.some((p) => existsSync(join(expiredDir, p, file)) && existsSync(join(expiredDir, p, `${file}.json`))), `${file} moved aside with its manifest`).toBe(true);
    }
    // Segments: those that only lead up to the oldest kept snapshot moved aside too; the rest is one chain from it.
    expect(listSegments(dir, name).filter((s) => s.manifest && s.manifest.lastRevision <= floor)).toEqual([]);
    const movedSegments = passes.flatMap((p) => (existsSync(join(expiredDir, p, 'deltas')) ? readdirSync(join(expiredDir, p, 'deltas')) : []));
    expect(movedSegments.some((f) => f.endsWith('.seg'))).toBe(true);
    expect(cat.problems).toEqual([]);
    expect(cat.runs.length).toBe(1);
    expect(cat.runs[0]!.from).toBeLessThanOrEqual(floor);
    expect(cat.runs[0]!.to).toBe(last);
    // Nothing deleted or altered: every sealed file seen is where it was or in one expired/<time>/ pass, same bytes.
    let moved = 0;
    for (const [f, sum] of seen) {
      const rel = relative(dir, f);
      const now = existsSync(f) ? f : passes.map((p) => join(expiredDir, p, rel)).find((x) => existsSync(x));
      expect(now, `${f} still exists or was moved aside`).toBeDefined();
      expect(sha256(now!), `${f} unchanged`).toBe(sum);
      if (now !== f) moved++;
    }
    expect(moved).toBeGreaterThan(0);

    const stateDir = join(c.dir, 'state');
    const ok = await cli(['plan', 'point-in-time-restore', '-i', inv, '--state-dir', stateDir, '-p', `revision=${last - 1}`]);
    expect(ok.exitCode, ok.stderr + ok.stdout).toBe(0);
    expect(firstRevision).toBeLessThan(floor);
    const gone = await cli(['plan', 'point-in-time-restore', '-i', inv, '--state-dir', stateDir, '-p', `revision=${firstRevision}`]);
    expect(gone.stdout + gone.stderr).toMatch(/cannot be rebuilt from the backups/);
  }, 180_000);
});
