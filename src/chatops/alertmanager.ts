/** The Alertmanager webhook (bearer token): each firing alert routed (src/chatops/alerts.ts), mapped ones started. */
import type { Actor } from './access.ts';
import { zNotification } from './alerts.ts';
import type { Handler, HandlerContext } from './handler-context.ts';
import { header, remoteOf, sendJson } from './http.ts';
import { ROUTES } from './routes.ts';
import { verifyBearer } from './verify.ts';
import { messageOf, UserError } from '../common.ts';

/** The Alertmanager route's handler. */
export function alertmanagerHandlers(ctx: HandlerContext): { alertmanager: Handler } {
  const { secrets, audit, metrics, runs, log, refuse401, alerts, alertSink } = ctx;
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
    for (const o of await alerts.route(n)) {
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
  return { alertmanager };
}
