/**
 * A static pod's node reached over ssh (a control-plane node seen from an admin host): one round trip per method,
 * fixed scripts whose parameters are always "$1", "$2"… (never inside script text), and the process table read from
 * that node's /proc.
 */
import { basename, join } from 'node:path';
import { StepError } from '../util/errors.ts';
import type { Host } from '../hosts/types.ts';
import { runsManifest, type PodNode } from './pod-node.ts';
import { utcStamp } from './safe-fs.ts';

/** Fixed scripts for a node over ssh; parameters are "$1", "$2"… (see src/hosts/ssh.ts). */
const NODE_SCRIPT = {
  /** `$1` manifest, `$2` parked: prints m|p|b|x, a NUL, then the content of the one in effect. */
  look:
    'if [ -e "$1" ]; then [ -e "$2" ] && printf b || printf m; printf "\\0"; cat -- "$1" || exit 1; ' +
    'elif [ -e "$2" ]; then printf "p\\0"; cat -- "$2" || exit 1; else printf "x\\0"; fi; exit 0',
  /** `$1` from, `$2` to (must not exist): exit 17 when it does. */
  move:
    'mkdir -p -- "$(dirname -- "$2")" || exit 1; [ -e "$2" ] || [ -L "$2" ] && { echo "$2 already exists" >&2; exit 17; }; ' +
    'mv -T -- "$1" "$2" || exit 1; sync -- "$(dirname -- "$2")" "$(dirname -- "$1")" 2>/dev/null; exit 0',
  /**
   * `$1` a program name as /proc/<pid>/comm shows it (basename, 15 bytes at most). Prints one line per process
   * with that name: its pid and its cmdline in base64 (NUL-separated argv, kept exact). Only those few fork.
   */
  scan:
    'for d in /proc/[0-9]*; do read -r c 2>/dev/null < "$d/comm" || continue; [ "$c" = "$1" ] || continue; ' +
    'b=$(base64 -w0 < "$d/cmdline" 2>/dev/null) || continue; [ -n "$b" ] && printf "%s %s\\n" "${d#/proc/}" "$b"; done; exit 0',
} as const;

export function remoteNode(host: Host): PodNode {
  const sh = (script: string, ...args: string[]) => host.run(['sh', '-c', script, 'sh', ...args]);
  const failed = (what: string, r: { exitCode: number; stderr: string }) =>
    new StepError('failed', `${host.label}: ${what} failed: ${r.stderr.trim().split('\n').at(-1)?.slice(0, 300) || `exit ${r.exitCode}`}`);
  return {
    label: host.label,
    async look(manifest, parked) {
      const r = await sh(NODE_SCRIPT.look, manifest, parked);
      const cut = r.stdout.indexOf('\0');
      if (r.exitCode !== 0 || cut !== 1) throw failed(`reading ${manifest}`, r);
      const place = ({ m: 'manifests', p: 'parked', b: 'both', x: 'missing' } as const)[r.stdout[0] as 'm' | 'p' | 'b' | 'x'];
      if (!place) throw failed(`reading ${manifest}`, r);
      if (place === 'missing') return { place };
      return { place, file: place === 'parked' ? parked : manifest, text: r.stdout.slice(2) };
    },
    replace: (path, text) => host.writeTextAtomic(path, text),
    backup: (file, dir, stem, ext) => host.copyToFreshName(file, join(dir, `${stem}.${utcStamp()}`), ext),
    async move(from, to) {
      const r = await sh(NODE_SCRIPT.move, from, to);
      if (r.exitCode === 17) throw new StepError('precondition', `${host.label}: not moving ${from}: ${to} already exists`, { hint: 'look at both and move one away by hand' });
      if (r.exitCode !== 0) throw failed(`moving ${from} to ${to}`, r);
    },
    list: (dir) => host.list(dir),
    async running(argv) {
      const r = await sh(NODE_SCRIPT.scan, basename(argv[0] ?? '').slice(0, 15));
      if (r.exitCode !== 0) throw failed('listing processes', r);
      return r.stdout.split('\n').flatMap((line) => {
        const [pid, b64] = line.split(' ');
        if (!pid || !b64 || !/^\d+$/.test(pid)) return [];
        const live = Buffer.from(b64, 'base64').toString('utf8').replace(/\0$/, '').split('\0');
        return runsManifest(live, argv) ? [{ pid: Number(pid), argv: live }] : [];
      });
    },
  };
}
