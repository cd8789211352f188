/**
 * A cluster's `backup:` entry in chatops.yaml: defaulted, opt-in (`enabled: false` or no entry: no stream), and a
 * bad value or an unknown key refused at file:line:col, naming the key.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChatopsConfig } from '../../../src/chatops/config.ts';
import { UserError, formatDiagnostic } from '../../../src/util/errors.ts';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-backup-config-'));
  fs.writeFileSync(path.join(dir, 'prod.yaml'), 'name: prod\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function load(backup: string) {
  const f = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, `clusters:\n  prod:\n    inventory: ./prod.yaml\n${backup ? `    backup: ${backup}\n` : ''}runbooks: {}\n`);
  return loadChatopsConfig(f, {});
}

function problems(backup: string): string[] {
  try {
    load(backup);
  } catch (err) {
    if (err instanceof UserError) return err.diagnostics.map((d) => formatDiagnostic(d).replace(`${dir}/`, '').replace(/c-\w+\.yaml/, 'c.yaml'));
    throw err;
  }
  return [];
}

describe('clusters.<name>.backup', () => {
  it('is opt-in and defaulted', () => {
    expect(load('').clusters.prod?.backup).toBeUndefined();
    expect(load('{ enabled: false }').clusters.prod?.backup).toBeUndefined();
    expect(load('{}').clusters.prod?.backup).toEqual({ rotation: {}, standbyRetryMs: 5000 });
    expect(load('{ fsyncInterval: 500ms, segmentMaxBytes: 8MiB, fullEvery: 1h, keepChains: 3, maxAge: 2d }').clusters.prod?.backup).toEqual({
      fsyncIntervalMs: 500, rotation: { maxBytes: 8 * 1024 * 1024 }, fullEveryMs: 3600_000, retention: { keepChains: 3, maxAgeMs: 2 * 86_400_000 }, standbyRetryMs: 5000,
    });
  });

  it('refuses a bad value or an unknown key at file:line:col, naming it', () => {
    const bad = problems('{ fullEvery: often }');
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(/^c\.yaml:4:\d+: .*clusters\.prod\.backup\.fullEvery: not a duration/);
    expect(problems('{ keepChain: 3 }').join('\n')).toMatch(/c\.yaml:4:\d+: .*keepChain/);
    expect(problems('{ keepChains: 0 }').join('\n')).toMatch(/c\.yaml:4:\d+: .*keepChains/);
  });
});
