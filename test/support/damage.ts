/**
 * Faults that really damage, proven from the outside. `damageMember` breaks a stopped member's files the way a power
 * loss does (sized by the data in use: etcd 3.5 preallocates its db and WAL files, so a cut by file size would only
 * remove zeros); `expectEtcdRefuses` then starts etcd itself on the damaged data and asserts, from etcd's own log,
 * that it refused to run ("invalid database", "crc mismatch"): the recovery a test runs afterwards had something to
 * recover from.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { corruptFile, type DamageDone } from '../../src/rehearse/file-damage.ts';
import type { LocalClusterHandle, LocalMember } from '../../src/rehearse/local-cluster.ts';

/** What etcd logs when it cannot use damaged data (3.4.23, 3.5.16, 3.5.30 measured). */
export const ETCD_REFUSES = /failed to open database|invalid database|walpb: crc mismatch|crc mismatch/;

export function dbFile(m: LocalMember): string {
  return join(m.dataDir, 'member', 'snap', 'db');
}

/** The newest WAL segment of a member (throws when there is none: a fault that cannot land must not pass). */
export function newestWal(m: LocalMember): string {
  const dir = join(m.dataDir, 'member', 'wal');
  const newest = readdirSync(dir).filter((f) => f.endsWith('.wal')).sort().at(-1);
  if (!newest) throw new Error(`${m.name}: no WAL segment in ${dir}`);
  return join(dir, newest);
}

/** Damage a stopped member's data: its db (bbolt meta pages zeroed) and/or a WAL record in use (flipped). */
export function damageMember(m: LocalMember, what: 'db' | 'wal' | 'both' = 'db'): DamageDone[] {
  const done: DamageDone[] = [];
  if (what !== 'wal') done.push(corruptFile(dbFile(m), 'bbolt-meta'));
  if (what !== 'db') done.push(corruptFile(newestWal(m), 'wal-record'));
  return done;
}

function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Start etcd on each named (stopped, damaged) member through the process driver, wait until it exits, and return
 * what it logged; throws when one keeps running or exits without etcd's own words for damaged data.
 */
export async function expectEtcdRefuses(cluster: LocalClusterHandle, names: string[], timeoutMs = 20_000): Promise<Record<string, string>> {
  const logs: Record<string, string> = {};
  await Promise.all(
    names.map(async (name) => {
      const m = cluster.members.find((x) => x.name === name);
      if (!m) throw new Error(`expectEtcdRefuses: no member ${name}`);
      if (cluster.pid(name) !== undefined) throw new Error(`expectEtcdRefuses: ${name} is running; stop it and damage its data first`);
      const from = logSize(m.logFile);
      await cluster.start(name);
      for (const until = Date.now() + timeoutMs; cluster.pid(name) !== undefined; await sleep(50)) {
        if (Date.now() > until) {
          await cluster.kill(name, 'SIGKILL');
          throw new Error(`expectEtcdRefuses: etcd ${name} still runs ${timeoutMs} ms after its start on the damaged data: the fault did not land`);
        }
      }
      // The driver's start marks it expected to run: it is not (it refused), so forget it as a stopped member.
      await cluster.stop(name);
      const text = readFileSync(m.logFile, 'utf8').slice(from);
      const line = text.split('\n').find((l) => ETCD_REFUSES.test(l));
      if (!line) throw new Error(`expectEtcdRefuses: etcd ${name} exited without saying its data is damaged; its log:\n${text.slice(-1500)}`);
      logs[name] = line;
    }),
  );
  return logs;
}
