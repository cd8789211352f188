/**
 * Where messages go: the Slack Web API (through the official WebClient, at a configurable API URL) or the
 * Mattermost REST API. One message per run is posted, then edited in place; response_url is never relied on
 * (it expires). Errors carry the API's error code only, never the token.
 */
import { LogLevel, WebClient, type Logger } from '@slack/web-api';
import { mattermostPost, plainText, slackBlocks, type RunView } from '../common.ts';

export type Platform = 'slack' | 'mattermost';

export interface MessageRef {
  channel: string;
  id: string;
}

export interface ChatSink {
  platform: Platform;
  postRun(channel: string, view: RunView): Promise<MessageRef>;
  /**
   * Edit the run's message. `validUntil`: the caller's right to edit ends then (a replica's hold on the run's lock):
   * past it, nothing is sent (StaleEdit), checked as close to the request as this code gets.
   */
  updateRun(ref: MessageRef, view: RunView, opts?: { validUntil?: number }): Promise<void>;
  /** A plain message in a channel (lock refusals, start failures). */
  notice(channel: string, text: string): Promise<void>;
  /** A message only one user sees (refused clicks). */
  ephemeral(channel: string, user: string, text: string): Promise<void>;
}

/** An edit not sent because the right to make it had run out (see ChatSink.updateRun). */
export class StaleEdit extends Error {}

function checkValid(validUntil: number | undefined): void {
  if (validUntil !== undefined && Date.now() > validUntil) throw new StaleEdit('the run may have changed hands since this edit was decided');
}

function silentLogger(log: (msg: string) => void): Logger {
  let level = LogLevel.WARN;
  const out = (...msgs: unknown[]) => log(msgs.map(String).join(' '));
  return {
    debug: () => {},
    info: () => {},
    warn: out,
    error: out,
    setLevel: (l) => { level = l; },
    getLevel: () => level,
    setName: () => {},
  };
}

export function slackSink(opts: { token: string; apiUrl: string; log: (msg: string) => void; timeoutMs?: number }): ChatSink {
  const client = new WebClient(opts.token, {
    slackApiUrl: opts.apiUrl,
    logger: silentLogger(opts.log),
    timeout: opts.timeoutMs ?? 10_000,
    retryConfig: { retries: 2, factor: 2, minTimeout: 250, maxTimeout: 2000 },
    allowAbsoluteUrls: false,
  });
  return {
    platform: 'slack',
    async postRun(channel, view) {
      const r = await client.chat.postMessage({ channel, text: plainText(view).slice(0, 3000), blocks: slackBlocks(view) as never });
      if (!r.ts) throw new Error('chat.postMessage returned no ts');
      return { channel: r.channel ?? channel, id: r.ts };
    },
    async updateRun(ref, view, o) {
      const text = plainText(view).slice(0, 3000);
      const blocks = slackBlocks(view) as never;
      checkValid(o?.validUntil);
      await client.chat.update({ channel: ref.channel, ts: ref.id, text, blocks });
    },
    async notice(channel, text) {
      await client.chat.postMessage({ channel, text });
    },
    async ephemeral(channel, user, text) {
      await client.chat.postEphemeral({ channel, user, text });
    },
  };
}

export function mattermostSink(opts: {
  token: string;
  apiUrl: string;
  actionUrl: string;
  actionContext: (runId: string, stepId: string, decision: 'approve' | 'deny') => Record<string, string>;
  timeoutMs?: number;
}): ChatSink {
  const call = async (method: 'POST' | 'PUT', path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${opts.apiUrl}/api/v4${path}`, {
      method,
      headers: { Authorization: `Bearer ${opts.token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    let data: Record<string, unknown> = {};
    try {
      data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      data = {};
    }
    if (!res.ok) throw new Error(`Mattermost ${method} ${path.replace(/\/[a-z0-9]{26}(\/|$)/, '/…$1')}: HTTP ${res.status}${typeof data.id === 'string' ? ` (${data.id})` : ''}`);
    return data;
  };
  const buttons = (v: RunView) => ({ url: opts.actionUrl, context: (d: 'approve' | 'deny', stepId: string) => opts.actionContext(v.runId, stepId, d) });
  return {
    platform: 'mattermost',
    async postRun(channel, view) {
      const p = mattermostPost(view, buttons(view));
      const r = await call('POST', '/posts', { channel_id: channel, message: p.message, props: p.props });
      if (typeof r.id !== 'string') throw new Error('Mattermost POST /posts returned no id');
      return { channel, id: r.id };
    },
    async updateRun(ref, view, o) {
      const p = mattermostPost(view, buttons(view));
      checkValid(o?.validUntil);
      await call('PUT', `/posts/${encodeURIComponent(ref.id)}/patch`, { message: p.message, props: p.props });
    },
    async notice(channel, text) {
      await call('POST', '/posts', { channel_id: channel, message: text });
    },
    async ephemeral(channel, user, text) {
      await call('POST', '/posts/ephemeral', { user_id: user, post: { channel_id: channel, message: text } });
    },
  };
}
