/** What the etcd actions share: the run's client pool, call options from the step, the quota, bounded polling. */
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { EtcdPool } from '../etcd/pool.ts';
import type { CallOpts } from '../etcd/call.ts';
import { StepError } from '../util/errors.ts';
import { memberMetrics } from '../etcd/metrics.ts';
export { quotaDisagreement } from '../etcd/quota.ts';
import { formatDuration, parseBytes } from '../util/units.ts';
import type { ActionContext } from './types.ts';

/** The run's pool: one client per endpoint, shared by every step, closed by the engine when the run ends. */
export function etcdPool(ctx: ActionContext): EtcdPool {
  return ctx.resources.get('etcd-pool', () => new EtcdPool(ctx.inventory), (pool) => pool.close());
}

/** Every call of a step stops at the step's deadline and on cancellation. */
export function callOpts(ctx: ActionContext, extra: CallOpts = {}): CallOpts {
  return { ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}), signal: ctx.signal, ...extra };
}

export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;

const QUOTA_SOURCES = ['input', 'member /metrics', 'inventory', 'member flags', 'etcd default'] as const;

export interface QuotaInfo {
  bytes: number;
  source: (typeof QUOTA_SOURCES)[number];
}

/** `--quota-backend-bytes` in an argv (either `--flag=value` or `--flag value`, one or two dashes). */
export function quotaFromCommand(command: readonly string[]): number | undefined {
  for (let i = 0; i < command.length; i++) {
    const m = /^--?quota-backend-bytes(?:=(.*))?$/.exec(command[i]!);
    if (!m) continue;
    const n = parseBytes(m[1] ?? command[i + 1]);
    if (n !== undefined && n > 0) return n;
  }
  return undefined;
}

/**
 * The backend quota in force: the step input, else the smallest quota the members report on /metrics (`live`,
 * what they actually run with), else the inventory's `quotaBytes`, else the smallest `--quota-backend-bytes` among
 * process-driver members, else etcd's default of 2 GiB. The fallbacks are guesses: the source says which was used.
 */
export function resolveQuota(inventory: Inventory, input?: number, live: number[] = []): QuotaInfo {
  if (input !== undefined && input > 0) return { bytes: input, source: 'input' };
  const reported = live.filter((n) => Number.isFinite(n) && n > 0);
  if (reported.length > 0) return { bytes: Math.min(...reported), source: 'member /metrics' };
  if (inventory.quotaBytes !== undefined && inventory.quotaBytes > 0) return { bytes: inventory.quotaBytes, source: 'inventory' };
  const flags = inventory.members.flatMap((m) => (m.driver.type === 'process' ? [quotaFromCommand(m.driver.command)] : [])).filter((n): n is number => n !== undefined);
  if (flags.length > 0) return { bytes: Math.min(...flags), source: 'member flags' };
  return { bytes: DEFAULT_QUOTA_BYTES, source: 'etcd default' };
}

/**
 * etcd raises NOSPACE when a write would take the backend past the quota (size + request > quota), so a db just
 * under the quota is as stuck as one over it. A db counts as "at the quota" from this fraction of it on.
 */
export const NEAR_QUOTA_FRACTION = 0.95;

export function atQuota(dbSize: number, quotaBytes: number): boolean {
  return dbSize >= quotaBytes * NEAR_QUOTA_FRACTION;
}

/** The member of a forEach item (required by per-member actions). */
export function itemMember(ctx: ActionContext, action: string): MemberSpec {
  const m = ctx.item?.member;
  if (!m) throw new StepError('invalid', `${action} runs per member: use it with forEach: { members: voters }`);
  return m;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new StepError('cancelled', 'cancelled'));
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(new StepError('cancelled', 'cancelled')); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Check until `check` returns a value (not undefined), at most `waitForMs` (and never past the step's deadline).
 * `check` returns undefined to go on; its last `reason` goes in the timeout error.
 */
export async function pollUntil<T>(
  ctx: Pick<ActionContext, 'signal' | 'deadline'>,
  waitForMs: number,
  check: () => Promise<{ value: T } | { reason: string }>,
  opts: { intervalMs?: number; maxIntervalMs?: number; what: string; member?: string; hint?: string },
): Promise<T> {
  const until = Math.min(Date.now() + waitForMs, ctx.deadline ?? Infinity);
  const interval = opts.intervalMs ?? 250;
  const maxInterval = opts.maxIntervalMs ?? interval * 8;
  let reason = 'not checked';
  for (let attempt = 0; ; attempt++) {
    const r = await check();
    if ('value' in r) return r.value;
    reason = r.reason;
    const left = until - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(interval * Math.min(2 ** Math.floor(attempt / 4), 8), maxInterval, left), ctx.signal);
  }
  const stepBound = ctx.deadline !== undefined && until === ctx.deadline;
  throw new StepError(stepBound ? 'timeout' : 'transient', `${opts.what}: not so after ${formatDuration(waitForMs)}${stepBound ? ' (step deadline)' : ''}: ${reason}`, {
    ...(opts.member ? { member: opts.member } : {}),
    ...(opts.hint ? { hint: opts.hint } : {}),
  });
}

/** The output of an earlier etcd.preflight step of this run, if any (found by its shape, whatever its step id). */
export function preflightOutput(ctx: ActionContext): { quota: QuotaInfo; unreachable: string[] } | undefined {
  for (const rec of Object.values(ctx.steps)) {
    const o = rec.output as { quotaBytes?: unknown; quotaSource?: unknown; unreachable?: unknown; members?: unknown } | undefined;
    if (rec.status === 'succeeded' && o && typeof o.quotaBytes === 'number' && Array.isArray(o.unreachable) && Array.isArray(o.members)) {
      const source = QUOTA_SOURCES.find((x) => x === o.quotaSource) ?? 'input';
      return { quota: { bytes: o.quotaBytes, source }, unreachable: o.unreachable.filter((x): x is string => typeof x === 'string') };
    }
  }
  return undefined;
}

/** The quota each member reports on its /metrics now (members that do not answer are left out). */
export async function liveQuotas(ctx: ActionContext): Promise<{ name: string; bytes: number }[]> {
  const pool = etcdPool(ctx);
  const facts = await Promise.all(pool.inventory.members.map((m) => memberMetrics(pool, m.clientURL, callOpts(ctx, { timeoutMs: 2000 }))));
  return facts.flatMap((f, i) => ('quotaBytes' in f && f.quotaBytes !== undefined && f.quotaBytes > 0 ? [{ name: pool.inventory.members[i]!.name, bytes: f.quotaBytes }] : []));
}

/**
 * The quota to hold db sizes against: the step input, else the run's `quotaBytes` param (a runbook that raises the
 * quota passes it), else what the members report on /metrics now (after a quota raise the inventory is stale), else
 * what preflight found, else resolveQuota (inventory, member flags, 2 GiB).
 */
export async function effectiveQuota(ctx: ActionContext, input?: number): Promise<QuotaInfo> {
  if (input !== undefined && input > 0) return { bytes: input, source: 'input' };
  const param = parseBytes(ctx.params.quotaBytes);
  if (param !== undefined && param > 0) return { bytes: param, source: 'input' };
  const live = await liveQuotas(ctx);
  if (live.length > 0) return resolveQuota(ctx.inventory, undefined, live.map((q) => q.bytes));
  const pre = preflightOutput(ctx);
  if (pre) return pre.quota;
  return resolveQuota(ctx.inventory);
}
