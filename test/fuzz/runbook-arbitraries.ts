/**
 * Generators of malformed and adversarial runbook files for the loader fuzz test: YAML token soup, arbitrary
 * unicode, mutations of the real runbooks and fixtures, runbook-shaped documents with wrong types everywhere,
 * and resource attacks (deep nesting, huge scalars, alias bombs, many keys, NUL bytes, CEL bombs, tags).
 */
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { catalog } from '../../src/actions/catalog.ts';
import { YAML_LIMITS } from '../../src/util/yaml-source.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** The real runbooks and the fixture corpus: valid and invalid, as text (binary fixtures as bytes). */
export function seedFiles(): { texts: string[]; bytes: Uint8Array[] } {
  const dirs = [join(ROOT, 'runbooks'), join(ROOT, 'test/fixtures/valid'), join(ROOT, 'test/fixtures/invalid'), join(ROOT, 'examples')];
  const texts: string[] = [];
  const bytes: Uint8Array[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const b = readFileSync(join(dir, n));
      bytes.push(new Uint8Array(b));
      const t = b.toString('utf8');
      if (!t.includes('\uFFFD') && b.length < 200_000) texts.push(t);
    }
  }
  return { texts, bytes };
}

const ACTIONS = Object.keys(catalog);
const STEP_KEYS = ['id', 'action', 'description', 'with', 'when', 'forEach', 'gate', 'timeout', 'retry', 'approval', 'optional'];
const TOP_KEYS = ['apiVersion', 'name', 'summary', 'description', 'destructive', 'autoApprove', 'params', 'steps'];

/** Strings that are awkward for a parser, a validator or a terminal. */
export const nastyString = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(
    '', ' ', '\t', '\n', '\r\n', '\r', '\u0000', '\u0007', '\u001b[31mred\u001b[0m', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029', '\ufeff',
    '\ufffe', '\uffff', '\ud800', '\udfff', '\u202eevil', '\u200b', 'e\u0301', '👩‍👩‍👧‍👦', '𝕏', 'Ω', 'ﷺ', '\u0000\u0000',
    '${{', '}}', '${{ params.x }}', '${{ steps["a"].output }}', '${{ ${{ x }} }}', '${{ "}}" }}', '${{}}', '$${{ x }}', '{{ x }}',
    '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '[object Object]', 'undefined', 'null', 'NaN',
    'true', 'yes', 'no', 'on', 'off', '~', '0x10', '0o17', '1e309', '-0', '.inf', '.nan', '2001-12-14t21:59:43.10-05:00', '1:20:30',
    '*a', '&a', '!!binary', '!tag', '%YAML 1.1', '---', '...', '? x', '- x', '|', '>', '#', ': ', '"', "'", '`', '\\', '../../etc/passwd',
    'etcd.defrag', 'etcd.preflight', 'exec', 'wait', 'approve', 'voters', 'followers-then-leader', 'required', 'runbook/v1',
  ) },
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 20 }) },
  // long values: around the 64 Ki-character scalar limit, now and then
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 100, max: 5_000 }), fc.integer({ min: YAML_LIMITS.maxScalarLength - 500, max: YAML_LIMITS.maxScalarLength + 500 })).map((n) => 'x'.repeat(n)) },
);

/** CEL-looking text: real pieces of expressions, shuffled, unbalanced, nested. */
export const celish = fc.oneof(
  fc.array(
    fc.constantFrom(
      'params', 'steps', 'inventory', 'item', '.', 'x', 'quotaBytes', 'output', 'revision', '["a"]', '[0]', '(', ')', '[', ']', '{', '}', ':', ',',
      '+', '-', '*', '/', '%', '==', '!=', '<', '>=', '&&', '||', '!', '?', 'in', 'has(', 'size(', 'int(', 'string(', 'matches(', '"s"', "'s'",
      '"\\u0000"', 'b"x"', '1', '-9223372036854775809', '18446744073709551616u', '1.5e308', 'true', 'null', ' ', 'a.b.c.d.e', '.exists(x, x)',
      '.all(x, x > 0)', '.map(x, x)', '.filter(x, true)', 'dyn(', 'type(', 'timestamp("x")', 'duration("1h")',
    ),
    { maxLength: 40 },
  ).map((ts) => ts.join('')),
  fc.integer({ min: 1, max: 3000 }).map((n) => `${'('.repeat(n)}true${')'.repeat(n)}`),
  fc.integer({ min: 1, max: 3000 }).map((n) => `${'!'.repeat(n)}true`),
  fc.integer({ min: 1, max: 3000 }).map((n) => `[${Array(n).fill('[1]').join(',')}]`),
  fc.integer({ min: 1, max: 1500 }).map((n) => Array(n).fill('"ab"').join(' + ')),
  fc.integer({ min: 1, max: 1500 }).map((n) => `${'params.a.'.repeat(n)}b`),
);

/** Any JSON-ish value, with awkward strings and numbers, nested. */
const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    celish.map((c) => `\${{ ${c} }}`),
    fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), Number.MAX_VALUE, 1e-300),
    fc.integer(),
    fc.double(),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(nastyString, fc.constantFrom(...STEP_KEYS, ...TOP_KEYS)), tie('v'), { maxKeys: 5 }),
  ),
})).v;

const maybe = <T>(a: fc.Arbitrary<T>, good: fc.Arbitrary<T>) => fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: a });

const stepArb = fc.record(
  {
    id: maybe(anyValue, fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/)),
    action: maybe(anyValue, fc.constantFrom(...ACTIONS, 'etcd.defragment', 'defrag', 'nope')),
    description: anyValue,
    with: maybe(anyValue, fc.dictionary(fc.constantFrom('keep', 'physical', 'alarm', 'duration', 'argv', 'moveLeaderFirst', 'flag', 'value', 'x'), anyValue, { maxKeys: 4 })),
    when: maybe(anyValue, celish),
    forEach: maybe(anyValue, fc.oneof(
      fc.record({ members: fc.constantFrom('voters', 'all', 'learners', 'x'), order: fc.constantFrom('as-listed', 'followers-then-leader', 'y'), moveLeaderFirst: anyValue }, { requiredKeys: [] }),
      fc.record({ items: celish }),
    )),
    gate: maybe(anyValue, fc.constantFrom(...ACTIONS)),
    timeout: maybe(anyValue, fc.constantFrom('1ms', '30m', '0s', '-1s', '7d', '8d', '1h30m', '99999999999999h', '1.5s', 'forever')),
    retry: maybe(anyValue, fc.record({ maximumAttempts: anyValue, initialInterval: anyValue, backoffCoefficient: anyValue, maximumInterval: anyValue, nonRetryable: anyValue }, { requiredKeys: [] })),
    approval: maybe(anyValue, fc.constantFrom('required', 'none')),
    optional: anyValue,
  },
  { requiredKeys: [] },
);

const paramArb = fc.record(
  { type: maybe(anyValue, fc.constantFrom('string', 'integer', 'number', 'boolean', 'bytes', 'duration', 'list', 'object')), default: anyValue, optional: anyValue, description: anyValue, enum: anyValue },
  { requiredKeys: [] },
);

/** Runbook-shaped documents: the right keys most of the time, wrong types and values everywhere. */
export const structuredRunbook = fc
  .record(
    {
      doc: fc.record(
        {
          apiVersion: maybe(anyValue, fc.constant('runbook/v1')),
          name: maybe(anyValue, fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/)),
          summary: maybe(anyValue, fc.string({ minLength: 1, maxLength: 50 })),
          description: anyValue,
          destructive: anyValue,
          autoApprove: anyValue,
          params: maybe(anyValue, fc.dictionary(fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), nastyString), paramArb, { maxKeys: 4 })),
          steps: maybe(anyValue, fc.array(maybe(anyValue, stepArb), { maxLength: 6 })),
          extra: anyValue,
        },
        { requiredKeys: [] },
      ),
      flow: fc.constantFrom('block', 'flow', 'mixed'),
    },
  )
  .map(({ doc, flow }) => {
    try {
      return stringify(doc, { collectionStyle: flow === 'mixed' ? 'any' : flow, lineWidth: 0 });
    } catch {
      return JSON.stringify(doc) ?? '';
    }
  });

/** YAML-significant tokens joined at random. */
export const tokenSoup = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(': ', '- ', '\n', '\n  ', '\n    ', '  ', '{', '}', '[', ']', ',', '&a ', '*a', '&b ', '*b', '!!str ', '!!map', '!!seq', '!custom ', '? ', '|', '|-', '>', '>+', '#', '"', "'", '---\n', '...\n', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n', '<<: ', '\t', '\r\n', '\ufeff', 'steps', 'id', 'action', 'with', 'when', 'forEach', 'apiVersion', 'runbook/v1', 'name', 'summary', '${{', '}}', 'etcd.defrag', 'a', '1', 'null', '~', 'true', '0x1F', '.inf', '\\', '@', '`') },
      { weight: 1, arbitrary: nastyString },
    ),
    { maxLength: 80 },
  )
  .map((ts) => ts.join(''));

/** Arbitrary unicode text, with control characters and lone surrogates. */
export const unicodeText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
);

type Op = { kind: 'delete-line' | 'dup-line' | 'swap-lines' | 'insert' | 'replace-value' | 'truncate' | 'indent' | 'delete-char' | 'repeat-line'; at: number; at2: number; text: string; n: number };

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('delete-line', 'dup-line', 'swap-lines', 'insert', 'replace-value', 'truncate', 'indent', 'delete-char', 'repeat-line'),
  at: fc.nat(),
  at2: fc.nat(),
  text: fc.oneof(nastyString, celish.map((c) => `"\${{ ${c} }}"`), fc.constantFrom('[]', '{}', 'null', '[[[[', '{a: {b: {c:', '*undefined', '&x', '!!binary aGk=', '"unterminated', "'it''s'", '- - -', '? [a]', '!!set {a}', '<<: *a')),
  n: fc.integer({ min: -8, max: 300 }),
});

function mutate(text: string, ops: Op[]): string {
  let lines = text.split('\n');
  for (const op of ops) {
    const i = lines.length ? op.at % lines.length : 0;
    const j = lines.length ? op.at2 % lines.length : 0;
    switch (op.kind) {
      case 'delete-line':
        lines.splice(i, 1);
        break;
      case 'dup-line':
        lines.splice(i, 0, lines[i] ?? '');
        break;
      case 'repeat-line':
        lines.splice(i, 0, ...Array(Math.max(0, Math.min(op.n, 300))).fill(lines[i] ?? ''));
        break;
      case 'swap-lines': {
        const t = lines[i] ?? '';
        lines[i] = lines[j] ?? '';
        lines[j] = t;
        break;
      }
      case 'insert': {
        const l = lines[i] ?? '';
        const k = l.length ? op.at2 % (l.length + 1) : 0;
        lines[i] = l.slice(0, k) + op.text + l.slice(k);
        break;
      }
      case 'replace-value': {
        const l = lines[i] ?? '';
        const colon = l.indexOf(': ');
        lines[i] = colon >= 0 ? `${l.slice(0, colon + 2)}${op.text}` : `${l}${op.text}`;
        break;
      }
      case 'truncate': {
        const all = lines.join('\n');
        lines = all.slice(0, all.length ? op.at % all.length : 0).split('\n');
        break;
      }
      case 'indent': {
        const l = lines[i] ?? '';
        lines[i] = op.n >= 0 ? ' '.repeat(op.n % 12) + l : l.replace(new RegExp(`^ {0,${-op.n}}`), '');
        break;
      }
      case 'delete-char': {
        const l = lines[i] ?? '';
        if (l.length) {
          const k = op.at2 % l.length;
          lines[i] = l.slice(0, k) + l.slice(k + 1);
        }
        break;
      }
    }
  }
  return lines.join('\n');
}

export function mutatedSeeds(texts: string[]): fc.Arbitrary<string> {
  return fc.record({ seed: fc.constantFrom(...texts), ops: fc.array(opArb, { minLength: 1, maxLength: 6 }) }).map(({ seed, ops }) => mutate(seed, ops));
}

const MINIMAL_HEAD = 'apiVersion: runbook/v1\nname: fuzz\nsummary: fuzz\nsteps:\n';

/** Resource attacks, sized around and beyond the loader's limits. */
/** Mostly moderate sizes, sometimes up to `max`: keeps a CI run short while still reaching the limits. */
const sized = (min: number, mid: number, max: number) => fc.oneof({ weight: 5, arbitrary: fc.integer({ min, max: mid }) }, { weight: 1, arbitrary: fc.integer({ min: mid, max }) });

export const adversarial: fc.Arbitrary<string> = fc.oneof(
  // deep flow nesting (the loader allows 64 levels)
  fc.record({ n: sized(30, 2_000, 20_000), open: fc.constantFrom('[', '{a: ', '[{a: '), close: fc.boolean() }).map(({ n, open, close }) => {
    const closer = open === '[' ? ']' : open === '{a: ' ? '}' : '}]';
    return `${MINIMAL_HEAD}  - id: a\n    action: wait\n    with: { duration: 1s, x: ${open.repeat(n)}1${close ? closer.repeat(n) : ''} }\n`;
  }),
  // deep block nesting
  sized(30, 100, 400).map((n) => `${MINIMAL_HEAD}  - id: a\n    action: wait\n    with:\n${Array.from({ length: n }, (_, i) => `${' '.repeat(6 + i)}k${i}:`).join('\n')} 1\n`),
  sized(30, 100, 400).map((n) => `a:\n${Array.from({ length: n }, (_, i) => `${' '.repeat(i + 1)}-`).join('\n')} x\n`),
  // huge scalars around the scalar limit and around the file size limit
  fc.record({ n: fc.oneof(fc.integer({ min: YAML_LIMITS.maxScalarLength - 500, max: YAML_LIMITS.maxScalarLength + 500 }), fc.integer({ min: YAML_LIMITS.maxBytes - 2_000, max: YAML_LIMITS.maxBytes + 50_000 })), style: fc.constantFrom('plain', 'double', 'single', 'block') }).map(({ n, style }) => {
    const v = 'x'.repeat(n);
    const s = style === 'plain' ? v : style === 'double' ? `"${v}"` : style === 'single' ? `'${v}'` : `|\n      ${v}`;
    return `${MINIMAL_HEAD}  - id: a\n    action: wait\n    description: ${s}\n    with: { duration: 1s }\n`;
  }),
  // alias bombs ("billion laughs") of random width and depth, in different places
  fc.record({ width: fc.integer({ min: 2, max: 12 }), depth: fc.integer({ min: 2, max: 12 }), where: fc.constantFrom('top', 'with', 'steps') }).map(({ width, depth, where }) => {
    const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(',')}]`];
    for (let d = 1; d < depth; d++) lines.push(`l${d}: &l${d} [${Array(width).fill(`*l${d - 1}`).join(',')}]`);
    const last = `*l${depth - 1}`;
    if (where === 'top') return `${lines.join('\n')}\n${MINIMAL_HEAD}  - id: a\n    action: wait\n    with: { duration: 1s }\n`;
    if (where === 'with') return `x-anchors:\n${lines.map((l) => `  ${l}`).join('\n')}\n${MINIMAL_HEAD}  - id: a\n    action: wait\n    with: { duration: 1s, bomb: ${last} }\n`;
    return `x-anchors:\n${lines.map((l) => `  ${l}`).join('\n')}\napiVersion: runbook/v1\nname: fuzz\nsummary: fuzz\nsteps: ${last}\n`;
  }),
  // merge-key chains
  fc.integer({ min: 2, max: 40 }).map((n) => `a0: &a0 {x: 1}\n${Array.from({ length: n }, (_, i) => `a${i + 1}: &a${i + 1}\n  <<: [*a${i}, *a0]\n  y${i}: 1`).join('\n')}\n`),
  // many keys, many steps, many params, many diagnostics
  fc.record({ n: sized(10, 300, 1500), where: fc.constantFrom('top', 'with', 'params', 'steps', 'dupes') }).map(({ n, where }) => {
    if (where === 'top') return `apiVersion: runbook/v1\n${Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n')}\n`;
    if (where === 'with') return `${MINIMAL_HEAD}  - id: a\n    action: wait\n    with:\n${Array.from({ length: n }, (_, i) => `      k${i}: ${i}`).join('\n')}\n`;
    if (where === 'params') return `apiVersion: runbook/v1\nname: fuzz\nsummary: fuzz\nparams:\n${Array.from({ length: n }, (_, i) => `  p${i}: { type: nope }`).join('\n')}\nsteps:\n  - id: a\n    action: wait\n`;
    if (where === 'dupes') return `${MINIMAL_HEAD}${Array.from({ length: n }, () => '  - id: a\n    action: nope').join('\n')}\n`;
    return `${MINIMAL_HEAD}${Array.from({ length: n }, (_, i) => `  - { id: s${i}, action: nope${i}, when: "params.x${i} ==" }`).join('\n')}\n`;
  }),
  // NUL bytes and other control characters in an otherwise valid file
  fc.record({ at: fc.nat(), ch: fc.constantFrom('\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\u2028', '\ufeff', '\ufffe', '\ud800') }).map(({ at, ch }) => {
    const base = `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`;
    const k = at % (base.length + 1);
    return base.slice(0, k) + ch + base.slice(k);
  }),
  // expression bombs in when / templates / forEach items
  fc.record({ c: celish, where: fc.constantFrom('when', 'with', 'items', 'interp') }).map(({ c, where }) => {
    const q = JSON.stringify(c);
    if (where === 'when') return `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n    when: ${q}\n`;
    if (where === 'items') return `${MINIMAL_HEAD}  - id: a\n    action: exec\n    forEach: { items: ${q} }\n    with: { argv: [echo] }\n`;
    if (where === 'interp') return `${MINIMAL_HEAD}  - id: a\n    action: exec\n    with: { argv: [echo, ${JSON.stringify(`a \${{ ${c} }} b \${{ ${c} }}`)}] }\n`;
    return `${MINIMAL_HEAD}  - id: a\n    action: wait\n    with: { duration: ${JSON.stringify(`\${{ ${c} }}`)} }\n`;
  }),
  // tags, directives, documents, line endings, byte order marks
  fc.constantFrom(
    `%YAML 1.1\n---\n${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`,
    `${MINIMAL_HEAD}  - !!map {id: a, action: etcd.write-probe}\n`,
    `${MINIMAL_HEAD}  - id: !!binary aGk=\n    action: etcd.write-probe\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: !!js/function 'function(){}'\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n    with: !!set {a, b}\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n    with: !!omap [{a: 1}, {a: 2}]\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n    timeout: !!timestamp 2001-12-14\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n---\n${MINIMAL_HEAD}`,
    `\ufeff${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`.replace(/\n/g, '\r\n'),
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`.replace(/\n/g, '\r'),
    `${MINIMAL_HEAD}\t- id: a\n\t  action: etcd.write-probe\n`,
    `? [complex, key]\n: 1\n${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n`,
    `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n    with: {<<: {x: 1}}\n`,
    `${MINIMAL_HEAD}  - &s {id: a, action: etcd.write-probe}\n  - *s\n`,
    `apiVersion: runbook/v1\nname: fuzz\nsummary: fuzz\nparams: {__proto__: {type: string}, constructor: {type: integer, default: 1}}\nsteps:\n  - id: a\n    action: etcd.write-probe\n`,
    `${MINIMAL_HEAD}  - id: constructor\n    action: __proto__\n  - id: to-string\n    action: toString\n    gate: hasOwnProperty\n`,
  ),
  // very long lines and very many lines
  sized(1_000, 20_000, YAML_LIMITS.maxBytes + 10_000).map((n) => `${MINIMAL_HEAD}  - id: a\n    action: etcd.write-probe\n${'#'.repeat(n)}\n`),
  sized(1_000, 20_000, YAML_LIMITS.maxBytes + 10_000).map((n) => `${MINIMAL_HEAD}${'\n'.repeat(n)}  - id: a\n    action: etcd.write-probe\n`),
);

/** Raw bytes: random, invalid UTF-8 inserted into valid files, UTF-16 with a BOM. */
export function byteInputs(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 500 }),
    fc.record({ seed: fc.constantFrom(...seeds), at: fc.nat(), junk: fc.uint8Array({ minLength: 1, maxLength: 8 }) }).map(({ seed, at, junk }) => {
      const k = at % (seed.length + 1);
      const out = new Uint8Array(seed.length + junk.length);
      out.set(seed.subarray(0, k), 0);
      out.set(junk, k);
      out.set(seed.subarray(k), k + junk.length);
      return out;
    }),
    fc.constantFrom(...seeds).map((seed) => {
      const t = Buffer.from(`\ufeff${Buffer.from(seed).toString('utf8')}`, 'utf16le');
      return new Uint8Array(t);
    }),
    fc.constantFrom(new Uint8Array([0xc0, 0x80]), new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array([0xf4, 0x90, 0x80, 0x80]), new Uint8Array([0xff, 0xfe, 0x61, 0x00])),
  );
}
