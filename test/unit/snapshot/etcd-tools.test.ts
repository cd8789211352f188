import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localHost } from '../../../src/hosts/local.ts';
import { BUMP_REVISION, chooseSnapshotTool, chooseTool, parseVersion, restoreArgv, type RestoreTool } from '../../../src/snapshot/etcd-tools.ts';
import { StepError } from '../../../src/util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'runbook-tools-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * A bin dir with stand-in tools: `version` prints what the real ones print, `snapshot restore --help` lists
 * --bump-revision/--mark-compacted when `bump` (as 3.5.16/3.5.30 do) and not otherwise (as 3.4.23 does).
 */
function binDir(name: string, tools: Record<string, { version: string; bump: boolean }>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [tool, t] of Object.entries(tools)) {
    const help = t.bump ? '      --bump-revision uint   How much to increase\\n      --mark-compacted   Mark the latest revision' : '      --data-dir string   Path to the data directory';
    writeFileSync(join(dir, tool), `#!/bin/sh\ncase "$1" in\n  version|--version) printf '%s\\n' '${tool} version: ${t.version}' 'API version: x' ;;\n  snapshot) printf '${help}\\n' ;;\n  *) exit 1 ;;\nesac\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  return dir;
}

const tool = (kind: RestoreTool['kind'], v: string, canBump: boolean, dir = '/x'): RestoreTool => ({ kind, path: `${dir}/${kind}`, toolVersion: v, canBump });

describe('etcd tools: chosen by the cluster version and a capability probe', () => {
  it('parses the version lines of etcd, etcdctl and etcdutl', () => {
    expect(parseVersion('etcd Version: 3.4.23\nGit SHA: x')).toMatchObject({ major: 3, minor: 4, patch: 23 });
    expect(parseVersion('etcdctl version: 3.5.9\nAPI version: 3.5')?.text).toBe('3.5.9');
    expect(parseVersion('etcdutl version: 3.6.0')?.minor).toBe(6);
    expect(parseVersion('nothing here')).toBeUndefined();
  });

  it('probes what each tool can do: bump flags only where `snapshot restore --help` lists them', async () => {
    const early35 = binDir('early35', { etcdutl: { version: '3.5.9', bump: false }, etcdctl: { version: '3.5.9', bump: false } });
    const late35 = binDir('late35', { etcdutl: { version: '3.5.30', bump: true }, etcdctl: { version: '3.5.30', bump: true } });
    // early 3.5 etcdutl lacks the flags: never passed to it; without acceptance the restore is refused
    const refused = await chooseSnapshotTool(localHost, [early35], { purpose: 'restore', clusterVersion: '3.5.9' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StepError);
    expect(refused).toMatchObject({ kind: 'precondition', message: expect.stringMatching(/revisions would go BACK/), hint: expect.stringMatching(/allowRevisionRewind=true/) });
    const rewind = await chooseSnapshotTool(localHost, [early35], { purpose: 'restore', clusterVersion: '3.5.9', allowRevisionRewind: true });
    expect(rewind).toMatchObject({ bump: false, tool: { kind: 'etcdutl', toolVersion: '3.5.9' } });
    expect(restoreArgv(rewind.tool, { snapshot: '/s', dataDir: '/d', name: 'm', peerURLs: 'http://p', initialCluster: 'm=http://p', token: 't' }, rewind.bump)).not.toContain('--bump-revision');
    // the capable dir is found even when it comes after the incapable one
    const ok = await chooseSnapshotTool(localHost, [early35, late35], { purpose: 'restore', clusterVersion: '3.5.9' });
    expect(ok).toMatchObject({ bump: true, tool: { kind: 'etcdutl', path: join(late35, 'etcdutl'), toolVersion: '3.5.30', version: '3.5.9' } });
  });

  it('a host with only a 3.5 etcdctl: restores with it when it can bump (it can from 3.5.16), else refuses', async () => {
    const onlyCtl = binDir('onlyctl', { etcdctl: { version: '3.5.30', bump: true } });
    const c = await chooseSnapshotTool(localHost, [onlyCtl], { purpose: 'restore', clusterVersion: '3.5.30' });
    expect(c).toMatchObject({ bump: true, tool: { kind: 'etcdctl' } });
    const args = { snapshot: '/s.db', dataDir: '/d.part', name: 'm1', peerURLs: 'https://10.0.0.1:2380', initialCluster: 'm1=https://10.0.0.1:2380', token: 'tok' };
    expect(restoreArgv(c.tool, args, c.bump).slice(-3)).toEqual(['--bump-revision', String(BUMP_REVISION), '--mark-compacted']);
    expect(restoreArgv(tool('etcdctl', '3.4.23', false), args, false)).toEqual(['/x/etcdctl', 'snapshot', 'restore', '/s.db', '--data-dir', '/d.part', '--name', 'm1', '--initial-advertise-peer-urls', 'https://10.0.0.1:2380', '--initial-cluster', 'm1=https://10.0.0.1:2380', '--initial-cluster-token', 'tok']);
  });

  it('never restores a 3.5 snapshot with a 3.4 tool, even when a rewind is accepted', () => {
    const err = (() => {
      try {
        chooseTool([tool('etcdctl', '3.4.23', false)], 'this machine', { purpose: 'restore', clusterVersion: '3.5.30', allowRevisionRewind: true });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ kind: 'precondition', message: expect.stringMatching(/no tool here can open a snapshot of etcd 3\.5\.30.*etcdctl 3\.4\.23.*older than the cluster/), hint: expect.stringMatching(/etcd 3\.5\.x release tools/) });
  });

  it('per version: 3.4 etcdctl, 3.5 etcdutl before etcdctl, 3.6 etcdutl only; a restore is written by the cluster minor', () => {
    const all = [tool('etcdctl', '3.4.23', false, '/a'), tool('etcdctl', '3.5.30', true, '/b'), tool('etcdutl', '3.5.30', true, '/b'), tool('etcdutl', '3.6.2', true, '/c'), tool('etcdctl', '3.6.2', true, '/c')];
    const pick = (v: string | undefined, purpose: 'restore' | 'check' = 'restore') => chooseTool(all, 'h', { purpose, ...(v ? { clusterVersion: v } : {}), allowRevisionRewind: true });
    expect(pick('3.4.23')).toMatchObject({ bump: false, tool: { kind: 'etcdctl', toolVersion: '3.4.23' } });
    expect(pick('3.5.0').tool).toMatchObject({ kind: 'etcdutl', toolVersion: '3.5.30' });
    expect(pick('3.5.9').tool).toMatchObject({ kind: 'etcdutl', toolVersion: '3.5.30' });
    expect(pick('3.5.30')).toMatchObject({ bump: true, tool: { kind: 'etcdutl', toolVersion: '3.5.30' } });
    expect(pick('3.6.1')).toMatchObject({ bump: true, tool: { kind: 'etcdutl', toolVersion: '3.6.2' } });
    // a check (status, trial restore) may use a newer minor; a restore may not
    expect(() => chooseTool([tool('etcdutl', '3.6.2', true)], 'h', { purpose: 'restore', clusterVersion: '3.5.30' })).toThrow(/written by a 3\.5 tool/);
    expect(chooseTool([tool('etcdutl', '3.6.2', true)], 'h', { purpose: 'check', clusterVersion: '3.5.30' }).tool.toolVersion).toBe('3.6.2');
    // version unknown: a bump-capable tool first, etcdutl first, the newest
    expect(pick(undefined).tool).toMatchObject({ kind: 'etcdutl', toolVersion: '3.6.2' });
  });

  it('says what was found and what to install when nothing fits', async () => {
    const none = binDir('none', {});
    const err = await chooseSnapshotTool(localHost, [none], { purpose: 'check' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'precondition', message: expect.stringMatching(/no etcdutl or etcdctl at all/), hint: expect.stringMatching(/install etcdutl/) });
  });
});
