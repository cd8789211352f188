/**
 * The little state `runbook serve` keeps besides runs, in the same place as its runs (the state dir, or the
 * management etcd with `--store`) so that it survives a restart and every replica sees the same:
 * - claims: "first one wins for a while" marks (Alertmanager dedupe per groupKey+fingerprint+startsAt, the
 *   per-cluster cooldown of alert-started runs);
 * - followed runs: the runs a server started from chat or an alert, with the chat message that shows each one,
 *   so a server that restarts (or another replica) resumes them and keeps editing the same message.
 */
import type { StateStore } from './types.ts';

/** A run a `serve` started and shows in chat. */
export interface FollowedRun {
  runId: string;
  /** Which configured cluster it runs on. */
  cluster: string;
  origin: 'slack' | 'mattermost' | 'alertmanager';
  /** `slack:U123`, `alertmanager:etcdNoSpace`. */
  requester: string;
  requesterLabel: string;
  platform?: 'slack' | 'mattermost';
  channel: string;
  /** The run's message, once posted. */
  message?: { channel: string; id: string };
}

export interface Claim {
  /** True when this call took the claim; false when a live claim was there already. */
  first: boolean;
  /** When the claim in force was taken (ms since the epoch). */
  at: number;
}

export interface ChatopsState {
  readonly description: string;
  /** Take `key` for `ttlMs` unless someone holds it (atomically: one of several replicas wins). */
  claim(key: string, ttlMs: number, now?: number): Promise<Claim>;
  follow(run: FollowedRun): Promise<void>;
  unfollow(runId: string): Promise<void>;
  followed(): Promise<FollowedRun[]>;
}

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
