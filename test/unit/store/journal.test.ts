import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJournal, readJournal } from '../../../src/store/journal.ts';

function tmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-journal-'));
}

describe('journal', () => {
  it('appends numbered records and reads them back', () => {
    const file = path.join(tmp(), 'j.jsonl');
    const j = openJournal(file, 'r1');
    j.append({ type: 'step.skipped', stepId: 'a', reason: 'x' });
    j.append({ type: 'step.skipped', stepId: 'b', reason: 'y' });
    j.close();
    const r = readJournal(file);
    expect(r.records.map((x) => [x.seq, x.type, (x as { stepId?: string }).stepId])).toEqual([[1, 'step.skipped', 'a'], [2, 'step.skipped', 'b']]);
    expect(r.torn).toBeUndefined();
  });

  it('a torn last record is detected, moved aside (not lost), and appends continue after the last good one', () => {
    const dir = tmp();
    const file = path.join(dir, 'j.jsonl');
    const j = openJournal(file, 'r1');
    j.append({ type: 'step.skipped', stepId: 'a', reason: 'x' });
    j.close();
    fs.appendFileSync(file, '{"seq":2,"type":"step.star');
    expect(readJournal(file).torn).toEqual({ line: 2, bytes: 26 });
    const j2 = openJournal(file, 'r1');
    expect(j2.torn?.savedTo).toBeDefined();
    expect(fs.readFileSync(j2.torn!.savedTo!, 'utf8')).toBe('{"seq":2,"type":"step.star');
    const rec = j2.append({ type: 'step.skipped', stepId: 'b', reason: 'y' });
    j2.close();
    expect(rec.seq).toBe(2);
    const r = readJournal(file);
    expect(r.torn).toBeUndefined();
    expect(r.records.map((x) => x.seq)).toEqual([1, 2]);
  });

  it('damage before the last line is refused with the line number', () => {
    const file = path.join(tmp(), 'j.jsonl');
    fs.writeFileSync(file, '{"seq":1,"type":"a","ts":"x"}\nnot json\n{"seq":3,"type":"b","ts":"x"}\n');
    expect(() => readJournal(file)).toThrow(/j\.jsonl:2:1: journal record is not valid JSON/);
  });
});
