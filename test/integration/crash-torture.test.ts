/**
 * Crash torture: the runner is a real child process (bin/runbook.js) killed with SIGKILL at deterministic points
 * (RUNBOOK_FAILPOINT: just before or just after the N-th journal record — "before step.succeeded" is a crash after
 * a step's effect and before its checkpoint), then resumed. Every run must end like an uninterrupted one, and the
 * non-idempotent step's effect must happen exactly once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../src/store/journal.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const rb = path.join(root, 'test/fixtures/valid/crash-torture.yaml');

async function runner(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env });
}

function effects(dir: string): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'effects'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function onlyRun(stateDir: string): string {
  const runs = fs.readdirSync(path.join(stateDir, 'runs'));
  expect(runs).toHaveLength(1);
  return runs[0]!;
}

/** The notes of the run's `run.resumed` records: how each resume rebuilt its state. */
function resumeNotes(stateDir: string, runId: string): string[] {
  return readJournal(path.join(stateDir, 'runs', runId, 'journal.jsonl')).records.flatMap((r) => (r.type === 'run.resumed' && r.note ? [r.note] : []));
}

describe('crash torture (real runner process, SIGKILL, resume)', () => {
  it('an uninterrupted run: reference outcome and record count', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-torture-'));
    const r = await runner(['run', rb, '--endpoints', 'http://127.0.0.1:9', '--state-dir', path.join(dir, 'state'), '-p', `dir=${dir}`]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(effects(dir)).toEqual(['first', 'each-a', 'each-b', 'each-c', 'once', 'last']);
    const recs = readJournal(path.join(dir, 'state/runs', onlyRun(path.join(dir, 'state')), 'journal.jsonl')).records;
    expect(recs.length).toBeGreaterThan(20);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // 26 kill points: before and after records 2..14 (covers every step boundary and the inside of each step).
  const points = Array.from({ length: 13 }, (_, i) => i + 2).flatMap((n) => [`journal-before:${n}`, `journal-after:${n}`]);
  it.each(points)('killed at %s, resumed: same outcome, non-idempotent effect exactly once', async (failpoint) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-torture-'));
    const stateDir = path.join(dir, 'state');
    const first = await runner(['run', rb, '--endpoints', 'http://127.0.0.1:9', '--state-dir', stateDir, '-p', `dir=${dir}`], { RUNBOOK_FAILPOINT: failpoint });
    expect(first.signal).toBe('SIGKILL');
    const runId = onlyRun(stateDir);
    let resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    if (resumed.exitCode === 1 && /not safe to repeat/.test(resumed.stdout + resumed.stderr)) {
      // The runner died inside the non-idempotent step before its effect: the engine stops and asks a human.
      // Do what the message says a human should: check, then choose.
      expect(resumed.stdout).toContain('--rerun once');
      const happened = effects(dir).includes('once');
      resumed = await runner(['resume', runId, '--state-dir', stateDir, happened ? '--mark-done' : '--rerun', 'once']);
    }
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    const e = effects(dir);
    expect(e.filter((x) => x === 'once')).toHaveLength(1);
    expect(e.at(-1)).toBe('last');
    for (const want of ['first', 'each-a', 'each-b', 'each-c']) expect(e).toContain(want);
    // resumed runs never leave a torn journal behind them
    const recs = readJournal(path.join(stateDir, 'runs', runId, 'journal.jsonl'));
    expect(recs.records.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a damaged machine snapshot: resume replays from the journal and still finishes exactly once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-torture-'));
    const stateDir = path.join(dir, 'state');
    const first = await runner(['run', rb, '--endpoints', 'http://127.0.0.1:9', '--state-dir', stateDir, '-p', `dir=${dir}`], { RUNBOOK_FAILPOINT: 'journal-before:step.succeeded:each:2' });
    expect(first.signal).toBe('SIGKILL');
    const runId = onlyRun(stateDir);
    fs.writeFileSync(path.join(stateDir, 'runs', runId, 'snapshot.json'), '{"hash":"x","snap'); // torn write
    const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/replaying from the journal/);
    const e = effects(dir);
    expect(e.filter((x) => x === 'once')).toHaveLength(1);
    expect(e.filter((x) => x === 'first')).toHaveLength(1);
    expect(e.filter((x) => x === 'each-a')).toHaveLength(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resumes use both paths: the persisted xstate snapshot (in-flight step re-invoked) and a replay from the journal', async () => {
    // The same kill point twice: with its machine snapshot intact, and with it torn.
    const notes: string[] = [];
    for (const torn of [false, true]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-torture-'));
      const stateDir = path.join(dir, 'state');
      const first = await runner(['run', rb, '--endpoints', 'http://127.0.0.1:9', '--state-dir', stateDir, '-p', `dir=${dir}`], { RUNBOOK_FAILPOINT: 'journal-before:step.succeeded:each:2' });
      expect(first.signal).toBe('SIGKILL');
      const runId = onlyRun(stateDir);
      if (torn) fs.writeFileSync(path.join(stateDir, 'runs', runId, 'snapshot.json'), '{"hash":"x","snap');
      const resumed = await runner(['resume', runId, '--state-dir', stateDir]);
      expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
      notes.push(...resumeNotes(stateDir, runId));
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(notes.some((n) => /persisted machine snapshot/.test(n)), notes.join('\n')).toBe(true);
    expect(notes.some((n) => /replaying from the journal/.test(n)), notes.join('\n')).toBe(true);
  });
});
