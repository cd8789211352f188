/**
 * Structural and semantic validation of a parsed runbook. Every problem is reported (not just the first), each
 * at the node it is about. Produces the typed Runbook only when there are none.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { actionMeta, catalog } from '../actions/catalog.ts';
import type { ActionMeta } from '../actions/types.ts';
import { findTemplates, parseExpr } from '../compile/expr.ts';
import type { Diagnostic } from '../util/errors.ts';
import { describeIssues, valueAt, type SchemaIssue } from '../util/schema-issues.ts';
import { suggest } from '../util/suggest.ts';
import type { YamlPath, YamlSource } from '../util/yaml-source.ts';
import { retryPolicyOf, retrySpecProblem } from '../execute/retry.ts';
import type { ForEachSpec, ParamSpec, ParamType, Runbook, Step } from './model.ts';
import { normalizeParamValue } from './params.ts';
import { shellScriptIndex } from './shell-splice.ts';
import { misfit, wholeParamUses } from './param-ranges.ts';
import {
  FOREACH_KEYS,
  PARAM_KEYS,
  PARAM_NAME_RE,
  RETRY_KEYS,
  STEP_ID_RE,
  STEP_KEYS,
  TOP_KEYS,
  shapeKeysAt,
  zForEachItems,
  zForEachMembers,
  zParam,
  zRunbookTop,
  zStep,
} from './schema.ts';
import type { z } from 'zod';

export interface ValidationResult {
  /** Set when there are no diagnostics. */
  runbook?: Runbook;
  diagnostics: Diagnostic[];
}

const ACTION_NAMES = Object.keys(catalog);
const INVENTORY_FIELDS = ['name', 'source', 'members', 'tls', 'auth', 'kubernetes', 'snapshots', 'etcdBinDir', 'requestTimeoutMs', 'quotaBytes'];

type Raw = Record<string, unknown>;

function isObj(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate the YAML of a runbook; `hash` is the sha256 of the file's bytes. */
export function validateRunbook(src: YamlSource, hash: string): ValidationResult {
  const v = new Validator(src);
  const runbook = v.run(hash);
  const diagnostics = v.sorted();
  return diagnostics.length ? { diagnostics } : { runbook: runbook!, diagnostics };
}

/** Param names that are properties of every JavaScript object. */
const RESERVED_PARAM_NAMES = new Set(['constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']);

class Validator {
  readonly src: YamlSource;
  readonly raw: Raw;
  readonly diags: Diagnostic[] = [];
  readonly rawSteps: unknown[];
  /** First index of each well-formed step id. */
  readonly stepIndex = new Map<string, number>();
  readonly paramNames: string[];

  constructor(src: YamlSource) {
    this.src = src;
    this.raw = src.value;
    this.rawSteps = Array.isArray(this.raw.steps) ? this.raw.steps : [];
    this.paramNames = isObj(this.raw.params) ? Object.keys(this.raw.params) : [];
    this.rawSteps.forEach((s, i) => {
      const id = isObj(s) ? s.id : undefined;
      if (typeof id === 'string' && !this.stepIndex.has(id)) this.stepIndex.set(id, i);
    });
  }

  run(hash: string): Runbook | undefined {
    const top = zRunbookTop.safeParse(this.raw);
    if (!top.success) this.issues([], top.error.issues, this.raw, (p) => (p.length === 0 ? TOP_KEYS : undefined));
    if (top.success && top.data.destructive && top.data.autoApprove) {
      this.at(['autoApprove'], 'a destructive runbook always needs a human approval: remove autoApprove or destructive');
    }
    const params = this.params();
    const steps = this.rawSteps.map((s, i) => this.step(s, i));
    this.paramDefaults(params, steps);
    if (this.diags.length || !top.success) return undefined;
    const t = top.data;
    const runbook: Runbook = {
      apiVersion: t.apiVersion,
      name: t.name,
      summary: t.summary,
      destructive: t.destructive,
      autoApprove: t.autoApprove,
      params,
      steps: steps as Step[],
      source: { file: this.src.file, hash },
    };
    if (t.description !== undefined) runbook.description = t.description;
    return runbook;
  }

  sorted(): Diagnostic[] {
    const seen = new Set<string>();
    return this.diags
      .filter((d) => {
        const k = `${d.line}:${d.col}:${d.message}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      })
      .sort((a, b) => a.line - b.line || a.col - b.col);
  }

  // ---- reporting ------------------------------------------------------------------------------------------

  /** Report at a path. `key`: point at the key; `labelPath`: what the message is about (default: path). */
  at(path: YamlPath, message: string, opts: { key?: boolean; offset?: number; labelPath?: YamlPath } = {}): void {
    const pos = opts.offset !== undefined ? this.src.posInScalar(path, opts.offset) : this.src.posOf(path, { key: opts.key ?? false });
    const labelPath = opts.labelPath ?? (opts.key ? path.slice(0, -1) : path);
    this.diags.push({ file: this.src.file, ...pos, message: `${this.label(labelPath)}${message}` });
  }

  label(path: YamlPath): string {
    let prefix = '';
    let rest: YamlPath = path;
    if (path[0] === 'steps' && typeof path[1] === 'number') {
      const id = valueAt(this.raw, ['steps', path[1], 'id']);
      prefix = typeof id === 'string' && id.length <= 80 ? `step "${id}"` : `step ${path[1] + 1}`;
      rest = path.slice(2);
    } else if (path[0] === 'params' && path.length >= 2) {
      prefix = `param "${String(path[1])}"`;
      rest = path.slice(2);
    }
    const field = rest.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
    return [prefix, field].filter(Boolean).join(': ') + (prefix || field ? ': ' : '');
  }

  issues(base: YamlPath, issues: readonly object[], root: unknown, known: (p: (string | number)[]) => string[] | undefined): void {
    for (const m of describeIssues(issues as SchemaIssue[], root, known)) {
      const path = [...base, ...m.path];
      this.at(path, m.message, { key: m.key ?? false, ...(m.missing ? { labelPath: path.slice(0, -1) } : {}) });
    }
  }

  // ---- params ---------------------------------------------------------------------------------------------

  params(): ParamSpec[] {
    const out: ParamSpec[] = [];
    if (!isObj(this.raw.params)) return out;
    for (const [name, spec] of Object.entries(this.raw.params)) {
      const path = ['params', name];
      if (!PARAM_NAME_RE.test(name)) {
        this.at(path, 'a param name must be an identifier (letters, digits, _), e.g. quotaBytes', { key: true, labelPath: path });
      } else if (RESERVED_PARAM_NAMES.has(name) || name.startsWith('__')) {
        // Names JavaScript objects already have: `params.__proto__` could never hold a value given with -p.
        this.at(path, `"${name}" is reserved (a name every object already has): pick another param name`, { key: true, labelPath: path });
      }
      if (!isObj(spec)) {
        this.at(path, `expected a mapping like { type: string }, got ${spec === null ? 'nothing' : Array.isArray(spec) ? 'a list' : JSON.stringify(spec)}`);
        continue;
      }
      const r = zParam.safeParse(spec);
      if (!r.success) {
        this.issues(path, r.error.issues, spec, (p) => (p.length === 0 ? PARAM_KEYS : undefined));
        continue;
      }
      const p = r.data;
      if (p.enum && p.type !== 'string' && p.type !== 'list') this.at([...path, 'enum'], `only string and list params take an enum (this one is ${p.type})`);
      let dflt: unknown;
      if (p.default !== undefined) {
        const d = normalizeParamValue({ type: p.type as ParamType, enum: p.enum }, p.default);
        if (d.ok) dflt = d.value;
        else this.at([...path, 'default'], `does not fit type ${p.type}: ${d.error}`);
      }
      const ps: ParamSpec = { name, type: p.type, optional: p.optional ?? false, pos: { file: this.src.file, ...this.src.posOf(path, { key: true }) } };
      if (p.description !== undefined) ps.description = p.description;
      if (dflt !== undefined) ps.default = dflt;
      if (p.enum) ps.enum = p.enum;
      out.push(ps);
    }
    return out;
  }

  // ---- steps ----------------------------------------------------------------------------------------------

  step(raw: unknown, i: number): Step | undefined {
    const path = ['steps', i];
    if (!isObj(raw)) {
      this.at(path, `each step must be a mapping with id and action, got ${raw === null ? 'nothing' : Array.isArray(raw) ? 'a list' : JSON.stringify(raw).slice(0, 40)}`);
      return undefined;
    }
    const r = zStep.safeParse(raw);
    if (!r.success) {
      this.issues(path, r.error.issues, raw, (p) =>
        p.length === 0 ? STEP_KEYS : p.length === 1 && p[0] === 'retry' ? RETRY_KEYS : undefined,
      );
    }

    // id
    const id = raw.id;
    if (typeof id === 'string') {
      if (!STEP_ID_RE.test(id)) this.at([...path, 'id'], `step id ${JSON.stringify(id)} must be lowercase kebab-case (a-z, 0-9, -), starting with a letter`, { labelPath: path });
      const first = this.stepIndex.get(id);
      if (first !== undefined && first !== i) {
        this.at([...path, 'id'], `duplicate step id ${JSON.stringify(id)} (first used on line ${this.src.posOf(['steps', first]).line})`, { labelPath: path });
      }
    }

    // action
    const action = typeof raw.action === 'string' ? raw.action : undefined;
    const meta = action !== undefined ? actionMeta(action) : undefined;
    if (action !== undefined && !meta) {
      const hint = suggest(action, ACTION_NAMES);
      this.at([...path, 'action'], `unknown action ${JSON.stringify(action)}${hint ? ` (did you mean "${hint}"?)` : ' (see `runbook actions`)'}`, { labelPath: path });
    }

    // forEach
    const forEach = this.forEach(raw.forEach, path, i);
    // An items loop may yield member names (the engine maps them to members), so either kind satisfies it.
    if (meta?.perMember === 'required' && forEach === undefined) {
      this.at([...path, 'action'], `action "${meta.name}" works on one member at a time: add forEach: { members: voters } (or all / learners, or { items: <expression yielding member names> })`, { labelPath: path });
    }

    // with
    const withRaw = raw.with === undefined ? {} : raw.with;
    if (meta && isObj(withRaw)) this.withInput(meta, withRaw, [...path, 'with']);
    if (isObj(withRaw)) this.templates(withRaw, [...path, 'with'], i, forEach !== undefined, 0);
    if (action === 'exec' && isObj(withRaw)) this.shellSplices(withRaw, [...path, 'with']);
    const scriptFiles = action === 'script' && isObj(withRaw) ? this.scriptFiles(withRaw, [...path, 'with']) : undefined;

    // Items at once only where no item can cost the others their quorum (a rolling restart at once is an outage).
    if (forEach?.parallel && meta && meta.mutates && !meta.parallelItems) {
      const allowed = ACTION_NAMES.filter((n) => actionMeta(n)!.mutates && actionMeta(n)!.parallelItems);
      this.at([...path, 'forEach', 'parallel'], `"${meta.name}" changes members one at a time (at once it could cost the cluster its quorum); parallel is for read-only actions and ${allowed.join(', ')}`);
    }

    // when
    // `when` decides about the whole step, before its forEach: `item` is not set there.
    if (typeof raw.when === 'string') this.expr([...path, 'when'], raw.when, 0, i, false, 'when');

    // gate
    if (typeof raw.gate === 'string' && forEach?.parallel) {
      this.at([...path, 'gate'], 'a gate is checked between items, and parallel items have no "between": drop the gate or parallel');
    } else if (typeof raw.gate === 'string') {
      const g = actionMeta(raw.gate);
      if (!g) {
        const gates = ACTION_NAMES.filter((n) => !actionMeta(n)!.mutates);
        const hint = suggest(raw.gate, gates);
        this.at([...path, 'gate'], `unknown action ${JSON.stringify(raw.gate)}${hint ? ` (did you mean "${hint}"?)` : ` (read-only actions: ${gates.join(', ')})`}`);
      } else if (g.mutates) {
        this.at([...path, 'gate'], `"${g.name}" changes the cluster; a gate must be a read-only check such as etcd.member-healthy`);
      }
    }

    // retry policy, beyond its shape
    const retryProblem = r.success && r.data.retry ? retrySpecProblem(r.data.retry) : undefined;
    if (retryProblem) this.at([...path, 'retry', retryProblem.field], retryProblem.message);

    if (!r.success || !meta || forEach === null) return undefined;
    const d = r.data;
    const retry = retryPolicyOf(d.retry);
    const step: Step = {
      id: d.id,
      action: d.action,
      with: isObj(d.with) ? { ...d.with, ...scriptFiles } : {},
      retry,
      approval: d.approval,
      optional: d.optional,
      pos: { file: this.src.file, ...this.src.posOf(path) },
    };
    if (d.description !== undefined) step.description = d.description;
    if (d.when !== undefined) step.when = String(d.when);
    if (forEach) step.forEach = forEach;
    if (d.gate !== undefined) step.gate = d.gate;
    if (d.timeout !== undefined) step.timeoutMs = d.timeout;
    return step;
  }

  /** A param's default must fit every action input it is passed to whole (its range, not only its type). */
  paramDefaults(params: ParamSpec[], steps: (Step | undefined)[]): void {
    for (const use of wholeParamUses(steps.filter((s): s is Step => s !== undefined))) {
      const spec = params.find((p) => p.name === use.param);
      if (!spec || spec.default === undefined) continue;
      const why = misfit(use, spec.default);
      if (why) this.at(['params', use.param, 'default'], why);
    }
  }

  /** A `${{ }}` inside a shell's -c script splices data into code: refuse it, and say to pass the value in env. */
  shellSplices(value: Raw, path: YamlPath): void {
    for (const key of ['argv', 'probe']) {
      const argv = value[key];
      if (!Array.isArray(argv)) continue;
      const k = shellScriptIndex(argv);
      const script = k === undefined ? undefined : argv[k];
      if (typeof script !== 'string' || !script.includes('${{')) continue;
      this.at([...path, key, k!], "a ${{ }} template inside a shell's -c script is spliced into shell code, where a value like $(…) runs: " +
        'pass the value in env instead (env: { VALUE: <the template> }, and $VALUE in the script), or as an argv element after the script ($1)',
      { offset: script.indexOf('${{') });
    }
  }

  /**
   * `script` files are fixed in the runbook (a template cannot choose what runs) and found next to it: resolved
   * here against the runbook's directory, and reported at their line when missing (when the runbook is a file).
   */
  scriptFiles(value: Raw, path: YamlPath): Record<string, string> {
    const resolved: Record<string, string> = {};
    const dir = nodePath.dirname(this.src.file);
    const onDisk = fs.existsSync(this.src.file);
    for (const key of ['file', 'probe']) {
      const f = value[key];
      if (typeof f !== 'string' || f === '') continue;
      if (f.includes('${{')) {
        this.at([...path, key], 'the script to run cannot come from a template: name the file (data for it goes in args)');
        continue;
      }
      const abs = nodePath.resolve(dir, f);
      resolved[key] = abs;
      if (!onDisk) continue;
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(abs);
      } catch {
        st = undefined;
      }
      if (!st) this.at([...path, key], `script ${JSON.stringify(f)} not found (looked for ${abs}; scripts are found relative to the runbook file)`);
      else if (!st.isFile()) this.at([...path, key], `script ${JSON.stringify(f)} is not a file (${abs})`);
    }
    return resolved;
  }

  /** undefined: no forEach; null: a broken one (already reported). */
  forEach(raw: unknown, stepPath: YamlPath, i: number): ForEachSpec | undefined | null {
    if (raw === undefined) return undefined;
    const path = [...stepPath, 'forEach'];
    if (!isObj(raw)) {
      this.at(path, 'must be a mapping: { members: voters } or { items: "<expression>" }');
      return null;
    }
    const known = () => FOREACH_KEYS;
    if ('items' in raw) {
      const r = zForEachItems.safeParse(raw);
      if (!r.success) {
        this.issues(path, r.error.issues, raw, (p) => (p.length === 0 ? known() : undefined));
        return null;
      }
      this.expr([...path, 'items'], r.data.items, 0, i, false, 'forEach.items');
      return { kind: 'items', items: r.data.items, ...(r.data.parallel ? { parallel: true } : {}) };
    }
    const r = zForEachMembers.safeParse(raw);
    if (!r.success) {
      this.issues(path, r.error.issues, raw, (p) => (p.length === 0 ? known() : undefined));
      return null;
    }
    if (r.data.parallel && (r.data.order !== 'as-listed' || r.data.moveLeaderFirst)) {
      this.at([...path, 'parallel'], 'parallel runs every member at once: order and moveLeaderFirst have no meaning with it (drop one or the other)');
    }
    return { kind: 'members', members: r.data.members, order: r.data.order, moveLeaderFirst: r.data.moveLeaderFirst, ...(r.data.parallel ? { parallel: true } : {}) };
  }

  /** Check `with` against the action's input schema; values holding templates are checked at run time. */
  withInput(meta: ActionMeta, value: Raw, path: YamlPath): void {
    const r = meta.input.safeParse(value);
    if (r.success) return;
    const templated = (p: PropertyKey[]): boolean => {
      for (let n = 1; n <= p.length; n++) {
        const v = valueAt(value, p.slice(0, n).filter((s): s is string | number => typeof s !== 'symbol'));
        if (typeof v === 'string' && v.includes('${{')) return true;
      }
      return false;
    };
    const issues = r.error.issues.filter((iss) => !templated(iss.path));
    this.issues(path, issues, value, (p) => shapeKeysAt(meta.input as z.ZodType, p));
  }

  templates(value: unknown, path: YamlPath, stepIdx: number, inForEach: boolean, depth: number): void {
    if (depth > 64) return;
    if (typeof value === 'string') {
      if (!value.includes('${{')) return;
      const { parts, error } = findTemplates(value);
      for (const p of parts) this.expr(path, p.expr, p.offset, stepIdx, inForEach, 'template');
      if (error) this.at(path, error.message, { offset: error.offset });
    } else if (Array.isArray(value)) {
      value.forEach((v, k) => this.templates(v, [...path, k], stepIdx, inForEach, depth + 1));
    } else if (isObj(value)) {
      for (const [k, v] of Object.entries(value)) this.templates(v, [...path, k], stepIdx, inForEach, depth + 1);
    }
  }

  /** Check one CEL expression found at `path` (starting at `offset` inside the scalar). */
  expr(path: YamlPath, text: string, offset: number, stepIdx: number, itemAllowed: boolean, what: string): void {
    const r = parseExpr(text);
    const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
    if (!r.ok) {
      const hint = what !== 'template' && text.includes('${{') ? ` (${what} is already an expression: write it without \${{ }})` : '';
      this.at(path, `invalid expression ${shown}: ${r.error}${hint}`, { offset: offset + (r.offset ?? 0) });
    }
    const where = (name: string) => ({ offset: offset + Math.max(0, wordIndex(text, name)) });
    for (const p of r.refs.params) {
      if (this.paramNames.includes(p)) continue;
      const hint = suggest(p, this.paramNames);
      const list = this.paramNames.length ? `declared: ${this.paramNames.join(', ')}` : 'this runbook declares no params';
      this.at(path, `unknown param "${p}" in ${shown} (${hint ? `did you mean "${hint}"?` : list})`, where(p));
    }
    for (const s of r.refs.steps) {
      const idx = this.stepIndex.get(s);
      if (idx === undefined) {
        const hint = suggest(s, [...this.stepIndex.keys()]);
        this.at(path, `no step "${s}" in ${shown}${hint ? ` (did you mean "${hint}"?)` : ''}`, where(s));
      } else if (idx >= stepIdx) {
        this.at(path, `step "${s}" does not run before this one, so its results are not available in ${shown}`, where(s));
      }
    }
    for (const f of r.refs.inventory) {
      if (INVENTORY_FIELDS.includes(f)) continue;
      const hint = suggest(f, INVENTORY_FIELDS);
      this.at(path, `inventory has no field "${f}"${hint ? ` (did you mean "${hint}"?)` : ` (fields: ${INVENTORY_FIELDS.join(', ')})`}`, where(f));
    }
    if (r.refs.item && !itemAllowed) {
      const why = what === 'when' ? 'when is checked once for the whole step, before its forEach' : what === 'forEach.items' ? 'the items are computed before the loop' : 'only a forEach step has items';
      this.at(path, `"item" is not set here: ${why} (in ${shown})`, where('item'));
    }
  }
}

/** Index of `name` as a whole word in an expression, or -1. */
function wordIndex(text: string, name: string): number {
  const re = new RegExp(`(?<![A-Za-z0-9_])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9_])`);
  return re.exec(text)?.index ?? -1;
}
