/**
 * The Host for a machine reached over OpenSSH (BatchMode, key-based: see src/exec/ssh.ts). Every command is an
 * argv whose arguments ssh.ts single-quotes one by one. Where a redirection or a test is needed, the script is a
 * constant `sh -c '<fixed text>' sh "$1" "$2"…` and every parameter travels as a positional argument, never
 * inside the script text.
 */
import type { SshHost } from '../inventory/types.ts';
import { remoteArgv } from '../exec/ssh.ts';
import { StepError } from '../util/errors.ts';
import { runArgv } from './local.ts';
import type { Host, HostRunOptions, HostRunResult, HostStat } from './types.ts';

/** ssh exits 255 when it cannot connect or authenticate (a remote command exiting 255 is rare). */
const SSH_FAILED = 255;

/** Fixed scripts; parameters are "$1", "$2"… */
const SCRIPT = {
  rename: '[ -e "$2" ] || [ -L "$2" ] && { echo "$2 already exists" >&2; exit 17; }; mv -T -- "$1" "$2" || exit 1; sync -- "$(dirname -- "$2")" 2>/dev/null; exit 0',
  readText: '[ -e "$1" ] || exit 44; head -c "$2" -- "$1"',
  writeText:
    'd=$(dirname -- "$1"); mkdir -p -- "$d" || exit 1; tmp="$d/.$(basename -- "$1").tmp-$$"; umask 077; set -C; cat > "$tmp" || exit 1; ' +
    '{ [ -e "$1" ] && chmod --reference="$1" -- "$tmp"; } || chmod 644 -- "$tmp"; sync -- "$tmp" 2>/dev/null; mv -f -T -- "$tmp" "$1" || exit 1; sync -- "$d" 2>/dev/null; exit 0',
  putFile:
    '[ -e "$1" ] && { echo "$1 already exists" >&2; exit 17; }; d=$(dirname -- "$1"); mkdir -p -- "$d" || exit 1; ' +
    'tmp="$d/.$(basename -- "$1").tmp-$$"; set -C; cat > "$tmp" || exit 1; sync -- "$tmp" 2>/dev/null; ' +
    '[ -e "$1" ] && { echo "$1 already exists" >&2; exit 17; }; mv -T -- "$tmp" "$1" || exit 1; sync -- "$d" 2>/dev/null; exit 0',
  /**
   * `$1` file, `$2` base, `$3` extension. Copies the file (mode kept) to a dot temp file next to the target, then
   * hard-links it to the first free `$2$3`, `$2-2$3`… (a link never replaces an existing name) and prints the name.
   */
  copyToFreshName:
    'd=$(dirname -- "$2"); mkdir -p -m 700 -- "$d" || exit 1; tmp="$d/.backup.tmp-$$"; cp -p -- "$1" "$tmp" || exit 1; sync -- "$tmp" 2>/dev/null; i=1; ' +
    'while [ "$i" -le 1000 ]; do if [ "$i" = 1 ]; then t="$2$3"; else t="$2-$i$3"; fi; ' +
    'if ln -- "$tmp" "$t" 2>/dev/null; then rm -f -- "$tmp"; sync -- "$d" 2>/dev/null; printf "%s" "$t"; exit 0; fi; i=$((i+1)); done; ' +
    'rm -f -- "$tmp"; echo "no free name like $2$3" >&2; exit 1',
  list: '[ -d "$1" ] || exit 0; find "$1" -mindepth 1 -maxdepth 1 -printf "%f\\0"',
} as const;

export function sshLabel(ssh: SshHost): string {
  return `ssh ${ssh.user ? `${ssh.user}@` : ''}${ssh.host}${ssh.port ? `:${ssh.port}` : ''}`;
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.slice(0, 300) ?? '';
}

/** A Host over ssh. Connection failures are `transient` StepErrors that name the host. */
export function sshHostOf(ssh: SshHost): Host {
  const label = sshLabel(ssh);

  async function run(argv: string[], opts: HostRunOptions = {}): Promise<HostRunResult> {
    const { env, dropEnvPrefix: _local, ...rest } = opts;
    const r = await runArgv(remoteArgv(ssh, argv, env), rest, label);
    if (r.exitCode === SSH_FAILED) {
      throw new StepError('transient', `${label}: ssh failed: ${lastLine(r.stderr) || 'exit 255'}`, {
        hint: 'check that the host is up, the key is authorized (BatchMode: no password prompts) and the host key is known',
      });
    }
    return r;
  }

  async function must(argv: string[], what: string, opts: HostRunOptions = {}): Promise<HostRunResult> {
    const r = await run(argv, opts);
    if (r.exitCode !== 0) throw new StepError('failed', `${label}: ${what} failed (exit ${r.exitCode}): ${lastLine(r.stderr) || lastLine(r.stdout)}`);
    return r;
  }

  const sh = (script: string, ...args: string[]) => ['sh', '-c', script, 'sh', ...args];

  return {
    label,
    remote: true,
    run,

    async stat(path) {
      const r = await run(['stat', '-L', '-c', '%F|%s|%Y', '--', path]);
      if (r.exitCode !== 0) {
        if (/No such file/i.test(r.stderr)) return undefined;
        throw new StepError('failed', `${label}: cannot stat ${path}: ${lastLine(r.stderr)}`);
      }
      const [kind = '', size = '0', mtime = '0'] = r.stdout.trim().split('|');
      const out: HostStat = {
        type: kind.includes('regular') ? 'file' : kind === 'directory' ? 'dir' : 'other',
        size: Number(size),
        mtimeMs: Number(mtime) * 1000,
      };
      return out;
    },

    async mkdir(path) {
      await must(['mkdir', '-p', '--', path], `mkdir ${path}`);
    },

    async rename(from, to) {
      const r = await run(sh(SCRIPT.rename, from, to));
      if (r.exitCode === 17) throw new StepError('precondition', `${label}: not moving ${from}: ${to} already exists`, { hint: 'look at both and move one away by hand' });
      if (r.exitCode !== 0) throw new StepError('failed', `${label}: cannot move ${from} to ${to}: ${lastLine(r.stderr)}`);
    },

    async sha256(path) {
      const r = await must(['sha256sum', '-b', '--', path], `sha256sum ${path}`);
      const m = /^\\?([0-9a-f]{64})\b/.exec(r.stdout.trim());
      if (!m) throw new StepError('failed', `${label}: sha256sum ${path}: unexpected output`);
      return m[1]!;
    },

    async readText(path, maxBytes = 1024 * 1024) {
      const r = await run(sh(SCRIPT.readText, path, String(maxBytes)));
      if (r.exitCode === 44) return undefined;
      if (r.exitCode !== 0) throw new StepError('failed', `${label}: cannot read ${path}: ${lastLine(r.stderr)}`);
      return r.stdout;
    },

    async writeTextAtomic(path, text) {
      await must(sh(SCRIPT.writeText, path), `writing ${path}`, { input: text });
    },

    async copyToFreshName(from, base, ext = '') {
      return (await must(sh(SCRIPT.copyToFreshName, from, base, ext), `backing up ${from}`)).stdout;
    },

    async putFile(localPath, to, opts = {}) {
      const r = await run(sh(SCRIPT.putFile, to), { inputFile: localPath, ...(opts.signal ? { signal: opts.signal } : {}), timeoutMs: 60 * 60_000 });
      if (r.exitCode === 17) throw new StepError('precondition', `${label}: not copying to ${to}: it already exists`);
      if (r.exitCode !== 0) throw new StepError('failed', `${label}: copying ${localPath} to ${to} failed: ${lastLine(r.stderr)}`);
    },

    async list(dir) {
      const r = await must(sh(SCRIPT.list, dir), `listing ${dir}`);
      return r.stdout.split('\0').filter(Boolean);
    },

    async fsync(path) {
      await run(['sync', '--', path]);
    },
  };
}

