/**
 * Alertmanager webhook notifications → runbook runs. Alertmanager re-sends a group's notification on every
 * group_interval/repeat_interval and retries failed deliveries, so an alert is taken once per
 * (groupKey, fingerprint, startsAt), and a cluster gets at most one alert-started run per cooldown.
 */
import { z } from 'zod';
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

/** A map with expiry and a size bound (oldest first out). */
class ExpiringSet {
  readonly #m = new Map<string, number>();
  readonly #ttl: number;
  readonly #max: number;
  constructor(ttlMs: number, max: number) {
    this.#ttl = ttlMs;
    this.#max = max;
  }
  has(k: string, now: number): boolean {
    const exp = this.#m.get(k);
    if (exp === undefined) return false;
    if (exp <= now) {
      this.#m.delete(k);
      return false;
    }
    return true;
  }
  add(k: string, now: number): void {
    this.#m.delete(k);
    this.#m.set(k, now + this.#ttl);
    while (this.#m.size > this.#max) {
      const first = this.#m.keys().next().value;
      if (first === undefined) break;
      this.#m.delete(first);
    }
  }
}

export class AlertRouter {
  readonly #cfg: ChatopsConfig;
  readonly #seen = new ExpiringSet(7 * 24 * 3600_000, 50_000);
  readonly #lastStart = new Map<string, number>();

  constructor(cfg: ChatopsConfig) {
    this.#cfg = cfg;
  }

  /** Decide, synchronously, what to do with each alert of a notification (and remember what was taken). */
  route(n: Notification, now = Date.now()): AlertOutcome[] {
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
      if (this.#seen.has(key, now)) {
        out.push({ alertname, outcome: 'duplicate', key, reason: 'already handled (same groupKey, fingerprint and startsAt)' });
        continue;
      }
      this.#seen.add(key, now);
      const cluster = a.labels[route.clusterLabel];
      if (!cluster) {
        out.push({ alertname, outcome: 'no-cluster', key, reason: `the alert has no "${route.clusterLabel}" label` });
        continue;
      }
      if (!Object.hasOwn(this.#cfg.clusters, cluster)) {
        out.push({ alertname, outcome: 'unknown-cluster', cluster, key, reason: `cluster "${cluster}" is not configured` });
        continue;
      }
      const last = this.#lastStart.get(cluster);
      if (last !== undefined && now - last < this.#cfg.cooldownMs) {
        out.push({ alertname, outcome: 'cooldown', cluster, key, reason: `a run for cluster "${cluster}" was started by an alert ${Math.round((now - last) / 1000)} s ago (cooldown ${Math.round(this.#cfg.cooldownMs / 1000)} s)` });
        continue;
      }
      this.#lastStart.set(cluster, now);
      out.push({ alertname, outcome: 'start', route, cluster, key });
    }
    return out;
  }
}
