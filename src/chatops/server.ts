/**
 * `runbook serve`: one node:http server for Slack and Mattermost slash commands and buttons, the Alertmanager
 * webhook, /metrics and /healthz. The handlers of each source live in their own file (slack.ts, mattermost.ts,
 * alertmanager.ts, chat-commands.ts); this file builds what they share and routes requests to them. Requests are
 * authenticated on the raw body before anything is parsed, bodies are size-capped, slow requests time out, and
 * every refusal is audited.
 */
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActionRegistry, StateStore } from '../index.ts';
import { loadInventory } from '../authoring.ts';
import { findRunbook } from '../authoring.ts';
import { UserError, messageOf } from '../common.ts';
import { AlertRouter } from './alerts.ts';
import { openAuditLog, scrubber, type AuditLog } from './audit.ts';
import { mattermostSink, slackSink, type ChatSink, type Platform } from './chat.ts';
import { SECRET_NAMES, type ChatopsConfig, type Secrets } from './config.ts';
import { HttpError, readBody, remoteOf, sendJson, sendText } from './http.ts';
import { createMetrics, type ChatopsMetrics } from './metrics.ts';
import { ACTION_APPROVE, ACTION_DENY } from '../common.ts';
import { RunManager } from './run-manager.ts';
import type { Handler, HandlerContext } from './handler-context.ts';
import { slackHandlers } from './slack.ts';
import { mattermostHandlers } from './mattermost.ts';
import { alertmanagerHandlers } from './alertmanager.ts';
import { actionMac, ReplayCache } from './verify.ts';
import { openChatopsState, type ChatopsState } from '../run-records.ts';
import { mkdirp } from '../common.ts';

export { ROUTES } from './routes.ts';
import { ROUTES } from './routes.ts';

export interface ServerOptions {
  config: ChatopsConfig;
  secrets: Secrets;
  /** Where log lines go (already scrubbed of secrets). Default: stderr. */
  log?: (line: string) => void;
  /** The action registry (default: the built-in one, loaded on the first run). */
  registry?: () => Promise<ActionRegistry>;
  /** Minimum time between edits of a run's message (default 1.5 s: Slack allows chat.update about once a second). */
  updateIntervalMs?: number;
  /** Audit log file (default <stateDir>/audit.jsonl). */
  auditFile?: string;
  /** Override the listen address of the config (tests: port 0). */
  listen?: { host: string; port: number };
  /** A shared store (`--store etcd://…`): runs and approvals are shared with other replicas, dead replicas' runs taken over. */
  store?: StateStore;
  /** This replica's name in lock records (default host:pid). */
  replicaId?: string;
  /** How often to look for runs to take over (default 1 s). */
  takeoverIntervalMs?: number;
  /** This build's version, for runbook_build_info (the CLI passes its own). */
  version?: string;
  /** Alert dedupe/cooldown and followed runs (default: beside the runs, in the store or the state dir). */
  chatState?: ChatopsState;
}

/**
 * Refuse a store that is one of the clusters the config targets (by client URL or by cluster id). Inventories
 * that cannot be loaded are left to the run-time check (their runs are refused then).
 */
async function refuseTargetStore(cfg: ChatopsConfig, store: StateStore): Promise<void> {
  for (const [name, c] of Object.entries(cfg.clusters)) {
    let inventory;
    try {
      inventory = loadInventory(c.inventory);
    } catch {
      continue;
    }
    try {
      await store.checkNotTarget(inventory);
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${cfg.file}: clusters.${name}: ${err.message}`, { exitCode: err.exitCode });
      throw err;
    }
  }
}

/** The flags that point `runbook approve`/`resume` in a terminal at this server's runs. */
function whereFlags(cfg: ChatopsConfig, store: StateStore | undefined): string {
  if (store?.kind === 'etcd') {
    const endpoints = (store as StateStore & { endpoints?: string[] }).endpoints ?? [];
    return `--store etcd://${endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`;
  }
  return `--state-dir ${/^[\w./@:+-]+$/.test(cfg.stateDir) ? cfg.stateDir : JSON.stringify(cfg.stateDir)}`;
}

export interface ChatopsServer {
  url: string;
  port: number;
  runs: RunManager;
  audit: AuditLog;
  metrics: ChatopsMetrics;
  /**
   * Stop taking requests. Runs in progress are interrupted (default; their journals let `runbook resume` continue
   * them) or, with `waitForRuns`, waited for. Their last message edits are sent either way.
   */
  close(opts?: { waitForRuns?: boolean }): Promise<void>;
}


export async function startChatopsServer(opts: ServerOptions): Promise<ChatopsServer> {
  const cfg = opts.config;
  const secrets = opts.secrets;
  let tlsKey: string | undefined;
  let tlsCert: string | undefined;
  if (cfg.tls) {
    try {
      tlsKey = fs.readFileSync(cfg.tls.key, 'utf8');
      tlsCert = fs.readFileSync(cfg.tls.cert, 'utf8');
    } catch (err) {
      throw new UserError(`${cfg.file}: tls: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the key or certificate'} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const secretValues = [...SECRET_NAMES.map((n) => secrets[n]).filter((s): s is string => Boolean(s)), ...(tlsKey ? [tlsKey, ...tlsKey.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))] : [])];
  const scrub = scrubber(secretValues);
  const rawLog = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (msg: string) => rawLog(scrub(`runbook serve: ${msg}`));

  // Before anything is written (audit records go to the store too): the store must not be a cluster this server may
  // have to recover. A store that is the target fails with it (NOSPACE refuses the writes that record the recovery).
  if (opts.store && opts.store.kind !== 'file') await refuseTargetStore(cfg, opts.store);

  mkdirp(cfg.stateDir);
  let auditFailures = 0;
  const auditInFlight = new Set<Promise<void>>();
  const store = opts.store;
  const replicaId = opts.replicaId;
  const audit = openAuditLog(opts.auditFile ?? path.join(cfg.stateDir, 'audit.jsonl'), secretValues, store
    ? (rec) => {
      const p = store.appendAudit({ ...rec, ...(replicaId ? { replica: replicaId } : {}) }).catch((err: unknown) => {
        if (++auditFailures <= 3) log(`cannot append to the audit log in the ${store.description}: ${messageOf(err)}`);
      });
      auditInFlight.add(p);
      void p.finally(() => auditInFlight.delete(p));
    }
    : undefined);
  const metrics = createMetrics({ defaultMetrics: true, ...(opts.version ? { version: opts.version } : {}) });
  const replay = new ReplayCache();
  const chatState = opts.chatState ?? await openChatopsState(store, cfg.stateDir);
  const alerts = new AlertRouter(cfg, chatState);

  let registryPromise: Promise<ActionRegistry> | undefined;
  const registry = opts.registry ?? (() => (registryPromise ??= import('../engine.ts').then((m) => m.createRegistry())));

  const sinks: Partial<Record<Platform, ChatSink>> = {};
  if (cfg.slack && secrets.slackBotToken) sinks.slack = slackSink({ token: secrets.slackBotToken, apiUrl: cfg.slack.apiUrl, log });
  const mmKey = secrets.mattermostToken;
  if (cfg.mattermost && secrets.mattermostBotToken && mmKey && cfg.publicUrl) {
    sinks.mattermost = mattermostSink({
      token: secrets.mattermostBotToken,
      apiUrl: cfg.mattermost.apiUrl,
      actionUrl: `${cfg.publicUrl}${ROUTES.mattermostActions}`,
      actionContext: (runId, stepId, decision) => ({ runId, stepId, decision, mac: actionMac(mmKey, [runId, stepId, decision]) }),
    });
  }

  const runs = new RunManager({
    cfg, audit, metrics, log,
    findRunbook: (name) => findRunbook(name),
    loadInventory,
    registry,
    updateIntervalMs: opts.updateIntervalMs ?? 1500,
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
    ...(opts.store && sinks.slack && cfg.slack?.channel ? { takeoverSink: { sink: sinks.slack, channel: cfg.slack.channel } } : {}),
    sinks,
    chatState,
    whereFlags: whereFlags(cfg, store),
  });

  const refuse401 = (res: ServerResponse, req: IncomingMessage, route: string, source: string, reason: string) => {
    audit.record({ event: 'request.refused', source, outcome: 'refused', reason, remote: remoteOf(req), route });
    metrics.requests.inc({ route, outcome: 'unauthorized' });
    sendText(res, 401, 'unauthorized\n', 'text/plain; charset=utf-8', { 'WWW-Authenticate': source === 'alertmanager' ? 'Bearer' : 'Signature' });
  };

  const alertSink = (): { sink: ChatSink; channel: string } | undefined => {
    if (sinks.slack && cfg.slack?.channel) return { sink: sinks.slack, channel: cfg.slack.channel };
    if (sinks.mattermost && cfg.mattermost?.channel) return { sink: sinks.mattermost, channel: cfg.mattermost.channel };
    return undefined;
  };

  const ctx: HandlerContext = { cfg, secrets, audit, metrics, runs, sinks, log, replay, refuse401, alerts, alertSink };
  const { slackCommand, slackInteraction } = slackHandlers(ctx);
  const { mattermostCommand, mattermostAction } = mattermostHandlers(ctx);
  const { alertmanager } = alertmanagerHandlers(ctx);

  // ---- routing ----------------------------------------------------------------------------------------------------

  const posts: Record<string, { handler: Handler; enabled: boolean }> = {
    [ROUTES.slackCommands]: { handler: slackCommand, enabled: Boolean(secrets.slackSigningSecret) },
    [ROUTES.slackInteractions]: { handler: slackInteraction, enabled: Boolean(secrets.slackSigningSecret) },
    [ROUTES.mattermostCommands]: { handler: mattermostCommand, enabled: Boolean(secrets.mattermostToken) },
    [ROUTES.mattermostActions]: { handler: mattermostAction, enabled: Boolean(secrets.mattermostToken) },
    [ROUTES.alertmanager]: { handler: alertmanager, enabled: Boolean(secrets.alertmanagerToken) },
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    try {
      // HEAD as GET without the body (Prometheus and load balancers probe with it).
      const read = req.method === 'GET' || req.method === 'HEAD';
      if (read && url === ROUTES.healthz) {
        return sendJson(res, 200, { status: 'ok', activeRuns: runs.activeCount() }, {}, req.method === 'HEAD');
      }
      if (read && url === ROUTES.metrics) {
        return sendText(res, 200, await metrics.registry.metrics(), metrics.registry.contentType, {}, req.method === 'HEAD');
      }
      const route = Object.hasOwn(posts, url) ? posts[url] : undefined;
      if (!route || !route.enabled) {
        req.resume();
        return sendJson(res, 404, { error: 'not found' });
      }
      if (req.method !== 'POST') {
        req.resume();
        return sendJson(res, 405, { error: 'method not allowed' }, { Allow: 'POST' });
      }
      const body = await readBody(req, cfg.limits.maxBodyBytes);
      await route.handler(req, res, body);
    } catch (err) {
      if (err instanceof HttpError) {
        metrics.requests.inc({ route: url.slice(0, 40), outcome: 'invalid' });
        sendJson(res, err.status, { error: err.message });
        if (err.status === 413) res.once('finish', () => req.socket.destroy());
        return;
      }
      log(`${req.method} ${url}: ${messageOf(err)}`);
      metrics.requests.inc({ route: url.slice(0, 40), outcome: 'error' });
      sendJson(res, 500, { error: 'internal error' });
    }
  };

  // Node checks requestTimeout/headersTimeout only every connectionsCheckingInterval (30 s by default): a slow
  // client would live ~40 s past a 10 s limit. Checked often enough for the limits to hold within a second.
  const timeouts = {
    requestTimeout: cfg.limits.requestTimeoutMs,
    headersTimeout: Math.min(cfg.limits.requestTimeoutMs, 10_000),
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(cfg.limits.requestTimeoutMs / 4))),
  };
  const server = tlsKey && tlsCert ? https.createServer({ key: tlsKey, cert: tlsCert, ...timeouts }) : http.createServer(timeouts);
  server.on('request', (req, res) => void onRequest(req, res));
  // Past this many open connections new ones are closed at once: a flood cannot exhaust file descriptors.
  server.maxConnections = cfg.limits.maxConnections;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  server.setTimeout(cfg.limits.requestTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    if (socket.writable) socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const listen = opts.listen ?? cfg.listen;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const url = `${tlsKey ? 'https' : 'http'}://${host}:${port}`;
  audit.record({ event: 'server.started', source: 'server', outcome: 'ok', listen: url, pid: process.pid });
  if (opts.store) runs.startTakeover(opts.takeoverIntervalMs ?? 1000);
  // Runs a restart interrupted (state dir; with a store the takeover scan finds them): resumed in the background.
  else void runs.resumeFollowed().catch((err: unknown) => log(`cannot resume the runs interrupted by the restart: ${messageOf(err)}`));
  // A guard per cluster whose entry has `guard:` (src/guard/fleet.ts), on this server's metrics, audit log and channel.
  const notice = alertSink();
  const guards = Object.values(cfg.clusters).some((c) => c.guard)
    ? (await import('../operations.ts')).startGuards({
      cfg, registry: metrics.registry, audit, actions: registry, log, operator: opts.replicaId ?? `serve@${os.hostname()}`,
      ...(notice ? { notify: (text: string) => notice.sink.notice(notice.channel, text) } : {}),
      ...(opts.store ? { store: opts.store } : {}),
    })
    : undefined;
  // A backup stream per cluster whose entry has `backup:` (src/backup/serve-streams.ts), under a stream lock per cluster.
  const backups = Object.values(cfg.clusters).some((c) => c.backup)
    ? (await import('../operations.ts')).startBackupStreams({ cfg, registry: metrics.registry, audit, log, owner: opts.replicaId ?? `serve@${os.hostname()}`, ...(opts.store ? { store: opts.store } : {}) })
    : undefined;

  return {
    url, port, runs, audit, metrics,
    async close(closeOpts = {}) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await guards?.stop();
      await backups?.stop();
      await runs.drain({ interrupt: !closeOpts.waitForRuns });
      audit.record({ event: 'server.stopped', source: 'server', outcome: 'ok' });
      await audit.close();
      await Promise.all(auditInFlight);
    },
  };
}
