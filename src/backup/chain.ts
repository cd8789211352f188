/**
 * What the backups can restore: the delta segments form one log of revisions, contiguous except where the stream
 * had to skip (compaction: a gap), and full snapshots are starting points in it. A revision T is restorable from
 * a snapshot at revision S <= T when one contiguous run of segments covers S+1..T. Sealed segments are trusted
 * only when their sha256 matches their manifest; an open segment (the stream is running, or died) contributes
 * its complete, checksummed records.
 */
import { basename } from 'node:path';
import { sha256File } from '../hosts/local.ts';
import { listSnapshots, sortNewestFirst, type SnapshotEntry } from '../snapshot/list.ts';
import { readRecords, scanSegment } from './segment-reader.ts';
import { listSegments, readSegmentManifest } from './segments.ts';

export interface Span {
  path: string;
  state: 'sealed' | 'open';
  after: number;
  firstRevision: number;
  lastRevision: number;
  firstObservedAt: number;
  lastObservedAt: number;
  records: number;
}

export interface Run {
  from: number;
  to: number;
  spans: Span[];
}

export interface Catalog {
  spans: Span[];
  runs: Run[];
  /** Verified snapshots with a manifest (their revision is known; 0 for an empty cluster, whose revision is 1), newest first. */
  bases: SnapshotEntry[];
  problems: string[];
}

/** Every usable segment (sealed ones checked against their sha256 when `verify`), and the snapshots. */
export async function catalog(dirs: string[], cluster: string, opts: { verify?: boolean; signal?: AbortSignal } = {}): Promise<Catalog> {
  const spans: Span[] = [];
  const problems: string[] = [];
  const uniq = [...new Set(dirs)];
  for (const dir of uniq) {
    for (const listed of listSegments(dir, cluster)) {
      let s = listed;
      let scan: Awaited<ReturnType<typeof scanSegment>> | undefined;
      if (s.state === 'open') {
        try {
          scan = await scanSegment(s.path, opts.signal);
        } catch (err) {
          // A running stream sealed it (renamed .open → .seg) between the listing and the read.
          const sealed = s.path.replace(/\.open$/, '.seg');
          const manifest = readSegmentManifest(sealed);
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !manifest) throw err;
          s = { ...s, path: sealed, state: 'sealed', manifest };
        }
      }
      if (s.state === 'sealed') {
        const m = s.manifest;
        if (!m) {
          problems.push(`${s.path}: sealed segment without a readable manifest (not used)`);
          continue;
        }
        if (opts.verify && (await sha256File(s.path, opts.signal)) !== m.sha256) {
          problems.push(`${s.path}: sha256 differs from its manifest: damaged (not used)`);
          continue;
        }
        spans.push({ path: s.path, state: 'sealed', after: m.after, firstRevision: m.firstRevision, lastRevision: m.lastRevision, firstObservedAt: Date.parse(m.firstObservedAt), lastObservedAt: Date.parse(m.lastObservedAt), records: m.records });
      } else if (scan) {
        if (!scan.header || scan.records === 0) continue;
        spans.push({ path: s.path, state: 'open', after: scan.header.after, firstRevision: scan.firstRevision!, lastRevision: scan.lastRevision!, firstObservedAt: scan.firstObservedAt!, lastObservedAt: scan.lastObservedAt!, records: scan.records });
      }
    }
  }
  spans.sort((a, b) => a.after - b.after || a.lastRevision - b.lastRevision);
  const runs: Run[] = [];
  for (const s of spans) {
    const cur = runs.at(-1);
    if (cur && s.after === cur.to) {
      cur.to = s.lastRevision;
      cur.spans.push(s);
    } else if (cur && s.after < cur.to) {
      // The same revisions twice (a copy in another dir): the first one is enough.
      if (s.lastRevision > cur.to) problems.push(`${s.path} overlaps ${basename(cur.spans.at(-1)!.path)} (not used)`);
    } else {
      runs.push({ from: s.after, to: s.lastRevision, spans: [s] });
    }
  }
  const bases = sortNewestFirst(uniq.flatMap((d) => listSnapshots(d)).filter((e) => e.manifest && e.manifest.cluster === cluster && typeof e.manifest.revision === 'number' && e.manifest.verified !== false));
  return { spans, runs, bases, problems };
}

/** How far a restore from this base can go: the end of the run that covers its revision, else the base itself. */
export function reach(c: Catalog, baseRevision: number): number {
  const run = c.runs.find((r) => r.from <= baseRevision && r.to >= baseRevision);
  return run ? run.to : baseRevision;
}

/** The last revision observed at or before `at` (epoch ms), from segments and snapshot times; undefined if none. */
export async function revisionAt(c: Catalog, at: number, signal?: AbortSignal): Promise<{ revision: number; observedAt: number } | undefined> {
  let best: { revision: number; observedAt: number } | undefined;
  const consider = (revision: number, observedAt: number) => {
    if (observedAt <= at && (!best || revision > best.revision)) best = { revision, observedAt };
  };
  for (const b of c.bases) consider(b.manifest!.revision, b.createdAt);
  for (const s of c.spans) {
    if (s.firstObservedAt > at) continue;
    if (s.lastObservedAt <= at) {
      consider(s.lastRevision, s.lastObservedAt);
      continue;
    }
    for await (const r of readRecords(s.path, undefined, signal ? { signal } : {})) {
      if (r.observedAt > at) break;
      consider(r.revision, r.observedAt);
    }
  }
  return best;
}

/** Observed time of a revision, when a segment or snapshot holds it. */
export async function timeOf(c: Catalog, revision: number, signal?: AbortSignal): Promise<number | undefined> {
  const b = c.bases.find((e) => e.manifest!.revision === revision);
  if (b) return b.createdAt;
  const s = c.spans.find((x) => x.firstRevision <= revision && x.lastRevision >= revision);
  if (!s) return undefined;
  for await (const r of readRecords(s.path, undefined, signal ? { signal } : {})) {
    if (r.revision === revision) return r.observedAt;
    if (r.revision > revision) break;
  }
  return undefined;
}

export interface Choice {
  base: SnapshotEntry;
  baseRevision: number;
  target: number;
  /** The spans to replay (records after baseRevision up to target). */
  spans: Span[];
}

/** The newest base from which `target` is restorable, or undefined (a gap, or older than every snapshot). */
export function chooseBase(c: Catalog, target: number): Choice | undefined {
  for (const b of c.bases) {
    const s = b.manifest!.revision;
    if (s > target) continue;
    if (s === target) return { base: b, baseRevision: s, target, spans: [] };
    const run = c.runs.find((r) => r.from <= s && r.to >= target);
    if (run) return { base: b, baseRevision: s, target, spans: run.spans.filter((x) => x.lastRevision > s && x.after < target) };
  }
  return undefined;
}

/** The newest consistent point the backups hold: the base whose run reaches furthest (a newer base on a tie). */
export function newestPoint(c: Catalog): Choice | undefined {
  let best: Choice | undefined;
  for (const b of c.bases) {
    const to = reach(c, b.manifest!.revision);
    if (!best || to > best.target) best = chooseBase(c, to);
  }
  return best;
}

/** Distinct keys changed after `from` up to `to`, counted per key prefix (the first two path elements). */
export async function changesPerPrefix(c: Catalog, from: number, to: number, signal?: AbortSignal): Promise<Record<string, number>> {
  const keys = new Map<string, Set<string>>();
  let total = 0;
  for (const s of c.spans) {
    if (s.lastRevision <= from || s.after >= to) continue;
    for await (const r of readRecords(s.path, undefined, { after: from, ...(signal ? { signal } : {}) })) {
      if (r.revision > to) break;
      for (const e of r.events) {
        const k = e.key.toString('utf8');
        const p = prefixOf(k);
        let set = keys.get(p);
        if (!set) keys.set(p, (set = new Set()));
        // Bounded: past 100k distinct keys per prefix the count stops growing (it says "at least").
        if (set.size < 100_000) set.add(k);
        total++;
      }
    }
  }
  void total;
  return Object.fromEntries([...keys].sort((a, b) => b[1].size - a[1].size).map(([p, s]) => [p, s.size]));
}

export function prefixOf(key: string): string {
  if (!key.startsWith('/')) {
    const i = key.indexOf('/');
    return i < 0 ? key : key.slice(0, i + 1);
  }
  const parts = key.split('/');
  return parts.length > 3 ? `/${parts[1]}/${parts[2]}/` : `/${parts[1] ?? ''}/`;
}
