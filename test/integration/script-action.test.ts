/**
 * `action: script` through the real CLI: the shipped example (examples/cluster-check.yaml with
 * examples/checks/etcd-members-agree.mjs, a zx script calling the real etcdctl) against a real 3-member cluster,
 * with a parameter that would run a command if it were ever spliced into code; the check failing when a member is
 * down; probe and idempotence as for `exec`; a missing script reported at its line by `validate`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../support/etcd-cluster.ts';
import { cli as runCli } from '../support/cli.ts';

const root = path.resolve(import.meta.dirname, '../..');
const bin = path.join(root, 'bin/runbook.js');
const example = path.join(root, 'examples/cluster-check.yaml');
let dir = '';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-script-test-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]) {
  return runCli(args, { stdin: 'ignore', timeout: 90_000 });
}
type Rec = { type: string; stepId?: string; output?: { exitCode: number; output: string; result?: Record<string, unknown> }; via?: string };
function journal(stateDir: string): Rec[] {
  const [runId] = fs.readdirSync(path.join(stateDir, 'runs'));
  return fs.readFileSync(path.join(stateDir, 'runs', runId!, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
}

describe('the shipped zx example on a real cluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster({ name: 'script' });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it('a parameter full of shell syntax reaches the script as data: nothing runs, the literal key is counted', async () => {
    const pwned = path.join(dir, 'pwned');
    const prefix = `$(touch ${pwned})\`touch ${pwned}\`;touch ${pwned}`;
    await cluster.client().put(`${prefix}/k`).value('v').exec();
    const stateDir = path.join(dir, 'state');
    const r = await cli(['run', example, '-i', cluster.writeInventory(), '--state-dir', stateDir, '-p', `keyPrefix=${prefix}`]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(pwned)).toBe(false);
    const done = journal(stateDir).find((x) => x.type === 'step.succeeded' && x.stepId === 'members-agree');
    expect(done?.output?.exitCode).toBe(0);
    expect(done?.output?.result).toMatchObject({ keyPrefix: prefix, keysUnderPrefix: 1, problems: [] });
    expect(Object.keys(done!.output!.result!.members as object)).toHaveLength(3);
    expect(r.stdout).toMatch(/3 members agree: leader [0-9a-f]+/);
  });

  it('the check fails, naming the member, when one is down', async () => {
    const victim = cluster.members[2]!;
    await cluster.stop(victim.name);
    try {
      const stateDir = path.join(dir, 'state');
      const r = await cli(['run', example, '-i', cluster.writeInventory(), '--state-dir', stateDir]);
      expect(r.exitCode, r.stdout + r.stderr).toBe(1);
      expect(r.stdout + r.stderr).toContain(`not answering: ${victim.clientURL}`);
    } finally {
      await cluster.start(victim.name);
      await cluster.waitHealthy();
    }
  });
});

describe('script steps: probe, idempotence, files', () => {
  function writeRunbook(extra = ''): string {
    fs.mkdirSync(path.join(dir, 'scripts'));
    // The run appends one line per real execution; the probe says done once the marker exists.
    fs.writeFileSync(path.join(dir, 'scripts', 'change.mjs'), [
      'const input = JSON.parse(process.env.RUNBOOK_INPUT)',
      "fs.appendFileSync(path.join(input.args.dir, 'effects'), `ran ${input.args.label}\\n`)",
      "fs.writeFileSync(path.join(input.args.dir, 'marker'), '')",
      'fs.writeFileSync(process.env.RUNBOOK_RESULT, JSON.stringify({ label: input.args.label, earlier: input.steps.first.output.exitCode }))',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, 'scripts', 'done.mjs'), "process.exit(fs.existsSync(path.join(JSON.parse(process.env.RUNBOOK_INPUT).args.dir, 'marker')) ? 0 : 1)\n");
    const file = path.join(dir, 'rb.yaml');
    fs.writeFileSync(file, [
      'apiVersion: runbook/v1', 'name: scripted', 'summary: a script step with a probe',
      'params:', '  dir: { type: string }', '  label: { type: string, default: "a; b" }',
      'steps:',
      '  - id: first', '    action: exec', '    with: { argv: ["true"], idempotent: true }',
      '  - id: change', '    action: script', '    with:', '      file: scripts/change.mjs', '      probe: scripts/done.mjs',
      '      args: { dir: "${{ params.dir }}", label: "${{ params.label }}" }', extra,
    ].join('\n'));
    return file;
  }
  const effects = () => (fs.existsSync(path.join(dir, 'effects')) ? fs.readFileSync(path.join(dir, 'effects'), 'utf8').trim().split('\n') : []);

  it('runs once with its data and earlier outputs; a second run finds the effect by its probe and does not repeat it', async () => {
    const rb = writeRunbook();
    const common = ['--endpoints', 'http://127.0.0.1:9', '-p', `dir=${dir}`];
    const first = await cli(['run', rb, ...common, '--state-dir', path.join(dir, 's1')]);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(effects()).toEqual(['ran a; b']);
    expect(journal(path.join(dir, 's1')).find((x) => x.type === 'step.succeeded' && x.stepId === 'change')?.output?.result).toEqual({ label: 'a; b', earlier: 0 });

    const second = await cli(['run', rb, ...common, '--state-dir', path.join(dir, 's2')]);
    expect(second.exitCode, second.stdout + second.stderr).toBe(0);
    expect(effects()).toEqual(['ran a; b']);
    expect(journal(path.join(dir, 's2')).find((x) => x.type === 'step.succeeded' && x.stepId === 'change')?.via).toBe('probe');
  });

  it('validate reports a missing script at its line; a failing script fails the step with its output', async () => {
    const rb = writeRunbook();
    fs.renameSync(path.join(dir, 'scripts', 'change.mjs'), path.join(dir, 'scripts', 'change.mjs.moved'));
    const v = await cli(['validate', rb]);
    expect(v.exitCode).toBe(2);
    expect(v.stderr).toMatch(new RegExp(`${rb.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:14:13: step "change": with.file: script "scripts/change.mjs" not found`));

    fs.writeFileSync(path.join(dir, 'scripts', 'change.mjs'), "echo('about to fail'); process.exit(3)\n");
    const r = await cli(['run', rb, '--endpoints', 'http://127.0.0.1:9', '-p', `dir=${dir}`, '--state-dir', path.join(dir, 's')]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/script change\.mjs exited 3:\s+about to fail/);
  });
});
