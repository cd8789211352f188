/** Mattermost: slash commands (token) and button callbacks (an HMAC over run, step and decision in their context). */
import type { Actor } from './access.ts';
import { answerCommand } from './chat-commands.ts';
import type { Handler, HandlerContext } from './handler-context.ts';
import { isForm, isJson, remoteOf, sendJson } from './http.ts';
import { ROUTES } from './routes.ts';
import { verifyActionMac, verifyToken } from './verify.ts';

/** The Mattermost routes' handlers. */
export function mattermostHandlers(ctx: HandlerContext): { mattermostCommand: Handler; mattermostAction: Handler } {
  const { secrets, metrics, runs, refuse401 } = ctx;
  const mattermostCommand: Handler = async (req, res, body) => {
    const f = new URLSearchParams(isForm(req) ? body.toString('utf8') : '');
    const v = verifyToken(secrets.mattermostToken!, f.get('token') ?? undefined);
    if (!v.ok) return refuse401(res, req, ROUTES.mattermostCommands, 'mattermost', v.reason);
    const text = await answerCommand(ctx, 'mattermost', f, remoteOf(req));
    sendJson(res, 200, { response_type: 'ephemeral', text: text.replace(/(^|[^*])\*([^*\n]+)\*/g, '$1**$2**') });
  };

  const mattermostAction: Handler = async (req, res, body) => {
    let p: any;
    try {
      p = isJson(req) ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      p = undefined;
    }
    const action = p?.context; // the button's context, as this server signed it
    const fields = [String(action?.runId ?? ''), String(action?.stepId ?? ''), String(action?.decision ?? '')];
    if (!action || !verifyActionMac(secrets.mattermostToken!, fields, action.mac)) return refuse401(res, req, ROUTES.mattermostActions, 'mattermost', 'bad-signature');
    if (typeof p.user_id !== 'string' || !p.user_id) return sendJson(res, 400, { error: 'no user_id' });
    const actor: Actor = { platform: 'mattermost', id: p.user_id, ...(typeof p.user_name === 'string' ? { name: p.user_name } : {}) };
    const r = await runs.decide(fields[0]!, fields[1]!, fields[2] === 'approve' ? 'granted' : 'denied', actor, 'mattermost', typeof p.channel_id === 'string' ? p.channel_id : undefined);
    metrics.requests.inc({ route: 'mattermost-actions', outcome: r.ok ? 'ok' : 'forbidden' });
    sendJson(res, 200, { ephemeral_text: r.ok ? r.message : `⛔ ${r.message}` });
  };
  return { mattermostCommand, mattermostAction };
}
