/** etcd.write-probe: put, read back and delete a canary key through a voter: proves the cluster accepts writes. */
import { putDeleteCanary } from '../etcd/kv.ts';
import { clusterView } from '../etcd/view.ts';
import { requestTarget } from './etcd-compact.ts';
import { callOpts, etcdPool } from './etcd-common.ts';
import { implement, type ImplementedAction } from './define.ts';

export const writeProbeAction: ImplementedAction = implement('etcd.write-probe', {
  async plan(_ctx, input) {
    return `put a unique value at ${input.key}, read it back, delete it`;
  },
  async run(ctx, input) {
    const pool = etcdPool(ctx);
    const to = requestTarget(await clusterView(pool, callOpts(ctx)));
    const r = await putDeleteCanary(pool, to.endpoint, input.key, { ...callOpts(ctx), tag: `${ctx.runId}/${ctx.stepId}#${ctx.attempt}` });
    ctx.log(`canary ${input.key} written, read back and deleted through ${r.member} in ${r.durationMs} ms (revision ${r.revision})`);
    return r;
  },
});
