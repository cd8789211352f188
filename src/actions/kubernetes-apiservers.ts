/**
 * Control-plane fencing: kubernetes.stop-apiservers and kubernetes.start-apiservers, a pair sharing one notion of
 * the inventory's `kubernetes.apiServers`, driven through the same drivers as etcd members (process or static-pod):
 * stopping the API servers before a restore keeps anything from writing to etcd meanwhile.
 */
import { describeDriver, driverFor, type Driven } from '../drivers/index.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { formatDuration } from '../util/units.ts';
import { sleep } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction } from './define.ts';

export interface FenceServer {
  name: string;
  /** Before this step. */
  wasRunning: boolean;
  pid?: number;
}

export interface FenceOutput {
  servers: FenceServer[];
}

const START_WAIT_MS = 60_000;

function apiServers(ctx: ActionContext): Driven[] {
  return ctx.inventory.kubernetes?.apiServers ?? [];
}

async function states(servers: Driven[]): Promise<{ server: Driven; running: boolean; pid?: number }[]> {
  return Promise.all(servers.map(async (s) => ({ server: s, ...(await driverFor(s).status()) })));
}

/** Do `op` on every server even when one fails; then fail naming every server that failed. */
async function eachServer(ctx: ActionContext, servers: Driven[], verb: string, op: (s: Driven) => Promise<void>): Promise<void> {
  const failed: string[] = [];
  for (const s of servers) {
    try {
      await op(s);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      failed.push(`${s.name}: ${messageOf(err)}`);
    }
  }
  if (failed.length > 0) {
    throw new StepError('failed', `could not ${verb} ${failed.length === 1 ? 'an API server' : `${failed.length} API servers`}: ${failed.join('; ')}`, {
      ...(failed.length === 1 ? { member: failed[0]!.split(':')[0]! } : {}),
    });
  }
}

export const stopApiServersAction: ImplementedAction = implement('kubernetes.stop-apiservers', {
  async probe(ctx) {
    const servers = apiServers(ctx);
    if (servers.length === 0) return { done: true, output: { servers: [] }, detail: 'no kubernetes.apiServers in the inventory: nothing to fence' };
    const st = await states(servers);
    const up = st.filter((s) => s.running);
    if (up.length > 0) return { done: false, detail: `running: ${up.map((s) => s.server.name).join(', ')}` };
    return { done: true, output: { servers: st.map((s) => ({ name: s.server.name, wasRunning: false })) }, detail: 'every API server is stopped' };
  },
  async plan(ctx) {
    const servers = apiServers(ctx);
    if (servers.length === 0) return 'nothing to fence: the inventory names no kubernetes.apiServers';
    return servers.map((s) => `stop ${s.name}: ${describeDriver(s).stop}`).join('; ');
  },
  async run(ctx) {
    const servers = apiServers(ctx);
    if (servers.length === 0) {
      ctx.log('no kubernetes.apiServers in the inventory: nothing to fence (writers to etcd are not stopped)');
      return { servers: [] };
    }
    const before = await states(servers);
    await eachServer(ctx, servers, 'stop', async (s) => {
      ctx.log(`stopping API server ${s.name}`);
      await driverFor(s).stop({ timeoutMs: 30_000 });
    });
    return { servers: before.map((b) => ({ name: b.server.name, wasRunning: b.running, ...(b.pid ? { pid: b.pid } : {}) })) };
  },
  async verify(ctx) {
    const up = (await states(apiServers(ctx))).filter((s) => s.running);
    if (up.length > 0) throw new StepError('failed', `API servers still running after the stop: ${up.map((s) => `${s.server.name} (pid ${s.pid ?? '?'})`).join(', ')}`);
  },
});

export const startApiServersAction: ImplementedAction = implement('kubernetes.start-apiservers', {
  async probe(ctx) {
    const servers = apiServers(ctx);
    if (servers.length === 0) return { done: true, output: { servers: [] }, detail: 'no kubernetes.apiServers in the inventory' };
    const st = await states(servers);
    const down = st.filter((s) => !s.running);
    if (down.length > 0) return { done: false, detail: `not running: ${down.map((s) => s.server.name).join(', ')}` };
    return { done: true, output: { servers: st.map((s) => ({ name: s.server.name, wasRunning: true, ...(s.pid ? { pid: s.pid } : {}) })) }, detail: 'every API server runs' };
  },
  async plan(ctx) {
    const servers = apiServers(ctx);
    if (servers.length === 0) return 'nothing to start: the inventory names no kubernetes.apiServers';
    return servers.map((s) => `start ${s.name}: ${describeDriver(s).start}`).join('; ');
  },
  async run(ctx) {
    const servers = apiServers(ctx);
    const before = await states(servers);
    await eachServer(ctx, servers, 'start', async (s) => {
      ctx.log(`starting API server ${s.name}`);
      const driver = driverFor(s);
      await driver.start({ signal: ctx.signal });
      // A static pod runs once the kubelet notices the manifest; a process once it is spawned.
      const until = Math.min(Date.now() + START_WAIT_MS, ctx.deadline ?? Infinity);
      while (!(await driver.status()).running) {
        if (Date.now() >= until) throw new StepError('timeout', `${s.name} is not running ${formatDuration(START_WAIT_MS)} after the start`, { member: s.name });
        await sleep(250, ctx.signal);
      }
    });
    const after = await states(servers);
    return { servers: after.map((a, i) => ({ name: a.server.name, wasRunning: before[i]!.running, ...(a.pid ? { pid: a.pid } : {}) })) };
  },
});
