/**
 * The built-in nospace-recovery with the leadership move before the leader's defrag turned off, written next to
 * the benchmark's scratch files (generated from the built-in each time, so the two never drift apart).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './runbook-cli.ts';

export function writeNoMoveRunbook(dir: string): string {
  const text = readFileSync(join(ROOT, 'runbooks/nospace-recovery.yaml'), 'utf8');
  const out = text
    .replace(/^name: nospace-recovery$/m, 'name: nospace-recovery-no-leader-move')
    .replace(/moveLeaderFirst: true/g, 'moveLeaderFirst: false');
  if (out === text || /moveLeaderFirst: true/.test(out) || (out.match(/moveLeaderFirst: false/g) ?? []).length !== 2) {
    throw new Error('runbooks/nospace-recovery.yaml changed shape: update bench/lib/no-move-runbook.ts');
  }
  const file = join(dir, 'nospace-recovery-no-leader-move.yaml');
  writeFileSync(file, out);
  return file;
}
