/** Member lifecycle actions through drivers (stop/start/set-flag/move-data-aside…). Filled in as drivers land. */
import type { ActionImpl } from './types.ts';

export const memberActions: Record<string, ActionImpl> = {};
