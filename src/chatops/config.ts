/**
 * chatops.yaml: what `runbook serve` listens on, which secrets it reads (by env var or file, never inline), which
 * clusters and runbooks chat may touch and who may ask and approve, and which alerts start which runbook.
 * Every problem is reported at file:line:col, like runbooks and inventories.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { defaultStateDir } from '../run-records.ts';
import { UserError, type Diagnostic } from '../common.ts';
import { parseDuration } from '../common.ts';
import { guardConfig, zGuardSpec, type GuardConfig } from '../authoring.ts';
import { backupStreamConfig, zBackupSpec, type BackupStreamConfig } from '../authoring.ts';
import { describeIssues, type SchemaIssue } from '../authoring.ts';
import { readYamlFile, type YamlSource } from '../authoring.ts';

/** Where a secret comes from. Inline values are refused: config files get copied, pasted and committed. */
export type SecretRef = { env: string } | { file: string };

export const SECRET_NAMES = ['slackSigningSecret', 'slackBotToken', 'alertmanagerToken', 'mattermostToken', 'mattermostBotToken'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

export interface ClusterConfig {
  /** Absolute path of the inventory (cluster.yaml). */
  inventory: string;
  /** When set, only these users / channels may act on this cluster (on top of the runbook's lists). */
  users?: string[];
  channels?: string[];
  approvers?: string[];
  /** A guard on this cluster (`guard:`), checked and defaulted (src/guard/config.ts). */
  guard?: GuardConfig;
  /** A backup stream for this cluster (`backup:`, opt-in), checked and defaulted (src/backup/serve-config.ts). */
  backup?: BackupStreamConfig;
}

export interface RunbookAccess {
  /** A runbook file for this name (else the built-in or RUNBOOK_PATH runbook of that name). */
  file?: string;
  users: string[];
  channels: string[];
  approvers: string[];
  /** Clusters this runbook may run on from chat (default: every configured cluster). */
  clusters?: string[];
  /** With a runbook marked `autoApprove: true` (and not destructive): alert-started runs need no human approval. */
  autoRun: boolean;
}

export interface AlertRoute {
  runbook: string;
  /** The alert label that names the cluster (a key of `clusters`). */
  clusterLabel: string;
  /** Fixed params for the run (strings, parsed like chat params). */
  params: Record<string, string>;
}

export interface ChatopsConfig {
  file: string;
  listen: { host: string; port: number };
  stateDir: string;
  /** Base URL of this server as Mattermost reaches it (for button callbacks). */
  publicUrl?: string;
  tls?: { cert: string; key: string };
  secrets: Partial<Record<SecretName, SecretRef>>;
  slack?: { apiUrl: string; channel?: string };
  mattermost?: { apiUrl: string; channel?: string };
  clusters: Record<string, ClusterConfig>;
  runbooks: Record<string, RunbookAccess>;
  alerts: Record<string, AlertRoute>;
  cooldownMs: number;
  approvalTimeoutMs: number;
  limits: { maxBodyBytes: number; requestTimeoutMs: number; maxConcurrentRuns: number; maxParamValueLength: number; maxConnections: number };
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const ID_LIST = z.array(z.string().min(1).max(200)).max(1000);

const zSecretRef = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

const zDuration = z.union([z.string(), z.number()]);

const zConfig = z.strictObject({
  listen: z.string().optional(),
  stateDir: z.string().min(1).optional(),
  publicUrl: z.url().optional(),
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  secrets: z.strictObject(Object.fromEntries(SECRET_NAMES.map((n) => [n, zSecretRef.optional()])) as Record<SecretName, z.ZodOptional<typeof zSecretRef>>).optional(),
  slack: z.strictObject({ apiUrl: z.url().optional(), channel: z.string().min(1).max(200).optional() }).optional(),
  mattermost: z.strictObject({ apiUrl: z.url(), channel: z.string().min(1).max(200).optional() }).optional(),
  clusters: z.record(z.string().regex(NAME, 'cluster names are letters, digits, - and _ (starting with a letter)'), z.union([
    z.string().min(1),
    z.strictObject({ inventory: z.string().min(1), users: ID_LIST.optional(), channels: ID_LIST.optional(), approvers: ID_LIST.optional(), guard: zGuardSpec.optional(), backup: zBackupSpec.optional() }),
  ])),
  runbooks: z.record(z.string().regex(NAME, 'not a runbook name'), z.strictObject({
    file: z.string().min(1).optional(),
    users: ID_LIST,
    channels: ID_LIST,
    approvers: ID_LIST.default([]),
    clusters: z.array(z.string()).optional(),
    autoRun: z.boolean().default(false),
  })),
  alerts: z.record(z.string().regex(/^[A-Za-z_:][A-Za-z0-9_:]*$/, 'not an alert name'), z.strictObject({
    runbook: z.string(),
    clusterLabel: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not a label name').default('cluster'),
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  })).optional(),
  cooldown: zDuration.optional(),
  approvalTimeout: zDuration.optional(),
  limits: z.strictObject({
    maxBodyBytes: z.number().int().min(1024).max(10 * 1024 * 1024).optional(),
    requestTimeout: zDuration.optional(),
    maxConcurrentRuns: z.number().int().min(1).max(100).optional(),
    maxConnections: z.number().int().min(1).max(100_000).optional(),
    maxParamValueLength: z.number().int().min(1).max(4096).optional(),
  }).optional(),
});

const TOP_KEYS = Object.keys(zConfig.shape);

export const DEFAULTS = {
  listen: '127.0.0.1:8080',
  slackApiUrl: 'https://slack.com/api/',
  cooldownMs: 30 * 60_000,
  approvalTimeoutMs: 30 * 60_000,
  maxBodyBytes: 64 * 1024,
  requestTimeoutMs: 10_000,
  maxConcurrentRuns: 4,
  maxConnections: 256,
  maxParamValueLength: 256,
} as const;

/** Load and check chatops.yaml. Relative paths are relative to the file. Throws UserError with diagnostics. */
export function loadChatopsConfig(file: string, env: NodeJS.ProcessEnv = process.env): ChatopsConfig {
  const { source } = readYamlFile(file);
  return checkConfig(source, env);
}

function checkConfig(src: YamlSource, env: NodeJS.ProcessEnv): ChatopsConfig {
  const diags: Diagnostic[] = [];
  const at = (p: (string | number)[], message: string, key = false) => diags.push(src.diag(p, message, { key }));
  const raw = src.value;

  // Inline secrets get their own message (before the schema's "expected a mapping").
  const secrets = raw.secrets;
  if (secrets && typeof secrets === 'object' && !Array.isArray(secrets)) {
    for (const [k, v] of Object.entries(secrets)) {
      if (typeof v === 'string' || typeof v === 'number') {
        at(['secrets', k], `secrets.${k}: inline secrets are not allowed (this file gets copied and committed); use { env: VAR_NAME } or { file: /path/to/secret }`);
      }
    }
  }
  if (diags.length) throw fail(src, diags);

  const parsed = zConfig.safeParse(raw);
  if (!parsed.success) {
    const known = (p: (string | number)[]) => (p.length === 0 ? TOP_KEYS : undefined);
    for (const m of describeIssues(parsed.error.issues as unknown as SchemaIssue[], raw, known)) {
      const label = (m.missing ? m.path.slice(0, -1) : m.key ? m.path.slice(0, -1) : m.path).join('.');
      at(m.path, `${label ? `${label}: ` : ''}${m.message}`, m.key ?? false);
    }
    throw fail(src, diags);
  }
  const c = parsed.data;
  const dir = path.dirname(path.resolve(src.file));
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(dir, p));

  const listen = parseListen(c.listen ?? DEFAULTS.listen);
  if (!listen) at(['listen'], `listen: expected host:port (e.g. 127.0.0.1:8080), got ${JSON.stringify(c.listen)}`);

  const duration = (p: string[], v: string | number | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const ms = parseDuration(v);
    if (ms === undefined) at(p, `${p.join('.')}: not a duration (e.g. 30m, 90s): ${JSON.stringify(v)}`);
    else if (ms < min) at(p, `${p.join('.')}: must be at least ${min} ms`);
    return ms ?? dflt;
  };
  const cooldownMs = duration(['cooldown'], c.cooldown, DEFAULTS.cooldownMs, 0);
  const approvalTimeoutMs = duration(['approvalTimeout'], c.approvalTimeout, DEFAULTS.approvalTimeoutMs, 1000);
  const requestTimeoutMs = duration(['limits', 'requestTimeout'], c.limits?.requestTimeout, DEFAULTS.requestTimeoutMs, 100);

  const secretRefs: Partial<Record<SecretName, SecretRef>> = {};
  for (const name of SECRET_NAMES) {
    const ref = c.secrets?.[name];
    if (!ref) continue;
    secretRefs[name] = 'file' in ref ? { file: abs(ref.file) } : { env: ref.env };
  }

  const clusters: Record<string, ClusterConfig> = {};
  for (const [name, v] of Object.entries(c.clusters)) {
    const spec = typeof v === 'string' ? { inventory: v } : v;
    const inv = abs(spec.inventory);
    if (!fs.existsSync(inv)) at(['clusters', name, ...(typeof v === 'string' ? [] : ['inventory'])], `clusters.${name}: inventory ${inv} does not exist`);
    clusters[name] = {
      inventory: inv,
      ...(typeof v !== 'string' && v.users ? { users: v.users } : {}),
      ...(typeof v !== 'string' && v.channels ? { channels: v.channels } : {}),
      ...(typeof v !== 'string' && v.approvers ? { approvers: v.approvers } : {}),
    };
    if (typeof v !== 'string' && v.guard && v.guard.enabled) {
      const { enabled: _on, ...g } = v.guard;
      try {
        clusters[name]!.guard = guardConfig(g, (k) => `clusters.${name}.guard.${k}`);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        at(['clusters', name, 'guard'], err.message);
      }
    }
    if (typeof v !== 'string' && v.backup && v.backup.enabled) {
      const { enabled: _on, ...b } = v.backup;
      try {
        clusters[name]!.backup = backupStreamConfig(b, (k) => `clusters.${name}.backup.${k}`);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        at(['clusters', name, 'backup'], err.message);
      }
    }
  }

  const runbooks: Record<string, RunbookAccess> = {};
  for (const [name, r] of Object.entries(c.runbooks)) {
    for (const [i, cl] of (r.clusters ?? []).entries()) {
      if (!Object.hasOwn(clusters, cl)) at(['runbooks', name, 'clusters', i], `runbooks.${name}.clusters: unknown cluster "${cl}" (configured: ${Object.keys(clusters).join(', ') || 'none'})`);
    }
    if (r.file && !fs.existsSync(abs(r.file))) at(['runbooks', name, 'file'], `runbooks.${name}.file: ${abs(r.file)} does not exist`);
    runbooks[name] = {
      users: r.users, channels: r.channels, approvers: r.approvers, autoRun: r.autoRun,
      ...(r.file ? { file: abs(r.file) } : {}),
      ...(r.clusters ? { clusters: r.clusters } : {}),
    };
  }

  const alerts: Record<string, AlertRoute> = {};
  for (const [name, a] of Object.entries(c.alerts ?? {})) {
    if (!Object.hasOwn(runbooks, a.runbook)) at(['alerts', name, 'runbook'], `alerts.${name}.runbook: "${a.runbook}" is not configured under runbooks`);
    alerts[name] = { runbook: a.runbook, clusterLabel: a.clusterLabel, params: Object.fromEntries(Object.entries(a.params ?? {}).map(([k, v]) => [k, String(v)])) };
  }

  if (c.alerts && Object.keys(c.alerts).length && !c.secrets?.alertmanagerToken) {
    at(['alerts'], 'alerts are configured but secrets.alertmanagerToken is not: the webhook would be open to anyone');
  }
  if (c.slack && (!c.secrets?.slackSigningSecret || !c.secrets?.slackBotToken)) {
    at(['slack'], 'slack needs secrets.slackSigningSecret (to verify requests) and secrets.slackBotToken (to post progress)');
  }
  if (c.mattermost && (!c.secrets?.mattermostToken || !c.secrets?.mattermostBotToken)) {
    at(['mattermost'], 'mattermost needs secrets.mattermostToken (slash command token) and secrets.mattermostBotToken (to post progress)');
  }
  if (c.mattermost && !c.publicUrl) at(['mattermost'], 'mattermost needs publicUrl (the URL Mattermost reaches this server at) for approval buttons');
  if (diags.length) throw fail(src, diags);

  return {
    file: path.resolve(src.file),
    listen: listen!,
    stateDir: c.stateDir ? abs(c.stateDir) : defaultStateDir(env),
    ...(c.publicUrl ? { publicUrl: c.publicUrl.replace(/\/+$/, '') } : {}),
    ...(c.tls ? { tls: { cert: abs(c.tls.cert), key: abs(c.tls.key) } } : {}),
    secrets: secretRefs,
    ...(c.slack ? { slack: { apiUrl: withSlash(c.slack.apiUrl ?? DEFAULTS.slackApiUrl), ...(c.slack.channel ? { channel: c.slack.channel } : {}) } } : {}),
    ...(c.mattermost ? { mattermost: { apiUrl: c.mattermost.apiUrl.replace(/\/+$/, ''), ...(c.mattermost.channel ? { channel: c.mattermost.channel } : {}) } } : {}),
    clusters,
    runbooks,
    alerts,
    cooldownMs,
    approvalTimeoutMs,
    limits: {
      maxBodyBytes: c.limits?.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      requestTimeoutMs,
      maxConcurrentRuns: c.limits?.maxConcurrentRuns ?? DEFAULTS.maxConcurrentRuns,
      maxConnections: c.limits?.maxConnections ?? DEFAULTS.maxConnections,
      maxParamValueLength: c.limits?.maxParamValueLength ?? DEFAULTS.maxParamValueLength,
    },
  };
}

function withSlash(u: string): string {
  return u.endsWith('/') ? u : `${u}/`;
}

export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function fail(src: YamlSource, diags: Diagnostic[]): UserError {
  const sorted = [...diags].sort((a, b) => a.line - b.line || a.col - b.col);
  return new UserError(`${src.file}: invalid chat-ops config (${sorted.length} problem${sorted.length === 1 ? '' : 's'})`, { diagnostics: sorted });
}

/** The secrets, read once at start. A missing env var or unreadable file is a UserError naming the reference, never the value. */
export type Secrets = Partial<Record<SecretName, string>>;

export function resolveSecrets(cfg: ChatopsConfig, env: NodeJS.ProcessEnv = process.env): Secrets {
  const out: Secrets = {};
  const problems: string[] = [];
  for (const name of SECRET_NAMES) {
    const ref = cfg.secrets[name];
    if (!ref) continue;
    let value: string | undefined;
    if ('env' in ref) {
      value = env[ref.env];
      if (!value) problems.push(`secrets.${name}: environment variable ${ref.env} is not set`);
    } else {
      try {
        value = fs.readFileSync(ref.file, 'utf8').trim();
        if (!value) problems.push(`secrets.${name}: ${ref.file} is empty`);
      } catch (err) {
        problems.push(`secrets.${name}: cannot read ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (value && value.length < 8) problems.push(`secrets.${name}: too short to be a real secret (at least 8 characters)`);
    if (value) out[name] = value;
  }
  if (problems.length) throw new UserError(`${cfg.file}: ${problems.join('\n  ')}`);
  return out;
}
