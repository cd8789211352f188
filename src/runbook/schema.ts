/**
 * The structural schema of a runbook (zod 4), shared by validation and the published JSON Schema. Semantic rules
 * (references, expressions, action inputs) live in validate.ts; this file only says what shape each part has.
 */
import { z } from 'zod';
import { catalog, zDuration } from '../actions/catalog.ts';
import type { ActionMeta } from '../actions/types.ts';
import { POLICY_KINDS } from '../execute/retry.ts';
import { unitsOverride } from './units-schema.ts';

export const PARAM_TYPES = ['string', 'integer', 'number', 'boolean', 'bytes', 'duration', 'list'] as const;

export const RUNBOOK_NAME_RE = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
export const STEP_ID_RE = /^[a-z][a-z0-9-]*$/;
/** Param names are CEL identifiers so `params.name` works in expressions. */
export const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const MAX_DURATION_MS = 7 * 24 * 3_600_000;

const zPositiveDuration = () => zDuration.refine((ms) => ms > 0 && ms <= MAX_DURATION_MS, { message: 'must be between 1ms and 7d' });

export const zParam = z.strictObject({
  type: z.enum(PARAM_TYPES).describe('value type; bytes become a number of bytes, durations milliseconds, lists string arrays'),
  default: z.unknown().optional().describe('value used when the param is not given'),
  optional: z.boolean().optional().describe('may be left unset (then it is null in expressions)'),
  description: z.string().max(2000).optional(),
  enum: z.array(z.string().max(200)).min(1).max(100).optional().describe('allowed values (string and list params)'),
});

export const zRetry = z.strictObject({
  maximumAttempts: z.number().int().min(1).max(100).optional().describe('attempts in all, including the first (default 1)'),
  initialInterval: zPositiveDuration().optional().describe('wait before the first retry (default 1s)'),
  backoffCoefficient: z.number().min(1).max(100).optional().describe('each wait is the previous one times this (default 2)'),
  maximumInterval: zPositiveDuration().optional().describe('cap on the wait between attempts (default 30s)'),
  nonRetryable: z.array(z.enum(POLICY_KINDS)).max(20).optional().describe('error kinds never retried'),
});

export const zForEachMembers = z.strictObject({
  members: z.enum(['all', 'voters', 'learners']).describe('which members to loop over'),
  order: z.enum(['as-listed', 'followers-then-leader']).default('as-listed'),
  moveLeaderFirst: z.boolean().default(false).describe('move leadership to a finished member before the leader'),
  parallel: z.boolean().default(false).describe('run every item at once, each journaled on its own (no gate, order or moveLeaderFirst)'),
});

export const zForEachItems = z.strictObject({
  items: z.string().min(1).describe('a CEL expression yielding a list (of strings, or objects with a name)'),
  parallel: z.boolean().default(false).describe('run every item at once, each journaled on its own (no gate)'),
});

/** A step as validated structurally; `forEach` is checked by shape (members or items) in validate.ts. */
export const zStep = z.strictObject({
  id: z.string().describe('unique, kebab-case; other steps refer to it as steps.<id> / steps["<id>"]'),
  action: z.string().describe('an action from the catalog (runbook show --actions)'),
  description: z.string().max(4000).optional(),
  with: z.record(z.string(), z.unknown()).optional().describe('action input; strings may hold ${{ expr }} templates'),
  when: z.union([z.string(), z.boolean()]).optional().describe('CEL condition; the step is skipped when false'),
  forEach: z.unknown().optional(),
  gate: z.string().optional().describe('read-only action checked after each item before the next'),
  timeout: zPositiveDuration().optional(),
  retry: zRetry.optional(),
  approval: z.enum(['required', 'none']).default('none'),
  optional: z.boolean().default(false).describe('a failure is reported and the run goes on'),
});

/** The top level; params and steps are checked one by one so a broken step does not hide the others. */
export const zRunbookTop = z.strictObject({
  apiVersion: z.literal('runbook/v1'),
  name: z.string().max(63).regex(RUNBOOK_NAME_RE, 'must be kebab-case, e.g. nospace-recovery'),
  summary: z.string().min(1).max(300),
  description: z.string().max(20_000).optional(),
  destructive: z.boolean().default(false).describe('needs approval when started from chat or an alert'),
  autoApprove: z.boolean().default(false).describe('an alert may start it without a human'),
  params: z.record(z.string(), z.unknown()).default({}),
  steps: z.array(z.unknown()).min(1).max(500),
});

export const TOP_KEYS = Object.keys(zRunbookTop.shape);
export const STEP_KEYS = Object.keys(zStep.shape);
export const PARAM_KEYS = Object.keys(zParam.shape);
export const RETRY_KEYS = Object.keys(zRetry.shape);
export const FOREACH_KEYS = [...new Set([...Object.keys(zForEachMembers.shape), ...Object.keys(zForEachItems.shape)])];

/** Allowed keys at a path inside a schema (best effort over zod 4 internals), for "did you mean". */
export function shapeKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] | undefined {
  let s: unknown = schema;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (x as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return x;
      if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault' || def.type === 'readonly') x = def.innerType;
      else if (def.type === 'pipe') x = def.in;
      else return x;
    }
    return x;
  };
  for (const seg of [...path, null]) {
    s = unwrap(s);
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return undefined;
    if (seg === null) return def.type === 'object' ? Object.keys(def.shape as object) : undefined;
    if (def.type === 'object') s = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return undefined;
    if (s === undefined) return undefined;
  }
  return undefined;
}

// ---- JSON Schema --------------------------------------------------------------------------------------------

const TEMPLATE_PATTERN = '\\$\\{\\{[\\s\\S]*\\}\\}';

function jsonOf(schema: z.ZodType): Record<string, unknown> {
  const j = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', override: unitsOverride }) as Record<string, unknown>;
  delete j.$schema;
  return j;
}

/** Every property of an action's input may also be a `${{ expr }}` template (checked when the step starts). */
function withSchemaFor(meta: ActionMeta): Record<string, unknown> {
  const j = jsonOf(meta.input);
  const props = j.properties as Record<string, Record<string, unknown>> | undefined;
  if (props) {
    for (const [k, p] of Object.entries(props)) {
      const { description, default: dflt, ...rest } = p;
      const wrapped: Record<string, unknown> = { anyOf: [rest, { $ref: '#/$defs/template' }] };
      if (description !== undefined) wrapped.description = description;
      if (dflt !== undefined) wrapped.default = dflt;
      props[k] = wrapped;
    }
  }
  return j;
}

/**
 * An editor-friendly JSON Schema for runbook files: `action` and `gate` are enums of the catalog, and `with`
 * is described per action (if/then on `action`).
 */
export function runbookJsonSchema(): Record<string, unknown> {
  const actions = Object.values(catalog) as ActionMeta[];
  const names = actions.map((a) => a.name).sort();
  const gates = actions.filter((a) => !a.mutates).map((a) => a.name).sort();
  const step = z.strictObject({
    ...zStep.shape,
    action: z.enum(names as [string, ...string[]]).describe('what the step does'),
    gate: z.enum(gates as [string, ...string[]]).optional().describe('read-only action checked after each item before the next'),
    forEach: z.union([zForEachMembers, zForEachItems]).optional().describe('run the step once per member, or per item of a list'),
  });
  const top = z.strictObject({
    ...zRunbookTop.shape,
    params: z.record(z.string().regex(PARAM_NAME_RE), zParam).optional(),
    steps: z.array(step).min(1).max(500),
  });
  const schema = jsonOf(top);
  const stepJson = ((schema.properties as Record<string, Record<string, unknown>>).steps!.items ?? {}) as Record<string, unknown>;
  stepJson.allOf = actions.map((a) => ({
    if: { properties: { action: { const: a.name } }, required: ['action'] },
    then: { properties: { with: { ...withSchemaFor(a), description: a.summary } } },
  }));
  const props = stepJson.properties as Record<string, Record<string, unknown>>;
  props.id = { ...props.id, pattern: STEP_ID_RE.source };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'runbook/v1',
    description: 'An incident-recovery runbook for etcd (see DESIGN.md "The runbook format")',
    ...schema,
    $defs: {
      ...((schema.$defs as Record<string, unknown> | undefined) ?? {}),
      template: { type: 'string', pattern: TEMPLATE_PATTERN, description: 'a ${{ expr }} template, evaluated when the step starts' },
    },
  };
}
