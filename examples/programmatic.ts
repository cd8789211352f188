/**
 * Using runbook as a library: the same API the CLI and the chat-ops server use.
 *   node examples/programmatic.ts path/to/cluster.yaml
 */
import fs from 'node:fs';
import { createRegistry, defaultStateDir, findRunbook, formatRecord, loadInventory, loadRunbook, resolveParams, startRun } from '../src/index.ts';

const inventoryFile = process.argv[2];
if (!inventoryFile) {
  console.error('usage: node examples/programmatic.ts cluster.yaml');
  process.exit(2);
}
const file = findRunbook('nospace-recovery');
const runbook = loadRunbook(file);
const run = await startRun({
  runbook,
  runbookText: fs.readFileSync(file, 'utf8'),
  inventory: loadInventory(inventoryFile),
  params: resolveParams(runbook, { keepRevisions: '0' }),
  registry: createRegistry(),
  stateDir: defaultStateDir(),
  dryRun: true, // a plan: read-only probes, nothing changed
  onEvent: (rec) => {
    const line = formatRecord(rec, { color: false, dryRun: true });
    if (line) console.log(line);
  },
});
const result = await run.done;
process.exitCode = result.exitCode;
