/**
 * The rehearsal's own verdict on the recovered cluster, independent of the runbook's verify steps: it asks every
 * member itself (status, alarms, member list, serializable reads of the seed keys, hashes) and writes a canary.
 * Each check is bounded in time: a cluster that has just been restored gets a short while to settle.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { callMember } from '../etcd/call.ts';
import { putDeleteCanary } from '../etcd/kv.ts';
import { hashKV, listAlarms } from '../etcd/maintenance.ts';
import { EtcdPool } from '../etcd/pool.ts';
import { clusterView, isLearner, type ClusterView } from '../etcd/view.ts';
import type { Inventory } from '../inventory/types.ts';
import { messageOf } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import { SEED_PREFIX, snapshotFiles, type FaultName, type FaultResult } from './faults.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface VerifyInput {
  inventory: Inventory;
  fault: FaultName;
  faultResult: FaultResult;
  quotaBytes: number;
  seeds: Map<string, string>;
  /** The runbook takes a snapshot (etcd.snapshot-save): a new file must appear in the sandbox's snapshot dir. */
  expectNewSnapshot: boolean;
  /** Keys outside rehearsal/ before the fault (a cluster restored from --from-snapshot): they must all be there after. */
  baselineKeys?: number;
  /** How long the cluster may take to settle (one leader, every member answering). */
  settleMs: number;
  signal?: AbortSignal;
}

export interface VerifyResult {
  checks: Check[];
  /** db size per member at the end (for bytes reclaimed). */
  dbSizes: Record<string, number>;
}

const CALL_MS = 2_000;
const REHEARSAL_PREFIX = 'rehearsal/';
const CANARY_KEY = `${REHEARSAL_PREFIX}verify/canary`;

function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1] = b[b.length - 1]! + 1;
  return b;
}

/** Retry `fn` until it gives ok or `ms` pass (at least one try). */
async function within<T extends { ok: boolean }>(ms: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await fn();
    if (r.ok || Date.now() >= until || signal?.aborted) return r;
    await sleep(200);
  }
}

function settled(view: ClusterView, n: number): { ok: boolean; detail: string } {
  const down = view.members.filter((p) => !p.ok);
  if (down.length) return { ok: false, detail: `not answering: ${down.map((p) => `${p.name} (${p.ok ? '' : p.error})`).join(', ')}` };
  if (view.clusterIds.length !== 1) return { ok: false, detail: `members report ${view.clusterIds.length} cluster ids: ${view.clusterIds.join(', ')}` };
  if (!view.leaderId) return { ok: false, detail: view.leaderIds.length > 1 ? `members disagree on the leader (${view.leaderIds.join(', ')})` : 'no leader' };
  if (!view.leader) return { ok: false, detail: `leader ${view.leaderId} is not one of the ${n} members` };
  return { ok: true, detail: `leader ${view.leader.name}, ${n} of ${n} members answering` };
}

async function readSeeds(pool: EtcdPool, member: string): Promise<Map<string, string>> {
  const res = await callMember(pool, member, 'read seed keys', (c, o) => c.kv.range({ key: Buffer.from(SEED_PREFIX), range_end: prefixEnd(SEED_PREFIX), serializable: true }, o), { timeoutMs: CALL_MS });
  return new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
}

async function seedCheck(pool: EtcdPool, names: string[], seeds: Map<string, string>): Promise<Check> {
  const problems: string[] = [];
  for (const name of names) {
    try {
      const got = await readSeeds(pool, name);
      const missing = [...seeds].filter(([k, v]) => got.get(k) !== v).length;
      if (missing) problems.push(`${name}: ${missing} of ${seeds.size} missing or changed`);
    } catch (err) {
      problems.push(`${name}: ${messageOf(err)}`);
    }
  }
  return problems.length
    ? { name: 'data intact', ok: false, detail: problems.join('; ') }
    : { name: 'data intact', ok: true, detail: `the ${seeds.size} keys written before the fault read back on ${names.join(', ')}` };
}

/** Keys on a member outside the rehearsal's own prefix (serializable: what that member has). */
export async function countOtherKeys(pool: EtcdPool, member: string): Promise<number> {
  const count = async (key: Buffer, end: Buffer) =>
    Number((await callMember(pool, member, 'count keys', (c, o) => c.kv.range({ key, range_end: end, count_only: true, serializable: true }, o), { timeoutMs: CALL_MS })).count);
  return (await count(Buffer.from([0]), Buffer.from([0]))) - (await count(Buffer.from(REHEARSAL_PREFIX), prefixEnd(REHEARSAL_PREFIX)));
}

async function baselineCheck(pool: EtcdPool, names: string[], want: number): Promise<Check> {
  const got: string[] = [];
  let ok = true;
  for (const name of names) {
    try {
      const n = await countOtherKeys(pool, name);
      if (n !== want) ok = false;
      got.push(`${name} ${n}`);
    } catch (err) {
      ok = false;
      got.push(`${name}: ${messageOf(err)}`);
    }
  }
  return { name: 'restored data intact', ok, detail: `${want} keys from the snapshot before the fault; now ${got.join(', ')}` };
}

async function hashCheck(pool: EtcdPool, view: ClusterView): Promise<Check> {
  const leader = view.leader!;
  const names = view.members.map((p) => p.name);
  const revision = (await callMember(pool, leader.name, 'read revision', (c, o) => c.kv.range({ key: Buffer.from([0]), limit: 1, count_only: true }, o), { timeoutMs: CALL_MS })).header.revision;
  const rev = Number(revision);
  const hashes = await Promise.all(names.map(async (n) => {
    try {
      return { n, h: (await hashKV(pool, n, rev, { timeoutMs: 10_000 })).hash };
    } catch (err) {
      return { n, error: messageOf(err) };
    }
  }));
  const failed = hashes.filter((x) => 'error' in x);
  if (failed.length) return { name: 'hashes equal', ok: false, detail: failed.map((x) => `${x.n}: ${(x as { error: string }).error}`).join('; ') };
  const distinct = new Set(hashes.map((x) => (x as { h: number }).h));
  return distinct.size === 1
    ? { name: 'hashes equal', ok: true, detail: `same keyspace hash at revision ${rev} on ${names.join(', ')}` }
    : { name: 'hashes equal', ok: false, detail: `hashes differ at revision ${rev}: ${hashes.map((x) => `${x.n} ${(x as { h: number }).h}`).join(', ')}` };
}

/** Every check for the fault, each one independent of the others (a failing check does not hide the next). */
export async function verifyOutcome(input: VerifyInput): Promise<VerifyResult> {
  const pool = new EtcdPool(input.inventory, { requestTimeoutMs: CALL_MS });
  const checks: Check[] = [];
  const dbSizes: Record<string, number> = {};
  const n = input.inventory.members.length;
  const names = input.inventory.members.map((m) => m.name);
  try {
    const t0 = Date.now();
    let view!: ClusterView;
    const final = await within(input.settleMs, input.signal, async () => {
      view = await clusterView(pool, { timeoutMs: CALL_MS });
      return settled(view, n);
    });
    checks.push({
      name: 'one leader, every member answering',
      ok: final.ok,
      detail: final.ok ? `${final.detail}${Date.now() - t0 > 500 ? ` (after ${formatDuration(Date.now() - t0)} of settling)` : ''}` : final.detail,
    });
    for (const p of view.members) if (p.ok) dbSizes[p.name] = p.status.dbSize;

    if (input.fault === 'member-loss' || input.fault === 'power-loss') {
      const list = view.memberList ?? [];
      const learners = view.members.filter((p) => isLearner(p)).map((p) => p.name);
      const voters = list.filter((m) => !m.isLearner);
      const ok = voters.length === n && list.length === n && learners.length === 0 && view.unknownMembers.length === 0 && view.members.every((p) => p.ok && p.member);
      checks.push({
        name: `${n} healthy voters`,
        ok,
        detail: ok
          ? `member list: ${voters.map((m) => m.name).join(', ')}, no learner`
          : `member list has ${voters.length} voter(s) and ${list.length - voters.length} learner(s) (${list.map((m) => `${m.name || '(unstarted)'}${m.isLearner ? ' learner' : ''}`).join(', ') || 'unreadable'})${view.unknownMembers.length ? `; not in the inventory: ${view.unknownMembers.map((m) => m.name || m.id).join(', ')}` : ''}`,
      });
    }

    if (input.fault === 'power-loss' && input.faultResult.clusterIdBefore) {
      // The fault leaves no member able to start on its own data: only a restore (which makes a new cluster id)
      // can have brought the cluster back. The same id means no restore ran, whatever the run reported.
      const before = input.faultResult.clusterIdBefore;
      const now = view.clusterId;
      checks.push({
        name: 'restored from the snapshot',
        ok: now !== null && now !== before,
        detail: now === null ? `no single cluster id (${view.clusterIds.join(', ') || 'none answering'})` : now === before ? `cluster id ${now} unchanged: no restore ran` : `cluster id ${before} → ${now}`,
      });
    }

    if (input.fault === 'nospace') {
      let alarms: string[] | undefined;
      let error = '';
      for (const name of names) {
        try {
          alarms = (await listAlarms(pool, name, { timeoutMs: CALL_MS })).map((a) => `${a.alarm}@${a.memberId}`);
          break;
        } catch (err) {
          error = messageOf(err);
        }
      }
      checks.push(
        alarms === undefined
          ? { name: 'NOSPACE alarm gone', ok: false, detail: `no member lists its alarms: ${error}` }
          : { name: 'NOSPACE alarm gone', ok: alarms.length === 0, detail: alarms.length ? `still active: ${alarms.join(', ')}` : 'no alarm on any member' },
      );
    }

    const writer = view.leader?.name ?? names[0]!;
    try {
      const canary = await putDeleteCanary(pool, writer, CANARY_KEY, { timeoutMs: CALL_MS, tag: 'rehearsal' });
      checks.push({ name: 'writes accepted', ok: true, detail: `canary put, read back and deleted through ${canary.member} at revision ${canary.revision}` });
    } catch (err) {
      checks.push({ name: 'writes accepted', ok: false, detail: messageOf(err) });
    }

    if (input.fault === 'nospace') {
      const half = input.quotaBytes / 2;
      const sizes = names.map((nm) => `${nm} ${dbSizes[nm] === undefined ? '?' : formatBytes(dbSizes[nm]!)}`).join(', ');
      const ok = names.every((nm) => dbSizes[nm] !== undefined && dbSizes[nm]! < half);
      checks.push({ name: `every db below half the quota (${formatBytes(half)})`, ok, detail: sizes });
    }

    checks.push(await within(5_000, input.signal, () => seedCheck(pool, names, input.seeds)));
    if (input.baselineKeys !== undefined) {
      const want = input.baselineKeys;
      checks.push(await within(5_000, input.signal, () => baselineCheck(pool, names, want)));
    }
    if (view.leader && view.members.every((p) => p.ok)) {
      checks.push(await within(5_000, input.signal, () => hashCheck(pool, view)));
    } else {
      checks.push({ name: 'hashes equal', ok: false, detail: 'not every member answers' });
    }

    if (input.expectNewSnapshot) {
      const dir = input.inventory.snapshots?.dirs[0];
      const before = new Set(input.faultResult.snapshotsBefore);
      const added = dir ? snapshotFiles(dir).filter((f) => !before.has(f)) : [];
      checks.push({ name: 'a new snapshot was written', ok: added.length > 0, detail: added.length ? `${dir}: ${added.join(', ')}` : `nothing new in ${dir ?? '(no snapshot dir)'}` });
    }
  } finally {
    pool.close();
  }
  return { checks, dbSizes };
}
