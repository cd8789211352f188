/** Keyspace calls the runbooks need: the current revision, compaction and its read-only probe, a write canary. */
import { randomUUID } from 'node:crypto';
import { StepError } from '../util/errors.ts';
import { callMember, type CallOpts } from './call.ts';
import { isAlreadyCompacted } from './errors.ts';
import type { EtcdPool } from './pool.ts';

/** The cluster's current store revision, read (linearizably) through one member. */
export async function currentRevision(pool: EtcdPool, endpointOrName: string, opts?: CallOpts): Promise<number> {
  const res = await callMember(pool, endpointOrName, 'read revision', (c, o) => c.kv.range({ key: Buffer.from([0]), limit: 1, count_only: true }, o), opts);
  return Number(res.header.revision);
}

/**
 * Compact the history up to `revision`. `physical` waits until the member that takes the request has removed the
 * old revisions from its backend (the others follow asynchronously). Throws "already compacted" (see
 * isAlreadyCompacted) when the compact revision is already ≥ `revision`.
 */
export async function compact(pool: EtcdPool, endpointOrName: string, revision: number, physical: boolean, opts?: CallOpts): Promise<void> {
  await callMember(pool, endpointOrName, `compact at revision ${revision}`, (c, o) => c.kv.compact({ revision, physical }, o), opts);
}

/**
 * Read-only: is this member's compact revision ≥ `revision`? A read at revision r fails with "has been compacted"
 * exactly when r < compact revision, so reading at `revision - 1` answers the question without a hash of the whole
 * keyspace. `serializable` asks the member itself (to check a follower applied the compaction).
 */
export async function compactedAtLeast(pool: EtcdPool, endpointOrName: string, revision: number, opts?: CallOpts & { serializable?: boolean }): Promise<boolean> {
  if (revision <= 1) return true;
  try {
    await callMember(
      pool,
      endpointOrName,
      `read at revision ${revision - 1}`,
      (c, o) => c.kv.range({ key: Buffer.from([0]), limit: 1, count_only: true, revision: revision - 1, serializable: opts?.serializable ?? false }, o),
      opts,
    );
    return false;
  } catch (err) {
    if (isAlreadyCompacted(err)) return true;
    throw err;
  }
}

export interface CanaryResult {
  key: string;
  endpoint: string;
  member: string;
  /** Revision of the put. */
  revision: number;
  durationMs: number;
}

/**
 * Put a canary key with a unique value, read it back, delete it: proves the cluster accepts writes. A NOSPACE
 * alarm makes the put fail with a `precondition` StepError (isNoSpace).
 */
export async function putDeleteCanary(pool: EtcdPool, endpointOrName: string, key: string, opts?: CallOpts & { tag?: string }): Promise<CanaryResult> {
  const started = performance.now();
  const value = `${opts?.tag ?? 'runbook'} ${new Date().toISOString()} ${randomUUID()}`;
  const member = pool.nameOf(endpointOrName);
  const put = await callMember(pool, endpointOrName, `put ${key}`, (c, o) => c.kv.put({ key: Buffer.from(key), value: Buffer.from(value) }, o), opts);
  const got = await callMember(pool, endpointOrName, `get ${key}`, (c, o) => c.kv.range({ key: Buffer.from(key) }, o), opts);
  const readBack = got.kvs[0]?.value?.toString();
  if (readBack !== value) {
    throw new StepError('failed', `${member}: canary ${key} read back ${readBack === undefined ? 'nothing' : 'a different value'} after the put`, { member });
  }
  await callMember(pool, endpointOrName, `delete ${key}`, (c, o) => c.kv.deleteRange({ key: Buffer.from(key) }, o), opts);
  return { key, endpoint: pool.endpointOf(endpointOrName), member, revision: Number(put.header.revision), durationMs: Math.round(performance.now() - started) };
}
