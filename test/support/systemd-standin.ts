/**
 * Puts the systemctl stand-in (./systemctl-standin.cjs: what it models and what not is written there) first on
 * PATH for this test process, with its own state dir. Commands the product runs on "this machine" (execa, the
 * inherited environment) then reach it as `systemctl`. `stop()` stops every unit it started (by pid, SIGKILL as a
 * last resort) and restores PATH.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

const SCRIPT = join(import.meta.dirname, 'systemctl-standin.cjs');

export interface SystemdStandin {
  dir: string;
  /** Write units/<name>. */
  writeUnit(name: string, text: string): void;
  /** Also write the unit's main pid to this file on every start (for a harness that tracks pid files). */
  trackPidFile(unit: string, pidFile: string): void;
  systemctl(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  log(unit: string): string;
  stop(): Promise<void>;
}

export function startSystemdStandin(): SystemdStandin {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-systemd-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'units'));
  mkdirSync(join(dir, 'pidfiles'));
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SCRIPT)} "$@"\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  const saved = { PATH: process.env.PATH, STATE: process.env.RUNBOOK_SYSTEMCTL_STANDIN };
  process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  process.env.RUNBOOK_SYSTEMCTL_STANDIN = dir;
  const systemctl = async (...args: string[]) => {
    const r = await execa(join(bin, 'systemctl'), args, { reject: false, timeout: 120_000 });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  return {
    dir,
    writeUnit: (name, text) => writeFileSync(join(dir, 'units', name), text),
    trackPidFile: (unit, pidFile) => writeFileSync(join(dir, 'pidfiles', unit), pidFile),
    systemctl,
    log: (unit) => {
      try {
        return readFileSync(join(dir, 'logs', `${unit}.log`), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      for (const unit of readdirSync(join(dir, 'units'))) {
        await systemctl('stop', '--', unit);
      }
      process.env.PATH = saved.PATH;
      if (saved.STATE === undefined) delete process.env.RUNBOOK_SYSTEMCTL_STANDIN;
      else process.env.RUNBOOK_SYSTEMCTL_STANDIN = saved.STATE;
    },
  };
}
