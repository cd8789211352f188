/**
 * The backend quota as the members report it (etcd_server_quota_backend_bytes on /metrics, etcd 3.4 to 3.6) against
 * what the inventory says: a stale or mistyped inventory value is named next to the real one.
 */
import type { Inventory } from '../inventory/types.ts';
import { formatBytes } from '../util/units.ts';

/** etcd's quota when --quota-backend-bytes is not given. */
export const ETCD_DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;

/**
 * The warning when the inventory's `quotaBytes` is not what the members run with (stale after a quota raise, or a
 * typo), naming both; also when the members disagree among themselves. Undefined when nothing disagrees.
 */
export function quotaDisagreement(inventory: Pick<Inventory, 'quotaBytes'>, live: { name: string; bytes: number }[]): string | undefined {
  if (live.length === 0) return undefined;
  const sizes = [...new Set(live.map((q) => q.bytes))];
  const each = live.map((q) => `${q.name} ${formatBytes(q.bytes)}`).join(', ');
  if (sizes.length > 1) return `the members run with different quotas (member /metrics: ${each}): the smallest counts`;
  if (inventory.quotaBytes !== undefined && inventory.quotaBytes > 0 && inventory.quotaBytes !== sizes[0]) {
    return `the inventory says quotaBytes ${formatBytes(inventory.quotaBytes)} but the members run with ${formatBytes(sizes[0]!)} (member /metrics): using the members' value; update the inventory`;
  }
  return undefined;
}
