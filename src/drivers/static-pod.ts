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
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Document, isMap, isSeq, parseDocument } from 'yaml';
import type { DriverSpec, MemberSpec } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { sshHostOf } from '../hosts/ssh.ts';
import type { Host } from '../hosts/types.ts';
import { argvMatches, getFlag, isAlive, processArgv, setFlag } from './process.ts';
import { backupFile, moveNoClobber, utcStamp, writeFileAtomic } from './safe-fs.ts';
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

// ---- the manifest (pure) ---------------------------------------------------------------------------------------

interface ArgvLocation {
  container: number;
  /** The list holding the flag: command, or args when the flag is there. */
  field: 'command' | 'args';
  command: string[];
  args: string[];
}

function parseManifest(text: string, file: string): Document {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new StepError('invalid', `${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  return doc;
}

function stringList(doc: Document, path: (string | number)[], file: string): string[] {
  const node = doc.getIn(path, true);
  if (node === undefined) return [];
  if (!isSeq(node)) throw new StepError('invalid', `${file}: ${path.join('.')} is not a list`);
  return node.items.map((item, i) => {
    const v = (item as { value?: unknown })?.value ?? item;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new StepError('invalid', `${file}: ${path.join('.')}[${i}] is not a string`);
    return String(v);
  });
}

/** The container that runs the process: the one named `etcd` (or `prefer`), else the first. */
function locate(doc: Document, file: string, prefer = 'etcd'): Omit<ArgvLocation, 'field'> {
  const containers = doc.getIn(['spec', 'containers'], true);
  if (!isSeq(containers) || containers.items.length === 0) throw new StepError('invalid', `${file}: no spec.containers (is this a pod manifest?)`);
  let container = containers.items.findIndex((c) => isMap(c) && c.get('name') === prefer);
  if (container < 0) container = 0;
  const command = stringList(doc, ['spec', 'containers', container, 'command'], file);
  const args = stringList(doc, ['spec', 'containers', container, 'args'], file);
  if (command.length === 0) throw new StepError('invalid', `${file}: spec.containers[${container}].command is empty; the driver needs the process's command line there`);
  return { container, command, args };
}

/** The argv the pod runs (command + args). */
export function manifestArgv(text: string, file = 'manifest'): string[] {
  const { command, args } = locate(parseManifest(text, file), file);
  return [...command, ...args];
}

/** A YAML scalar for a string that reads back as a string (numbers and booleans are quoted: pod argv must be strings). */
function scalarText(value: string): string {
  if (/[\r\n]/.test(value)) throw new StepError('invalid', `a flag value cannot contain a line break: ${JSON.stringify(value)}`);
  return new Document(value).toString({ lineWidth: 0 }).trimEnd();
}

/**
 * The manifest with `--flag=value` set in the container's argv: rewritten where it is (in `args` when it is there,
 * else in `command`, appended to `command` when absent). The text is edited in place at the changed items' source
 * ranges, so everything else (comments, indentation, quoting, key order) stays byte for byte.
 */
export function setManifestFlag(text: string, flag: string, value: string, file = 'manifest'): { text: string; changed: boolean; previous?: string } {
  const doc = parseManifest(text, file);
  const { container, command, args } = locate(doc, file);
  const previous = getFlag(['_', ...args], flag) ?? getFlag(command, flag);
  if (previous === value) return { text, changed: false, previous };
  const inArgs = getFlag(['_', ...args], flag) !== undefined;
  const field = inArgs ? 'args' : 'command';
  const before = inArgs ? args : command;
  const after = inArgs ? setFlag(['_', ...args], flag, value).slice(1) : setFlag(command, flag, value);
  const seq = doc.getIn(['spec', 'containers', container, field], true);
  if (!isSeq(seq)) throw new StepError('invalid', `${file}: spec.containers[${container}].${field} is not a list`);
  const edits: { start: number; end: number; text: string }[] = [];
  for (let i = 0; i < Math.min(before.length, after.length); i++) {
    if (before[i] === after[i]) continue;
    const range = (seq.items[i] as { range?: [number, number, number] }).range;
    if (!range) throw new StepError('invalid', `${file}: cannot locate ${field}[${i}] in the text`);
    edits.push({ start: range[0], end: range[1], text: scalarText(after[i]!) });
  }
  if (after.length > before.length) {
    const last = seq.items.at(-1) as { range?: [number, number, number] } | undefined;
    const lineStart = last?.range ? text.lastIndexOf('\n', last.range[0] - 1) + 1 : -1;
    const prefix = last?.range ? text.slice(lineStart, last.range[0]) : '';
    if (seq.flow || !/^\s*-\s+$/.test(prefix)) {
      // A flow list ([a, b]) or an unusual layout: let the YAML library write the list.
      for (let i = before.length; i < after.length; i++) doc.addIn(['spec', 'containers', container, field], after[i]);
      for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) doc.setIn(['spec', 'containers', container, field, i], after[i]);
      const out = doc.toString({ lineWidth: 0 });
      return previous === undefined ? { text: out, changed: true } : { text: out, changed: true, previous };
    }
    const lineEnd = text.indexOf('\n', last!.range![1]);
    const at = lineEnd < 0 ? text.length : lineEnd;
    edits.push({ start: at, end: at, text: after.slice(before.length).map((a) => `\n${prefix}${scalarText(a)}`).join('') });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  const check = manifestArgv(out, file);
  if (JSON.stringify(check) !== JSON.stringify(inArgs ? [...command, ...after] : [...after, ...args])) {
    throw new StepError('failed', `${file}: editing --${flag} did not give the expected argv; the manifest was not changed`);
  }
  return previous === undefined ? { text: out, changed: true } : { text: out, changed: true, previous };
}

// ---- the node: its files and its process table ----------------------------------------------------------------

/** Where the manifest is: in the manifests dir, parked by stop, both (someone copied it back by hand), or nowhere. */
type Place = 'manifests' | 'parked' | 'both' | 'missing';

/**
 * What the driver needs from the machine the kubelet runs on. On this machine: node:fs and /proc. On a node
 * reached over ssh: the member's Host, one round trip per method (every command an argv; parameters never inside
 * script text).
 */
interface PodNode {
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

const localNode: PodNode = {
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

function remoteNode(host: Host): PodNode {
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

// ---- the driver -----------------------------------------------------------------------------------------------------

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
