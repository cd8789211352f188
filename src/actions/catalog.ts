/**
 * Every action a runbook can name: its input schema, what it does to the world, and the file that implements it.
 * Metadata only (no I/O, no etcd3 import): the implementation is imported the first time the action is about to
 * run (`load`), so `validate`, `show` and the JSON Schema load fast, and a NOSPACE recovery never loads execa,
 * kubectl or the snapshot code (BENCHMARKS.md). Adding an action: one entry here plus one file that exports
 * `implement('<name>', { probe, plan, run, verify })` (src/actions/define.ts), its input typed from this schema.
 */
import { z } from 'zod';
import { parseBytes, parseDuration } from '../util/units.ts';
import type { ActionMeta, CatalogEntry } from './types.ts';

export const zBytes = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = parseBytes(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a byte size: ${JSON.stringify(v)} (use e.g. 8GiB, 512MB or a number of bytes)` });
      return z.NEVER;
    }
    return n;
  })
  .meta({ description: 'bytes: a number or a size like 8GiB, 512MB' });

export const zDuration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. 500ms, 30s, 5m, 1h30m)` });
      return z.NEVER;
    }
    return n;
  })
  .meta({ description: 'duration: like 500ms, 30s, 5m, 1h30m (a bare number is milliseconds)' });

const alarmName = z.enum(['NOSPACE', 'CORRUPT']);
const memberRef = z.string().min(1).max(256).describe('member name, hex member id, or peer URL');

function defineAction<S extends z.ZodType>(entry: CatalogEntry<S>): CatalogEntry<S> {
  return entry;
}

/** What a snapshot save takes, whether it finishes in one step (etcd.snapshot-save) or two (snapshot-begin/-wait). */
const snapshotSaveInput = z.strictObject({
  dir: z.string().min(1).optional().describe('default: the first snapshot dir of the inventory'),
  keepLast: z.number().int().min(1).optional(),
  maxAge: zDuration.optional(),
  verify: z.boolean().default(true),
  avoidMember: z.string().min(1).max(256).optional().describe('never stream from this member (one the runbook is about to remove or restart)'),
});

export const catalog = {
  'etcd.preflight': defineAction({
    name: 'etcd.preflight',
    summary: 'Status and alarms of every member, leader, learners, versions, db sizes, disk headroom; refuses on CORRUPT or an unreachable member',
    input: z.strictObject({
      expectAlarms: z.array(alarmName).default(['NOSPACE']).describe('alarms that are expected (others abort)'),
      allowUnreachable: z.boolean().default(false).describe('go on when a member is down (it is skipped and reported)'),
      headroomFactor: z.number().min(0).max(10).default(1).describe('free disk needed on each member, as a multiple of its db size (defrag writes a full copy)'),
      quotaBytes: zBytes.optional().describe('the backend quota in force (default: from the inventory or the member flags, else 2GiB)'),
    }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./etcd-preflight.ts')).preflightAction,
  }),
  'etcd.compact': defineAction({
    name: 'etcd.compact',
    summary: 'Compact the keyspace history once, cluster-wide, at the current revision minus `keep` (physical)',
    input: z.strictObject({
      keep: z.number().int().min(0).default(0).describe('revisions of history to keep'),
      physical: z.boolean().default(true),
    }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-compact.ts')).compactAction,
  }),
  'etcd.defrag': defineAction({
    name: 'etcd.defrag',
    summary: 'Defragment one member (forEach over voters, followers first, the leader last); with moveLeaderFirst, moves leadership away before defragmenting the leader',
    input: z.strictObject({
      minReclaimBytes: zBytes.default(0).describe('skip a member whose db - in-use is below this'),
      timeoutPerGiB: zDuration.default(120_000).describe('deadline scaled to db size (at least 30s)'),
      moveLeaderFirst: z.boolean().default(false).describe('move leadership to a healthy (preferably defragmented) voter before defragmenting the leader'),
    }),
    mutates: true,
    idempotent: true,
    perMember: 'required',
    load: async () => (await import('./etcd-defrag.ts')).defragAction,
  }),
  'etcd.alarm-disarm': defineAction({
    name: 'etcd.alarm-disarm',
    summary: 'Disarm an alarm on every member that has it; NOSPACE only when every member is below the quota',
    input: z.strictObject({
      alarm: alarmName.default('NOSPACE'),
      quotaBytes: zBytes.optional(),
      requireBelowQuota: z.boolean().default(true),
    }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-alarm.ts')).alarmDisarmAction,
  }),
  'etcd.write-probe': defineAction({
    name: 'etcd.write-probe',
    summary: 'Put and delete a canary key: proves the cluster accepts writes',
    input: z.strictObject({ key: z.string().min(1).max(512).default('/runbook/canary') }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-write-probe.ts')).writeProbeAction,
  }),
  'etcd.member-healthy': defineAction({
    name: 'etcd.member-healthy',
    summary: 'A member answers status, knows a leader, has no alarm of its own (a gate between members)',
    input: z.strictObject({
      member: memberRef.optional().describe('default: the forEach item'),
      waitFor: zDuration.default(30_000).describe('keep checking this long before failing'),
    }),
    mutates: false,
    idempotent: true,
    perMember: 'optional',
    load: async () => (await import('./etcd-member-healthy.ts')).memberHealthyAction,
  }),
  'etcd.move-leader': defineAction({
    name: 'etcd.move-leader',
    summary: 'Move raft leadership to another healthy voter',
    input: z.strictObject({
      to: memberRef.optional().describe('default: the healthiest voter that is not the leader'),
      awayFrom: memberRef.optional().describe('only move when this member is the leader (default: the forEach item, else always move)'),
    }),
    mutates: true,
    idempotent: true,
    perMember: 'optional',
    load: async () => (await import('./etcd-leader.ts')).moveLeaderAction,
  }),
  'etcd.cluster-healthy': defineAction({
    name: 'etcd.cluster-healthy',
    summary: 'One leader, one cluster id, every voter answering, no alarms, equal KV hashes',
    input: z.strictObject({
      expectVoters: z.number().int().min(1).optional(),
      hashes: z.boolean().default(true),
      waitFor: zDuration.default(60_000),
    }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./etcd-cluster-healthy.ts')).clusterHealthyAction,
  }),
  'etcd.snapshot-save': defineAction({
    name: 'etcd.snapshot-save',
    summary: 'Stream a snapshot to a file (constant memory), verify it, record sha256/revision/size in a manifest, apply retention',
    input: snapshotSaveInput,
    mutates: true,
    idempotent: false,
    load: async () => (await import('./snapshot-save.ts')).snapshotSaveAction,
  }),
  'etcd.snapshot-begin': defineAction({
    name: 'etcd.snapshot-begin',
    summary: 'Begin a snapshot and go on once its point in time is fixed (its first bytes arrived); a later etcd.snapshot-wait finishes it (verified, manifest, retention)',
    input: snapshotSaveInput.extend({
      hold: z
        .boolean()
        .default(false)
        .describe('once begun, send nothing more until the etcd.snapshot-wait step (or the end of the run): the steps between get the disk and CPU first; the content is fixed either way'),
    }),
    mutates: true,
    idempotent: false,
    load: async () => (await import('./snapshot-background.ts')).snapshotBeginAction,
  }),
  'etcd.snapshot-wait': defineAction({
    name: 'etcd.snapshot-wait',
    summary: 'Wait until a snapshot begun by etcd.snapshot-begin is written and verified; a new one if a runner restart cut it short',
    input: z.strictObject({ step: z.string().min(1).describe('id of the etcd.snapshot-begin step') }),
    mutates: true,
    idempotent: false,
    load: async () => (await import('./snapshot-background.ts')).snapshotWaitAction,
  }),
  'etcd.snapshot-select': defineAction({
    name: 'etcd.snapshot-select',
    summary: 'Newest snapshot that passes integrity (sha256 trailer, status, trial restore on a copy); older ones are fallbacks',
    input: z.strictObject({
      dirs: z.array(z.string().min(1)).optional().describe('default: the snapshot dirs of the inventory'),
      trialRestore: z.boolean().default(true),
      maxCandidates: z.number().int().min(1).max(1000).default(20),
      allowRevisionRewind: z.boolean().default(false).describe('accept a restore that takes revisions back (no tool on a member host has --bump-revision); refused otherwise'),
    }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./snapshot-select.ts')).snapshotSelectAction,
  }),
  'backup.build-target': defineAction({
    name: 'backup.build-target',
    summary: 'Rebuild, offline, the snapshot of a past point from the backups: full snapshot + delta segments replayed on a scratch member, saved and verified',
    input: z.strictObject({
      at: z.string().min(1).optional().describe('ISO time: the last revision the backup stream observed at or before it'),
      revision: z.number().int().min(1).optional().describe('an exact revision'),
      newest: z.boolean().default(false).describe('the newest consistent point the backups hold (full snapshot + every delta after it)'),
      onlyIfNewerThan: z.number().int().min(0).optional().describe('with newest: build only when that point is past this revision (e.g. the snapshot another step chose); else output { used: false }'),
      dirs: z.array(z.string().min(1)).optional().describe('default: the snapshot dirs of the inventory'),
    }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./backup-build-target.ts')).buildTargetAction,
  }),
  'etcd.restore-member': defineAction({
    name: 'etcd.restore-member',
    summary: "Restore one member's data dir from the chosen snapshot into <dir>.part, then rename (old data must be moved aside first)",
    input: z.strictObject({
      snapshot: z.string().min(1).describe('path of the snapshot (usually the output of snapshot-select)'),
      sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
      clusterToken: z.string().min(1).max(128).optional().describe('default: derived from the run id'),
      etcdVersion: z.string().max(64).nullable().optional().describe("the cluster's etcd version (snapshot-select's restore.etcdVersion): chooses the restore tool"),
      allowRevisionRewind: z.boolean().default(false).describe('accept a restore that takes revisions back; refused otherwise'),
      bumpRevision: z.number().int().min(1).nullable().optional().describe('how far revisions move forward (backup.build-target computes it from the cluster\'s current revision); default 1000000000'),
    }),
    mutates: true,
    // the restored members form a new cluster (new cluster and member ids): the run re-pins to it (src/execute/identity.ts)
    resetsIdentity: true,
    idempotent: true,
    perMember: 'required',
    needsInventory: true,
    parallelItems: true,
    load: async () => (await import('./snapshot-restore.ts')).restoreMemberAction,
  }),
  'etcd.replacement-preflight': defineAction({
    name: 'etcd.replacement-preflight',
    summary: 'Identify the member to replace; refuse when removal would lose quorum, on a 2-member cluster, or when a learner exists',
    input: z.strictObject({ member: memberRef.optional().describe('default: the one unhealthy member, when unambiguous') }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./etcd-replacement-preflight.ts')).replacementPreflightAction,
  }),
  'etcd.member-remove': defineAction({
    name: 'etcd.member-remove',
    summary: 'Remove a member from the cluster (already gone = done)',
    input: z.strictObject({ member: memberRef }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-member-remove.ts')).memberRemoveAction,
  }),
  'etcd.member-add': defineAction({
    name: 'etcd.member-add',
    summary: 'Add a member (as a learner where supported); peer URL already present = done',
    input: z.strictObject({ name: z.string().min(1), peerURL: z.string().url(), learner: z.boolean().default(true) }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-member-add.ts')).memberAddAction,
  }),
  'etcd.member-promote': defineAction({
    name: 'etcd.member-promote',
    summary: 'Promote a learner once it is in sync (polled with backoff); already a voter = done',
    input: z.strictObject({
      member: memberRef,
      waitFor: zDuration.default(120_000),
      hashes: z.boolean().default(true).describe("compare every voter's KV hash after the promotion (false when an etcd.cluster-healthy step right after compares them: one read of every keyspace, not two)"),
    }),
    mutates: true,
    idempotent: true,
    load: async () => (await import('./etcd-member-promote.ts')).memberPromoteAction,
  }),
  'members.set-flag': defineAction({
    name: 'members.set-flag',
    summary: "Change one etcd flag of a member through its driver and restart it (rolling, with a health gate)",
    input: z.strictObject({
      flag: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a flag name without dashes in front, e.g. quota-backend-bytes'),
      value: z.union([z.string(), z.number(), z.boolean()]),
    }),
    mutates: true,
    idempotent: true,
    perMember: 'required',
    needsInventory: true,
    load: async () => (await import('./members-set-flag.ts')).setFlagAction,
  }),
  'members.stop': defineAction({
    name: 'members.stop',
    summary: 'Stop a member through its driver',
    input: z.strictObject({}),
    mutates: true,
    idempotent: true,
    perMember: 'required',
    needsInventory: true,
    load: async () => (await import('./members-stop.ts')).stopAction,
  }),
  'members.start': defineAction({
    name: 'members.start',
    summary: 'Start a member through its driver and wait until it answers',
    input: z.strictObject({ waitFor: zDuration.default(30_000) }),
    mutates: true,
    idempotent: true,
    perMember: 'required',
    needsInventory: true,
    load: async () => (await import('./members-start.ts')).startAction,
  }),
  'members.start-all': defineAction({
    name: 'members.start-all',
    summary: 'Start every member that is not running, all at once, and wait until every member answers with one leader; fails at once when one exits (says so when its log shows damaged data)',
    input: z.strictObject({ waitFor: zDuration.default(60_000) }),
    mutates: true,
    idempotent: true,
    needsInventory: true,
    load: async () => (await import('./members-start-all.ts')).startAllAction,
  }),
  'members.try-restart': defineAction({
    name: 'members.try-restart',
    summary: 'Start every stopped member on its existing data; reports whether a healthy quorum formed (never fails for that)',
    input: z.strictObject({ waitFor: zDuration.default(30_000) }),
    mutates: true,
    idempotent: true,
    needsInventory: true,
    load: async () => (await import('./members-try-restart.ts')).tryRestartAction,
  }),
  'members.move-data-aside': defineAction({
    name: 'members.move-data-aside',
    summary: "Move a stopped member's data dir to <dir>.<label>-<timestamp> (never deleted)",
    input: z.strictObject({ label: z.string().regex(/^[a-z0-9-]{1,40}$/).default('pre-restore') }),
    mutates: true,
    idempotent: true,
    perMember: 'required',
    needsInventory: true,
    parallelItems: true,
    load: async () => (await import('./members-data.ts')).moveDataAsideAction,
  }),
  'members.start-replacement': defineAction({
    name: 'members.start-replacement',
    summary: 'Start the replacement member with --initial-cluster-state existing and the current --initial-cluster',
    input: z.strictObject({
      member: memberRef,
      peerURL: z.string().url().optional(),
      clientURL: z.string().url().optional(),
      dataDir: z.string().min(1).optional().describe('start on this empty data dir (a new disk or host) instead of the old member\'s'),
      waitFor: zDuration.default(60_000),
      until: z
        .enum(['answering', 'peer-listening'])
        .default('answering')
        .describe('answering: until it answers clients as the new member (it has caught up); peer-listening: until its peer port listens (an etcd.member-promote step then waits for it to catch up)'),
    }),
    mutates: true,
    idempotent: true,
    needsInventory: true,
    load: async () => (await import('./members-start-replacement.ts')).startReplacementAction,
  }),
  'kubernetes.stop-apiservers': defineAction({
    name: 'kubernetes.stop-apiservers',
    summary: 'Fence: stop the kube-apiservers named in the inventory before etcd is touched',
    input: z.strictObject({}),
    mutates: true,
    idempotent: true,
    needsInventory: true,
    load: async () => (await import('./kubernetes-apiservers.ts')).stopApiServersAction,
  }),
  'kubernetes.start-apiservers': defineAction({
    name: 'kubernetes.start-apiservers',
    summary: 'Start the kube-apiservers named in the inventory again',
    input: z.strictObject({}),
    mutates: true,
    idempotent: true,
    needsInventory: true,
    load: async () => (await import('./kubernetes-apiservers.ts')).startApiServersAction,
  }),
  'kubectl.verify': defineAction({
    name: 'kubectl.verify',
    summary: 'kubectl checks with the inventory kubeconfig: readyz (get --raw /readyz), nodes-ready',
    input: z.strictObject({
      checks: z.array(z.enum(['readyz', 'nodes-ready'])).min(1).default(['readyz']),
      waitFor: zDuration.default(60_000),
    }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./kubectl-verify.ts')).verifyAction,
  }),
  exec: defineAction({
    name: 'exec',
    summary: 'Run a command as an argv array (never a shell string); on the member host when in a member forEach',
    input: z.strictObject({
      argv: z.array(z.string().max(4096)).min(1).max(256),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
      cwd: z.string().optional(),
      idempotent: z.boolean().default(false).describe('safe to run again when a crash left its outcome unknown'),
      probe: z.array(z.string().max(4096)).min(1).max(256).optional().describe('argv of a read-only check: exit 0 means the effect is already there'),
    }),
    mutates: true,
    idempotent: false,
    perMember: 'optional',
    load: async () => (await import('./exec.ts')).exec,
  }),
  script: defineAction({
    name: 'script',
    summary: 'Run a zx script (a file next to the runbook) as a child process; params, step outputs and `args` reach it as data ($RUNBOOK_INPUT), never as code',
    input: z.strictObject({
      file: z.string().min(1).max(4096).describe('the script, relative to the runbook file (run by zx: $, fs, path… are globals)'),
      args: z.record(z.string(), z.unknown()).optional().describe('data for the script (templates give values, not code): input.args in $RUNBOOK_INPUT'),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
      idempotent: z.boolean().default(false).describe('safe to run again when a crash left its outcome unknown'),
      probe: z.string().min(1).max(4096).optional().describe('a read-only script, same data: exit 0 means the effect is already there'),
    }),
    mutates: true,
    idempotent: false,
    perMember: 'optional',
    load: async () => (await import('./script.ts')).script,
  }),
  wait: defineAction({
    name: 'wait',
    summary: 'Wait a fixed time (bounded; resumes count the time already waited)',
    input: z.strictObject({ duration: zDuration }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./wait.ts')).wait,
  }),
  approve: defineAction({
    name: 'approve',
    summary: 'A pause that only a human approval ends (use with approval: required)',
    input: z.strictObject({ message: z.string().max(2000).optional() }),
    mutates: false,
    idempotent: true,
    load: async () => (await import('./approve.ts')).approve,
  }),
} as const satisfies Record<string, CatalogEntry>;

export function actionMeta(name: string): ActionMeta | undefined {
  return Object.hasOwn(catalog, name) ? (catalog as Record<string, ActionMeta>)[name] : undefined;
}
