/**
 * The guards inside `runbook serve`: one per cluster whose chatops.yaml entry has `guard:`, on the server's /metrics
 * registry and audit log, saying in chat (when a channel is configured) what it starts, what blocks it and what it
 * finds. Their runs go through the executor like the CLI guard's (and the server's store, when it has one).
 */
import fs from 'node:fs';
import type { Registry } from 'prom-client';
import type { ActionRegistry } from '../actions/types.ts';
import type { AuditLog } from '../chatops/audit.ts';
import type { ChatopsConfig } from '../chatops/config.ts';
import { loadInventory } from '../inventory/load.ts';
import { findRunbook } from '../runbook/find.ts';
import { loadRunbookText } from '../runbook/load.ts';
import { resolveParams } from '../runbook/params.ts';
import type { StateStore } from '../store/types.ts';
import { messageOf } from '../util/errors.ts';
import { formatGuardEvent, type GuardEvent } from './events.ts';
import { ClusterGuard } from './guard.ts';
import { createGuardMetrics } from './metrics.ts';

export interface FleetOptions {
  cfg: ChatopsConfig;
  registry: Registry;
  audit: AuditLog;
  actions: () => Promise<ActionRegistry>;
  log: (line: string) => void;
  /** Post a line in the configured channel (undefined: no chat). */
  notify?: (text: string) => Promise<void>;
  store?: StateStore;
  operator: string;
}

/** What is worth a chat line: decisions, run ends, findings raised (not every poll). */
function chatLine(e: GuardEvent): string | undefined {
  if (e.type === 'guard.decision' || e.type === 'guard.run-ended') return `🛡 ${formatGuardEvent(e)}`;
  if (e.type === 'guard.finding' && e.state === 'raised') return `${e.finding.severity === 'critical' ? '🔴' : '🟡'} ${formatGuardEvent(e)}`;
  if (e.type === 'guard.run' && e.record.type === 'approval.requested') return `🛡 ${formatGuardEvent(e)}`;
  return undefined;
}

export function startGuards(o: FleetOptions): { guards: ClusterGuard[]; stop(reason?: string): Promise<void> } {
  const metrics = createGuardMetrics({ registry: o.registry });
  const guards: ClusterGuard[] = [];
  for (const [name, c] of Object.entries(o.cfg.clusters)) {
    if (!c.guard) continue;
    try {
      const file = findRunbook(c.guard.runbook);
      const runbookText = fs.readFileSync(file, 'utf8');
      const runbook = loadRunbookText(runbookText, file);
      const guard = new ClusterGuard({
        name, inventory: loadInventory(c.inventory), config: c.guard, runbook, runbookText, params: resolveParams(runbook, c.guard.params),
        stateDir: o.cfg.stateDir, registry: o.actions, metrics, audit: o.audit, operator: o.operator, approvalTimeoutMs: o.cfg.approvalTimeoutMs,
        ...(o.store ? { store: o.store } : {}),
        onEvent: (e) => {
          const line = formatGuardEvent(e);
          if (line && e.type !== 'guard.run') o.log(`guard ${line}`);
          const text = o.notify ? chatLine(e) : undefined;
          if (text) o.notify!(text).catch((err) => o.log(`guard [${name}]: cannot post to chat: ${messageOf(err)}`));
        },
      });
      guard.start();
      guards.push(guard);
    } catch (err) {
      // One cluster's broken inventory or runbook must not keep the server (or the other guards) from running.
      o.log(`guard [${name}]: not started: ${messageOf(err).split('\n')[0]}`);
      o.audit.record({ event: 'guard.stopped', source: 'guard', cluster: name, outcome: 'failed', reason: messageOf(err) });
    }
  }
  return {
    guards,
    async stop(reason = 'server stopping') {
      await Promise.all(guards.map((g) => g.stop(reason)));
    },
  };
}
