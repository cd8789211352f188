import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { belongsTo, listSnapshots } from '../../../src/snapshot/list.ts';
import { applyRetention, planRetention } from '../../../src/snapshot/retention.ts';

const H = 3_600_000;
const now = Date.parse('2026-11-24T12:00:00Z');
const e = (name: string, hoursAgo: number) => ({ path: `/s/${name}`, createdAt: now - hoursAgo * H });

describe('planRetention', () => {
  const all = [e('a', 0), e('b', 1), e('c', 2), e('d', 30), e('e', 50)];
  const names = (xs: { path: string }[]) => xs.map((x) => x.path.slice(3));

  it('keepLast keeps the newest N, whatever the input order', () => {
    const p = planRetention([...all].reverse(), { keepLast: 2 }, now);
    expect(names(p.keep)).toEqual(['a', 'b']);
    expect(names(p.expire)).toEqual(['c', 'd', 'e']);
  });
  it('maxAge expires what is older, keepLast and maxAge together take the stricter', () => {
    expect(names(planRetention(all, { maxAgeMs: 24 * H }, now).keep)).toEqual(['a', 'b', 'c']);
    expect(names(planRetention(all, { keepLast: 4, maxAgeMs: 24 * H }, now).keep)).toEqual(['a', 'b', 'c']);
    expect(names(planRetention(all, { keepLast: 1, maxAgeMs: 24 * H }, now).keep)).toEqual(['a']);
  });
  it('never expires a protected snapshot (the one just saved), even past maxAge', () => {
    const p = planRetention(all, { keepLast: 1, maxAgeMs: H / 2 }, now, ['/s/e']);
    expect(names(p.keep)).toEqual(['a', 'e']);
  });
  it('no policy keeps everything', () => {
    expect(planRetention(all, {}, now).expire).toEqual([]);
  });
});

describe('applyRetention on a directory', () => {
  // Each test fills a directory of its own.
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'runbook-retention-'));
    dirs.push(d);
    return d;
  };
  const putter = (dir: string) => (name: string, hoursAgo: number, manifest?: { cluster: string }) => {
    const f = join(dir, name);
    writeFileSync(f, name);
    utimesSync(f, new Date(now - hoursAgo * H), new Date(now - hoursAgo * H));
    if (manifest) writeFileSync(`${f}.json`, JSON.stringify({ version: 1, file: name, cluster: manifest.cluster, sha256: 'a'.repeat(64), revision: 1, size: 1, createdAt: new Date(now - hoursAgo * H).toISOString() }));
  };

  it('moves only this cluster’s expired snapshots and their manifests into expired/, never clobbering', () => {
    const dir = newDir();
    const put = putter(dir);
    put('prod-20261124T110000Z.db', 1, { cluster: 'prod' });
    put('prod-20261124T100000Z.db', 2); // no manifest: ours by its name
    put('prod-20261123T000000Z.db', 36, { cluster: 'prod' });
    put('prod-copy.db', 50); // not our naming, no manifest: left alone
    put('stage-20261101T000000Z.db', 500, { cluster: 'stage' });
    put('prod-20261124T090000Z.db.part', 3); // an unfinished save: not a snapshot
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const r = applyRetention(dir, 'prod', { keepLast: 1 }, { now });
    expect(r.kept).toEqual([join(dir, 'prod-20261124T110000Z.db')]);
    expect(r.expired.map((x) => x.from).sort()).toEqual([join(dir, 'prod-20261123T000000Z.db'), join(dir, 'prod-20261124T100000Z.db')]);
    expect(readdirSync(join(dir, 'expired')).sort()).toEqual(['prod-20261123T000000Z.db', 'prod-20261123T000000Z.db.json', 'prod-20261124T100000Z.db']);
    expect(readdirSync(dir).sort()).toEqual(
      ['expired', 'notes.txt', 'prod-20261124T110000Z.db', 'prod-20261124T110000Z.db.json', 'prod-copy.db', 'prod-20261124T090000Z.db.part', 'stage-20261101T000000Z.db', 'stage-20261101T000000Z.db.json'].sort(),
    );
    // A second snapshot with an expired twin's name lands beside it, not over it.
    put('prod-20261123T000000Z.db', 36, { cluster: 'prod' });
    const r2 = applyRetention(dir, 'prod', { keepLast: 1 }, { now });
    expect(r2.expired).toEqual([{ from: join(dir, 'prod-20261123T000000Z.db'), to: join(dir, 'expired', 'prod-20261123T000000Z-2.db') }]);
    expect(readdirSync(join(dir, 'expired'))).toContain('prod-20261123T000000Z-2.db.json');
  });

  it('belongsTo: by manifest cluster, else by the <cluster>-<stamp>.db name', () => {
    const dir = newDir();
    const put = putter(dir);
    put('prod-20261124T110000Z.db', 1, { cluster: 'prod' });
    put('prod-20261124T100000Z.db', 2); // no manifest: ours by its name
    put('stage-named-prod-20261124T080000Z.db', 4, { cluster: 'prod' }); // the manifest says prod: ours
    put('prod-20261124T070000Z.db', 5, { cluster: 'stage' }); // the manifest says stage: not ours, whatever its name
    put('prod-copy.db', 50); // not our naming, no manifest: not ours
    put('stage-20261101T000000Z.db', 500, { cluster: 'stage' });
    put('prod-20261124T090000Z.db.part', 3); // an unfinished save: not a snapshot
    const list = listSnapshots(dir);
    expect(list.every((x) => !x.name.endsWith('.part'))).toBe(true);
    expect(list.filter((x) => belongsTo(x, 'prod')).map((x) => x.name).sort()).toEqual(['prod-20261124T100000Z.db', 'prod-20261124T110000Z.db', 'stage-named-prod-20261124T080000Z.db']);
    expect(list.filter((x) => belongsTo(x, 'stage')).map((x) => x.name).sort()).toEqual(['prod-20261124T070000Z.db', 'stage-20261101T000000Z.db']);
  });
});
