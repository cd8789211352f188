/**
 * The benchmarked process: one guard per inventory given on the command line, in this one Node process (as
 * `runbook serve` hosts a guard per cluster), polling at $GUARD_INTERVAL for $GUARD_DURATION ms, then printing
 * the requests it sent per member as JSON on stdout. No rule holds on these healthy clusters, so what is measured
 * is the watching itself. The parent samples this process's CPU and RSS from /proc.
 */
import { readFileSync } from 'node:fs';
import { guardConfig } from '../../src/guard/config.ts';
import { ClusterGuard } from '../../src/guard/guard.ts';
import { createGuardMetrics } from '../../src/guard/metrics.ts';
import { loadInventory } from '../../src/inventory/load.ts';
import { findRunbook } from '../../src/runbook/find.ts';
import { loadRunbookText } from '../../src/runbook/load.ts';
import { resolveParams } from '../../src/runbook/params.ts';

const files = process.argv.slice(2);
const interval = process.env.GUARD_INTERVAL ?? '30s';
const duration = Number(process.env.GUARD_DURATION ?? '60000');
const stateDir = process.env.GUARD_STATE_DIR!;
const file = findRunbook('nospace-prevention');
const runbookText = readFileSync(file, 'utf8');
const runbook = loadRunbookText(runbookText, file);
const metrics = createGuardMetrics();
const config = guardConfig({ interval }, (k) => k);
let events = 0;
const guards = files.map((f) => new ClusterGuard({
  inventory: loadInventory(f), config, runbook, runbookText, params: resolveParams(runbook, {}), stateDir, metrics, operator: 'bench',
  registry: async () => (await import('../../src/actions/registry.ts')).createRegistry(),
  onEvent: () => { events++; },
}));
process.stdout.write('ready\n');
for (const g of guards) g.start();
await new Promise((r) => setTimeout(r, duration));
await Promise.all(guards.map((g) => g.stop('bench over')));
const requests = (await metrics.requests.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
process.stdout.write(`${JSON.stringify({ requests, polls: guards.map((g) => g.polls), events })}\n`);
