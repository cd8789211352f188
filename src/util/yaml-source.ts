/**
 * YAML with source positions, hardened against hostile input. Runbooks and inventories are parsed here so every
 * later check can point at `file:line:col`. Anything wrong with the bytes (size, encoding, syntax, alias bombs,
 * nesting, duplicate keys, a non-mapping top level) becomes a UserError carrying diagnostics; nothing else is
 * thrown and nothing here can run for long (input size is capped before the parser sees it).
 *
 * Schema problems found later are worded by schema-issues.ts; "did you mean" is suggest.ts.
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
