/** Commands that run runbooks or read runs: plan, run, resume, approve, deny, status, history. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import { Option, type Command } from 'commander';
import type { JournalRecord } from '../events/types.ts';
import { formatRecord, formatReport } from '../events/terminal.ts';
import type { RunHandle } from '../execute/executor.ts';
import { abortOnSignals } from './signals.ts';
import { readJournal } from '../execute/journal.ts';
import type { RunReport } from '../execute/report.ts';
import { defaultStateDir, files, readRunMeta, runDir } from '../execute/run-store.ts';
import { foldJournal } from '../execute/state.ts';
import type { Inventory } from '../inventory/types.ts';
import { parseParamFlags, resolveParams } from '../runbook/params.ts';
import type { Runbook } from '../runbook/model.ts';
import { ExitCode, UserError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { json, type Io } from './output.ts';
import { setExit } from './main.ts';
import { resolveInventory, targetOptions, type TargetOpts } from './target.ts';
import { openStore, type StoreFlags } from '../store/open.ts';
import type { StateStore } from '../store/types.ts';

/** `--store etcd://…` and its TLS files (run state in a management etcd instead of the state dir). */
function storeOptions(c: Command): Command {
  return c
    .option('--store <url>', 'keep run state in a management etcd: etcd://host:port[,host:port…] (default: the state dir)')
    .option('--store-cacert <file>', 'CA of the management etcd (makes --store use TLS)')
    .option('--store-cert <file>', 'client certificate for the management etcd')
    .option('--store-key <file>', 'client key for the management etcd');
}

/** True when runs go to a management etcd (`--store etcd://…` or $RUNBOOK_STORE), not the state dir. */
function remoteStore(opts: StoreFlags, env: NodeJS.ProcessEnv): boolean {
  const url = opts.store ?? env.RUNBOOK_STORE;
  return Boolean(url) && !/^file(:|$)/.test(url!);
}

async function withStore<T>(opts: StoreFlags & { stateDir?: string }, io: Io, fn: (store: StateStore) => Promise<T>): Promise<T> {
  const store = await openStore(opts, io.env, stateDirOf(opts, io));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

interface CommonRunOpts extends TargetOpts, StoreFlags {
  param?: string[];
  stateDir?: string;
  json?: boolean;
  yes?: boolean;
  breakLock?: boolean;
  verbose?: boolean;
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

export function stateDirOf(opts: { stateDir?: string }, io: Io): string {
  return opts.stateDir ? opts.stateDir : defaultStateDir(io.env);
}

// Loaded on first use, so `runbook --version` and `--help` do not pay for the engine, zod, YAML and CEL.
const engine = () => import('../execute/executor.ts');

async function readRunbook(nameOrFile: string): Promise<{ runbook: Runbook; text: string }> {
  const { findRunbook } = await import('../runbook/find.ts');
  const { loadRunbook } = await import('../runbook/load.ts');
  const file = findRunbook(nameOrFile);
  const bytes = fs.readFileSync(file);
  const runbook = loadRunbook(file);
  const hash = crypto.createHash('sha256').update(bytes).digest('hex');
  if (hash !== runbook.source.hash) throw new UserError(`${file} changed while it was being read; try again`);
  return { runbook, text: bytes.toString('utf8') };
}

async function loadRegistry() {
  const { createRegistry } = await import('../actions/registry.ts');
  return createRegistry();
}

function operator(io: Io): string {
  return io.env.RUNBOOK_OPERATOR || `${os.userInfo().username}@${os.hostname()}`;
}

/** Print events as they happen; answer approvals on a TTY. */
function attach(io: Io, opts: { json?: boolean; verbose?: boolean; interactive: boolean }, getHandle: () => RunHandle | undefined) {
  let dryRun = false;
  const rl = opts.interactive ? readline.createInterface({ input: process.stdin, output: process.stderr }) : undefined;
  const onEvent = (rec: JournalRecord) => {
    if (rec.type === 'run.started') dryRun = rec.dryRun;
    if (opts.json) {
      io.out(JSON.stringify(rec));
    } else {
      const line = formatRecord(rec, { color: io.color, dryRun, ...(opts.verbose ? { verbose: true } : {}) });
      if (line) io.out(line);
    }
    if (rec.type === 'approval.requested' && rl) {
      rl.question(`Approve step "${rec.stepId}"${rec.message ? ` (${rec.message})` : ''}? [y/N] `, (answer) => {
        const h = getHandle();
        if (!h) return;
        const yes = /^y(es)?$/i.test(answer.trim());
        const decided = yes ? h.approve(rec.stepId, operator(io), 'cli prompt') : h.deny(rec.stepId, operator(io), 'cli prompt', 'declined at the prompt');
        decided.then(
          (first) => {
            if (!first) io.err(`step "${rec.stepId}" was already decided elsewhere; that decision stands`);
          },
          (err: unknown) => io.err(`could not record the decision for step "${rec.stepId}": ${messageOf(err)} (the step still waits: \`runbook approve ${h.runId} ${rec.stepId}\`)`),
        );
      });
    }
  };
  return { onEvent, close: () => rl?.close() };
}

async function drive(io: Io, cmd: Command, make: (onEvent: (r: JournalRecord) => void, signal: AbortSignal) => RunHandle | Promise<RunHandle>, opts: CommonRunOpts) {
  const sig = abortOnSignals();
  let handle: RunHandle | undefined;
  const view = attach(io, { ...(opts.json ? { json: true } : {}), ...(opts.verbose ? { verbose: true } : {}), interactive: io.isTTY && Boolean(process.stdin.isTTY) && !opts.yes && !opts.json }, () => handle);
  try {
    handle = await make(view.onEvent, sig.signal);
    const result = await handle.done;
    if (result.status === 'cancelled') io.err(`runbook: run ${result.runId} interrupted; it is resumable: runbook resume ${result.runId}`);
    setExit(cmd, result.exitCode);
  } finally {
    view.close();
    sig.dispose();
  }
}

export function registerRunCommands(program: Command, io: Io): void {
  const withRunOptions = (c: Command) =>
    storeOptions(targetOptions(c))
      .option('-p, --param <key=value>', 'set a runbook parameter (repeatable)', collect, [])
      .option('--state-dir <dir>', 'where runs are kept (default $RUNBOOK_STATE_DIR or ~/.local/state/runbook)')
      .option('--json', 'print events as JSON lines')
      .option('-v, --verbose', 'print probe results too');

  withRunOptions(
    program
      .command('run')
      .description('run a runbook against a cluster (journaled and resumable)')
      .argument('<runbook>', 'built-in name or path to a runbook file'),
  )
    .option('-y, --yes', 'approve every approval up front (recorded in the journal as yours)')
    .option('--dry-run', 'same as `runbook plan`: read-only probes, nothing changed')
    .option('--break-lock', "take over a stale lock left by another run's dead process")
    .action(async (name: string, opts: CommonRunOpts & { dryRun?: boolean }, cmd: Command) => {
      const { runbook, text } = await readRunbook(name);
      const params = resolveParams(runbook, parseParamFlags(opts.param ?? []));
      const inventory = await resolveInventory(opts, io);
      const registry = await loadRegistry();
      const stateDir = stateDirOf(opts, io);
      const { startRun, startStoredRun } = await engine();
      const runOpts = {
        runbook, runbookText: text, inventory, params, registry, stateDir,
        ...(opts.dryRun ? { dryRun: true } : {}),
        ...(opts.yes ? { autoApprove: operator(io) } : {}),
        ...(opts.breakLock ? { breakLock: true } : {}),
        requestedBy: operator(io),
      };
      if (!remoteStore(opts, io.env)) {
        await drive(io, cmd, (onEvent, signal) => startRun({ ...runOpts, onEvent, signal }), opts);
        return;
      }
      await withStore(opts, io, (store) => drive(io, cmd, (onEvent, signal) => startStoredRun({ ...runOpts, onEvent, signal, store }), opts));
    });

  withRunOptions(
    program
      .command('plan')
      .description('dry run: run the read-only probes for real and print what each step would do, with concrete values')
      .argument('<runbook>', 'built-in name or path to a runbook file'),
  ).action(async (name: string, opts: CommonRunOpts, cmd: Command) => {
    const { runbook, text } = await readRunbook(name);
    const params = resolveParams(runbook, parseParamFlags(opts.param ?? []));
    const inventory = await resolveInventory(opts, io);
    const registry = await loadRegistry();
    const { startRun } = await engine();
    await drive(io, cmd, (onEvent, signal) => startRun({
      runbook, runbookText: text, inventory, params, registry, stateDir: stateDirOf(opts, io), onEvent, signal, dryRun: true,
    }), opts);
  });

  storeOptions(program
    .command('resume')
    .description('continue a run that crashed, was interrupted or failed; steps that took effect are not repeated')
    .argument('<run-id>'))
    .option('--state-dir <dir>', 'where runs are kept')
    .option('-y, --yes', 'approve every approval up front')
    .option('--json', 'print events as JSON lines')
    .option('-v, --verbose', 'print probe results too')
    .option('--inventory <file>', 'use this inventory instead of the one stored with the run')
    .option('--saved-runbook', "resume with the run's own copy of the runbook (when the file changed since)")
    .option('--mark-done <step>', 'a step left in doubt did take effect (checked by hand): record it as done', collect, [])
    .option('--rerun <step>', 'a step left in doubt did not take effect: run it again', collect, [])
    .option('--break-lock', "take over a stale lock left by another run's dead process")
    .action(async (runId: string, opts: CommonRunOpts & { inventory?: string; savedRunbook?: boolean; markDone: string[]; rerun: string[] }, cmd: Command) => {
      const stateDir = stateDirOf(opts, io);
      if (remoteStore(opts, io.env)) {
        await withStore(opts, io, async (store) => {
          const meta = await store.readRunMeta(runId);
          let runbook: Runbook;
          let text: string;
          if (opts.savedRunbook || !fs.existsSync(meta.runbookFile)) {
            if (!opts.savedRunbook) throw new UserError(`the run's runbook ${meta.runbookFile} is gone; resume with --saved-runbook`);
            text = await store.readRunbookCopy(runId);
            runbook = (await import('../runbook/load.ts')).loadRunbookText(text, `${store.description}: run ${runId}`);
          } else {
            ({ runbook, text } = await readRunbook(meta.runbookFile));
          }
          const inventory: Inventory | undefined = opts.inventory ? await resolveInventory({ inventory: opts.inventory }, io) : undefined;
          const resolutions: Record<string, 'done' | 'rerun'> = {};
          for (const s of opts.markDone ?? []) resolutions[s] = 'done';
          for (const s of opts.rerun ?? []) resolutions[s] = 'rerun';
          const registry = await loadRegistry();
          const { resumeStoredRun } = await engine();
          await drive(io, cmd, (onEvent, signal) => resumeStoredRun({
            stateDir, runId, registry, runbook, runbookText: text, onEvent, signal, resolutions, store,
            ...(inventory ? { inventory } : {}),
            ...(opts.yes ? { autoApprove: operator(io) } : {}),
            ...(opts.breakLock ? { breakLock: true } : {}),
          }), opts);
        });
        return;
      }
      const meta = readRunMeta(stateDir, runId);
      const dir = runDir(stateDir, runId);
      let runbook: Runbook;
      let text: string;
      if (opts.savedRunbook) {
        text = fs.readFileSync(files.runbookCopy(dir), 'utf8');
        runbook = (await import('../runbook/load.ts')).loadRunbookText(text, files.runbookCopy(dir));
      } else {
        if (!fs.existsSync(meta.runbookFile)) throw new UserError(`the run's runbook ${meta.runbookFile} is gone; resume with --saved-runbook`);
        ({ runbook, text } = await readRunbook(meta.runbookFile));
      }
      const inventory: Inventory | undefined = opts.inventory ? await resolveInventory({ inventory: opts.inventory }, io) : undefined;
      const resolutions: Record<string, 'done' | 'rerun'> = {};
      for (const s of opts.markDone ?? []) resolutions[s] = 'done';
      for (const s of opts.rerun ?? []) resolutions[s] = 'rerun';
      const registry = await loadRegistry();
      const { resumeRun } = await engine();
      await drive(io, cmd, (onEvent, signal) => resumeRun({
        stateDir, runId, registry, runbook, runbookText: text, onEvent, signal, resolutions,
        ...(inventory ? { inventory } : {}),
        ...(opts.yes ? { autoApprove: operator(io) } : {}),
        ...(opts.breakLock ? { breakLock: true } : {}),
      }), opts);
    });

  for (const verb of ['approve', 'deny'] as const) {
    storeOptions(program
      .command(verb)
      .description(verb === 'approve' ? 'approve a step that is waiting for approval' : 'deny a step that is waiting for approval (the run ends)')
      .argument('<run-id>')
      .argument('<step>'))
      .option('--state-dir <dir>', 'where runs are kept')
      .option('--reason <text>', 'why (recorded)')
      .action(async (runId: string, stepId: string, opts: StoreFlags & { stateDir?: string; reason?: string }) => {
        if (remoteStore(opts, io.env)) {
          await withStore(opts, io, async (store) => {
            const meta = await store.readRunMeta(runId);
            await (await import('./approval-check.ts')).checkDecidable(store, runId, stepId, verb);
            const r = await store.decideApproval(runId, stepId, {
              decision: verb === 'approve' ? 'granted' : 'denied', by: operator(io), via: 'cli', ...(opts.reason ? { reason: opts.reason } : {}),
            });
            if (!r.first) throw new UserError(`step "${stepId}" of run ${runId} was already ${r.decision.decision} by ${r.decision.by} at ${r.decision.at}`);
            io.out(`${verb === 'approve' ? 'approved' : 'denied'} step "${stepId}" of run ${runId} (${meta.runbook}) in the ${store.description}`);
          });
          return;
        }
        const { recordDecision } = await engine();
        const stateDir = stateDirOf(opts, io);
        const meta = readRunMeta(stateDir, runId);
        const { FileStore } = await import('../store/file.ts');
        await (await import('./approval-check.ts')).checkDecidable(new FileStore(stateDir), runId, stepId, verb);
        const r = recordDecision(stateDir, runId, stepId, {
          decision: verb === 'approve' ? 'granted' : 'denied', by: operator(io), via: 'cli', ...(opts.reason ? { reason: opts.reason } : {}),
        });
        if (!r.first) throw new UserError(`step "${stepId}" of run ${runId} was already ${r.decision.decision} by ${r.decision.by} at ${r.decision.at}`);
        io.out(`${verb === 'approve' ? 'approved' : 'denied'} step "${stepId}" of run ${runId} (${meta.runbook})`);
        const fold = foldJournal(readJournal(files.journal(runDir(stateDir, runId))).records);
        if (fold.status === 'awaiting-approval' || fold.status === 'running') io.out('the running process will pick this up within a second; if it is not running any more: runbook resume ' + runId);
      });
  }

  storeOptions(program
    .command('status')
    .description('show where a run is: each step, per member, with times')
    .argument('<run-id>'))
    .option('--state-dir <dir>', 'where runs are kept')
    .option('--json', 'machine-readable output')
    .action((runId: string, opts: StoreFlags & { stateDir?: string; json?: boolean }) => withStore(opts, io, async (store) => {
      const meta = await store.readRunMeta(runId);
      const read = await store.readJournal(runId);
      const fold = foldJournal(read.records);
      const steps = [...fold.steps].map(([id, s]) => ({
        id, status: s.status, ...(s.items ? { items: s.items.map((k) => ({ key: k, status: s.item.get(k)?.status ?? 'pending', attempts: s.item.get(k)?.attempts ?? 0 })) } : {}),
        ...(s.item.get('')?.error ? { error: s.item.get('')!.error } : {}),
      }));
      if (opts.json) {
        io.out(json({ runId, runbook: meta.runbook, status: fold.status, params: meta.params, cluster: meta.inventory.name, steps, torn: read.torn ?? null, finished: fold.finished ?? null }));
        return;
      }
      io.out(`run ${runId}: ${meta.runbook} on ${meta.inventory.name} — ${fold.status}`);
      if (read.torn) io.out(`  (the last journal record is torn: line ${read.torn.line}; resume continues from the record before it)`);
      for (const s of steps) {
        io.out(`  ${s.id.padEnd(20)} ${s.status}`);
        for (const it of s.items ?? []) io.out(`    ${it.key.padEnd(18)} ${it.status}${it.attempts > 1 ? ` (${it.attempts} attempts)` : ''}`);
      }
      if (fold.finished?.report) io.out(formatReport(fold.finished.report as RunReport, { color: io.color }));
      if (fold.status === 'failed' || fold.status === 'cancelled' || fold.status === 'running') io.out(`resume with: runbook resume ${runId}`);
    }));

  storeOptions(program
    .command('history')
    .description('list runs, newest first'))
    .option('--state-dir <dir>', 'where runs are kept')
    .option('-n, --limit <n>', 'how many', '20')
    .option('--json', 'machine-readable output')
    .action((opts: StoreFlags & { stateDir?: string; limit: string; json?: boolean }) => withStore(opts, io, async (store) => {
      const stateDir = stateDirOf(opts, io);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UserError(`--limit: expected a positive integer, got ${JSON.stringify(opts.limit)}`);
      const ids = (await store.listRunIds()).reverse().slice(0, limit);
      const rows = await Promise.all(ids.map(async (id) => {
        try {
          const meta = await store.readRunMeta(id);
          const fold = foldJournal((await store.readJournal(id)).records);
          return { runId: id, runbook: meta.runbook, cluster: meta.inventory.name, status: fold.status, startedAt: meta.createdAt, durationMs: fold.finished?.durationMs ?? null };
        } catch {
          return { runId: id, runbook: '?', cluster: '?', status: 'unreadable', startedAt: '', durationMs: null };
        }
      }));
      if (opts.json) return io.out(json(rows));
      if (!rows.length) return io.out(`no runs in ${store.kind === 'file' ? stateDir : store.description}`);
      for (const r of rows) io.out(`${r.runId}  ${r.runbook.padEnd(20)} ${r.cluster.padEnd(12)} ${String(r.status).padEnd(18)} ${r.durationMs !== null ? formatDuration(r.durationMs) : ''}`);
    }));

  void Option;
  void ExitCode;
}
