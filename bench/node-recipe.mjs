// (c) The hand recipe (bench/recipe.sh) done by one Node process with the etcd3 client and nothing else: no
// engine, no runbook, no journal, no checks. The same calls in the same order: status of the first endpoint
// (revision), physical compaction through it, a defrag of each endpoint one after the other, disarm every
// alarm, a test put. What it costs next to the etcdctl recipe is what any Node tool built on etcd3 pays, before
// a single safety check; the runbook's cost next to it is the engine's and the checks'.
//   node bench/node-recipe.mjs <endpoint,endpoint,…>      (TLS files from ETCDCTL_CACERT/CERT/KEY, as recipe.sh)
// Prints one "<step> <epoch seconds>" line per finished command on stderr, as recipe.sh does.
import { enableCompileCache } from 'node:module';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// The CLI caches compiled modules the same way (bin/runbook.js): no handicap for either.
enableCompileCache?.(process.env.NODE_COMPILE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'runbook', 'node-compile-cache'));
const mark = (step) => process.stderr.write(`${step} ${((performance.timeOrigin + performance.now()) / 1000).toFixed(6)}\n`);
const startMark = (performance.timeOrigin / 1000).toFixed(6); // process start, as recipe.sh's first line is bash's
const { Etcd3, AlarmAction, AlarmType } = await import('etcd3');
const endpoints = process.argv[2].split(',');
const { ETCDCTL_CACERT: ca, ETCDCTL_CERT: cert, ETCDCTL_KEY: key } = process.env;
const credentials = ca ? { rootCertificate: readFileSync(ca), certChain: readFileSync(cert), privateKey: readFileSync(key) } : undefined;
// One client per endpoint: etcd3 sends each call to a random host of its list (shared/ETCD-NOTES.md).
const clients = endpoints.map((e) => new Etcd3({ hosts: [e], ...(credentials ? { credentials } : {}) }));
const long = () => ({ deadline: Date.now() + 30 * 60_000 }); // recipe.sh's --command-timeout=30m
process.stderr.write(`start ${startMark}\n`);
try {
  const first = clients[0];
  const revision = (await first.maintenance.status(long())).header.revision;
  mark('revision');
  await first.kv.compact({ revision, physical: true }, long());
  mark('compact');
  for (const c of clients) await c.maintenance.defragment(long());
  mark('defrag');
  const { alarms } = await first.maintenance.alarm({ action: AlarmAction.Get, memberID: 0, alarm: AlarmType.None }, long());
  for (const a of alarms ?? []) await first.maintenance.alarm({ action: AlarmAction.Deactivate, memberID: a.memberID, alarm: AlarmType[a.alarm] ?? a.alarm }, long());
  mark('disarm');
  await first.put('bench/canary').value('ok').exec(long());
  mark('put');
} finally {
  for (const c of clients) c.close();
}
