/** `runbook backup stream` (continuous backup: full snapshot + delta segments) and `runbook backup status` (its lag). */
import type { Command } from 'commander';
import type { CopyDestination } from '../operations.ts';
import type { Inventory } from '../common.ts';
import { ExitCode, UserError } from '../common.ts';
import { parseBytes, parseDuration } from '../common.ts';
import { json, type Io } from './output.ts';
import { setExit } from './exit.ts';
import { abortOnSignals } from './signals.ts';
import { resolveInventory, targetOptions, type TargetOpts } from './target.ts';

function duration(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = parseDuration(v);
  if (n === undefined || n <= 0) throw new UserError(`${flag}: not a duration: ${JSON.stringify(v)} (e.g. 1s, 10m)`);
  return n;
}

function bytes(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = parseBytes(v);
  if (n === undefined || n <= 0) throw new UserError(`${flag}: not a byte size: ${JSON.stringify(v)} (e.g. 64MiB)`);
  return n;
}

export function backupDirOf(inventory: Inventory, dir: string | undefined): string {
  const d = dir ?? inventory.snapshots?.dirs[0];
  if (!d) throw new UserError(`no backup dir: give --dir, or snapshots.dirs in inventory ${inventory.source}`);
  return d;
}

/**
 * Copy destinations from the flags: `<member>:<dir>` (a dir on the host of an inventory member, over its ssh
 * settings) and/or `s3://bucket/prefix` (with --s3-endpoint for an S3-compatible service).
 */
export async function copyDestinations(inventory: Inventory, specs: string[], s3Endpoint: string | undefined, flag: string): Promise<CopyDestination[]> {
  const out: CopyDestination[] = [];
  for (const spec of specs) {
    if (spec.startsWith('s3://')) {
      const { parseS3Url, s3Destination } = await (await import('../operations.ts')).loadS3();
      out.push(s3Destination({ ...parseS3Url(spec, flag), ...(s3Endpoint ? { endpoint: s3Endpoint } : {}) }));
      continue;
    }
    const i = spec.indexOf(':');
    const name = i > 0 ? spec.slice(0, i) : '';
    const dir = i > 0 ? spec.slice(i + 1) : '';
    const member = inventory.members.find((m) => m.name === name);
    if (!member || !dir.startsWith('/')) {
      throw new UserError(`${flag}: expected <member>:<absolute dir> (a member of inventory ${inventory.source}: ${inventory.members.map((m) => m.name).join(', ')}) or s3://<bucket>/<prefix>; got ${JSON.stringify(spec.slice(0, 200))}`);
    }
    const { hostFor } = await import('../operations.ts');
    const { hostDestination } = await import('../operations.ts');
    out.push(hostDestination(hostFor(member), dir));
  }
  return out;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

interface StreamOpts extends TargetOpts {
  copyTo: string[];
  s3Endpoint?: string;
  dir?: string;
  fsyncInterval?: string;
  segmentMaxBytes?: string;
  segmentMaxAge?: string;
  fullEvery?: string;
  fullAfterBytes?: string;
  keepChains?: string;
  maxAge?: string;
}

export function registerBackupCommands(program: Command, io: Io): void {
  const backup = program.command('backup').description('continuous backup: a full snapshot plus every change since, in sealed delta segments');
  targetOptions(backup.command('stream').description('take a full snapshot, then stream every change of the keyspace into delta segments until stopped (SIGTERM/SIGINT seal the open segment)'))
    .option('--dir <dir>', 'backup dir (default: the inventory\'s first snapshots.dirs)')
    .option('--fsync-interval <duration>', 'fsync the open segment at most this long after a write', '1s')
    .option('--segment-max-bytes <size>', 'seal a segment at this size', '64MiB')
    .option('--segment-max-age <duration>', 'seal a segment this long after its first record', '10m')
    .option('--full-every <duration>', 'take a new full snapshot this often', '6h')
    .option('--full-after-bytes <size>', 'or after this many bytes of changes', '1GiB')
    .option('--keep-chains <n>', 'local retention: keep the newest N full snapshots with the deltas after them; older ones move to <dir>/expired/<time>/ (never deleted)')
    .option('--max-age <duration>', 'local retention: move aside chains that ended longer ago than this (every point of that period stays restorable)')
    .option('--copy-to <member:dir|s3://bucket/prefix>', 'copy every sealed segment and snapshot there (repeatable): a dir on that member\'s host (ssh) or a bucket; sha256 verified on the far side', collect, [])
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// destinations (credentials: the AWS SDK chain, e.g. AWS_ACCESS_KEY_ID)')
    .action(async (opts: StreamOpts) => {
      const keepChains = opts.keepChains === undefined ? undefined : Number(opts.keepChains);
      if (keepChains !== undefined && (!Number.isInteger(keepChains) || keepChains < 1)) throw new UserError(`--keep-chains: expected a whole number ≥ 1, got ${JSON.stringify(opts.keepChains)}`);
      const retentionAgeMs = duration('--max-age', opts.maxAge);
      const fsyncIntervalMs = duration('--fsync-interval', opts.fsyncInterval);
      const maxBytes = bytes('--segment-max-bytes', opts.segmentMaxBytes);
      const maxAgeMs = duration('--segment-max-age', opts.segmentMaxAge);
      const fullEveryMs = duration('--full-every', opts.fullEvery);
      const fullAfterBytes = bytes('--full-after-bytes', opts.fullAfterBytes);
      const inventory = await resolveInventory(opts, io);
      const backupDir = backupDirOf(inventory, opts.dir);
      const copyTo = await copyDestinations(inventory, opts.copyTo, opts.s3Endpoint, '--copy-to');
      const { runStream } = await import('../operations.ts');
      const sig = abortOnSignals();
      try {
        await runStream({
          inventory,
          backupDir,
          ...(fsyncIntervalMs ? { fsyncIntervalMs } : {}),
          rotation: { ...(maxBytes ? { maxBytes } : {}), ...(maxAgeMs ? { maxAgeMs } : {}) },
          ...(fullEveryMs ? { fullEveryMs } : {}),
          ...(fullAfterBytes ? { fullAfterBytes } : {}),
          ...(copyTo.length ? { copyTo } : {}),
          ...(keepChains !== undefined || retentionAgeMs !== undefined ? { retention: { ...(keepChains !== undefined ? { keepChains } : {}), ...(retentionAgeMs !== undefined ? { maxAgeMs: retentionAgeMs } : {}) } } : {}),
          signal: sig.signal,
          log: (m) => io.err(`backup: ${m}`),
        });
      } finally {
        sig.dispose();
      }
    });

  targetOptions(backup.command('copy').description('copy every sealed segment and full snapshot to a dir on another host, each verified by its sha256 there (never overwrites, never deletes)'))
    .requiredOption('--to <member:dir|s3://bucket/prefix>', 'a dir on the host of this inventory member (its ssh settings), or a bucket')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for an s3:// destination')
    .option('--dir <dir>', 'backup dir (default: the inventory\'s first snapshots.dirs)')
    .option('--json', 'print as JSON')
    .action(async (opts: TargetOpts & { to: string; s3Endpoint?: string; dir?: string; json?: boolean }, cmd: Command) => {
      const inventory = await resolveInventory(opts, io);
      const [target] = await copyDestinations(inventory, [opts.to], opts.s3Endpoint, '--to');
      const { copyBackups } = await import('../operations.ts');
      const r = await copyBackups(backupDirOf(inventory, opts.dir), inventory.name, target!, { log: (m) => io.err(`backup: ${m}`) });
      io.out(opts.json ? json(r) : `${r.copied.length} copied, ${r.already.length} already there${r.conflicts.length ? `, ${r.conflicts.length} conflict(s):\n${r.conflicts.map((c) => `  ${c.reason}`).join('\n')}` : ''}`);
      setExit(cmd, r.conflicts.length ? ExitCode.failed : ExitCode.ok);
    });

  targetOptions(backup.command('status').description('what the backups hold (snapshots, segments, gaps) and the stream\'s lag (the RPO right now)'))
    .option('--dir <dir>', 'backup dir (default: the inventory\'s first snapshots.dirs)')
    .option('--warn-lag <duration>', 'exit 1 when the lag is above this', '10s')
    .option('--json', 'print as JSON')
    .action(async (opts: TargetOpts & { dir?: string; warnLag?: string; json?: boolean }, cmd: Command) => {
      const warnMs = duration('--warn-lag', opts.warnLag)!;
      const inventory = await resolveInventory(opts, io);
      const { backupStatus, formatBackupStatus } = await import('../operations.ts');
      const s = await backupStatus(backupDirOf(inventory, opts.dir), inventory.name, warnMs);
      io.out(opts.json ? json(s) : formatBackupStatus(s));
      setExit(cmd, s.warnings.length ? ExitCode.failed : ExitCode.ok);
    });
}
