/** The shape of the chat-ops state (src/store/chatops-state.ts), apart so its two stores need not import the opener. */

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
