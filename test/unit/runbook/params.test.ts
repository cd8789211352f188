import { describe, expect, it } from 'vitest';
import { findRunbook } from '../../../src/runbook/find.ts';
import { loadRunbook, loadRunbookText } from '../../../src/runbook/load.ts';
import { normalizeParamValue, parseParamFlags, resolveParams } from '../../../src/runbook/params.ts';
import { UserError } from '../../../src/util/errors.ts';

const runbook = loadRunbookText(
  [
    'apiVersion: runbook/v1',
    'name: p',
    'summary: params of every type',
    'params:',
    '  member:   { type: string }',
    '  keep:     { type: integer, default: 0 }',
    '  ratio:    { type: number, default: 1.5 }',
    '  force:    { type: boolean, default: false }',
    '  quota:    { type: bytes, optional: true }',
    '  wait:     { type: duration, default: 30s }',
    '  hosts:    { type: list, optional: true }',
    '  mode:     { type: string, default: gentle, enum: [gentle, brisk] }',
    'steps:',
    '  - { id: a, action: etcd.write-probe }',
  ].join('\n'),
  'p.yaml',
);

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('parseParamFlags', () => {
  it('splits at the first "=" and keeps the rest', () => {
    expect(parseParamFlags(['quota=8GiB', 'member=https://10.0.0.1:2380?a=b', 'hosts='])).toEqual({ quota: '8GiB', member: 'https://10.0.0.1:2380?a=b', hosts: '' });
  });

  it('reports every malformed flag', () => {
    const msg = userError(() => parseParamFlags(['quota', '1x=2', 'keep=1', 'keep=2']));
    expect(msg.split('\n')).toEqual([
      '--param "quota": expected name=value',
      '--param "1x=2": "1x" is not a param name',
      '--param keep is given twice',
    ]);
  });
});

describe('resolveParams', () => {
  it('types every value and fills defaults; unset optional params are null', () => {
    expect(resolveParams(runbook, { member: 'etcd-2', quota: '8GiB', wait: '1m30s', force: 'yes', keep: '10', ratio: '0.25', hosts: 'a, b,,c' })).toEqual({
      member: 'etcd-2',
      keep: 10,
      ratio: 0.25,
      force: true,
      quota: 8 * 1024 ** 3,
      wait: 90_000,
      hosts: ['a', 'b', 'c'],
      mode: 'gentle',
    });
    expect(resolveParams(runbook, { member: 'x' })).toEqual({ member: 'x', keep: 0, ratio: 1.5, force: false, quota: null, wait: 30_000, hosts: null, mode: 'gentle' });
  });

  it('refuses a value outside the range of the action input it is passed to whole (keepRevisions=-1)', () => {
    const builtIn = loadRunbook(findRunbook('nospace-recovery'));
    expect(() => resolveParams(builtIn, { keepRevisions: '-1' })).toThrow(/param keepRevisions: -1 does not fit step "compact" \(etcd.compact keep\)/);
    expect(resolveParams(builtIn, { keepRevisions: '5' }).keepRevisions).toBe(5);
  });

  it('names unknown params and lists the known ones', () => {
    expect(userError(() => resolveParams(runbook, { member: 'x', qouta: '1GiB' }))).toBe(
      'unknown param "qouta" for runbook p (its params: member, keep, ratio, force, quota, wait, hosts, mode)',
    );
  });

  it('reports a missing required param and every bad value at once', () => {
    const msg = userError(() => resolveParams(runbook, { keep: '1.5', quota: 'lots', force: 'maybe', mode: 'wild', wait: '5 min' }));
    expect(msg.split('\n')).toEqual([
      'missing required param member (string): pass --param member=...',
      'param keep (integer): expected an integer, got "1.5"',
      'param force (boolean): expected true or false, got "maybe"',
      'param quota (bytes): not a byte size: "lots" (use e.g. 8GiB, 512MB or a number of bytes)',
      'param wait (duration): not a duration: "5 min" (use e.g. 500ms, 30s, 5m, 1h30m)',
      'param mode (string): "wild" is not one of "gentle", "brisk"',
    ]);
  });
});

describe('normalizeParamValue', () => {
  it('accepts YAML-typed values as well as strings', () => {
    expect(normalizeParamValue({ type: 'integer' }, 3)).toEqual({ ok: true, value: 3 });
    expect(normalizeParamValue({ type: 'integer' }, 3.5)).toMatchObject({ ok: false });
    expect(normalizeParamValue({ type: 'integer' }, 2 ** 60)).toMatchObject({ ok: false });
    expect(normalizeParamValue({ type: 'list' }, ['a', 1])).toEqual({ ok: true, value: ['a', '1'] });
    expect(normalizeParamValue({ type: 'list', enum: ['a', 'b'] }, 'a,c')).toEqual({ ok: false, error: '"c" is not one of "a", "b"' });
    expect(normalizeParamValue({ type: 'string' }, { a: 1 })).toEqual({ ok: false, error: 'expected a string, got a mapping' });
    expect(normalizeParamValue({ type: 'number' }, 'NaN')).toMatchObject({ ok: false });
  });
});
