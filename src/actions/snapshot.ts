/** Snapshot actions: save (backups; in the background with wait), select (for a restore), restore one member. Library in src/snapshot/. */
import { snapshotBeginAction, snapshotWaitAction } from './snapshot-background.ts';
import { restoreMemberAction } from './snapshot-restore.ts';
import { snapshotSaveAction } from './snapshot-save.ts';
import { snapshotSelectAction } from './snapshot-select.ts';
import type { ActionImpl } from './types.ts';

export const snapshotActions: Record<string, ActionImpl> = {
  'etcd.snapshot-save': snapshotSaveAction,
  'etcd.snapshot-begin': snapshotBeginAction,
  'etcd.snapshot-wait': snapshotWaitAction,
  'etcd.snapshot-select': snapshotSelectAction,
  'etcd.restore-member': restoreMemberAction,
};
