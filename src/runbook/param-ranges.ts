/**
 * A param passed whole to an action input (`keep: ${{ params.keepRevisions }}`) must fit that input's own range:
 * checked when the params are resolved (and for defaults, when the runbook is validated), so `-p keepRevisions=-1`
 * is refused before anything runs instead of failing at the compact step halfway through a recovery.
 */
import { actionMeta } from '../actions/catalog.ts';
import type { z } from 'zod';

const WHOLE_PARAM = /^\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

export interface ParamUse {
  param: string;
  stepId: string;
  action: string;
  /** The `with` key the param is passed to whole. */
  key: string;
  schema: z.ZodType;
}

/** Where each param is passed whole to a top-level action input. */
export function wholeParamUses(steps: readonly { id: string; action: string; with?: Record<string, unknown> }[]): ParamUse[] {
  const uses: ParamUse[] = [];
  for (const s of steps) {
    const meta = actionMeta(s.action);
    const shape = (meta?.input as unknown as { shape?: Record<string, z.ZodType> } | undefined)?.shape;
    if (!shape || !s.with) continue;
    for (const [key, v] of Object.entries(s.with)) {
      const m = typeof v === 'string' ? WHOLE_PARAM.exec(v) : null;
      if (m && shape[key]) uses.push({ param: m[1]!, stepId: s.id, action: s.action, key, schema: shape[key]! });
    }
  }
  return uses;
}

/** Why `value` does not fit this use, or undefined when it does (null = "not given": the action's default applies). */
export function misfit(use: ParamUse, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  const r = use.schema.safeParse(value);
  if (r.success) return undefined;
  const why = r.error.issues.map((i) => i.message).join('; ');
  return `${JSON.stringify(value)} does not fit step "${use.stepId}" (${use.action} ${use.key}): ${why}`;
}
