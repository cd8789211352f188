/**
 * YAML with source positions, hardened against hostile input. Runbooks and inventories are parsed here so every
 * later check can point at `file:line:col`. Anything wrong with the bytes (size, encoding, syntax, alias bombs,
 * nesting, duplicate keys, a non-mapping top level) becomes a UserError carrying diagnostics; nothing else is
 * thrown and nothing here can run for long (input size is capped before the parser sees it).
 */
import { readFileSync, statSync } from 'node:fs';
import { Alias, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, Scalar } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { UserError } from './errors.ts';
import type { Diagnostic } from './errors.ts';

export const YAML_LIMITS = {
  /** Runbooks and inventories are a few KiB; 256 KiB bounds the worst-case parse (and what a hostile file costs). */
  maxBytes: 256 * 1024,
  /** Passed to yaml's toJS: caps the nodes aliases may expand to ("billion laughs"). */
  maxAliasCount: 100,
  /** Nesting of mappings and sequences. */
  maxDepth: 64,
  /** Length of one scalar (characters). */
  maxScalarLength: 64 * 1024,
  /** Diagnostics reported for one file before the rest are summarised. */
  maxDiagnostics: 100,
} as const;

export type YamlPath = readonly (string | number)[];

export interface Pos {
  line: number;
  col: number;
}

/** A parsed YAML file: its plain JS value (a mapping) and the positions of its nodes. */
export class YamlSource {
  readonly file: string;
  readonly text: string;
  /** The top-level mapping as plain JS (aliases expanded within limits). */
  readonly value: Record<string, unknown>;
  readonly doc: Document.Parsed;
  readonly #lines: (offset: number) => Pos;

  constructor(file: string, text: string, value: Record<string, unknown>, doc: Document.Parsed, lines: (offset: number) => Pos) {
    this.file = file;
    this.text = text;
    this.value = value;
    this.doc = doc;
    this.#lines = lines;
  }

  /** 1-based line and column of a character offset. */
  posAt(offset: number): Pos {
    return this.#lines(offset);
  }

  /**
   * The node for a path of keys and indexes, or the nearest existing ancestor when the path runs out
   * (a missing key points at its parent mapping; a key with no value points at the key).
   * With `key: true` the last segment's key node is returned instead of its value.
   */
  nodeAt(path: YamlPath, opts: { key?: boolean } = {}): YamlNode | undefined {
    let node: unknown = this.doc.contents;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = pairIndex(node).get(String(seg));
        if (!pair) return node;
        if (last && opts.key) return pair.key as YamlNode;
        const v = pair.value as YamlNode | null | undefined;
        // `key:` with nothing after it: point at the key, not at the empty spot after the colon.
        if (v === null || v === undefined || (isScalar(v) && v.value === null && v.range && v.range[0] === v.range[1])) return pair.key as YamlNode;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = typeof seg === 'number' ? node.items[seg] : undefined;
        if (item === undefined || item === null) return node;
        node = item;
      } else {
        return node as YamlNode | undefined;
      }
    }
    return node as YamlNode | undefined;
  }

  posOf(path: YamlPath, opts: { key?: boolean } = {}): Pos {
    const node = this.nodeAt(path, opts);
    return this.posAt(node?.range?.[0] ?? 0);
  }

  /**
   * Position of a character inside a string scalar (e.g. where a CEL expression goes wrong). Exact for plain
   * and quoted scalars without escapes on one line; otherwise the scalar's start.
   */
  posInScalar(path: YamlPath, index: number): Pos {
    const node = this.nodeAt(path);
    if (!isScalar(node) || !node.range || typeof node.value !== 'string') return this.posOf(path);
    const [start, end] = node.range;
    const raw = this.text.slice(start, end);
    const value = node.value;
    let base: number | undefined;
    if (node.type === Scalar.PLAIN && raw === value) base = start;
    else if ((node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE) && raw.slice(1, -1) === value) base = start + 1;
    if (base === undefined || index < 0 || index > value.length) return this.posAt(start);
    return this.posAt(base + index);
  }

  diag(path: YamlPath, message: string, opts: { key?: boolean } = {}): Diagnostic {
    return { file: this.file, ...this.posOf(path, opts), message };
  }
}

/** Read a file (size-capped) and parse it. Returns the exact bytes too (for content hashes). */
export function readYamlFile(file: string): { source: YamlSource; bytes: Buffer } {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw fail(file, 'not a regular file');
    size = st.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw fail(file, describeFsError(err));
  }
  if (size > YAML_LIMITS.maxBytes) throw tooBig(file, size);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw fail(file, describeFsError(err));
  }
  return { source: parseYaml(bytes, file), bytes };
}

/** Parse YAML text or bytes into a YamlSource whose top level is a mapping. Throws UserError with diagnostics. */
export function parseYaml(input: string | Uint8Array, file: string): YamlSource {
  const text = typeof input === 'string' ? input : decodeUtf8(input, file);
  if (typeof input === 'string' && Buffer.byteLength(input, 'utf8') > YAML_LIMITS.maxBytes) {
    throw tooBig(file, Buffer.byteLength(input, 'utf8'));
  }
  const ctl = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFE\uFFFF]/.exec(text);
  if (ctl) {
    const code = ctl[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    const { line, col } = lineIndex(text)(ctl.index);
    throw new UserError(`${file}: not a text file`, {
      diagnostics: [{ file, line, col, message: `control character U+${code} is not allowed (is this a binary file?)` }],
    });
  }

  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, keepSourceTokens: false });
  } catch (err) {
    // The parser reports its own resource exhaustion as errors; anything thrown is unexpected but still the input's fault.
    throw new UserError(`${file}: cannot parse YAML`, {
      diagnostics: [{ file, line: 1, col: 1, message: `cannot parse YAML: ${oneLine(err)}` }],
    });
  }

  // Positions come from the whole text, not from yaml's LineCounter: that one only knows the lines the lexer got
  // to, so an error past them would get a column beyond the end of its line.
  const pos = lineIndex(text);
  const diagnostics: Diagnostic[] = [];
  let exhausted = false;
  for (const e of doc.errors) {
    if (e.code === 'RESOURCE_EXHAUSTION') {
      if (!exhausted) diagnostics.push({ file, ...pos(e.pos[0]), message: `nesting is too deep (limit ${YAML_LIMITS.maxDepth} levels)` });
      exhausted = true;
      continue;
    }
    diagnostics.push({ file, ...pos(e.pos[0]), message: yamlErrorMessage(e.code, e.message) });
  }
  for (const w of doc.warnings) {
    diagnostics.push({ file, ...pos(w.pos[0]), message: yamlErrorMessage(w.code, w.message) });
  }
  if (diagnostics.length === 0) checkTree(doc, file, pos, diagnostics);
  if (diagnostics.length) throw syntaxError(file, diagnostics);

  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && (contents.value === null || contents.value === ''))) {
    throw syntaxError(file, [{ file, line: 1, col: 1, message: 'the file is empty: expected a mapping of key: value pairs' }]);
  }
  if (!isMap(contents)) {
    const what = isSeq(contents) ? 'a list' : isAlias(contents) ? 'an alias' : `a single value (${JSON.stringify(String((contents as Scalar).value)).slice(0, 40)})`;
    throw syntaxError(file, [{ file, ...pos(contents.range?.[0] ?? 0), message: `the top level must be a mapping of key: value pairs, not ${what}` }]);
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: YAML_LIMITS.maxAliasCount });
  } catch (err) {
    const alias = firstAlias(contents);
    const at = pos(alias?.range?.[0] ?? 0);
    const msg = /Excessive alias count/i.test(oneLine(err))
      ? `aliases expand to too many nodes (limit ${YAML_LIMITS.maxAliasCount}); is this a "billion laughs" document?`
      : `cannot resolve YAML: ${oneLine(err)}`;
    throw syntaxError(file, [{ file, ...at, message: msg }]);
  }
  return new YamlSource(file, text, value as Record<string, unknown>, doc, pos);
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

// ---- internals --------------------------------------------------------------------------------------------

function checkTree(doc: Document.Parsed, file: string, pos: (o: number) => Pos, out: Diagnostic[]): void {
  // Recursion is bounded by maxDepth: deeper nodes are reported, not visited.
  const visit = (node: unknown, depth: number): void => {
    if (out.length >= YAML_LIMITS.maxDiagnostics) return;
    if (isAlias(node) || node === null || node === undefined) return;
    if (isScalar(node)) {
      if (typeof node.value === 'string' && node.value.length > YAML_LIMITS.maxScalarLength) {
        out.push({ file, ...pos(node.range?.[0] ?? 0), message: `value is ${node.value.length} characters long (limit ${YAML_LIMITS.maxScalarLength})` });
      }
      return;
    }
    if (!isMap(node) && !isSeq(node)) return;
    if (depth > YAML_LIMITS.maxDepth) {
      out.push({ file, ...pos(node.range?.[0] ?? 0), message: `nesting is too deep (limit ${YAML_LIMITS.maxDepth} levels)` });
      return;
    }
    if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const key = pair.key;
        if (!isScalar(key) || (typeof key.value === 'object' && key.value !== null)) {
          const at = (key as YamlNode | null)?.range?.[0] ?? node.range?.[0] ?? 0;
          out.push({ file, ...pos(at), message: 'keys must be plain strings (complex keys are not supported)' });
        } else {
          const name = String(key.value);
          const start = key.range?.[0] ?? 0;
          const first = seen.get(name);
          if (first !== undefined) out.push({ file, ...pos(start), message: `duplicate key "${name}" (first defined on line ${pos(first).line})` });
          else seen.set(name, start);
        }
        visit(pair.value, depth + 1);
      }
    } else {
      for (const item of node.items) {
        if (isPair(item)) continue;
        visit(item, depth + 1);
      }
    }
  };
  visit(doc.contents, 1);
}

function firstAlias(root: unknown): Alias | undefined {
  const stack: unknown[] = [root];
  let budget = 100_000;
  while (stack.length && budget-- > 0) {
    const n = stack.pop();
    if (isAlias(n)) return n;
    if (isMap(n)) for (const p of [...n.items].reverse()) stack.push(p.value);
    else if (isSeq(n)) for (const i of [...n.items].reverse()) stack.push(i);
  }
  return undefined;
}

const YAML_MESSAGES: Record<string, string> = {
  TAB_AS_INDENT: 'tabs are not allowed for indentation in YAML (use spaces)',
  MULTIPLE_DOCS: 'only one YAML document is allowed per file (remove the second "---")',
  DUPLICATE_KEY: 'duplicate key',
  TAG_RESOLVE_FAILED: 'custom YAML tags are not supported',
  BLOCK_AS_IMPLICIT_KEY: 'YAML syntax: a value without quotes cannot contain ": " (quote the whole value)',
};

function yamlErrorMessage(code: string, message: string): string {
  const known = YAML_MESSAGES[code];
  if (known) return code === 'TAG_RESOLVE_FAILED' ? `${known} (${firstLine(message)})` : known;
  return `YAML syntax: ${lowerFirst(firstLine(message))}`;
}

function syntaxError(file: string, diagnostics: Diagnostic[]): UserError {
  const sorted = [...diagnostics].sort((a, b) => a.line - b.line || a.col - b.col).slice(0, YAML_LIMITS.maxDiagnostics);
  return new UserError(`${file}: invalid YAML (${sorted.length} problem${sorted.length === 1 ? '' : 's'})`, { diagnostics: sorted });
}

function fail(file: string, message: string): UserError {
  return new UserError(`${file}: ${message}`, { diagnostics: [{ file, line: 1, col: 1, message }] });
}

function tooBig(file: string, size: number): UserError {
  return fail(file, `file is too large (${size} bytes; the limit is ${YAML_LIMITS.maxBytes} bytes)`);
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return `cannot read: ${oneLine(err)}`;
}

function decodeUtf8(bytes: Uint8Array, file: string): string {
  if (bytes.byteLength > YAML_LIMITS.maxBytes) throw tooBig(file, bytes.byteLength);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < bad; i++) {
      if (bytes[i] === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new UserError(`${file}: not UTF-8 text`, {
      diagnostics: [{ file, line, col: bad - lineStart + 1, message: `not valid UTF-8 (byte 0x${(bytes[bad] ?? 0).toString(16).padStart(2, '0')} at offset ${bad}); is this a binary file?` }],
    });
  }
}

/** Offset of the first byte that breaks UTF-8 (approximate for overlong forms; 0 when none is found). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
    }
    i += n + 1;
  }
  return 0;
}

// Key → pair per mapping, built on first use: a lookup per diagnostic must not scan the mapping (a hostile file
// with 80,000 unknown keys would otherwise take minutes).
const pairIndexes = new WeakMap<object, Map<string, { key: unknown; value: unknown }>>();
function pairIndex(map: { items: { key: unknown; value: unknown }[] }): Map<string, { key: unknown; value: unknown }> {
  let index = pairIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) {
      if (isScalar(p.key)) {
        const k = String(p.key.value);
        if (!index.has(k)) index.set(k, p);
      }
    }
    pairIndexes.set(map, index);
  }
  return index;
}

/** 1-based line and column of any offset in `text` (clamped to the text), by binary search over line starts. */
function lineIndex(text: string): (offset: number) => Pos {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset: number) => {
    const o = Math.max(0, Math.min(offset, text.length));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - starts[lo]! + 1 };
  };
}


function oneLine(err: unknown): string {
  return firstLine(err instanceof Error ? err.message : String(err));
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').trim().slice(0, 300);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

// ---- schema issues → messages at paths --------------------------------------------------------------------

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

// The same typo repeated 40,000 times in a hostile file is worked out once.
const suggestions = new Map<string, string | undefined>();

/** The closest candidate to a misspelt word, if one is close enough to be a likely typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (!word || word.length > 200) return undefined;
  const memo = `${word}\u0000${candidates.join('\u0000')}`;
  if (suggestions.has(memo)) return suggestions.get(memo);
  const hint = closest(word, candidates);
  if (suggestions.size >= 2000) suggestions.clear();
  suggestions.set(memo, hint);
  return hint;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const cl = c.toLowerCase();
    if (cl === w) return c;
    let score = levenshtein(w, cl);
    // "defrag" for "etcd.defrag", "etcd.defragment" for "etcd.defrag": prefix/suffix matches are likely typos too.
    if (cl.endsWith(`.${w}`) || (w.length >= 4 && (cl.startsWith(w) || w.startsWith(cl)))) score = Math.min(score, 1.5);
    // "maxAttempts" for "maximumAttempts": an abbreviation that keeps the letters in order.
    else if (w.length >= 5 && w.length >= cl.length * 0.6 && isSubsequence(w, cl)) score = Math.min(score, 2);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  // Replacing every letter of a short word is not a typo ("z" is not a misspelt "x").
  if (bestScore >= Math.min(w.length, best.length)) return undefined;
  const limit = Math.max(2, Math.floor(Math.min(w.length, best.length) / 3));
  return bestScore <= limit ? best : undefined;
}

function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (let j = 0; j < long.length && i < short.length; j++) if (short[i] === long[j]) i++;
  return i === short.length;
}

function levenshtein(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return Math.abs(a.length - b.length);
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
