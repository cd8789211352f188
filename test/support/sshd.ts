/**
 * A real OpenSSH server on 127.0.0.1 for tests of the ssh paths: its own config, host key and authorized key (a
 * key generated for the test), on a free port, key-based only. The client side gets an SshHost with BatchMode
 * (from src/exec/ssh.ts), the generated identity and a known_hosts file holding the server's key
 * (StrictHostKeyChecking=yes: nothing is trusted blindly).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { SshHost } from '../../src/inventory/types.ts';
import { remoteArgv } from '../../src/exec/ssh.ts';
import { freePorts } from './etcd-cluster.ts';

export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  port: number;
  dir: string;
  /** How to reach it (user = the test's own user). */
  host: SshHost;
  /** The server's log (-e: errors to stderr, kept here). */
  log(): string;
  stop(): Promise<void>;
}

export function sshdAvailable(): boolean {
  return existsSync(SSHD) && existsSync('/usr/bin/ssh');
}

async function keygen(file: string): Promise<void> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'runbook-test', '-f', file], { stdin: 'ignore' });
}

/** `sessionEnv`: variables sshd sets in every session (sshd_config SetEnv), e.g. a PATH with a test's stand-ins. */
export async function startSshd(opts: { sessionEnv?: Record<string, string> } = {}): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-sshd-'));
  await keygen(join(dir, 'host_key'));
  await keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  // sshd refuses to start without its privilege separation directory.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

  let lastErr = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [port] = await freePorts(1);
    const config = join(dir, 'sshd_config');
    writeFileSync(config, [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'LogLevel ERROR',
      ...(opts.sessionEnv ? [`SetEnv ${Object.entries(opts.sessionEnv).map(([k, v]) => `"${k}=${v}"`).join(' ')}`] : []),
      '',
    ].join('\n'));
    const hostKey = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
    const host: SshHost = {
      host: '127.0.0.1',
      port: port!,
      user: userInfo().username,
      identityFile: join(dir, 'client_key'),
      // One multiplexed connection for all the calls of a test (as an operator would configure for remote members).
      options: [
        `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
        'StrictHostKeyChecking=yes',
        'LogLevel=ERROR',
        'ControlMaster=auto',
        `ControlPath=${join(dir, 'cm-%C')}`,
        'ControlPersist=60',
      ],
    };
    let stderr = '';
    const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-20_000); });
    let exited = false;
    child.once('exit', () => { exited = true; });
    const stop = async () => {
      // Close the multiplexing master (it would otherwise linger until ControlPersist runs out).
      const [ssh, ...sshArgs] = remoteArgv(host, ['true']);
      await execa(ssh!, ['-O', 'exit', ...sshArgs.slice(0, -2)], { reject: false, stdin: 'ignore', timeout: 10_000 });
      if (!exited && child.pid) {
        child.kill('SIGTERM');
        for (let i = 0; i < 100 && !exited; i++) await sleep(20);
      }
      if (process.env.RUNBOOK_TEST_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    };
    // Up when a real login works (bounded).
    for (let i = 0; i < 50 && !exited; i++) {
      const [file, ...args] = remoteArgv(host, ['true']);
      const r = await execa(file!, args, { reject: false, stdin: 'ignore', timeout: 10_000 });
      if (r.exitCode === 0) return { port: port!, dir, host, log: () => stderr, stop };
      lastErr = r.stderr;
      await sleep(100);
    }
    lastErr = `${lastErr}\n${stderr}`;
    if (!exited) child.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`startSshd: no working sshd after 3 attempts: ${lastErr.slice(-1000)}`);
}
