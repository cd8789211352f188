/**
 * The `systemd` member driver: etcd as a systemd unit (kubespray's etcd.service with /etc/etcd.env, most
 * hand-built clusters), on this machine or on the member's `ssh` host. Every operation is a `systemctl` argv run
 * on that host; parameters travel as positional arguments of fixed scripts, never inside script text.
 *
 * - status: `systemctl show` (LoadState, ActiveState, MainPID). Running: a main pid, the unit active, activating,
 *   reloading or deactivating. A unit systemd does not know is a precondition failure that names the host.
 * - start: `systemctl reset-failed` (a unit that hit its start limit would refuse to start), then `systemctl start
 *   --no-block`: a Type=notify etcd unit's start blocks until etcd is ready, which needs a quorum, so the first
 *   member of a cold cluster would never return. Then waits (bounded) for a main pid; a unit that fails to start
 *   names `journalctl -u`.
 * - stop: `systemctl stop` (systemd sends SIGTERM and escalates to SIGKILL after the unit's TimeoutStopSec),
 *   bounded; `force` first `systemctl kill --signal=SIGKILL`.
 * - argv: the running process's /proc cmdline plus the flags its ETCD_* environment gives (etcd reads ETCD_<FLAG>
 *   for every flag the command line does not set); when stopped, the unit's ExecStart plus its Environment= and
 *   EnvironmentFile= settings.
 * - setFlag edits an EnvironmentFile the unit loads: the last one that already sets ETCD_<FLAG>, else the
 *   inventory's `envFile` (which the unit must load), else the unit's first one. The file is copied to
 *   `<file>.runbook-<UTC stamp>` first and rewritten atomically with its mode kept. A flag on the ExecStart line
 *   is refused: no environment variable overrides it, and rewriting a unit's command line is an operator's call
 *   (`systemctl edit --full`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hostFor } from '../hosts/index.ts';
import type { Host } from '../hosts/types.ts';
import type { DriverSpec, SshHost } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { envFileValue, flagEnvName, parseEnvFile, setEnvFileValue, withEnvFlags } from './env-file.ts';
import { getFlag } from './process.ts';
import { utcStamp } from './safe-fs.ts';
import type { DriverStopOptions, MemberDriver } from './types.ts';

type SystemdSpec = Extract<DriverSpec, { type: 'systemd' }>;

const START_WAIT_MS = 30_000;
const STOP_WAIT_MS = 120_000;
const POLL_MS = 200;

/**
 * `$1` the unit. systemd's view of it, then (when it has a main pid) that process's cmdline and environment in
 * base64 (NUL-separated, kept exact): one round trip.
 */
const LOOK_SCRIPT =
  'systemctl show -p LoadState -p ActiveState -p SubState -p MainPID -p ExecStart -p EnvironmentFiles -p Environment -- "$1" || exit 1; ' +
  'pid=$(systemctl show -p MainPID --value -- "$1"); case $pid in ""|0|*[!0-9]*) exit 0;; esac; ' +
  'printf "PID=%s\\nCMDLINE=" "$pid"; base64 -w0 < "/proc/$pid/cmdline" 2>/dev/null; ' +
  'printf "\\nENVIRON="; base64 -w0 < "/proc/$pid/environ" 2>/dev/null; printf "\\n"; exit 0';

export interface UnitView {
  loadState: string;
  activeState: string;
  subState: string;
  mainPid: number;
  /** ExecStart's argv as systemd reports it (words split on spaces). */
  execStart?: string[];
  envFiles: { path: string; optional: boolean }[];
  environment: Record<string, string>;
  /** The main process, when there is one. */
  live?: { pid: number; argv: string[]; env: Record<string, string> };
}

/** Split `A=1 "B=x y"` (systemctl show's Environment=) into assignments. */
function splitWords(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]!));
  return out;
}

function nulList(b64: string | undefined): string[] {
  if (!b64) return [];
  const raw = Buffer.from(b64, 'base64').toString('utf8');
  return raw === '' ? [] : raw.replace(/\0$/, '').split('\0');
}

/** Parse the LOOK_SCRIPT output (systemctl show's KEY=VALUE lines, then PID/CMDLINE/ENVIRON). */
export function parseUnitView(text: string): UnitView {
  const view: UnitView = { loadState: '', activeState: '', subState: '', mainPid: 0, envFiles: [], environment: {} };
  let pid = 0;
  let cmdline: string[] = [];
  let environ: string[] = [];
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    switch (key) {
      case 'LoadState':
        view.loadState = value;
        break;
      case 'ActiveState':
        view.activeState = value;
        break;
      case 'SubState':
        view.subState = value;
        break;
      case 'MainPID':
        view.mainPid = Number(value) || 0;
        break;
      case 'ExecStart': {
        // { path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd --name a ; ignore_errors=no ; … }
        const m = /argv\[\]=(.*?) ; ignore_errors=/.exec(value);
        if (m) view.execStart = m[1]!.trim().split(/\s+/);
        break;
      }
      case 'EnvironmentFiles': {
        // /etc/etcd.env (ignore_errors=no), one line per file
        const m = /^(.*) \(ignore_errors=(yes|no)\)$/.exec(value);
        if (m) view.envFiles.push({ path: m[1]!, optional: m[2] === 'yes' });
        else if (value.trim() !== '') view.envFiles.push({ path: value.trim(), optional: false });
        break;
      }
      case 'Environment':
        for (const w of splitWords(value)) {
          const i = w.indexOf('=');
          if (i > 0) view.environment[w.slice(0, i)] = w.slice(i + 1);
        }
        break;
      case 'PID':
        pid = Number(value) || 0;
        break;
      case 'CMDLINE':
        cmdline = nulList(value);
        break;
      case 'ENVIRON':
        environ = nulList(value);
        break;
    }
  }
  if (pid > 0 && cmdline.length > 0) {
    const env: Record<string, string> = {};
    for (const e of environ) {
      const i = e.indexOf('=');
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
    view.live = { pid, argv: cmdline, env };
  }
  return view;
}

const RUNNING_STATES = new Set(['active', 'activating', 'reloading', 'deactivating']);

export function systemdDriver(target: { name: string; driver: DriverSpec; ssh?: SshHost | undefined }): MemberDriver {
  const spec = target.driver;
  const member = target.name;
  if (spec.type !== 'systemd') throw new StepError('invalid', `${member}: not a systemd driver`, { member });
  const unit: SystemdSpec['unit'] = spec.unit;
  const host: Host = hostFor(target);
  const where = host.remote ? ` on ${host.label}` : '';
  const fail = (kind: StepError['kind'], message: string, hint?: string) => new StepError(kind, `${member}: ${message}`, { member, ...(hint ? { hint } : {}) });
  /** What a failed command said: its last stderr line, else its exit code. */
  const why = (r: { exitCode: number; stderr: string }) => r.stderr.trim().split('\n').at(-1)?.slice(0, 300) || `exit ${r.exitCode}`;
  const journalHint = `journalctl -u ${unit} -n 50${host.remote ? ` (${host.label})` : ''}`;

  async function systemctl(args: string[], what: string, timeoutMs = 60_000): Promise<string> {
    const r = await host.run(['systemctl', ...args], { timeoutMs });
    if (r.exitCode !== 0) throw fail('failed', `${what}${where} failed: ${why(r)}`, journalHint);
    return r.stdout;
  }

  async function look(): Promise<UnitView> {
    const r = await host.run(['sh', '-c', LOOK_SCRIPT, 'sh', unit], { timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw fail('failed', `cannot ask systemd about ${unit}${where}: ${why(r)}`, 'is this a systemd host? (systemctl status)');
    const v = parseUnitView(r.stdout);
    if (v.loadState === 'not-found' || v.loadState === '') {
      throw fail('precondition', `systemd${where} has no unit ${unit}`, 'check the unit name in the inventory (systemctl list-units "etcd*")');
    }
    return v;
  }

  const running = (v: UnitView) => v.mainPid > 0 && RUNNING_STATES.has(v.activeState) && v.live !== undefined;

  /** The environment a start would give: Environment=, then each EnvironmentFile= (later ones win), read on the host. */
  async function configuredEnv(v: UnitView): Promise<{ env: Record<string, string>; files: { path: string; optional: boolean; text?: string }[] }> {
    const env = { ...v.environment };
    const files: { path: string; optional: boolean; text?: string }[] = [];
    for (const f of v.envFiles) {
      const path = f.path.replace(/^-/, '');
      const text = await host.readText(path);
      if (text === undefined && !f.optional) throw fail('precondition', `${unit} loads ${path}${where}, which does not exist`, 'systemd would refuse to start it: restore the file');
      files.push({ path, optional: f.optional, ...(text !== undefined ? { text } : {}) });
      for (const a of parseEnvFile(text ?? '')) env[a.key] = a.value;
    }
    return { env, files };
  }

  async function commandLine(): Promise<{ argv: string[]; from: string }> {
    const v = await look();
    const has = (argv: string[], flag: string) => getFlag(argv, flag) !== undefined;
    if (running(v)) return { argv: withEnvFlags(v.live!.argv, v.live!.env, has), from: `argv and environment of pid ${v.live!.pid}${where}` };
    if (!v.execStart?.length) throw fail('precondition', `${unit}${where} has no ExecStart`, `systemctl cat ${unit}`);
    const { env } = await configuredEnv(v);
    return { argv: withEnvFlags(v.execStart, env, has), from: `unit ${unit}${where} (not running)` };
  }

  async function waitFor(what: string, timeoutMs: number, done: (v: UnitView) => boolean, failed?: (v: UnitView) => boolean): Promise<UnitView> {
    for (const until = Date.now() + timeoutMs; ; await sleep(POLL_MS)) {
      const v = await look();
      if (done(v)) return v;
      if (failed?.(v)) throw fail('failed', `${unit}${where} ${what} failed: ${v.activeState} (${v.subState})`, journalHint);
      if (Date.now() >= until) throw fail('timeout', `${unit}${where}: ${what} did not happen within ${formatDuration(timeoutMs)} (${v.activeState}, ${v.subState})`, journalHint);
    }
  }

  return {
    async start(opts = {}) {
      if (opts.signal?.aborted) throw fail('cancelled', `not starting ${unit}: cancelled`);
      if (running(await look())) return;
      // A failed unit (or one past its start limit) must be reset first, or systemd refuses the start.
      await host.run(['systemctl', 'reset-failed', '--', unit], { timeoutMs: 30_000 });
      await systemctl(['start', '--no-block', '--', unit], `systemctl start ${unit}`);
      await waitFor('start', START_WAIT_MS, running, (v) => v.activeState === 'failed');
    },

    async stop(opts: DriverStopOptions = {}) {
      const v = await look();
      if (!running(v) && v.activeState !== 'activating' && v.activeState !== 'deactivating') return;
      if (opts.force) await systemctl(['kill', '--signal=SIGKILL', '--', unit], `systemctl kill ${unit}`);
      const waitMs = opts.timeoutMs ?? STOP_WAIT_MS;
      // `systemctl stop` returns once the unit is down (systemd escalates to SIGKILL after TimeoutStopSec).
      await systemctl(['stop', '--', unit], `systemctl stop ${unit}`, waitMs + 10_000);
      await waitFor('stop', 5_000, (x) => !running(x) && x.mainPid === 0);
    },

    async status() {
      const v = await look();
      return running(v) ? { running: true, pid: v.live!.pid } : { running: false };
    },

    argv: commandLine,

    async getFlag(flag) {
      return getFlag((await commandLine()).argv, flag);
    },

    async setFlag(flag, value) {
      const name = flag.replace(/^-+/, '');
      const key = flagEnvName(name);
      const v = await look();
      const exec = running(v) ? v.live!.argv : v.execStart ?? [];
      const onCommandLine = getFlag(exec, name);
      if (onCommandLine !== undefined) {
        if (onCommandLine === value) return { changed: false, previous: value };
        throw fail('precondition', `--${name} is set on the ExecStart line of ${unit}${where} (${onCommandLine}); an environment variable cannot override it`, `change it there (systemctl edit --full ${unit}; systemctl daemon-reload), then resume with --mark-done`);
      }
      const { env, files } = await configuredEnv(v);
      const previous = env[key];
      if (previous === value) return { changed: false, previous };
      const loaded = files.map((f) => f.path);
      // An inventory that names a file the unit does not load is wrong about this unit: edit nothing.
      if (spec.envFile && !loaded.includes(spec.envFile)) {
        throw fail('precondition', `${unit}${where} does not load ${spec.envFile} (it loads ${loaded.join(', ') || 'no EnvironmentFile'})`, `add EnvironmentFile=${spec.envFile} to the unit (systemctl edit ${unit}), or fix driver.envFile; then resume`);
      }
      // The file that decides: the last loaded one that sets the key; else the one the inventory names; else the first.
      const setting = [...files].reverse().find((f) => f.text !== undefined && envFileValue(f.text, key) !== undefined);
      const file = setting ?? (spec.envFile ? files.find((f) => f.path === spec.envFile) : files[0]);
      if (!file) {
        throw fail('precondition', `${unit}${where} loads no EnvironmentFile, so --${name} has nowhere to go`, `add EnvironmentFile=/etc/etcd.env to the unit (systemctl edit ${unit}) and set driver.envFile, then resume`);
      }
      // A later file setting the key would undo the edit; `setting` is the last one, so none can.
      const edit = setEnvFileValue(file.text ?? '', key, value);
      if (file.text !== undefined) await host.copyToFreshName(file.path, `${file.path}.runbook-${utcStamp()}`);
      await host.writeTextAtomic(file.path, edit.text);
      return previous === undefined ? { changed: true } : { changed: true, previous };
    },
  };
}
