/** kubectl verification and control-plane fencing. */
import type { ActionImpl } from './types.ts';

export const kubeActions: Record<string, ActionImpl> = {};
