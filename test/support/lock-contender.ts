/**
 * A child process of test/unit/store/machine-lock.test.ts: contends for one cluster's machine-wide run lock, round after
 * round, as a separate runbook process would. Between "go" and "done" files of each round it tries once; when it
 * gets the lock it enters a critical section guarded by an O_EXCL marker file (a second process inside at the same
 * time is a violation, written to the results), stays a moment, leaves, and releases.
 *
 * argv: lockDir workDir index rounds host withClusterId(0|1)
 */
import fs from 'node:fs';
import path from 'node:path';
import { canonicalPeerURLs } from '../../src/etcd/addresses.ts';
import { acquireLock } from '../../src/store/machine-lock.ts';

const [lockDir, work, index, rounds, host, withId] = process.argv.slice(2) as [string, string, string, string, string, string];
const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const log = (line: string) => fs.appendFileSync(path.join(work, 'results'), `${line}\n`);

// The same cluster as every other contender, spelled this contender's way (localhost or 127.0.0.1); half of them
// saw the cluster answer (they know its id), half did not.
const peerURLs = await canonicalPeerURLs([`http://${host}:2380`, `http://${host}:2381`, `http://${host}:2382`]);
const identity = { clusterId: withId === '1' ? 'c0ffee0ddba11' : null, peerURLs };
fs.writeFileSync(path.join(work, `ready-${index}`), ''); // loaded: the rounds start together once all are

for (let r = 0; r < Number(rounds); r++) {
  while (!fs.existsSync(path.join(work, `go-${r}`))) pause(1);
  try {
    const lock = acquireLock(identity, `run-${index}-${r}`, { dir: lockDir, label: 'hammer' });
    try {
      try {
        fs.closeSync(fs.openSync(path.join(work, 'inside'), 'wx'));
      } catch {
        log(`${r} ${index} VIOLATION: another holder is inside`);
      }
      pause(15);
      fs.rmSync(path.join(work, 'inside'), { force: true });
    } finally {
      lock.release();
    }
    log(`${r} ${index} ok`);
  } catch (err) {
    log(`${r} ${index} refused ${(err as Error).message.split('\n')[0]}`);
  }
  fs.writeFileSync(path.join(work, `done-${r}-${index}`), '');
}
