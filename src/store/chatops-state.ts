/**
 * The little state `runbook serve` keeps besides runs, in the same place as its runs (the state dir, or the
 * management etcd with `--store`) so that it survives a restart and every replica sees the same:
 * - claims: "first one wins for a while" marks (Alertmanager dedupe per groupKey+fingerprint+startsAt, the
 *   per-cluster cooldown of alert-started runs);
 * - followed runs: the runs a server started from chat or an alert, with the chat message that shows each one,
 *   so a server that restarts (or another replica) resumes them and keeps editing the same message.
 */
import type { StateStore } from './types.ts';

import type { ChatopsState, Claim, FollowedRun } from './chatops-state-types.ts';

export type { ChatopsState, Claim, FollowedRun };

/**
 * The chat-ops state beside a store's runs: in the management etcd for an etcd store, else in the state dir.
 * Loaded lazily so the etcd client stays out of a file-store server.
 */
export async function openChatopsState(store: StateStore | undefined, stateDir: string): Promise<ChatopsState> {
  if (store?.kind === 'etcd') {
    const { EtcdChatopsState } = await import('./chatops-state-etcd.ts');
    return new EtcdChatopsState(store as import('./etcd.ts').EtcdStore);
  }
  const { FileChatopsState } = await import('./chatops-state-file.ts');
  return new FileChatopsState(stateDir);
}

/** In memory only (unit tests; nothing survives the process). */
export function memoryChatopsState(): ChatopsState {
  const claims = new Map<string, { at: number; until: number }>();
  const runs = new Map<string, FollowedRun>();
  return {
    description: 'memory',
    async claim(key, ttlMs, now = Date.now()) {
      const c = claims.get(key);
      if (c && c.until > now) return { first: false, at: c.at };
      claims.set(key, { at: now, until: now + ttlMs });
      return { first: true, at: now };
    },
    async follow(run) { runs.set(run.runId, structuredClone(run)); },
    async unfollow(runId) { runs.delete(runId); },
    async followed() { return [...runs.values()].map((r) => structuredClone(r)); },
  };
}
