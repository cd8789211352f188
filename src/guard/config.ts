/**
 * A guard's settings for one cluster, from `runbook guard` flags or a cluster's `guard:` entry in chatops.yaml, checked
 * once before anything polls: durations, rule expressions (parsed and type-checked), the runbook's params.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { parseBytes, parseDuration } from '../util/units.ts';
import { FINDING_DEFAULTS } from './findings.ts';
import { buildRules, type Rule } from './rules.ts';

export interface GuardConfig {
  intervalMs: number;
  cooldownMs: number;
  rules: Rule[];
  /** The prevention runbook: a built-in name or a file. */
  runbook: string;
  /** Its params, as given (strings, parsed by the runbook's param types). */
  params: Record<string, string>;
  approval: 'policy' | 'required';
  learnerMaxMs: number;
  unevenMinBytes: number;
  /** How often members' flags (auto-compaction) and certificates are read again. */
  slowCheckEveryMs: number;
}

export const GUARD_DEFAULTS = {
  intervalMs: 30_000,
  cooldownMs: 30 * 60_000,
  runbook: 'nospace-prevention',
  approval: 'policy' as const,
  slowCheckEveryMs: 10 * 60_000,
};

const zDuration = z.union([z.string(), z.number()]);

/** The `guard:` entry of a cluster in chatops.yaml (also what `runbook guard --config` would read). */
export const zGuardSpec = z.strictObject({
  enabled: z.boolean().default(true),
  interval: zDuration.optional(),
  cooldown: zDuration.optional(),
  rules: z.record(z.string(), z.union([z.string(), z.literal(false)])).optional(),
  runbook: z.string().min(1).optional(),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  approval: z.enum(['policy', 'required']).optional(),
  learnerMax: zDuration.optional(),
  unevenMinBytes: z.union([z.string(), z.number()]).optional(),
});
export type GuardSpec = z.infer<typeof zGuardSpec>;

export interface RawGuardSettings {
  interval?: string | number;
  cooldown?: string | number;
  rules?: Record<string, string | false>;
  runbook?: string;
  params?: Record<string, string | number | boolean>;
  approval?: 'policy' | 'required';
  learnerMax?: string | number;
  unevenMinBytes?: string | number;
}

/**
 * Check and default the settings. `where(key)` names a setting in errors (a flag like `--interval`, or a config
 * path like `clusters.prod.guard.interval`).
 */
export function guardConfig(raw: RawGuardSettings, where: (key: string) => string): GuardConfig {
  const duration = (key: string, v: string | number | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const ms = parseDuration(v);
    if (ms === undefined) throw new UserError(`${where(key)}: not a duration: ${JSON.stringify(v)} (e.g. 30s, 5m)`);
    if (ms < min) throw new UserError(`${where(key)}: must be at least ${min} ms, got ${JSON.stringify(v)}`);
    return ms;
  };
  let unevenMinBytes = FINDING_DEFAULTS.unevenMinBytes;
  if (raw.unevenMinBytes !== undefined) {
    const b = parseBytes(raw.unevenMinBytes);
    if (b === undefined) throw new UserError(`${where('unevenMinBytes')}: not a byte size: ${JSON.stringify(raw.unevenMinBytes)} (e.g. 64MiB)`);
    unevenMinBytes = b;
  }
  return {
    intervalMs: duration('interval', raw.interval, GUARD_DEFAULTS.intervalMs, 200),
    cooldownMs: duration('cooldown', raw.cooldown, GUARD_DEFAULTS.cooldownMs, 0),
    rules: buildRules(raw.rules ?? {}, (name) => `${where('rules')} ${name}`),
    runbook: raw.runbook ?? GUARD_DEFAULTS.runbook,
    params: Object.fromEntries(Object.entries(raw.params ?? {}).map(([k, v]) => [k, String(v)])),
    approval: raw.approval ?? GUARD_DEFAULTS.approval,
    learnerMaxMs: duration('learnerMax', raw.learnerMax, FINDING_DEFAULTS.learnerMaxMs, 0),
    unevenMinBytes,
    slowCheckEveryMs: GUARD_DEFAULTS.slowCheckEveryMs,
  };
}
