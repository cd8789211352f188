/**
 * The `static-pod` member driver: a kubeadm static pod (e.g. /etc/kubernetes/manifests/etcd.yaml) run by the
 * kubelet. We never talk to the kubelet or the container runtime; we change files and watch processes:
 *
 * - setFlag edits `spec.containers[<etcd>].command` (or `args` when the flag is there) in the manifest, keeping the
 *   rest of the YAML as it was, after copying the manifest to `<backupDir>/<stem>.<UTC stamp>.yaml`; the write is
 *   atomic (dot temp file + rename: the kubelet ignores dot files).
 * - stop moves the manifest out of the manifests dir to `<backupDir>/<stem>.stopped.yaml` (the kubelet then kills
 *   the pod) and waits until the process is gone; start moves it back (the kubelet starts the pod).
 * - status: the manifest is in the manifests dir AND a live process runs its command (found in /proc by program
 *   and --name/--data-dir; containers share the host's process table view). Whether the member answers is the
 *   actions' business (they ask etcd).
 *
 * The backup dir defaults to `<manifests dir>/../runbook-backups` and must not be inside the manifests dir (the
 * kubelet would run every copy there as a pod). Processes are never signalled: the kubelet owns them.
 *
 * A member with `ssh` in the inventory (a control-plane node reached from an admin host, kubeadm's usual layout)
 * gets the same driver on that node: its files are read, backed up, edited and moved over ssh, and its process is
 * looked for in that node's /proc.
 *
 * The manifest text: pod-manifest.ts; the node's files and processes: pod-node.ts (this machine), pod-node-ssh.ts.
 */
import { basename, dirname, extname, join, relative, resolve, isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DriverSpec, MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { sshHostOf } from '../hosts/ssh.ts';
import { manifestArgv, setManifestFlag } from './pod-manifest.ts';
import { localNode, type Place } from './pod-node.ts';
import { remoteNode } from './pod-node-ssh.ts';
import { getFlag } from './process.ts';
import type { DriverStopOptions, MemberDriver } from './types.ts';

export type StaticPodSpec = Extract<DriverSpec, { type: 'static-pod' }>;

const DEFAULT_STOP_WAIT_MS = 60_000;
const POLL_MS = 200;

export interface StaticPodPaths {
  /** Where the kubelet looks for it. */
  manifest: string;
  manifestsDir: string;
  backupDir: string;
  /** Where stop parks the manifest. */
  parked: string;
  stem: string;
  ext: string;
}

export function staticPodPaths(spec: StaticPodSpec, who = 'static-pod driver'): StaticPodPaths {
  if (!spec.manifest || !isAbsolute(spec.manifest)) {
    throw new StepError('invalid', `${who}: manifest must be an absolute path (got ${JSON.stringify(spec.manifest)})`);
  }
  const manifest = resolve(spec.manifest);
  const manifestsDir = dirname(manifest);
  const backupDir = resolve(spec.backupDir ?? join(manifestsDir, '..', 'runbook-backups'));
  const rel = relative(manifestsDir, backupDir);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new StepError('invalid', `${who}: backupDir ${backupDir} is inside the manifests dir ${manifestsDir}; the kubelet would run every backup as a pod`, {
      hint: 'choose a backupDir outside the manifests dir (default: <manifests dir>/../runbook-backups)',
    });
  }
  const ext = extname(manifest) || '.yaml';
  const stem = basename(manifest, extname(manifest));
  return { manifest, manifestsDir, backupDir, parked: join(backupDir, `${stem}.stopped${ext}`), stem, ext };
}

export interface StaticPodDriver extends MemberDriver {
  readonly paths: StaticPodPaths;
  /** Where the manifest is now: in the manifests dir, parked by stop, or nowhere. */
  where(): Promise<'manifests' | 'parked' | 'missing'>;
  /** Timestamped copies setFlag made, oldest first. */
  backups(): Promise<string[]>;
}

/**
 * The static-pod driver for a member on this machine, or on the node its `ssh` names (the same file moves and
 * edits, and the same process check, through the ssh host).
 */
export function staticPodDriver(member: Pick<MemberSpec, 'name' | 'driver' | 'ssh'>): StaticPodDriver {
  const spec = member.driver;
  const who = `member ${member.name}`;
  if (spec.type !== 'static-pod') throw new StepError('invalid', `${who}: not a static-pod driver`, { member: member.name });
  const paths = staticPodPaths(spec, who);
  const node = member.ssh ? remoteNode(sshHostOf(member.ssh)) : localNode;
  const on = member.ssh ? ` on ${node.label}` : '';
  const fail = (kind: StepError['kind'], message: string, hint?: string) => new StepError(kind, `${who}: ${message}`, { member: member.name, ...(hint ? { hint } : {}) });

  const missing = (what: string) =>
    fail('precondition', `${what}${on}: neither ${paths.manifest} nor ${paths.parked} exists`, 'check the manifest path in the inventory');
  const look = () => node.look(paths.manifest, paths.parked);
  /** The manifest in effect and the argv it runs; refuses when there is none. */
  const current = async (what: string): Promise<{ place: Place; file: string; text: string; argv: string[] }> => {
    const l = await look();
    if (l.place === 'missing' || l.file === undefined || l.text === undefined) throw missing(what);
    return { place: l.place, file: l.file, text: l.text, argv: manifestArgv(l.text, l.file) };
  };

  /** The command line in effect and where it was read (MemberDriver.argv). */
  const commandLine = async (): Promise<{ argv: string[]; from: string }> => {
    const { argv, file } = await current('manifest not found');
    const live = (await node.running(argv))[0];
    return live ? { argv: live.argv, from: `argv of pid ${live.pid}${on}` } : { argv, from: `manifest ${file}${on} (not running)` };
  };

  return {
    paths,
    async where() {
      const { place } = await look();
      return place === 'both' ? 'manifests' : place;
    },
    async backups() {
      const re = new RegExp(`^${paths.stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d{8}T\\d{6}Z(-\\d+)?${paths.ext.replace('.', '\\.')}$`);
      // Oldest first: by stamp, then by the -n a second backup within the same second gets (a plain sort would put
      // "…Z-2.yaml" before "…Z.yaml", since '-' sorts before '.').
      const order = (f: string): [string, number] => {
        const m = /\.(\d{8}T\d{6}Z)(?:-(\d+))?\.[^.]*$/.exec(f);
        return [m?.[1] ?? f, Number(m?.[2] ?? 1)];
      };
      return (await node.list(paths.backupDir))
        .filter((f) => re.test(f))
        .sort((a, b) => { const [sa, na] = order(a); const [sb, nb] = order(b); return sa < sb ? -1 : sa > sb ? 1 : na - nb; })
        .map((f) => join(paths.backupDir, f));
    },
    async start() {
      const { place } = await look();
      if (place === 'manifests' || place === 'both') return;
      if (place === 'missing') throw missing('cannot start');
      await node.move(paths.parked, paths.manifest);
    },
    async stop(opts: DriverStopOptions = {}) {
      const { place, argv } = await current('cannot stop');
      if (place === 'both') {
        throw fail('precondition', `both ${paths.manifest} and ${paths.parked} exist${on}; not moving one over the other`, 'compare them and move the stale one away by hand');
      }
      if (place === 'manifests') await node.move(paths.manifest, paths.parked);
      const waitMs = opts.timeoutMs ?? DEFAULT_STOP_WAIT_MS;
      const until = Date.now() + waitMs;
      for (let left = await node.running(argv); left.length > 0; left = await node.running(argv)) {
        if (Date.now() >= until) {
          throw fail('timeout', `the manifest is parked at ${paths.parked}${on} but pid ${left.map((p) => p.pid).join(', ')} still runs its command after ${formatDuration(waitMs)}`, 'is the kubelet running? (systemctl status kubelet; crictl ps)');
        }
        await sleep(POLL_MS);
      }
    },
    async status() {
      const l = await look();
      if (l.place === 'missing' || l.text === undefined || l.file === undefined) return { running: false };
      const running = await node.running(manifestArgv(l.text, l.file));
      return l.place !== 'parked' && running[0] !== undefined ? { running: true, pid: running[0].pid } : { running: false };
    },
    argv: commandLine,
    async getFlag(flag) {
      return getFlag((await commandLine()).argv, flag);
    },
    async setFlag(flag, value) {
      const { file, text } = await current('manifest not found');
      const edit = setManifestFlag(text, flag, value, file);
      if (!edit.changed) return edit.previous === undefined ? { changed: false } : { changed: false, previous: edit.previous };
      await node.backup(file, paths.backupDir, paths.stem, paths.ext);
      await node.replace(file, edit.text);
      return edit.previous === undefined ? { changed: true } : { changed: true, previous: edit.previous };
    },
  };
}
