/** The static-pod driver's manifest handling: edits touch only the flag, backups and parking never overwrite. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { staticPodDriver, staticPodPaths } from '../../../src/drivers/static-pod.ts';
import { manifestArgv, setManifestFlag } from '../../../src/drivers/pod-manifest.ts';
import { driverFor } from '../../../src/drivers/index.ts';
import { StepError } from '../../../src/util/errors.ts';

const example = readFileSync(new URL('../../../examples/static-pod/etcd.yaml', import.meta.url), 'utf8');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function node(): { manifests: string; manifest: string } {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-static-pod-'));
  dirs.push(dir);
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  const manifest = join(manifests, 'etcd.yaml');
  writeFileSync(manifest, example);
  return { manifests, manifest };
}

describe('manifest edits', () => {
  it('reads the etcd argv of the kubeadm example', () => {
    const argv = manifestArgv(example);
    expect(argv[0]).toBe('etcd');
    expect(argv).toContain('--name=cp-1');
    expect(argv).toContain('--data-dir=/var/lib/etcd');
  });

  it('appends a missing flag and changes nothing else (comments kept)', () => {
    const r = setManifestFlag(example, 'quota-backend-bytes', '8589934592');
    expect(r).toMatchObject({ changed: true });
    expect(r.previous).toBeUndefined();
    const before = example.split('\n');
    const after = r.text.split('\n');
    expect(after.length).toBe(before.length + 1);
    const at = after.indexOf('    - --quota-backend-bytes=8589934592');
    expect(at).toBe(before.indexOf('    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt') + 1);
    expect([...after.slice(0, at), ...after.slice(at + 1)]).toEqual(before);
    const a = parse(example);
    const b = parse(r.text);
    b.spec.containers[0].command.pop();
    expect(b).toEqual(a);
  });

  it('rewrites an existing flag in place, keeps its form, and is a no-op at the same value', () => {
    const once = setManifestFlag(example, 'snapshot-count', '5000');
    expect(once).toMatchObject({ changed: true, previous: '10000' });
    expect(once.text.split('\n').filter((l, i) => l !== example.split('\n')[i])).toEqual(['    - --snapshot-count=5000']);
    expect(setManifestFlag(once.text, 'snapshot-count', '5000')).toMatchObject({ changed: false, previous: '5000', text: once.text });

    const sep = example.replace('    - --snapshot-count=10000', '    - --snapshot-count\n    - "10000"');
    const r = setManifestFlag(sep, 'snapshot-count', '20000');
    expect(manifestArgv(r.text)).toContain('20000');
    expect(manifestArgv(r.text)).not.toContain('10000');
    expect(parse(r.text).spec.containers[0].command).toContain('20000'); // a string, not the number 20000

    const flow = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command: [etcd, --name=a]\n';
    expect(manifestArgv(setManifestFlag(flow, 'quota-backend-bytes', '1024').text)).toEqual(['etcd', '--name=a', '--quota-backend-bytes=1024']);
  });

  it('edits args when the flag is there, and refuses manifests without a command', () => {
    const withArgs = example.replace('    - --snapshot-count=10000\n', '').replace('    image: registry', '    args:\n    - --snapshot-count=10000\n    image: registry');
    const r = setManifestFlag(withArgs, 'snapshot-count', '1');
    expect(parse(r.text).spec.containers[0].args).toEqual(['--snapshot-count=1']);
    expect(manifestArgv(r.text).at(-1)).toBe('--snapshot-count=1');
    expect(() => manifestArgv('apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    image: x\n')).toThrow(/command is empty/);
    expect(() => manifestArgv('spec: [')).toThrow(StepError);
  });
});

describe('paths', () => {
  it('defaults the backup dir next to the manifests dir and refuses one inside it', () => {
    expect(staticPodPaths({ type: 'static-pod', manifest: '/etc/kubernetes/manifests/etcd.yaml' })).toMatchObject({
      backupDir: '/etc/kubernetes/runbook-backups',
      parked: '/etc/kubernetes/runbook-backups/etcd.stopped.yaml',
    });
    expect(() => staticPodPaths({ type: 'static-pod', manifest: '/etc/kubernetes/manifests/etcd.yaml', backupDir: '/etc/kubernetes/manifests/old' })).toThrow(/inside the manifests dir/);
    expect(() => staticPodPaths({ type: 'static-pod', manifest: 'manifests/etcd.yaml' })).toThrow(/absolute/);
  });
});

describe('driver on files (no process)', () => {
  it('setFlag backs up first and writes atomically; stop parks the manifest, start puts it back; nothing is overwritten', async () => {
    const { manifests, manifest } = node();
    const d = staticPodDriver({ name: 'cp-1', driver: { type: 'static-pod', manifest } });
    // driverFor dispatches a static-pod member to this driver: it reads the same manifest.
    expect(await driverFor({ name: 'cp-1', driver: { type: 'static-pod', manifest } }).getFlag('name')).toBe('cp-1');
    expect(await d.status()).toEqual({ running: false });
    expect(await d.getFlag('name')).toBe('cp-1');

    expect(await d.setFlag('quota-backend-bytes', '4096')).toEqual({ changed: true });
    const backups = await d.backups();
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(/\/runbook-backups\/etcd\.\d{8}T\d{6}Z\.yaml$/);
    expect(readFileSync(backups[0]!, 'utf8')).toBe(example);
    expect(await d.getFlag('quota-backend-bytes')).toBe('4096');
    expect(readdirSync(manifests)).toEqual(['etcd.yaml']); // no temp files left where the kubelet looks
    expect(await d.setFlag('quota-backend-bytes', '4096')).toEqual({ changed: false, previous: '4096' });
    expect(await d.setFlag('quota-backend-bytes', '8192')).toEqual({ changed: true, previous: '4096' });
    expect(await d.backups()).toHaveLength(2); // same second: a -2 suffix, never overwritten

    await d.stop({ timeoutMs: 1000 });
    expect(existsSync(manifest)).toBe(false);
    expect(await d.where()).toBe('parked');
    await d.stop({ timeoutMs: 1000 }); // idempotent
    // Changing a stopped member edits the parked manifest.
    expect(await d.setFlag('quota-backend-bytes', '16384')).toEqual({ changed: true, previous: '8192' });
    await d.start();
    expect(await d.where()).toBe('manifests');
    expect(manifestArgv(readFileSync(manifest, 'utf8'))).toContain('--quota-backend-bytes=16384');
    await d.start(); // idempotent

    // Someone copied the manifest back by hand while it was parked: refuse to pick one.
    await d.stop({ timeoutMs: 1000 });
    writeFileSync(manifest, example);
    await expect(d.stop({ timeoutMs: 1000 })).rejects.toThrow(/both .* exist/);
    expect(readFileSync(manifest, 'utf8')).toBe(example);
  });

  it('reports a missing manifest', async () => {
    const d = staticPodDriver({ name: 'x', driver: { type: 'static-pod', manifest: '/nonexistent/m/etcd.yaml' } });
    expect(await d.status()).toEqual({ running: false });
    await expect(d.start()).rejects.toThrow(/neither/);
    await expect(d.getFlag('name')).rejects.toThrow(/manifest not found/);
  });
});
