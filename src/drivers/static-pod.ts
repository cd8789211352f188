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
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Document, isMap, isSeq, parseDocument } from 'yaml';
import type { DriverSpec, MemberSpec } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { argvMatches, getFlag, isAlive, processArgv, setFlag } from './process.ts';
import { backupFile, moveNoClobber, writeFileAtomic } from './safe-fs.ts';
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

// ---- processes ------------------------------------------------------------------------------------------------------

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

// ---- the driver -----------------------------------------------------------------------------------------------------

export interface StaticPodDriver extends MemberDriver {
  readonly paths: StaticPodPaths;
  /** Where the manifest is now: in the manifests dir, parked by stop, or nowhere. */
  where(): 'manifests' | 'parked' | 'missing';
  /** Timestamped copies setFlag made, oldest first. */
  backups(): string[];
}

export function staticPodDriver(member: Pick<MemberSpec, 'name' | 'driver' | 'ssh'>): StaticPodDriver {
  const spec = member.driver;
  const who = `member ${member.name}`;
  if (spec.type !== 'static-pod') throw new StepError('invalid', `${who}: not a static-pod driver`, { member: member.name });
  if (member.ssh) {
    throw new StepError('unimplemented', `${who}: the static-pod driver edits manifests on this machine only (ssh is set)`, { member: member.name });
  }
  const paths = staticPodPaths(spec, who);
  const fail = (kind: StepError['kind'], message: string, hint?: string) => new StepError(kind, `${who}: ${message}`, { member: member.name, ...(hint ? { hint } : {}) });

  const where = (): 'manifests' | 'parked' | 'missing' => (existsSync(paths.manifest) ? 'manifests' : existsSync(paths.parked) ? 'parked' : 'missing');
  const currentFile = (): string => {
    const w = where();
    if (w === 'missing') throw fail('precondition', `manifest not found: neither ${paths.manifest} nor ${paths.parked} exists`, 'check the manifest path in the inventory');
    return w === 'manifests' ? paths.manifest : paths.parked;
  };
  const readArgv = (file: string): string[] => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw fail('failed', `cannot read ${file}: ${messageOf(err)}`);
    }
    return manifestArgv(text, file);
  };
  const pids = (argv: string[]): number[] => findProcesses((live) => runsManifest(live, argv));

  return {
    paths,
    where,
    backups() {
      if (!existsSync(paths.backupDir)) return [];
      const re = new RegExp(`^${paths.stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d{8}T\\d{6}Z(-\\d+)?${paths.ext.replace('.', '\\.')}$`);
      return readdirSync(paths.backupDir).filter((f) => re.test(f)).sort().map((f) => join(paths.backupDir, f));
    },
    async start() {
      const w = where();
      if (w === 'manifests') return;
      if (w === 'missing') throw fail('precondition', `cannot start: neither ${paths.manifest} nor ${paths.parked} exists`);
      moveNoClobber(paths.parked, paths.manifest);
    },
    async stop(opts: DriverStopOptions = {}) {
      const w = where();
      if (w === 'missing') throw fail('precondition', `cannot stop: neither ${paths.manifest} nor ${paths.parked} exists`);
      const argv = readArgv(w === 'manifests' ? paths.manifest : paths.parked);
      if (w === 'manifests') {
        if (existsSync(paths.parked)) {
          throw fail('precondition', `both ${paths.manifest} and ${paths.parked} exist; not moving one over the other`, 'compare them and move the stale one away by hand');
        }
        moveNoClobber(paths.manifest, paths.parked);
      }
      const waitMs = opts.timeoutMs ?? DEFAULT_STOP_WAIT_MS;
      const until = Date.now() + waitMs;
      for (let left = pids(argv); left.length > 0; left = pids(argv)) {
        if (Date.now() >= until) {
          throw fail('timeout', `the manifest is parked at ${paths.parked} but pid ${left.join(', ')} still runs its command after ${formatDuration(waitMs)}`, 'is the kubelet running? (systemctl status kubelet; crictl ps)');
        }
        await sleep(POLL_MS);
      }
    },
    async status() {
      const w = where();
      if (w === 'missing') return { running: false };
      const running = pids(readArgv(w === 'manifests' ? paths.manifest : paths.parked));
      return w === 'manifests' && running[0] !== undefined ? { running: true, pid: running[0] } : { running: false };
    },
    async getFlag(flag) {
      const argv = readArgv(currentFile());
      const pid = pids(argv)[0];
      const live = pid === undefined ? undefined : processArgv(pid);
      return getFlag(live ?? argv, flag);
    },
    async setFlag(flag, value) {
      const file = currentFile();
      const text = readFileSync(file, 'utf8');
      const edit = setManifestFlag(text, flag, value, file);
      if (!edit.changed) return edit.previous === undefined ? { changed: false } : { changed: false, previous: edit.previous };
      backupFile(file, paths.backupDir, paths.stem, paths.ext);
      writeFileAtomic(file, edit.text, statSync(file).mode & 0o777);
      return edit.previous === undefined ? { changed: true } : { changed: true, previous: edit.previous };
    },
  };
}
