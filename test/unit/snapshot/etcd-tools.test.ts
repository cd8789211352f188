import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localHost } from '../../../src/hosts/local.ts';
import { BUMP_REVISION, detectRestoreTool, parseVersion, restoreArgv } from '../../../src/snapshot/etcd-tools.ts';
import { StepError } from '../../../src/util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'runbook-tools-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A bin dir with fake tools that print what the real ones print for --version / version. */
function binDir(name: string, tools: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [tool, out] of Object.entries(tools)) {
    writeFileSync(join(dir, tool), `#!/bin/sh\nprintf '%s\\n' '${out}'\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  return dir;
}

describe('etcd tools', () => {
  it('parses the version lines of etcd, etcdctl and etcdutl', () => {
    expect(parseVersion('etcd Version: 3.4.23\nGit SHA: x')).toMatchObject({ major: 3, minor: 4, patch: 23 });
    expect(parseVersion('etcdctl version: 3.5.9\nAPI version: 3.5')?.text).toBe('3.5.9');
    expect(parseVersion('etcdutl version: 3.6.0')?.minor).toBe(6);
    expect(parseVersion('nothing here')).toBeUndefined();
  });

  it('restores with etcdctl on 3.4 and with etcdutl (bump + mark compacted) on >= 3.5', async () => {
    const v34 = binDir('v34', { etcd: 'etcd Version: 3.4.23', etcdctl: 'etcdctl version: 3.4.23' });
    const v35 = binDir('v35', { etcd: 'etcd Version: 3.5.12', etcdctl: 'etcdctl version: 3.5.12', etcdutl: 'etcdutl version: 3.5.12' });
    const onlyUtl = binDir('utl', { etcdutl: 'etcdutl version: 3.6.1' });
    expect(await detectRestoreTool(localHost, v34)).toEqual({ kind: 'etcdctl', path: join(v34, 'etcdctl'), version: '3.4.23' });
    expect(await detectRestoreTool(localHost, v35)).toEqual({ kind: 'etcdutl', path: join(v35, 'etcdutl'), version: '3.5.12' });
    expect((await detectRestoreTool(localHost, onlyUtl)).kind).toBe('etcdutl');

    const args = { snapshot: '/s.db', dataDir: '/d.part', name: 'm1', peerURLs: 'https://10.0.0.1:2380', initialCluster: 'm1=https://10.0.0.1:2380', token: 'tok' };
    const a34 = restoreArgv({ kind: 'etcdctl', path: 'etcdctl' }, args);
    expect(a34).toEqual(['etcdctl', 'snapshot', 'restore', '/s.db', '--data-dir', '/d.part', '--name', 'm1', '--initial-advertise-peer-urls', 'https://10.0.0.1:2380', '--initial-cluster', 'm1=https://10.0.0.1:2380', '--initial-cluster-token', 'tok']);
    const a35 = restoreArgv({ kind: 'etcdutl', path: '/x/etcdutl' }, args);
    expect(a35.slice(-3)).toEqual(['--bump-revision', String(BUMP_REVISION), '--mark-compacted']);
  });

  it('refuses etcd >= 3.5 without etcdutl, and says when nothing is installed', async () => {
    const noUtl = binDir('noutl', { etcd: 'etcd Version: 3.5.12', etcdctl: 'etcdctl version: 3.5.12' });
    const err = await detectRestoreTool(localHost, noUtl).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).message).toMatch(/etcd 3\.5\.12 is installed but etcdutl is not/);
    const none = binDir('none', {});
    expect(((await detectRestoreTool(localHost, none).catch((e: unknown) => e)) as Error).message).toMatch(/neither etcdutl nor etcdctl/);
  });
});
