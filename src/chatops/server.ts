/**
 * `runbook serve`: one node:http server for Slack and Mattermost slash commands and buttons, the Alertmanager
 * webhook, /metrics and /healthz. Requests are authenticated on the raw body before anything is parsed, bodies
 * are size-capped, slow requests time out, and every refusal is audited.
 */
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActionRegistry } from '../actions/types.ts';
import { loadInventory } from '../inventory/load.ts';
import { findRunbook } from '../runbook/find.ts';
import { UserError, messageOf } from '../util/errors.ts';
import { actorKey, allowedHere, mayRead, type Actor } from './access.ts';
import { AlertRouter, zNotification } from './alerts.ts';
import { openAuditLog, scrubber, type AuditLog } from './audit.ts';
import { mattermostSink, slackSink, type ChatSink, type Platform } from './chat.ts';
import { parseCommand, USAGE } from './command.ts';
import { SECRET_NAMES, type ChatopsConfig, type Secrets } from './config.ts';
import { HttpError, header, isForm, isJson, readBody, remoteOf, sendJson, sendText } from './http.ts';
import { createMetrics, type ChatopsMetrics } from './metrics.ts';
import { ACTION_APPROVE, ACTION_DENY } from '../events/chat.ts';
import { RunManager } from './run-manager.ts';
import { actionMac, ReplayCache, verifyActionMac, verifyBearer, verifySlack, verifyToken } from './verify.ts';
import type { StateStore } from '../store/types.ts';
import { mkdirp } from '../util/mkdirp.ts';

/** The server's routes, also what examples/slack-app-manifest.yaml and examples/alertmanager.yaml point at. */
export const ROUTES = {
  slackCommands: '/slack/commands',
  slackInteractions: '/slack/interactions',
  mattermostCommands: '/mattermost/commands',
  mattermostActions: '/mattermost/actions',
  alertmanager: '/alertmanager',
  metrics: '/metrics',
  healthz: '/healthz',
} as const;

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

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

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
  const alerts = new AlertRouter(cfg);

  let registryPromise: Promise<ActionRegistry> | undefined;
  const registry = opts.registry ?? (() => (registryPromise ??= import('../actions/registry.ts').then((m) => m.createRegistry())));

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
  });

  const refuse401 = (res: ServerResponse, req: IncomingMessage, route: string, source: string, reason: string) => {
    audit.record({ event: 'request.refused', source, outcome: 'refused', reason, remote: remoteOf(req), route });
    metrics.requests.inc({ route, outcome: 'unauthorized' });
    sendText(res, 401, 'unauthorized\n', 'text/plain; charset=utf-8', { 'WWW-Authenticate': source === 'alertmanager' ? 'Bearer' : 'Signature' });
  };

  // ---- chat commands (Slack and Mattermost share the grammar) ----------------------------------------------------

  /** Answer a parsed command. Returns the ephemeral text; starts runs in the background. */
  const command = async (platform: 'slack' | 'mattermost', f: URLSearchParams, remote: string): Promise<string> => {
    const actor: Actor = { platform, id: f.get('user_id') ?? '', ...(f.get('user_name') ? { name: f.get('user_name')! } : {}) };
    const channel = f.get('channel_id') ?? '';
    const text = (f.get('text') ?? '').trim();
    const base = { source: platform, remote, user: actorKey(actor), ...(actor.name ? { userName: actor.name } : {}), channel, command: `${f.get('command') ?? ''} ${text}`.trim().slice(0, 1000) };
    const refused = (reason: string) => {
      audit.record({ event: 'command.refused', ...base, outcome: 'refused', reason });
      metrics.requests.inc({ route: platform, outcome: 'forbidden' });
      return `⛔ ${reason}`;
    };
    if (!actor.id || !channel) return refused('the request has no user_id or channel_id');
    const parsed = parseCommand(text, { maxValueLength: cfg.limits.maxParamValueLength });
    if (!parsed.ok) return refused(parsed.error);
    const cmd = parsed.command;
    switch (cmd.verb) {
      case 'help':
        audit.record({ event: 'command.accepted', ...base, outcome: 'accepted' });
        return USAGE;
      case 'list': {
        audit.record({ event: 'command.accepted', ...base, outcome: 'accepted' });
        const rows = allowedHere(cfg, actor, channel);
        if (!rows.length) return 'You may not start any runbook from this channel.';
        return ['Runbooks you may start here:', ...rows.map((r) => `• *${r.runbook}* on ${r.clusters.map((c) => `\`${c}\``).join(', ')}`)].join('\n');
      }
      case 'status': {
        let st;
        try {
          st = await runs.statusText(cmd.runId);
        } catch (err) {
          return refused(err instanceof UserError ? err.message.split('\n')[0]! : 'cannot read that run');
        }
        if (!mayRead(cfg, st.runbook, actor)) return refused(`you may not read runs of "${st.runbook}"`);
        audit.record({ event: 'command.accepted', ...base, outcome: 'accepted', runId: cmd.runId });
        return st.text;
      }
      case 'run':
      case 'plan': {
        const sink = sinks[platform];
        if (!sink) return refused(`${platform} is not configured to post messages`);
        let prepared;
        try {
          prepared = runs.prepare({ verb: cmd.verb, runbook: cmd.runbook, cluster: cmd.cluster, params: cmd.params, actor, sink, channel, origin: platform });
        } catch (err) {
          if (err instanceof UserError) return refused(err.message.split('\n').slice(0, 5).join('\n'));
          log(`prepare ${cmd.runbook}: ${messageOf(err)}`);
          return refused('internal error (see the server log)');
        }
        audit.record({ event: 'command.accepted', ...base, outcome: 'accepted', runbook: cmd.runbook, cluster: cmd.cluster, params: cmd.params });
        metrics.requests.inc({ route: platform, outcome: 'ok' });
        setImmediate(() => {
          runs.launch(prepared).catch((err) => log(`launch ${cmd.runbook}: ${messageOf(err)}`));
        });
        return `Starting ${cmd.verb === 'plan' ? 'a dry run of ' : ''}*${cmd.runbook}* on *${cmd.cluster}*; progress follows in this channel.`;
      }
    }
  };

  const slackCommand: Handler = async (req, res, body) => {
    const v = verifySlack(secrets.slackSigningSecret!, { timestamp: header(req, 'x-slack-request-timestamp'), signature: header(req, 'x-slack-signature') }, body, replay);
    if (!v.ok) return refuse401(res, req, ROUTES.slackCommands, 'slack', v.reason);
    if (!isForm(req)) return sendJson(res, 415, { error: 'expected application/x-www-form-urlencoded' });
    const text = await command('slack', new URLSearchParams(body.toString('utf8')), remoteOf(req));
    sendJson(res, 200, { response_type: 'ephemeral', text });
  };

  const slackInteraction: Handler = async (req, res, body) => {
    const v = verifySlack(secrets.slackSigningSecret!, { timestamp: header(req, 'x-slack-request-timestamp'), signature: header(req, 'x-slack-signature') }, body, replay);
    if (!v.ok) return refuse401(res, req, ROUTES.slackInteractions, 'slack', v.reason);
    let payload: any;
    try {
      payload = JSON.parse(new URLSearchParams(body.toString('utf8')).get('payload') ?? '');
    } catch {
      return sendJson(res, 400, { error: 'no payload' });
    }
    const action = payload?.actions?.[0];
    const user = payload?.user;
    const channel: string = payload?.channel?.id ?? payload?.container?.channel_id ?? '';
    if (payload?.type !== 'block_actions' || !action || typeof user?.id !== 'string') return sendText(res, 200, '');
    const decision = action.action_id === ACTION_APPROVE ? 'granted' : action.action_id === ACTION_DENY ? 'denied' : undefined;
    const m = typeof action.value === 'string' ? /^(\S{1,80}) ([a-z][a-z0-9-]{0,80})$/.exec(action.value) : null;
    if (!decision || !m) return sendText(res, 200, '');
    const actor: Actor = { platform: 'slack', id: user.id, ...(typeof user.username === 'string' ? { name: user.username } : {}) };
    const r = await runs.decide(m[1]!, m[2]!, decision, actor, 'slack', channel);
    metrics.requests.inc({ route: 'slack-interactions', outcome: r.ok ? 'ok' : 'forbidden' });
    sendText(res, 200, '');
    if (!r.ok && channel) sinks.slack?.ephemeral(channel, user.id, `⛔ ${r.message}`).catch((err) => log(`cannot answer ${user.id}: ${messageOf(err)}`));
  };

  const mattermostCommand: Handler = async (req, res, body) => {
    const f = new URLSearchParams(isForm(req) ? body.toString('utf8') : '');
    const v = verifyToken(secrets.mattermostToken!, f.get('token') ?? undefined);
    if (!v.ok) return refuse401(res, req, ROUTES.mattermostCommands, 'mattermost', v.reason);
    const text = await command('mattermost', f, remoteOf(req));
    sendJson(res, 200, { response_type: 'ephemeral', text: text.replace(/(^|[^*])\*([^*\n]+)\*/g, '$1**$2**') });
  };

  const mattermostAction: Handler = async (req, res, body) => {
    let p: any;
    try {
      p = isJson(req) ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      p = undefined;
    }
    const ctx = p?.context;
    const fields = [String(ctx?.runId ?? ''), String(ctx?.stepId ?? ''), String(ctx?.decision ?? '')];
    if (!ctx || !verifyActionMac(secrets.mattermostToken!, fields, ctx.mac)) return refuse401(res, req, ROUTES.mattermostActions, 'mattermost', 'bad-signature');
    if (typeof p.user_id !== 'string' || !p.user_id) return sendJson(res, 400, { error: 'no user_id' });
    const actor: Actor = { platform: 'mattermost', id: p.user_id, ...(typeof p.user_name === 'string' ? { name: p.user_name } : {}) };
    const r = await runs.decide(fields[0]!, fields[1]!, fields[2] === 'approve' ? 'granted' : 'denied', actor, 'mattermost', typeof p.channel_id === 'string' ? p.channel_id : undefined);
    metrics.requests.inc({ route: 'mattermost-actions', outcome: r.ok ? 'ok' : 'forbidden' });
    sendJson(res, 200, { ephemeral_text: r.ok ? r.message : `⛔ ${r.message}` });
  };

  // ---- Alertmanager ---------------------------------------------------------------------------------------------

  const alertSink = (): { sink: ChatSink; channel: string } | undefined => {
    if (sinks.slack && cfg.slack?.channel) return { sink: sinks.slack, channel: cfg.slack.channel };
    if (sinks.mattermost && cfg.mattermost?.channel) return { sink: sinks.mattermost, channel: cfg.mattermost.channel };
    return undefined;
  };

  const alertmanager: Handler = async (req, res, body) => {
    const v = verifyBearer(secrets.alertmanagerToken!, header(req, 'authorization'));
    if (!v.ok) return refuse401(res, req, ROUTES.alertmanager, 'alertmanager', v.reason);
    let data: unknown;
    try {
      data = JSON.parse(body.toString('utf8'));
    } catch {
      return sendJson(res, 400, { error: 'body is not JSON' });
    }
    const parsed = zNotification.safeParse(data);
    if (!parsed.success) return sendJson(res, 400, { error: 'not an Alertmanager webhook notification (version 4)' });
    const n = parsed.data;
    const remote = remoteOf(req);
    const results: { alertname: string; outcome: string; cluster?: string; reason?: string }[] = [];
    for (const o of alerts.route(n)) {
      metrics.alerts.inc({ alertname: o.alertname.slice(0, 100), outcome: o.outcome === 'start' ? 'started' : o.outcome });
      if (o.outcome !== 'start') {
        if (o.outcome !== 'resolved') audit.record({ event: 'alert.skipped', source: 'alertmanager', remote, alert: o.alertname, ...(o.cluster ? { cluster: o.cluster } : {}), outcome: o.outcome, reason: o.reason });
        results.push({ alertname: o.alertname, outcome: o.outcome, ...(o.cluster ? { cluster: o.cluster } : {}), reason: o.reason });
        continue;
      }
      const target = alertSink();
      const actor: Actor = { platform: 'alertmanager', id: o.alertname };
      audit.record({ event: 'alert.accepted', source: 'alertmanager', remote, alert: o.alertname, runbook: o.route.runbook, cluster: o.cluster, outcome: 'accepted' });
      if (!target) {
        audit.record({ event: 'run.refused', source: 'alertmanager', alert: o.alertname, runbook: o.route.runbook, cluster: o.cluster, outcome: 'refused', reason: 'no chat channel is configured for alert-started runs (slack.channel or mattermost.channel)' });
        results.push({ alertname: o.alertname, outcome: 'refused', cluster: o.cluster, reason: 'no channel configured' });
        continue;
      }
      let prepared;
      try {
        prepared = runs.prepare({ verb: 'run', runbook: o.route.runbook, cluster: o.cluster, params: o.route.params, actor, sink: target.sink, channel: target.channel, origin: 'alertmanager' });
      } catch (err) {
        const reason = err instanceof UserError ? err.message.split('\n')[0]! : `internal error: ${messageOf(err)}`;
        audit.record({ event: 'run.refused', source: 'alertmanager', alert: o.alertname, runbook: o.route.runbook, cluster: o.cluster, outcome: 'refused', reason });
        results.push({ alertname: o.alertname, outcome: 'refused', cluster: o.cluster, reason });
        continue;
      }
      results.push({ alertname: o.alertname, outcome: 'started', cluster: o.cluster });
      setImmediate(() => {
        runs.launch(prepared).catch((err) => log(`launch for alert ${o.alertname}: ${messageOf(err)}`));
      });
    }
    metrics.requests.inc({ route: 'alertmanager', outcome: 'ok' });
    sendJson(res, 200, { results });
  };

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
  // A guard per cluster whose entry has `guard:` (src/guard/fleet.ts), on this server's metrics, audit log and channel.
  const notice = alertSink();
  const guards = Object.values(cfg.clusters).some((c) => c.guard)
    ? (await import('../guard/fleet.ts')).startGuards({
      cfg, registry: metrics.registry, audit, actions: registry, log, operator: opts.replicaId ?? `serve@${os.hostname()}`,
      ...(notice ? { notify: (text: string) => notice.sink.notice(notice.channel, text) } : {}),
      ...(opts.store ? { store: opts.store } : {}),
    })
    : undefined;

  return {
    url, port, runs, audit, metrics,
    async close(closeOpts = {}) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await guards?.stop();
      await runs.drain({ interrupt: !closeOpts.waitForRuns });
      audit.record({ event: 'server.stopped', source: 'server', outcome: 'ok' });
      await audit.close();
      await Promise.all(auditInFlight);
    },
  };
}
