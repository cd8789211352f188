/**
 * Chat-ops state in the local state dir: <stateDir>/chatops/claims/<sha256 of key>.json (created with O_EXCL:
 * first writer wins) and <stateDir>/chatops/runs/<runId>.json (written atomically). Servers sharing one state dir
 * on one machine share it; an expired claim is moved aside before it is taken again.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './journal.ts';
import { mkdirp } from '../util/mkdirp.ts';
import type { ChatopsState, Claim, FollowedRun } from './chatops-state-types.ts';

const RUN_ID = /^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$/;

export class FileChatopsState implements ChatopsState {
  readonly description: string;
  readonly #claims: string;
  readonly #runs: string;

  constructor(stateDir: string) {
    const root = path.join(stateDir, 'chatops');
    this.description = `state dir ${stateDir}`;
    this.#claims = path.join(root, 'claims');
    this.#runs = path.join(root, 'runs');
  }

  async claim(key: string, ttlMs: number, now = Date.now()): Promise<Claim> {
    mkdirp(this.#claims);
    const file = path.join(this.#claims, `${crypto.createHash('sha256').update(key).digest('hex')}.json`);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, `${JSON.stringify({ key: key.slice(0, 200), at: now, until: now + ttlMs })}\n`, { flag: 'wx', mode: 0o600 });
        return { first: true, at: now };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let held: { at: number; until: number } | undefined;
      try {
        held = JSON.parse(fs.readFileSync(file, 'utf8')) as { at: number; until: number };
      } catch {
        held = undefined; // being written this very moment by another server: it holds the claim
      }
      if (!held) return { first: false, at: now };
      if (held.until > now) return { first: false, at: held.at };
      // Expired: move it aside (rename is atomic, so of two servers only one moves this file), then take it.
      const aside = `${file}.expired-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
      try {
        fs.renameSync(file, aside);
        fs.rmSync(aside, { force: true });
      } catch {
        /* another server moved it first; try again */
      }
    }
    return { first: false, at: now };
  }

  async follow(run: FollowedRun): Promise<void> {
    mkdirp(this.#runs);
    writeFileAtomic(this.#file(run.runId), `${JSON.stringify(run)}\n`);
  }

  async unfollow(runId: string): Promise<void> {
    fs.rmSync(this.#file(runId), { force: true });
  }

  async followed(): Promise<FollowedRun[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.#runs);
    } catch {
      return [];
    }
    const out: FollowedRun[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json') || !RUN_ID.test(n.slice(0, -5))) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.#runs, n), 'utf8')) as FollowedRun);
      } catch {
        /* torn by a crash mid-write (writeFileAtomic makes that unlikely): the run's own journal still has it */
      }
    }
    return out;
  }

  #file(runId: string): string {
    if (!RUN_ID.test(runId)) throw new Error(`not a run id: ${JSON.stringify(runId)}`);
    return path.join(this.#runs, `${runId}.json`);
  }
}
