/**
 * Running an argv on another host over OpenSSH. ssh joins its remote arguments into one string that the remote
 * shell parses, so each argument is single-quoted here (POSIX quoting, `'` → `'\''`): the remote side sees exactly
 * the argv we were given, whatever characters it holds. Nothing is ever concatenated unquoted.
 */
import type { SshHost } from '../inventory/types.ts';

export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_\-./=:@%+,]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** argv for the local `ssh` process that runs `argv` on `host` (BatchMode: never prompts). */
export function sshArgs(host: SshHost): string[] {
  const args = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3'];
  if (host.port) args.push('-p', String(host.port));
  if (host.identityFile) args.push('-i', host.identityFile, '-o', 'IdentitiesOnly=yes');
  for (const o of host.options ?? []) args.push('-o', o);
  args.push(host.user ? `${host.user}@${host.host}` : host.host);
  return args;
}

export function remoteArgv(host: SshHost, argv: string[], env?: Record<string, string>): string[] {
  const envPart: string[] = [];
  for (const [k, v] of Object.entries(env ?? {})) {
    if (!ENV_NAME.test(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
    envPart.push(`${k}=${shellQuote(v)}`);
  }
  const command = [...(envPart.length ? ['env', ...envPart] : []), ...argv.map(shellQuote)].join(' ');
  return ['ssh', ...sshArgs(host), '--', command];
}
