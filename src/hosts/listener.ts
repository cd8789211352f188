/**
 * Which local process listens on a TCP port: for the message of a step that refuses because "something accepts
 * connections" on a member's port. Linux only (/proc/net/tcp{,6} for the listening socket's inode, then
 * /proc/<pid>/fd for the process holding it); best effort — processes of other users are not visible without
 * privileges, and anything unreadable yields undefined rather than an error.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { getFlag, processArgv } from '../drivers/process.ts';
import { urlHostPort } from '../etcd/ids.ts';

const TCP_LISTEN = '0A';
/** At most this many processes are looked through (a bounded scan on a busy host). */
const MAX_PIDS = 20_000;

export interface Listener {
  pid: number;
  /** For a message: the program's basename and its `--name` if any; nothing else of the command line. */
  command: string;
}

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
      const localPort = Number.parseInt(f[1]!.split(':').at(-1)!, 16);
      if (localPort === port && f[9] !== '0') inodes.add(f[9]!);
    }
  }
  return inodes;
}

/**
 * The program's name and, when it has one, its `--name` (an etcd member's): never the rest of the command line,
 * which may carry a password or a token (`--password=...`, an ssh -o, a curl header).
 */
function commandOf(pid: number): string {
  const argv = processArgv(pid);
  if (!argv?.[0]) return '?';
  const program = argv[0].split('/').at(-1)!.slice(0, 64);
  const name = getFlag(argv, 'name');
  return name && /^[\w.-]{1,64}$/.test(name) ? `${program} --name ${name}` : program;
}

/** The process listening on `port` on this machine, when it can be seen. */
export function localListener(port: number): Listener | undefined {
  if (process.platform !== 'linux' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).slice(0, MAX_PIDS);
  } catch {
    return undefined;
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return { pid: Number(p), command: commandOf(Number(p)) };
    }
  }
  return undefined;
}

/** " (pid 123: etcd --name m1)" for a URL on this machine whose port a visible process listens on, else "". */
export function describeLocalListener(url: string): string {
  const at = urlHostPort(url);
  const l = at && localListener(at.port);
  return l ? ` (pid ${l.pid}: ${l.command})` : '';
}
