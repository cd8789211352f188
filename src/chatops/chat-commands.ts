/** Slash commands from Slack and Mattermost: one grammar (src/chatops/command.ts), one set of checks. */
import { messageOf, UserError } from '../common.ts';
import { actorKey, allowedHere, mayRead, type Actor } from './access.ts';
import { parseCommand, USAGE } from './command.ts';
import type { HandlerContext } from './handler-context.ts';

/** Answer a slash command (Slack and Mattermost share the grammar). Returns the ephemeral text; starts runs in the background. */
export async function answerCommand(ctx: HandlerContext, platform: 'slack' | 'mattermost', f: URLSearchParams, remote: string): Promise<string> {
  const { cfg, audit, metrics, runs, sinks, log } = ctx;
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
    case 'approve':
    case 'deny': {
      // The same checks as a button (approver list, not the requester, still waiting, not expired); audited there.
      const r = await runs.decide(cmd.runId, cmd.stepId, cmd.verb === 'approve' ? 'granted' : 'denied', actor, `${platform} command`, channel);
      metrics.requests.inc({ route: platform, outcome: r.ok ? 'ok' : 'forbidden' });
      return r.ok ? r.message : `⛔ ${r.message}`;
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
}
