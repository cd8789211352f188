/** Slack: slash commands and the Approve/Deny buttons, each request verified (v0 signature, replay cache) before it is parsed. */
import type { Actor } from './access.ts';
import { answerCommand } from './chat-commands.ts';
import type { Handler, HandlerContext } from './handler-context.ts';
import { header, isForm, remoteOf, sendJson, sendText } from './http.ts';
import { ACTION_APPROVE, ACTION_DENY } from '../common.ts';
import { ROUTES } from './routes.ts';
import { verifySlack } from './verify.ts';
import { messageOf } from '../common.ts';

/** The Slack routes' handlers. */
export function slackHandlers(ctx: HandlerContext): { slackCommand: Handler; slackInteraction: Handler } {
  const { secrets, metrics, runs, sinks, log, replay, refuse401 } = ctx;
  const slackCommand: Handler = async (req, res, body) => {
    const v = verifySlack(secrets.slackSigningSecret!, { timestamp: header(req, 'x-slack-request-timestamp'), signature: header(req, 'x-slack-signature') }, body, replay);
    if (!v.ok) return refuse401(res, req, ROUTES.slackCommands, 'slack', v.reason);
    if (!isForm(req)) return sendJson(res, 415, { error: 'expected application/x-www-form-urlencoded' });
    const text = await answerCommand(ctx, 'slack', new URLSearchParams(body.toString('utf8')), remoteOf(req));
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
  return { slackCommand, slackInteraction };
}
