/**
 * How long the runbook loader takes per input, on the inputs the fuzz tests throw at it (test/fuzz/): the fuzz
 * tests assert what the loader answers and that it never hangs; how fast it answers is measured here.
 * Targets (what the tests used to assert): every input under 3 s, an alias bomb refused under 2 s, 100,000
 * nested brackets refused under 10 s. Exit 1 when one is missed.
 *
 *   node bench/loader-latency.ts                 # 2,000 inputs per corpus, seed 20261124
 *   node bench/loader-latency.ts --runs 10000 --seed 7 --out bench/results/loader.json
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadRunbookText } from '../src/runbook/load.ts';
import { UserError } from '../src/util/errors.ts';
import { YAML_LIMITS } from '../src/util/yaml-source.ts';
import { adversarial, mutatedSeeds, seedFiles, structuredRunbook, tokenSoup, unicodeText } from '../test/fuzz/runbook-arbitraries.ts';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '2000' }, seed: { type: 'string', default: '20261124' }, out: { type: 'string' } },
});
const RUNS = Number(args.runs);
const SEED = Number(args.seed);
const TARGET_MS = { perInput: 3000, aliasBomb: 2000, deepNesting: 10_000 };

/** One load, timed; a UserError is an answer (the loader refused the input), anything else is reported. */
/** Wall time is what a user waits; CPU time (this process) separates the loader's cost from a busy machine's. */
function timedLoad(text: string): { ms: number; cpuMs: number; answer: 'ok' | 'refused' | 'crash' } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let answer: 'ok' | 'refused' | 'crash' = 'ok';
  try {
    loadRunbookText(text, 'bench.yaml');
  } catch (err) {
    answer = err instanceof UserError ? 'refused' : 'crash';
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, answer };
}

interface CorpusResult { corpus: string; inputs: number; medianMs: number; p99Ms: number; maxMs: number; maxCpuMs: number; crashes: number }

function summarize(corpus: string, samples: { ms: number; cpuMs: number; answer: string }[]): CorpusResult {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0;
  const maxCpuMs = Math.max(0, ...samples.map((s) => s.cpuMs));
  return { corpus, inputs: ms.length, medianMs: at(0.5), p99Ms: at(0.99), maxMs: ms.at(-1) ?? 0, maxCpuMs, crashes: samples.filter((s) => s.answer === 'crash').length };
}

/** The biggest inputs under the size cap, in the shapes that cost the most per byte (as in the fuzz test). */
function biggestInputs(): string[] {
  const cap = YAML_LIMITS.maxBytes - 64;
  const fill = (unit: string, head = '') => head + unit.repeat(Math.floor((cap - head.length) / unit.length));
  const head = 'apiVersion: runbook/v1\nname: big\nsummary: big\nsteps:\n';
  return [
    `apiVersion: runbook/v1\n${Array.from({ length: Math.ceil(cap / 6) }, (_, i) => `k${i}: 1`).join('\n')}`.slice(0, cap).replace(/\n[^\n]*$/, '\n'),
    fill('  - {id: a, action: nope}\n', head),
    fill('  - {id: a, action: nope, when: "params.x =="}\n', head),
    fill('\n', `${head}  - id: a\n    action: etcd.write-probe\n`),
    `a: ${'['.repeat(cap - 3)}`,
    `a: ${'{a: '.repeat(Math.floor((cap - 3) / 4))}`,
  ];
}

function aliasBomb(): string {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 12; i++) {
    const prev = String.fromCharCode(96 + i);
    lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  return lines.join('\n');
}

const seeds = seedFiles();
const corpora: [string, fc.Arbitrary<string>][] = [
  ['token soup', tokenSoup],
  ['unicode', unicodeText],
  ['mutated seeds', mutatedSeeds(seeds.texts)],
  ['structured runbooks', structuredRunbook],
  ['resource attacks', adversarial],
];
const results: CorpusResult[] = [];
for (const [name, arb] of corpora) {
  const samples = fc.sample(arb, { numRuns: RUNS, seed: SEED }).map(timedLoad);
  results.push(summarize(name, samples));
}
results.push(summarize('biggest under the cap', biggestInputs().map(timedLoad)));
const bomb = timedLoad(aliasBomb());
const deep = timedLoad(`a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);

const f = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0));
console.log(`loader latency (seed ${SEED}, ${RUNS} inputs per generated corpus, Node ${process.versions.node}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
console.log('| corpus | inputs | median ms | p99 ms | max ms | max CPU ms |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of results) console.log(`| ${r.corpus} | ${r.inputs} | ${f(r.medianMs)} | ${f(r.p99Ms)} | ${f(r.maxMs)} | ${f(r.maxCpuMs)} |`);
console.log(`alias bomb: ${f(bomb.ms)} ms, CPU ${f(bomb.cpuMs)} ms (${bomb.answer}); 100k nested brackets: ${f(deep.ms)} ms, CPU ${f(deep.cpuMs)} ms (${deep.answer})`);

const missed = [
  ...results.filter((r) => r.maxMs >= TARGET_MS.perInput).map((r) => `${r.corpus}: max ${f(r.maxMs)} ms >= ${TARGET_MS.perInput} ms`),
  ...results.filter((r) => r.crashes > 0).map((r) => `${r.corpus}: ${r.crashes} input(s) crashed the loader (the fuzz tests say which)`),
  ...(bomb.ms >= TARGET_MS.aliasBomb || bomb.answer !== 'refused' ? [`alias bomb: ${f(bomb.ms)} ms, ${bomb.answer}`] : []),
  ...(deep.ms >= TARGET_MS.deepNesting || deep.answer !== 'refused' ? [`deep nesting: ${f(deep.ms)} ms, ${deep.answer}`] : []),
];
if (args.out) writeFileSync(args.out, `${JSON.stringify({ at: new Date().toISOString(), seed: SEED, runs: RUNS, node: process.versions.node, load: loadavg(), results, aliasBomb: bomb, deepNesting: deep, missed }, null, 2)}\n`);
if (missed.length) {
  console.log(`missed:\n  ${missed.join('\n  ')}`);
  process.exitCode = 1;
}
