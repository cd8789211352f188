/**
 * The guard on /metrics: what it saw, what it decided and what it found. On a registry of its own (`runbook guard
 * --listen`) or the chat-ops server's (guards inside `runbook serve`); every series has a `cluster` label.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface GuardMetrics {
  registry: Registry;
  requests: Counter<'cluster' | 'member' | 'kind' | 'outcome'>;
  polls: Counter<'cluster' | 'outcome'>;
  evaluations: Counter<'cluster' | 'rule' | 'result'>;
  decisions: Counter<'cluster' | 'decision'>;
  runs: Counter<'cluster' | 'outcome'>;
  findings: Gauge<'cluster' | 'code' | 'member' | 'severity'>;
  usage: Gauge<'cluster' | 'member'>;
  fragmentation: Gauge<'cluster' | 'member'>;
  history: Gauge<'cluster'>;
  lastPoll: Gauge<'cluster'>;
}

export function createGuardMetrics(opts: { registry?: Registry; defaultMetrics?: boolean } = {}): GuardMetrics {
  const registry = opts.registry ?? new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'runbook_guard_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'runbook_guard_requests_total', help: 'Requests the guard sent to members, by kind (status, metrics) and outcome (ok, error)', labelNames: ['cluster', 'member', 'kind', 'outcome'] as const, registers }),
    polls: new Counter({ name: 'runbook_guard_polls_total', help: 'Polls of a cluster, by outcome (ok: every member answered; partial; failed: none did)', labelNames: ['cluster', 'outcome'] as const, registers }),
    evaluations: new Counter({ name: 'runbook_guard_rule_evaluations_total', help: 'Rule evaluations, by result (holds, clear, error)', labelNames: ['cluster', 'rule', 'result'] as const, registers }),
    decisions: new Counter({
      name: 'runbook_guard_decisions_total',
      help: 'What the guard decided when a rule held: started, resumed, skipped-cooldown, skipped-lock, skipped-hysteresis, skipped-running, refused',
      labelNames: ['cluster', 'decision'] as const,
      registers,
    }),
    runs: new Counter({ name: 'runbook_guard_runs_total', help: 'Prevention runs the guard started or resumed, by outcome when they ended', labelNames: ['cluster', 'outcome'] as const, registers }),
    findings: new Gauge({ name: 'runbook_guard_finding', help: 'A finding the guard reports and does not fix (1 while it holds)', labelNames: ['cluster', 'code', 'member', 'severity'] as const, registers }),
    usage: new Gauge({ name: 'runbook_guard_quota_usage_ratio', help: "A member's db size over the quota it reports", labelNames: ['cluster', 'member'] as const, registers }),
    fragmentation: new Gauge({ name: 'runbook_guard_fragmentation_ratio', help: "The share of a member's db a defrag would give back", labelNames: ['cluster', 'member'] as const, registers }),
    history: new Gauge({ name: 'runbook_guard_history_revisions', help: 'Revisions written since the last compaction', labelNames: ['cluster'] as const, registers }),
    lastPoll: new Gauge({ name: 'runbook_guard_last_poll_timestamp_seconds', help: 'When the last poll of a cluster ended', labelNames: ['cluster'] as const, registers }),
  };
}
