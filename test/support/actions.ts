/**
 * Every catalog action's implementation by name, loaded the way the registry loads them (the catalog entry's
 * `load`), for tests that call an action's probe/run/verify directly.
 */
import { catalog } from '../../src/actions/catalog.ts';
import type { ActionName } from '../../src/actions/define.ts';
import type { ActionImpl } from '../../src/actions/types.ts';

export const actions = Object.fromEntries(
  await Promise.all(Object.entries(catalog).map(async ([name, entry]) => [name, await entry.load()] as const)),
) as unknown as Record<ActionName, ActionImpl>;
