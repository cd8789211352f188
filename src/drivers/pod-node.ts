/**
 * The machine a static pod's kubelet runs on, as the static-pod driver needs it: its files (the manifest, parked
 * or in place, and backups) and its process table. This one is this machine (node:fs and /proc); pod-node-ssh.ts is
 * a node reached over ssh.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { StepError, messageOf } from '../util/errors.ts';
import { argvMatches, getFlag, isAlive, processArgv } from './process.ts';
import { backupFile, moveNoClobber, writeFileAtomic } from './safe-fs.ts';

/** Where the manifest is: in the manifests dir, parked by stop, both (someone copied it back by hand), or nowhere. */
export type Place = 'manifests' | 'parked' | 'both' | 'missing';

/**
 * What the driver needs from the machine the kubelet runs on. On this machine: node:fs and /proc. On a node
 * reached over ssh: the member's Host, one round trip per method (every command an argv; parameters never inside
 * script text).
 */
export interface PodNode {
  readonly label: string;
  /** Where the manifest is, and the text of the one in effect (the manifests dir's when both exist). */
  look(manifest: string, parked: string): Promise<{ place: Place; file?: string; text?: string }>;
  /** Replace a file atomically (dot temp file + rename), keeping its mode. */
  replace(path: string, text: string): Promise<void>;
  /** Copy to a new `<dir>/<stem>.<stamp>[-n]<ext>`; never overwrites. Returns its path. */
  backup(file: string, dir: string, stem: string, ext: string): Promise<string>;
  /** Move to a path that must not exist (its directory is created). */
  move(from: string, to: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  /** Live processes running this argv (runsManifest), with their argv. */
  running(argv: string[]): Promise<{ pid: number; argv: string[] }[]>;
}

/** Pids of live processes whose argv `match` accepts. Reads /proc; bounded by the process table. */
export function findProcesses(match: (argv: string[]) => boolean): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const argv = processArgv(pid);
    if (argv && match(argv) && isAlive(pid)) pids.push(pid);
  }
  return pids;
}

/** Does a live argv run this manifest's command? By program and --name/--data-dir, else the whole argv. */
export function runsManifest(live: string[], argv: string[]): boolean {
  if (!argvMatches(live, argv)) return false;
  const identified = getFlag(argv, 'name') !== undefined || getFlag(argv, 'data-dir') !== undefined;
  return identified || (live.length === argv.length && live.every((a, i) => i === 0 || a === argv[i]));
}

export const localNode: PodNode = {
  label: 'this machine',
  async look(manifest, parked) {
    const [m, p] = [existsSync(manifest), existsSync(parked)];
    const place: Place = m && p ? 'both' : m ? 'manifests' : p ? 'parked' : 'missing';
    if (place === 'missing') return { place };
    const file = m ? manifest : parked;
    try {
      return { place, file, text: readFileSync(file, 'utf8') };
    } catch (err) {
      throw new StepError('failed', `cannot read ${file}: ${messageOf(err)}`);
    }
  },
  replace: async (path, text) => writeFileAtomic(path, text, statSync(path).mode & 0o777),
  backup: async (file, dir, stem, ext) => backupFile(file, dir, stem, ext),
  move: async (from, to) => moveNoClobber(from, to),
  list: async (dir) => (existsSync(dir) ? readdirSync(dir) : []),
  async running(argv) {
    return findProcesses((live) => runsManifest(live, argv)).flatMap((pid) => {
      const live = processArgv(pid);
      return live ? [{ pid, argv: live }] : [];
    });
  },
};
