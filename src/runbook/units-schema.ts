/**
 * Durations and byte sizes in the published JSON Schemas: the same grammar `validate` accepts (parseDuration,
 * parseBytes in src/util/units.ts), so an editor flags `timeout: 10 minutes` as `validate` does instead of
 * accepting any string. Used as zod's toJSONSchema `override`.
 */
import type { z } from 'zod';
import { zBytes, zDuration } from '../actions/catalog.ts';

/** A bare number of milliseconds, or number+unit pairs without spaces between them: 500ms, 30s, 1h30m, 1.5d. */
export const DURATION_PATTERN = '^\\s*(?:\\d+|(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d))+)\\s*$';
/** A number with an optional unit, in any case: 512, 8GiB, 512MB, 1.5g, 64kib. */
export const BYTES_PATTERN = '^\\s*\\d+(?:\\.\\d+)?\\s*(?:[bB]|[kKmMgGtT][iI]?[bB]?)?\\s*$';

type Def = { type?: string; out?: unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } })._zod?.def;
const DURATION_OUT = defOf(zDuration)?.out;
const BYTES_OUT = defOf(zBytes)?.out;

/** Give the string form of every duration and byte-size field its pattern (clones keep the transform they wrap). */
export function unitsOverride(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  const def = defOf(ctx.zodSchema as z.ZodType);
  if (def?.type !== 'pipe') return;
  const pattern = def.out === DURATION_OUT ? DURATION_PATTERN : def.out === BYTES_OUT ? BYTES_PATTERN : undefined;
  if (!pattern) return;
  const j = ctx.jsonSchema;
  delete j.type;
  j.anyOf = [{ type: 'number', minimum: 0 }, { type: 'string', maxLength: 40, pattern }];
}
