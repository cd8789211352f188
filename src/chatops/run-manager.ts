/**
 * Runs started from chat or alerts: load and check what was asked, start it through the executor (the same API
 * the CLI uses), keep one chat message per run up to date, gate changes behind approvals, and take decisions from
 * buttons. Everything decided is audited.
 *
 * Approval policy for runs started from chat or an alert (the executor's `extraApprovals`):
 * - `approval: required` steps always wait for a human, each on its own.
 * - A `destructive: true` runbook: every mutating step waits for its own approval.
 * - Any other runbook: the first mutating step that actually runs waits; that approval covers the run's later
 *   mutating steps (they are recorded as approved by the same person, "covered by" the first). Read-only steps
 *   (preflight) run before the pause, so the approver sees what they found.
 * - No extra gate when the runbook is `autoApprove: true` (never together with destructive) AND its config entry
 *   says `autoRun: true`.
 * The approver must be on the approver list and must not be the requester; approvals expire (denied as expired).
 */
import fs from 'node:fs';
import os from 'node:os';
import { catalog } from '../actions/catalog.ts';
import type { ActionRegistry } from '../actions/types.ts';
import type { JournalRecord } from '../events/types.ts';
import { recordDecision, resumeStoredRun, startRun, startStoredRun, type RunHandle } from '../execute/executor.ts';
import type { StateStore } from '../store/types.ts';
import { readJournal } from '../execute/journal.ts';
import { files, readRunMeta, runDir } from '../execute/run-store.ts';
import { applyRecord, foldJournal, newRunState, type RunState } from '../execute/state.ts';
import type { Inventory } from '../inventory/types.ts';
import type { Runbook } from '../runbook/model.ts';
import { loadRunbookText } from '../runbook/load.ts';
import { resolveParams } from '../runbook/params.ts';
import { ExitCode, UserError, messageOf } from '../util/errors.ts';
import { actorKey, actorLabel, mayApprove, mayRun, type Actor } from './access.ts';
import type { AuditLog } from './audit.ts';
import type { ChatSink, MessageRef } from './chat.ts';
import type { ChatopsConfig } from './config.ts';
import type { ChatopsMetrics } from './metrics.ts';
import type { RunView } from '../events/chat.ts';

export interface StartRequest {
  verb: 'run' | 'plan';
  runbook: string;
  cluster: string;
  params: Record<string, string>;
  actor: Actor;
  sink: ChatSink;
  channel: string;
  origin: 'slack' | 'mattermost' | 'alertmanager';
}

export interface RunManagerDeps {
  cfg: ChatopsConfig;
  audit: AuditLog;
  metrics: ChatopsMetrics;
  log: (msg: string) => void;
  /** Resolve a runbook name to its file (config `file`, else built-ins and RUNBOOK_PATH). */
  findRunbook: (name: string) => string;
  loadInventory: (file: string) => Inventory;
  registry: () => Promise<ActionRegistry>;
  /** Minimum time between two edits of a run's message. */
  updateIntervalMs?: number;
  /**
   * A shared store (management etcd): runs, journals, approvals and locks live there, so several `runbook serve`
   * replicas can take commands and approvals, and take over runs whose runner died (see `startTakeover`).
   */
  store?: StateStore;
  /** How this replica names itself in lock records (default host:pid). */
  replicaId?: string;
  /** Where runs taken over from a dead replica post their progress (the original message is not ours to edit). */
  takeoverSink?: { sink: ChatSink; channel: string };
}

interface ActiveRun {
  runId: string;
  runbook: Runbook;
  cluster: string;
  requester: Actor;
  dryRun: boolean;
  sink: ChatSink;
  channel: string;
  handle?: RunHandle;
  view: RunView;
  ref?: MessageRef;
  posting?: Promise<void>;
  updating?: Promise<void>;
  timer?: NodeJS.Timeout;
  dirty: boolean;
  finished: boolean;
  /** Extra gates whose approval the first human approval covers. */
  coverable: Set<string>;
  /** The first human approval in this run (covers the coverable steps after it). */
  coveredBy?: { by: string; stepId: string };
  settled: Promise<void>;
}

export interface Prepared {
  req: StartRequest;
  runbook: Runbook;
  text: string;
  params: Record<string, unknown>;
  inventoryFile: string;
}

export interface DecisionResult {
  ok: boolean;
  message: string;
}

export class RunManager {
  readonly #d: RunManagerDeps;
  readonly #active = new Map<string, ActiveRun>();
  readonly #abort = new AbortController();
  #closing = false;
  #takeoverTimer: NodeJS.Timeout | undefined;

  constructor(deps: RunManagerDeps) {
    this.#d = deps;
  }

  /** Runs of this server that have not finished. */
  activeCount(): number {
    return [...this.#active.values()].filter((r) => !r.finished).length;
  }

  /** Check a request fully (authorization, runbook, params) without starting anything. Throws UserError. */
  prepare(req: StartRequest): Prepared {
    const { cfg } = this.#d;
    if (req.origin !== 'alertmanager') {
      const auth = mayRun(cfg, req.runbook, req.cluster, req.actor, req.channel);
      if (!auth.ok) throw new UserError(auth.reason);
    } else if (!Object.hasOwn(cfg.clusters, req.cluster)) {
      throw new UserError(`unknown cluster "${req.cluster}"`);
    } else if (cfg.runbooks[req.runbook]?.clusters && !cfg.runbooks[req.runbook]!.clusters!.includes(req.cluster)) {
      throw new UserError(`runbook "${req.runbook}" may not run on cluster "${req.cluster}"`);
    }
    const access = cfg.runbooks[req.runbook];
    if (!access) throw new UserError(`runbook "${req.runbook}" is not enabled`);
    const file = access.file ?? this.#d.findRunbook(req.runbook);
    const bytes = fs.readFileSync(file);
    const text = bytes.toString('utf8');
    const runbook = loadRunbookText(text, file);
    if (runbook.name !== req.runbook) throw new UserError(`${file} holds runbook "${runbook.name}", not "${req.runbook}"`);
    const known = runbook.params.map((p) => p.name);
    const unknown = Object.keys(req.params).filter((k) => !known.includes(k));
    if (unknown.length) {
      throw new UserError(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} for ${runbook.name}; allowed: cluster${known.length ? `, ${known.join(', ')}` : ''}`);
    }
    const params = resolveParams(runbook, req.params);
    return { req, runbook, text, params, inventoryFile: cfg.clusters[req.cluster]!.inventory };
  }

  /** Which steps wait for a human when started this way (see the module comment). */
  gates(runbook: Runbook): { extra: string[]; coverable: Set<string> } {
    const access = this.#d.cfg.runbooks[runbook.name];
    if (runbook.autoApprove && !runbook.destructive && access?.autoRun) return { extra: [], coverable: new Set() };
    const mutating = runbook.steps.filter((s) => (catalog as Record<string, { mutates?: boolean }>)[s.action]?.mutates !== false && s.approval !== 'required' && s.action !== 'approve');
    const extra = mutating.map((s) => s.id);
    return { extra, coverable: runbook.destructive ? new Set() : new Set(extra) };
  }

  /**
   * Start a prepared run in the background: post the run's message, then follow it. Refusals (cluster locked,
   * too many runs, a broken inventory) are said in the channel and audited.
   */
  async launch(p: Prepared): Promise<string | undefined> {
    const { req, runbook } = p;
    const { audit, metrics, cfg } = this.#d;
    const base = { source: req.origin, user: actorKey(req.actor), channel: req.channel, runbook: runbook.name, cluster: req.cluster };
    const refuse = async (reason: string, outcome = 'refused') => {
      audit.record({ event: 'run.refused', ...base, outcome, reason });
      metrics.runs.inc({ runbook: runbook.name, outcome: 'refused' });
      await req.sink.notice(req.channel, `⛔ ${req.verb} of *${runbook.name}* on *${req.cluster}* (asked by ${actorLabel(req.actor)}) was not started: ${reason}`).catch((err) => this.#d.log(`cannot post to ${req.channel}: ${messageOf(err)}`));
      return undefined;
    };
    if (this.#closing) return refuse('the server is shutting down');
    if (req.verb === 'run' && this.activeCount() >= cfg.limits.maxConcurrentRuns) {
      return refuse(`${this.activeCount()} runs are already in progress on this server (limit ${cfg.limits.maxConcurrentRuns})`);
    }
    let inventory: Inventory;
    let registry: ActionRegistry;
    try {
      inventory = this.#d.loadInventory(p.inventoryFile);
      registry = await this.#d.registry();
    } catch (err) {
      return refuse(err instanceof UserError ? `cluster "${req.cluster}": ${err.message.split('\n')[0]}` : `internal error: ${messageOf(err)}`, 'error');
    }
    const dryRun = req.verb === 'plan';
    const gates = dryRun ? { extra: [], coverable: new Set<string>() } : this.gates(runbook);
    const state = newRunState();
    let resolveSettled!: () => void;
    const run: ActiveRun = {
      runId: '', runbook, cluster: req.cluster, requester: req.actor, dryRun, sink: req.sink, channel: req.channel,
      view: { runId: '', runbook: runbook.name, cluster: req.cluster, requestedBy: actorLabel(req.actor), dryRun, stepIds: runbook.steps.map((s) => s.id), state, notes: [] },
      dirty: false, finished: false, coverable: gates.coverable,
      settled: new Promise<void>((r) => { resolveSettled = r; }),
    };
    const onEvent = (rec: JournalRecord) => this.#onEvent(run, rec);
    try {
      const runOpts = {
        runbook, runbookText: p.text, inventory, params: p.params, registry, stateDir: cfg.stateDir,
        requestedBy: actorKey(req.actor),
        approvalTimeoutMs: cfg.approvalTimeoutMs,
        ...(gates.extra.length ? { extraApprovals: gates.extra } : {}),
        ...(dryRun ? { dryRun: true } : {}),
        signal: this.#abort.signal,
        onEvent,
      };
      run.handle = this.#d.store ? await startStoredRun({ ...runOpts, store: this.#d.store, owner: this.replicaId }) : await startRun(runOpts);
    } catch (err) {
      resolveSettled();
      if (err instanceof UserError) {
        const locked = err.exitCode === ExitCode.locked;
        return refuse(locked ? err.message.split('\n')[0]! : err.message, locked ? 'locked' : 'refused');
      }
      return refuse(`internal error: ${messageOf(err)}`, 'error');
    }
    run.runId = run.handle.runId;
    run.view.runId = run.runId;
    this.#active.set(run.runId, run);
    audit.record({ event: dryRun ? 'plan.started' : 'run.started', ...base, outcome: 'accepted', runId: run.runId, params: p.params, extraApprovals: gates.extra });
    if (!dryRun) metrics.started.inc({ runbook: runbook.name, how: 'new' });
    this.#follow(run, base, resolveSettled);
    return run.runId;
  }

  get replicaId(): string {
    return this.#d.replicaId ?? `${os.hostname()}:${process.pid}`;
  }

  /** Post the run's message and keep it current; audit the end. */
  #follow(run: ActiveRun, base: { source: string } & Record<string, unknown>, resolveSettled: () => void): void {
    const { audit } = this.#d;
    const dryRun = run.dryRun;
    run.posting = run.sink.postRun(run.channel, run.view).then(
      (ref) => { run.ref = ref; },
      (err) => this.#d.log(`run ${run.runId}: cannot post the progress message: ${messageOf(err)}`),
    );
    void run.handle!.done.then(async (result) => {
      run.finished = true;
      audit.record({ event: dryRun ? 'plan.finished' : 'run.finished', ...base, runId: run.runId, outcome: result.status, ...(result.error ? { reason: result.error.message, stepId: result.error.stepId } : {}) });
      await this.#flush(run, true);
      this.#active.delete(run.runId); // later clicks and `status` read the run's files
      resolveSettled();
    }, (err) => {
      this.#d.log(`run ${run.runId}: ${messageOf(err)}`);
      resolveSettled();
    });
  }

  /**
   * Watch the shared store for runs whose runner died: journal not finished and no lock held (its lease expired).
   * Take the lock and resume the run from the journal (a step in doubt is probed, as for `runbook resume`).
   * Only with a store; polls every `intervalMs` (default 1 s) until `drain`.
   */
  startTakeover(intervalMs = 1000): void {
    const store = this.#d.store;
    if (!store || this.#takeoverTimer) return;
    const ended = new Set<string>();
    const tick = async () => {
      if (this.#closing) return;
      for (const runId of await store.listRunIds()) {
        if (this.#closing) return;
        if (ended.has(runId) || this.#active.has(runId)) continue;
        const fold = foldJournal((await store.readJournal(runId)).records);
        if (fold.status !== 'running' && fold.status !== 'awaiting-approval') {
          if (fold.finished) ended.add(runId);
          continue;
        }
        const meta = await store.readRunMeta(runId);
        if (await store.lockHolder(meta.inventory)) continue; // its runner (or another replica) is alive
        await this.#takeOver(runId, meta);
      }
    };
    const loop = () => {
      this.#takeoverTimer = setTimeout(() => {
        tick().catch((err) => this.#d.log(`takeover scan: ${messageOf(err)}`)).finally(() => {
          if (!this.#closing) loop();
        });
      }, intervalMs);
      this.#takeoverTimer.unref?.();
    };
    loop();
  }

  async #takeOver(runId: string, meta: Awaited<ReturnType<StateStore['readRunMeta']>>): Promise<void> {
    const store = this.#d.store!;
    const { audit, metrics } = this.#d;
    const text = await store.readRunbookCopy(runId);
    const runbook = loadRunbookText(text, meta.runbookFile);
    const clusterName = this.#clusterOf(meta.inventory);
    const configured = this.#d.cfg.clusters[clusterName];
    let inventory: Inventory = meta.inventory;
    if (configured) {
      try { inventory = this.#d.loadInventory(configured.inventory); } catch { /* the stored one */ }
    }
    const registry = await this.#d.registry();
    const gates = this.gates(runbook);
    const [platform, ...idParts] = (meta.requestedBy ?? 'alertmanager:unknown').split(':');
    const requester: Actor = { platform: (platform as Actor['platform']) || 'alertmanager', id: idParts.join(':') || 'unknown' };
    const records = (await store.readJournal(runId)).records;
    let coveredBy: ActiveRun['coveredBy'];
    for (const rec of records) {
      if (rec.type === 'approval.granted' && gates.coverable.has(rec.stepId) && !rec.via.includes('covered by')) { coveredBy = { by: rec.by, stepId: rec.stepId }; break; }
    }
    const sink = this.#d.takeoverSink;
    let resolveSettled!: () => void;
    const run: ActiveRun = {
      runId, runbook, cluster: clusterName, requester, dryRun: false,
      sink: sink?.sink ?? nullSink, channel: sink?.channel ?? '',
      view: { runId, runbook: runbook.name, cluster: clusterName, requestedBy: actorLabel(requester), dryRun: false, stepIds: runbook.steps.map((s) => s.id), state: newRunState(), notes: [`♻ taken over by ${this.replicaId} after its runner stopped`] },
      dirty: false, finished: false, coverable: gates.coverable, ...(coveredBy ? { coveredBy } : {}),
      settled: new Promise<void>((r) => { resolveSettled = r; }),
    };
    for (const rec of records) applyRecord(run.view.state, rec);
    this.#active.set(runId, run);
    try {
      run.handle = await resumeStoredRun({
        stateDir: this.#d.cfg.stateDir, runId, registry, runbook, runbookText: text, inventory, store, owner: this.replicaId,
        signal: this.#abort.signal,
        onEvent: (rec) => this.#onEvent(run, rec),
      });
    } catch (err) {
      this.#active.delete(runId);
      resolveSettled();
      if (err instanceof UserError) {
        // locked by a faster replica, or ended meanwhile: nothing to do; anything else is worth a line
        if (err.exitCode !== ExitCode.locked && !/already ended/.test(err.message)) this.#d.log(`run ${runId}: cannot take it over: ${err.message.split('\n')[0]}`);
        return;
      }
      throw err;
    }
    this.#d.log(`run ${runId}: taken over (its runner's lock expired); resuming from the journal`);
    const base = { source: 'server', runbook: runbook.name, cluster: clusterName, user: meta.requestedBy ?? '' };
    audit.record({ event: 'run.takeover', ...base, outcome: 'accepted', runId, replica: this.replicaId });
    metrics.started.inc({ runbook: runbook.name, how: 'takeover' });
    this.#follow(run, base, resolveSettled);
  }

  #onEvent(run: ActiveRun, rec: JournalRecord): void {
    applyRecord(run.view.state, rec);
    if (!run.dryRun) this.#d.metrics.observe(run.runbook.name, rec);
    if (rec.type === 'approval.requested') {
      this.#d.audit.record({ event: 'approval.requested', source: 'server', runId: rec.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, ...(rec.expiresAt ? { expiresAt: new Date(rec.expiresAt).toISOString() } : {}) });
      if (run.coveredBy && run.coverable.has(rec.stepId)) {
        const { by, stepId } = run.coveredBy;
        const reason = `covered by the approval of step ${stepId}`;
        const audit = (outcome: string, error?: string) =>
          this.#d.audit.record({ event: 'approval.granted', source: 'server', runId: run.runId, stepId: rec.stepId, user: by, outcome, reason: error ? `${reason}: ${error}` : reason });
        queueMicrotask(() => {
          run.handle?.approve(rec.stepId, by, `chat (covered by the approval of ${stepId})`).then(
            (first) => audit(first ? 'accepted' : 'already-decided'),
            // Not recorded: the step keeps waiting for a decision from chat or `runbook approve`.
            (err: unknown) => audit('failed', `cannot record the decision: ${messageOf(err)}`),
          );
        });
      }
    } else if (rec.type === 'approval.granted' || rec.type === 'approval.denied') {
      // The first human approval of a gated step (from chat, or `runbook approve` in a terminal) covers the rest.
      if (rec.type === 'approval.granted' && !run.coveredBy && run.coverable.has(rec.stepId) && !rec.via.includes('covered by')) {
        run.coveredBy = { by: rec.by, stepId: rec.stepId };
      }
      if (rec.via === 'expiry') {
        this.#d.audit.record({ event: 'approval.expired', source: 'server', runId: rec.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, outcome: 'denied' });
        run.view.notes.push(`⌛ approval of \`${rec.stepId}\` expired`);
      }
    }
    this.#schedule(run);
  }

  #schedule(run: ActiveRun): void {
    run.dirty = true;
    if (run.timer || run.updating) return;
    run.timer = setTimeout(() => {
      run.timer = undefined;
      void this.#flush(run, false);
    }, this.#d.updateIntervalMs ?? 1000);
    run.timer.unref?.();
  }

  /** Edit the run's message to its current state. `final`: wait for everything and send the last state. */
  async #flush(run: ActiveRun, final: boolean): Promise<void> {
    if (run.timer && final) {
      clearTimeout(run.timer);
      run.timer = undefined;
    }
    await run.posting;
    if (final) await run.updating;
    if (run.updating) return; // the running update reschedules when it ends
    if (!run.ref || (!run.dirty && !final)) return;
    run.dirty = false;
    const ref = run.ref;
    run.updating = run.sink.updateRun(ref, run.view).catch((err) => this.#d.log(`run ${run.runId}: cannot update its message: ${messageOf(err)}`)).finally(() => {
      run.updating = undefined;
      if (run.dirty && !final) this.#schedule(run);
    });
    await run.updating;
    if (final && run.dirty) await this.#flush(run, true);
  }

  /**
   * A click on Approve or Deny. Checks: the step is waiting, the clicker is an approver, not the requester,
   * and the approval has not expired. Goes through the run's handle, or the run's files when another process
   * owns it.
   */
  async decide(runId: string, stepId: string, decision: 'granted' | 'denied', actor: Actor, via: string, channel?: string): Promise<DecisionResult> {
    const { cfg, audit } = this.#d;
    const base = { source: actor.platform, user: actorKey(actor), ...(actor.name ? { userName: actor.name } : {}), ...(channel ? { channel } : {}), runId, stepId, decision };
    const refuse = (reason: string): DecisionResult => {
      audit.record({ event: 'approval.refused', ...base, outcome: 'refused', reason });
      return { ok: false, message: reason };
    };
    const store = this.#d.store;
    let meta;
    try {
      meta = store ? await store.readRunMeta(runId) : readRunMeta(cfg.stateDir, runId);
    } catch (err) {
      return refuse(err instanceof UserError ? err.message : `cannot read run ${runId}`);
    }
    const active = this.#active.get(runId);
    const cluster = active?.cluster ?? this.#clusterOf(meta.inventory);
    let state: RunState;
    if (active) state = active.view.state;
    else if (store) state = foldJournal((await store.readJournal(runId)).records);
    else state = foldJournal(readJournal(files.journal(runDir(cfg.stateDir, runId))).records);
    const st = state.steps.get(stepId);
    if (!st || st.status !== 'awaiting-approval' || st.approval?.status !== 'requested') {
      const why = st?.approval?.status && st.approval.status !== 'requested' ? `already ${st.approval.status} by ${st.approval.by ?? '?'}` : 'not waiting for approval';
      return refuse(`step "${stepId}" of run ${runId} is ${why}`);
    }
    if (st.approval.expiresAt && Date.now() >= st.approval.expiresAt) return refuse(`the approval of step "${stepId}" has expired`);
    const auth = mayApprove(cfg, meta.runbook, cluster, actor, meta.requestedBy);
    if (!auth.ok) return refuse(auth.reason);
    const by = actorKey(actor);
    let first: boolean;
    try {
      if (store) {
        // Shared store: the decision is visible to whichever replica runs the step (it polls for it); first wins.
        first = (await store.decideApproval(runId, stepId, { decision, by, via, ...(decision === 'denied' ? { reason: `denied in chat by ${actorLabel(actor)}` } : {}) })).first;
      } else if (active?.handle && !active.finished) {
        first = await (decision === 'granted' ? active.handle.approve(stepId, by, via) : active.handle.deny(stepId, by, via, `denied in chat by ${actorLabel(actor)}`));
      } else {
        first = recordDecision(cfg.stateDir, runId, stepId, { decision, by, via, ...(decision === 'denied' ? { reason: `denied in chat by ${actorLabel(actor)}` } : {}) }).first;
      }
    } catch (err) {
      return refuse(err instanceof UserError ? err.message : `cannot record the decision: ${messageOf(err)}`);
    }
    if (!first) return refuse(`step "${stepId}" was already decided`);
    audit.record({ event: decision === 'granted' ? 'approval.granted' : 'approval.denied', ...base, runbook: meta.runbook, cluster, outcome: 'accepted' });
    if (active) {
      active.view.notes.push(`${decision === 'granted' ? '👍' : '👎'} \`${stepId}\` ${decision === 'granted' ? 'approved' : 'denied'} by ${actorLabel(actor)}`);
      this.#schedule(active);
    }
    const note = active || store ? '' : ` (run ${runId} is not running in this server: \`runbook resume ${runId}\` continues it)`;
    return { ok: true, message: `${decision === 'granted' ? 'Approved' : 'Denied'} step "${stepId}" of run ${runId}${note}` };
  }

  /** The config's name for the cluster a stored run targets (by inventory file, else by inventory name). */
  #clusterOf(inv: Inventory): string {
    for (const [name, c] of Object.entries(this.#d.cfg.clusters)) if (c.inventory === inv.source) return name;
    return inv.name;
  }

  /** Text for `status RUN`. */
  async statusText(runId: string): Promise<{ runbook: string; text: string }> {
    const { cfg, store } = this.#d;
    const meta = store ? await store.readRunMeta(runId) : readRunMeta(cfg.stateDir, runId);
    const active = this.#active.get(runId);
    const state = active ? active.view.state
      : store ? foldJournal((await store.readJournal(runId)).records)
      : foldJournal(readJournal(files.journal(runDir(cfg.stateDir, runId))).records);
    const lines = [`run \`${runId}\`: *${meta.runbook}* on *${this.#clusterOf(meta.inventory)}* — ${state.status}`];
    for (const s of meta.runbook ? stepsOf(state) : []) lines.push(s);
    if (state.status === 'failed' || state.status === 'cancelled') lines.push(`resume with: \`runbook resume ${runId}\``);
    return { runbook: meta.runbook, text: lines.join('\n') };
  }

  /**
   * Stop taking runs. With `interrupt`, runs in progress are interrupted (their journals stay consistent and
   * `runbook resume` continues them); otherwise they are waited for. Either way their last message edit is sent.
   */
  async drain(opts: { interrupt?: boolean; reason?: string } = {}): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#takeoverTimer);
    if (opts.interrupt && this.#d.store) {
      // Hand the runs over: from now on nothing of this replica reaches the shared journals (they stay as they are,
      // unfinished), the interrupted runs release their locks, and another replica resumes them at once.
      this.#d.store.fenceAll?.(`replica ${this.replicaId} is stopping; another replica takes its runs over`);
    }
    if (opts.interrupt) this.#abort.abort(opts.reason ?? 'SIGTERM');
    await Promise.all([...this.#active.values()].map((r) => r.settled));
  }

  /** For tests and the server's shutdown: a run's handle. */
  handle(runId: string): RunHandle | undefined {
    return this.#active.get(runId)?.handle;
  }

  /** Resolves when the run has ended and its final message was sent (at once for runs already settled). */
  async settled(runId: string): Promise<void> {
    await this.#active.get(runId)?.settled;
  }
}

/** Takeovers without a configured channel post nowhere. */
const nullSink: ChatSink = {
  postRun: async () => ({ channel: '', ts: '' }) as unknown as MessageRef,
  updateRun: async () => {},
  notice: async () => {},
} as unknown as ChatSink;

function stepsOf(state: RunState): string[] {
  return [...state.steps].map(([id, s]) => `• \`${id}\` ${s.status}${s.items?.length ? ` (${s.items.filter((k) => s.item.get(k)?.status === 'succeeded').length}/${s.items.length})` : ''}`);
}
