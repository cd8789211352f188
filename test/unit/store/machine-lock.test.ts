/**
 * The machine-wide run lock (src/store/machine-lock.ts): keys from the cluster's identity, atomic under real concurrency
 * across processes, stale holders cleared (a journal that ended: automatically), refusals that name the holder.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalPeerURLs } from '../../../src/etcd/addresses.ts';
import { acquireLock, lockDir, lockHolder, lockKeys } from '../../../src/store/machine-lock.ts';

const root = path.resolve(import.meta.dirname, '../../..');
let dir = '';
let locks = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runbook-lock-'));
  locks = path.join(dir, 'locks');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A pid that is certainly not running: a process that has exited. */
async function deadPid(): Promise<number> {
  const p = execa('true');
  await p;
  return p.pid!;
}

function endedJournal(file: string): string {
  fs.writeFileSync(file, `${JSON.stringify({ seq: 1, type: 'run.started' })}\n${JSON.stringify({ seq: 2, type: 'run.finished', status: 'succeeded' })}\n`);
  return file;
}

/** Plant a lock file for `key` held by someone else (as a crashed or finished runbook process leaves it). */
function plant(key: string, holder: Record<string, unknown>): void {
  fs.mkdirSync(locks, { recursive: true });
  fs.writeFileSync(path.join(locks, `${key}.lock`), JSON.stringify({ since: new Date().toISOString(), command: 'run', host: os.hostname(), ...holder }));
}

describe('lock keys', () => {
  it('localhost and 127.0.0.1, any case and a trailing slash, key the same peer; a cluster id adds a key', async () => {
    const a = await canonicalPeerURLs(['http://localhost:2380/', 'http://127.0.0.1:2381']);
    const b = await canonicalPeerURLs(['http://127.0.0.1:2381', 'HTTP://LOCALHOST:2380']);
    expect(a).toEqual(b);
    expect(lockKeys({ clusterId: null, peerURLs: a })).toHaveLength(2);
    const withId = lockKeys({ clusterId: 'abc123', peerURLs: a });
    expect(withId).toContain('cluster-abc123');
    expect(withId).toEqual(expect.arrayContaining(lockKeys({ clusterId: null, peerURLs: a })));
  });

  it('the default place is machine-wide (not under a state dir or $HOME); RUNBOOK_LOCK_DIR overrides it', () => {
    expect(lockDir({})).toBe(fs.existsSync('/run/lock') ? '/run/lock/runbook' : fs.existsSync('/var/lock') ? '/var/lock/runbook' : path.join(os.tmpdir(), 'runbook-locks'));
    expect(lockDir({ HOME: '/home/x', RUNBOOK_STATE_DIR: '/s' })).toBe(lockDir({}));
    expect(lockDir({ RUNBOOK_LOCK_DIR: '/tmp/l' })).toBe('/tmp/l');
  });
});

describe('acquireLock', () => {
  const id = { clusterId: 'c1', peerURLs: ['http://127.0.0.1:2380'] };

  it('creates the dir world-writable and sticky; a second run is refused naming the holder, its run, host and pid', () => {
    const lock = acquireLock(id, 'run-a', { dir: locks, label: 'prod' });
    expect(fs.statSync(locks).mode & 0o7777).toBe(0o1777);
    // a run that knows only the peer URLs (nothing answered) is refused too
    expect(() => acquireLock({ clusterId: null, peerURLs: id.peerURLs }, 'run-b', { dir: locks, label: 'prod-copy' })).toThrow(
      new RegExp(`cluster "prod-copy" is locked by run run-a \\(pid ${process.pid} on ${os.hostname()}`),
    );
    // as is one that reached it under another address but got the same cluster id
    expect(() => acquireLock({ clusterId: 'c1', peerURLs: ['http://10.9.9.9:2380'] }, 'run-c', { dir: locks })).toThrow(/locked by run run-a/);
    lock.release();
    expect(fs.readdirSync(locks).filter((f) => f.endsWith('.lock'))).toEqual([]);
    acquireLock(id, 'run-b', { dir: locks }).release();
  });

  it('an unwritable lock dir is a clear error naming the dir and RUNBOOK_LOCK_DIR', () => {
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, '');
    expect(() => acquireLock(id, 'run-a', { dir: path.join(file, 'locks') })).toThrow(/cannot use the run lock directory .*not-a-dir\/locks.*RUNBOOK_LOCK_DIR/s);
  });

  it('a lock whose run journal ended is cleared automatically, even while its pid lives (killed right after run.finished)', async () => {
    for (const key of lockKeys(id)) plant(key, { runId: 'done-run', pid: process.pid, journal: endedJournal(path.join(dir, 'journal.jsonl')) });
    const lock = acquireLock(id, 'next-run', { dir: locks });
    expect(lockHolder(id, locks)?.runId).toBe('next-run');
    lock.release();
    expect(fs.readdirSync(locks).some((f) => f.includes('.stale-'))).toBe(true); // moved aside, not lost
  });

  it("a dead holder's lock: the same run takes it over; another run is told to resume it or --break-lock", async () => {
    const pid = await deadPid();
    for (const key of lockKeys(id)) plant(key, { runId: 'crashed', pid, journal: path.join(dir, 'no-journal.jsonl') });
    expect(() => acquireLock(id, 'other', { dir: locks })).toThrow(/stale lock from run crashed .*not running[\s\S]*runbook resume crashed[\s\S]*--break-lock/);
    acquireLock(id, 'crashed', { dir: locks }).release();
    for (const key of lockKeys(id)) plant(key, { runId: 'crashed', pid });
    acquireLock(id, 'other', { dir: locks, breakLock: true }).release();
  });

  it('a live holder is never broken, not even with --break-lock', () => {
    for (const key of lockKeys(id)) plant(key, { runId: 'alive', pid: process.pid });
    expect(() => acquireLock(id, 'other', { dir: locks, breakLock: true })).toThrow(/locked by run alive/);
  });

  it('50 rounds of 8 processes at once (localhost and 127.0.0.1, with and without the cluster id): never two holders', async () => {
    const ROUNDS = 50;
    const N = 8;
    const work = path.join(dir, 'work');
    fs.mkdirSync(work);
    const children = Array.from({ length: N }, (_, i) =>
      execa(process.execPath, [path.join(root, 'test/support/lock-contender.ts'), locks, work, String(i), String(ROUNDS), i % 2 ? 'localhost' : '127.0.0.1', i % 4 < 2 ? '1' : '0'], { reject: false }));
    let exited = 0;
    for (const c of children) void c.then(() => { exited++; });
    const peerURLs = await canonicalPeerURLs(['http://127.0.0.1:2380']);
    const dead = await deadPid();
    // Node takes a while to start 8 times on a busy machine: the rounds begin once every contender is loaded.
    for (const until = Date.now() + 100_000; fs.readdirSync(work).filter((f) => f.startsWith('ready-')).length < N;) {
      if (Date.now() > until || exited > 0) throw new Error(`contenders did not start: ${(await Promise.all(children.map((c) => { c.kill(); return c; }))).map((c) => c.stderr).join('\n')}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    for (let r = 0; r < ROUNDS; r++) {
      // Every fifth round starts from a lock left behind: a crashed process's whose run ended (by another pid, or
      // by a dead one). All 8 race to clear it: clearing must not let two in either.
      if (r % 5 === 0) {
        const journal = endedJournal(path.join(dir, `ended-${r}.jsonl`));
        for (const key of lockKeys({ clusterId: null, peerURLs })) plant(key, { runId: `left-${r}`, pid: r % 10 === 0 ? dead : process.pid, journal });
      }
      fs.writeFileSync(path.join(work, `go-${r}`), '');
      for (const until = Date.now() + 30_000; ;) {
        const done = fs.readdirSync(work).filter((f) => f.startsWith(`done-${r}-`)).length;
        if (done === N) break;
        if (Date.now() > until || exited > 0) {
          for (const c of children) c.kill();
          const why = (await Promise.all(children)).map((c) => c.stderr).filter(Boolean).join('\n');
          throw new Error(`round ${r}: only ${done} of ${N} contenders finished ${why}`);
        }
        await new Promise((res) => setTimeout(res, 5));
      }
    }
    const results = await Promise.all(children);
    for (const c of results) expect(c.exitCode, c.stderr).toBe(0);
    const lines = fs.readFileSync(path.join(work, 'results'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(ROUNDS * N);
    expect(lines.filter((l) => l.includes('VIOLATION'))).toEqual([]);
    for (let r = 0; r < ROUNDS; r++) expect(lines.filter((l) => l.startsWith(`${r} `) && l.endsWith(' ok')).length, `round ${r}`).toBeGreaterThanOrEqual(1);
    const refused = lines.filter((l) => l.includes(' refused '));
    expect(refused.length).toBeGreaterThan(0);
    for (const l of refused) expect(l).toMatch(/is locked by run run-\d-\d+ \(pid \d+ on .+, since /);
  }, 240_000);
});
