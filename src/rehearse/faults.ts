/**
 * The faults a rehearsal injects into its throwaway cluster, and which fault each built-in runbook recovers from.
 * Before any fault, a set of seed keys is written: the verification reads them back on every member afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ActionRegistry } from '../actions/types.ts';
import { freshPath, utcStamp } from '../drivers/safe-fs.ts';
import { createResourceScope } from '../execute/resources.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';
import { throwIfAborted } from './abort.ts';
import { corruptFile } from './file-damage.ts';
import type { LocalClusterHandle } from './local-cluster.ts';

export const FAULTS = ['nospace', 'power-loss', 'member-loss', 'none'] as const;
export type FaultName = (typeof FAULTS)[number];

/** What each built-in runbook is rehearsed against. */
const BUILTIN_FAULTS: Record<string, FaultName> = {
  'nospace-recovery': 'nospace',
  'power-loss-restore': 'power-loss',
  'member-replacement': 'member-loss',
  'snapshot-backup': 'none',
  'nospace-prevention': 'none',
};

/**
 * Built-ins a throwaway cluster cannot rehearse alone, and why: `rehearse --all` leaves them out (and says so);
 * `rehearse NAME` refuses with the reason.
 */
export const NOT_REHEARSABLE: Readonly<Record<string, string>> = {
  'point-in-time-restore':
    'it rolls back to a point held by the continuous backups (`runbook backup stream`), which a throwaway cluster does not have; test/integration/point-in-time-restore.test.ts runs it against a real stream',
};

export const FAULT_DESCRIPTIONS: Record<FaultName, string> = {
  nospace: 'fill the backend to its quota until etcd raises the NOSPACE alarm',
  'power-loss': 'write keys, take a verified snapshot, SIGKILL every member and damage its data (bbolt meta pages zeroed, a WAL record in use flipped): a plain restart cannot recover',
  'member-loss': 'SIGKILL one follower and move its data dir aside (a lost disk)',
  none: 'no fault: the runbook runs against a healthy cluster',
};

export function parseFault(value: string): FaultName {
  if ((FAULTS as readonly string[]).includes(value)) return value as FaultName;
  throw new UserError(`--fault: expected one of ${FAULTS.join(', ')}, got ${JSON.stringify(value)}`);
}

/** The fault for a runbook: the one given, else the built-in's. A user's own runbook must name one. */
export function faultFor(runbookName: string, builtIn: boolean, given?: FaultName): FaultName {
  const why = builtIn ? NOT_REHEARSABLE[runbookName] : undefined;
  if (why) throw new UserError(`runbook "${runbookName}" cannot be rehearsed on a throwaway cluster: ${why}`);
  if (given) return given;
  const known = builtIn ? BUILTIN_FAULTS[runbookName] : undefined;
  if (known) return known;
  if (builtIn) return 'none';
  throw new UserError(
    `runbook "${runbookName}" is not a built-in, so the rehearsal cannot know what to break: give --fault ${FAULTS.join('|')}`,
  );
}

export const SEED_PREFIX = 'rehearsal/data/';
export const SEED_KEYS = 32;

/** The seed keys and their values (deterministic per cluster token, so a read-back proves the data survived). */
export function seedData(salt: string): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < SEED_KEYS; i++) {
    const key = `${SEED_PREFIX}${String(i).padStart(3, '0')}`;
    out.set(key, createHash('sha256').update(`${salt}/${key}`).digest('hex'));
  }
  return out;
}

export interface FaultResult {
  fault: FaultName;
  /** One line for humans: what was done. */
  summary: string;
  /** db size of every member right after the fault (nospace). */
  dbSizes?: Record<string, number>;
  /** power-loss: the snapshot the runbook can restore from. */
  snapshot?: { path: string; bytes: number; via: 'etcd.snapshot-save' | 'etcdctl' };
  /** power-loss: the cluster id before the fault (a restore makes a new one: the verdict checks a restore ran). */
  clusterIdBefore?: string;
  /** power-loss: what was damaged in each member's files (offsets and bytes, for the report and tests). */
  damage?: { file: string; how: string; offset: number; bytes: number }[];
  /** member-loss: the member that was lost and where its data went. */
  victim?: { name: string; movedTo: string };
  /** Snapshot files in the sandbox's snapshot dir after the fault (to see a runbook add one). */
  snapshotsBefore: string[];
}

export interface InjectOptions {
  registry: ActionRegistry;
  seeds: Map<string, string>;
  signal: AbortSignal;
  log: (line: string) => void;
}

export function snapshotFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => statSync(join(dir, f)).isFile()).sort();
  } catch {
    return [];
  }
}

async function writeSeeds(cluster: LocalClusterHandle, seeds: Map<string, string>): Promise<void> {
  const client = cluster.client();
  for (const [k, v] of seeds) await client.put(k).value(v).exec();
}

/** Take a snapshot into the sandbox's snapshot dir: the product's etcd.snapshot-save when it is implemented, else etcdctl. */
async function takeSnapshot(cluster: LocalClusterHandle, opts: InjectOptions): Promise<NonNullable<FaultResult['snapshot']>> {
  const dir = join(cluster.dir, 'snapshots');
  await opts.registry.load?.(['etcd.snapshot-save']);
  const impl = opts.registry.impl('etcd.snapshot-save');
  const meta = opts.registry.meta('etcd.snapshot-save');
  if (impl && meta) {
    const resources = createResourceScope();
    const before = new Set(snapshotFiles(dir));
    try {
      const output = (await impl.run(
        {
          runId: 'rehearsal-setup',
          stepId: 'rehearsal-snapshot',
          attempt: 1,
          firstStartedAt: Date.now(),
          inventory: cluster.inventory(),
          params: {},
          steps: {},
          signal: opts.signal,
          dryRun: false,
          stateDir: join(cluster.dir, 'setup-state'),
          resources,
          log: (m) => opts.log(`  snapshot: ${m}`),
        },
        meta.input.parse({}),
      )) as { path?: unknown } | undefined;
      const made = typeof output?.path === 'string' ? output.path : snapshotFiles(dir).filter((f) => !before.has(f) && f.endsWith('.db')).map((f) => join(dir, f))[0];
      if (!made || !existsSync(made)) throw new Error(`etcd.snapshot-save reported no snapshot file in ${dir}`);
      return { path: made, bytes: statSync(made).size, via: 'etcd.snapshot-save' };
    } finally {
      await resources.dispose();
    }
  }
  const file = join(dir, `rehearsal-${utcStamp()}.db`);
  await cluster.snapshot(file);
  return { path: file, bytes: statSync(file).size, via: 'etcdctl' };
}

/** Write the seed keys, then break the cluster the way `fault` says. */
export async function injectFault(cluster: LocalClusterHandle, fault: FaultName, opts: InjectOptions): Promise<FaultResult> {
  const snapDir = join(cluster.dir, 'snapshots');
  await writeSeeds(cluster, opts.seeds);
  throwIfAborted(opts.signal, 'fault injection');
  switch (fault) {
    case 'none':
      return { fault, summary: `none (${opts.seeds.size} seed keys written)`, snapshotsBefore: snapshotFiles(snapDir) };

    case 'nospace': {
      // The history grows by what is written (nothing compacts it), so written/quota is the fill's progress.
      const { puts } = await cluster.fillToNospace({
        signal: opts.signal,
        onProgress: ({ bytes }) => opts.log(`  filling to NOSPACE: ${formatBytes(bytes)} written of a ${formatBytes(cluster.quotaBytes)} quota (~${Math.min(99, Math.floor((bytes / cluster.quotaBytes) * 100))}%)`),
      });
      // Followers apply the last writes a moment later: measure once every member is at the same revision.
      let statuses = await Promise.all(cluster.members.map((m) => cluster.status(m.name)));
      for (let i = 0; i < 50 && new Set(statuses.map((st) => st.revision)).size > 1; i++) {
        await sleep(100);
        statuses = await Promise.all(cluster.members.map((m) => cluster.status(m.name)));
      }
      const dbSizes: Record<string, number> = {};
      cluster.members.forEach((m, i) => (dbSizes[m.name] = statuses[i]!.dbSize));
      const sizes = Object.entries(dbSizes).map(([n, s]) => `${n} ${formatBytes(s)}`).join(', ');
      return {
        fault,
        summary: `NOSPACE alarm raised after ${puts} puts of 256 KiB (quota ${formatBytes(cluster.quotaBytes)}; db ${sizes})`,
        dbSizes,
        snapshotsBefore: snapshotFiles(snapDir),
      };
    }

    case 'power-loss': {
      const snapshot = await takeSnapshot(cluster, opts);
      throwIfAborted(opts.signal, 'fault injection');
      const clusterIdBefore = (await cluster.status(cluster.members[0]!.name)).clusterId;
      for (const m of cluster.members) await cluster.kill(m.name, 'SIGKILL');
      // Damage sized by the data in use, not the file size (etcd 3.5 preallocates both files, so a cut would only
      // remove zeros): the db's meta pages zeroed ("invalid database") and a WAL record in use flipped (crc mismatch).
      // corruptFile throws rather than damage nothing, so a fault that did not land fails the rehearsal here.
      const damage: NonNullable<FaultResult['damage']> = [];
      for (const m of cluster.members) {
        const db = join(m.dataDir, 'member', 'snap', 'db');
        if (!existsSync(db)) throw new Error(`power-loss: ${m.name} has no db at ${db}`);
        damage.push({ file: db, ...corruptFile(db, 'bbolt-meta') });
        const walDir = join(m.dataDir, 'member', 'wal');
        const wals = existsSync(walDir) ? readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort() : [];
        const newest = wals.at(-1);
        if (!newest) throw new Error(`power-loss: ${m.name} has no WAL segment in ${walDir}`);
        damage.push({ file: join(walDir, newest), ...corruptFile(join(walDir, newest), 'wal-record') });
      }
      return {
        fault,
        summary: `snapshot ${snapshot.path.slice(cluster.dir.length + 1)} (${formatBytes(snapshot.bytes)}, via ${snapshot.via}); every member SIGKILLed; each db's bbolt meta pages zeroed and a record in its newest WAL segment flipped`,
        snapshot,
        clusterIdBefore,
        damage,
        snapshotsBefore: snapshotFiles(snapDir),
      };
    }

    case 'member-loss': {
      const statuses = await Promise.all(cluster.members.map(async (m) => ({ m, s: await cluster.status(m.name) })));
      const leader = statuses[0]!.s.leader;
      const followers = statuses.filter((x) => x.s.memberId !== leader);
      const victim = (followers.at(-1) ?? statuses.at(-1)!).m;
      await cluster.kill(victim.name, 'SIGKILL');
      const movedTo = freshPath(`${victim.dataDir}.lost-disk-${utcStamp()}`);
      try {
        renameSync(victim.dataDir, movedTo);
      } catch (err) {
        throw new Error(`cannot move ${victim.dataDir} aside: ${messageOf(err)}`, { cause: err });
      }
      throwIfAborted(opts.signal, 'fault injection');
      await cluster.waitHealthy(20_000, { signal: opts.signal });
      return {
        fault,
        summary: `${victim.name} SIGKILLed (a follower); its data dir moved to ${movedTo.slice(cluster.dir.length + 1)} (a lost disk)`,
        victim: { name: victim.name, movedTo },
        snapshotsBefore: snapshotFiles(snapDir),
      };
    }
  }
}
