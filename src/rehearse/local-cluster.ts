/**
 * A throwaway local etcd cluster: N members on 127.0.0.1 (free ports, a temp dir of its own, a tiny quota), started
 * through the product's `process` driver. `runbook rehearse` runs runbooks against it; the integration tests use it
 * through test/support/etcd-cluster.ts.
 *
 * Every member it starts is SIGKILLed by pid at teardown, and (best effort) when this process exits; with
 * `killOnSignals` also when a signal ends this process (exit-reaper.ts). Only processes still running one of its own
 * members' command lines are ever signalled.
 *
 * The temp dir (data dirs, logs, snapshots) is the sandbox's own (sandbox.ts): removed at teardown. Nothing outside
 * it is ever written or removed; a snapshot restored into it is only read. Ports: ports.ts; binaries: etcd-binary.ts.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AlarmAction, GRPCResourceExhastedError, type Etcd3 } from 'etcd3';
import { execa } from 'execa';
import { stringify } from 'yaml';
import type { Inventory, MemberSpec } from '../inventory/types.ts';
import { UserError } from '../util/errors.ts';
import { toHexId } from '../etcd/ids.ts';
import { createEtcdClient } from '../etcd/client.ts';
import { argvMatches, effectiveCommand, isAlive, processArgv, startProcess, stopProcess } from '../drivers/process.ts';
import type { ProcessSpec } from '../drivers/process.ts';
import { throwIfAborted } from './abort.ts';
import { binaryVersion, etcdctlEnv, resolveEtcdBinDir } from './etcd-binary.ts';
import { forgetOnExit, installExitHooks, reapOnExit, type Reapable } from './exit-reaper.ts';
import { freePorts } from './ports.ts';
import { createSandboxDir, removeSandboxDir } from './sandbox.ts';

/** How fillToNospace writes (values overwrite `keys` keys, so every put adds history the quota counts). */
export interface FillOptions {
  valueBytes?: number;
  keys?: number;
  signal?: AbortSignal;
  /** Called at most every progressEveryMs (default 1 s) while filling: a large quota takes minutes. */
  onProgress?: (p: { puts: number; bytes: number }) => void;
  progressEveryMs?: number;
}

export interface LocalMember {
  name: string;
  clientURL: string;
  peerURL: string;
  dataDir: string;
  logFile: string;
  pidFile: string;
  command: string[];
}

export interface LocalMemberStatus {
  dbSize: number;
  dbSizeInUse: number;
  /** Hex, unpadded, like `etcdctl -w simple` (0 when the member knows no leader). */
  leader: string;
  memberId: string;
  /** Hex like the product's status (src/etcd/ids.ts): a restore makes a new one. */
  clusterId: string;
  revision: number;
  raftTerm: number;
  isLearner: boolean;
}

/** Certificate files for a cluster serving clients over TLS (peers stay plain http on loopback). */
export interface LocalClusterCerts {
  cacert: string;
  /** Client certificate and key (etcdctl's --cert/--key). */
  cert: string;
  key: string;
  serverCert: string;
  serverKey: string;
}

export interface LocalCluster {
  dir: string;
  members: LocalMember[];
  endpoints: string[];
  quotaBytes: number;
  /** The dir (absolute) of the etcd binaries the members run. */
  etcdBinDir: string;
  /** The etcd version a member must report (waitHealthy fails otherwise). */
  expectedVersion(name: string): string;
  /** Run a stopped member on `<binDir>/etcd` from its next start (a rolling upgrade). */
  useEtcd(name: string, binDir: string): void;
  /** Client certificate files (etcdctl's --cacert/--cert/--key) when the cluster serves clients over TLS. */
  tls?: { cacert: string; cert: string; key: string };
  /** Members with process drivers; `source` as given at start. */
  inventory(overrides?: Partial<Inventory>): Inventory;
  /** Writes the inventory as cluster.yaml (default `<dir>/cluster.yaml`) and returns its path. */
  writeInventory(file?: string, overrides?: Partial<Inventory>): string;
  /** A new single-endpoint client (default: the first member), library retries and circuit breaker off, 5 s deadline per call. Closed at teardown. */
  client(member?: string): Etcd3;
  /** Start a member through the process driver (flags set through the driver apply). Does not wait for health. */
  start(name: string): Promise<void>;
  /** SIGTERM through the process driver and wait for the exit. */
  stop(name: string): Promise<void>;
  /** Send a signal (default SIGKILL) to the member's process; waits for the exit when the signal ends it. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Pid of the member's live process (per its pid file), if any. */
  pid(name: string): number | undefined;
  /** Leader elected, every member expected to run answers status and agrees on the leader. Default 20 s. */
  waitHealthy(timeoutMs?: number, opts?: { members?: string[] }): Promise<void>;
  /** Overwrite a few keys with big values until etcd answers NOSPACE and the alarm is raised. */
  fillToNospace(opts?: FillOptions): Promise<{ puts: number }>;
  /** Active alarms, sorted by member; memberID in hex like etcdctl, alarm as etcd names it (NOSPACE, CORRUPT). */
  alarms(): Promise<{ memberID: string; alarm: string }[]>;
  status(name: string): Promise<LocalMemberStatus>;
  /** `etcdctl snapshot save` from one running member. */
  snapshot(file: string): Promise<void>;
  /** Every pid this cluster started (alive or not): for "no process left behind" asserts. */
  startedPids(): number[];
  /** SIGKILL every member this cluster started (by pid), wait for the exits, close clients, remove the temp dir. */
  teardown(): Promise<void>;
}

export interface LocalClusterOptions {
  members?: number;
  quotaBytes?: number;
  /** Cluster name (inventory name, token prefix). Default "local". */
  name?: string;
  /** Appended to every member's command line. */
  extraFlags?: string[];
  /** Time to wait for the first healthy cluster (default 30 s). */
  startTimeoutMs?: number;
  /** Prefix of the temp dir under os.tmpdir() (default "runbook-local-"). */
  dirPrefix?: string;
  /** The inventory's `source` (default "local cluster"). */
  source?: string;
  /** Makes the TLS files in the given dir; the cluster then serves clients over https with client-cert auth. */
  tls?: (dir: string) => Promise<LocalClusterCerts>;
  /** Keep the temp dir (logs, data) at teardown and exit; members are still killed. */
  keepDir?: boolean;
  /** Also kill the members when SIGINT/SIGTERM/SIGHUP ends this process (default true). */
  killOnSignals?: boolean;
  /** Restore every member from this snapshot file (etcdctl snapshot restore) before the first start; it is only read. */
  fromSnapshot?: string;
  /** Prefix of the keys fillToNospace overwrites (default "runbook-test/fill/"). */
  fillPrefix?: string;
  /** Aborts the start (what already started is torn down). */
  signal?: AbortSignal;
  /**
   * Where the etcd binaries are (absolute). Default $ETCD_BIN_DIR, else the dir of the `etcd` PATH finds. Every
   * member runs `<dir>/etcd` by absolute path, so a unit or an ssh session with another PATH runs the same etcd.
   */
  etcdBinDir?: string;
  /**
   * The etcd version the members must report (Status `version`); a member reporting another fails the start and
   * every waitHealthy. Default $RUNBOOK_ETCD_VERSION (scripts/bootstrap.sh; else $ETCD_VERSION) when the bin dir is $ETCD_BIN_DIR, else what `<dir>/etcd --version` says.
   */
  expectVersion?: string;
}

const MiB = 1024 * 1024;
export const DEFAULT_LOCAL_QUOTA = 16 * MiB;
const CALL_DEADLINE_MS = 5_000;

const hex = (decimal: string | undefined): string => (decimal ? BigInt(decimal).toString(16) : '0');

/** The pids among these that are live processes (zombies count as gone). */
export function livePids(pids: number[]): number[] {
  return pids.filter((pid) => isAlive(pid));
}

/** Last lines of a member log, each cut to a readable length. */
export function logTail(file: string, lines = 15): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return `(no log at ${file})`;
  }
  const tail = text.trimEnd().split('\n').slice(-lines).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
  return tail.length && tail[0] !== '' ? tail.join('\n') : '(log is empty)';
}

// ---- the cluster ------------------------------------------------------------------------------------------------------

class ClusterImpl implements LocalCluster, Reapable {
  readonly dir: string;
  members: LocalMember[] = [];
  endpoints: string[] = [];
  readonly quotaBytes: number;
  readonly tls: { cacert: string; cert: string; key: string } | undefined;
  readonly #name: string;
  readonly #source: string;
  readonly #keepDir: boolean;
  readonly #fillPrefix: string;
  readonly #certs: LocalClusterCerts | undefined;
  /** The etcd binaries' dir (absolute) and the version every member must report, per member (useEtcd changes one). */
  readonly etcdBinDir: string;
  readonly #versions = new Map<string, string>();
  readonly #defaultVersion: string;
  /** Members expected to be running (started and not stopped/killed through this object). */
  readonly #expected = new Set<string>();
  readonly #started = new Set<number>();
  readonly #clients = new Set<Etcd3>();
  /** One reusable client per member for our own calls; dropped after a failure (fresh connection next time). */
  readonly #own = new Map<string, Etcd3>();
  #tornDown = false;

  constructor(dir: string, opts: { name: string; source: string; quotaBytes: number; certs: LocalClusterCerts | undefined; keepDir: boolean; fillPrefix: string; etcdBinDir: string; version: string }) {
    this.dir = dir;
    this.etcdBinDir = opts.etcdBinDir;
    this.#defaultVersion = opts.version;
    this.#name = opts.name;
    this.#source = opts.source;
    this.quotaBytes = opts.quotaBytes;
    this.#certs = opts.certs;
    this.#keepDir = opts.keepDir;
    this.#fillPrefix = opts.fillPrefix;
    this.tls = opts.certs ? { cacert: opts.certs.cacert, cert: opts.certs.cert, key: opts.certs.key } : undefined;
  }

  /** Lays out members on fresh ports (fresh data dirs). Returns the initial cluster token. */
  layout(n: number, ports: number[], extraFlags: string[]): string {
    const scheme = this.#certs ? 'https' : 'http';
    const token = `${this.#name}-${randomBytes(4).toString('hex')}`;
    const names = Array.from({ length: n }, (_, i) => `m${i + 1}`);
    const peer = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
    const initialCluster = names.map((nm, i) => `${nm}=${peer(i)}`).join(',');
    this.members = names.map((name, i) => {
      const clientURL = `${scheme}://127.0.0.1:${ports[2 * i]}`;
      const peerURL = peer(i);
      const dataDir = join(this.dir, `${name}.etcd`);
      const tlsFlags = this.#certs
        ? ['--cert-file', this.#certs.serverCert, '--key-file', this.#certs.serverKey, '--client-cert-auth', '--trusted-ca-file', this.#certs.cacert]
        : [];
      return {
        name, clientURL, peerURL, dataDir,
        logFile: join(this.dir, `${name}.log`),
        pidFile: join(this.dir, `${name}.pid`),
        command: [
          join(this.etcdBinDir, 'etcd'),
          '--name', name,
          '--data-dir', dataDir,
          '--listen-client-urls', clientURL,
          '--advertise-client-urls', clientURL,
          '--listen-peer-urls', peerURL,
          '--initial-advertise-peer-urls', peerURL,
          '--initial-cluster', initialCluster,
          '--initial-cluster-token', token,
          '--initial-cluster-state', 'new',
          '--quota-backend-bytes', String(this.quotaBytes),
          '--auto-compaction-retention=0',
          '--snapshot-count', '10000',
          '--heartbeat-interval', '50',
          '--election-timeout', '500',
          '--logger=zap',
          '--log-outputs=stderr',
          ...tlsFlags,
          ...extraFlags,
        ],
      };
    });
    this.endpoints = this.members.map((m) => m.clientURL);
    for (const m of this.members) this.#versions.set(m.name, this.#defaultVersion);
    return token;
  }

  /** Restore every member's data dir from a snapshot (before the first start), like a staging copy. */
  async restore(snapshot: string, token: string, signal?: AbortSignal): Promise<void> {
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerURL}`).join(',');
    // etcdutl where the release has it (etcdctl's snapshot restore is deprecated in 3.5 and gone in 3.6).
    const tool = existsSync(join(this.etcdBinDir, 'etcdutl')) ? join(this.etcdBinDir, 'etcdutl') : join(this.etcdBinDir, 'etcdctl');
    for (const m of this.members) {
      throwIfAborted(signal, 'restore');
      const r = await execa(
        tool,
        ['snapshot', 'restore', snapshot, '--name', m.name, '--data-dir', m.dataDir, '--initial-cluster', initialCluster,
          '--initial-cluster-token', token, '--initial-advertise-peer-urls', m.peerURL],
        { env: { ...etcdctlEnv(), ETCDCTL_API: '3' }, extendEnv: false, reject: false, timeout: 300_000, stdin: 'ignore', ...(signal ? { cancelSignal: signal } : {}) },
      );
      throwIfAborted(signal, 'restore');
      if (r.exitCode !== 0) {
        throw new Error(`${tool} snapshot restore ${snapshot} for ${m.name} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
      }
    }
  }

  member(name: string): LocalMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name} in this cluster (members: ${this.members.map((x) => x.name).join(', ')})`);
    return m;
  }

  #spec(m: LocalMember): ProcessSpec {
    return { type: 'process', command: m.command, pidFile: m.pidFile, logFile: m.logFile };
  }

  #memberSpec(m: LocalMember): MemberSpec {
    return { name: m.name, clientURL: m.clientURL, peerURL: m.peerURL, dataDir: m.dataDir, driver: this.#spec(m) };
  }

  inventory(overrides: Partial<Inventory> = {}): Inventory {
    const inv: Inventory = {
      name: this.#name,
      source: this.#source,
      members: this.members.map((m) => this.#memberSpec(m)),
      snapshots: { dirs: [join(this.dir, 'snapshots')] },
      requestTimeoutMs: CALL_DEADLINE_MS,
      quotaBytes: this.quotaBytes,
    };
    if (this.tls) inv.tls = { ...this.tls };
    inv.etcdBinDir = this.etcdBinDir;
    return { ...inv, ...overrides };
  }

  writeInventory(file = join(this.dir, 'cluster.yaml'), overrides: Partial<Inventory> = {}): string {
    const { source: _source, ...inv } = this.inventory(overrides);
    writeFileSync(file, stringify(inv));
    return file;
  }

  #newClient(m: LocalMember): Etcd3 {
    const tls = this.tls;
    return createEtcdClient({
      hosts: m.clientURL,
      deadline: CALL_DEADLINE_MS,
      ...(tls ? { tls: { rootCertificate: readFileSync(tls.cacert), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) } } : {}),
    });
  }

  client(member?: string): Etcd3 {
    const m = member === undefined ? this.members[0]! : this.member(member);
    const c = this.#newClient(m);
    this.#clients.add(c);
    return c;
  }

  #ownClient(name: string): Etcd3 {
    let c = this.#own.get(name);
    if (!c) {
      c = this.#newClient(this.member(name));
      this.#own.set(name, c);
    }
    return c;
  }

  #dropOwnClient(name: string): void {
    const c = this.#own.get(name);
    if (c) {
      this.#own.delete(name);
      c.close();
    }
  }

  /** A call on our client for a member; a failure drops the client so the next call reconnects at once. */
  async #call<T>(name: string, fn: (c: Etcd3) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#ownClient(name));
    } catch (err) {
      this.#dropOwnClient(name);
      throw err;
    }
  }

  /** Pid of the member's live process per its pid file, checked against its command line. */
  pid(name: string): number | undefined {
    const m = this.member(name);
    let pid: number;
    try {
      pid = Number(readFileSync(m.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!isAlive(pid)) return undefined;
    const argv = processArgv(pid);
    return argv && argvMatches(argv, m.command) ? pid : undefined;
  }

  startedPids(): number[] {
    return [...this.#started];
  }

  /** The etcd version a member must report (its binary's). */
  expectedVersion(name: string): string {
    return this.#versions.get(this.member(name).name) ?? this.#defaultVersion;
  }

  /**
   * Run a stopped member on the etcd in another dir from its next start (a rolling upgrade): its command names
   * `<binDir>/etcd`, and it must then report that binary's version.
   */
  useEtcd(name: string, binDir: string): void {
    const m = this.member(name);
    if (this.pid(name) !== undefined) throw new Error(`useEtcd ${name}: stop it first`);
    const etcd = join(resolve(binDir), 'etcd');
    const version = binaryVersion(etcd);
    m.command = [etcd, ...m.command.slice(1)];
    this.#versions.set(name, version);
  }

  async start(name: string): Promise<void> {
    const m = this.member(name);
    const spec = this.#spec(m);
    const { pid } = await startProcess({ ...spec, command: effectiveCommand(spec) });
    this.#started.add(pid);
    this.#expected.add(name);
  }

  async stop(name: string): Promise<void> {
    const m = this.member(name);
    this.#expected.delete(name);
    this.#dropOwnClient(name);
    const spec = this.#spec(m);
    await stopProcess({ ...spec, command: effectiveCommand(spec) }, { timeoutMs: 10_000 });
  }

  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = this.pid(name);
    if (pid === undefined) throw new Error(`kill ${name}: member is not running`);
    const ends = signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGQUIT';
    if (ends) {
      this.#expected.delete(name);
      this.#dropOwnClient(name);
    }
    process.kill(pid, signal);
    if (!ends) return;
    for (const until = Date.now() + 10_000; isAlive(pid); await sleep(20)) {
      if (Date.now() > until) throw new Error(`kill ${name}: pid ${pid} still alive 10 s after ${signal}`);
    }
  }

  async status(name: string): Promise<LocalMemberStatus> {
    const s = await this.#call(name, (c) => c.maintenance.status());
    return {
      dbSize: Number(s.dbSize),
      dbSizeInUse: Number(s.dbSizeInUse),
      leader: hex(s.leader),
      memberId: hex(s.header.member_id),
      clusterId: toHexId(s.header.cluster_id),
      revision: Number(s.header.revision),
      raftTerm: Number(s.raftTerm),
      isLearner: s.isLearner,
    };
  }

  /** Members expected to be running. */
  #running(): LocalMember[] {
    return this.members.filter((m) => this.#expected.has(m.name));
  }

  #anyRunning(what: string): LocalMember {
    const m = this.#running()[0];
    if (!m) throw new Error(`${what}: no member is running`);
    return m;
  }

  async waitHealthy(timeoutMs = 20_000, opts: { members?: string[]; signal?: AbortSignal } = {}): Promise<void> {
    const members = opts.members ? opts.members.map((n) => this.member(n)) : this.#running();
    if (members.length === 0) throw new Error('waitHealthy: no member is expected to run');
    const until = Date.now() + timeoutMs;
    let problem = 'no answer yet';
    let culprit: LocalMember | undefined;
    for (;;) {
      throwIfAborted(opts.signal, 'waiting for a healthy cluster');
      for (const m of members) {
        if (this.pid(m.name) === undefined) {
          throw new Error(`waitHealthy: member ${m.name} is not running (exited?). Log tail of ${m.logFile}:\n${logTail(m.logFile)}`);
        }
      }
      const answers = await Promise.allSettled(
        members.map((m) =>
          this.#call(m.name, (c) => c.maintenance.status({ deadline: Date.now() + Math.min(2_000, Math.max(200, until - Date.now())) })),
        ),
      );
      const failed = answers.findIndex((a) => a.status === 'rejected');
      const rejected = answers[failed];
      if (rejected?.status === 'rejected') {
        culprit = members[failed];
        problem = `${culprit!.name} does not answer status: ${(rejected.reason as Error)?.message ?? String(rejected.reason)}`;
      } else {
        const statuses = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
        // The version asked for, by the member itself: a unit or an ssh session that ran another etcd fails here.
        const wrong = members.map((m, i) => ({ m, v: statuses[i]!.version })).filter(({ m, v }) => v !== this.expectedVersion(m.name));
        if (wrong.length > 0) {
          throw new Error(`waitHealthy: ${wrong.map(({ m, v }) => `${m.name} reports etcd ${v}, expected ${this.expectedVersion(m.name)}`).join('; ')} (a member started with another etcd binary than ${this.etcdBinDir})`);
        }
        const ids = statuses.map((s) => s.header.member_id);
        const leaders = new Set(statuses.map((s) => s.leader));
        const leader = statuses[0]!.leader;
        culprit = undefined;
        if (leaders.size !== 1) problem = `members disagree on the leader: ${members.map((m, i) => `${m.name}→${hex(statuses[i]!.leader)}`).join(' ')}`;
        else if (leader === '0') problem = 'no leader elected';
        // Right after the leader dies the others still name it until the election timeout: wait for one of ours.
        else if (!opts.members && !ids.includes(leader)) problem = `leader ${hex(leader)} is not one of the running members`;
        else return;
      }
      if (Date.now() >= until) {
        const tails = (culprit ? [culprit] : members).map((m) => `--- ${m.name} (${m.logFile}):\n${logTail(m.logFile, 8)}`).join('\n');
        throw new Error(`waitHealthy: cluster not healthy after ${timeoutMs} ms: ${problem}\n${tails}`);
      }
      await sleep(100);
    }
  }

  async fillToNospace(opts: FillOptions = {}): Promise<{ puts: number }> {
    const valueBytes = opts.valueBytes ?? 256 * 1024;
    const keys = opts.keys ?? 16;
    const m = this.#anyRunning('fillToNospace');
    const value = Buffer.alloc(valueBytes, 0x61);
    const maxPuts = Math.ceil((this.quotaBytes * 4) / valueBytes) + 64;
    const every = opts.progressEveryMs ?? 1000;
    let puts = 0;
    let said = Date.now();
    for (;;) {
      throwIfAborted(opts.signal, 'filling to NOSPACE');
      if (opts.onProgress && Date.now() - said >= every) {
        said = Date.now();
        opts.onProgress({ puts, bytes: puts * valueBytes });
      }
      if (puts >= maxPuts) throw new Error(`fillToNospace: no NOSPACE after ${puts} puts of ${valueBytes} bytes (quota ${this.quotaBytes})`);
      try {
        await this.#call(m.name, (c) => c.put(`${this.#fillPrefix}${puts % keys}`).value(value).exec());
        puts++;
      } catch (err) {
        if (err instanceof GRPCResourceExhastedError) break;
        throw new Error(`fillToNospace: put ${puts} failed with something other than NOSPACE: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const until = Date.now() + 5_000; ; await sleep(100)) {
      if ((await this.alarms()).some((a) => a.alarm === 'NOSPACE')) return { puts };
      if (Date.now() > until) throw new Error(`fillToNospace: puts fail with NOSPACE but no NOSPACE alarm is listed`);
    }
  }

  async alarms(): Promise<{ memberID: string; alarm: string }[]> {
    const m = this.#anyRunning('alarms');
    const r = await this.#call(m.name, (c) => c.maintenance.alarm({ action: AlarmAction.Get }));
    // etcd lists alarms in map order, which differs between calls: sorted, so two listings compare equal.
    return r.alarms
      .map((a) => ({ memberID: hex(a.memberID), alarm: String(a.alarm).toUpperCase() }))
      .sort((x, y) => x.memberID.localeCompare(y.memberID) || x.alarm.localeCompare(y.alarm));
  }

  async snapshot(file: string): Promise<void> {
    const m = this.#anyRunning('snapshot');
    const tlsArgs = this.tls ? ['--cacert', this.tls.cacert, '--cert', this.tls.cert, '--key', this.tls.key] : [];
    const r = await execa(join(this.etcdBinDir, 'etcdctl'), ['--endpoints', m.clientURL, ...tlsArgs, 'snapshot', 'save', file], {
      env: etcdctlEnv(), extendEnv: false, reject: false, timeout: 60_000, stdin: 'ignore',
    });
    if (r.exitCode !== 0) throw new Error(`etcdctl snapshot save ${file} failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
  }

  /** Pids to kill: every pid we started plus whatever the pid files name now (a runbook may have restarted members). */
  #ourLivePids(): number[] {
    const pids = new Set(this.#started);
    for (const m of this.members) {
      const pid = this.pid(m.name);
      if (pid !== undefined) pids.add(pid);
    }
    // Only processes still running one of our members' command lines (never a recycled pid).
    return [...pids].filter((pid) => {
      if (!isAlive(pid)) return false;
      const argv = processArgv(pid);
      return argv !== undefined && this.members.some((m) => argvMatches(argv, m.command));
    });
  }

  killAllSync(): void {
    for (const pid of this.#ourLivePids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!this.#keepDir) removeSandboxDir(this.dir);
  }

  async killAll(): Promise<void> {
    const pids = this.#ourLivePids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const until = Date.now() + 10_000; livePids(pids).length > 0; await sleep(20)) {
      if (Date.now() > until) throw new Error(`teardown: pids ${livePids(pids).join(', ')} still alive 10 s after SIGKILL`);
    }
    this.#expected.clear();
  }

  #closeClients(): void {
    for (const c of [...this.#clients, ...this.#own.values()]) c.close();
    this.#clients.clear();
    this.#own.clear();
  }

  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    this.#closeClients();
    try {
      await this.killAll();
    } finally {
      forgetOnExit(this);
      if (!this.#keepDir) removeSandboxDir(this.dir);
    }
  }

  /**
   * Leave the members running and the dir in place (`rehearse --keep`): closes our clients and forgets the
   * cluster, so neither teardown nor the exit hook touches it. Returns the pids left running.
   */
  detach(): number[] {
    this.#tornDown = true;
    this.#closeClients();
    forgetOnExit(this);
    return this.#ourLivePids();
  }

  async launch(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        const { pid } = await startProcess(this.#spec(m));
        this.#started.add(pid);
        this.#expected.add(m.name);
      }),
    );
  }

  /** After a failed launch: kill what started and clear our own data dirs so the next layout starts clean. */
  async reset(): Promise<void> {
    await this.killAll();
    for (const c of this.#own.values()) c.close();
    this.#own.clear();
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
  }

  portClash(): boolean {
    return this.members.some((m) => existsSync(m.logFile) && readFileSync(m.logFile, 'utf8').includes('address already in use'));
  }
}

export type LocalClusterHandle = LocalCluster & {
  /** Stop tracking the cluster and leave it running (see ClusterImpl.detach). */
  detach(): number[];
  waitHealthy(timeoutMs?: number, opts?: { members?: string[]; signal?: AbortSignal }): Promise<void>;
  fillToNospace(opts?: FillOptions): Promise<{ puts: number }>;
};

/**
 * Start an N-member cluster (default 3) on loopback and wait until it is healthy.
 *
 * @example
 * const cluster = await startLocalCluster({ quotaBytes: 16 * 1024 * 1024 });
 * try { await cluster.fillToNospace(); } finally { await cluster.teardown(); }
 */
export async function startLocalCluster(opts: LocalClusterOptions = {}): Promise<LocalClusterHandle> {
  const n = opts.members ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 7) throw new Error(`members must be 1..7, got ${n}`);
  installExitHooks(opts.killOnSignals ?? true);
  throwIfAborted(opts.signal, 'starting a local cluster');
  const dir = createSandboxDir(opts.dirPrefix ?? 'runbook-local-');
  let certs: LocalClusterCerts | undefined;
  try {
    certs = opts.tls ? await opts.tls(dir) : undefined;
  } catch (err) {
    removeSandboxDir(dir);
    throw err;
  }
  mkdirSync(join(dir, 'snapshots'));
  let etcdBinDir: string;
  let version: string;
  try {
    etcdBinDir = resolveEtcdBinDir(opts.etcdBinDir);
    version = binaryVersion(join(etcdBinDir, 'etcd'));
    const expected = opts.expectVersion ?? (opts.etcdBinDir === undefined && process.env.ETCD_BIN_DIR ? (process.env.RUNBOOK_ETCD_VERSION || process.env.ETCD_VERSION || undefined) : undefined);
    if (expected && expected !== version) {
      throw new UserError(`${join(etcdBinDir, 'etcd')} is etcd ${version}, but etcd ${expected} was asked for (ETCD_VERSION / --etcd-version): fetch it with scripts/fetch-etcd.sh ${expected} and point ETCD_BIN_DIR at .tools/etcd-${expected}/bin`);
    }
  } catch (err) {
    removeSandboxDir(dir);
    throw err;
  }
  const cluster = new ClusterImpl(dir, {
    etcdBinDir,
    version,
    name: opts.name ?? 'local',
    source: opts.source ?? 'local cluster',
    quotaBytes: opts.quotaBytes ?? DEFAULT_LOCAL_QUOTA,
    certs,
    keepDir: opts.keepDir ?? false,
    fillPrefix: opts.fillPrefix ?? 'runbook-test/fill/',
  });
  reapOnExit(cluster);
  try {
    for (let attempt = 1; ; attempt++) {
      const token = cluster.layout(n, await freePorts(2 * n), opts.extraFlags ?? []);
      if (opts.fromSnapshot) await cluster.restore(opts.fromSnapshot, token, opts.signal);
      throwIfAborted(opts.signal, 'starting a local cluster');
      await cluster.launch();
      try {
        await cluster.waitHealthy(opts.startTimeoutMs ?? 30_000, opts.signal ? { signal: opts.signal } : {});
        return cluster;
      } catch (err) {
        // Another process took one of our ports between the check and etcd's bind: try again on new ports.
        if (attempt < 3 && cluster.portClash() && !opts.signal?.aborted) {
          await cluster.reset();
          for (const m of cluster.members) rmSync(m.logFile, { force: true });
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    await cluster.teardown().catch(() => {});
    throw err;
  }
}
