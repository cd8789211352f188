/**
 * Member lifecycle actions through the member drivers (src/drivers/index.ts): set-flag (rolling restart),
 * stop, start, start-all (a whole cluster at once), try-restart (power loss), move-data-aside (before a restore). members.start-replacement is
 * another module's.
 */
import { moveDataAsideAction } from './members-data.ts';
import { setFlagAction } from './members-set-flag.ts';
import { startAllAction } from './members-start-all.ts';
import { startAction, stopAction } from './members-start-stop.ts';
import { tryRestartAction } from './members-try-restart.ts';
import type { ActionImpl } from './types.ts';

export const memberActions: Record<string, ActionImpl> = {
  'members.set-flag': setFlagAction,
  'members.stop': stopAction,
  'members.start': startAction,
  'members.start-all': startAllAction,
  'members.try-restart': tryRestartAction,
  'members.move-data-aside': moveDataAsideAction,
};
