/** `runbook backup status`: what the backups hold and how far behind the stream is (lag = the RPO right now). */
import { catalog, newestPoint } from './chain.ts';
import { lagMs, readLog, readStatus, type StreamStatus } from './status.ts';

export interface BackupStatus {
  dir: string;
  cluster: string;
  stream?: StreamStatus & { running: boolean; lagMs?: number; lastEventAgeMs?: number };
  snapshots: { file: string; revision: number; createdAt: string }[];
  segments: { sealed: number; open: number; firstRevision?: number; lastRevision?: number };
  runs: { from: number; to: number }[];
  gaps: { afterRevision: number; resumedAt: number; at: string }[];
  newestPoint?: { revision: number; base: string };
  problems: string[];
  warnings: string[];
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function backupStatus(dir: string, cluster: string, warnLagMs: number, now = Date.now()): Promise<BackupStatus> {
  const c = await catalog([dir], cluster);
  const st = readStatus(dir);
  const warnings: string[] = [];
  let stream: BackupStatus['stream'];
  if (st) {
    const lag = lagMs(st, now);
    const alive = st.state !== 'stopped' && running(st.pid);
    stream = { ...st, running: alive, ...(lag !== undefined ? { lagMs: lag } : {}), ...(st.lastEventAt ? { lastEventAgeMs: now - st.lastEventAt } : {}) };
    if (!alive) warnings.push('the backup stream is not running: changes since it stopped are not backed up');
    else if (lag === undefined) warnings.push('the stream has not confirmed it is caught up yet');
    else if (lag > warnLagMs) warnings.push(`lag ${(lag / 1000).toFixed(1)} s is above ${(warnLagMs / 1000).toFixed(1)} s: a loss now would lose that much`);
  } else {
    warnings.push('no backup stream has run in this dir');
  }
  const np = newestPoint(c);
  const gaps = readLog(dir)
    .filter((e) => e.kind === 'gap')
    .map((e) => ({ afterRevision: Number(e.afterRevision), resumedAt: Number(e.resumedAt), at: e.at }));
  return {
    dir,
    cluster,
    ...(stream ? { stream } : {}),
    snapshots: c.bases.map((b) => ({ file: b.name, revision: b.manifest!.revision, createdAt: new Date(b.createdAt).toISOString() })),
    segments: {
      sealed: c.spans.filter((s) => s.state === 'sealed').length,
      open: c.spans.filter((s) => s.state === 'open').length,
      ...(c.spans.length ? { firstRevision: c.spans[0]!.firstRevision, lastRevision: Math.max(...c.spans.map((s) => s.lastRevision)) } : {}),
    },
    runs: c.runs.map((r) => ({ from: r.from, to: r.to })),
    gaps,
    ...(np ? { newestPoint: { revision: np.target, base: np.base.name } } : {}),
    problems: c.problems,
    warnings,
  };
}

export function formatBackupStatus(s: BackupStatus): string {
  const lines = [`backups of ${s.cluster} in ${s.dir}`];
  if (s.stream) {
    const st = s.stream;
    lines.push(`  stream: ${st.running ? st.state : 'not running'} (pid ${st.pid}${st.member ? `, watching ${st.member}` : ''}), last revision ${st.lastRevision}, on disk ${st.durableRevision}`);
    lines.push(`  lag (RPO now): ${st.lagMs === undefined ? 'unknown' : `${(st.lagMs / 1000).toFixed(1)} s`}${st.lastEventAgeMs !== undefined ? `; last change received ${(st.lastEventAgeMs / 1000).toFixed(1)} s ago` : ''}`);
    if (st.lastError) lines.push(`  last reconnect: ${st.lastError}`);
  }
  lines.push(`  full snapshots: ${s.snapshots.length}${s.snapshots[0] ? ` (newest ${s.snapshots[0].file} at revision ${s.snapshots[0].revision})` : ''}`);
  lines.push(`  delta segments: ${s.segments.sealed} sealed, ${s.segments.open} open${s.segments.firstRevision !== undefined ? `, revisions ${s.segments.firstRevision}..${s.segments.lastRevision}` : ''}`);
  for (const g of s.gaps) lines.push(`  gap: revisions ${g.afterRevision + 1}..${g.resumedAt} are not in the deltas (history compacted before the stream read it; ${g.at})`);
  if (s.newestPoint) lines.push(`  newest restorable point: revision ${s.newestPoint.revision} (from ${s.newestPoint.base})`);
  for (const p of s.problems) lines.push(`  problem: ${p}`);
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}
