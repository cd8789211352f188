/**
 * Fuzz settings shared by the fuzz tests. CI runs a fixed seed and ~10,000 inputs per target; a longer run:
 *   FUZZ_RUNS=200000 npx vitest run test/fuzz          (inputs per target, split like the default)
 *   FUZZ_SEED=123 …                                    (another fixed seed; a failure prints the seed and path)
 */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_261_124);
const DEFAULT_TOTAL = 10_000;
export const FUZZ_TOTAL = Number(process.env.FUZZ_RUNS ?? DEFAULT_TOTAL);
if (!Number.isInteger(FUZZ_TOTAL) || FUZZ_TOTAL < 1) throw new Error(`FUZZ_RUNS must be a positive integer, got ${process.env.FUZZ_RUNS}`);

/** Runs for one property that gets `share` of the total (shares of a target sum to 1). */
export function runsFor(share: number): number {
  return Math.max(1, Math.round(FUZZ_TOTAL * share));
}

/** A per-test timeout that grows with FUZZ_RUNS (the default run stays well under a minute). */
export function timeoutFor(share: number, msPerInput: number): number {
  return Math.max(180_000, Math.round(runsFor(share) * msPerInput * 3));
}

/** Latency statistics of the inputs seen by one test. */
export class Timings {
  readonly #ms: number[] = [];
  #max = 0;
  #worst = '';
  add(ms: number, label: () => string): void {
    if (ms >= this.#max) {
      this.#max = ms;
      this.#worst = label();
    }
    this.#ms.push(ms);
  }
  max(): number {
    return this.#max;
  }
  count(): number {
    return this.#ms.length;
  }
  summary(): string {
    const s = [...this.#ms].sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
    return `${s.length} inputs: median ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${this.#max.toFixed(1)} ms (${this.#worst})`;
  }
}
