/**
 * The end-of-run report: time per step (and per member), time until the cluster accepted writes again, and for
 * defragmentation, db size before/after, bytes reclaimed and the fragmentation ratio per member.
 */
import type { Runbook } from '../runbook/model.ts';
import type { RunState } from './state.ts';

export interface MemberSpace {
  member: string;
  dbSizeBefore: number;
  dbSizeAfter: number;
  inUseBefore: number;
  inUseAfter: number;
  reclaimedBytes: number;
  /** (db size − in use) / db size: the share of the file that is free pages. */
  fragmentationBefore: number;
  fragmentationAfter: number;
  skipped?: boolean;
}

export interface RunReport {
  steps: {
    id: string;
    action: string;
    status: string;
    durationMs?: number;
    items?: { key: string; status: string; durationMs?: number; via?: string }[];
    note?: string;
  }[];
  /**
   * ms from run start until the run first proved that the cluster accepts writes: a write probe, an alarm disarm,
   * or a plain restart that formed a quorum and took a write (members.try-restart with recovered).
   */
  timeToWritableMs?: number;
  /** The steps that ran after that point (a fresh snapshot, kubectl checks) and their time: reported apart. */
  afterWritable?: { ms: number; steps: string[] };
  space?: MemberSpace[];
  totalMs?: number;
}

function frag(db: number, inUse: number): number {
  return db > 0 ? Math.max(0, (db - inUse) / db) : 0;
}

interface DefragOutput {
  member?: string;
  skipped?: boolean;
  before?: { dbSize: number; dbSizeInUse?: number; inUse?: number };
  after?: { dbSize: number; dbSizeInUse?: number; inUse?: number };
  dbSize?: number;
  dbSizeInUse?: number;
  reclaimedBytes?: number;
}

/** Does a succeeded step of this action (with this output) show that the cluster accepts writes? */
function provesWritable(action: string, output: unknown): boolean {
  if (action === 'etcd.write-probe' || action === 'etcd.alarm-disarm') return true;
  return action === 'members.try-restart' && (output as { recovered?: unknown } | undefined)?.recovered === true;
}

export function buildReport(runbook: Runbook, run: RunState, startedAt: number): RunReport {
  const t0 = run.startedAt ?? startedAt;
  const report: RunReport = { steps: [] };
  const space: MemberSpace[] = [];
  let writableAt: number | undefined;
  for (const s of runbook.steps) {
    const st = run.steps.get(s.id);
    if (!st) {
      report.steps.push({ id: s.id, action: s.action, status: 'not reached' });
      continue;
    }
    const durationMs = st.startedAt !== undefined && st.finishedAt !== undefined ? st.finishedAt - st.startedAt : undefined;
    const planned = [...st.item.values()].some((it) => (it.output as { dryRun?: boolean } | undefined)?.dryRun === true);
    const entry: RunReport['steps'][number] = { id: s.id, action: s.action, status: planned && st.status === 'succeeded' ? 'planned' : st.status, ...(durationMs !== undefined ? { durationMs } : {}) };
    if (st.skipReason) entry.note = st.skipReason;
    if (st.items) {
      entry.items = st.items.map((key) => {
        const it = st.item.get(key);
        const d = it?.firstStartedAt !== undefined && it.finishedAt !== undefined ? it.finishedAt - it.firstStartedAt : undefined;
        return { key, status: it?.status ?? 'pending', ...(d !== undefined ? { durationMs: d } : {}), ...(it?.via ? { via: it.via } : {}) };
      });
    }
    report.steps.push(entry);
    if (provesWritable(s.action, st.output) && st.status === 'succeeded' && !planned && st.finishedAt !== undefined) {
      writableAt = Math.min(writableAt ?? Infinity, st.finishedAt);
    }
    if (s.action === 'etcd.defrag') {
      for (const [key, it] of st.item) {
        const o = it.output as DefragOutput | undefined;
        if (!o || it.status !== 'succeeded') continue;
        let before = o.before ?? (o.dbSize !== undefined ? { dbSize: o.dbSize, dbSizeInUse: o.dbSizeInUse ?? o.dbSize } : undefined);
        const after = o.after ?? before;
        if (!before || !after) continue;
        // Defragmented by an attempt that died before journaling it (a runner killed or taken over): the probe
        // found the member already small. What that attempt reclaimed is the size it logged before, minus now.
        const earlier = o.skipped && it.via === 'probe' ? it.loggedBefore : undefined;
        const byEarlier = earlier !== undefined && earlier.dbSize > after.dbSize;
        if (byEarlier) before = earlier;
        const inB = before.dbSizeInUse ?? before.inUse ?? before.dbSize;
        const inA = after.dbSizeInUse ?? after.inUse ?? after.dbSize;
        space.push({
          member: o.member ?? key,
          dbSizeBefore: before.dbSize,
          dbSizeAfter: after.dbSize,
          inUseBefore: inB,
          inUseAfter: inA,
          reclaimedBytes: byEarlier ? before.dbSize - after.dbSize : o.reclaimedBytes ?? Math.max(0, before.dbSize - after.dbSize),
          fragmentationBefore: frag(before.dbSize, inB),
          fragmentationAfter: frag(after.dbSize, inA),
          ...(o.skipped && !byEarlier ? { skipped: true } : {}),
        });
      }
    }
  }
  if (writableAt !== undefined) {
    report.timeToWritableMs = writableAt - t0;
    const after = runbook.steps.flatMap((s) => {
      const st = run.steps.get(s.id);
      return st?.startedAt !== undefined && st.startedAt >= writableAt! && st.status !== 'skipped' ? [s.id] : [];
    });
    if (after.length > 0 && run.lastAt !== undefined) report.afterWritable = { ms: Math.max(0, run.lastAt - writableAt), steps: after };
  }
  if (space.length) report.space = space;
  if (run.lastAt !== undefined) report.totalMs = run.lastAt - t0;
  return report;
}
