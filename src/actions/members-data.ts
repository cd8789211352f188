/**
 * members.move-data-aside: rename a stopped member's data dir to `<dataDir>.<label>-<UTC stamp>` before a
 * restore. Never deletes, never overwrites; refuses while the member's process runs or anything listens on its
 * client or peer URL (an etcd waiting for quorum accepts connections without answering).
 */
import { basename, dirname, join } from 'node:path';
import { driverFor } from '../drivers/index.ts';
import { utcStamp } from '../drivers/safe-fs.ts';
import { hostFor, moveAside, type Host } from '../hosts/index.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { StepError, messageOf } from '../util/errors.ts';
import { describeLocalListener } from '../hosts/listener.ts';
import { itemMember } from './etcd-common.ts';
import { acceptsConnections } from './members-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type MoveAsideInput = ActionInput<'members.move-data-aside'>;

export interface MoveAsideOutput {
  member: string;
  from: string;
  to: string;
}

/** The member, its data dir, and the host its files live on (this machine, or its ssh host). */
function target(ctx: ActionContext): { m: MemberSpec; dataDir: string; host: Host } {
  const m = itemMember(ctx, 'members.move-data-aside');
  if (!m.dataDir) throw new StepError('invalid', `members.move-data-aside: ${m.name} has no dataDir in inventory ${ctx.inventory.name}`, { member: m.name });
  return { m, dataDir: m.dataDir.replace(/\/+$/, ''), host: hostFor(m) };
}

/** Earlier moved-aside copies `<dataDir>.<label>-*` on the host, oldest first (the stamps sort by time). */
export async function movedAside(host: Host, dataDir: string, label: string): Promise<string[]> {
  const dir = dirname(dataDir);
  const prefix = `${basename(dataDir)}.${label}-`;
  const entries = await host.list(dir);
  return entries.filter((e) => e.startsWith(prefix)).sort().map((e) => join(dir, e));
}

async function refuseWhileInUse(m: MemberSpec): Promise<void> {
  let running: { running: boolean; pid?: number } = { running: false };
  try {
    running = await driverFor(m).status();
  } catch (err) {
    if (!(err instanceof StepError && err.kind === 'invalid')) throw err; // driver: none → rely on the port check
  }
  if (running.running) {
    throw new StepError('precondition', `not moving the data dir of ${m.name}: its process runs (pid ${running.pid ?? '?'})`, { member: m.name, hint: 'stop it first (members.stop)' });
  }
  for (const url of [m.clientURL, m.peerURL]) {
    if (await acceptsConnections(url)) {
      const who = m.ssh ? '' : describeLocalListener(url);
      throw new StepError('precondition', `not moving the data dir of ${m.name}: something accepts connections on ${url}${who} (is the member still running?)`, {
        member: m.name,
        hint: 'stop the member (or whatever holds that port) first',
      });
    }
  }
}

export const moveDataAsideAction: ImplementedAction = implement('members.move-data-aside', {
  async probe(ctx, input) {
    const { m, dataDir, host } = target(ctx);
    if (await host.stat(dataDir)) return { done: false, detail: `${dataDir} exists on ${host.label}` };
    const moved = await movedAside(host, dataDir, input.label);
    const last = moved.at(-1);
    if (last) return { done: true, output: { member: m.name, from: dataDir, to: last }, detail: `${dataDir} is gone and ${last} exists` };
    return { done: false, detail: `${dataDir} does not exist and no ${basename(dataDir)}.${input.label}-* copy is next to it` };
  },

  async plan(ctx, input) {
    const { m, dataDir, host } = target(ctx);
    return `refuse if ${m.name} runs or listens; rename ${dataDir} → ${dataDir}.${input.label}-${utcStamp()} on ${host.label} (nothing is deleted)`;
  },

  async run(ctx, input) {
    const { m, dataDir, host } = target(ctx);
    const st = await host.stat(dataDir);
    if (!st) {
      const last = (await movedAside(host, dataDir, input.label)).at(-1);
      if (last) return { member: m.name, from: dataDir, to: last };
      throw new StepError('precondition', `${m.name}: data dir ${dataDir} does not exist and no ${basename(dataDir)}.${input.label}-* copy is next to it`, {
        member: m.name,
        hint: 'check dataDir in the inventory; if the data is really gone, resume with --mark-done for this step',
      });
    }
    if (st.type !== 'dir') throw new StepError('precondition', `${m.name}: ${dataDir} on ${host.label} is not a directory`, { member: m.name });
    await refuseWhileInUse(m);
    let to: string;
    try {
      to = await moveAside(host, dataDir, input.label);
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError('failed', `${m.name}: cannot move ${dataDir} aside on ${host.label}: ${messageOf(err)}`, { member: m.name });
    }
    ctx.log(`moved the data dir of ${m.name}${host.remote ? ` on ${host.label}` : ''}: ${dataDir} → ${to}`);
    return { member: m.name, from: dataDir, to };
  },

  async verify(ctx, _input, output) {
    const { host } = target(ctx);
    const from = Boolean(await host.stat(output.from));
    const to = Boolean(await host.stat(output.to));
    if (from || !to) {
      throw new StepError('failed', `${output.member}: after the move, ${output.from} ${from ? 'still exists' : 'is gone'} and ${output.to} ${to ? 'exists' : 'is missing'}`, { member: output.member });
    }
  },
});
