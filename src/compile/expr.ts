/**
 * Safe expressions: `when:`, `forEach.items` and `${{ ... }}` templates are CEL (via @marcbachmann/cel-js),
 * never JS eval. CEL has no loops or recursion; parse-time limits on length, nodes, depth and literal sizes keep
 * every evaluation small. CEL integers are BigInt: numbers going in are converted (safe integers become ints,
 * others doubles) and BigInt results come back as numbers when safe.
 *
 * Scope: `params` (unset optional params are null), `inventory`, `steps` (id → {status, output, items}), `item`
 * (the forEach item).
 */
import { Environment } from '@marcbachmann/cel-js';
import { StepError } from '../util/errors.ts';

export const EXPR_LIMITS = {
  maxLength: 2000,
  maxAstNodes: 1000,
  maxDepth: 32,
  maxListElements: 256,
  maxMapEntries: 256,
  /** Depth to which scope values are converted (deeper parts become null). */
  maxValueDepth: 32,
} as const;

export const SCOPE_NAMES = ['params', 'inventory', 'steps', 'item'] as const;

export interface ExprScope {
  params?: Record<string, unknown>;
  inventory?: unknown;
  steps?: Record<string, unknown>;
  item?: unknown;
}

export interface ExprRefs {
  /** `params.X` / `params["X"]` */
  params: string[];
  /** `steps.X` / `steps["X"]` */
  steps: string[];
  /** `inventory.X` (first level only) */
  inventory: string[];
  /** uses `item` */
  item: boolean;
}

export interface ParsedExpr {
  ok: boolean;
  /** What is wrong, without the expression (callers add position and text). */
  error?: string;
  /** Character offset inside the expression where the error was found. */
  offset?: number;
  refs: ExprRefs;
}

function newEnvironment(names: readonly string[]): Environment {
  const e = new Environment({
    homogeneousAggregateLiterals: false,
    limits: {
      maxAstNodes: EXPR_LIMITS.maxAstNodes,
      maxDepth: EXPR_LIMITS.maxDepth,
      maxListElements: EXPR_LIMITS.maxListElements,
      maxMapEntries: EXPR_LIMITS.maxMapEntries,
      maxCallArguments: 16,
    },
  });
  for (const name of names) e.registerVariable(name, 'dyn');
  return e;
}
const env = newEnvironment(SCOPE_NAMES);

type Compiled = ReturnType<typeof env.parse>;
const cache = new Map<string, Compiled>();

/** Parse and type-check an expression; collect what it refers to. Never throws. */
export function parseExpr(text: string): ParsedExpr {
  const refs: ExprRefs = { params: [], steps: [], inventory: [], item: false };
  if (typeof text !== 'string' || text.trim() === '') return { ok: false, error: 'empty expression', offset: 0, refs };
  if (text.length > EXPR_LIMITS.maxLength) {
    return { ok: false, error: `expression is ${text.length} characters long (limit ${EXPR_LIMITS.maxLength})`, offset: 0, refs };
  }
  let compiled: Compiled;
  try {
    compiled = compile(text);
  } catch (err) {
    return { ok: false, ...celError(err), refs };
  }
  collectRefs(compiled.ast, refs);
  try {
    const checked = env.check(text);
    if (!checked.valid) return { ok: false, ...celError(checked.error), refs };
  } catch (err) {
    return { ok: false, ...celError(err), refs };
  }
  return { ok: true, refs };
}

/**
 * Evaluate an expression against a scope. Integers come back as numbers (or decimal strings when beyond 2^53).
 * Throws StepError('invalid') naming the expression.
 */
export function evalExpr(text: string, scope: ExprScope): unknown {
  if (typeof text !== 'string' || text.length > EXPR_LIMITS.maxLength) {
    throw new StepError('invalid', `expression is too long (limit ${EXPR_LIMITS.maxLength} characters)`);
  }
  let compiled: Compiled;
  try {
    compiled = compile(text);
  } catch (err) {
    throw new StepError('invalid', `cannot parse expression ${quote(text)}: ${celError(err).error}`);
  }
  let result: unknown;
  try {
    result = compiled(toScope(scope));
  } catch (err) {
    const { error } = celError(err);
    const hint = /^No such key/i.test(error) ? ` (test whether a field is set with 'y' in x, e.g. 'recovered' in steps["try-restart"].output)` : '';
    throw new StepError('invalid', `cannot evaluate ${quote(text)}: ${error}${hint}`);
  }
  if (result instanceof Promise) throw new StepError('invalid', `expression ${quote(text)} is asynchronous`);
  return fromCel(result, 0);
}

/** Evaluate a condition; anything but a boolean is an error (no truthiness). */
export function evalBool(text: string, scope: ExprScope): boolean {
  const v = evalExpr(text, scope);
  if (typeof v !== 'boolean') {
    throw new StepError('invalid', `condition ${quote(text)} must be true or false, got ${describe(v)}`);
  }
  return v;
}

/** A condition over variables other than a runbook's (the guard's rules: `cluster`, `members`). */
export interface ExprDialect {
  /** Parse and type-check; never throws. */
  check(text: string): { ok: boolean; error?: string; offset?: number };
  /** Evaluate to a boolean (no truthiness); throws StepError('invalid') naming the expression. */
  evalBool(text: string, vars: Record<string, unknown>): boolean;
}

/**
 * The same CEL, limits and number conversions as runbooks, in an environment of its own that knows only `names`:
 * a rule cannot name `steps`, a runbook's `when:` cannot name the guard's variables.
 */
export function exprDialect(names: readonly string[]): ExprDialect {
  const dialect = newEnvironment(names);
  const parsed = new Map<string, Compiled>();
  const compileIn = (text: string): Compiled => {
    let c = parsed.get(text);
    if (!c) {
      c = dialect.parse(text);
      if (parsed.size >= 500) parsed.delete(parsed.keys().next().value!);
      parsed.set(text, c);
    }
    return c;
  };
  return {
    check(text) {
      if (typeof text !== 'string' || text.trim() === '') return { ok: false, error: 'empty expression', offset: 0 };
      if (text.length > EXPR_LIMITS.maxLength) return { ok: false, error: `expression is ${text.length} characters long (limit ${EXPR_LIMITS.maxLength})`, offset: 0 };
      try {
        compileIn(text);
        const checked = dialect.check(text);
        if (!checked.valid) return { ok: false, ...celError(checked.error) };
      } catch (err) {
        return { ok: false, ...celError(err) };
      }
      return { ok: true };
    },
    evalBool(text, vars) {
      let compiled: Compiled;
      try {
        compiled = compileIn(text);
      } catch (err) {
        throw new StepError('invalid', `cannot parse expression ${quote(text)}: ${celError(err).error}`);
      }
      const scope: Record<string, unknown> = {};
      for (const n of names) scope[n] = toCel(vars[n], 0);
      let v: unknown;
      try {
        v = fromCel(compiled(scope), 0);
      } catch (err) {
        throw new StepError('invalid', `cannot evaluate ${quote(text)}: ${celError(err).error}`);
      }
      if (typeof v !== 'boolean') throw new StepError('invalid', `condition ${quote(text)} must be true or false, got ${describe(v)}`);
      return v;
    },
  };
}

export interface TemplatePart {
  /** The expression between `${{` and `}}`, trimmed. */
  expr: string;
  /** Offset of the expression text (untrimmed start) in the string. */
  offset: number;
  /** Offsets of `${{` and just after `}}`. */
  start: number;
  end: number;
}

/**
 * Find the `${{ ... }}` templates in a string. Braces and quotes inside the expression are respected, so
 * `${{ {"a": 1}.a }}` works. Unterminated templates are reported as `error`.
 */
export function findTemplates(s: string): { parts: TemplatePart[]; error?: { message: string; offset: number } } {
  const parts: TemplatePart[] = [];
  let from = 0;
  while (from < s.length) {
    const start = s.indexOf('${{', from);
    if (start < 0) break;
    const body = start + 3;
    let depth = 0;
    let q: string | null = null;
    let end = -1;
    for (let j = body; j < s.length; j++) {
      const c = s[j];
      if (q) {
        if (c === '\\') j++;
        else if (c === q) q = null;
        continue;
      }
      if (c === '"' || c === "'") q = c;
      else if (c === '{') depth++;
      else if (c === '}') {
        if (depth === 0 && s[j + 1] === '}') {
          end = j;
          break;
        }
        if (depth > 0) depth--;
      }
    }
    if (end < 0) return { parts, error: { message: 'unterminated ${{ ... }} template (missing "}}")', offset: start } };
    const raw = s.slice(body, end);
    const lead = raw.length - raw.trimStart().length;
    parts.push({ expr: raw.trim(), offset: body + lead, start, end: end + 2 });
    from = end + 2;
  }
  return { parts };
}

export function hasTemplate(value: unknown): boolean {
  return typeof value === 'string' && value.includes('${{');
}

/**
 * Replace templates in a `with` value: a string that is exactly one `${{ expr }}` becomes the typed result;
 * templates among other text are interpolated as strings (null as "", lists and maps as JSON). A mapping key
 * whose whole-template value is null is left out, so an unset optional param leaves the action's default.
 */
export function renderTemplate(value: unknown, scope: ExprScope): unknown {
  return render(value, scope, 0);
}

// ---- internals --------------------------------------------------------------------------------------------

function render(value: unknown, scope: ExprScope, depth: number): unknown {
  if (depth > EXPR_LIMITS.maxValueDepth) throw new StepError('invalid', 'step input is nested too deeply');
  if (typeof value === 'string') {
    if (!value.includes('${{')) return value;
    const { parts, error } = findTemplates(value);
    if (error) throw new StepError('invalid', `${error.message} in ${quote(value)}`);
    const only = parts[0];
    if (parts.length === 1 && only && only.start === 0 && only.end === value.length) return evalExpr(only.expr, scope);
    let out = '';
    let at = 0;
    for (const p of parts) {
      out += value.slice(at, p.start) + interpolate(evalExpr(p.expr, scope));
      at = p.end;
    }
    return out + value.slice(at);
  }
  if (Array.isArray(value)) return value.map((v) => render(v, scope, depth + 1));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = render(v, scope, depth + 1);
      // `quotaBytes: ${{ params.quotaBytes }}` with the param unset means "not given": the action's default applies.
      if (r === null && typeof v === 'string' && v.includes('${{')) continue;
      out[k] = r;
    }
    return out;
  }
  return value;
}

function interpolate(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

function compile(text: string): Compiled {
  let c = cache.get(text);
  if (!c) {
    c = env.parse(text);
    if (cache.size >= 500) cache.delete(cache.keys().next().value!);
    cache.set(text, c);
  }
  return c;
}

interface AstLike {
  op: string;
  args: unknown;
}

function isAst(v: unknown): v is AstLike {
  return typeof v === 'object' && v !== null && typeof (v as AstLike).op === 'string' && 'args' in v;
}

function collectRefs(root: unknown, refs: ExprRefs): void {
  const add = (list: string[], name: string) => {
    if (!list.includes(name)) list.push(name);
  };
  const visit = (node: unknown, depth: number): void => {
    if (depth > 200) return;
    if (Array.isArray(node)) {
      for (const n of node) visit(n, depth + 1);
      return;
    }
    if (!isAst(node)) return;
    if (node.op === 'id' && node.args === 'item') refs.item = true;
    if (node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') {
      const [obj, key] = node.args as [unknown, unknown];
      const name = typeof key === 'string' ? key : isAst(key) && key.op === 'value' && typeof key.args === 'string' ? key.args : undefined;
      if (isAst(obj) && obj.op === 'id' && name !== undefined) {
        if (obj.args === 'params') add(refs.params, name);
        else if (obj.args === 'steps') add(refs.steps, name);
        else if (obj.args === 'inventory') add(refs.inventory, name);
      }
    }
    if (Array.isArray(node.args)) visit(node.args, depth + 1);
    else if (isAst(node.args)) visit(node.args, depth + 1);
  };
  visit(root, 0);
}

function celError(err: unknown): { error: string; offset?: number } {
  const e = err as { summary?: unknown; message?: unknown; range?: { start?: unknown } } | undefined;
  const summary = typeof e?.summary === 'string' && e.summary ? e.summary : firstLine(typeof e?.message === 'string' ? e.message : String(err));
  const start = e?.range?.start;
  return typeof start === 'number' ? { error: summary, offset: start } : { error: summary };
}

const INVENTORY_OPTIONAL = ['tls', 'auth', 'kubernetes', 'snapshots', 'etcdBinDir', 'requestTimeoutMs', 'quotaBytes'];
const MEMBER_OPTIONAL = ['dataDir', 'ssh'];

/** Build the CEL context: known optional fields present as null so `x.y != null` works. */
function toScope(scope: ExprScope): Record<string, unknown> {
  const inventory = isPlainObject(scope.inventory) ? withNulls(scope.inventory, INVENTORY_OPTIONAL) : scope.inventory ?? null;
  if (isPlainObject(inventory) && Array.isArray(inventory.members)) {
    inventory.members = inventory.members.map((m) => (isPlainObject(m) ? withNulls(m, MEMBER_OPTIONAL) : m));
  }
  const steps: Record<string, unknown> = {};
  for (const [id, rec] of Object.entries(scope.steps ?? {})) steps[id] = isPlainObject(rec) ? withNulls(rec, ['status', 'output', 'items']) : rec;
  let item: unknown = scope.item ?? null;
  if (isPlainObject(item) && isPlainObject(item.member)) item = { ...item, member: withNulls(item.member, MEMBER_OPTIONAL) };
  return {
    params: toCel(scope.params ?? {}, 0),
    inventory: toCel(inventory, 0),
    steps: toCel(steps, 0),
    item: toCel(item, 0),
  };
}

function withNulls(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out = { ...obj };
  for (const k of keys) if (out[k] === undefined) out[k] = null;
  return out;
}

function toCel(v: unknown, depth: number): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (depth >= EXPR_LIMITS.maxValueDepth) return null;
  if (Array.isArray(v)) return v.map((x) => toCel(x, depth + 1));
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) out[String(k)] = toCel(x, depth + 1);
    return out;
  }
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toCel(x, depth + 1);
    return out;
  }
  return null;
}

function fromCel(v: unknown, depth: number): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v === null || typeof v !== 'object' || depth > EXPR_LIMITS.maxValueDepth) return v;
  if (Array.isArray(v)) return v.map((x) => fromCel(x, depth + 1));
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v) out[String(k)] = fromCel(x, depth + 1);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = fromCel(x, depth + 1);
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 197)}...` : text);
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').trim();
}
