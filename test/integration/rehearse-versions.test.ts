/**
 * `runbook rehearse --etcd-version <v>`: the throwaway cluster runs the fetched build `.tools/etcd-<v>/bin` whatever
 * ETCD_BIN_DIR says, every member reports that version (checked by the cluster at start), and the report names it.
 * A version that is not fetched is refused before anything starts, saying how to fetch it. On 3.4.23, whose tools
 * cannot move revisions forward, the power-loss rehearsal accepts the rewind and says that a real run would refuse.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli as runCli } from '../support/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'runbook-rehearse-versions-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function rehearse(args: string[]) {
  return runCli(['rehearse', ...args, '--state-dir', join(work, 'state')], { timeout: 240_000 });
}

describe('runbook rehearse --etcd-version', () => {
  it('runs the cluster on the fetched build asked for and names it in the report', async () => {
    // Another build than the suite's own, so ETCD_BIN_DIR cannot be what made it pass.
    const version = process.env.ETCD_VERSION === '3.5.16' ? '3.5.30' : '3.5.16';
    const r = await rehearse(['nospace-recovery', '--etcd-version', version, '--json']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ passed: true, cluster: { etcdVersion: version, etcdBinDir: expect.stringMatching(new RegExp(`/\\.tools/etcd-${version.replace(/\./g, '\\.')}/bin$`)) } });
  }, 240_000);

  it('on 3.4.23 the power-loss rehearsal restores with the rewind accepted, and says a real run would refuse without it', async () => {
    const r = await rehearse(['power-loss-restore', '--etcd-version', '3.4.23']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rehearsal of power-loss-restore \(fault: power-loss, etcd 3\.4\.23\): PASSED/);
    expect(r.stdout).toMatch(/note: etcd 3\.4\.23's etcdctl cannot move revisions forward .* refuses to restore without it/);
    expect(r.stdout).toMatch(/restore +succeeded/);
  }, 240_000);

  it('refuses a version that is not fetched before anything starts, saying how to fetch it', async () => {
    const r = await rehearse(['nospace-recovery', '--etcd-version', '3.9.1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/etcd 3\.9\.1 is not fetched .*run scripts\/fetch-etcd\.sh 3\.9\.1 \(fetched: .*3\.4\.23/);
    const bad = await rehearse(['nospace-recovery', '--etcd-version', 'latest']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--etcd-version: expected a release like 3\.5\.16/);
  });
});
