import { describe, expect, it } from 'vitest';
import { EXPR_LIMITS, evalBool, evalExpr, findTemplates, parseExpr, renderTemplate } from '../../../src/compile/expr.ts';
import type { ExprScope } from '../../../src/compile/expr.ts';
import { StepError } from '../../../src/util/errors.ts';

const scope: ExprScope = {
  params: { quotaBytes: null, keepRevisions: 5, ratio: 1.5, hosts: ['a', 'b'], reason: 'disk full' },
  inventory: {
    name: 'prod',
    source: 'cluster.yaml',
    members: [
      { name: 'etcd-1', clientURL: 'https://10.0.0.1:2379', peerURL: 'https://10.0.0.1:2380', driver: { type: 'none' } },
      { name: 'etcd-2', clientURL: 'https://10.0.0.2:2379', peerURL: 'https://10.0.0.2:2380', driver: { type: 'none' }, dataDir: '/var/lib/etcd' },
    ],
  },
  steps: {
    compact: { status: 'succeeded', output: { revision: 1234, big: 2 ** 53 + 2 } },
    snapshot: { status: 'skipped' },
  },
  item: { key: 'etcd-1', index: 0, name: 'etcd-1', value: null },
};

function stepError(fn: () => unknown): StepError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    return err as StepError;
  }
  throw new Error('expected a StepError');
}

describe('parseExpr', () => {
  it('collects param, step and inventory references from the AST', () => {
    const r = parseExpr('params.quotaBytes != null && steps["compact"].output.revision > params["keepRevisions"] && has(inventory.kubernetes) && item.name == "x"');
    expect(r).toEqual({ ok: true, refs: { params: ['quotaBytes', 'keepRevisions'], steps: ['compact'], inventory: ['kubernetes'], item: true } });
  });

  it('does not count names inside strings or macro variables as references', () => {
    const r = parseExpr('inventory.members.map(m, m.name).exists(n, n == "params.nope")');
    expect(r.ok).toBe(true);
    expect(r.refs).toEqual({ params: [], steps: [], inventory: ['members'], item: false });
  });

  it('reports syntax errors, unknown variables and type errors with an offset', () => {
    expect(parseExpr('params.x +')).toMatchObject({ ok: false, error: 'Unexpected token: EOF', offset: 10 });
    expect(parseExpr('param.x == 1')).toMatchObject({ ok: false, error: 'Unknown variable: param', offset: 0 });
    expect(parseExpr('1 + "a"')).toMatchObject({ ok: false, error: expect.stringMatching(/no such overload/) });
    expect(parseExpr('')).toMatchObject({ ok: false, error: 'empty expression' });
    expect(parseExpr('x'.repeat(EXPR_LIMITS.maxLength + 1))).toMatchObject({ ok: false, error: expect.stringMatching(/limit 2000/) });
    expect(parseExpr(`${'('.repeat(100)}1${')'.repeat(100)}`)).toMatchObject({ ok: false, error: expect.stringMatching(/maxDepth/) });
  });
});

describe('evalExpr', () => {
  it('compares and computes with JS numbers as CEL ints and doubles, and returns JS numbers', () => {
    expect(evalExpr('params.keepRevisions + 1', scope)).toBe(6);
    expect(evalExpr('steps.compact.output.revision - params.keepRevisions', scope)).toBe(1229);
    expect(evalExpr('params.ratio > 1', scope)).toBe(true);
    expect(evalExpr('params.keepRevisions == 5', scope)).toBe(true);
    expect(evalExpr('params.ratio * 2.0', scope)).toBe(3);
    // Beyond 2^53 an int cannot be a JS number without losing digits: it comes back as a decimal string.
    expect(evalExpr('steps.compact.output.big', scope)).toBe(2 ** 53 + 2);
    expect(evalExpr('9007199254740993', scope)).toBe('9007199254740993');
  });

  it('sees unset optional params and absent optional inventory fields as null', () => {
    expect(evalExpr('params.quotaBytes != null', scope)).toBe(false);
    expect(evalExpr('inventory.kubernetes != null', scope)).toBe(false);
    expect(evalExpr('inventory.snapshots == null', scope)).toBe(true);
    expect(evalExpr('inventory.members.filter(m, m.dataDir != null).map(m, m.name)', scope)).toEqual(['etcd-2']);
    expect(evalExpr('steps.snapshot.output == null', scope)).toBe(true);
  });

  it('evaluates lists, maps and macros', () => {
    expect(evalExpr('inventory.members.map(m, m.name)', scope)).toEqual(['etcd-1', 'etcd-2']);
    expect(evalExpr('"b" in params.hosts', scope)).toBe(true);
    expect(evalExpr('{"n": size(params.hosts)}', scope)).toEqual({ n: 2 });
    expect(evalExpr('item.name', scope)).toBe('etcd-1');
  });

  it('fails with a StepError naming the expression, never a stack trace', () => {
    const e = stepError(() => evalExpr('steps.nope.output', scope));
    expect(e.kind).toBe('invalid');
    expect(e.message).toBe('cannot evaluate "steps.nope.output": No such key: nope (test whether a field is set with \'y\' in x, e.g. \'recovered\' in steps["try-restart"].output)');
    expect(stepError(() => evalExpr('params.keepRevisions / 0', scope)).message).toMatch(/division by zero/);
    expect(stepError(() => evalExpr('params.keepRevisions +', scope)).message).toMatch(/^cannot parse expression "params.keepRevisions \+"/);
    expect(stepError(() => evalExpr('params.ratio + 1', scope)).message).not.toMatch(/\n/);
  });

  it('cannot reach JS internals', () => {
    expect(stepError(() => evalExpr('params.constructor', scope)).message).toMatch(/No such key: constructor/);
    expect(stepError(() => evalExpr('params.__proto__', scope)).message).toMatch(/No such key/);
  });
});

describe('evalBool', () => {
  it('accepts booleans only', () => {
    expect(evalBool('params.keepRevisions > 1', scope)).toBe(true);
    expect(stepError(() => evalBool('params.keepRevisions', scope)).message).toBe('condition "params.keepRevisions" must be true or false, got number 5');
    expect(stepError(() => evalBool('params.quotaBytes', scope)).message).toMatch(/got null/);
  });
});

describe('templates', () => {
  it('finds templates, respecting braces and quotes inside them', () => {
    expect(findTemplates('a ${{ x }} b ${{ {"k": "}}"}.k }}')).toEqual({
      parts: [
        { expr: 'x', offset: 6, start: 2, end: 10 },
        { expr: '{"k": "}}"}.k', offset: 17, start: 13, end: 33 },
      ],
    });
    expect(findTemplates('a ${{ x ').error).toEqual({ message: 'unterminated ${{ ... }} template (missing "}}")', offset: 2 });
  });

  it('renders whole-string templates typed and embedded ones as text', () => {
    const out = renderTemplate(
      {
        keep: '${{ params.keepRevisions }}',
        quota: '${{ params.quotaBytes }}',
        hosts: '${{ params.hosts }}',
        note: 'rev ${{ steps.compact.output.revision }} for ${{ params.reason }}; quota=${{ params.quotaBytes }}; hosts=${{ params.hosts }}',
        argv: ['etcdctl', '--endpoints', '${{ inventory.members[0].clientURL }}'],
        nested: { deep: ['${{ item.index + 1 }}'] },
        untouched: 'no templates here $ {{ }}',
        n: 3,
        flag: true,
      },
      scope,
    );
    expect(out).toEqual({
      keep: 5,
      // quota: an unset optional param leaves the key out (the action's default applies)
      hosts: ['a', 'b'],
      note: 'rev 1234 for disk full; quota=; hosts=["a","b"]',
      argv: ['etcdctl', '--endpoints', 'https://10.0.0.1:2379'],
      nested: { deep: [1] },
      untouched: 'no templates here $ {{ }}',
      n: 3,
      flag: true,
    });
  });

  it('leaves out mapping keys whose template is null, keeps nulls in lists', () => {
    expect(renderTemplate({ quotaBytes: '${{ params.quotaBytes }}', keep: 1 }, scope)).toEqual({ keep: 1 });
    expect(renderTemplate(['${{ params.quotaBytes }}'], scope)).toEqual([null]);
  });

  it('reports a broken template as a StepError', () => {
    expect(stepError(() => renderTemplate({ a: '${{ params.keepRevisions ' }, scope)).message).toMatch(/unterminated/);
    expect(stepError(() => renderTemplate({ a: 'x ${{ nope }}' }, scope)).message).toMatch(/Unknown variable: nope/);
  });
});
