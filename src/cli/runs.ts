/** Commands that run runbooks or read runs: plan, run, resume, approve, deny, status, history. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { Option, type Command } from 'commander';
import type { JournalRecord } from '../common.ts';
import { formatRecord, formatReport } from '../common.ts';
import type { Inventory, RunHandle, RunReport, Runbook, StateStore, StoreFlags } from '../index.ts';
import { abortOnSignals } from './signals.ts';
import { approvalPrompt } from './approval-prompt.ts';
import { createProgress } from '../common.ts';
import { defaultStateDir, foldJournal, openStore, pinnedIdentity } from '../run-records.ts';
import { ExitCode, UserError, messageOf } from '../common.ts';
import { formatDuration } from '../common.ts';
import { json, type Io } from './output.ts';
import { setExit } from './exit.ts';
import { applyTargetFlags, credentialOptions, resolveInventory, targetOptions, type TargetOpts } from './target.ts';

/** `--store etcd://…` and its TLS files (run state in a management etcd instead of the state dir). */
function storeOptions(c: Command): Command {
  return c
    .option('--store <url>', 'keep run state in a management etcd: etcd://host:port[,host:port…] (default: the state dir)')
    .option('--store-cacert <file>', 'CA of the management etcd (makes --store use TLS)')
    .option('--store-cert <file>', 'client certificate for the management etcd')
    .option('--store-key <file>', 'client key for the management etcd');
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
const engine = () => import('../engine.ts');
const authoring = () => import('../authoring.ts');

async function readRunbook(nameOrFile: string): Promise<{ runbook: Runbook; text: string }> {
  const { findRunbook, loadRunbook } = await authoring();
  const file = findRunbook(nameOrFile);
  const bytes = fs.readFileSync(file);
  const runbook = loadRunbook(file);
  const hash = crypto.createHash('sha256').update(bytes).digest('hex');
  if (hash !== runbook.source.hash) throw new UserError(`${file} changed while it was being read; try again`);
  return { runbook, text: bytes.toString('utf8') };
}

async function loadRegistry() {
  const { createRegistry } = await engine();
  return createRegistry();
}

function operator(io: Io): string {
  return io.env.RUNBOOK_OPERATOR || `${os.userInfo().username}@${os.hostname()}`;
}

/** Print events as they happen; ask on a TTY when a step waits for approval. */
function attach(io: Io, opts: { json?: boolean; verbose?: boolean; interactive: boolean; interrupt(): void }, getHandle: () => RunHandle | undefined) {
  let dryRun = false;
  const prompt = opts.interactive
    ? approvalPrompt({
      input: process.stdin,
      output: process.stderr,
      onInterrupt: opts.interrupt,
      onAnswer: (stepId, yes) => {
        const h = getHandle();
        if (!h) return;
        const decided = yes ? h.approve(stepId, operator(io), 'cli prompt') : h.deny(stepId, operator(io), 'cli prompt', 'declined at the prompt');
        decided.then(
          (first) => {
            if (!first) io.err(`step "${stepId}" was already decided elsewhere; that decision stands`);
          },
          (err: unknown) => io.err(`could not record the decision for step "${stepId}": ${messageOf(err)} (the step still waits: \`runbook approve ${h.runId} ${stepId}\`)`),
        );
      },
    })
    : undefined;
  // On a terminal, a line that says how long the step in hand has taken (and, when the action can tell, how long
  // it should take), redrawn every second on stderr and wiped before the next event is printed.
  const progress = io.isTTY && !opts.json ? createProgress() : undefined;
  let shown = false;
  const wipe = () => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  const ticker = progress
    ? setInterval(() => {
      const line = progress.line();
      wipe();
      if (line) {
        process.stderr.write(io.color ? `\x1b[2m${line}\x1b[0m` : line);
        shown = true;
      }
    }, 1000)
    : undefined;
  ticker?.unref();
  const onEvent = (rec: JournalRecord) => {
    if (rec.type === 'run.started') dryRun = rec.dryRun;
    progress?.observe(rec);
    if (opts.json) {
      io.out(JSON.stringify(rec));
    } else {
      const line = formatRecord(rec, { color: io.color, dryRun, ...(opts.verbose ? { verbose: true } : {}) });
      if (line) {
        wipe();
        io.out(line);
      }
    }
    if (rec.type === 'approval.requested') prompt?.ask(rec.stepId, rec.message);
    if (rec.type === 'approval.granted' || rec.type === 'approval.denied') prompt?.dismiss(rec.stepId, `(decided: ${rec.type === 'approval.granted' ? 'approved' : 'denied'} by ${rec.by} via ${rec.via})`);
  };
  return {
    onEvent,
    close: () => {
      if (ticker) clearInterval(ticker);
      wipe();
      prompt?.close();
    },
  };
}

/** A value as the shell reads it back unchanged (for the commands we print to copy and paste). */
function shellWord(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** The flags that point a later `approve` / `resume` at the same runs (state dir or store) as this command. */
function whereFlags(opts: StoreFlags & { stateDir?: string }): string {
  const pairs: [string, string | undefined][] = [
    ['--state-dir', opts.stateDir], ['--store', opts.store], ['--store-cacert', opts.storeCacert], ['--store-cert', opts.storeCert], ['--store-key', opts.storeKey],
  ];
  return pairs.filter(([, v]) => v).map(([f, v]) => ` ${f} ${shellWord(v!)}`).join('');
}

/** What to type next for a run that waits at an approval: one command per line, each indented by two spaces. */
export function approvalHowTo(runId: string, stepId: string, where: string, resume = true): string {
  return [
    `  approve: runbook approve ${runId} ${stepId}${where}`,
    `  deny:    runbook deny ${runId} ${stepId}${where} --reason '…'`,
    ...(resume ? [`  then:    runbook resume ${runId}${where}`] : []),
  ].join('\n');
}

interface DriveOpts extends CommonRunOpts {
  waitForApproval?: boolean;
}

type Make = (onEvent: (r: JournalRecord) => void, signal: AbortSignal, onApproval: 'wait' | 'pause') => RunHandle | Promise<RunHandle>;

async function drive(io: Io, cmd: Command, make: Make, opts: DriveOpts) {
  const sig = abortOnSignals();
  let handle: RunHandle | undefined;
  const interactive = io.isTTY && Boolean(process.stdin.isTTY) && !opts.yes && !opts.json;
  // Nobody to ask (cron, CI, a pipe): stop at the first approval, exit 3, resumable; never block until killed.
  const onApproval = interactive || opts.yes || opts.waitForApproval ? 'wait' : 'pause';
  const view = attach(io, { ...(opts.json ? { json: true } : {}), ...(opts.verbose ? { verbose: true } : {}), interactive, interrupt: sig.interrupt }, () => handle);
  try {
    handle = await make(view.onEvent, sig.signal, onApproval);
    const result = await handle.done;
    if (result.status === 'cancelled') io.err(`runbook: run ${result.runId} interrupted; it is resumable: runbook resume ${result.runId}${whereFlags(opts)}`);
    if (result.status === 'awaiting-approval') {
      const stepId = result.error?.stepId ?? handle.pendingApprovals()[0] ?? 'STEP';
      io.err(`runbook: run ${result.runId} is waiting for approval of step "${stepId}"; with no terminal to ask, it stopped here and is resumable (exit 3):\n` +
        `${approvalHowTo(result.runId, stepId, whereFlags(opts))}\n` +
        '  (or run with --yes to approve up front, or --wait-for-approval to wait for a decision from another terminal or chat)');
    }
    setExit(cmd, result.exitCode);
  } finally {
    view.close();
    sig.dispose();
  }
}

/**
 * The inventory a resume uses: the run's own unless --inventory names another; credentials and timeouts from the
 * command line on top (a password given as `--user name:pw` is never stored with the run, so a resume asks again).
 */
async function resumeInventory(stored: Inventory, opts: TargetOpts, io: Io): Promise<Inventory | undefined> {
  const given = ['user', 'password', 'dialTimeout', 'commandTimeout'].some((k) => opts[k as keyof TargetOpts] !== undefined);
  if (opts.inventory) return resolveInventory({ ...opts, inventory: opts.inventory, endpoints: undefined }, io);
  return given ? applyTargetFlags(stored, opts, io) : undefined;
}

/** The step a run waits on, since when (its first request in the journal), and whether no process waits for it. */
function waitingApproval(records: readonly JournalRecord[], fold: ReturnType<typeof foldJournal>): { stepId: string; since: string; paused: boolean } | undefined {
  if (fold.status !== 'awaiting-approval') return undefined;
  const stepId = [...fold.steps].find(([, s]) => s.status === 'awaiting-approval' && s.approval?.status === 'requested')?.[0];
  if (!stepId) return undefined;
  const first = records.find((r) => r.type === 'approval.requested' && r.stepId === stepId);
  return { stepId, since: first?.ts ?? '?', paused: fold.finished?.status === 'awaiting-approval' };
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
    .option('--wait-for-approval', 'without a terminal to ask: wait for `runbook approve` or chat instead of stopping with exit 3')
    .option('--dry-run', 'same as `runbook plan`: read-only probes, nothing changed')
    .option('--break-lock', "take over a stale lock left by another run's dead process")
    .action(async (name: string, opts: DriveOpts & { dryRun?: boolean }, cmd: Command) => {
      const { runbook, text } = await readRunbook(name);
      const { resolveParams, parseParamFlags } = await authoring();
      const params = resolveParams(runbook, parseParamFlags(opts.param ?? []));
      const inventory = await resolveInventory(opts, io);
      const registry = await loadRegistry();
      const stateDir = stateDirOf(opts, io);
      const { startRun } = await engine();
      const runOpts = {
        runbook, runbookText: text, inventory, params, registry, stateDir,
        ...(opts.dryRun ? { dryRun: true } : {}),
        ...(opts.yes ? { autoApprove: operator(io) } : {}),
        ...(opts.breakLock ? { breakLock: true } : {}),
        requestedBy: operator(io),
      };
      await withStore(opts, io, (store) => drive(io, cmd, (onEvent, signal, onApproval) => startRun({ ...runOpts, onEvent, signal, onApproval, store }), opts));
    });

  withRunOptions(
    program
      .command('plan')
      .description('dry run: run the read-only probes for real and print what each step would do, with concrete values')
      .argument('<runbook>', 'built-in name or path to a runbook file'),
  ).action(async (name: string, opts: CommonRunOpts, cmd: Command) => {
    const { runbook, text } = await readRunbook(name);
    const { resolveParams, parseParamFlags } = await authoring();
    const params = resolveParams(runbook, parseParamFlags(opts.param ?? []));
    const inventory = await resolveInventory(opts, io);
    const registry = await loadRegistry();
    const { startRun } = await engine();
    await drive(io, cmd, (onEvent, signal) => startRun({
      runbook, runbookText: text, inventory, params, registry, stateDir: stateDirOf(opts, io), onEvent, signal, dryRun: true,
    }), opts);
  });

  credentialOptions(storeOptions(program
    .command('resume')
    .description('continue a run that crashed, was interrupted or failed; steps that took effect are not repeated')
    .argument('<run-id>')))
    .option('--state-dir <dir>', 'where runs are kept')
    .option('-y, --yes', 'approve every approval up front')
    .option('--wait-for-approval', 'without a terminal to ask: wait for `runbook approve` or chat instead of stopping with exit 3')
    .option('--json', 'print events as JSON lines')
    .option('-v, --verbose', 'print probe results too')
    .option('--inventory <file>', 'use this inventory instead of the one stored with the run')
    .option('--saved-runbook', "resume with the run's own copy of the runbook (when the file changed since)")
    .option('--mark-done <step>', 'a step left in doubt did take effect (checked by hand): record it as done', collect, [])
    .option('--rerun <step>', 'a step left in doubt did not take effect: run it again', collect, [])
    .option('--break-lock', "take over a stale lock left by another run's dead process")
    .action(async (runId: string, opts: DriveOpts & { inventory?: string; savedRunbook?: boolean; markDone: string[]; rerun: string[] }, cmd: Command) => {
      const stateDir = stateDirOf(opts, io);
      await withStore(opts, io, async (store) => {
        const meta = await store.readRunMeta(runId);
        let runbook: Runbook;
        let text: string;
        if (opts.savedRunbook) {
          text = await store.readRunbookCopy(runId);
          runbook = (await authoring()).loadRunbookText(text, store.runbookCopyName(runId));
        } else {
          if (!fs.existsSync(meta.runbookFile)) throw new UserError(`the run's runbook ${meta.runbookFile} is gone; resume with --saved-runbook`);
          ({ runbook, text } = await readRunbook(meta.runbookFile));
        }
        const inventory = await resumeInventory(meta.inventory, opts, io);
        const resolutions: Record<string, 'done' | 'rerun'> = {};
        for (const s of opts.markDone ?? []) resolutions[s] = 'done';
        for (const s of opts.rerun ?? []) resolutions[s] = 'rerun';
        const registry = await loadRegistry();
        const { resumeRun } = await engine();
        await drive(io, cmd, (onEvent, signal, onApproval) => resumeRun({
          stateDir, runId, registry, runbook, runbookText: text, onEvent, signal, onApproval, resolutions, store,
          ...(inventory ? { inventory } : {}),
          ...(opts.yes ? { autoApprove: operator(io) } : {}),
          ...(opts.breakLock ? { breakLock: true } : {}),
        }), opts);
      });
    });

  for (const verb of ['approve', 'deny'] as const) {
    storeOptions(program
      .command(verb)
      .description(verb === 'approve' ? 'approve a step that is waiting for approval' : 'deny a step that is waiting for approval (the run ends)')
      .argument('<run-id>')
      .argument('<step>'))
      .option('--state-dir <dir>', 'where runs are kept')
      .option('--reason <text>', 'why (recorded)')
      .action((runId: string, stepId: string, opts: StoreFlags & { stateDir?: string; reason?: string }) => withStore(opts, io, async (store) => {
        const meta = await store.readRunMeta(runId);
        await (await import('./approval-check.ts')).checkDecidable(store, runId, stepId, verb);
        const r = await store.decideApproval(runId, stepId, {
          decision: verb === 'approve' ? 'granted' : 'denied', by: operator(io), via: 'cli', ...(opts.reason ? { reason: opts.reason } : {}),
        });
        if (!r.first) throw new UserError(`step "${stepId}" of run ${runId} was already ${r.decision.decision} by ${r.decision.by} at ${r.decision.at}`);
        io.out(`${verb === 'approve' ? 'approved' : 'denied'} step "${stepId}" of run ${runId} (${meta.runbook}) in the ${store.description}`);
        const fold = foldJournal((await store.readJournal(runId)).records);
        if (fold.finished?.status === 'awaiting-approval') io.out(`the run stopped at this approval; continue it with: runbook resume ${runId}${whereFlags(opts)}`);
        else if (fold.status === 'awaiting-approval' || fold.status === 'running') io.out(`the running process will pick this up within a second; if it is not running any more: runbook resume ${runId}${whereFlags(opts)}`);
      }));
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
      const pinned = pinnedIdentity(read.records);
      const steps = [...fold.steps].map(([id, s]) => ({
        id, status: s.status, ...(s.items ? { items: s.items.map((k) => ({ key: k, status: s.item.get(k)?.status ?? 'pending', attempts: s.item.get(k)?.attempts ?? 0 })) } : {}),
        ...(s.item.get('')?.error ? { error: s.item.get('')!.error } : {}),
      }));
      const waiting = waitingApproval(read.records, fold);
      if (opts.json) {
        io.out(json({ runId, runbook: meta.runbook, status: fold.status, params: meta.params, cluster: meta.inventory.name, clusterId: pinned?.clusterId ?? null, steps, torn: read.torn ?? null, finished: fold.finished ?? null, waitingForApproval: waiting ?? null }));
        return;
      }
      if (waiting) {
        // A paused run (no process) and one whose process still waits take the same decision; only the first needs a resume.
        io.out(`run ${runId}: ${meta.runbook} on ${meta.inventory.name} — waiting for approval of ${waiting.stepId} since ${waiting.since}${waiting.paused ? ' (stopped there: no process waits)' : ''}`);
        io.out(approvalHowTo(runId, waiting.stepId, whereFlags(opts), waiting.paused));
      } else {
        io.out(`run ${runId}: ${meta.runbook} on ${meta.inventory.name} — ${fold.status}`);
      }
      if (pinned) io.out(`  pinned to ${pinned.clusterId ? `cluster id ${pinned.clusterId}` : `peer URLs ${pinned.peerURLs.join(', ')} (no cluster id read yet)`}`);
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
      if (!rows.length) return io.out(`no runs in the ${store.description}`);
      for (const r of rows) io.out(`${r.runId}  ${r.runbook.padEnd(20)} ${r.cluster.padEnd(12)} ${String(r.status).padEnd(18)} ${r.durationMs !== null ? formatDuration(r.durationMs) : ''}`);
    }));

  void Option;
  void ExitCode;
}
