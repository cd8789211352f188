import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadRunbookText } from '../../../src/runbook/load.ts';
import { UserError } from '../../../src/util/errors.ts';
import { parseYaml, YAML_LIMITS } from '../../../src/util/yaml-source.ts';
import { describeIssues } from '../../../src/util/schema-issues.ts';
import { suggest } from '../../../src/util/suggest.ts';

function diagnostics(input: string | Uint8Array): { line: number; col: number; message: string }[] {
  try {
    parseYaml(input, 'f.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).diagnostics;
  }
  return [];
}

describe('positions', () => {
  const src = parseYaml(
    ['name: x', 'steps:', '  - id: a', '    with: { keep: 3, note: "a\\tb", plain: hello world }', '  - id: b', '    when:', 'empty:'].join('\n'),
    'f.yaml',
  );

  it('finds values, keys, list items and the nearest node for missing paths', () => {
    expect(src.posOf(['name'])).toEqual({ line: 1, col: 7 });
    expect(src.posOf(['name'], { key: true })).toEqual({ line: 1, col: 1 });
    expect(src.posOf(['steps', 1])).toEqual({ line: 5, col: 5 });
    expect(src.posOf(['steps', 0, 'with', 'keep'])).toEqual({ line: 4, col: 19 });
    // A missing key points at the mapping that lacks it; a key without a value at the key.
    expect(src.posOf(['steps', 0, 'action'])).toEqual({ line: 3, col: 5 });
    expect(src.posOf(['steps', 1, 'when'])).toEqual({ line: 6, col: 5 });
    expect(src.posOf(['steps', 7, 'id'])).toEqual({ line: 3, col: 3 });
    expect(src.posOf(['empty'])).toEqual({ line: 7, col: 1 });
  });

  it('points inside plain scalars, falls back to the start of scalars with escapes', () => {
    expect(src.posInScalar(['steps', 0, 'with', 'plain'], 6)).toEqual({ line: 4, col: 49 });
    expect(src.posInScalar(['steps', 0, 'with', 'note'], 2)).toEqual({ line: 4, col: 28 });
  });
});

describe('hostile input', () => {
  it('refuses a file over the size limit before parsing', () => {
    const d = diagnostics(`a: "${'x'.repeat(YAML_LIMITS.maxBytes)}"\n`);
    expect(d[0]!.message).toMatch(/too large/);
  });

  // How quickly (the bomb and the deep nesting below) is measured by bench/loader-latency.ts, not asserted here.
  it('stops an alias bomb', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(',')}]`);
    }
    expect(diagnostics(lines.join('\n'))[0]!.message).toMatch(/billion laughs/);
  });

  it('reports deep flow nesting (even 100k brackets) instead of overflowing the stack', () => {
    for (const depth of [100, 100_000]) {
      const value = diagnostics(`a: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
      expect(value.some((d) => /nesting is too deep/.test(d.message))).toBe(true);
    }
  });

  it('reports deep block nesting', () => {
    let text = '';
    for (let i = 0; i < 80; i++) text += `${' '.repeat(i)}k${i}:\n`;
    text += `${' '.repeat(80)}v\n`;
    expect(diagnostics(text).map((d) => d.message)).toContain(`nesting is too deep (limit ${YAML_LIMITS.maxDepth} levels)`);
  });

  it('reports every duplicate key with the line of the first', () => {
    const d = diagnostics('a: 1\nb:\n  c: 1\n  c: 2\na: 3\n');
    expect(d).toEqual([
      { file: 'f.yaml', line: 4, col: 3, message: 'duplicate key "c" (first defined on line 3)' },
      { file: 'f.yaml', line: 5, col: 1, message: 'duplicate key "a" (first defined on line 1)' },
    ]);
  });

  it('keeps __proto__ a plain key (no prototype pollution)', () => {
    const src = parseYaml('__proto__: { polluted: true }\n', 'f.yaml');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(src.value)).toBe(Object.prototype);
  });

  it('never throws anything but a UserError with diagnostics, for any text or bytes', () => {
    const fragments = fc.constantFrom(
      'apiVersion: runbook/v1\n', 'name: x\n', 'summary: s\n', 'steps:\n', '  - id: a\n', '    action: etcd.defrag\n', '  - { id: b, action: exec, with: { argv: [a] } }\n',
      '    when: params.x > 1\n', '    with: { keep: "${{ params.k }}" }\n', '&a [*a]\n', '*x\n', '? [a]\n: b\n', '\t', '---\n', '"', "'", '[', '{', ']', '}', ': ', '- ', '#', '!!binary ', '|\n', '>\n', '\u0000', '\uFEFF',
    );
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fragments, { maxLength: 30 }).map((a) => a.join('')));
    fc.assert(
      fc.property(text, (t) => {
        try {
          loadRunbookText(t, 'fuzz.yaml');
        } catch (err) {
          if (!(err instanceof UserError) || err.diagnostics.length === 0) throw err;
        }
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseYaml(bytes, 'fuzz.yaml');
        } catch (err) {
          if (!(err instanceof UserError) || err.diagnostics.length === 0) throw err;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('messages', () => {
  it('suggests close names, abbreviations and suffixes, and nothing for unrelated words', () => {
    expect(suggest('etcd.defragment', ['etcd.defrag', 'etcd.compact'])).toBe('etcd.defrag');
    expect(suggest('defrag', ['etcd.defrag', 'etcd.compact'])).toBe('etcd.defrag');
    expect(suggest('maxAttempts', ['maximumAttempts', 'initialInterval'])).toBe('maximumAttempts');
    expect(suggest('stpes', ['steps', 'params'])).toBe('steps');
    expect(suggest('banana', ['steps', 'params'])).toBeUndefined();
  });

  it('turns schema issues into short messages that say what was found', () => {
    const m = describeIssues(
      [
        { code: 'invalid_type', expected: 'string', path: ['a'], message: 'Invalid input' },
        { code: 'invalid_type', expected: 'number', path: ['b'], message: 'Invalid input' },
        { code: 'invalid_value', values: ['x', 'y'], path: ['c'], message: 'Invalid option' },
        { code: 'unrecognized_keys', keys: ['nmae'], path: [], message: 'Unrecognized key' },
      ],
      { a: [1], c: 'z' },
      () => ['name', 'a', 'b', 'c'],
    );
    expect(m).toEqual([
      { path: ['a'], message: 'expected a string, got a list' },
      { path: ['b'], message: 'missing required key "b" (a number)', missing: true },
      { path: ['c'], message: 'must be one of "x", "y" (got the string "z")' },
      { path: ['nmae'], key: true, message: 'unknown key "nmae" (did you mean "name"?)' },
    ]);
  });
});
