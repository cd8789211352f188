/**
 * One chat message per run: what it is, where it is, and (while a step waits) Approve/Deny buttons. Rendered
 * from the run's folded journal, for Slack (Block Kit) and Mattermost (message attachments). Pure.
 */
import type { RunReport } from '../execute/report.ts';
import type { RunState } from '../execute/state.ts';
import { formatReport } from './terminal.ts';
import { formatDuration } from '../util/units.ts';

export interface RunView {
  runId: string;
  runbook: string;
  cluster: string;
  /** Who asked, as shown (a chat mention or "alert etcdNoSpace"). */
  requestedBy: string;
  dryRun: boolean;
  stepIds: string[];
  state: RunState;
  /** A decision or refusal worth showing under the steps. */
  notes: string[];
}

const ICON: Record<string, string> = {
  pending: '◻️',
  running: '⏳',
  'awaiting-approval': '✋',
  succeeded: '✅',
  failed: '❌',
  skipped: '⏭️',
};

/** A recorded approver (`slack:U123`) as a chat mention. */
function who(by: string): string {
  const m = /^slack:([A-Z0-9]+)$/.exec(by);
  return m ? `<@${m[1]}>` : by.replace(/^mattermost:/, 'mattermost user ');
}

export function statusLine(v: RunView): string {
  const s = v.state.status;
  const what = v.dryRun ? 'plan' : 'run';
  switch (s) {
    case 'new':
    case 'running':
      return `⏳ ${what} of *${v.runbook}* on *${v.cluster}* is running`;
    case 'awaiting-approval':
      return `✋ ${what} of *${v.runbook}* on *${v.cluster}* is waiting for approval`;
    case 'succeeded':
      return `✅ ${what} of *${v.runbook}* on *${v.cluster}* succeeded`;
    case 'denied':
      return `🛑 ${what} of *${v.runbook}* on *${v.cluster}* was denied`;
    case 'cancelled':
      return `⏹️ ${what} of *${v.runbook}* on *${v.cluster}* was interrupted`;
    default:
      return `❌ ${what} of *${v.runbook}* on *${v.cluster}* failed`;
  }
}

export function stepLines(v: RunView): string[] {
  return v.stepIds.map((id) => {
    const st = v.state.steps.get(id);
    const status = st?.status ?? 'pending';
    let detail = '';
    if (st?.items?.length) {
      const done = st.items.filter((k) => st.item.get(k)?.status === 'succeeded').length;
      const current = st.items.filter((k) => st.item.get(k)?.status === 'started');
      detail = ` (${done}/${st.items.length}${current.length > 0 && status === 'running' ? `, now ${current.join(', ')}` : ''})`;
    }
    if (status === 'skipped') detail = ' (skipped)';
    if (st?.approval?.status === 'granted' && st.approval.by && !st.approval.via?.includes('covered by')) detail += ` — approved by ${who(st.approval.by)}`;
    if (st?.approval?.status === 'denied' && st.approval.by) detail += ` — ${st.approval.via === 'expiry' ? 'approval expired' : `denied by ${who(st.approval.by)}`}`;
    const failed = st ? [...st.item.values()].find((it) => it.status === 'failed' && it.error) : undefined;
    if (status === 'failed' && failed?.error) detail += ` — ${failed.error.message.slice(0, 300)}`;
    const dur = st?.startedAt && st.finishedAt ? ` ${formatDuration(st.finishedAt - st.startedAt)}` : '';
    return `${ICON[status] ?? '◻️'} \`${id}\`${detail}${dur}`;
  });
}

export function pendingApproval(v: RunView): { stepId: string; expiresAt?: number } | undefined {
  for (const id of v.stepIds) {
    const st = v.state.steps.get(id);
    if (st?.status === 'awaiting-approval' && st.approval?.status === 'requested') {
      return { stepId: id, ...(st.approval.expiresAt ? { expiresAt: st.approval.expiresAt } : {}) };
    }
  }
  return undefined;
}

/** The end of a run: report table, error, and how to resume. */
export function finalSummary(v: RunView): string | undefined {
  const f = v.state.finished;
  if (!f) return undefined;
  const lines: string[] = [`*Summary:* ${f.status} in ${formatDuration(f.durationMs)}`];
  if (f.report) lines.push('```\n' + formatReport(f.report as RunReport, { color: false }) + '\n```');
  if (f.error) lines.push(`Failed at step \`${f.error.stepId ?? '?'}\`${f.error.member ? ` on member ${f.error.member}` : ''}: ${f.error.message.slice(0, 500)}${f.error.hint ? `\n${f.error.hint}` : ''}`);
  if (!v.dryRun && (f.status === 'failed' || f.status === 'cancelled')) lines.push(`Resume with: \`runbook resume ${v.runId}\``);
  return lines.join('\n');
}

function header(v: RunView): string {
  return `run \`${v.runId}\` · requested by ${v.requestedBy}${v.dryRun ? ' · dry run: nothing is changed' : ''}`;
}

/** Plain-text fallback (notifications, screen readers, and chat.update's `text`). */
export function plainText(v: RunView): string {
  return [statusLine(v), header(v), ...stepLines(v), ...v.notes, finalSummary(v) ?? ''].filter(Boolean).join('\n');
}

export const ACTION_APPROVE = 'runbook_approve';
export const ACTION_DENY = 'runbook_deny';

export function slackBlocks(v: RunView): unknown[] {
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: statusLine(v) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: header(v) }] },
    { type: 'section', text: { type: 'mrkdwn', text: stepLines(v).join('\n').slice(0, 2900) || '(no steps)' } },
  ];
  if (v.notes.length) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: v.notes.slice(-5).join('\n').slice(0, 2900) }] });
  const pending = pendingApproval(v);
  if (pending && !v.state.finished) {
    const value = `${v.runId} ${pending.stepId}`;
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `Step \`${pending.stepId}\` needs approval from an approver other than the requester${pending.expiresAt ? ` (expires <!date^${Math.floor(pending.expiresAt / 1000)}^{time}|${new Date(pending.expiresAt).toISOString()}>)` : ''}.` },
    });
    blocks.push({
      type: 'actions',
      block_id: `approval-${pending.stepId}`.slice(0, 255),
      elements: [
        { type: 'button', action_id: ACTION_APPROVE, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value },
        { type: 'button', action_id: ACTION_DENY, style: 'danger', text: { type: 'plain_text', text: 'Deny' }, value },
      ],
    });
  }
  const summary = finalSummary(v);
  if (summary) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: summary.slice(0, 2900) } });
  return blocks;
}

/** Mattermost: markdown message plus an attachment with buttons whose context carries a MAC. */
export function mattermostPost(v: RunView, buttons?: { url: string; context: (decision: 'approve' | 'deny', stepId: string) => Record<string, string> }): { message: string; props: Record<string, unknown> } {
  const md = (s: string) => s.replace(/(^|[^*])\*([^*\n]+)\*/g, '$1**$2**');
  const parts = [md(statusLine(v)), header(v), ...stepLines(v), ...v.notes];
  const summary = finalSummary(v);
  if (summary) parts.push(md(summary));
  const props: Record<string, unknown> = {};
  const pending = pendingApproval(v);
  if (pending && !v.state.finished && buttons) {
    props.attachments = [{
      text: `Step \`${pending.stepId}\` needs approval from an approver other than the requester.`,
      actions: [
        { id: 'approve', name: 'Approve', style: 'primary', integration: { url: buttons.url, context: buttons.context('approve', pending.stepId) } },
        { id: 'deny', name: 'Deny', style: 'danger', integration: { url: buttons.url, context: buttons.context('deny', pending.stepId) } },
      ],
    }];
  } else {
    props.attachments = [];
  }
  return { message: parts.join('\n'), props };
}
