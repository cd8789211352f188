import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_DIR, findRunbook, listRunbooks } from '../../../src/runbook/find.ts';
import { UserError } from '../../../src/util/errors.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'runbook-find-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const userDir = path.join(tmp, 'mine');
const otherDir = path.join(tmp, 'other');
mkdirSync(userDir);
mkdirSync(otherDir);
writeFileSync(path.join(userDir, 'drain-node.yaml'), 'x');
writeFileSync(path.join(userDir, 'nospace-recovery.yaml'), 'a shadow that must not win');
writeFileSync(path.join(otherDir, 'drain-node.yml'), 'x');
writeFileSync(path.join(otherDir, 'rotate-certs.yml'), 'x');
writeFileSync(path.join(otherDir, 'Not A Name.yaml'), 'x');
const env = { RUNBOOK_PATH: `${userDir}:${path.join(tmp, 'missing')}:${otherDir}` };

describe('findRunbook', () => {
  it('resolves built-ins from the repository, whatever the working directory', () => {
    expect(findRunbook('nospace-recovery', {})).toBe(path.join(BUILTIN_DIR, 'nospace-recovery.yaml'));
  });

  it('prefers built-ins over RUNBOOK_PATH, then searches RUNBOOK_PATH in order', () => {
    expect(findRunbook('nospace-recovery', env)).toBe(path.join(BUILTIN_DIR, 'nospace-recovery.yaml'));
    expect(findRunbook('drain-node', env)).toBe(path.join(userDir, 'drain-node.yaml'));
    expect(findRunbook('rotate-certs', env)).toBe(path.join(otherDir, 'rotate-certs.yml'));
  });

  it('returns existing paths as given', () => {
    const f = path.join(userDir, 'drain-node.yaml');
    expect(findRunbook(f, {})).toBe(f);
  });

  it('refuses unknown names with a suggestion and the list, and missing paths', () => {
    expect(() => findRunbook('nospace-recovry', {})).toThrow(UserError);
    expect(() => findRunbook('nospace-recovry', {})).toThrow(/did you mean "nospace-recovery"\?.*available: .*member-replacement/);
    expect(() => findRunbook('./nope.yaml', {})).toThrow(/no such runbook file: .\/nope.yaml/);
    expect(() => findRunbook('Bad Name', {})).toThrow(/neither a runbook file nor a runbook name/);
  });
});

describe('listRunbooks', () => {
  it('lists built-ins first, then user runbooks; the first of a name wins', () => {
    const all = listRunbooks(env);
    expect(all.filter((r) => r.builtIn).map((r) => r.name)).toEqual(expect.arrayContaining(['member-replacement', 'nospace-recovery', 'power-loss-restore']));
    const user = all.filter((r) => !r.builtIn);
    expect(user).toEqual([
      { name: 'drain-node', file: path.join(userDir, 'drain-node.yaml'), builtIn: false },
      { name: 'rotate-certs', file: path.join(otherDir, 'rotate-certs.yml'), builtIn: false },
    ]);
    expect(all.filter((r) => r.name === 'nospace-recovery')).toHaveLength(1);
  });
});
