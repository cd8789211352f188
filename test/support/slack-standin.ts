/**
 * A stand-in for the Slack Web API (and the few Mattermost REST calls chat-ops makes) on 127.0.0.1: records
 * chat.postMessage / chat.update / chat.postEphemeral calls, answers like Slack does, and checks the bot token.
 * Plus helpers that sign requests the way Slack does, so tests drive `runbook serve` over real HTTP.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RecordedCall {
  method: string;
  /** Form fields (Slack) or JSON body (Mattermost), with `blocks`/`props` decoded. */
  args: Record<string, any>;
  at: number;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  props?: Record<string, unknown>;
  updates: number;
}

export interface SlackStandin {
  /** Base URL for WebClient's slackApiUrl (ends with /api/). */
  apiUrl: string;
  /** Base URL for the Mattermost API (without /api/v4). */
  mattermostUrl: string;
  calls: RecordedCall[];
  /** Messages by ts, as last posted or updated. */
  messages: Map<string, StoredMessage>;
  /** Requests refused for a wrong token. */
  unauthorized: number;
  waitFor<T>(pick: () => T | undefined | false, timeoutMs?: number, what?: string): Promise<T>;
  /**
   * Hold the answers to a Slack API method (a slow or hung Slack): its calls are recorded as they arrive but get
   * no reply until `release()`. `arrived` resolves at the first call held.
   */
  hold(method: string): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

export async function startSlackStandin(opts: { token: string; mattermostToken?: string }): Promise<SlackStandin> {
  const calls: RecordedCall[] = [];
  const messages = new Map<string, StoredMessage>();
  let seq = 0;
  const state = { unauthorized: 0 };
  const holds = new Map<string, { parked: (() => void)[]; arrive: () => void }>();
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const reply = (status: number, body: unknown) => {
        const data = JSON.stringify(body);
        res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(data);
      };
      const url = req.url ?? '';
      const auth = req.headers.authorization ?? '';
      if (url.startsWith('/api/v4/')) {
        if (auth !== `Bearer ${opts.mattermostToken}`) {
          state.unauthorized++;
          return reply(401, { id: 'api.context.session_expired.app_error' });
        }
        const body = raw ? JSON.parse(raw) : {};
        if (req.method === 'POST' && url === '/api/v4/posts') {
          calls.push({ method: 'mm.posts.create', args: body, at: Date.now() });
          const id = crypto.randomBytes(13).toString('hex');
          messages.set(id, { channel: body.channel_id, ts: id, text: body.message ?? '', blocks: [], props: body.props, updates: 0 });
          return reply(201, { id, channel_id: body.channel_id, message: body.message });
        }
        const patch = /^\/api\/v4\/posts\/([a-z0-9]+)\/patch$/.exec(url);
        if (req.method === 'PUT' && patch) {
          calls.push({ method: 'mm.posts.patch', args: { id: patch[1], ...body }, at: Date.now() });
          const m = messages.get(patch[1]!);
          if (!m) return reply(404, { id: 'app.post.get.app_error' });
          m.text = body.message ?? m.text;
          m.props = body.props ?? m.props;
          m.updates++;
          return reply(200, { id: patch[1] });
        }
        if (req.method === 'POST' && url === '/api/v4/posts/ephemeral') {
          calls.push({ method: 'mm.posts.ephemeral', args: body, at: Date.now() });
          return reply(201, { id: crypto.randomBytes(13).toString('hex') });
        }
        return reply(404, { id: 'api.context.404.app_error' });
      }
      const m = /^\/api\/([a-zA-Z.]+)$/.exec(url);
      if (!m || req.method !== 'POST') return reply(404, { ok: false, error: 'unknown_method' });
      const method = m[1]!;
      const form = Object.fromEntries(new URLSearchParams(raw)) as Record<string, any>;
      if (auth !== `Bearer ${opts.token}`) {
        state.unauthorized++;
        return reply(200, { ok: false, error: 'invalid_auth' });
      }
      if (typeof form.blocks === 'string') form.blocks = JSON.parse(form.blocks);
      calls.push({ method, args: form, at: Date.now() });
      const held = holds.get(method);
      if (held) {
        held.parked.push(() => answer(method, form, reply));
        held.arrive();
        return;
      }
      answer(method, form, reply);
    });
  });
  function answer(method: string, form: Record<string, any>, reply: (status: number, body: unknown) => void): void {
    switch (method) {
      case 'chat.postMessage': {
        const ts = nextTs();
        messages.set(ts, { channel: form.channel, ts, text: form.text ?? '', blocks: form.blocks ?? [], updates: 0 });
        return reply(200, { ok: true, channel: form.channel, ts, message: { text: form.text } });
      }
      case 'chat.update': {
        const msg = messages.get(form.ts);
        if (!msg || msg.channel !== form.channel) return reply(200, { ok: false, error: 'message_not_found' });
        msg.text = form.text ?? msg.text;
        msg.blocks = form.blocks ?? msg.blocks;
        msg.updates++;
        return reply(200, { ok: true, channel: form.channel, ts: form.ts });
      }
      case 'chat.postEphemeral':
        return reply(200, { ok: true, message_ts: nextTs() });
      default:
        return reply(200, { ok: false, error: 'unknown_method' });
    }
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    mattermostUrl: `http://127.0.0.1:${port}`,
    calls,
    messages,
    get unauthorized() {
      return state.unauthorized;
    },
    async waitFor(pick, timeoutMs = 30_000, what = 'condition') {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const v = pick();
        if (v !== undefined && v !== false) return v as never;
        if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
      }
    },
    hold(method) {
      let arrive!: () => void;
      const arrived = new Promise<void>((resolve) => { arrive = resolve; });
      const held = { parked: [] as (() => void)[], arrive };
      holds.set(method, held);
      return {
        arrived,
        release() {
          if (holds.get(method) === held) holds.delete(method);
          for (const go of held.parked.splice(0)) go();
        },
      };
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// ---- requests the way Slack, Mattermost and Alertmanager send them ---------------------------------------------

export function slackSign(secret: string, ts: number, body: string): string {
  return `v0=${crypto.createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
}

export interface SendOptions {
  /** Seconds since the epoch for X-Slack-Request-Timestamp (default now). */
  ts?: number;
  /** Override the signature (or null to send none). */
  signature?: string | null;
  secret?: string;
}

export async function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string; json: any; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, ms: Date.now() - t0 };
}

/** A slash command as Slack sends it (form body, v0 signature). */
export function slashCommandBody(fields: { text: string; user_id: string; channel_id: string; user_name?: string; command?: string }): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0001',
    team_domain: 'example',
    channel_id: fields.channel_id,
    channel_name: 'ops',
    user_id: fields.user_id,
    user_name: fields.user_name ?? fields.user_id.toLowerCase(),
    command: fields.command ?? '/runbook',
    text: fields.text,
    api_app_id: 'A0001',
    response_url: 'https://hooks.slack.invalid/commands/T0001/1/abc',
    // unique per request, like Slack's: two identical commands in the same second are not replays
    trigger_id: `${Date.now()}.${crypto.randomBytes(6).toString('hex')}`,
  }).toString();
}

/** A block_actions payload as Slack sends it for a button click. */
export function blockActionBody(fields: { user_id: string; channel_id: string; action_id: string; value: string; message_ts?: string }): string {
  const payload = {
    type: 'block_actions',
    user: { id: fields.user_id, username: fields.user_id.toLowerCase(), team_id: 'T0001' },
    api_app_id: 'A0001',
    container: { type: 'message', channel_id: fields.channel_id, message_ts: fields.message_ts ?? '0' },
    channel: { id: fields.channel_id, name: 'ops' },
    actions: [{ type: 'button', action_id: fields.action_id, block_id: 'approval', value: fields.value, action_ts: String(Date.now() / 1000) }],
    response_url: 'https://hooks.slack.invalid/actions/T0001/1/abc',
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export async function sendSlack(url: string, body: string, opts: SendOptions): Promise<{ status: number; text: string; json: any; ms: number }> {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Slack-Request-Timestamp': String(ts) };
  const sig = opts.signature === undefined ? slackSign(opts.secret ?? '', ts, body) : opts.signature;
  if (sig !== null) headers['X-Slack-Signature'] = sig;
  return post(url, body, headers);
}
