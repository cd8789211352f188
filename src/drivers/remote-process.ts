/**
 * The `process` driver for a member on another host (`ssh:` in the inventory): the same command line and pid
 * file as the local process driver, run and checked over ssh. Same safety rule: a pid is only signalled when
 * /proc/<pid>/cmdline on that host is the command the inventory names (same program, --name, --data-dir).
 * Flag changes are kept in `<pidFile>.argv.json` on the member's host, like the local driver does.
 *
 * The member is started detached with `setsid` (it survives the ssh session), stdout+stderr appended to its log
 * file, stdin from /dev/null; all through one fixed `sh -c` script whose parameters are positional arguments.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DriverSpec, SshHost } from '../inventory/types.ts';
import { sshHostOf } from '../hosts/ssh.ts';
import type { Host } from '../hosts/types.ts';
import { StepError } from '../util/errors.ts';
import { argvMatches, getFlag, setFlag } from './process.ts';
import type { MemberDriver } from './types.ts';

type ProcessSpec = Extract<DriverSpec, { type: 'process' }>;

/** `$1` log file, `$2` pid file, the rest the argv. Prints the pid. */
const START_SCRIPT =
  'log=$1; pidfile=$2; shift 2; mkdir -p -- "$(dirname -- "$pidfile")" "$(dirname -- "$log")" || exit 1; ' +
  'setsid "$@" >>"$log" 2>&1 </dev/null & pid=$!; ' +
  'echo "$pid" > "$pidfile.tmp.$$" && mv -f -- "$pidfile.tmp.$$" "$pidfile" || exit 1; echo "$pid"';
/**
 * One round trip for everything status needs: `$1` sidecar, `$2` pid file. Prints the sidecar (prefixed "S") or
 * nothing, two NULs, then (when the pid file holds a number) the pid, a NUL and /proc/<pid>/cmdline.
 */
const LOOK_SCRIPT =
  'if [ -e "$1" ]; then printf S; cat -- "$1"; fi; printf "\\0\\0"; ' +
  'pid=$(head -c 32 -- "$2" 2>/dev/null | tr -d " \\n"); case $pid in ""|*[!0-9]*) exit 0;; esac; ' +
  'printf "%s\\0" "$pid"; cat "/proc/$pid/cmdline" 2>/dev/null; exit 0';
/**
 * Signal pid `$1` with `$2` only while its command line is still `$3` (its argv joined by newlines): the check and
 * the kill in one shell on the member's host, so a pid recycled between our look and the kill (an ssh round trip
 * later, or after a 15 s wait) is never signalled. Exit 3: it is not that process any more.
 */
const KILL_IF_SAME_SCRIPT = '[ "$(tr "\\000" "\\n" < "/proc/$1/cmdline" 2>/dev/null)" = "$3" ] || exit 3; kill "-$2" "$1"';
/** Remove the pid file `$1` only while it still names pid `$2`. */
const FORGET_PID_SCRIPT = '[ "$(cat -- "$1" 2>/dev/null)" = "$2" ] && rm -f -- "$1"; exit 0';

const POLL_MS = 200;

interface Sidecar {
  version: 1;
  flags: Record<string, string>;
  command: string[];
}

export function remoteProcessDriver(target: { name: string; driver: DriverSpec; ssh?: SshHost | undefined }): MemberDriver {
  const driver = target.driver;
  if (driver.type !== 'process') throw new StepError('invalid', `${target.name}: not a process driver`, { member: target.name });
  if (!target.ssh) throw new StepError('invalid', `${target.name}: the remote process driver needs ssh`, { member: target.name });
  const spec: ProcessSpec = driver;
  const host: Host = sshHostOf(target.ssh);
  const member = target.name;
  const sidecarFile = `${spec.pidFile}.argv.json`;

  function parseSidecar(text: string): Sidecar {
    try {
      const data = JSON.parse(text) as Partial<Sidecar>;
      if (data.version !== 1 || typeof data.flags !== 'object' || data.flags === null) throw new Error('unknown format');
      return { version: 1, flags: data.flags, command: data.command ?? [] };
    } catch (err) {
      throw new StepError('invalid', `${host.label}: cannot read ${sidecarFile}: ${(err as Error).message}`, { member, hint: 'fix or move the file aside' });
    }
  }

  function commandWith(sidecar: Sidecar | undefined): string[] {
    let cmd = spec.command;
    for (const [f, v] of Object.entries(sidecar?.flags ?? {})) cmd = setFlag(cmd, f, v);
    return cmd;
  }

  /** The sidecar, the command a start would run, and the live pid running it (never a recycled pid): one ssh call. */
  async function look(): Promise<{ sidecar?: Sidecar; command: string[]; pid?: number; live?: string[] }> {
    const r = await host.run(['sh', '-c', LOOK_SCRIPT, 'sh', sidecarFile, spec.pidFile]);
    if (r.exitCode !== 0) throw new StepError('failed', `${host.label}: cannot check ${member}: ${r.stderr.trim().slice(-300) || `exit ${r.exitCode}`}`, { member });
    const cut = r.stdout.indexOf('\0\0');
    const head = cut < 0 ? '' : r.stdout.slice(0, cut);
    const rest = cut < 0 ? '' : r.stdout.slice(cut + 2);
    const sidecar = head.startsWith('S') ? parseSidecar(head.slice(1)) : undefined;
    const command = commandWith(sidecar);
    const sep = rest.indexOf('\0');
    const pid = sep > 0 ? Number(rest.slice(0, sep)) : NaN;
    const cmdline = sep > 0 ? rest.slice(sep + 1) : '';
    // A zombie has an empty cmdline: gone.
    const live = cmdline === '' ? undefined : cmdline.replace(/\0$/, '').split('\0');
    const out: { sidecar?: Sidecar; command: string[]; pid?: number; live?: string[] } = { command };
    if (sidecar) out.sidecar = sidecar;
    if (Number.isSafeInteger(pid) && pid > 1 && live && argvMatches(live, command)) {
      out.pid = pid;
      out.live = live;
    }
    return out;
  }

  async function liveArgv(pid: number): Promise<string[] | undefined> {
    const r = await host.run(['cat', `/proc/${pid}/cmdline`]);
    if (r.exitCode !== 0 || r.stdout === '') return undefined; // gone, or a zombie (empty cmdline)
    return r.stdout.replace(/\0$/, '').split('\0');
  }

  async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
    for (const until = Date.now() + timeoutMs; ; await sleep(POLL_MS)) {
      if ((await liveArgv(pid)) === undefined) return true;
      if (Date.now() >= until) return false;
    }
  }

  /** The command line in effect and where it was read (MemberDriver.argv). */
  const commandLine = async (): Promise<{ argv: string[]; from: string }> => {
    const now = await look();
    return now.live ? { argv: now.live, from: `argv of pid ${now.pid} on ${host.label}` } : { argv: now.command, from: `configured command (not running on ${host.label})` };
  };

  return {
    async start(opts = {}) {
      if (opts.signal?.aborted) throw new StepError('cancelled', `not starting ${member}: cancelled`, { member });
      const now = await look();
      if (now.pid !== undefined) return;
      const env = Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`);
      const argv = env.length ? ['env', ...env, ...now.command] : now.command;
      const r = await host.run(['sh', '-c', START_SCRIPT, 'sh', spec.logFile ?? '/dev/null', spec.pidFile, ...argv], opts.signal ? { signal: opts.signal } : {});
      if (r.exitCode !== 0) throw new StepError('failed', `${host.label}: cannot start ${member}: ${r.stderr.trim().slice(-300) || `exit ${r.exitCode}`}`, { member });
    },

    async stop(opts = {}) {
      const { pid, live } = await look();
      if (pid === undefined || live === undefined) return;
      const signal = (sig: 'TERM' | 'KILL') => host.run(['sh', '-c', KILL_IF_SAME_SCRIPT, 'sh', String(pid), sig, live.join('\n')]);
      const first = opts.force ? 'KILL' : 'TERM';
      await signal(first);
      let gone = await waitGone(pid, opts.force ? 5_000 : (opts.timeoutMs ?? 15_000));
      if (!gone && !opts.force) {
        await signal('KILL');
        gone = await waitGone(pid, 5_000);
      }
      if (!gone) throw new StepError('timeout', `${host.label}: pid ${pid} of ${member} did not exit 5s after SIGKILL`, { member });
      await host.run(['sh', '-c', FORGET_PID_SCRIPT, 'sh', spec.pidFile, String(pid)]);
    },

    async status() {
      const { pid } = await look();
      return pid === undefined ? { running: false } : { running: true, pid };
    },

    argv: commandLine,
    async getFlag(flag) {
      return getFlag((await commandLine()).argv, flag);
    },

    async setFlag(flag, value) {
      const name = flag.replace(/^-+/, '');
      const now = await look();
      const previous = getFlag(now.command, name);
      if (previous === value) return { changed: false, previous };
      const flags = { ...now.sidecar?.flags, [name]: value };
      let cmd = spec.command;
      for (const [f, v] of Object.entries(flags)) cmd = setFlag(cmd, f, v);
      const sidecar: Sidecar = { version: 1, flags, command: cmd };
      await host.writeTextAtomic(sidecarFile, `${JSON.stringify(sidecar, null, 2)}\n`);
      return previous === undefined ? { changed: true } : { changed: true, previous };
    },
  };
}
