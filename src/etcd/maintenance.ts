/**
 * Maintenance calls, each sent to exactly one member. Alarm enums: etcd3's proto renames them, so only its
 * own enum values work (`AlarmAction.Deactivate`, `AlarmType.Nospace`); etcd's names ('DEACTIVATE') are
 * silently treated as Get and the alarm stays (ETCD-NOTES).
 */
import { AlarmAction, AlarmType } from 'etcd3';
import { callMember, type CallOpts } from './call.ts';
import { hexIdToDecimal, toHexId } from './ids.ts';
import type { EtcdPool } from './pool.ts';

export type AlarmName = 'NOSPACE' | 'CORRUPT';

export interface Alarm {
  /** Hex id of the member the alarm is raised for. */
  memberId: string;
  /** NOSPACE or CORRUPT (any other value etcd may add is passed through in upper case). */
  alarm: AlarmName | (string & {});
}

const ALARM_TYPE: Record<AlarmName, AlarmType> = { NOSPACE: AlarmType.Nospace, CORRUPT: AlarmType.Corrupt };

/** The wire says "Nospace" / "Corrupt" (the proto's renamed enum); callers see etcd's names. */
export function alarmNameFromWire(value: unknown): string {
  const v = String(value).toUpperCase();
  return v === '1' ? 'NOSPACE' : v === '2' ? 'CORRUPT' : v;
}

/**
 * Alarms as a member's status reports them ("memberID:17161531507652365892 alarm:NOSPACE "): read-only, unlike
 * listAlarms.
 */
export function alarmsFromStatusErrors(errors: string[]): Alarm[] {
  return errors.flatMap((e) => {
    const m = /memberID:(\d+)\s+alarm:([A-Z]+)/.exec(e);
    return m ? [{ memberId: toHexId(m[1]!), alarm: m[2]! }] : [];
  });
}

/**
 * The cluster's active alarms, linearizable. Note: etcd serves Alarm(GET) as a raft proposal, so every call is a
 * (tiny) write on every member; read-only paths use the alarms in a status instead (alarmsFromStatusErrors).
 */
export async function listAlarms(pool: EtcdPool, endpointOrName: string, opts?: CallOpts): Promise<Alarm[]> {
  const res = await callMember(pool, endpointOrName, 'alarm list', (c, o) => c.maintenance.alarm({ action: AlarmAction.Get, memberID: 0, alarm: AlarmType.None }, o), opts);
  return (res.alarms ?? [])
    .map((a) => ({ memberId: toHexId(a.memberID), alarm: alarmNameFromWire(a.alarm) }))
    .filter((a) => a.alarm !== 'NONE');
}

/**
 * Deactivate one alarm of one member. Returns the alarms etcd reports as still active afterwards. Callers must
 * still verify with listAlarms: the call does not fail when nothing was disarmed.
 */
export async function disarmAlarm(pool: EtcdPool, endpointOrName: string, memberIdHex: string, alarm: AlarmName, opts?: CallOpts): Promise<void> {
  await callMember(
    pool,
    endpointOrName,
    `alarm disarm ${alarm} of ${memberIdHex}`,
    (c, o) => c.maintenance.alarm({ action: AlarmAction.Deactivate, memberID: hexIdToDecimal(memberIdHex), alarm: ALARM_TYPE[alarm] }, o),
    opts,
  );
}

/**
 * Defragment one member. Blocks that member for the duration (~0.1 s per 64 MB here; minutes for GBs): give a
 * timeout scaled to its db size. On a client timeout the defrag may still be running: poll status, never re-issue.
 */
export async function defragment(pool: EtcdPool, endpointOrName: string, opts: CallOpts & { timeoutMs: number }): Promise<void> {
  await callMember(pool, endpointOrName, 'defragment', (c, o) => c.maintenance.defragment(o), opts);
}

/** Transfer leadership. Must be sent to the current leader ("not leader" otherwise). */
export async function moveLeader(pool: EtcdPool, leaderEndpointOrName: string, toMemberIdHex: string, opts?: CallOpts): Promise<void> {
  await callMember(pool, leaderEndpointOrName, `move leader to ${toMemberIdHex}`, (c, o) => c.maintenance.moveLeader({ targetID: hexIdToDecimal(toMemberIdHex) }, o), opts);
}

export interface KVHash {
  endpoint: string;
  memberId: string;
  /** The revision the hash covers. */
  revision: number;
  hash: number;
  compactRevision: number;
}

/** Hash of the MVCC keyspace up to `revision` (0 = the member's current revision). */
export async function hashKV(pool: EtcdPool, endpointOrName: string, revision: number, opts?: CallOpts): Promise<KVHash> {
  const endpoint = pool.endpointOf(endpointOrName);
  const res = await callMember(pool, endpoint, `hashKV at ${revision || 'current revision'}`, (c, o) => c.hashKV({ revision }, o), opts);
  return {
    endpoint,
    memberId: toHexId(res.header.member_id),
    revision: revision || Number(res.header.revision),
    hash: Number(res.hash),
    compactRevision: Number(res.compact_revision),
  };
}
