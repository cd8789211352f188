/**
 * Schema issues (zod 4's, taken structurally: this module needs no zod import) turned into short messages at value
 * paths, which the loaders then place at `file:line:col` through YamlSource.
 */
import { suggest } from './suggest.ts';

/** The parts of a zod 4 issue used here (kept structural so this module needs no zod import). */
export interface SchemaIssue {
  code: string;
  path: PropertyKey[];
  message: string;
  [k: string]: unknown;
}

export interface PathMessage {
  path: (string | number)[];
  message: string;
  /** Point at the key (unknown keys) rather than its value. */
  key?: boolean;
  /** The last path segment is a required key that is absent (the message names it). */
  missing?: boolean;
}

/**
 * Turn schema issues into short messages at value paths. `root` is the value that was checked (to say what was
 * found instead); `knownKeys(path)` lists the keys allowed at a path (for "did you mean" on unknown keys).
 */
export function describeIssues(
  issues: readonly SchemaIssue[],
  root: unknown,
  knownKeys?: (path: (string | number)[]) => string[] | undefined,
): PathMessage[] {
  const out: PathMessage[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys?.(path) ?? [];
      for (const k of (issue.keys as string[] | undefined) ?? []) {
        // "did you mean" costs an edit distance per known key: only for as many problems as are shown.
        const hint = out.length < 200 ? suggest(k, known) : undefined;
        out.push({ path: [...path, k], key: true, message: `unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : known.length && known.length <= 12 ? ` (allowed: ${known.join(', ')})` : ''}` });
      }
      continue;
    }
    const found = valueAt(root, path);
    const missing = found === undefined && typeof path[path.length - 1] === 'string' && (issue.code === 'invalid_type' || issue.code === 'invalid_union' || issue.code === 'invalid_value');
    out.push({ path, message: issueMessage(issue, found, path), ...(missing ? { missing } : {}) });
  }
  return out;
}

function issueMessage(issue: SchemaIssue, found: unknown, path: (string | number)[]): string {
  const zodDefault = /^(Invalid|Too (big|small)|Unrecognized)/.test(issue.message);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = typeWord(String(issue.expected));
      if (found === undefined) {
        const last = path[path.length - 1];
        return typeof last === 'string' ? `missing required key "${last}" (${expected})` : `missing ${expected}`;
      }
      return `expected ${expected}, got ${describeValue(found)}`;
    }
    case 'invalid_union': {
      if (Array.isArray(issue.options)) {
        const opts = (issue.options as unknown[]).map((o) => JSON.stringify(o)).join(', ');
        const last = path[path.length - 1];
        if (found === undefined) return `missing required key "${String(last)}" (one of ${opts})`;
        const hint = typeof found === 'string' ? suggest(found, (issue.options as unknown[]).map(String)) : undefined;
        return `must be one of ${opts} (got ${describeValue(found)})${hint ? `; did you mean "${hint}"?` : ''}`;
      }
      const branches = (issue.errors as SchemaIssue[][] | undefined) ?? [];
      const types = branches.flatMap((b) => (b.length === 1 && b[0]!.code === 'invalid_type' && b[0]!.path.length === 0 ? [typeWord(String(b[0]!.expected))] : []));
      if (types.length === branches.length && types.length > 0) {
        const last = path[path.length - 1];
        if (found === undefined) return typeof last === 'string' ? `missing required key "${last}" (${types.join(' or ')})` : `missing ${types.join(' or ')}`;
        return `expected ${types.join(' or ')}, got ${describeValue(found)}`;
      }
      const firstNested = branches.find((b) => b.length > 0)?.[0];
      return firstNested ? issueMessage(firstNested, found, path) : `not a valid value: ${describeValue(found)}`;
    }
    case 'invalid_value': {
      const values = ((issue.values as unknown[] | undefined) ?? []).map((v) => JSON.stringify(v));
      const lastKey = path[path.length - 1];
      if (found === undefined && typeof lastKey === 'string') {
        return `missing required key "${lastKey}" (${values.length === 1 ? `must be ${values[0]}` : `one of ${values.join(', ')}`})`;
      }
      if (values.length === 1) return `must be ${values[0]} (got ${describeValue(found)})`;
      const hint = typeof found === 'string' ? suggest(found, ((issue.values as unknown[]) ?? []).map(String)) : undefined;
      return `must be one of ${values.join(', ')} (got ${describeValue(found)})${hint ? `; did you mean "${hint}"?` : ''}`;
    }
    case 'too_small':
    case 'too_big': {
      if (!zodDefault) return issue.message;
      const small = issue.code === 'too_small';
      const limit = String(issue.minimum ?? issue.maximum);
      const incl = issue.inclusive !== false;
      switch (issue.origin) {
        case 'string':
          if (small && limit === '1') return 'must not be empty';
          return `must be ${small ? 'at least' : 'at most'} ${limit} characters long`;
        case 'array':
        case 'set':
          return `must have ${small ? 'at least' : 'at most'} ${limit} item${limit === '1' ? '' : 's'}`;
        default:
          return `must be ${small ? (incl ? '>=' : '>') : incl ? '<=' : '<'} ${limit} (got ${describeValue(found)})`;
      }
    }
    case 'invalid_format': {
      if (!zodDefault) return issue.message;
      if (issue.format === 'url') return `not a valid URL: ${describeValue(found)}`;
      if (issue.format === 'regex') return `${describeValue(found)} does not match ${String(issue.pattern)}`;
      return `not a valid ${String(issue.format)}: ${describeValue(found)}`;
    }
    case 'invalid_key':
      return `invalid key: ${firstLine(((issue.issues as SchemaIssue[] | undefined)?.[0]?.message) ?? issue.message)}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return issue.message;
  }
}

function typeWord(t: string): string {
  switch (t) {
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean (true or false)';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
      return 'a mapping';
    case 'null':
      return 'null';
    default:
      return t;
  }
}

/** Value at a path of a plain JS value (undefined when absent). */
export function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if (!Object.hasOwn(v, seg)) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/**
 * A short, human-readable type name of a JS value parsed from YAML, for messages like "expected a number,
 * got a list".
 */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return v.length > 40 ? `a string ("${v.slice(0, 37)}...")` : `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  return typeof v;
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').trim().slice(0, 300);
}
