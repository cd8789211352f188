/**
 * Approvals as an operator meets them: the CLI in a real pseudo-terminal (prompt, answer, Ctrl-C at the prompt,
 * a resumed run that stops at its gate asks again, a decision from another terminal takes the question down),
 * and without a terminal (cron, CI): the run never hangs, it stops with exit 3 and says exactly what to type.
 * The runbook is test/fixtures/valid/slow-steps.yaml: two harmless exec steps around an approval; its effects
 * file says which steps really ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inPty } from '../support/pty.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const rb = path.join(root, 'test/fixtures/valid/slow-steps.yaml');
let dir = '';
let stateDir = '';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-tty-'));
  stateDir = path.join(dir, 'state');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Without a terminal: stdin is not a TTY (closed), stdout/stderr are pipes. */
function cli(args: string[]) {
  return runCli(args, { stdin: 'ignore' });
}
const runArgs = () => ['run', rb, '--endpoints', 'http://127.0.0.1:9', '--state-dir', stateDir, '-p', `dir=${dir}`, '-p', 'pause=0s'];
const tty = (args: string[]) => inPty([process.execPath, bin, ...args], { NO_COLOR: '1' });

function effects(): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'effects'), 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
function runIdOf(text: string): string {
  const m = /run (\d{8}-\d{6}-[a-z0-9-]+-[0-9a-f]{6})/.exec(text);
  if (!m) throw new Error(`no run id in:\n${text}`);
  return m[1]!;
}
function lastRecord(runId: string): Record<string, unknown> {
  const lines = fs.readFileSync(path.join(stateDir, 'runs', runId, 'journal.jsonl'), 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

describe('approvals without a terminal: never hang', () => {
  it('stops at the approval with exit 3, prints the exact approve and resume commands, which then finish the run', async () => {
    const r = await cli(runArgs());
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    const runId = runIdOf(r.stdout);
    expect(effects()).toEqual(['one']);
    expect(lastRecord(runId)).toMatchObject({ type: 'run.finished', status: 'awaiting-approval' });
    const approve = new RegExp(`runbook approve ${runId} confirm --state-dir \\S+`).exec(r.stderr)?.[0];
    const resume = new RegExp(`runbook resume ${runId} --state-dir \\S+`).exec(r.stderr)?.[0];
    expect(approve, r.stderr).toBeDefined();
    expect(resume, r.stderr).toBeDefined();

    const st = await cli(['status', runId, '--state-dir', stateDir]);
    expect(st.stdout).toMatch(new RegExp(`waiting for approval of confirm since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z`));
    expect(st.stdout).toContain(`runbook approve ${runId} confirm`);

    // What it printed, typed as printed (`runbook` being this checkout's CLI).
    const approved = await cli(approve!.split(' ').slice(1));
    expect(approved.exitCode, approved.stderr).toBe(0);
    const resumed = await cli(resume!.split(' ').slice(1));
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
  });

  it('a resume that reaches the still-undecided gate stops again with exit 3 (not a hang); a denial then ends it', async () => {
    const runId = runIdOf((await cli(runArgs())).stdout);
    const again = await cli(['resume', runId, '--state-dir', stateDir]);
    expect(again.exitCode, again.stdout + again.stderr).toBe(3);
    expect(again.stderr).toContain(`runbook approve ${runId} confirm`);
    expect((await cli(['deny', runId, 'confirm', '--state-dir', stateDir, '--reason', 'not now'])).exitCode).toBe(0);
    const denied = await cli(['resume', runId, '--state-dir', stateDir]);
    expect(denied.exitCode, denied.stdout + denied.stderr).toBe(5);
    expect(effects()).toEqual(['one']);
  });
});

describe('approvals at a terminal (pseudo-terminal)', () => {
  it('asks [y/N]; "y" approves and the run finishes', async () => {
    const p = tty(runArgs());
    await p.waitFor(/Approve step "confirm".*\[y\/N\]/);
    expect(effects()).toEqual(['one']);
    p.type('y\r');
    const r = await p.done;
    expect(r.exitCode, p.screen()).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
    expect(lastRecord(runIdOf(p.screen()))).toMatchObject({ type: 'run.finished', status: 'succeeded' });
  });

  it('the first Ctrl-C at the prompt interrupts: exit 130, resumable, not denied', async () => {
    const p = tty(runArgs());
    await p.waitFor(/\[y\/N\]/);
    p.type('\x03');
    const r = await p.done;
    expect(r.exitCode, p.screen()).toBe(130);
    const runId = runIdOf(p.screen());
    expect(p.screen()).toContain(`runbook resume ${runId}`);
    expect(lastRecord(runId)).toMatchObject({ type: 'run.finished', status: 'cancelled' });
    expect(effects()).toEqual(['one']);
  });

  it('a run resumed at its gate asks again, and the answer is taken', async () => {
    const runId = runIdOf((await cli(runArgs())).stdout); // stopped at the gate (exit 3)
    const p = tty(['resume', runId, '--state-dir', stateDir]);
    await p.waitFor(/Approve step "confirm".*\[y\/N\]/);
    p.type('y\r');
    const r = await p.done;
    expect(r.exitCode, p.screen()).toBe(0);
    expect(effects()).toEqual(['one', 'two']);
  });

  it('a decision from another terminal takes the question down and the run goes on', async () => {
    const p = tty(runArgs());
    await p.waitFor(/\[y\/N\]/);
    const runId = runIdOf(p.screen());
    expect((await cli(['approve', runId, 'confirm', '--state-dir', stateDir])).exitCode).toBe(0);
    const r = await p.done;
    expect(r.exitCode, p.screen()).toBe(0);
    expect(p.screen()).toMatch(/decided: approved by/);
    expect(effects()).toEqual(['one', 'two']);
  });
});
