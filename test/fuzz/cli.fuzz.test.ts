/**
 * Fuzzing the command line: `main(argv, io)` from src/cli/main.ts driven in-process with a capturing Io, ~10,000
 * generated argument vectors per CI run at a fixed seed (FUZZ_RUNS / FUZZ_SEED: see config.ts).
 *   - any argv: exit 0 or 2 (never an internal error, exit 1), no stack trace, an error always says something,
 *     no hang (a watchdog; the time per argv is printed, its speed recorded in BENCHMARKS.md, not asserted);
 *   - one injected mistake in an otherwise sensible command: exit 2 and a message that names the bad flag,
 *     param, file or command.
 *
 * Safety: the fuzzer must never start a real run. Commands that reach a cluster only ever get targets that cannot
 * work (`--endpoints` values that fail to parse, inventories that fail to load: both checked up front), the
 * environment has no ETCDCTL_* / RUNBOOK_INVENTORY, state dirs live under a temp dir, and `rehearse` (which starts
 * clusters) only gets parse errors.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/output.ts';
import { inventoryFromEndpoints } from '../../src/inventory/endpoints.ts';
import { loadInventory } from '../../src/inventory/load.ts';
import { UserError } from '../../src/util/errors.ts';
import { FUZZ_SEED, runsFor, timeoutFor, Timings } from './config.ts';
import { Findings } from './findings.ts';
import { nastyString } from './runbook-arbitraries.ts';

const ROOT = resolve(import.meta.dirname, '../..');
/** Past this main() counts as hung: a watchdog for a call that never settles, not a speed limit (bench/ has speed). */
const HANG_MS = Number(process.env.FUZZ_HANG_MS ?? 30_000);
const RUN_ID = '20261124-153349-nospace-recovery-410c94';
const timings = new Timings();
let dir = '';
let env: NodeJS.ProcessEnv = {};
/** Inventory-file values: none of them loads (checked in beforeAll). */
let badInventories: string[] = [];
let files: string[] = [];

/** `--endpoints` values that cannot become a target (checked in beforeAll): so no run ever starts. */
/** Looks like a target but does not parse (port out of range): a mistake the fuzzer injects is reported first. */
const NO_TARGET = 'http://127.0.0.1:99999';
const BAD_ENDPOINTS = ['', ',', ' , ', 'http://', 'https://', 'ftp://127.0.0.1:9', 'http://[::1', 'http://127.0.0.1:99999', 'http://127.0.0.1:-1', 'http://a b', '\u0000', 'http://127.0.0.1:9/path?x#y,http://127.0.0.1:9/path?x#y', 'unix:///tmp/x', '::::', 'http://%zz'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'runbook-clifuzz-'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'a-dir'));
  writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: runbook/v1\nname: Bad Name\nsteps: 3\n');
  writeFileSync(join(dir, 'garbage.bin'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]));
  writeFileSync(join(dir, 'empty.yaml'), '');
  writeFileSync(join(dir, 'inv-bad.yaml'), 'name: x\nmembers: 7\n');
  writeFileSync(join(dir, 'inv-list.yaml'), '- a\n- b\n');
  writeFileSync(join(dir, 'chatops-bad.yaml'), 'listen: nowhere\n');
  copyFileSync(join(ROOT, 'test/fixtures/valid/minimal.yaml'), join(dir, 'good.yaml'));
  badInventories = [join(dir, 'inv-bad.yaml'), join(dir, 'inv-list.yaml'), join(dir, 'garbage.bin'), join(dir, 'empty.yaml'), join(dir, 'a-dir'), join(dir, 'missing.yaml'), join(dir, 'bad.yaml')];
  files = [...badInventories, join(dir, 'good.yaml'), join(dir, 'chatops-bad.yaml'), join(ROOT, 'runbooks/nospace-recovery.yaml'), 'runbooks/nospace-recovery.yaml', '/dev/null', '.', '..', '-'];
  env = { RUNBOOK_STATE_DIR: join(dir, 'state'), HOME: dir, XDG_STATE_HOME: join(dir, 'xdg'), PATH: process.env.PATH ?? '/usr/bin', NO_COLOR: '1' };
  // The safety of this test rests on these: no value it can pass makes a usable target.
  for (const e of BAD_ENDPOINTS) expect(() => inventoryFromEndpoints(e, {}, {}), `endpoint ${JSON.stringify(e)} must not parse`).toThrow(UserError);
  for (const f of badInventories) expect(() => loadInventory(f), `inventory ${f} must not load`).toThrow(UserError);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  console.log(`cli fuzz (seed ${FUZZ_SEED}): ${timings.summary()}`);
});

interface Outcome {
  code: number;
  out: string;
  err: string;
  ms: number;
}

async function drive(argv: string[]): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), isTTY: false, color: false, env: { ...env }, cwd: dir };
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<number>((resolveHang) => {
    timer = setTimeout(() => resolveHang(-1), HANG_MS);
  });
  const code = await Promise.race([main(argv, io), hang]);
  clearTimeout(timer);
  return { code, out: out.join('\n'), err: err.join('\n'), ms: performance.now() - t0 };
}

/** Every argv: exit 0 or 2, errors say something, no stack traces, no internal errors, no hang. */
function judge(argv: string[], o: Outcome, found: Findings): void {
  timings.add(o.ms, () => JSON.stringify(argv).slice(0, 160));
  const add = (kind: string, detail: string) => found.add(kind, argv, detail);
  if (o.code === -1) return add('hang', 'main() did not settle');
  if (o.code !== 0 && o.code !== 2) add(`exit ${o.code}`, o.err.slice(0, 400));
  if (o.code === 2 && !o.err.trim()) add('exit 2 without a message', o.out.slice(0, 200));
  const all = `${o.out}\n${o.err}`;
  if (/^\s+at .+:\d+:\d+\)?$/m.test(all)) add('stack trace', o.err.slice(0, 400));
  if (/internal error/i.test(all)) add('internal error', o.err.slice(0, 400));
}

// ---- generators ------------------------------------------------------------------------------------------

const SAFE_COMMANDS = ['list', 'show', 'validate', 'schema', 'actions', 'plan', 'run', 'resume', 'approve', 'deny', 'status', 'history', 'serve', 'help'];
const ALL_FLAGS = [
  '--json', '--mermaid', '-i', '--inventory', '--endpoints', '--cacert', '--cert', '--key', '--insecure-skip-tls-verify', '-p', '--param', '--state-dir',
  '-v', '--verbose', '-y', '--yes', '--dry-run', '--break-lock', '--saved-runbook', '--mark-done', '--rerun', '--reason', '-n', '--limit', '-c', '--config',
  '--listen', '--check', '-V', '--version', '-h', '--help', '--', '-', '--=', '-yv', '-Vh', '--no-json', '--JSON', '---json', '-p=', '--param=x=1',
];
const TARGET_FLAGS = new Set(['-i', '--inventory', '--endpoints', '-c', '--config']);

const value = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('nospace-recovery', 'member-replacement', 'power-loss-restore', 'no-such-runbook', RUN_ID, '20990101-000000-x-000000', 'preflight', 'defrag', 'BAD STEP') },
    { weight: 3, arbitrary: fc.constantFrom('quotaBytes=8GiB', 'quotaBytes=zz', 'keepRevisions=-1', 'keepRevisions=1.5', 'allowUnreachable=maybe', 'x', '=', '==1', 'a=b=c', '__proto__=1', 'constructor=1', ' quotaBytes =1', 'quotaBytes=', 'quotaBytes=9'.padEnd(5000, '9')) },
    { weight: 2, arbitrary: fc.constantFrom('0', '-1', '1e3', '1e309', 'NaN', 'Infinity', '0x10', '20', '127.0.0.1:1') },
    { weight: 2, arbitrary: fc.constantFrom(...files.length ? files : ['x']) },
    { weight: 2, arbitrary: nastyString },
  );

/** After each target flag, a value that cannot work; `--flag=value` forms likewise. */
function sanitize(argv: string[], pick: number): string[] {
  const out = [...argv];
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (!TARGET_FLAGS.has(flag)) continue;
    const safe = flag === '--endpoints' ? BAD_ENDPOINTS[(pick + i) % BAD_ENDPOINTS.length]! : badInventories[(pick + i) % badInventories.length]!;
    if (flag !== a) out[i] = `${flag}=${safe}`;
    else if (i + 1 < out.length) out[i + 1] = safe;
  }
  return out;
}

const soup = () => fc
  .record({
    cmd: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...SAFE_COMMANDS) }, { weight: 1, arbitrary: nastyString.filter((s) => s !== 'rehearse' && s !== 'diagnose' && s !== 'guard') }, { weight: 1, arbitrary: fc.constant('') }),
    tokens: fc.array(fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...ALL_FLAGS) }, { weight: 2, arbitrary: value() }), { maxLength: 8 }),
    pick: fc.nat(),
    noCmd: fc.boolean(),
  })
  .map(({ cmd, tokens, pick, noCmd }) => sanitize(noCmd && tokens.length ? tokens : [cmd, ...tokens], pick));

// ---- targeted: one mistake in an otherwise sensible command --------------------------------------------------

interface Injected {
  argv: string[];
  /** Something stderr must contain: the thing that was wrong. */
  names: string[];
}

const bases = (): fc.Arbitrary<string[]> =>
  fc.constantFrom(
    ['run', 'nospace-recovery', '--endpoints', NO_TARGET],
    ['plan', 'nospace-recovery', '--endpoints', NO_TARGET],
    ['run', 'nospace-recovery', '-i', 'INVENTORY', '--yes'],
    ['validate', 'GOOD'],
    ['show', 'nospace-recovery'],
    ['history', '--json'],
    ['status', RUN_ID],
    ['resume', RUN_ID],
    ['approve', RUN_ID, 'defrag'],
    ['list'],
    ['actions'],
    ['serve', '-c', 'CHATOPS', '--check'],
  );

const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);

const unknownOption: fc.Arbitrary<Injected> = fc.record({ base: bases(), name: word, at: fc.nat() }).map(({ base, name, at }) => {
  const flag = `--zz-${name}`;
  // right after the command or at the end (never where a flag expects its value)
  const argv = at % 2 ? [base[0]!, flag, ...base.slice(1)] : [...base, flag];
  return { argv, names: [flag] };
});

const unknownOptionAnyCommand: fc.Arbitrary<Injected> = fc.record({ cmd: fc.constantFrom('rehearse', 'diagnose', ...SAFE_COMMANDS.filter((c) => c !== 'help')), name: word }).map(({ cmd, name }) => ({
  // serve's required -c is checked before unknown options: give it, so the one mistake is the unknown flag
  argv: [cmd, `--zz-${name}`, ...(cmd === 'rehearse' ? ['nospace-recovery'] : cmd === 'serve' ? ['-c', 'CHATOPS'] : [])],
  names: [`--zz-${name}`],
}));

const missingValue: fc.Arbitrary<Injected> = fc
  .record({
    which: fc.constantFrom(
      { base: ['run', 'nospace-recovery'], flag: '--state-dir' },
      { base: ['run', 'nospace-recovery'], flag: '-p' },
      { base: ['run', 'nospace-recovery'], flag: '--inventory' },
      { base: ['plan', 'nospace-recovery'], flag: '--endpoints' },
      { base: ['history'], flag: '--limit' },
      { base: ['resume', RUN_ID], flag: '--mark-done' },
      { base: ['deny', RUN_ID, 'defrag'], flag: '--reason' },
      { base: ['serve'], flag: '--config' },
      { base: ['rehearse', 'nospace-recovery'], flag: '--fault' },
      { base: ['diagnose'], flag: '--timeout' },
    ),
  })
  .map(({ which }) => ({ argv: [...which.base, which.flag], names: [which.flag.replace(/^-p$/, '--param')] }));

const badParam: fc.Arbitrary<Injected> = fc
  .record({
    cmd: fc.constantFrom('run', 'plan'),
    p: fc.oneof(
      // values no reading of the param's type accepts (fractional byte counts like 1.5 are accepted, rounded)
      fc.constantFrom(
        ...['zz', '-', '-1', '9'.repeat(400), '1e309', 'NaN', '', '8 GiBs', '0x10', '1.5.5', '\u0000', 'ten'].map((v) => ({ name: 'quotaBytes', v })),
        ...['zz', '1.5', '-', 'maybe', '9'.repeat(400), '1e309', 'NaN', '', '0x10', 'one', '1_000'].map((v) => ({ name: 'keepRevisions', v })),
        ...['maybe', '2', '-', '', 'truee', 'y', 'n', 'NaN', 'enabled'].map((v) => ({ name: 'allowUnreachable', v })),
      ),
      fc.record({ name: fc.oneof(word.map((w) => `no_${w.replace(/-/g, '_')}`), fc.constantFrom('__proto__', 'constructor', 'toString')), v: fc.constant('1') }),
    ),
    form: fc.constantFrom('-p', '--param', '--param='),
  })
  .map(({ cmd, p, form }) => {
    const spec = `${p.name}=${p.v}`;
    const argv = form === '--param=' ? [cmd, 'nospace-recovery', `--param=${spec}`, '--endpoints', NO_TARGET] : [cmd, 'nospace-recovery', form, spec, '--endpoints', NO_TARGET];
    return { argv, names: [p.name] };
  });

const malformedParam: fc.Arbitrary<Injected> = fc.record({ spec: fc.oneof(fc.constantFrom('x', '=', '=1', ' =1', '1a=1', 'a-b=1', 'a.b=1', 'ä=1'), word.filter((w) => !w.includes('='))) }).map(({ spec }) => ({
  argv: ['run', 'nospace-recovery', '-p', spec, '--endpoints', NO_TARGET],
  names: ['--param'],
}));

const unknownCommand: fc.Arbitrary<Injected> = word
  .filter((w) => ![...SAFE_COMMANDS, 'rehearse', 'diagnose', 'guard'].includes(w))
  .map((w) => ({ argv: [`zz${w}`], names: [`zz${w}`] }));

const badLimit: fc.Arbitrary<Injected> = fc.constantFrom('0', '-1', 'x', '1.5', 'NaN', '', ' ').map((v) => ({ argv: ['history', '--limit', v], names: ['--limit'] }));

const missingFile: fc.Arbitrary<Injected> = fc.record({ name: word, how: fc.constantFrom('-i', 'validate', 'show', 'run') }).map(({ name, how }) => {
  const f = join(dir, `missing-${name}.yaml`);
  if (how === '-i') return { argv: ['run', 'nospace-recovery', '-i', f], names: [f] };
  if (how === 'validate') return { argv: ['validate', f], names: [f] };
  return { argv: [how, f], names: [f] };
});

const injected = fc.oneof(unknownOption, unknownOptionAnyCommand, missingValue, badParam, malformedParam, unknownCommand, badLimit, missingFile);

function fill(argv: string[]): string[] {
  return argv.map((a) => (a === 'INVENTORY' ? badInventories[0]! : a === 'GOOD' ? join(dir, 'good.yaml') : a === 'CHATOPS' ? join(dir, 'chatops-bad.yaml') : a));
}

// ---- tests ----------------------------------------------------------------------------------------------

const params = (share: number) => ({ seed: FUZZ_SEED, numRuns: runsFor(share) });

describe(`command line under fuzz (seed ${FUZZ_SEED})`, () => {
  it('any argument vector: exit 0 or 2, a message, no stack trace, no hang', { timeout: timeoutFor(0.6, 5) }, async () => {
    const found = new Findings();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(soup(), async (argv) => {
        n++;
        judge(argv, await drive(argv), found);
      }),
      params(0.6),
    );
    expect(n).toBe(runsFor(0.6));
    expect(found.report(), `CLI defects:\n${found.report()}`).toBe('');
  });

  it('one mistake in a sensible command: exit 2 and a message that names it', { timeout: timeoutFor(0.4, 5) }, async () => {
    const found = new Findings();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(injected, async ({ argv: raw, names }) => {
        n++;
        const argv = fill(raw);
        const o = await drive(argv);
        judge(argv, o, found);
        if (o.code !== 2) found.add(`mistake accepted (exit ${o.code})`, argv, `${o.err.slice(0, 300)} ${o.out.slice(0, 200)}`);
        else {
          const shown = names.filter((name) => o.err.includes(name) || o.err.includes(JSON.stringify(name)));
          if (shown.length === 0) found.add('message does not name the mistake', argv, `wanted ${names.join(' or ')} in: ${o.err.slice(0, 400)}`);
        }
      }),
      params(0.4),
    );
    expect(n).toBe(runsFor(0.4));
    expect(found.report(), `CLI defects:\n${found.report()}`).toBe('');
  });
});
