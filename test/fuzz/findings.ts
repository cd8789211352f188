/**
 * What a fuzz run found, by kind of defect, keeping the shortest input seen for each kind (a cheap stand-in for
 * shrinking that lets one run report every kind of defect instead of stopping at the first).
 */
export interface Finding {
  kind: string;
  count: number;
  /** The shortest input that showed it, printable. */
  example: string;
  exampleLength: number;
  detail: string;
}

export class Findings {
  readonly #byKind = new Map<string, Finding>();

  add(kind: string, input: string | Uint8Array | readonly string[], detail: string): void {
    const length = typeof input === 'string' ? input.length : Array.isArray(input) ? input.join(' ').length : (input as Uint8Array).length;
    const f = this.#byKind.get(kind);
    if (!f) {
      this.#byKind.set(kind, { kind, count: 1, example: printable(input), exampleLength: length, detail: detail.slice(0, 600) });
      return;
    }
    f.count++;
    if (length < f.exampleLength) {
      f.example = printable(input);
      f.exampleLength = length;
      f.detail = detail.slice(0, 600);
    }
  }

  get size(): number {
    return this.#byKind.size;
  }

  /** One paragraph per kind; empty when nothing was found. */
  report(): string {
    return [...this.#byKind.values()]
      .sort((a, b) => b.count - a.count)
      .map((f) => `- ${f.kind}: ${f.count} input(s); shortest (${f.exampleLength} chars): ${f.example}\n    ${f.detail}`)
      .join('\n');
  }
}

export function printable(input: string | Uint8Array | readonly string[]): string {
  if (Array.isArray(input)) return JSON.stringify(input.map((a) => (a.length > 80 ? `${a.slice(0, 80)}…(${a.length})` : a)));
  const s = typeof input === 'string' ? input : `bytes ${Buffer.from(input as Uint8Array).toString('hex').slice(0, 160)}`;
  return JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}…` : s);
}
