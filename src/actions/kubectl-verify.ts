/** kubectl.verify: kubectl checks (readyz, nodes-ready) with the inventory's kubeconfig, polled up to `waitFor`. */
import { join } from 'node:path';
import { checkNodesReady, checkReadyz, type CheckResult, type KubectlOptions } from '../kube/kubectl.ts';
import { StepError } from '../util/errors.ts';
import { pollUntil } from './etcd-common.ts';
import type { ActionContext } from './types.ts';
import { implement, type ImplementedAction, type ActionInput } from './define.ts';

export type KubeCheck = 'readyz' | 'nodes-ready';

export type VerifyInput = ActionInput<'kubectl.verify'>;

export interface VerifyOutput {
  checks: Partial<Record<KubeCheck, string>>;
  nodes?: string[];
  attempts: number;
  durationMs: number;
}

const CHECKS: Record<KubeCheck, (o: KubectlOptions) => Promise<CheckResult>> = {
  readyz: checkReadyz,
  'nodes-ready': checkNodesReady,
};

function kubectlOptions(ctx: ActionContext, waitFor: number): KubectlOptions {
  const k = ctx.inventory.kubernetes;
  if (!k) {
    throw new StepError('invalid', `kubectl.verify: inventory ${ctx.inventory.name} has no kubernetes section (kubeconfig, context)`, {
      hint: 'add kubernetes: { kubeconfig: ..., context: ... } to the inventory, or guard the step with `when: inventory.kubernetes != null`',
    });
  }
  return {
    ...(k.kubeconfig ? { kubeconfig: k.kubeconfig } : {}),
    ...(k.context ? { context: k.context } : {}),
    requestTimeoutMs: Math.min(10_000, Math.max(2_000, waitFor)),
    signal: ctx.signal,
    // Discovery cache in the run's state dir: the operator's ~/.kube stays untouched and no stale cache is reused.
    cacheDir: join(ctx.stateDir, 'kubectl-cache'),
  };
}

export const verifyAction: ImplementedAction = implement('kubectl.verify', {
  async run(ctx, input) {
    const opts = kubectlOptions(ctx, input.waitFor);
    const started = Date.now();
    let attempts = 0;
    const out = await pollUntil<Omit<VerifyOutput, 'attempts' | 'durationMs'>>(
      ctx,
      input.waitFor,
      async () => {
        attempts++;
        const results = await Promise.all(input.checks.map(async (c) => [c, await CHECKS[c](opts)] as const));
        const failed = results.filter(([, r]) => !r.ok);
        if (failed.length > 0) return { reason: failed.map(([, r]) => r.detail).join('; ') };
        const nodes = results.find(([c]) => c === 'nodes-ready')?.[1].nodes;
        return {
          value: {
            checks: Object.fromEntries(results.map(([c, r]) => [c, r.detail])),
            ...(nodes ? { nodes: nodes.map((n) => n.name) } : {}),
          },
        };
      },
      { what: `kubectl ${input.checks.join(', ')} passing`, intervalMs: 1000, hint: 'the API server may still be starting, or etcd may refuse writes: check kubectl get --raw "/readyz?verbose"' },
    );
    const durationMs = Date.now() - started;
    ctx.log(`kubectl: ${Object.entries(out.checks).map(([c, d]) => `${c} ${d}`).join(', ')}`);
    return { ...out, attempts, durationMs };
  },
});
