/**
 * The run lifecycle through real CLI processes: Ctrl-C and SIGTERM leave a resumable run (exit 130/143 with the
 * resume command), two concurrent runs on one cluster (one refused, naming the holder), approvals and denials
 * from another process, --json events, status and history, stale locks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli as runCli, type CliRun } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const rb = path.join(root, 'test/fixtures/valid/slow-steps.yaml');
let dir = '';
let stateDir = '';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-cli-'));
  stateDir = path.join(dir, 'state');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): CliRun {
  return runCli(args);
}
const common = () => ['--endpoints', 'http://127.0.0.1:9', '--state-dir', stateDir, '-p', `dir=${dir}`];

function effects(): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'effects'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitForText(p: { stdout?: NodeJS.ReadableStream | null }, re: RegExp, ms = 20_000): Promise<string> {
  let buf = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got:\n${buf}`)), ms);
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        resolve(buf);
      }
    });
  });
}

function runIdOf(text: string): string {
  const m = /run (\d{8}-\d{6}-[a-z0-9-]+-[0-9a-f]{6})/.exec(text);
  if (!m) throw new Error(`no run id in:\n${text}`);
  return m[1]!;
}

describe('run lifecycle (real CLI processes)', () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal} during a step: journal closed, exit ${code}, says how to resume; resume finishes without repeating`, async () => {
      const p = cli(['run', rb, ...common(), '-p', 'pause=20s', '--yes']);
      const out = await waitForText(p, /… pause/);
      const runId = runIdOf(out);
      p.kill(signal);
      const r = await p;
      expect(r.exitCode).toBe(code);
      expect(r.stderr).toContain(`runbook resume ${runId}`);
      const journal = fs.readFileSync(path.join(stateDir, 'runs', runId, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(journal.at(-1)).toMatchObject({ type: 'run.finished', status: 'cancelled' });
      expect(effects()).toEqual(['one']);

      const resumed = await cli(['resume', runId, '--state-dir', stateDir, '--yes']);
      expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
      expect(effects()).toEqual(['one', 'two']);
    });
  }

  it('two concurrent runs on one cluster: exactly one proceeds, the other exits 4 naming the holder', async () => {
    const first = cli(['run', rb, ...common(), '-p', 'pause=5s', '--yes']);
    const out = await waitForText(first, /… pause/);
    const holder = runIdOf(out);
    const second = await cli(['run', rb, ...common(), '--yes']);
    expect(second.exitCode).toBe(4);
    expect(second.stderr).toContain(`locked by run ${holder}`);
    expect((await first).exitCode).toBe(0);
    expect(fs.readdirSync(path.join(stateDir, 'runs'))).toEqual([holder]);
  });

  it('a stale lock of a dead process: refused with the resume hint; --break-lock takes over', async () => {
    const first = cli(['run', rb, ...common(), '-p', 'pause=20s', '--yes']);
    const holder = runIdOf(await waitForText(first, /… pause/));
    first.kill('SIGKILL');
    await first;
    const refused = await cli(['run', rb, ...common(), '--yes', '-p', 'pause=0s']);
    expect(refused.exitCode).toBe(4);
    expect(refused.stderr).toContain(`stale lock from run ${holder}`);
    expect(refused.stderr).toContain('--break-lock');
    const taken = await cli(['run', rb, ...common(), '--yes', '-p', 'pause=0s', '--break-lock']);
    expect(taken.exitCode, taken.stderr).toBe(0);
    // the old lock was moved aside, not lost (in the machine-wide lock dir; the test setup gives each file its own)
    expect(fs.readdirSync(process.env.RUNBOOK_LOCK_DIR!).some((f) => f.includes('.stale-'))).toBe(true);
  });

  it('approval from another process: the run waits, `runbook approve` lets it finish', async () => {
    const p = cli(['run', rb, ...common(), '-p', 'pause=0s', '--wait-for-approval']);
    const out = await waitForText(p, /waiting for approval/);
    const runId = runIdOf(out);
    expect(effects()).toEqual(['one']);
    const a = await cli(['approve', runId, 'confirm', '--state-dir', stateDir]);
    expect(a.exitCode, a.stderr).toBe(0);
    const again = await cli(['deny', runId, 'confirm', '--state-dir', stateDir]);
    expect(again.exitCode).toBe(2); // already decided: the first decision wins
    expect(again.stderr).toMatch(/already granted/);
    const r = await p;
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
  });

  it('approve/deny of a step that is not waiting, not an approval or not in the run: exit 2 naming what waits', async () => {
    const p = cli(['run', rb, ...common(), '-p', 'pause=0s', '--wait-for-approval']);
    const runId = runIdOf(await waitForText(p, /waiting for approval/));
    const missing = await cli(['approve', runId, 'nonexistent-step', '--state-dir', stateDir]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/has no step "nonexistent-step"; waiting for approval: "confirm"/);
    expect(missing.stdout).not.toMatch(/approved/);
    const notApproval = await cli(['deny', runId, 'two', '--state-dir', stateDir]);
    expect(notApproval.exitCode).toBe(2);
    expect(notApproval.stderr).toMatch(/step "two" .* does not ask for approval; waiting for approval: "confirm"/);
    const noRun = await cli(['approve', '20200101-000000-nope-abcdef', 'confirm', '--state-dir', stateDir]);
    expect(noRun.exitCode).toBe(2);
    expect(noRun.stderr).toMatch(/no run 20200101-000000-nope-abcdef/);
    // The refused decisions were not recorded: the run still waits, and the real approval lets it finish.
    expect(fs.readdirSync(path.join(stateDir, 'runs', runId, 'approvals'))).toEqual([]);
    expect((await cli(['approve', runId, 'confirm', '--state-dir', stateDir])).exitCode).toBe(0);
    expect((await p).exitCode).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
  });

  it('Ctrl-C while waiting for approval: interrupted (130), not denied; resume asks again and finishes', async () => {
    const p = cli(['run', rb, ...common(), '-p', 'pause=0s', '--wait-for-approval']);
    const runId = runIdOf(await waitForText(p, /waiting for approval/));
    p.kill('SIGINT');
    const r = await p;
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain(`runbook resume ${runId}`);
    const resumed = await cli(['resume', runId, '--state-dir', stateDir, '--yes']);
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
  });

  it('a denial ends the run with exit 5; step two never runs', async () => {
    const p = cli(['run', rb, ...common(), '-p', 'pause=0s', '--wait-for-approval']);
    const runId = runIdOf(await waitForText(p, /waiting for approval/));
    const d = await cli(['deny', runId, 'confirm', '--state-dir', stateDir, '--reason', 'not during business hours']);
    expect(d.exitCode).toBe(0);
    const r = await p;
    expect(r.exitCode).toBe(5);
    expect(r.stdout).toMatch(/denied by .*not during business hours/);
    expect(effects()).toEqual(['one']);
  });

  it('--json prints one JSON event per line; status and history read the journal', async () => {
    const r = await cli(['run', rb, ...common(), '-p', 'pause=0s', '--yes', '--json']);
    expect(r.exitCode).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; runId: string });
    expect(events[0]!.type).toBe('run.started');
    expect(events.at(-1)!.type).toBe('run.finished');
    const runId = events[0]!.runId;
    const st = await cli(['status', runId, '--state-dir', stateDir, '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ runId, status: 'succeeded', runbook: 'slow-steps' });
    const h = await cli(['history', '--state-dir', stateDir]);
    expect(h.stdout).toContain(runId);
    expect(h.stdout).toContain('succeeded');
  });
});
