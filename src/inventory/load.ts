/**
 * Load cluster.yaml: the members, how to reach them (URLs, TLS, auth, ssh) and how to drive them. Problems are
 * reported all at once with file:line:col, like runbooks. Relative paths are resolved against the file's
 * directory for things on this machine; paths on a member reached over ssh must be absolute.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { zBytes } from '../actions/catalog.ts';
import { unitsOverride } from '../runbook/units-schema.ts';
import { UserError } from '../util/errors.ts';
import type { Diagnostic } from '../util/errors.ts';
import { describeIssues, valueAt, type SchemaIssue } from '../util/schema-issues.ts';
import { readYamlFile } from '../util/yaml-source.ts';
import type { YamlPath, YamlSource } from '../util/yaml-source.ts';
import type { DriverSpec, Inventory, MemberSpec, SshHost } from './types.ts';

const zPath = z.string().min(1).max(4096);
const zName = z.string().min(1).max(63).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" and "-" (e.g. etcd-1)');

const zSsh = z.strictObject({
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).max(64).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, 'not a user name').optional(),
  identityFile: zPath.optional(),
  options: z.array(z.string().min(1).max(1024).regex(/^[A-Za-z]+=/, 'ssh options look like Name=value')).max(50).optional(),
});

const zDriver = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('process'),
    command: z.array(z.string().max(4096)).min(1).max(256).describe('argv of the etcd process (no shell)'),
    pidFile: zPath,
    logFile: zPath.optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(4096)).optional(),
  }),
  z.strictObject({ type: z.literal('static-pod'), manifest: zPath, backupDir: zPath.optional() }),
  z.strictObject({ type: z.literal('systemd'), unit: z.string().min(1).max(256).regex(/^[A-Za-z0-9@._:-]+$/, 'not a systemd unit name'), envFile: zPath.optional() }),
  z.strictObject({ type: z.literal('none') }),
]);

const zMember = z.strictObject({
  name: zName,
  clientURL: z.string().min(1).max(1024),
  peerURL: z.string().min(1).max(1024),
  dataDir: zPath.optional(),
  metricsURL: z.string().min(1).max(1024).optional().describe("where the member serves /metrics when not on its client URL (--listen-metrics-urls; kubeadm: http://127.0.0.1:2381)"),
  ssh: zSsh.optional(),
  driver: zDriver.optional(),
});

export const zInventory = z.strictObject({
  name: zName.describe('cluster name; with the member URLs it keys the run lock'),
  members: z.array(zMember).min(1).max(64),
  tls: z
    .strictObject({ cacert: zPath.optional(), cert: zPath.optional(), key: zPath.optional(), insecureSkipVerify: z.boolean().optional() })
    .optional(),
  auth: z
    .strictObject({
      username: z.string().min(1).max(256),
      passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
      passwordFile: zPath.optional(),
    })
    .optional(),
  kubernetes: z
    .strictObject({
      kubeconfig: zPath.optional(),
      context: z.string().min(1).max(256).optional(),
      apiServers: z.array(z.strictObject({ name: zName, driver: zDriver, ssh: zSsh.optional() })).max(64).optional(),
    })
    .optional(),
  snapshots: z.strictObject({ dirs: z.array(zPath).min(1).max(32) }).optional(),
  etcdBinDir: zPath.optional(),
  requestTimeoutMs: z.number().int().min(1).max(600_000).optional(),
  quotaBytes: zBytes.optional(),
});

type RawInventory = z.output<typeof zInventory>;

/** JSON Schema of cluster.yaml for editors (schema/inventory.schema.json). */
export function inventoryJsonSchema(): Record<string, unknown> {
  const j = z.toJSONSchema(zInventory, { io: 'input', unrepresentable: 'any', override: unitsOverride }) as Record<string, unknown>;
  const { $schema, ...rest } = j;
  return { $schema, title: 'runbook inventory (cluster.yaml)', description: 'The members of an etcd cluster and how to reach and drive them', ...rest };
}

/**
 * @example
 * const inv = loadInventory('examples/local-cluster.yaml');
 * inv.members.map((m) => m.clientURL);
 */
export function loadInventory(file: string): Inventory {
  const { source } = readYamlFile(file);
  const { inventory, diagnostics } = validateInventory(source, path.dirname(path.resolve(file)));
  if (inventory) return inventory;
  const n = diagnostics.length;
  throw new UserError(`${file}: invalid inventory (${n} problem${n === 1 ? '' : 's'})`, { diagnostics });
}

/** An inventory rather than a runbook: a mapping with `members:` and no `steps:` (for `runbook validate`). */
export function looksLikeInventory(file: string): boolean {
  try {
    const v = readYamlFile(file).source.value as Record<string, unknown> | null;
    return !!v && typeof v === 'object' && 'members' in v && !('steps' in v);
  } catch {
    return false; // the runbook validator reports why the file cannot be read
  }
}

/** `runbook validate` on an inventory: its problems as diagnostics (file:line:col), none when it loads. */
export function validateInventoryFile(file: string): { file: string; diagnostics: Diagnostic[] } {
  try {
    loadInventory(file);
    return { file, diagnostics: [] };
  } catch (err) {
    if (err instanceof UserError) return { file, diagnostics: err.diagnostics.length ? err.diagnostics : [{ file, line: 1, col: 1, message: err.message }] };
    throw err;
  }
}

/** Validate a parsed inventory; `baseDir` is where relative local paths are resolved from. */
export function validateInventory(src: YamlSource, baseDir: string): { inventory?: Inventory; diagnostics: Diagnostic[] } {
  const diags: Diagnostic[] = [];
  const at = (p: YamlPath, message: string, key = false) => diags.push({ file: src.file, ...src.posOf(p, { key }), message: `${label(p, key)}${message}` });
  const raw = src.value;

  // A literal password is refused with its own message (it must never sit in the file).
  const auth = raw.auth;
  if (auth && typeof auth === 'object' && Object.hasOwn(auth, 'password')) {
    at(['auth', 'password'], 'a literal password is not allowed in the inventory: use passwordEnv (an environment variable name) or passwordFile (a file readable only by you)', true);
  }

  const r = zInventory.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.filter((i) => !(i.code === 'unrecognized_keys' && i.path.join('.') === 'auth' && i.keys.length === 1 && i.keys[0] === 'password'));
    const known = (p: (string | number)[]) => shapeKeys(p);
    for (const m of describeIssues(issues as SchemaIssue[], raw, known)) {
      const p = m.path;
      const lp = m.missing ? p.slice(0, -1) : m.key ? p.slice(0, -1) : p;
      diags.push({ file: src.file, ...src.posOf(p, { key: m.key ?? false }), message: `${label(lp, false)}${m.message}` });
    }
  }

  // Checks that need the whole picture; they run on the raw value so they report even when other parts are broken.
  const members = Array.isArray(raw.members) ? raw.members : [];
  const seen = { name: new Map<string, number>(), clientURL: new Map<string, number>(), peerURL: new Map<string, number>() };
  members.forEach((m, i) => {
    if (!m || typeof m !== 'object') return;
    const mm = m as Record<string, unknown>;
    for (const field of ['clientURL', 'peerURL', 'metricsURL'] as const) {
      const u = mm[field];
      if (typeof u !== 'string') continue;
      const problem = urlProblem(u);
      if (problem) at(['members', i, field], problem);
    }
    for (const field of ['name', 'clientURL', 'peerURL'] as const) {
      const v = mm[field];
      if (typeof v !== 'string') continue;
      const k = field === 'name' ? v : normalizeUrl(v);
      const first = seen[field].get(k);
      if (first !== undefined) at(['members', i, field], `${field} ${JSON.stringify(v)} is also used by member ${first + 1} (line ${src.posOf(['members', first]).line})`);
      else seen[field].set(k, i);
      // One address is either a client or a peer URL: etcd cannot serve both on it.
      const other = field === 'clientURL' ? seen.peerURL.get(k) : field === 'peerURL' ? seen.clientURL.get(k) : undefined;
      if (other !== undefined) at(['members', i, field], `${field} ${JSON.stringify(v)} is also the ${field === 'clientURL' ? 'peerURL' : 'clientURL'} of member ${other + 1} (line ${src.posOf(['members', other]).line})`);
    }
    const remote = mm.ssh !== undefined;
    for (const p of memberPathFields(mm)) {
      const v = valueAt(mm, p);
      if (typeof v === 'string' && remote && !path.isAbsolute(v)) {
        at(['members', i, ...p], `${JSON.stringify(v)} must be an absolute path: this member is reached over ssh`);
      }
    }
    const driver = mm.driver as Record<string, unknown> | undefined;
    if (driver?.type === 'process' && Array.isArray(driver.command) && typeof mm.dataDir === 'string') {
      const flagDir = flagValue(driver.command, 'data-dir');
      if (flagDir !== undefined && path.resolve(baseDir, flagDir) !== path.resolve(baseDir, mm.dataDir)) {
        at(['members', i, 'dataDir'], `dataDir ${JSON.stringify(mm.dataDir)} differs from --data-dir ${JSON.stringify(flagDir)} in driver.command`);
      }
    }
  });
  for (const d of dataDirProblems(members)) at(d.path, d.message);
  const tls = raw.tls as Record<string, unknown> | undefined;
  if (tls && typeof tls === 'object' && (tls.cert === undefined) !== (tls.key === undefined)) {
    at(['tls'], 'cert and key go together: give both or neither');
  }
  if (auth && typeof auth === 'object') {
    const a = auth as Record<string, unknown>;
    if (a.passwordEnv === undefined && a.passwordFile === undefined) at(['auth'], 'give passwordEnv (an environment variable name) or passwordFile');
    if (a.passwordEnv !== undefined && a.passwordFile !== undefined) at(['auth', 'passwordFile'], 'give passwordEnv or passwordFile, not both');
  }

  if (diags.length || !r.success) return { diagnostics: sortDiags(diags) };
  return { inventory: build(r.data, src.file, baseDir), diagnostics: [] };

  function label(p: YamlPath, key: boolean): string {
    const lp = key ? p.slice(0, -1) : p;
    let prefix = '';
    let rest = lp;
    if (lp[0] === 'members' && typeof lp[1] === 'number') {
      const name = valueAt(raw, ['members', lp[1], 'name']);
      prefix = typeof name === 'string' && name.length <= 63 ? `member "${name}"` : `member ${lp[1] + 1}`;
      rest = lp.slice(2);
    }
    const field = rest.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
    return [prefix, field].filter(Boolean).join(': ') + (prefix || field ? ': ' : '');
  }
}

/**
 * Directories a data dir must never be: recovery moves a data dir aside and restores into its place, so `/`, a
 * system directory or a home is a disaster waiting for its first run.
 */
const SYSTEM_DIRS = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/media', '/mnt', '/opt', '/proc', '/root', '/run',
  '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/var', '/var/lib', '/var/log', '/var/tmp', '/var/run',
]);

/** The path as this machine resolves it: symlinks in the part that exists followed (two names for one dir are one dir). */
function resolveLocal(p: string): string {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return p;
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

/**
 * Each member's data dir (dataDir, else --data-dir of a process driver) must be absolute, not / or a system
 * directory, and its own: two members on one host sharing one (or one inside another's) would have a recovery move
 * a live member's data out from under it. Hosts are this machine or the ssh host; local paths are compared after
 * resolving symlinks.
 */
function dataDirProblems(members: unknown[]): { path: YamlPath; message: string }[] {
  const out: { path: YamlPath; message: string }[] = [];
  const seen: { host: string; dir: string; i: number; name: string }[] = [];
  members.forEach((m, i) => {
    if (!m || typeof m !== 'object') return;
    const mm = m as Record<string, unknown>;
    const driver = mm.driver as Record<string, unknown> | undefined;
    let dir: string | undefined;
    let where: YamlPath = ['members', i, 'dataDir'];
    if (typeof mm.dataDir === 'string') dir = mm.dataDir;
    else if (driver?.type === 'process' && Array.isArray(driver.command)) {
      dir = flagValue(driver.command, 'data-dir');
      const at = driver.command.findIndex((a) => typeof a === 'string' && /^--?data-dir(=|$)/.test(a));
      where = ['members', i, 'driver', 'command', at];
    }
    if (dir === undefined || dir === '') return;
    const name = typeof mm.name === 'string' ? mm.name : `member ${i + 1}`;
    const label = typeof mm.dataDir === 'string' ? 'dataDir' : '--data-dir';
    const ssh = mm.ssh as Record<string, unknown> | undefined;
    if (!path.isAbsolute(dir)) {
      if (ssh !== undefined && label === 'dataDir') return; // reported with the other paths of a remote member
      out.push({ path: where, message: `${label} ${JSON.stringify(dir)} must be an absolute path (recovery moves it aside and restores into it: a relative path would land wherever runbook is started)` });
      return;
    }
    const norm = path.posix.normalize(dir).replace(/(.)\/+$/, '$1');
    if (SYSTEM_DIRS.has(norm)) {
      out.push({ path: where, message: `${label} ${JSON.stringify(dir)} is a system directory: give the member's own directory (e.g. /var/lib/etcd)` });
      return;
    }
    const host = ssh && typeof ssh === 'object' ? `${String(ssh.user ?? '')}@${String(ssh.host)}:${String(ssh.port ?? 22)}` : 'this machine';
    const real = ssh ? norm : resolveLocal(norm);
    for (const o of seen) {
      if (o.host !== host) continue;
      const inside = (a: string, b: string) => a.startsWith(`${b}/`);
      const why = o.dir === real ? 'is also the data dir of' : inside(real, o.dir) ? 'is inside the data dir of' : inside(o.dir, real) ? 'contains the data dir of' : undefined;
      if (why) out.push({ path: where, message: `${label} ${JSON.stringify(dir)}${real !== norm ? ` (${real})` : ''} ${why} member "${o.name}" on ${host}: every member needs its own` });
    }
    seen.push({ host, dir: real, i, name });
  });
  return out;
}

function shapeKeys(p: (string | number)[]): string[] | undefined {
  const key = p.filter((s) => typeof s === 'string').join('.');
  switch (key) {
    case '':
      return Object.keys(zInventory.shape);
    case 'members':
      return Object.keys(zMember.shape);
    case 'members.ssh':
    case 'kubernetes.apiServers.ssh':
      return Object.keys(zSsh.shape);
    case 'tls':
      return ['cacert', 'cert', 'key', 'insecureSkipVerify'];
    case 'auth':
      return ['username', 'passwordEnv', 'passwordFile'];
    case 'kubernetes':
      return ['kubeconfig', 'context', 'apiServers'];
    case 'members.driver':
    case 'kubernetes.apiServers.driver':
      return ['type', 'command', 'pidFile', 'logFile', 'env', 'manifest', 'backupDir', 'unit', 'envFile'];
    default:
      return undefined;
  }
}

/** Paths inside a member that name files on the member's host. */
function memberPathFields(m: Record<string, unknown>): (string | number)[][] {
  const out: (string | number)[][] = [['dataDir']];
  const d = m.driver as Record<string, unknown> | undefined;
  if (d && typeof d === 'object') for (const k of ['pidFile', 'logFile', 'manifest', 'backupDir', 'envFile']) out.push(['driver', k]);
  return out;
}

function urlProblem(u: string): string | undefined {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return `${JSON.stringify(u)} is not a URL (e.g. https://10.0.0.1:2379)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(u)}: the scheme must be http or https`;
  if (!url.hostname) return `${JSON.stringify(u)} has no host`;
  if (!url.port) return `${JSON.stringify(u)} has no port (e.g. ${url.protocol}//${url.hostname}:2379)`;
  if (url.pathname !== '/' || url.search || url.hash) return `${JSON.stringify(u)}: a member URL has no path, query or fragment`;
  if (url.username || url.password) return `${JSON.stringify(u)}: credentials do not belong in a URL (use auth)`;
  return undefined;
}

function normalizeUrl(u: string): string {
  try {
    return new URL(u).origin;
  } catch {
    return u;
  }
}

/** Value of `--flag=v` or `--flag v` in an argv. */
function flagValue(argv: unknown[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (typeof a !== 'string') continue;
    if (a === `--${flag}` || a === `-${flag}`) return typeof argv[i + 1] === 'string' ? (argv[i + 1] as string) : undefined;
    const m = new RegExp(`^--?${flag}=(.*)$`).exec(a);
    if (m) return m[1];
  }
  return undefined;
}

function sortDiags(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => a.line - b.line || a.col - b.col);
}

// ---- normalization --------------------------------------------------------------------------------------------

function build(r: RawInventory, file: string, baseDir: string): Inventory {
  const local = (p: string) => path.resolve(baseDir, p);
  const inv: Inventory = {
    name: r.name,
    source: path.resolve(file),
    members: r.members.map((m) => member(m, local)),
  };
  if (r.tls) {
    inv.tls = {};
    if (r.tls.cacert !== undefined) inv.tls.cacert = local(r.tls.cacert);
    if (r.tls.cert !== undefined) inv.tls.cert = local(r.tls.cert);
    if (r.tls.key !== undefined) inv.tls.key = local(r.tls.key);
    if (r.tls.insecureSkipVerify !== undefined) inv.tls.insecureSkipVerify = r.tls.insecureSkipVerify;
  }
  if (r.auth) {
    inv.auth = { username: r.auth.username };
    if (r.auth.passwordEnv !== undefined) inv.auth.passwordEnv = r.auth.passwordEnv;
    if (r.auth.passwordFile !== undefined) inv.auth.passwordFile = local(r.auth.passwordFile);
  }
  if (r.kubernetes) {
    inv.kubernetes = {};
    if (r.kubernetes.kubeconfig !== undefined) inv.kubernetes.kubeconfig = local(r.kubernetes.kubeconfig);
    if (r.kubernetes.context !== undefined) inv.kubernetes.context = r.kubernetes.context;
    if (r.kubernetes.apiServers) {
      inv.kubernetes.apiServers = r.kubernetes.apiServers.map((a) => {
        const ssh = a.ssh ? sshHost(a.ssh, local) : undefined;
        const hostPath = ssh ? (p: string) => p : local;
        return { name: a.name, driver: driver(a.driver, hostPath), ...(ssh ? { ssh } : {}) };
      });
    }
  }
  if (r.snapshots) inv.snapshots = { dirs: r.snapshots.dirs.map(local) };
  if (r.etcdBinDir !== undefined) inv.etcdBinDir = local(r.etcdBinDir);
  if (r.requestTimeoutMs !== undefined) inv.requestTimeoutMs = r.requestTimeoutMs;
  if (r.quotaBytes !== undefined) inv.quotaBytes = r.quotaBytes;
  return inv;
}

function member(m: RawInventory['members'][number], local: (p: string) => string): MemberSpec {
  const ssh = m.ssh ? sshHost(m.ssh, local) : undefined;
  // Paths on a remote member are its own (checked absolute); local members' paths resolve like the rest.
  const hostPath = ssh ? (p: string) => p : local;
  const out: MemberSpec = {
    name: m.name,
    clientURL: m.clientURL,
    peerURL: m.peerURL,
    driver: m.driver ? driver(m.driver, hostPath) : { type: 'none' },
  };
  if (m.dataDir !== undefined) out.dataDir = hostPath(m.dataDir);
  if (m.metricsURL !== undefined) out.metricsURL = m.metricsURL;
  if (ssh) out.ssh = ssh;
  return out;
}

function sshHost(s: NonNullable<RawInventory['members'][number]['ssh']>, local: (p: string) => string): SshHost {
  const out: SshHost = { host: s.host };
  if (s.port !== undefined) out.port = s.port;
  if (s.user !== undefined) out.user = s.user;
  if (s.identityFile !== undefined) out.identityFile = local(s.identityFile);
  if (s.options !== undefined) out.options = [...s.options];
  return out;
}

function driver(d: z.output<typeof zDriver>, hostPath: (p: string) => string): DriverSpec {
  switch (d.type) {
    case 'process': {
      const command = [...d.command];
      // A relative program path ("./bin/etcd") is relative to the inventory; a bare name is looked up in PATH.
      if (command[0] && command[0].includes('/') && !path.isAbsolute(command[0])) command[0] = hostPath(command[0]);
      const out: DriverSpec = { type: 'process', command, pidFile: hostPath(d.pidFile) };
      if (d.logFile !== undefined) out.logFile = hostPath(d.logFile);
      if (d.env !== undefined) out.env = { ...d.env };
      return out;
    }
    case 'static-pod': {
      const out: DriverSpec = { type: 'static-pod', manifest: hostPath(d.manifest) };
      if (d.backupDir !== undefined) out.backupDir = hostPath(d.backupDir);
      return out;
    }
    case 'systemd': {
      const out: DriverSpec = { type: 'systemd', unit: d.unit };
      if (d.envFile !== undefined) out.envFile = hostPath(d.envFile);
      return out;
    }
    case 'none':
      return { type: 'none' };
  }
}
