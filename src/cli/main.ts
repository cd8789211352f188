/**
 * `runbook` command line. Exit codes:
 *   0 ok · 1 a run (or check) failed · 2 invalid input (runbook, inventory, flags) · 3 waiting for approval
 *   4 cluster locked by another run · 5 denied · 6 diagnose found something critical · 7 the machine is not usable
 *   as it is (a state dir not writable, a disk full: the message says what to fix) · 130/143 interrupted (resumable)
 */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, UserError, environmentError, formatDiagnostic, messageOf } from '../common.ts';
import { exitOf } from './exit.ts';
import { processIo, type Io } from './output.ts';
import { VERSION } from './version.ts';
import { registerRunbookCommands } from './runbooks.ts';
import { registerRunCommands } from './runs.ts';
import { registerServeCommand } from './serve.ts';
import { registerRehearseCommand } from './rehearse.ts';
import { registerDiagnoseCommand } from './diagnose.ts';
import { registerGuardCommand } from './guard.ts';
import { registerHelpCommands } from './help.ts';
import { registerBackupCommands } from './backup.ts';


export function buildProgram(io: Io): Command {
  const program = new Command('runbook')
    .description('Incident-recovery runbooks for the etcd clusters under Kubernetes control planes')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Exit codes:
  0   ok                          1   a run or check failed (resumable: see the message)
  2   invalid input               3   paused waiting for approval
  4   cluster locked by a run     5   denied
  6   diagnose: critical finding  7   environment: a dir not writable, disk full… (the message says what to fix)
  130/143  interrupted by SIGINT/SIGTERM (resumable)`,
  );
  registerRunbookCommands(program, io);
  registerRunCommands(program, io);
  registerServeCommand(program, io);
  registerRehearseCommand(program, io);
  registerDiagnoseCommand(program, io);
  registerGuardCommand(program, io);
  registerBackupCommands(program, io);
  registerHelpCommands(program, io);
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
    if (cmd.options.some((o) => o.long === '--json')) addWriteOut(cmd, io);
  }
  return program;
}

/**
 * etcdctl's `-w/--write-out simple|json|table` (and ETCDCTL_WRITE_OUT) on every command that has --json: json is
 * --json; simple and table are the human output these commands print anyway.
 */
function addWriteOut(cmd: Command, io: Io): void {
  cmd.addOption(new Option('-w, --write-out <format>', 'output format, as etcdctl: simple, json (same as --json) or table (env ETCDCTL_WRITE_OUT)').choices(['simple', 'json', 'table']));
  cmd.hook('preAction', (c) => {
    const chosen = (c.opts() as { writeOut?: string }).writeOut ?? io.env.ETCDCTL_WRITE_OUT?.trim();
    if (!chosen) return;
    if (!['simple', 'json', 'table'].includes(chosen)) throw new UserError(`ETCDCTL_WRITE_OUT: expected simple, json or table, got ${JSON.stringify(chosen)}`);
    if (chosen === 'json') c.setOptionValue('json', true);
  });
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const program = buildProgram(io);
  let code: number = ExitCode.ok;
  program.hook('postAction', (_this, action) => {
    const c = exitOf(action);
    if (typeof c === 'number') code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    return handleError(err, io);
  }
}

export function handleError(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
    return ExitCode.invalidInput; // commander already printed which flag/argument is wrong
  }
  const env = err instanceof UserError ? undefined : environmentError(err);
  if (env) err = env;
  if (err instanceof UserError) {
    if (err.diagnostics.length) for (const d of err.diagnostics) io.err(formatDiagnostic(d));
    if (err.message && (!err.diagnostics.length || !err.message.startsWith(err.diagnostics[0] ? formatDiagnostic(err.diagnostics[0]) : '\0'))) io.err(`runbook: ${err.message}`);
    return err.exitCode;
  }
  // Not a user error: a bug or an unexpected failure. Say so plainly; the stack only with RUNBOOK_DEBUG=1.
  io.err(`runbook: internal error: ${messageOf(err)}`);
  if (io.env.RUNBOOK_DEBUG && err instanceof Error && err.stack) io.err(err.stack);
  else io.err('  (set RUNBOOK_DEBUG=1 for a stack trace, and please report it)');
  return ExitCode.failed;
}


export { Option };
