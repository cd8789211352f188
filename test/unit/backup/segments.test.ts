/**
 * Delta segments on a real file system: records round-trip (binary keys, leases, deletes with prev values), a
 * revision's events stay in one record, rotation seals with a sha256 that matches the file, and a torn tail left
 * by a crash is cut on recovery while the whole torn file is kept aside (nothing deleted).
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { catalog, chooseBase, prefixOf } from '../../../src/backup/chain.ts';
import { decodeRecord, encodeRecord, type BaseSnapshotRef, type RevisionRecord } from '../../../src/backup/record.ts';
import { recoverOpenSegments } from '../../../src/backup/recover.ts';
import { readRecords, scanSegment } from '../../../src/backup/segment-reader.ts';
import { SegmentWriter } from '../../../src/backup/segment-writer.ts';
import { deltasDir, listSegments } from '../../../src/backup/segments.ts';

const base: BaseSnapshotRef = { file: 'c-20260101T000000Z.db', sha256: 'a'.repeat(64), revision: 10, createdAt: '2026-01-01T00:00:00.000Z' };
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'runbook-seg-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function rec(revision: number, n = 1): RevisionRecord {
  return {
    revision,
    observedAt: 1_700_000_000_000 + revision,
    events: Array.from({ length: n }, (_, i) => ({ type: 'put' as const, key: Buffer.from(`/k/${revision}/${i}`), value: Buffer.from([0, 255, i]), lease: i === 0 ? '7587888888888888888' : '0' })),
  };
}

describe('records', () => {
  it('round-trip binary keys and values, leases as strings, deletes with their previous value', () => {
    const r: RevisionRecord = {
      revision: 42,
      observedAt: 5,
      events: [
        { type: 'put', key: Buffer.from([0, 1, 0xff]), value: Buffer.from('v'), lease: '7587888888888888888' },
        { type: 'delete', key: Buffer.from('/gone'), prevValue: Buffer.from('old') },
      ],
      leases: { '7587888888888888888': 30 },
    };
    const line = encodeRecord(r);
    expect(line.at(-1)).toBe(0x0a);
    expect(decodeRecord(line.subarray(0, -1))).toEqual(r);
  });

  it('a flipped byte fails the checksum', () => {
    const line = Buffer.from(encodeRecord(rec(3)).subarray(0, -1));
    line[20] = line[20]! ^ 1;
    expect(decodeRecord(line)).toBeUndefined();
  });

  it('key prefixes group like kubectl resources', () => {
    expect(prefixOf('/registry/namespaces/default')).toBe('/registry/namespaces/');
    expect(prefixOf('/registry/pods/ns/p')).toBe('/registry/pods/');
    expect(prefixOf('app/x')).toBe('app/');
  });
});

describe('writer, sealing and recovery', () => {
  it('rotates by size, keeps each revision whole, seals with the sha256 of the file', async () => {
    const dir = tmp();
    const w = new SegmentWriter({ backupDir: dir, cluster: 'c', policy: { maxBytes: 600, maxAgeMs: 3600_000 }, after: 10, base });
    for (let r = 11; r <= 40; r++) {
      w.append(rec(r, 3));
      if (w.due()) await w.seal();
    }
    await w.seal();
    const segs = listSegments(dir, 'c');
    expect(segs.length).toBeGreaterThan(2);
    expect(segs.every((s) => s.state === 'sealed')).toBe(true);
    let expectAfter = 10;
    for (const s of segs) {
      const m = s.manifest!;
      expect(m.after).toBe(expectAfter);
      expect(createHash('sha256').update(readFileSync(s.path)).digest('hex')).toBe(m.sha256);
      const got: number[] = [];
      for await (const r of readRecords(s.path)) {
        expect(r.events).toHaveLength(3); // never split
        got.push(r.revision);
      }
      expect(got[0]).toBe(m.firstRevision);
      expect(got.at(-1)).toBe(m.lastRevision);
      expectAfter = m.lastRevision;
    }
    expect(expectAfter).toBe(40);
    const c = await catalog([dir], 'c', { verify: true });
    expect(c.runs).toEqual([{ from: 10, to: 40, spans: expect.any(Array) }]);
  });

  it('a torn tail is cut on recovery; the torn file is kept aside; complete records are sealed', async () => {
    const dir = tmp();
    const w = new SegmentWriter({ backupDir: dir, cluster: 'c', policy: { maxBytes: 1 << 30, maxAgeMs: 3600_000 }, after: 10, base });
    for (let r = 11; r <= 15; r++) w.append(rec(r));
    w.close(); // a crash: not sealed
    const open = listSegments(dir, 'c')[0]!;
    const half = encodeRecord(rec(16)).subarray(0, 30);
    appendFileSync(open.path, half);
    expect((await scanSegment(open.path)).tornBytes).toBe(30);

    const r = await recoverOpenSegments(dir, 'c');
    expect(r.movedAside).toHaveLength(1);
    expect(r.movedAside[0]!.to).toMatch(/\.open\.torn-\d{8}T\d{6}Z/);
    expect(readFileSync(r.movedAside[0]!.to).subarray(-30)).toEqual(half); // kept whole
    expect(r.sealed).toHaveLength(1);
    expect(r.sealed[0]).toMatchObject({ after: 10, firstRevision: 11, lastRevision: 15, records: 5 });
    expect(readdirSync(deltasDir(dir)).filter((f) => f.endsWith('.open'))).toEqual([]);

    // The next stream continues from 15 without writing 11..15 twice.
    const w2 = new SegmentWriter({ backupDir: dir, cluster: 'c', policy: { maxBytes: 1 << 30, maxAgeMs: 3600_000 }, after: 15, base });
    w2.append(rec(15));
    w2.append(rec(16));
    await w2.seal();
    const c = await catalog([dir], 'c', { verify: true });
    expect(c.runs.map((x) => [x.from, x.to])).toEqual([[10, 16]]);
  });

  it('a gap splits the log: a target inside it has no base', async () => {
    const dir = tmp();
    const w = new SegmentWriter({ backupDir: dir, cluster: 'c', policy: { maxBytes: 1 << 30, maxAgeMs: 3600_000 }, after: 10, base });
    for (let r = 11; r <= 12; r++) w.append(rec(r));
    await w.restartAt(20, { ...base, revision: 20 });
    w.append(rec(21));
    await w.seal();
    const c = await catalog([dir], 'c');
    expect(c.runs.map((x) => [x.from, x.to])).toEqual([[10, 12], [20, 21]]);
    // No snapshot manifests in this dir: no base at all.
    expect(chooseBase(c, 15)).toBeUndefined();
  });
});
