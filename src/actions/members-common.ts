/** What the member lifecycle actions share: asking a member briefly, quorum arithmetic, log tails, leadership hand-off. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { connect } from 'node:net';
import { shortGrpcMessage } from '../etcd/errors.ts';
import { urlHostPort } from '../etcd/ids.ts';
import type { EtcdPool } from '../etcd/pool.ts';
import { memberStatus, type MemberStatus } from '../etcd/status.ts';
import { clusterView, type MemberProbe } from '../etcd/view.ts';
import type { MemberSpec } from '../inventory/types.ts';
import { callOpts } from './etcd-common.ts';
import { pickSuccessor, transferLeadership } from './etcd-leader.ts';
import type { ActionContext } from './types.ts';

/** Per-call deadline while polling a member that may be down or waiting for quorum (it then accepts TCP and never answers). */
export const POLL_CALL_MS = 1500;

/** Majority of n voters. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** The member's status, or why it did not answer (never throws for an unreachable member; cancellation does). */
export async function askStatus(ctx: ActionContext, pool: EtcdPool, member: MemberSpec, timeoutMs = POLL_CALL_MS): Promise<{ ok: true; status: MemberStatus } | { ok: false; error: string }> {
  try {
    return { ok: true, status: await memberStatus(pool, member.clientURL, callOpts(ctx, { timeoutMs })) };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return { ok: false, error: shortGrpcMessage(err) };
  }
}

/** Does anything accept TCP connections at this URL's host:port? (An etcd waiting for quorum does, without answering.) */
export function acceptsConnections(url: string, timeoutMs = 1000): Promise<boolean> {
  const at = urlHostPort(url);
  if (!at) return Promise.resolve(false);
  const { host, port } = at;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (v: boolean) => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The end of a file (at most `bytes`), as text. */
function readEnd(file: string, bytes: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, bytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const GO_CRASH = /^(panic: |fatal error: |unexpected fault address|\[signal )/;
const FLAG_ERROR = /^(invalid value .* for flag |flag provided but not defined|flag needs an argument|error verifying flags)/;
const cut = (l: string) => (l.length > 400 ? `${l.slice(0, 400)}…` : l);

/**
 * What a human needs from the end of an etcd log: for a bad flag, Go's flag error (not the usage text after it);
 * for a Go crash (panic, SIGBUS on a damaged db), the last log lines before it and the crash message without the
 * goroutine dump; for a fatal log line, that line; else the last lines.
 */
export function summarizeLog(text: string, lines = 12): string | undefined {
  const all = text.trimEnd().split('\n');
  // The crash of the last run (the log is appended across restarts): the first line of the last crash block.
  const lastCrash = all.findLastIndex((l) => GO_CRASH.test(l));
  // A bad command line: Go's flag package prints the error, then the whole usage text.
  const flagError = all.findLastIndex((l) => FLAG_ERROR.test(l));
  if (flagError > lastCrash) return cut(all[flagError]!);
  if (lastCrash >= 0) {
    let crash = lastCrash;
    while (crash > 0 && (GO_CRASH.test(all[crash - 1]!) || all[crash - 1] === '')) crash--;
    while (crash < lastCrash && !GO_CRASH.test(all[crash]!)) crash++;
    const before = all.slice(Math.max(0, crash - 3), crash).filter((l) => l.startsWith('{'));
    const block: string[] = [];
    for (const l of all.slice(crash, crash + 8)) {
      if (l.startsWith('goroutine ')) break;
      if (l !== '') block.push(l);
    }
    return [...before, ...block].map(cut).join('\n');
  }
  const fatal = all.findLastIndex((l) => /"level":"(fatal|panic)"/.test(l));
  if (fatal >= 0) return all.slice(Math.max(0, fatal - 2), fatal + 1).map(cut).join('\n');
  return all.slice(-lines).map(cut).join('\n') || undefined;
}

/** The end of the member's own log, when its driver keeps one on this machine (process driver logFile), summarized. */
export function memberLogTail(member: Pick<MemberSpec, 'driver'>, lines = 12): string | undefined {
  if (member.driver.type !== 'process' || !member.driver.logFile) return undefined;
  const text = readEnd(member.driver.logFile, 1024 * 1024);
  return text === undefined ? undefined : summarizeLog(text, lines);
}

/**
 * When `member` is the leader, hand leadership to another healthy voter (one in `prefer` first) and wait until it
 * holds. Returns the new leader's name, or undefined when there was nothing to do or no one to take over.
 */
export async function moveLeadershipOff(ctx: ActionContext, pool: EtcdPool, member: MemberSpec, prefer: string[] = []): Promise<string | undefined> {
  const view = await clusterView(pool, callOpts(ctx, { timeoutMs: POLL_CALL_MS * 2 }));
  const leader = view.leader;
  if (!leader || leader.name !== member.name) return undefined;
  const to = pickSuccessor(view, { exclude: [member.name], prefer });
  if (!to) {
    ctx.log(`${member.name} leads and no other healthy voter can take over: restarting the leader in place (a new election follows)`);
    return undefined;
  }
  await transferLeadership(ctx, pool, leader, to);
  return to.name;
}

/** Answering voters among the inventory members, by name. */
export function answeringVoters(members: MemberProbe[]): string[] {
  return members.filter((p) => p.ok && !(p.member?.isLearner ?? p.status.isLearner)).map((p) => p.name);
}
