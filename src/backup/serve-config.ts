/**
 * A cluster's `backup:` entry in chatops.yaml: the backup stream `runbook serve` runs for it (opt-in), with the same
 * settings as `runbook backup stream`'s flags, checked once at load. The backup dir is always the inventory's first
 * `snapshots.dirs`: the dir restores (backup.build-target) and `runbook diagnose` read.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { parseBytes, parseDuration } from '../util/units.ts';
import type { BackupRetention } from './retention.ts';
import type { RotationPolicy } from './segment-writer.ts';

export interface BackupStreamConfig {
  fsyncIntervalMs?: number;
  rotation: Partial<RotationPolicy>;
  fullEveryMs?: number;
  fullAfterBytes?: number;
  retention?: BackupRetention;
  /** How often a replica that does not hold the cluster's stream lock tries to take it (default 5 s). */
  standbyRetryMs: number;
}

const zValue = z.union([z.string(), z.number()]);

export const zBackupSpec = z.strictObject({
  enabled: z.boolean().default(true),
  fsyncInterval: zValue.optional(),
  segmentMaxBytes: zValue.optional(),
  segmentMaxAge: zValue.optional(),
  fullEvery: zValue.optional(),
  fullAfterBytes: zValue.optional(),
  keepChains: z.number().int().min(1).optional(),
  maxAge: zValue.optional(),
  standbyRetry: zValue.optional(),
});
export type BackupSpec = z.infer<typeof zBackupSpec>;

/** Check and default a `backup:` entry; `where(key)` names a key in messages (e.g. clusters.prod.backup.fullEvery). */
export function backupStreamConfig(spec: Omit<BackupSpec, 'enabled'>, where: (key: string) => string): BackupStreamConfig {
  const problems: string[] = [];
  const ms = (key: keyof BackupSpec, v: string | number | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = parseDuration(v);
    if (n === undefined || n <= 0) problems.push(`${where(key)}: not a duration (e.g. 1s, 10m): ${JSON.stringify(v)}`);
    return n;
  };
  const size = (key: keyof BackupSpec, v: string | number | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = parseBytes(v);
    if (n === undefined || n <= 0) problems.push(`${where(key)}: not a byte size (e.g. 64MiB): ${JSON.stringify(v)}`);
    return n;
  };
  const fsyncIntervalMs = ms('fsyncInterval', spec.fsyncInterval);
  const maxBytes = size('segmentMaxBytes', spec.segmentMaxBytes);
  const maxAgeMs = ms('segmentMaxAge', spec.segmentMaxAge);
  const fullEveryMs = ms('fullEvery', spec.fullEvery);
  const fullAfterBytes = size('fullAfterBytes', spec.fullAfterBytes);
  const retentionAgeMs = ms('maxAge', spec.maxAge);
  const standbyRetryMs = ms('standbyRetry', spec.standbyRetry) ?? 5000;
  if (problems.length) throw new UserError(problems.join('\n'));
  const retention: BackupRetention = {
    ...(spec.keepChains !== undefined ? { keepChains: spec.keepChains } : {}),
    ...(retentionAgeMs !== undefined ? { maxAgeMs: retentionAgeMs } : {}),
  };
  return {
    ...(fsyncIntervalMs ? { fsyncIntervalMs } : {}),
    rotation: { ...(maxBytes ? { maxBytes } : {}), ...(maxAgeMs ? { maxAgeMs } : {}) },
    ...(fullEveryMs ? { fullEveryMs } : {}),
    ...(fullAfterBytes ? { fullAfterBytes } : {}),
    ...(Object.keys(retention).length ? { retention } : {}),
    standbyRetryMs,
  };
}
