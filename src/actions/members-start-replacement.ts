/**
 * members.start-replacement: start the member that was just added, through the old member's driver, with
 * `--initial-cluster-state existing`, `--initial-cluster` from the current member list (the learner included,
 * under the replacement's name), the replacement's URLs (new ones from the params when it moved), and an empty
 * data dir (never the old member's data). Done when the new member answers status as the new member id (a
 * learner answers once it has caught up). Tells the operator which inventory entries to update.
 */
import { callOpts, etcdPool, pollUntil } from './etcd-common.ts';
import { acceptsConnections, memberLogTail } from './members-common.ts';
import type { ActionContext } from './types.ts';
import { driverFor, type MemberDriver } from '../drivers/index.ts';
import { sidecarPath } from '../drivers/process.ts';
import { errorClass, shortGrpcMessage } from '../etcd/errors.ts';
import { fetchMetrics, metricValue, metricsFacts } from '../etcd/metrics.ts';
import { sameURL } from '../etcd/ids.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, type MemberStatus } from '../etcd/status.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { preflightRecord, rosterWithLeader } from './membership-common.ts';
import { chooseDataDir, chooseGivenDataDir } from './membership-data-dir.ts';
import { flagsForHumans, initialCluster, replacementFlags } from './membership-flags.ts';
import { describeEntry, readRoster, type Roster, type RosterEntry } from './membership-roster.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type StartInput = ActionInput<'members.start-replacement'>;

export interface StartOutput {
  member: string;
  /** Hex id the replacement runs as. */
  memberId: string;
  peerURL: string;
  clientURL: string;
  dataDir?: string;
  pid?: number;
  isLearner: boolean;
  /** Inventory edits the operator should make so it describes the replacement (empty: nothing to change). */
  inventoryChanges: string[];
}

interface Target {
  spec: MemberSpec;
  peerURL: string;
  clientURL: string;
}

function target(ctx: ActionContext, input: StartInput): Target {
  const ref = input.member.trim();
  const spec =
    ctx.inventory.members.find((m) => m.name === ref) ??
    ctx.inventory.members.find((m) => /^https?:\/\//i.test(ref) && (sameURL(m.peerURL, ref) || sameURL(m.clientURL, ref)));
  if (!spec) {
    throw new StepError('invalid', `members.start-replacement: no member ${JSON.stringify(ref)} in inventory ${ctx.inventory.name} (its driver starts the replacement)`);
  }
  return { spec, peerURL: input.peerURL ?? spec.peerURL, clientURL: input.clientURL ?? spec.clientURL };
}

/** The member etcd lists at the replacement's peer URL (added by etcd.member-add); undefined while that is the old one. */
function added(ctx: ActionContext, roster: Roster, t: Target): RosterEntry | undefined {
  const e = roster.entries.find((x) => x.member.peerURLs.some((u) => sameURL(u, t.peerURL)));
  const old = preflightRecord(ctx, t.spec.name)?.member.id;
  return e && old && e.member.id === old ? undefined : e;
}

async function statusAs(ctx: ActionContext, pool: EtcdPool, url: string, id: string): Promise<{ ok: MemberStatus } | { reason: string }> {
  try {
    const s = await memberStatus(pool, url, callOpts(ctx, { timeoutMs: 1500 }));
    return s.memberId === id ? { ok: s } : { reason: `${url} answers as member ${s.memberId}, not ${id}` };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    // With auth on, a learner refuses the client's Authenticate call ("rpc not supported for learner") and 3.5
    // wants credentials for Status: its /metrics (no credentials needed) says which member it is.
    if (errorClass(err) === 'learner' && pool.inventory.auth) {
      const seen = await learnerFromMetrics(ctx, pool, url);
      if (seen?.id === id && seen.learner) return { ok: seen.status };
      if (seen) return { reason: `${url} answers as member ${seen.id}, not ${id} (its /metrics)` };
    }
    return { reason: `${url}: ${shortGrpcMessage(err)}` };
  }
}

/** A learner's identity from its /metrics (etcd_server_id{server_id}, etcd_server_is_learner), as a minimal status. */
async function learnerFromMetrics(ctx: ActionContext, pool: EtcdPool, url: string): Promise<{ id: string; learner: boolean; status: MemberStatus } | undefined> {
  let text: string;
  try {
    text = await fetchMetrics(pool, url, callOpts(ctx, { timeoutMs: 1500 }));
  } catch {
    return undefined;
  }
  const id = /^etcd_server_id\{server_id="([0-9a-f]+)"\} 1$/m.exec(text)?.[1]?.replace(/^0+(?=.)/, '');
  if (!id) return undefined;
  const learner = metricValue(text, 'etcd_server_is_learner') === 1;
  const facts = metricsFacts(text);
  const status: MemberStatus = {
    endpoint: url, name: pool.nameOf(url), memberId: id, leaderId: '0', clusterId: '', version: facts.serverVersion ?? '',
    dbSize: facts.dbTotalBytes ?? 0, dbSizeInUse: facts.dbInUseBytes ?? 0, revision: 0, raftIndex: 0, raftTerm: 0,
    isLearner: learner, isLeader: false, errors: [],
  };
  return { id, learner, status };
}

function inventoryChanges(t: Target, dataDir: string | undefined, flagsChanged: boolean): string[] {
  const out: string[] = [];
  if (!sameURL(t.peerURL, t.spec.peerURL)) out.push(`peerURL: ${t.spec.peerURL} → ${t.peerURL}`);
  if (!sameURL(t.clientURL, t.spec.clientURL)) out.push(`clientURL: ${t.spec.clientURL} → ${t.clientURL}`);
  if (dataDir !== undefined && t.spec.dataDir !== undefined && dataDir.replace(/\/+$/, '') !== t.spec.dataDir.replace(/\/+$/, '')) out.push(`dataDir: ${t.spec.dataDir} → ${dataDir}`);
  if (out.length > 0 && flagsChanged && t.spec.driver.type === 'process') {
    out.push(`driver.command: the process driver applies the new flags from ${sidecarPath(t.spec.driver)} on every start; put them in the command when you edit the entry`);
  }
  return out;
}

async function driverInfo(driver: MemberDriver | undefined): Promise<{ pid?: number; dataDir?: string }> {
  if (!driver) return {};
  try {
    const st = await driver.status();
    const dataDir = await driver.getFlag('data-dir');
    return { ...(st.pid ? { pid: st.pid } : {}), ...(dataDir ? { dataDir } : {}) };
  } catch {
    return {};
  }
}

function tryDriver(spec: MemberSpec): MemberDriver | undefined {
  try {
    return driverFor(spec);
  } catch {
    return undefined;
  }
}

async function output(t: Target, s: Pick<MemberStatus, 'memberId' | 'isLearner'>, driver: MemberDriver | undefined, flagsChanged: boolean): Promise<StartOutput> {
  const info = await driverInfo(driver);
  return {
    member: t.spec.name,
    memberId: s.memberId,
    peerURL: t.peerURL,
    clientURL: t.clientURL,
    ...info,
    isLearner: s.isLearner,
    inventoryChanges: inventoryChanges(t, info.dataDir, flagsChanged),
  };
}

function logInventoryChanges(ctx: ActionContext, out: StartOutput): void {
  if (out.inventoryChanges.length === 0) return;
  ctx.log(`update the inventory entry of ${out.member}: ${out.inventoryChanges.join('; ')}`, { inventoryChanges: out.inventoryChanges });
}

/**
 * Fed whether the started process runs, poll after poll: fails (with the log's end) once it has not run for a
 * second.
 */
function exitWatch(t: Target): (running: boolean) => void {
  let exitedSince: number | undefined;
  return (running) => {
    if (running) {
      exitedSince = undefined;
      return;
    }
    if (Date.now() - (exitedSince ??= Date.now()) < 1000) return;
    const tail = memberLogTail(t.spec);
    throw new StepError('failed', `${t.spec.name} exited right after it was started${tail ? `; last log lines:\n${tail}` : ''}`, {
      member: t.spec.name,
      hint: 'read the member log: a wrong flag, its port in use, or a data dir that is not empty',
    });
  };
}

/** Until the replacement answers as the new member; fails fast (with the log's end) when its process exits. */
async function waitAnswering(ctx: ActionContext, pool: EtcdPool, driver: MemberDriver, t: Target, id: string, waitForMs: number): Promise<MemberStatus> {
  const watch = exitWatch(t);
  return pollUntil<MemberStatus>(
    ctx,
    waitForMs,
    async () => {
      const r = await statusAs(ctx, pool, t.clientURL, id);
      if ('ok' in r) return { value: r.ok };
      watch((await driver.status()).running);
      return { reason: r.reason };
    },
    // Polled tightly (every 100 ms, no backoff): the replacement answers the moment it has caught up, and every
    // poll is one status call to it; the cluster waits at reduced redundancy meanwhile.
    { what: `${t.spec.name} answering as member ${id} at ${t.clientURL}`, member: t.spec.name, intervalMs: 100, maxIntervalMs: 100, hint: 'a learner answers once it has caught up with the leader: look at the member log' },
  );
}

/**
 * Until the replacement's process listens on its peer URL (the leader can reach it and send it the keyspace);
 * fails fast (with the log's end) when its process exits. The promote step that follows waits for it to catch up
 * (etcd refuses to promote a learner that is not in sync) and then for every voter to answer.
 */
async function waitPeerListening(ctx: ActionContext, pool: EtcdPool, driver: MemberDriver, t: Target, id: string, waitForMs: number): Promise<void> {
  const watch = exitWatch(t);
  await pollUntil<true>(
    ctx,
    waitForMs,
    async () => {
      const running = (await driver.status()).running;
      watch(running);
      if (!running) return { reason: 'its process is not running' };
      if (await acceptsConnections(t.peerURL, 500)) return { value: true as const };
      // A runner the peer port is firewalled from sees it answer clients once it has caught up.
      if ('ok' in (await statusAs(ctx, pool, t.clientURL, id))) return { value: true as const };
      return { reason: `nothing listens on ${t.peerURL} yet` };
    },
    { what: `${t.spec.name} listening on its peer URL ${t.peerURL}`, member: t.spec.name, intervalMs: 100, maxIntervalMs: 100, hint: 'look at the member log' },
  );
}

/** True when the running process was started with the replacement's flags (a resumed start), not the old member. */
async function runsReplacement(driver: MemberDriver, flags: [string, string][]): Promise<boolean> {
  for (const name of ['initial-cluster-state', 'initial-cluster', 'initial-advertise-peer-urls']) {
    const want = flags.find(([f]) => f === name)?.[1];
    if (want === undefined || (await driver.getFlag(name)) !== want) return false;
  }
  return true;
}

export const startReplacementAction: ImplementedAction = implement('members.start-replacement', {
  async probe(ctx, input) {
    const t = target(ctx, input);
    const pool = etcdPool(ctx);
    const roster = await readRoster(pool, callOpts(ctx));
    const e = added(ctx, roster, t);
    if (!e) return { done: false, detail: `no new member has peer URL ${t.peerURL} yet` };
    const s = await statusAs(ctx, pool, t.clientURL, e.member.id);
    if (!('ok' in s)) return { done: false, detail: s.reason };
    return { done: true, output: await output(t, s.ok, tryDriver(t.spec), false), detail: `${t.clientURL} answers as member ${e.member.id}` };
  },

  async plan(ctx, input) {
    const t = target(ctx, input);
    return `start ${t.spec.name} through its ${t.spec.driver.type} driver with --initial-cluster-state=existing, --initial-cluster from the member list at that time, ` +
      `peer URL ${t.peerURL}, client URL ${t.clientURL}, on an empty data dir; wait up to ${formatDuration(input.waitFor)} until it answers as the new member`;
  },

  async run(ctx, input) {
    const t = target(ctx, input);
    const pool = etcdPool(ctx);
    const roster = await rosterWithLeader(ctx, pool);
    const e = added(ctx, roster, t);
    if (!e) {
      throw new StepError('precondition', `no new member has peer URL ${t.peerURL}: remove the old member and add the replacement first (etcd.member-add)`, { member: t.spec.name });
    }
    const id = e.member.id;
    const pre = preflightRecord(ctx, t.spec.name);

    const already = await statusAs(ctx, pool, t.clientURL, id);
    if ('ok' in already) {
      const out = await output(t, already.ok, tryDriver(t.spec), false);
      ctx.log(`${t.spec.name} already runs as member ${id} at ${t.clientURL}`);
      logInventoryChanges(ctx, out);
      return out;
    }

    const init = initialCluster(roster.entries.map((x) => x.member), id, t.spec.name);
    let driver: MemberDriver;
    try {
      driver = driverFor(t.spec);
    } catch (err) {
      if (!(err instanceof StepError)) throw err;
      const flags = replacementFlags({ name: t.spec.name, oldPeerURL: t.spec.peerURL, oldClientURL: t.spec.clientURL, peerURL: t.peerURL, clientURL: t.clientURL }, {}, init, t.spec.dataDir ?? '<an empty data dir>');
      throw new StepError(err.kind, `${err.message}: start the replacement by hand`, {
        member: t.spec.name,
        hint: `start etcd for ${t.spec.name} on an empty data dir with ${flagsForHumans(flags)}; then resume the run (this step is done once ${t.clientURL} answers as member ${id})`,
      });
    }

    const dataDirNow = await driver.getFlag('data-dir');
    const base = input.dataDir ?? pre?.dataDir?.path ?? t.spec.dataDir ?? dataDirNow;
    if (base === undefined) throw new StepError('invalid', `${t.spec.name}: no data dir known (give dataDir in the inventory)`, { member: t.spec.name });
    const choice = input.dataDir !== undefined ? chooseGivenDataDir(input.dataDir, id) : chooseDataDir(base, pre?.dataDir, id, t.spec.driver.type === 'process');
    if ('refuse' in choice) throw new StepError('precondition', `${t.spec.name}: ${choice.refuse}`, { member: t.spec.name, hint: choice.hint });
    const flags = replacementFlags(
      { name: t.spec.name, oldPeerURL: t.spec.peerURL, oldClientURL: t.spec.clientURL, peerURL: t.peerURL, clientURL: t.clientURL },
      { listenPeer: await driver.getFlag('listen-peer-urls'), listenClient: await driver.getFlag('listen-client-urls'), ...(dataDirNow ? { dataDir: dataDirNow } : {}) },
      init,
      choice.path,
    );

    const st = await driver.status();
    if (st.running && !(await runsReplacement(driver, flags))) {
      // The old member's process (removed from the cluster, but still up): it holds the ports and maybe the data dir.
      if (pre?.member.id && roster.entries.some((x) => x.member.id === pre.member.id)) {
        throw new StepError('precondition', `${t.spec.name}: the old member (${pre.member.id}) is still in the cluster and its process runs (pid ${st.pid ?? '?'})`, { member: t.spec.name, hint: 'remove it first' });
      }
      ctx.log(`stopping the old process of ${t.spec.name} (pid ${st.pid ?? '?'}): it was removed from the cluster`);
      await driver.stop();
    }

    // Something else on the peer port would answer for the replacement (and etcd would exit: address in use).
    if (!(await driver.status()).running && (await acceptsConnections(t.peerURL, 500))) {
      throw new StepError('precondition', `${t.spec.name}: something already listens on its peer URL ${t.peerURL} while its etcd is not running`, {
        member: t.spec.name,
        hint: 'find what holds that port (ss -ltnp) and stop it, then resume',
      });
    }

    let changed = false;
    for (const [flag, value] of flags) changed = (await driver.setFlag(flag, value)).changed || changed;
    if (choice.why === 'relocated') ctx.log(`the old data dir ${base} is still there (not moved aside): the replacement uses ${choice.path}`);
    await driver.start({ signal: ctx.signal });
    pool.forget(t.clientURL);

    const started = Date.now();
    if (input.until === 'peer-listening') {
      await waitPeerListening(ctx, pool, driver, t, id, input.waitFor);
      const out = await output(t, { memberId: id, isLearner: e.member.isLearner }, driver, changed);
      ctx.log(`started ${t.spec.name} as member ${id} (data dir ${out.dataDir ?? '?'}); it listens on ${t.peerURL} after ${formatDuration(Date.now() - started)} and catches up from the leader now`, {
        id,
        ...(out.pid ? { pid: out.pid } : {}),
      });
      logInventoryChanges(ctx, out);
      return out;
    }
    const s = await waitAnswering(ctx, pool, driver, t, id, input.waitFor);
    const out = await output(t, s, driver, changed);
    ctx.log(`started ${t.spec.name} as member ${id} at ${t.clientURL} (data dir ${out.dataDir ?? '?'}); it answered after ${formatDuration(Date.now() - started)}`, {
      id,
      ...(out.pid ? { pid: out.pid } : {}),
    });
    logInventoryChanges(ctx, out);
    return out;
  },
});
