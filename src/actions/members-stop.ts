/** members.stop: stop one member (a forEach item) through its driver; already stopped = done. */
import { driverFor, describeDriver } from '../drivers/index.ts';
import { StepError } from '../util/errors.ts';
import { etcdPool, itemMember } from './etcd-common.ts';
import { implement, type ImplementedAction } from './define.ts';

export interface StopOutput {
  member: string;
  wasRunning: boolean;
  pid?: number;
}

export const stopAction: ImplementedAction = implement('members.stop', {
  async probe(ctx) {
    const m = itemMember(ctx, 'members.stop');
    const st = await driverFor(m).status();
    return st.running ? { done: false, detail: `${m.name} runs (pid ${st.pid ?? '?'})` } : { done: true, output: { member: m.name, wasRunning: false }, detail: `${m.name} is not running` };
  },
  async plan(ctx) {
    const m = itemMember(ctx, 'members.stop');
    const st = await driverFor(m).status();
    return `stop ${m.name}${st.pid ? ` (pid ${st.pid})` : ''}: ${describeDriver(m).stop}`;
  },
  async run(ctx) {
    const m = itemMember(ctx, 'members.stop');
    const driver = driverFor(m);
    const before = await driver.status();
    ctx.log(`stopping ${m.name}${before.pid ? ` (pid ${before.pid})` : ''}`);
    await driver.stop();
    etcdPool(ctx).forget(m.name);
    return { member: m.name, wasRunning: before.running, ...(before.pid ? { pid: before.pid } : {}) };
  },
  async verify(ctx) {
    const m = itemMember(ctx, 'members.stop');
    const st = await driverFor(m).status();
    if (st.running) throw new StepError('failed', `${m.name} still runs (pid ${st.pid ?? '?'}) after stop`, { member: m.name });
  },
});
