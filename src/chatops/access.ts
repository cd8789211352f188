/**
 * Who may do what from chat. Allowlists are per runbook (users, channels, approvers, clusters) and optionally per
 * cluster; a user or channel must be on every list that applies. Entries are platform ids (`U0123ABC`) or
 * platform-qualified ids (`slack:U0123ABC`, `mattermost:8xk…`).
 */
import type { ChatopsConfig } from './config.ts';
import type { Platform } from './chat.ts';

export interface Actor {
  platform: Platform | 'alertmanager';
  id: string;
  name?: string;
}

/** The requester identity stored with a run (`slack:U123`), compared for "approver is not the requester". */
export function actorKey(a: Actor): string {
  return `${a.platform}:${a.id}`;
}

export function actorLabel(a: Actor): string {
  if (a.platform === 'slack') return `<@${a.id}>`;
  if (a.platform === 'mattermost') return a.name ? `@${a.name}` : `mattermost user ${a.id}`;
  return `alert ${a.id}`;
}

function listed(list: readonly string[] | undefined, platform: string, id: string): boolean {
  if (!list) return true;
  return list.includes(id) || list.includes(`${platform}:${id}`);
}

export type Decision = { ok: true } | { ok: false; reason: string };

export function mayRun(cfg: ChatopsConfig, runbook: string, cluster: string, user: Actor, channel: string): Decision {
  const rb = cfg.runbooks[runbook];
  if (!rb || !Object.hasOwn(cfg.runbooks, runbook)) {
    return { ok: false, reason: `runbook "${runbook}" is not enabled for chat (enabled: ${Object.keys(cfg.runbooks).join(', ') || 'none'})` };
  }
  if (!Object.hasOwn(cfg.clusters, cluster)) {
    return { ok: false, reason: `unknown cluster "${cluster}" (configured: ${Object.keys(cfg.clusters).join(', ') || 'none'})` };
  }
  const cl = cfg.clusters[cluster]!;
  if (rb.clusters && !rb.clusters.includes(cluster)) return { ok: false, reason: `runbook "${runbook}" may not run on cluster "${cluster}" from chat` };
  if (!listed(rb.users, user.platform, user.id) || !listed(cl.users, user.platform, user.id)) {
    return { ok: false, reason: `you are not allowed to run "${runbook}" on "${cluster}"` };
  }
  if (!listed(rb.channels, user.platform, channel) || !listed(cl.channels, user.platform, channel)) {
    return { ok: false, reason: `"${runbook}" on "${cluster}" cannot be started from this channel` };
  }
  return { ok: true };
}

export function mayApprove(cfg: ChatopsConfig, runbook: string, cluster: string, approver: Actor, requesterKey: string | undefined): Decision {
  const rb = Object.hasOwn(cfg.runbooks, runbook) ? cfg.runbooks[runbook] : undefined;
  if (!rb) return { ok: false, reason: `runbook "${runbook}" is not enabled for chat` };
  const cl = Object.hasOwn(cfg.clusters, cluster) ? cfg.clusters[cluster] : undefined;
  if (!rb.approvers.length || !listed(rb.approvers, approver.platform, approver.id) || !listed(cl?.approvers, approver.platform, approver.id)) {
    return { ok: false, reason: `you are not an approver for "${runbook}" on "${cluster}"` };
  }
  if (requesterKey && requesterKey === actorKey(approver)) {
    return { ok: false, reason: 'you asked for this run: another approver must approve it' };
  }
  return { ok: true };
}

/** Runbooks a user may start in a channel, with the clusters for each. */
export function allowedHere(cfg: ChatopsConfig, user: Actor, channel: string): { runbook: string; clusters: string[] }[] {
  const out: { runbook: string; clusters: string[] }[] = [];
  for (const runbook of Object.keys(cfg.runbooks)) {
    const clusters = Object.keys(cfg.clusters).filter((c) => mayRun(cfg, runbook, c, user, channel).ok);
    if (clusters.length) out.push({ runbook, clusters });
  }
  return out;
}

/** May this user read runs of this runbook (status)? Anyone who may run or approve it somewhere. */
export function mayRead(cfg: ChatopsConfig, runbook: string, user: Actor): boolean {
  const rb = Object.hasOwn(cfg.runbooks, runbook) ? cfg.runbooks[runbook] : undefined;
  if (!rb) return false;
  return listed(rb.users, user.platform, user.id) || (rb.approvers.length > 0 && listed(rb.approvers, user.platform, user.id));
}
