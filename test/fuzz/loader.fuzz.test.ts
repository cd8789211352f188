/**
 * Fuzzing the runbook loader (loadRunbook / loadRunbookText: size cap, UTF-8, YAML with positions, schema,
 * expressions). ~10,000 generated inputs per CI run at a fixed seed (FUZZ_RUNS / FUZZ_SEED for more: see
 * config.ts). For every input, whatever it is:
 *   - no crash: the loader returns a runbook or throws a UserError (exit code 2), nothing else;
 *   - every failure comes with diagnostics at a real file:line:col inside the input, each a short one-line
 *     message without a stack trace, under a one-line headline;
 *   - no hang: each input runs in a worker with a watchdog (the time per input is printed, not asserted: speed is
 *     measured by bench/loader-latency.ts and recorded in BENCHMARKS.md).
 * A run reports every kind of defect it met (with the shortest input that showed it), not just the first.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_SEED, runsFor, timeoutFor, Timings } from './config.ts';
import { Findings } from './findings.ts';
import { LoaderSandbox, type CheckResult } from './loader-sandbox.ts';
import { YAML_LIMITS } from '../../src/util/yaml-source.ts';
import { adversarial, byteInputs, mutatedSeeds, seedFiles, structuredRunbook, tokenSoup, unicodeText } from './runbook-arbitraries.ts';

/** Past this the worker is killed and the input counts as a hang: a watchdog for a loop that never ends, not a speed limit. */
const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 30_000);
/** A diagnostic that echoes more of the input than this floods the terminal. */
const MAX_MESSAGE = 1000;
const FILE = 'fuzz.yaml';
const seeds = seedFiles();
const timings = new Timings();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'runbook-fuzz-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  console.log(`loader fuzz (seed ${FUZZ_SEED}): ${timings.summary()}`);
});

function preview(input: string | Uint8Array): string {
  const s = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}… (${s.length} chars)` : s);
}

/** Record every way this answer breaks the loader's contract. */
function judge(r: CheckResult, input: string | Uint8Array, file: string, found: Findings): void {
  timings.add(r.ms, () => preview(input));
  const add = (kind: string, detail: string) => found.add(kind, input, detail);
  if (r.kind === 'hung') return add('hang', `no answer within ${HANG_MS} ms`);
  if (r.kind === 'crash') return add(`crash: ${r.name}`, `${r.message} ${r.stack.split('\n').slice(1, 4).join(' ')}`);
  if (r.kind === 'ok') return;
  if (r.exitCode !== 2) add('exit code', `UserError exit code ${r.exitCode}`);
  if (!r.message.trim() || r.message.includes('\n')) add('headline', `not one line: ${JSON.stringify(r.message.slice(0, 200))}`);
  if (r.diagnostics.length === 0) add('no diagnostics', r.message.slice(0, 300));
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const lines = text.split('\n');
  for (const d of r.diagnostics) {
    const where = `${d.file}:${d.line}:${d.col}: ${d.message.slice(0, 200)}`;
    if (d.file !== file) add('wrong file', where);
    const line = lines[d.line - 1];
    if (!Number.isInteger(d.line) || d.line < 1 || line === undefined) add('position: no such line', `${where} (the input has ${lines.length} lines)`);
    else {
      // Columns count UTF-16 units (bytes for a file that is not UTF-8): at most one past the end of the line.
      const width = Math.max(line.length, Buffer.byteLength(line, typeof input === 'string' ? 'utf8' : 'latin1'));
      if (!Number.isInteger(d.col) || d.col < 1 || d.col > width + 1) add('position: column past the end of the line', `${where} (line ${d.line} is ${line.length} long)`);
    }
    if (!d.message.trim()) add('empty message', where);
    if (d.message.length > MAX_MESSAGE) add('message echoes too much input', `${d.message.length} chars: ${where}`);
    if (d.message.includes('\n')) add('multi-line message', where);
    if (/\n\s+at .+:\d+:\d+/.test(d.message)) add('stack trace in message', where);
    if (/internal error/i.test(d.message)) add('internal error', where);
    if (d.message.includes('[object Object]') && !text.includes('[object Object]')) add('[object Object] in message', where);
  }
}

const params = (share: number) => ({ seed: FUZZ_SEED, numRuns: runsFor(share) });

/** Runs `share` of the inputs through a loader sandbox of its own (a timed-out test cannot disturb the next). */
async function campaign<T extends string | Uint8Array>(arb: fc.Arbitrary<T>, share: number, kind: 'text' | 'bytes'): Promise<void> {
  const found = new Findings();
  const sandbox = new LoaderSandbox(HANG_MS);
  let n = 0;
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        n++;
        if (kind === 'text') judge(await sandbox.check({ text: input as string, name: FILE }), input, FILE, found);
        else {
          const file = join(dir, FILE);
          writeFileSync(file, input);
          judge(await sandbox.check({ file, name: file }), input, file, found);
        }
      }),
      params(share),
    );
  } finally {
    await sandbox.close();
  }
  expect(n).toBe(runsFor(share));
  expect(found.report(), `loader defects (seed ${FUZZ_SEED}):\n${found.report()}`).toBe('');
}

describe(`runbook loader under fuzz (seed ${FUZZ_SEED})`, () => {
  it('YAML token soup', { timeout: timeoutFor(0.2, 2) }, () => campaign(tokenSoup, 0.2, 'text'));

  it('arbitrary unicode (control characters, lone surrogates, graphemes)', { timeout: timeoutFor(0.1, 2) }, () => campaign(unicodeText, 0.1, 'text'));

  it('mutations of the real runbooks, examples and fixtures', { timeout: timeoutFor(0.3, 3) }, () => campaign(mutatedSeeds(seeds.texts), 0.3, 'text'));

  it('runbook-shaped documents with wrong types and values everywhere', { timeout: timeoutFor(0.28, 3) }, () => campaign(structuredRunbook, 0.28, 'text'));

  it('resource attacks: nesting, huge scalars, alias bombs, many keys, NUL bytes, expression bombs, tags', { timeout: timeoutFor(0.07, 40) }, () =>
    campaign(adversarial, 0.07, 'text'));

  it('bytes from disk: random, invalid UTF-8, UTF-16', { timeout: timeoutFor(0.05, 3) }, () => campaign(byteInputs(seeds.bytes), 0.05, 'bytes'));

  it('the biggest inputs under the size cap load without a hang, answered by the contract (keys, steps, lines, nesting)', { timeout: 120_000 }, async () => {
    const found = new Findings();
    // just under the loader's size cap (whatever it is now), in the shapes that cost the most per byte
    const cap = YAML_LIMITS.maxBytes - 64;
    const fill = (unit: string, head = '') => head + unit.repeat(Math.floor((cap - head.length) / unit.length));
    const keys = `apiVersion: runbook/v1\n${Array.from({ length: Math.ceil(cap / 6) }, (_, i) => `k${i}: 1`).join('\n')}`.slice(0, cap).replace(/\n[^\n]*$/, '\n');
    const inputs = [
      keys,
      fill('  - {id: a, action: nope}\n', 'apiVersion: runbook/v1\nname: big\nsummary: big\nsteps:\n'),
      fill('  - {id: a, action: nope, when: "params.x =="}\n', 'apiVersion: runbook/v1\nname: big\nsummary: big\nsteps:\n'),
      fill('\n', 'apiVersion: runbook/v1\nname: big\nsummary: big\nsteps:\n  - id: a\n    action: etcd.write-probe\n'),
      `a: ${'['.repeat(cap - 3)}`,
      `a: ${'{a: '.repeat(Math.floor((cap - 3) / 4))}`,
    ];
    for (const t of inputs) expect(Buffer.byteLength(t)).toBeLessThanOrEqual(YAML_LIMITS.maxBytes);
    const sandbox = new LoaderSandbox(HANG_MS);
    try {
      for (const text of inputs) judge(await sandbox.check({ text, name: FILE }), text, FILE, found);
    } finally {
      await sandbox.close();
    }
    expect(found.report(), `loader defects on the biggest inputs:\n${found.report()}`).toBe('');
  });

  it('the watchdog turns a loader that never returns into a failure, not a stalled suite', async () => {
    const s = new LoaderSandbox(300);
    const hung = await s.check({ name: '__hang_for_test__', text: '' });
    expect(hung.kind).toBe('hung');
    // and the next input gets a fresh worker
    const next = await s.check({ name: FILE, text: 'a: 1' }, 60_000);
    expect(next.kind).toBe('user-error');
    await s.close();
  });
});
