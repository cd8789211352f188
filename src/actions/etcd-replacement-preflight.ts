/**
 * etcd.replacement-preflight: which member to replace, and whether it is safe, decided before anything changes.
 * Refuses (kind `precondition`, with the numbers) when the removal would leave the healthy voters without a
 * quorum, on a 2-member cluster, or when a learner exists. Read-only; its output (the member's id, peer URL, and
 * the identity of its data dir) is journaled and used by the later steps.
 */
import { callOpts, etcdPool, sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { effectiveCommand, getFlag } from '../drivers/process.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import type { PreflightRecord } from './membership-common.ts';
import { dirIdentity, type DirIdentity } from './membership-data-dir.ts';
import { quorumOf, replacementVerdict } from './membership-quorum.ts';
import { answers, describeEntry, findInRoster, isVoter, label, readRoster, type Found, type Roster } from './membership-roster.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type PreflightInput = ActionInput<'etcd.replacement-preflight'>;

export interface PreflightOutput extends PreflightRecord {
  /** Whether the old member's data dir was there at preflight (null: not on this machine, unknown). */
  dataDirExisted: boolean | null;
  voters: number;
  healthyVoters: string[];
  quorumAfter: number;
  summary: string;
}

/** How long to wait for a leader when everything else says go (an election after the leader died). */
const LEADER_WAIT_MS = 20_000;

function unhealthy(roster: Roster): { name: string; why: string }[] {
  return [
    ...roster.entries.filter((e) => !answers(e) && !e.member.isLearner).map((e) => ({ name: label(e), why: e.error ?? 'does not answer' })),
    ...roster.missing.map((s) => ({ name: s.name, why: 'not in the member list' })),
  ];
}

function identify(roster: Roster, ref: string | undefined, inventoryName: string): Found {
  const voters = roster.entries.filter(isVoter);
  const healthy = voters.filter(answers);
  if (ref !== undefined) {
    const found = findInRoster(roster, ref);
    if (!found) {
      const known = roster.entries.map(describeEntry).join('; ');
      throw new StepError('invalid', `no member ${JSON.stringify(ref)}: not an inventory name, member name, id or URL of this cluster (members: ${known})`);
    }
    return found;
  }
  const bad = unhealthy(roster);
  if (bad.length === 1) {
    const only = findInRoster(roster, bad[0]!.name);
    if (only) return only;
  }
  if (healthy.length < quorumOf(voters.length)) {
    throw new StepError('precondition', `no quorum: ${healthy.length} of ${voters.length} voters healthy (${healthy.map(label).join(', ') || 'none'}), ${quorumOf(voters.length)} needed: replacing a member now would lose the cluster`, {
      hint: 'bring stopped members back first (or run power-loss-restore when they cannot come back)',
    });
  }
  if (bad.length === 0) {
    throw new StepError('invalid', `every member of ${inventoryName} is healthy (${roster.entries.map(label).join(', ')}): name the member to replace (--param member=NAME)`);
  }
  throw new StepError('invalid', `${bad.length} members are unhealthy (${bad.map((b) => `${b.name}: ${b.why}`).join('; ')}): name the one to replace (--param member=NAME)`);
}

/** The old member's data dir as its process uses it (process driver flags), else the inventory's. */
function oldDataDir(spec: MemberSpec): string | undefined {
  if (spec.driver.type === 'process') return getFlag(effectiveCommand(spec.driver), 'data-dir') ?? spec.dataDir;
  return spec.dataDir;
}

async function assess(ctx: ActionContext, input: PreflightInput): Promise<{ out: PreflightOutput; roster: Roster } | { wait: string }> {
  const roster = await readRoster(etcdPool(ctx), callOpts(ctx));
  if (roster.entries.length === 0) {
    return { wait: `no member answers${roster.errors.length ? ` (${roster.errors.join('; ')})` : ''}: ${ctx.inventory.members.map((m) => m.name).join(', ')}` };
  }
  const found = identify(roster, input.member, ctx.inventory.name);
  const entry = found.kind === 'member' ? found.entry : undefined;
  const spec = found.kind === 'member' ? found.entry.spec : found.spec;
  if (!spec) {
    throw new StepError('invalid', `${describeEntry(entry!)} is not in inventory ${ctx.inventory.name}: add it (name, URLs, data dir, driver) so its replacement can be started`);
  }
  const verdict = replacementVerdict({
    voters: roster.entries.filter(isVoter).map((e) => ({ name: label(e), healthy: answers(e) })),
    learners: roster.entries.filter((e) => e.member.isLearner).map(describeEntry),
    ...(entry && isVoter(entry) ? { target: label(entry) } : {}),
  });
  // A learner target is caught by the learner rule above; a target etcd does not list is "already removed".
  if (!verdict.ok) throw new StepError('precondition', `not replacing ${spec.name}: ${verdict.reason}`, { member: spec.name, hint: verdict.hint });
  if (!roster.linearizable || !roster.leader) return { wait: 'no leader that answers yet (an election may be under way)' };
  const dir = spec.ssh ? undefined : oldDataDir(spec);
  const dataDir: DirIdentity | undefined = dir !== undefined ? dirIdentity(dir) : undefined;
  const out: PreflightOutput = {
    kind: 'member-replacement-preflight',
    member: {
      name: spec.name,
      id: entry?.member.id ?? null,
      peerURL: spec.peerURL,
      clientURL: spec.clientURL,
      alive: entry ? answers(entry) : false,
      leader: entry !== undefined && roster.leader.member.id === entry.member.id,
      inCluster: entry !== undefined,
    },
    ...(dataDir ? { dataDir } : {}),
    dataDirExisted: dataDir ? dataDir.existed : null,
    voters: roster.entries.filter(isVoter).length,
    healthyVoters: verdict.healthyAfter,
    quorumAfter: verdict.quorumAfter,
    summary: verdict.summary,
  };
  return { out, roster };
}

export const replacementPreflightAction: ImplementedAction = implement('etcd.replacement-preflight', {
  async run(ctx, input) {
    const started = Date.now();
    const until = Math.min(started + LEADER_WAIT_MS, ctx.deadline ?? Infinity);
    for (let i = 0; ; i++) {
      const r = await assess(ctx, input);
      if ('out' in r) {
        const { member } = r.out;
        const state = !member.inCluster ? 'already removed from the cluster' : member.alive ? `alive${member.leader ? ' and the leader' : ''}` : 'not answering';
        ctx.log(`replacing ${member.name}${member.id ? ` (id ${member.id})` : ''}, peer URL ${member.peerURL}: ${state}; ${r.out.summary}`, {
          member: member.name,
          ...(member.id ? { id: member.id } : {}),
        });
        if (r.out.dataDir && !r.out.dataDir.existed) ctx.log(`its data dir ${r.out.dataDir.path} does not exist (lost with the disk?)`);
        return r.out;
      }
      if (Date.now() >= until) throw new StepError('precondition', `not replacing a member: ${r.wait}`, { hint: 'a membership change needs a working quorum with a leader' });
      // Every 100 ms for the first 3 s (a member that died as leader leaves an election of about one election
      // timeout: the change can go on the moment a new leader is there), then backing off to 2 s.
      const pause = Date.now() - started < 3_000 ? 100 : 250 * 2 ** Math.min(i, 3);
      await sleep(Math.min(pause, Math.max(0, until - Date.now())), ctx.signal);
    }
  },
});
