/**
 * Membership actions (member replacement): preflight with quorum guards, remove, add as learner, start the
 * replacement through the member's driver, promote. Implementations live in src/membership/.
 */
import { memberAddAction } from '../membership/add.ts';
import { replacementPreflightAction } from '../membership/preflight.ts';
import { memberPromoteAction } from '../membership/promote.ts';
import { memberRemoveAction } from '../membership/remove.ts';
import { startReplacementAction } from '../membership/start.ts';
import type { ActionImpl } from './types.ts';

export const membershipActions: Record<string, ActionImpl> = {
  'etcd.replacement-preflight': replacementPreflightAction,
  'etcd.member-remove': memberRemoveAction,
  'etcd.member-add': memberAddAction,
  'etcd.member-promote': memberPromoteAction,
  'members.start-replacement': startReplacementAction,
};
