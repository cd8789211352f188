/** Resources shared by the steps of one run (etcd clients, ssh masters…), created on first use, disposed at the end. */
import type { ResourceScope } from '../actions/types.ts';

export function createResourceScope(): ResourceScope & { dispose(): Promise<void> } {
  const items = new Map<string, { value: unknown; dispose?: (v: any) => void | Promise<void> }>();
  return {
    get<T>(key: string, create: () => T, dispose?: (value: T) => void | Promise<void>): T {
      const hit = items.get(key);
      if (hit) return hit.value as T;
      const value = create();
      items.set(key, dispose ? { value, dispose } : { value });
      return value;
    },
    async dispose() {
      const all = [...items.values()].reverse();
      items.clear();
      for (const r of all) {
        try {
          await r.dispose?.(r.value);
        } catch {
          /* closing is best effort */
        }
      }
    },
  };
}
