/**
 * Alertmanager webhook notifications → runbook runs. Alertmanager re-sends a group's notification on every
 * group_interval/repeat_interval and retries failed deliveries, so an alert is taken once per
 * (groupKey, fingerprint, startsAt), and a cluster gets at most one alert-started run per cooldown. Both are claims
 * in the chat-ops state (src/store/chatops-state.ts): kept in the state dir or the management etcd, they survive a
 * restart of `serve` and are shared by its replicas (one of two replicas that get the same notification wins).
 */
import { z } from 'zod';
import { memoryChatopsState, type ChatopsState } from '../run-records.ts';
import type { AlertRoute, ChatopsConfig } from './config.ts';

const zAlert = z.object({
  status: z.string().max(20),
  labels: z.record(z.string(), z.string().max(1024)),
  annotations: z.record(z.string(), z.string()).optional(),
  startsAt: z.string().max(64),
  endsAt: z.string().max(64).optional(),
  fingerprint: z.string().max(128).optional(),
});

/** Alertmanager webhook payload, version 4 (only the fields used). */
export const zNotification = z.object({
  version: z.string().max(10).optional(),
  groupKey: z.string().max(4096),
  status: z.string().max(20),
  receiver: z.string().max(256).optional(),
  alerts: z.array(zAlert).max(1000),
});

export type Notification = z.output<typeof zNotification>;

export type AlertOutcome =
  | { alertname: string; outcome: 'start'; route: AlertRoute; cluster: string; key: string }
  | { alertname: string; outcome: 'duplicate' | 'cooldown' | 'unmapped' | 'resolved' | 'no-cluster' | 'unknown-cluster'; cluster?: string; key?: string; reason: string };

/** How long a handled alert is remembered (Alertmanager resends a firing alert with the same startsAt for days). */
export const DEDUPE_TTL_MS = 7 * 24 * 3600_000;

export class AlertRouter {
  readonly #cfg: ChatopsConfig;
  readonly #state: ChatopsState;

  constructor(cfg: ChatopsConfig, state: ChatopsState = memoryChatopsState()) {
    this.#cfg = cfg;
    this.#state = state;
  }

  /** Decide what to do with each alert of a notification (and remember what was taken, in the chat-ops state). */
  async route(n: Notification, now = Date.now()): Promise<AlertOutcome[]> {
    const out: AlertOutcome[] = [];
    for (const a of n.alerts) {
      const alertname = a.labels.alertname ?? '';
      if (a.status !== 'firing') {
        out.push({ alertname, outcome: 'resolved', reason: `alert is ${a.status}` });
        continue;
      }
      const route = Object.hasOwn(this.#cfg.alerts, alertname) ? this.#cfg.alerts[alertname] : undefined;
      if (!route) {
        out.push({ alertname, outcome: 'unmapped', reason: `no runbook is configured for alert "${alertname}"` });
        continue;
      }
      const key = `${n.groupKey}\u0000${a.fingerprint ?? JSON.stringify(Object.entries(a.labels).sort())}\u0000${a.startsAt}`;
      if (!(await this.#state.claim(`alert\u0000${key}`, DEDUPE_TTL_MS, now)).first) {
        out.push({ alertname, outcome: 'duplicate', key, reason: 'already handled (same groupKey, fingerprint and startsAt)' });
        continue;
      }
      const cluster = a.labels[route.clusterLabel];
      if (!cluster) {
        out.push({ alertname, outcome: 'no-cluster', key, reason: `the alert has no "${route.clusterLabel}" label` });
        continue;
      }
      if (!Object.hasOwn(this.#cfg.clusters, cluster)) {
        out.push({ alertname, outcome: 'unknown-cluster', cluster, key, reason: `cluster "${cluster}" is not configured` });
        continue;
      }
      if (this.#cfg.cooldownMs > 0) {
        const c = await this.#state.claim(`cooldown\u0000${cluster}`, this.#cfg.cooldownMs, now);
        if (!c.first) {
          out.push({ alertname, outcome: 'cooldown', cluster, key, reason: `a run for cluster "${cluster}" was started by an alert ${Math.max(0, Math.round((now - c.at) / 1000))} s ago (cooldown ${Math.round(this.#cfg.cooldownMs / 1000)} s)` });
          continue;
        }
      }
      out.push({ alertname, outcome: 'start', route, cluster, key });
    }
    return out;
  }
}
