/** `runbook diagnose`: a read-only health report with the runbook that fits; exit 6 when something is critical. */
import type { Command } from 'commander';
import { ExitCode, UserError } from '../common.ts';
import { parseDuration } from '../common.ts';
import { json, type Io } from './output.ts';
import { setExit } from './exit.ts';
import { resolveInventory, targetOptions, type TargetOpts } from './target.ts';

export function registerDiagnoseCommand(program: Command, io: Io): void {
  targetOptions(
    program
      .command('diagnose')
      .description('read-only health report of a cluster (alarms, quota usage, fragmentation, compaction, leader, learners, versions, certificate expiry) and the runbook that fits'),
  )
    .option('--json', 'print the diagnosis as JSON')
    .option('--timeout <duration>', 'deadline of each call to a member (default: the inventory\'s, else 5s)')
    .addHelpText(
      'after',
      `
Exit codes: 0 nothing critical (warnings included) · 6 something critical (an alarm, a member down, no quorum,
a db above 90% of its quota, an expired certificate) · 2 invalid input. Suitable for cron or a CI check.`,
    )
    .action(async (opts: TargetOpts & { json?: boolean; timeout?: string }, cmd: Command) => {
      let timeoutMs: number | undefined;
      if (opts.timeout !== undefined) {
        timeoutMs = parseDuration(opts.timeout);
        if (timeoutMs === undefined || timeoutMs <= 0) throw new UserError(`--timeout: not a duration: ${JSON.stringify(opts.timeout)} (e.g. 3s)`);
      }
      const inventory = await resolveInventory(opts, io);
      const { diagnose, formatDiagnosis } = await import('../operations.ts');
      const d = await diagnose(inventory, timeoutMs !== undefined ? { timeoutMs } : {});
      io.out(opts.json ? json(d) : formatDiagnosis(d, { color: io.color }));
      setExit(cmd, d.status === 'critical' ? ExitCode.critical : ExitCode.ok);
    });
}
