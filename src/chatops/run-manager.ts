/**
 * Runs started from chat or alerts: load and check what was asked, start it through the executor (the same API
 * the CLI uses), keep one chat message per run up to date, gate changes behind approvals, and take decisions from
 * buttons. Everything decided is audited.
 *
 * Which steps wait for a human, and which the first approval covers: src/chatops/approval-policy.ts.
 * How often the run's message is edited: src/chatops/message-updates.ts.
 * The approver must be on the approver list and must not be the requester; approvals expire (denied as expired).
 * Coverage is read back from the journal when a run is resumed (restart, takeover), so it survives both.
 *
 * One voice per run: with a shared store, a replica that lost a run's lock (frozen or partitioned past its lease,
 * then thawed) says nothing more about that run (no audit record, no chat edit, no metric): whoever holds the lock
 * now tells its ending. Runs this server started are followed in the chat-ops state (src/store/chatops-state.ts):
 * a restarted server resumes the ones a restart interrupted, and edits the same chat message.
 */
import fs from 'node:fs';
import os from 'node:os';
import { catalog, loadRunbookText, resolveParams } from '../authoring.ts';
import { resumeRun, startRun } from '../engine.ts';
import type { ActionRegistry, Inventory, JournalRecord, RunHandle, Runbook, RunMeta, RunState, StateStore } from '../index.ts';
import { applyRecord, FileStore, foldJournal, newRunState } from '../run-records.ts';
import { ExitCode, UserError, messageOf } from '../common.ts';
import { actorKey, actorLabel, mayApprove, mayRun, type Actor } from './access.ts';
import type { AuditLog } from './audit.ts';
import type { ChatSink, MessageRef } from './chat.ts';
import { ThrottledMessage } from './message-updates.ts';
import type { ChatopsConfig } from './config.ts';
import type { ChatopsMetrics } from './metrics.ts';
import type { RunView } from '../common.ts';
import type { ChatopsState, FollowedRun } from '../run-records.ts';
import type { Platform } from './chat.ts';
import { coveredVia, coveringApproval, gatesFor, isCoveringApproval } from './approval-policy.ts';

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
  /** Where runs taken over from a dead replica post their progress when their own message is unknown. */
  takeoverSink?: { sink: ChatSink; channel: string };
  /** The chat sinks by platform: a resumed run keeps editing its own message. */
  sinks?: Partial<Record<Platform, ChatSink>>;
  /** Followed runs, kept beside the runs (state dir or management etcd). */
  chatState?: ChatopsState;
  /** The flags that point `runbook approve/resume` at this server's runs (`--state-dir …` or `--store …`). */
  whereFlags?: string;
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
  /** Edits of the run's message, throttled (src/chatops/message-updates.ts). */
  message: ThrottledMessage;
  finished: boolean;
  /** Extra gates whose approval the first human approval covers. */
  coverable: Set<string>;
  /** The first human approval in this run (covers the coverable steps after it). */
  coveredBy?: { by: string; stepId: string };
  settled: Promise<void>;
  inventory: Inventory;
  /** How this run is recorded in the chat-ops state (absent for dry runs). */
  followed?: FollowedRun;
  /** The run.finished record this server emitted (its ending, if it is the one in the journal). */
  ending?: JournalRecord;
  /** Set once this server knows it no longer runs this run (lock lost): from then on it says nothing about it. */
  lost?: string;
  /** Chat side effects waiting for the ownership check (store runs), in order. */
  says: (() => unknown)[];
  saying?: Promise<void>;
  /** Why chat could not be reached at the last attempt (cleared by a success). */
  chatDown?: string;
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

  /** Where runs are kept: the shared store, else the state dir. */
  readonly #runs: StateStore;

  constructor(deps: RunManagerDeps) {
    this.#d = deps;
    this.#runs = deps.store ?? new FileStore(deps.cfg.stateDir);
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

  /** Which steps wait for a human when started this way (src/chatops/approval-policy.ts). */
  gates(runbook: Runbook): { extra: string[]; coverable: Set<string> } {
    return gatesFor(runbook, this.#d.cfg.runbooks[runbook.name]);
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
      finished: false, coverable: gates.coverable,
      settled: new Promise<void>((r) => { resolveSettled = r; }),
      inventory, says: [],
      message: undefined as unknown as ThrottledMessage,
    };
    run.message = this.#messageOf(run);
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
      run.handle = await startRun({ ...runOpts, store: this.#runs, owner: this.replicaId });
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
    if (!dryRun) {
      metrics.started.inc({ runbook: runbook.name, how: 'new' });
      run.followed = {
        runId: run.runId, cluster: req.cluster, origin: req.origin, requester: actorKey(req.actor), requesterLabel: actorLabel(req.actor),
        platform: req.sink.platform, channel: req.channel,
      };
      await this.#saveFollow(run);
    }
    this.#follow(run, base, resolveSettled);
    return run.runId;
  }

  get replicaId(): string {
    return this.#d.replicaId ?? `${os.hostname()}:${process.pid}`;
  }

  /** Post the run's message (unless it has one: a resumed run) and keep it current; audit the end. */
  #follow(run: ActiveRun, base: { source: string } & Record<string, unknown>, resolveSettled: () => void): void {
    const { audit } = this.#d;
    const dryRun = run.dryRun;
    if (run.ref) {
      run.message.schedule();
    } else {
      run.posting = run.sink.postRun(run.channel, run.view).then(
        async (ref) => {
          run.ref = ref;
          run.chatDown = undefined;
          if (run.followed) {
            run.followed.message = { channel: ref.channel, id: ref.id };
            await this.#saveFollow(run);
          }
        },
        (err) => this.#chatFailed(run, 'cannot post the progress message', err),
      );
    }
    void run.handle!.done.then(async (result) => {
      run.finished = true;
      const ours = await this.#endingIsOurs(run, result);
      if (ours) {
        await this.#runSays(run); // effects held while the store could not tell
        // Interrupted by this server's own shutdown (state dir): the next `serve` resumes it; say so.
        const handedOver = result.status === 'cancelled' && this.#closing;
        if (handedOver) run.view.notes.push(`⏸ interrupted: \`runbook serve\` is stopping; the run resumes when it starts again (or: \`runbook resume ${run.runId}\`)`);
        if (!dryRun) this.#d.metrics.observe(run.runbook.name, { ...(run.ending as JournalRecord) });
        audit.record({ event: dryRun ? 'plan.finished' : 'run.finished', ...base, runId: run.runId, outcome: result.status, ...(result.error ? { reason: result.error.message, stepId: result.error.stepId } : {}) });
        await run.message.flush(true);
        if (run.followed && !handedOver) await this.#d.chatState?.unfollow(run.runId).catch((err: unknown) => this.#d.log(`run ${run.runId}: cannot forget it in the ${this.#d.chatState!.description}: ${messageOf(err)}`));
      } else {
        run.message.cancel();
        if (this.#closing && !run.lost) this.#d.log(`run ${run.runId}: handed over (this replica is stopping); another replica or the next \`runbook serve\` resumes it`);
        else this.#lose(run, run.lost ?? result.error?.message ?? 'its ending is not the one in the journal');
      }
      this.#active.delete(run.runId); // later clicks and `status` read the run's files
      resolveSettled();
    }, (err) => {
      this.#d.log(`run ${run.runId}: ${messageOf(err)}`);
      resolveSettled();
    });
  }

  async #saveFollow(run: ActiveRun): Promise<void> {
    const cs = this.#d.chatState;
    if (!cs || !run.followed) return;
    await cs.follow(run.followed).catch((err: unknown) => this.#d.log(`run ${run.runId}: cannot record it in the ${cs.description} (a restart would not resume it): ${messageOf(err)}`));
  }

  /**
   * Is this run still ours to speak about? Always, without a shared store. With one: while our lock holds it, or
   * once it has ended with the run.finished record this server wrote. 'no': the lock went to another replica (or
   * expired): the run is marked lost, once, with a line on stderr. 'unknown': the store did not answer, or the
   * answer is too old to act on (this process was frozen or starved meanwhile): ask again later, say nothing now.
   */
  async #ours(run: ActiveRun): Promise<'yes' | 'no' | 'unknown'> {
    const store = this.#d.store;
    if (!store || run.dryRun) return 'yes';
    if (run.lost) return 'no';
    const asked = Date.now();
    let holder: Awaited<ReturnType<StateStore['lockHolder']>>;
    try {
      holder = await store.lockHolder(run.inventory);
    } catch {
      return 'unknown';
    }
    if (holder && holder.runId === run.runId && holder.pid === process.pid && holder.host === os.hostname()) {
      // A "yes" holds while our lease cannot have run out since we asked (keep-alives renew it every third of it).
      return Date.now() - asked < OWNERSHIP_VALID_MS ? 'yes' : 'unknown';
    }
    if (!holder && run.ending && await this.#endingInStore(run)) return 'yes';
    this.#lose(run, holder ? `its lock is held by ${holder.owner ?? `pid ${holder.pid} on ${holder.host}`}` : 'its lock expired');
    return 'no';
  }

  async #endingInStore(run: ActiveRun): Promise<boolean> {
    const mine = run.ending;
    if (!mine || !this.#d.store) return false;
    try {
      const records = (await this.#d.store.readJournal(run.runId)).records;
      const there = records.find((r) => r.seq === mine.seq);
      return there?.type === 'run.finished' && there.ts === mine.ts;
    } catch {
      return false;
    }
  }

  /** After the run's handle settled: is its ending the one the journal keeps? */
  async #endingIsOurs(run: ActiveRun, result: { status: string }): Promise<boolean> {
    if (!this.#d.store || run.dryRun) return true;
    if (run.lost) return false;
    await run.saying;
    if (run.lost) return false;
    void result;
    return this.#endingInStore(run);
  }

  #lose(run: ActiveRun, why: string): void {
    if (run.lost) return;
    run.lost = why;
    run.says.length = 0;
    run.message.cancel();
    this.#d.log(`run ${run.runId}: this replica lost the run's lock (${why}); another runner carries it on: this replica says nothing more about it (no audit, chat or metrics)`);
  }

  /** Do `effect` if the run is still ours (checked against the store before each batch; at once without a store). */
  #say(run: ActiveRun, effect: () => unknown): void {
    if (!this.#d.store || run.dryRun) {
      effect();
      return;
    }
    if (run.lost) return;
    run.says.push(effect);
    if (run.saying) return;
    run.saying = (async () => {
      while (run.says.length && !run.lost) {
        const verdict = await this.#ours(run);
        if (verdict === 'no') return;
        if (verdict === 'unknown') {
          if (run.finished) return; // the ending decides (see #follow); the held effects stay queued
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        await this.#runSays(run);
      }
    })().finally(() => { run.saying = undefined; });
  }

  async #runSays(run: ActiveRun): Promise<void> {
    for (const e of run.says.splice(0)) {
      try { await e(); } catch (err) { this.#d.log(`run ${run.runId}: ${messageOf(err)}`); }
    }
  }

  /** Chat could not be reached: say so on stderr with what a person at a terminal can do instead. */
  #chatFailed(run: ActiveRun, what: string, err: unknown): void {
    const first = !run.chatDown;
    run.chatDown = messageOf(err).split('\n')[0]!;
    const pending = [...run.view.state.steps].find(([, st]) => st.status === 'awaiting-approval' && st.approval?.status === 'requested')?.[0];
    this.#d.log(`run ${run.runId} (${run.runbook.name} on ${run.cluster}): ${what}: chat is unreachable (${run.chatDown})${pending ? `; ${this.#approveHint(run.runId, pending)}` : first ? `; follow it with: runbook status ${run.runId}${this.#where()}` : ''}`);
  }

  #where(): string {
    return this.#d.whereFlags ? ` ${this.#d.whereFlags}` : '';
  }

  #approveHint(runId: string, stepId: string): string {
    return `step ${stepId} waits for approval: approve from a terminal with: runbook approve ${runId} ${stepId}${this.#where()} --reason "…" (or deny: runbook deny ${runId} ${stepId}${this.#where()} --reason "…")`;
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

  async #takeOver(runId: string, meta: RunMeta): Promise<void> {
    const store = this.#d.store!;
    await this.#resume(runId, meta, await store.readRunbookCopy(runId), (await store.readJournal(runId)).records, 'takeover');
  }

  /**
   * At start (state dir): resume the runs this server followed that a restart interrupted (ended `cancelled` by
   * its shutdown, or left running by a kill). A run that cannot be resumed is reported in its channel and audited.
   * With a shared store the takeover scan does this (a restarted replica's runs have no lock holder).
   */
  async resumeFollowed(): Promise<void> {
    const cs = this.#d.chatState;
    if (!cs || this.#d.store) return;
    const stateDir = this.#d.cfg.stateDir;
    for (const f of await cs.followed()) {
      if (this.#closing) return;
      if (this.#active.has(f.runId)) continue;
      let meta: RunMeta;
      let text: string;
      let records: JournalRecord[];
      try {
        meta = await this.#runs.readRunMeta(f.runId);
        text = await this.#runs.readRunbookCopy(f.runId);
        records = (await this.#runs.readJournal(f.runId)).records;
      } catch (err) {
        await this.#cannotResume(f, `its files cannot be read: ${messageOf(err).split('\n')[0]}`);
        continue;
      }
      const fold = foldJournal(records);
      if (fold.finished && fold.status !== 'cancelled') {
        await cs.unfollow(f.runId).catch(() => {}); // ended while this server was away (e.g. `runbook resume`)
        continue;
      }
      await this.#resume(f.runId, meta, text, records, 'restart');
    }
  }

  async #cannotResume(f: FollowedRun, why: string): Promise<void> {
    const { audit, log, sinks } = this.#d;
    log(`run ${f.runId}: cannot resume it after the restart: ${why}; resume it by hand: runbook resume ${f.runId}${this.#where()}`);
    audit.record({ event: 'run.resume-refused', source: 'server', runId: f.runId, cluster: f.cluster, outcome: 'refused', reason: why });
    const sink = f.platform ? sinks?.[f.platform] : undefined;
    await sink?.notice(f.channel, `⚠️ run \`${f.runId}\` on *${f.cluster}* was interrupted by a restart of \`runbook serve\` and cannot be resumed: ${why}. Resume it by hand: \`runbook resume ${f.runId}\``).catch((err: unknown) => log(`run ${f.runId}: cannot post to ${f.channel}: ${messageOf(err)}`));
    await this.#d.chatState?.unfollow(f.runId).catch(() => {});
  }

  /** Resume a stored run in this server (after a restart, or taking over a dead replica's run). */
  async #resume(runId: string, meta: RunMeta, text: string, records: readonly JournalRecord[], how: 'takeover' | 'restart'): Promise<void> {
    const store = this.#d.store;
    const { audit, metrics } = this.#d;
    const followed = (await this.#d.chatState?.followed().catch(() => []))?.find((f) => f.runId === runId);
    let runbook: Runbook;
    try {
      runbook = loadRunbookText(text, meta.runbookFile);
    } catch (err) {
      if (followed && how === 'restart') await this.#cannotResume(followed, messageOf(err).split('\n')[0]!);
      return;
    }
    const clusterName = followed?.cluster ?? this.#clusterOf(meta.inventory);
    const configured = this.#d.cfg.clusters[clusterName];
    let inventory: Inventory = meta.inventory;
    if (configured) {
      try { inventory = this.#d.loadInventory(configured.inventory); } catch { /* the stored one */ }
    }
    const registry = await this.#d.registry();
    const gates = this.gates(runbook);
    const [platform, ...idParts] = (meta.requestedBy ?? 'alertmanager:unknown').split(':');
    const requester: Actor = { platform: (platform as Actor['platform']) || 'alertmanager', id: idParts.join(':') || 'unknown' };
    const coveredBy = coveringApproval(records, gates.coverable);
    // Its own message when it is known (same bot, same channel), else the takeover channel.
    const ownSink = followed?.platform ? this.#d.sinks?.[followed.platform] : undefined;
    const sink = ownSink ? { sink: ownSink, channel: followed!.channel } : this.#d.takeoverSink;
    let resolveSettled!: () => void;
    const note = how === 'takeover' ? `♻ taken over by ${this.replicaId} after its runner stopped` : `↻ resumed by ${this.replicaId} after \`runbook serve\` restarted`;
    const run: ActiveRun = {
      runId, runbook, cluster: clusterName, requester, dryRun: false,
      sink: sink?.sink ?? nullSink, channel: sink?.channel ?? '',
      view: { runId, runbook: runbook.name, cluster: clusterName, requestedBy: followed?.requesterLabel ?? actorLabel(requester), dryRun: false, stepIds: runbook.steps.map((s) => s.id), state: newRunState(), notes: [note] },
      finished: false, coverable: gates.coverable, ...(coveredBy ? { coveredBy } : {}),
      settled: new Promise<void>((r) => { resolveSettled = r; }),
      inventory, says: [],
      ...(followed ? { followed } : {}),
      ...(ownSink && followed?.message ? { ref: { channel: followed.message.channel, id: followed.message.id } } : {}),
      message: undefined as unknown as ThrottledMessage,
    };
    run.message = this.#messageOf(run);
    for (const rec of records) applyRecord(run.view.state, rec);
    this.#active.set(runId, run);
    try {
      run.handle = await resumeRun({
        stateDir: this.#d.cfg.stateDir, runId, registry, runbook, runbookText: text, inventory, store, owner: this.replicaId,
        signal: this.#abort.signal,
        onEvent: (rec) => this.#onEvent(run, rec),
      });
    } catch (err) {
      this.#active.delete(runId);
      resolveSettled();
      if (err instanceof UserError) {
        if (how === 'restart' && followed) {
          await this.#cannotResume(followed, err.message.split('\n')[0]!);
          return;
        }
        // locked by a faster replica, or ended meanwhile: nothing to do; anything else is worth a line
        if (err.exitCode !== ExitCode.locked && !/already ended/.test(err.message)) this.#d.log(`run ${runId}: cannot take it over: ${err.message.split('\n')[0]}`);
        return;
      }
      throw err;
    }
    this.#d.log(how === 'takeover'
      ? `run ${runId}: taken over (its runner's lock expired); resuming from the journal`
      : `run ${runId}: resumed after the restart (interrupted by it); resuming from the journal`);
    const base = { source: 'server', runbook: runbook.name, cluster: clusterName, user: meta.requestedBy ?? '' };
    audit.record({ event: how === 'takeover' ? 'run.takeover' : 'run.resumed', ...base, outcome: 'accepted', runId, replica: this.replicaId });
    metrics.started.inc({ runbook: runbook.name, how: how === 'takeover' ? 'takeover' : 'resume' });
    this.#follow(run, base, resolveSettled);
  }

  #onEvent(run: ActiveRun, rec: JournalRecord): void {
    applyRecord(run.view.state, rec);
    if (rec.type === 'run.finished') {
      run.ending = rec; // counted, audited and shown once the handle settles, if this ending is the one kept
      return;
    }
    // The first human approval of a gated step (from chat, or `runbook approve` in a terminal) covers the rest.
    if (!run.coveredBy && isCoveringApproval(rec, run.coverable)) {
      run.coveredBy = { by: rec.by, stepId: rec.stepId };
    }
    this.#say(run, () => {
      if (!run.dryRun) this.#d.metrics.observe(run.runbook.name, rec);
      if (rec.type === 'approval.requested') this.#onApprovalRequested(run, rec);
      else if (rec.type === 'approval.granted' || rec.type === 'approval.denied') return this.#auditDecision(run, rec);
    });
    run.message.schedule();
  }

  #onApprovalRequested(run: ActiveRun, rec: Extract<JournalRecord, { type: 'approval.requested' }>): void {
    this.#d.audit.record({ event: 'approval.requested', source: 'server', runId: rec.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, ...(rec.expiresAt ? { expiresAt: new Date(rec.expiresAt).toISOString() } : {}) });
    if (run.chatDown) this.#d.log(`run ${run.runId} (${run.runbook.name} on ${run.cluster}): chat is unreachable (${run.chatDown}); ${this.#approveHint(run.runId, rec.stepId)}`);
    if (run.coveredBy && run.coverable.has(rec.stepId)) {
      const { by, stepId } = run.coveredBy;
      const reason = `covered by the approval of step ${stepId} by ${by}`;
      const audit = (outcome: string, error?: string) =>
        this.#d.audit.record({ event: 'approval.granted', source: 'coverage', runId: run.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, user: by, via: coveredVia(stepId), outcome, reason: error ? `${reason}: ${error}` : reason });
      queueMicrotask(() => {
        if (run.lost) return;
        run.handle?.approve(rec.stepId, by, coveredVia(stepId)).then(
          (first) => audit(first ? 'accepted' : 'already-decided'),
          // Not recorded: the step keeps waiting for a decision from chat or `runbook approve`.
          (err: unknown) => audit('failed', `cannot record the decision: ${messageOf(err)}`),
        );
      });
    }
  }

  /**
   * Decisions this server did not take itself reach the audit log here, from the run's journal: `runbook approve`
   * and `deny` in a terminal (with their --reason), a prompt, `--yes`, and expiry. Chat decisions are audited where
   * the click or command was taken (any replica), covered grants where they are made.
   */
  async #auditDecision(run: ActiveRun, rec: Extract<JournalRecord, { type: 'approval.granted' | 'approval.denied' }>): Promise<void> {
    const via = rec.via;
    if (CHAT_VIAS.has(via) || via.includes('covered by')) return;
    const granted = rec.type === 'approval.granted';
    if (via === 'expiry') {
      run.view.notes.push(`⌛ approval of \`${rec.stepId}\` expired`);
      this.#d.audit.record({ event: 'approval.denied', source: 'expiry', runId: run.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, user: rec.by, via, outcome: 'denied', reason: (rec.type === 'approval.denied' ? rec.reason : undefined) ?? 'approval expired' });
      return;
    }
    let reason = rec.type === 'approval.denied' ? rec.reason : undefined;
    if (reason === undefined) {
      // The journal record of a grant has no reason: the decision (approval file or store key) keeps it.
      const decision = await this.#runs.readApproval(run.runId, rec.stepId).catch(() => undefined);
      reason = decision?.reason;
    }
    const source = via.startsWith('cli') ? 'cli' : via;
    reason ??= via === 'cli --yes' ? 'approved up front (--yes)' : via === 'cli prompt' ? `${granted ? 'approved' : 'denied'} at a terminal prompt` : 'no reason given';
    this.#d.audit.record({ event: granted ? 'approval.granted' : 'approval.denied', source, runId: run.runId, stepId: rec.stepId, runbook: run.runbook.name, cluster: run.cluster, user: rec.by, via, outcome: 'accepted', reason });
    run.view.notes.push(`${granted ? '👍' : '👎'} \`${rec.stepId}\` ${granted ? 'approved' : 'denied'} by ${rec.by} (${via})`);
  }

  #messageOf(run: ActiveRun): ThrottledMessage {
    return new ThrottledMessage({
      intervalMs: this.#d.updateIntervalMs ?? 1000,
      ready: async () => { await run.posting; return Boolean(run.ref); },
      send: (validUntil) => run.sink.updateRun(run.ref!, run.view, validUntil === undefined ? undefined : { validUntil }),
      ...(this.#d.store && !run.dryRun ? { mayEdit: () => this.#ours(run) } : {}),
      validMs: OWNERSHIP_VALID_MS,
      quiet: () => Boolean(run.lost || run.ending), // an ended run gets its last edit when it settles
      onSent: () => { run.chatDown = undefined; },
      onError: (err) => this.#chatFailed(run, 'cannot update its message', err),
    });
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
    let meta;
    try {
      meta = await this.#runs.readRunMeta(runId);
    } catch (err) {
      return refuse(err instanceof UserError ? err.message : `cannot read run ${runId}`);
    }
    const active = this.#active.get(runId);
    const cluster = active?.cluster ?? this.#clusterOf(meta.inventory);
    let state: RunState;
    if (active) state = active.view.state;
    else state = foldJournal((await this.#runs.readJournal(runId)).records);
    const st = state.steps.get(stepId);
    if (!st || st.status !== 'awaiting-approval' || st.approval?.status !== 'requested') {
      const why = st?.approval?.status && st.approval.status !== 'requested' ? `already ${st.approval.status} by ${st.approval.by ?? '?'}` : 'not waiting for approval';
      return refuse(`step "${stepId}" of run ${runId} is ${why}`);
    }
    if (st.approval.expiresAt && Date.now() >= st.approval.expiresAt) return refuse(`the approval of step "${stepId}" has expired`);
    const auth = mayApprove(cfg, meta.runbook, cluster, actor, meta.requestedBy);
    if (!auth.ok) return refuse(auth.reason);
    const by = actorKey(actor);
    const reasonText = `${decision === 'granted' ? 'approved' : 'denied'} in chat by ${actorLabel(actor)}`;
    let first: boolean;
    try {
      if (active?.handle && !active.finished) {
        // Through the run: recorded in its store, and its waiting step woken at once.
        first = await (decision === 'granted' ? active.handle.approve(stepId, by, via) : active.handle.deny(stepId, by, via, reasonText));
      } else {
        // In the store the run is kept in: whichever process runs the step (another replica, a resumed CLI) polls it; first wins.
        first = (await this.#runs.decideApproval(runId, stepId, { decision, by, via, reason: reasonText })).first;
      }
    } catch (err) {
      return refuse(err instanceof UserError ? err.message : `cannot record the decision: ${messageOf(err)}`);
    }
    if (!first) return refuse(`step "${stepId}" was already decided`);
    audit.record({ event: decision === 'granted' ? 'approval.granted' : 'approval.denied', ...base, runbook: meta.runbook, cluster, via, outcome: 'accepted', reason: reasonText });
    if (active) {
      active.view.notes.push(`${decision === 'granted' ? '👍' : '👎'} \`${stepId}\` ${decision === 'granted' ? 'approved' : 'denied'} by ${actorLabel(actor)}`);
      active.message.schedule();
    }
    const note = active || this.#d.store ? '' : ` (run ${runId} is not running in this server: \`runbook resume ${runId}\` continues it)`;
    return { ok: true, message: `${decision === 'granted' ? 'Approved' : 'Denied'} step "${stepId}" of run ${runId}${note}` };
  }

  /** The config's name for the cluster a stored run targets (by inventory file, else by inventory name). */
  #clusterOf(inv: Inventory): string {
    for (const [name, c] of Object.entries(this.#d.cfg.clusters)) if (c.inventory === inv.source) return name;
    return inv.name;
  }

  /** Text for `status RUN`. */
  async statusText(runId: string): Promise<{ runbook: string; text: string }> {
    const meta = await this.#runs.readRunMeta(runId);
    const active = this.#active.get(runId);
    const state = active ? active.view.state : foldJournal((await this.#runs.readJournal(runId)).records);
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

/**
 * How long a "this replica holds the run's lock" answer may be acted on. Well under the lease TTL (10 s by default,
 * 3 s in tests): keep-alives renew the lease every third of it, so the lock cannot have moved within this time.
 */
const OWNERSHIP_VALID_MS = 800;

/** Decisions taken in chat (audited where they are taken, by whichever replica took them). */
const CHAT_VIAS = new Set(['slack', 'mattermost', 'slack command', 'mattermost command']);

/** Takeovers without a configured channel post nowhere. */
const nullSink: ChatSink = {
  postRun: async () => ({ channel: '', ts: '' }) as unknown as MessageRef,
  updateRun: async () => {},
  notice: async () => {},
} as unknown as ChatSink;

function stepsOf(state: RunState): string[] {
  return [...state.steps].map(([id, s]) => `• \`${id}\` ${s.status}${s.items?.length ? ` (${s.items.filter((k) => s.item.get(k)?.status === 'succeeded').length}/${s.items.length})` : ''}`);
}
