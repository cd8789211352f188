/**
 * The published JSON Schema (schema/runbook.schema.json) must be the generated one, and it must agree with the
 * loader: runbooks that load are accepted, typical mistakes are rejected. A small JSON Schema subset checker
 * (just what the generated schema uses) stands in for an editor.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { catalog } from '../../../src/actions/catalog.ts';
import { listRunbooks } from '../../../src/runbook/find.ts';
import { runbookJsonSchema } from '../../../src/runbook/schema.ts';
import { BYTES_PATTERN, DURATION_PATTERN } from '../../../src/runbook/units-schema.ts';
import { parseBytes, parseDuration } from '../../../src/util/units.ts';

const committedFile = fileURLToPath(new URL('../../../schema/runbook.schema.json', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));

type Schema = Record<string, any>;

/** Errors of `value` against a JSON Schema (2020-12 subset used by z.toJSONSchema output). */
function check(schema: Schema, value: unknown, root: Schema, at = '$'): string[] {
  if (schema.$ref) {
    const target = (schema.$ref as string).replace(/^#\//, '').split('/').reduce((s: any, k: string) => s?.[k], root);
    return check(target, value, root, at);
  }
  const errs: string[] = [];
  const type = typeof value === 'number' && Number.isInteger(value) ? 'integer' : Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  if (schema.type) {
    const types = [schema.type].flat();
    const ok = types.includes(type) || (type === 'integer' && types.includes('number'));
    if (!ok) return [`${at}: ${type} is not ${types.join('|')}`];
  }
  if (schema.const !== undefined && value !== schema.const) errs.push(`${at}: not ${schema.const}`);
  if (schema.enum && !schema.enum.includes(value)) errs.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) errs.push(`${at}: does not match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) errs.push(`${at}: too short`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errs.push(`${at}: too long`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errs.push(`${at}: < minimum`);
    if (schema.maximum !== undefined && value > schema.maximum) errs.push(`${at}: > maximum`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errs.push(`${at}: too few items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errs.push(`${at}: too many items`);
    if (schema.items) value.forEach((v, i) => errs.push(...check(schema.items, v, root, `${at}[${i}]`)));
  }
  if (type === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errs.push(`${at}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      if (schema.propertyNames) errs.push(...check(schema.propertyNames, k, root, `${at}.<key ${k}>`));
      if (schema.properties?.[k]) errs.push(...check(schema.properties[k], v, root, `${at}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${at}: unknown key ${k}`);
      else if (typeof schema.additionalProperties === 'object') errs.push(...check(schema.additionalProperties, v, root, `${at}.${k}`));
    }
  }
  if (schema.anyOf && !schema.anyOf.some((s: Schema) => check(s, value, root, at).length === 0)) errs.push(`${at}: matches no anyOf branch`);
  for (const s of schema.allOf ?? []) {
    if (s.if) {
      if (check(s.if, value, root, at).length === 0 && s.then) errs.push(...check(s.then, value, root, at));
    } else errs.push(...check(s, value, root, at));
  }
  return errs;
}

describe('durations and byte sizes: the schema pattern accepts exactly what validate parses', () => {
  const samples = ['500ms', '30s', '5m', '1h30m', '1.5d', '2000', ' 10s ', '30 minutes', '10 m', 'ms', '1h 30m', '-5s', '1e3', '',
    '8GiB', '512MB', '64kib', '1.5g', '12', '12 b', '12QB', 'GiB', '1.2.3', '8 GiB', '-1', '0x10'];
  it.each(samples)('%j', (text) => {
    const matches = (p: string) => new RegExp(p, 'u').test(text) && text.length <= 40;
    expect(matches(DURATION_PATTERN), `duration ${JSON.stringify(text)}`).toBe(parseDuration(text) !== undefined);
    expect(matches(BYTES_PATTERN), `bytes ${JSON.stringify(text)}`).toBe(parseBytes(text) !== undefined);
  });
});

describe('runbook JSON Schema', () => {
  const schema = runbookJsonSchema();

  it('is committed as generated (UPDATE_SCHEMA=1 rewrites schema/runbook.schema.json)', () => {
    const text = `${JSON.stringify(schema, null, 2)}\n`;
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(committedFile, text);
    expect(JSON.parse(readFileSync(committedFile, 'utf8'))).toEqual(JSON.parse(text));
  });

  it('names every action of the catalog, and only read-only ones as gates', () => {
    const step = (schema.properties as Schema).steps.items;
    expect([...step.properties.action.enum].sort()).toEqual(Object.keys(catalog).sort());
    expect(step.properties.gate.enum).toContain('etcd.member-healthy');
    expect(step.properties.gate.enum).not.toContain('etcd.defrag');
    expect(step.allOf).toHaveLength(Object.keys(catalog).length);
  });

  it('accepts every runbook the loader accepts', () => {
    const files = [
      ...listRunbooks().filter((r) => r.builtIn).map((r) => r.file),
      fixture('valid/minimal.yaml'),
      fixture('valid/custom-maintenance.yaml'),
      fixture('valid/design-example.yaml'),
    ];
    for (const f of files) expect(check(schema, parse(readFileSync(f, 'utf8')), schema), f).toEqual([]);
  });

  it.each([
    ['unknown action', 'invalid/step-unknown-action.yaml', /action.*not in enum/],
    ['unknown with key', 'invalid/step-with-unknown-key.yaml', /with: unknown key minReclaim/],
    ['wrong with type', 'invalid/step-exec-argv-string.yaml', /with\.argv: matches no anyOf/],
    ['mutating gate', 'invalid/step-gate-mutating.yaml', /gate.*not in enum/],
    ['unknown top-level key', 'invalid/top-unknown-key.yaml', /unknown key stpes/],
    ['bad step id', 'invalid/step-bad-id.yaml', /\.id: does not match/],
    ['a duration validate refuses', 'invalid/step-bad-timeout.yaml', /\.timeout: matches no anyOf/],
    ['a byte size validate refuses', 'invalid/step-bad-bytes.yaml', /with\.minReclaimBytes: matches no anyOf/],
  ])('rejects %s', (_what, file, message) => {
    const errs = check(schema, parse(readFileSync(fixture(file), 'utf8')), schema);
    expect(errs.join('\n')).toMatch(message);
  });
});
