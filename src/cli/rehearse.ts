/** `runbook rehearse`: a runbook against a throwaway local cluster with the fault it recovers from. */
import type { Command } from 'commander';
import type { JournalRecord } from '../common.ts';
import { abortOnSignals } from './signals.ts';
import { ExitCode, UserError } from '../common.ts';
import { parseBytes } from '../common.ts';
import { defaultStateDir } from '../run-records.ts';
import { json, type Io } from './output.ts';
import { setExit } from './exit.ts';

interface RehearseFlags {
  all?: boolean;
  fault?: string;
  members: string;
  quota?: string;
  fromSnapshot?: string;
  etcdVersion?: string;
  keep?: boolean;
  json?: boolean;
  param: string[];
  stateDir?: string;
  verbose?: boolean;
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** The run's progress as `runbook run` prints it; the final record without its report (the rehearsal prints its own). */
function progress(io: Io, verbose: boolean, formatRecord: typeof import('../common.ts').formatRecord): (rec: JournalRecord) => void {
  return (rec) => {
    const shown = rec.type === 'run.finished' ? { ...rec, report: undefined } : rec;
    const line = formatRecord(shown as JournalRecord, { color: io.color, ...(verbose ? { verbose: true } : {}) });
    if (!line) return;
    // "resume with" makes no sense for a cluster that is about to be torn down.
    io.out(line.split('\n').filter((l) => !l.includes('resume with:')).join('\n'));
  };
}

export function registerRehearseCommand(program: Command, io: Io): void {
  program
    .command('rehearse')
    .description('rehearse a runbook on a throwaway local etcd cluster: inject the fault it recovers from, run it, verify, report, tear down')
    .argument('[runbook]', 'built-in name or path to a runbook file')
    .option('--all', 'rehearse every built-in runbook in turn')
    .option('--fault <fault>', 'nospace | power-loss | member-loss | none (required for a runbook that is not a built-in)')
    .option('--members <n>', 'members of the throwaway cluster', '3')
    .option('--quota <size>', '--quota-backend-bytes of the throwaway cluster (default 16MiB)')
    .option('--from-snapshot <file>', 'restore this snapshot (e.g. from staging) into the cluster first; the file is only read')
    .option('--etcd-version <version>', 'run the throwaway cluster on .tools/etcd-<version>/bin (fetch with scripts/fetch-etcd.sh <version>; default $ETCD_BIN_DIR, else the etcd on PATH)')
    .option('--keep', 'leave the cluster running afterwards (prints its inventory and how to stop it)')
    .option('-p, --param <key=value>', 'set a runbook parameter (repeatable)', collect, [])
    .option('--state-dir <dir>', 'where the run journal goes (default $RUNBOOK_STATE_DIR or ~/.local/state/runbook)')
    .option('--json', 'print the report as JSON (and nothing else on stdout)')
    .option('-v, --verbose', 'print probe results too')
    .addHelpText(
      'after',
      `
Faults (built-in runbooks get theirs without --fault):
  nospace       nospace-recovery     fill the backend to its quota until NOSPACE is raised
  power-loss    power-loss-restore   snapshot, SIGKILL every member, zero its db meta pages, flip a WAL record
  member-loss   member-replacement   SIGKILL a follower and move its data dir aside (a lost disk)
  none          snapshot-backup      nothing: a healthy cluster

Exit codes: 0 passed · 1 failed (the report says which step or check) · 2 invalid input · 130/143 interrupted
(the cluster and its temp dir are removed all the same).`,
    )
    .action(async (name: string | undefined, flags: RehearseFlags, cmd: Command) => {
      if (flags.all && name) throw new UserError('give a runbook or --all, not both');
      if (!flags.all && !name) throw new UserError('which runbook? e.g. runbook rehearse nospace-recovery (or --all)');
      if (flags.all && flags.fault) throw new UserError('--fault goes with one runbook, not --all (each built-in gets its own fault)');
      const members = Number(flags.members);
      if (!/^\d+$/.test(flags.members) || members < 1 || members > 7) throw new UserError(`--members: expected 1 to 7, got ${JSON.stringify(flags.members)}`);
      let quotaBytes: number | undefined;
      if (flags.quota !== undefined) {
        quotaBytes = parseBytes(flags.quota);
        if (quotaBytes === undefined || quotaBytes <= 0) throw new UserError(`--quota: not a size: ${JSON.stringify(flags.quota)} (e.g. 16MiB)`);
      }
      // Loaded here: the etcd client and the engine stay out of other commands' start-up.
      const { rehearse, prepareRehearsal } = await import('../operations.ts');
      const { parseFault, NOT_REHEARSABLE } = await import('../operations.ts');
      const { formatRehearsal } = await import('../operations.ts');
      const { listRunbooks, parseParamFlags } = await import('../authoring.ts');
      const { formatRecord } = await import('../common.ts');
      const fault = flags.fault !== undefined ? parseFault(flags.fault) : undefined;
      const params = parseParamFlags(flags.param ?? []);
      const stateDir = flags.stateDir ?? defaultStateDir(io.env);
      const builtIns = listRunbooks(io.env).filter((r) => r.builtIn);
      if (flags.all) {
        for (const r of builtIns.filter((b) => NOT_REHEARSABLE[b.name])) io.err(`rehearse --all: leaving out ${r.name}: ${NOT_REHEARSABLE[r.name]}`);
      }
      const names = flags.all ? builtIns.filter((r) => !NOT_REHEARSABLE[r.name]).map((r) => r.file) : [name!];
      const base = {
        members,
        stateDir,
        env: io.env,
        ...(quotaBytes !== undefined ? { quotaBytes } : {}),
        ...(flags.fromSnapshot ? { fromSnapshot: flags.fromSnapshot } : {}),
        ...(flags.etcdVersion !== undefined ? { etcdVersion: flags.etcdVersion } : {}),
        ...(flags.keep ? { keep: true } : {}),
        ...(fault ? { fault } : {}),
      };
      // Bad input for any of them is reported before a single cluster starts.
      for (const rb of names) prepareRehearsal({ ...base, runbook: rb, ...(flags.all ? {} : { params }) });

      const sig = abortOnSignals();
      const reports = [];
      try {
        for (const rb of names) {
          const report = await rehearse({
            ...base,
            runbook: rb,
            ...(flags.all ? {} : { params }),
            signal: sig.signal,
            ...(flags.json ? {} : { onEvent: progress(io, Boolean(flags.verbose), formatRecord), onPhase: (line: string) => io.out(line) }),
          });
          reports.push(report);
          if (!flags.json) io.out(`${formatRehearsal(report, { color: io.color })}\n`);
          if (report.interrupted) break;
        }
      } finally {
        sig.dispose();
      }
      const interrupted = reports.find((r) => r.interrupted)?.interrupted;
      const passed = reports.length === names.length && reports.every((r) => r.passed);
      if (flags.json) io.out(json(flags.all ? { passed, rehearsals: reports } : reports[0]));
      else if (flags.all) io.out(`rehearsals: ${reports.map((r) => `${r.runbook} ${r.interrupted ? 'interrupted' : r.passed ? 'passed' : 'FAILED'}`).join(', ')}`);
      if (interrupted) {
        io.err('runbook: rehearsal interrupted; the throwaway cluster and its temp dir were removed');
        setExit(cmd, interrupted === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted);
      } else {
        setExit(cmd, passed ? ExitCode.ok : ExitCode.failed);
      }
    });
}
