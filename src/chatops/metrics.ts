/** Prometheus metrics for `runbook serve`, on a registry of its own (several servers may live in one process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JournalRecord } from '../common.ts';

export interface ChatopsMetrics {
  registry: Registry;
  /** Runs that ended (or were refused): one count per run. */
  runs: Counter<'runbook' | 'outcome'>;
  /** Runs started, taken over or resumed after a restart by this server. */
  started: Counter<'runbook' | 'how'>;
  stepDuration: Histogram<'runbook' | 'step' | 'status'>;
  approvalsPending: Gauge;
  requests: Counter<'route' | 'outcome'>;
  alerts: Counter<'alertname' | 'outcome'>;
  /** Feed a run's journal records. */
  observe(runbook: string, rec: JournalRecord): void;
}

export function createMetrics(opts: { defaultMetrics?: boolean; version?: string } = {}): ChatopsMetrics {
  const registry = new Registry();
  // process_* and nodejs_* under their standard names (what dashboards and alerts expect).
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  // Prometheus conventions: a run is counted once when it starts and once when it ends, in two counters, so
  // sum(runbook_runs_total) is the number of runs that ended (or were refused), never twice a run.
  const started = new Counter({
    name: 'runbook_runs_started_total',
    help: 'Runs this server started (how="new"), took over from a dead replica (how="takeover") or resumed after a restart (how="resume"), by runbook',
    labelNames: ['runbook', 'how'] as const,
    registers: [registry],
  });
  const runs = new Counter({
    name: 'runbook_runs_total',
    help: 'Runs that ended, by runbook and outcome (succeeded, failed, denied, cancelled, awaiting-approval), or were refused before starting (refused, locked)',
    labelNames: ['runbook', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'runbook_build_info',
    help: 'Always 1; the labels say which runbook and Node.js this server runs',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  }).set({ version: opts.version ?? 'unknown', node_version: process.versions.node }, 1);
  const stepDuration = new Histogram({
    name: 'runbook_step_duration_seconds',
    help: 'Duration of finished runbook steps',
    labelNames: ['runbook', 'step', 'status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800],
    registers: [registry],
  });
  const approvalsPending = new Gauge({
    name: 'runbook_approvals_pending',
    help: 'Steps waiting for an approval in runs owned by this server',
    registers: [registry],
  });
  const requests = new Counter({
    name: 'runbook_serve_requests_total',
    help: 'HTTP requests by route and outcome (ok, unauthorized, forbidden, invalid, error)',
    labelNames: ['route', 'outcome'] as const,
    registers: [registry],
  });
  const alerts = new Counter({
    name: 'runbook_alerts_total',
    help: 'Alertmanager alerts by name and what was done (started, duplicate, cooldown, unmapped, resolved, refused)',
    labelNames: ['alertname', 'outcome'] as const,
    registers: [registry],
  });
  const pending = new Map<string, Set<string>>();
  const setPending = () => approvalsPending.set([...pending.values()].reduce((n, s) => n + s.size, 0));
  return {
    registry, runs, started, stepDuration, approvalsPending, requests, alerts,
    observe(runbook, rec) {
      if (rec.type === 'step.finished' && rec.status !== 'skipped') {
        stepDuration.observe({ runbook, step: rec.stepId, status: rec.status }, rec.durationMs / 1000);
      } else if (rec.type === 'approval.requested') {
        const set = pending.get(rec.runId) ?? new Set<string>();
        set.add(rec.stepId);
        pending.set(rec.runId, set);
        setPending();
      } else if (rec.type === 'approval.granted' || rec.type === 'approval.denied') {
        pending.get(rec.runId)?.delete(rec.stepId);
        setPending();
      } else if (rec.type === 'run.finished') {
        pending.delete(rec.runId);
        setPending();
        runs.inc({ runbook, outcome: rec.status });
      }
    },
  };
}
