/**
 * The operations beside runs, as an entry of the public API (src/index.ts exports all of it) that the faces load
 * lazily, when a command needs it: diagnose, rehearse, the guard, continuous backup, and the hosts they reach.
 * The S3 client (the AWS SDK) is not loaded here: `loadS3()` brings it in only when an s3:// destination is named.
 */
export { diagnose, formatDiagnosis } from './diagnose/diagnose.ts';
export { rehearse, prepareRehearsal } from './rehearse/rehearse.ts';
export { parseFault, NOT_REHEARSABLE } from './rehearse/faults.ts';
export { formatRehearsal } from './rehearse/report.ts';
export { ClusterGuard, summarize } from './guard/guard.ts';
export { createGuardMetrics } from './guard/metrics.ts';
export { formatGuardEvent } from './guard/events.ts';
export { evaluateRules } from './guard/rules.ts';
export { serveMetrics } from './guard/metrics-server.ts';
export { startGuards } from './guard/fleet.ts';
export { runStream } from './backup/stream.ts';
export { copyBackups, hostDestination, type CopyDestination } from './backup/copy.ts';
export { backupStatus, formatBackupStatus } from './backup/report.ts';
export { startBackupStreams } from './backup/serve-streams.ts';
export { hostFor } from './hosts/index.ts';

/** The S3 copy destination (loads the AWS SDK). */
export const loadS3 = (): Promise<typeof import('./backup/copy-s3.ts')> => import('./backup/copy-s3.ts');
