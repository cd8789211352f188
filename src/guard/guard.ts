/**
 * One guard watches one cluster: poll (read-only) → facts → rules → decide (hysteresis, cooldown) → run the
 * prevention runbook through the executor (same lock, journal, approvals as any run) → report findings it never fixes.
 * Every decision goes to `onEvent` (terminal, JSON, chat), the audit log and /metrics.
 *
 * Repetitions are said once: a rule that keeps holding during a cooldown, behind another run's lock or after a run
 * that could not clear it is said when that situation starts (and counted on /metrics every poll).
 *
 * @example
 * const g = new ClusterGuard({ inventory, config: guardConfig({}, (k) => k), runbook, runbookText, stateDir, … });
 * g.start();
 * …
 * await g.stop('SIGTERM'); // a run in progress is interrupted, resumable: the next guard resumes it
 */
import type { ActionRegistry } from '../actions/types.ts';
import type { AuditLog } from '../chatops/audit.ts';
import type { JournalRecord } from '../events/types.ts';
import type { RunHandle } from '../execute/run-types.ts';
import { sleep } from '../execute/retry.ts';
import { EtcdPool } from '../etcd/pool.ts';
import type { Inventory } from '../inventory/types.ts';
import type { Runbook } from '../runbook/model.ts';
import type { StateStore } from '../store/types.ts';
import { messageOf } from '../util/errors.ts';
import { formatBytes, formatDuration } from '../util/units.ts';
import type { GuardConfig } from './config.ts';
import type { GuardEvent } from './events.ts';
import { buildFacts, type GuardFacts } from './facts.ts';
import { assessFindings, findingKey, newFindingMemory, type GuardFinding } from './findings.ts';
import { launchRun, resumeGuardRun, unfinishedRun, type Launched, type LaunchOptions } from './launch.ts';
import type { GuardMetrics } from './metrics.ts';
import { pollCluster } from './poll.ts';
import { evaluateRules, type RuleResult } from './rules.ts';
import { readClusterSettings, type ClusterSettings } from './settings.ts';
import { decide, newTriggerState, runEnded } from './trigger.ts';

export interface GuardOptions {
  /** How this cluster is named in events, metrics and the audit log (default: the inventory name). */
  name?: string;
  inventory: Inventory;
  config: GuardConfig;
  runbook: Runbook;
  runbookText: string;
  /** The runbook's params, resolved. */
  params: Record<string, unknown>;
  stateDir: string;
  store?: StateStore;
  registry: () => Promise<ActionRegistry>;
  metrics: GuardMetrics;
  audit?: AuditLog;
  /** Who runs the guard (recorded as the runs' requester: "guard (<operator>)"). */
  operator: string;
  onEvent: (e: GuardEvent) => void;
  /** Deadline of each poll request (default: the inventory's, else 5 s; never more than the interval). */
  requestTimeoutMs?: number;
  approvalTimeoutMs?: number;
}

interface ActiveRun {
  runId: string;
  rules: string[];
  handle: RunHandle;
}

export class ClusterGuard {
  readonly name: string;
  readonly #o: GuardOptions;
  readonly #abort = new AbortController();
  readonly #pool: EtcdPool;
  readonly #trigger = newTriggerState();
  readonly #memory = newFindingMemory();
  #findings = new Map<string, GuardFinding>();
  #ruleState = new Map<string, boolean>();
  #settings: ClusterSettings = { autoCompaction: null, certificates: [] };
  #settingsAt = 0;
  #run: ActiveRun | undefined;
  #runEnded: Promise<void> | undefined;
  /** Rules that held through the last successful run (hysteresis), and what was last said about waiting. */
  #ineffective: string[] = [];
  #lastSaid = '';
  #loop: Promise<void> | undefined;
  #lastFacts: GuardFacts | undefined;
  #polls = 0;

  constructor(o: GuardOptions) {
    this.#o = o;
    this.name = o.name ?? o.inventory.name;
    const timeout = Math.min(o.requestTimeoutMs ?? o.inventory.requestTimeoutMs ?? 5000, o.config.intervalMs);
    this.#pool = new EtcdPool(o.inventory, { requestTimeoutMs: timeout });
  }

  /** What the last poll saw (tests, `--once`). */
  get facts(): GuardFacts | undefined {
    return this.#lastFacts;
  }

  get findings(): GuardFinding[] {
    return [...this.#findings.values()];
  }

  get polls(): number {
    return this.#polls;
  }

  start(): void {
    if (this.#loop) return;
    const c = this.#o.config;
    this.#emit({ type: 'guard.started', cluster: this.name, intervalMs: c.intervalMs, cooldownMs: c.cooldownMs, rules: c.rules, runbook: this.#o.runbook.name }, { event: 'guard.started', intervalMs: c.intervalMs, cooldownMs: c.cooldownMs, rules: c.rules, runbook: this.#o.runbook.name });
    this.#loop = this.#main().catch((err) => {
      this.#emit({ type: 'guard.stopped', cluster: this.name, reason: `internal error: ${messageOf(err)}` }, { event: 'guard.stopped', outcome: 'failed', reason: messageOf(err) });
    });
  }

  /** Stop polling; a run in progress is interrupted (it stays resumable) and waited for. */
  async stop(reason = 'stopped'): Promise<void> {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
    await this.#loop;
    await this.#runEnded;
    this.#pool.close();
    if (this.#loop) this.#emit({ type: 'guard.stopped', cluster: this.name, reason }, { event: 'guard.stopped', outcome: 'ok', reason });
    this.#loop = undefined;
  }

  async #main(): Promise<void> {
    const signal = this.#abort.signal;
    await this.#resumeUnfinished();
    while (!signal.aborted) {
      const t0 = Date.now();
      await this.tick();
      const wait = Math.max(0, this.#o.config.intervalMs - (Date.now() - t0));
      await sleep(wait, signal).catch(() => {});
    }
  }

  /** One poll and everything that follows from it; `act: false` only looks (`--once`). Public for tests. */
  async tick(opts: { act?: boolean } = {}): Promise<GuardFacts> {
    const { config, metrics } = this.#o;
    const signal = this.#abort.signal;
    const cluster = this.name;
    if (Date.now() - this.#settingsAt >= config.slowCheckEveryMs) {
      this.#settingsAt = Date.now();
      try {
        this.#settings = await readClusterSettings(this.#o.inventory);
      } catch {
        /* keep the previous settings: flags and certificates are best effort */
      }
    }
    const samples = await pollCluster(this.#pool, {
      timeoutMs: this.#pool.requestTimeoutMs,
      signal,
      onRequest: (member, kind, ok) => metrics.requests.inc({ cluster, member, kind, outcome: ok ? 'ok' : 'error' }),
    });
    const facts = buildFacts(samples, this.#o.inventory, this.#settings.autoCompaction, Date.now());
    this.#lastFacts = facts;
    this.#polls++;
    const reachable = facts.cluster.reachable;
    metrics.polls.inc({ cluster, outcome: reachable === facts.cluster.members ? 'ok' : reachable === 0 ? 'failed' : 'partial' });
    metrics.lastPoll.set({ cluster }, facts.at / 1000);
    metrics.history.set({ cluster }, facts.cluster.history);
    for (const m of facts.members) {
      if (!m.reachable) continue;
      metrics.usage.set({ cluster, member: m.name }, m.usage);
      metrics.fragmentation.set({ cluster, member: m.name }, m.fragmentation);
    }
    this.#o.onEvent({ type: 'guard.poll', cluster, reachable, members: facts.cluster.members, summary: summarize(facts) });

    const results = evaluateRules(config.rules, facts);
    for (const r of results) {
      metrics.evaluations.inc({ cluster, rule: r.rule, result: r.error ? 'error' : r.holds ? 'holds' : 'clear' });
      const prev = this.#ruleState.get(r.rule);
      this.#ruleState.set(r.rule, r.holds);
      this.#o.onEvent({ type: 'guard.rule', cluster, rule: r.rule, holds: r.holds, ...(r.error ? { error: r.error } : {}) });
      // The audit log gets a rule's changes (holds ↔ clear), not every evaluation: it stays readable for months.
      if (prev !== r.holds) this.#o.audit?.record({ event: 'guard.rule', source: 'guard', cluster, rule: r.rule, outcome: r.holds ? 'holds' : 'clear', summary: summarize(facts), ...(r.error ? { reason: r.error } : {}) });
    }
    if (!signal.aborted && opts.act !== false) await this.#decide(results, facts);
    this.#report(facts);
    return facts;
  }

  async #decide(results: RuleResult[], facts: GuardFacts): Promise<void> {
    const { metrics, config } = this.#o;
    const cluster = this.name;
    const holding = results.filter((r) => r.holds).map((r) => r.rule);
    if (this.#run) {
      for (const r of results) if (!r.holds && !r.error) this.#trigger.disarmed.delete(r.rule);
      if (holding.length) metrics.decisions.inc({ cluster, decision: 'skipped-running' });
      return;
    }
    if (holding.length && facts.cluster.alarms.length) {
      // Prevention refuses a cluster with an alarm (its preflight would): too late, say what fits instead.
      this.#decision('refused', holding, `${holding.join(', ')} ${holding.length > 1 ? 'hold' : 'holds'}, but the cluster has a ${facts.cluster.alarms.join(', ')} alarm: too late for prevention${facts.cluster.alarms.includes('NOSPACE') ? '; recover with: runbook run nospace-recovery' : ''}`, `alarm:${facts.cluster.alarms.join(',')}`);
      return;
    }
    const d = decide(results, this.#trigger, Date.now(), config.cooldownMs);
    this.#ineffective = d.action === 'hysteresis' ? d.rules : this.#ineffective.filter((r) => holding.includes(r));
    if (d.action === 'none') {
      this.#lastSaid = '';
      return;
    }
    const because = (rules: string[]) => `${rules.join(', ')} ${rules.length > 1 ? 'hold' : 'holds'}`;
    if (d.action === 'cooldown') {
      this.#decision('skipped-cooldown', d.rules, `${because(d.rules)}; in cooldown until ${new Date(d.untilMs).toISOString()} (the last run ended ${formatDuration(Date.now() - this.#trigger.lastRunEndedAt!)} ago)`, `cooldown:${this.#trigger.lastRunEndedAt}`);
      return;
    }
    if (d.action === 'hysteresis') {
      this.#decision('skipped-hysteresis', d.rules, `${because(d.rules)} still after the last prevention run succeeded: not running again until it clears (compaction and defrag cannot bring it down; see the findings)`, `hysteresis:${d.rules.join(',')}`);
      return;
    }
    const launched = await launchRun(this.#launchOptions());
    this.#follow(launched, d.rules, 'started', `${because(d.rules)}: started`);
  }

  /** Say a decision (once while it stays the same), audit it, count it. */
  #decision(decision: Extract<GuardEvent, { type: 'guard.decision' }>['decision'], rules: string[], message: string, key: string, runId?: string): void {
    this.#o.metrics.decisions.inc({ cluster: this.name, decision });
    if (key && key === this.#lastSaid) return;
    this.#lastSaid = key;
    this.#emit({ type: 'guard.decision', cluster: this.name, decision, rules, message, ...(runId ? { runId } : {}) }, { event: 'guard.decision', outcome: decision, rules, reason: message, ...(runId ? { runId } : {}) });
  }

  #follow(launched: Launched, rules: string[], how: 'started' | 'resumed', prefix: string): void {
    if ('locked' in launched) {
      this.#decision('skipped-lock', rules, `${prefix.replace(/: (started|resuming.*)$/, '')}, but waiting: ${launched.locked}`, `lock:${launched.locked}`);
      return;
    }
    const { handle } = launched;
    const runId = handle.runId;
    this.#lastSaid = '';
    this.#decision(how, rules, `${prefix.endsWith('started') ? `${prefix} ${this.#o.runbook.name}` : prefix} (run ${runId})`, '', runId);
    this.#o.metrics.runs.inc({ cluster: this.name, outcome: how });
    this.#run = { runId, rules, handle };
    this.#runEnded = handle.done.then(
      (result) => {
        const ok = result.status === 'succeeded';
        runEnded(this.#trigger, rules, ok, Date.now());
        this.#run = undefined;
        this.#o.metrics.runs.inc({ cluster: this.name, outcome: result.status });
        const why = result.error ? `: ${result.error.stepId ? `${result.error.stepId}: ` : ''}${result.error.message}` : '';
        const resumable = result.status === 'cancelled' ? ` (resumable: the next guard resumes it, or runbook resume ${runId})` : '';
        const message = `run ${runId} ${result.status}${why}${resumable}`;
        this.#emit({ type: 'guard.run-ended', cluster: this.name, runId, status: result.status, message }, { event: 'guard.run.finished', runId, outcome: result.status, ...(result.error ? { reason: result.error.message } : {}) });
      },
      (err: unknown) => {
        runEnded(this.#trigger, rules, false, Date.now());
        this.#run = undefined;
        this.#emit({ type: 'guard.run-ended', cluster: this.name, runId, status: 'failed', message: `run ${runId}: ${messageOf(err)}` }, { event: 'guard.run.finished', runId, outcome: 'failed', reason: messageOf(err) });
      },
    );
  }

  /** A run a previous guard left unfinished (stopped, or its process died) is resumed, not started again. */
  async #resumeUnfinished(): Promise<void> {
    const runId = unfinishedRun({ runbook: this.#o.runbook, inventory: this.#o.inventory, stateDir: this.#o.stateDir, ...(this.#o.store ? { store: this.#o.store } : {}) });
    if (!runId) return;
    let launched: Launched;
    try {
      launched = await resumeGuardRun(this.#launchOptions(), runId);
    } catch (err) {
      this.#decision('refused', [], `cannot resume unfinished run ${runId}: ${messageOf(err).split('\n')[0]} (resume it by hand: runbook resume ${runId})`, `refused:${runId}`);
      return;
    }
    this.#follow(launched, [], 'resumed', `an earlier guard left run ${runId} unfinished: resuming it`);
  }

  #launchOptions(): LaunchOptions {
    const o = this.#o;
    return {
      runbook: o.runbook, runbookText: o.runbookText, params: o.params, inventory: o.inventory, stateDir: o.stateDir,
      registry: o.registry, approval: o.config.approval, requestedBy: `guard (${o.operator})`, signal: this.#abort.signal,
      onEvent: (rec: JournalRecord) => this.#o.onEvent({ type: 'guard.run', cluster: this.name, runId: rec.runId, record: rec }),
      ...(o.store ? { store: o.store } : {}),
      ...(o.approvalTimeoutMs ? { approvalTimeoutMs: o.approvalTimeoutMs } : {}),
    };
  }

  #report(facts: GuardFacts): void {
    const { metrics, config } = this.#o;
    const now = assessFindings(
      { facts, certificates: this.#settings.certificates, runActive: this.#run !== undefined, ineffective: this.#ineffective },
      this.#memory,
      { learnerMaxMs: config.learnerMaxMs, unevenMinBytes: config.unevenMinBytes },
    );
    const next = new Map(now.map((f) => [findingKey(f), f]));
    for (const [key, f] of next) {
      if (this.#findings.has(key)) continue;
      metrics.findings.set({ cluster: this.name, code: f.code, member: f.member, severity: f.severity }, 1);
      this.#emit({ type: 'guard.finding', cluster: this.name, finding: f, state: 'raised' }, { event: 'guard.finding', outcome: 'raised', code: f.code, severity: f.severity, reason: f.message, ...(f.member ? { member: f.member } : {}) });
    }
    for (const [key, f] of this.#findings) {
      if (next.has(key)) continue;
      metrics.findings.set({ cluster: this.name, code: f.code, member: f.member, severity: f.severity }, 0);
      this.#emit({ type: 'guard.finding', cluster: this.name, finding: f, state: 'cleared' }, { event: 'guard.finding', outcome: 'cleared', code: f.code, ...(f.member ? { member: f.member } : {}) });
    }
    this.#findings = next;
  }

  #emit(e: GuardEvent, audit: { event: string } & Record<string, unknown>): void {
    this.#o.audit?.record({ source: 'guard', cluster: this.name, ...audit });
    try {
      this.#o.onEvent(e);
    } catch {
      /* a display must never stop the guard */
    }
  }
}

/** "m1 12.0 MiB/16.0 MiB 75% frag 3%, …; history 1200" for --json and the audit log. */
export function summarize(f: GuardFacts): string {
  const members = f.members.map((m) => (m.reachable ? `${m.name} ${formatBytes(m.dbSize)}/${formatBytes(m.quota)} ${Math.round(m.usage * 100)}% frag ${Math.round(m.fragmentation * 100)}%` : `${m.name} down`));
  return `${members.join(', ')}; history ${f.cluster.compactionKnown ? f.cluster.history : '?'}`;
}
