/** Small statistics and a plain-text table for the benchmark report. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function ms(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '—';
  if (x >= 10_000) return `${(x / 1000).toFixed(1)} s`;
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  return `${Math.round(x)} ms`;
}

export function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(headers), `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

export interface Machine {
  cores: number;
  cpu: string;
  load: number[];
  node: string;
  etcd: string;
  date: string;
}

export function machine(): Machine {
  let etcd = '?';
  try {
    etcd = execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.replace('etcd Version: ', '');
  } catch {
    // reported as unknown
  }
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', load: loadavg().map((l) => Math.round(l * 100) / 100), node: process.version, etcd, date: new Date().toISOString() };
}
