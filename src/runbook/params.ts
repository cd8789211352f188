/**
 * Runbook parameters: typed values from `--param k=v` (CLI, chat, alerts) and from YAML defaults.
 * bytes → number of bytes, duration → milliseconds, list → string[] (comma-separated on the command line).
 * Unset optional params resolve to null so expressions can test `params.x != null`.
 */
import { UserError } from '../util/errors.ts';
import { parseBytes, parseDuration } from '../util/units.ts';
import type { ParamSpec, ParamType, Runbook } from './model.ts';
import { misfit, wholeParamUses } from './param-ranges.ts';

const MAX_PARAM_TEXT = 4096;

export type ParamValueResult = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * Check and normalize one value for a param type. Accepts strings (from flags) and YAML-typed values
 * (numbers, booleans, lists) alike.
 */
export function normalizeParamValue(spec: { type: ParamType; enum?: readonly string[] | undefined }, value: unknown): ParamValueResult {
  const r = normalizeByType(spec.type, value);
  if (!r.ok || !spec.enum) return r;
  const values = Array.isArray(r.value) ? r.value : [r.value];
  for (const v of values) {
    if (!spec.enum.includes(String(v))) {
      return { ok: false, error: `${JSON.stringify(v)} is not one of ${spec.enum.map((e) => JSON.stringify(e)).join(', ')}` };
    }
  }
  return r;
}

function normalizeByType(type: ParamType, value: unknown): ParamValueResult {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value) : String(value);
  if (typeof value === 'string' && value.length > MAX_PARAM_TEXT) return { ok: false, error: `value is longer than ${MAX_PARAM_TEXT} characters` };
  switch (type) {
    case 'string':
      if (typeof value === 'string') return { ok: true, value };
      if (typeof value === 'number' || typeof value === 'boolean') return { ok: true, value: String(value) };
      return { ok: false, error: `expected a string, got ${kind(value)}` };
    case 'integer': {
      const n = typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value) : value;
      if (typeof n === 'number' && Number.isSafeInteger(n)) return { ok: true, value: n };
      return { ok: false, error: `expected an integer, got ${shown}` };
    }
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n === 'number' && Number.isFinite(n)) return { ok: true, value: n };
      return { ok: false, error: `expected a number, got ${shown}` };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { ok: true, value };
      if (typeof value === 'string') {
        const t = value.trim().toLowerCase();
        if (['true', 'yes', 'on', '1'].includes(t)) return { ok: true, value: true };
        if (['false', 'no', 'off', '0'].includes(t)) return { ok: true, value: false };
      }
      return { ok: false, error: `expected true or false, got ${shown}` };
    }
    case 'bytes': {
      const n = parseBytes(value);
      if (n !== undefined) return { ok: true, value: n };
      return { ok: false, error: `not a byte size: ${shown} (use e.g. 8GiB, 512MB or a number of bytes)` };
    }
    case 'duration': {
      const n = parseDuration(value);
      if (n !== undefined) return { ok: true, value: n };
      return { ok: false, error: `not a duration: ${shown} (use e.g. 500ms, 30s, 5m, 1h30m)` };
    }
    case 'list': {
      if (typeof value === 'string') {
        return { ok: true, value: value.split(',').map((s) => s.trim()).filter((s) => s !== '') };
      }
      if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
        return { ok: true, value: value.map(String) };
      }
      return { ok: false, error: `expected a list of strings (or "a,b,c"), got ${kind(value)}` };
    }
    default:
      return { ok: false, error: `unknown param type ${JSON.stringify(type)}` };
  }
}

function kind(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Parse `--param k=v` flags. The value is everything after the first `=` (it may contain `=`).
 * @example parseParamFlags(['quotaBytes=8GiB', 'keepRevisions=0']) // { quotaBytes: '8GiB', keepRevisions: '0' }
 */
export function parseParamFlags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const problems: string[] = [];
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    const name = eq < 0 ? flag : flag.slice(0, eq).trim();
    if (eq < 0) {
      problems.push(`--param ${JSON.stringify(flag)}: expected name=value`);
    } else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      problems.push(`--param ${JSON.stringify(flag)}: ${JSON.stringify(name)} is not a param name`);
    } else if (Object.hasOwn(out, name)) {
      problems.push(`--param ${name} is given twice`);
    } else {
      out[name] = flag.slice(eq + 1);
    }
  }
  if (problems.length) throw new UserError(problems.join('\n'));
  return { ...out };
}

/**
 * Resolve the values of a runbook's params from given strings, defaults and optionality. Every param of the
 * runbook is present in the result (unset optional ones as null).
 * @example resolveParams(runbook, { quotaBytes: '8GiB' }) // { quotaBytes: 8589934592, keepRevisions: 0 }
 */
export function resolveParams(runbook: Pick<Runbook, 'name' | 'params'> & { steps?: Runbook['steps'] }, given: Record<string, unknown>): Record<string, unknown> {
  const problems: string[] = [];
  const known = runbook.params.map((p) => p.name);
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) {
      problems.push(
        known.length
          ? `unknown param ${JSON.stringify(name)} for runbook ${runbook.name} (its params: ${known.join(', ')})`
          : `unknown param ${JSON.stringify(name)}: runbook ${runbook.name} takes no params`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const spec of runbook.params) {
    if (Object.hasOwn(given, spec.name) && given[spec.name] !== undefined) {
      const r = normalizeParamValue(spec, given[spec.name]);
      if (r.ok) out[spec.name] = r.value;
      else problems.push(`param ${spec.name} (${spec.type}): ${r.error}`);
    } else if (spec.default !== undefined) {
      out[spec.name] = spec.default;
    } else if (spec.optional) {
      out[spec.name] = null;
    } else {
      problems.push(`missing required param ${spec.name} (${describeSpec(spec)}): pass --param ${spec.name}=...`);
    }
  }
  if (!problems.length) {
    for (const use of wholeParamUses(runbook.steps ?? [])) {
      if (!Object.hasOwn(out, use.param)) continue;
      const why = misfit(use, out[use.param]);
      if (why) problems.push(`param ${use.param}: ${why}`);
    }
  }
  if (problems.length) throw new UserError(problems.join('\n'));
  return out;
}

function describeSpec(spec: ParamSpec): string {
  const parts: string[] = [spec.type];
  if (spec.enum) parts.push(`one of ${spec.enum.join('|')}`);
  if (spec.description) parts.push(spec.description);
  return parts.join('; ');
}
