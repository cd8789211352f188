/**
 * The chat command grammar, shared by Slack and Mattermost. Strict on purpose: words and `key=value` tokens only,
 * no quoting, no free-form text passed anywhere, nothing that could reach a shell.
 *
 *   run  <runbook> cluster=<name> [key=value ...]
 *   plan <runbook> cluster=<name> [key=value ...]
 *   status <run-id>
 *   approve <run-id> <step> · deny <run-id> <step>
 *   list
 *   help
 */

export type ChatCommand =
  | { verb: 'run' | 'plan'; runbook: string; cluster: string; params: Record<string, string> }
  | { verb: 'status'; runId: string }
  | { verb: 'approve' | 'deny'; runId: string; stepId: string }
  | { verb: 'list' }
  | { verb: 'help' };

export type ParseResult = { ok: true; command: ChatCommand } | { ok: false; error: string };

export const COMMAND_LIMITS = { maxText: 1000, maxTokens: 24, maxValueLength: 256 } as const;

const KEY = /^[a-zA-Z][a-zA-Z0-9]*$/;
/** Values: sizes (8GiB), durations (30m), numbers, booleans, names. No quotes, spaces, markup or shell metacharacters. */
const VALUE = /^[A-Za-z0-9._:/@%+-]+$/;
const RUNBOOK = /^[a-z][a-z0-9-]{0,63}$/;
const RUN_ID = /^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$/;
const STEP = /^[a-z][a-z0-9-]{0,80}$/;

export const USAGE = [
  'Usage:',
  '  run <runbook> cluster=<name> [key=value ...]   start a run (progress is posted in this channel)',
  '  plan <runbook> cluster=<name> [key=value ...]  dry run: read-only probes, nothing changed',
  '  status <run-id>                               where a run is',
  '  approve <run-id> <step>, deny <run-id> <step> decide a step that waits (as its buttons do)',
  '  list                                          runbooks and clusters you may use here',
].join('\n');

function show(s: string): string {
  const t = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  return JSON.stringify(t);
}

export function parseCommand(text: string, opts: { maxValueLength?: number } = {}): ParseResult {
  const maxValue = opts.maxValueLength ?? COMMAND_LIMITS.maxValueLength;
  if (text.length > COMMAND_LIMITS.maxText) return { ok: false, error: `command too long (${text.length} characters; at most ${COMMAND_LIMITS.maxText})` };
  const tokens = text.split(/[ \t\u00a0]+/).filter(Boolean);
  if (tokens.length > COMMAND_LIMITS.maxTokens) return { ok: false, error: `too many words (${tokens.length}; at most ${COMMAND_LIMITS.maxTokens})` };
  const [verb, ...rest] = tokens;
  if (!verb || verb === 'help') return rest.length ? { ok: false, error: '`help` takes no arguments' } : { ok: true, command: { verb: 'help' } };
  switch (verb) {
    case 'list':
      return rest.length ? { ok: false, error: '`list` takes no arguments' } : { ok: true, command: { verb: 'list' } };
    case 'status': {
      if (rest.length !== 1) return { ok: false, error: 'usage: status <run-id>' };
      const id = rest[0]!;
      if (!RUN_ID.test(id)) return { ok: false, error: `${show(id)} is not a run id (they look like 20260101-120000-nospace-recovery-a1b2c3)` };
      return { ok: true, command: { verb: 'status', runId: id } };
    }
    case 'approve':
    case 'deny': {
      if (rest.length !== 2) return { ok: false, error: `usage: ${verb} <run-id> <step>` };
      const [id, step] = rest as [string, string];
      if (!RUN_ID.test(id)) return { ok: false, error: `${show(id)} is not a run id (they look like 20260101-120000-nospace-recovery-a1b2c3)` };
      if (!STEP.test(step)) return { ok: false, error: `${show(step)} is not a step id (lowercase letters, digits and -)` };
      return { ok: true, command: { verb, runId: id, stepId: step } };
    }
    case 'run':
    case 'plan': {
      const [runbook, ...pairs] = rest;
      if (!runbook) return { ok: false, error: `usage: ${verb} <runbook> cluster=<name> [key=value ...]` };
      if (runbook.includes('=')) return { ok: false, error: `the runbook name comes first: ${verb} <runbook> cluster=<name> ...` };
      if (!RUNBOOK.test(runbook)) return { ok: false, error: `${show(runbook)} is not a runbook name (lowercase letters, digits and -)` };
      const params: Record<string, string> = Object.create(null);
      let cluster: string | undefined;
      for (const tok of pairs) {
        const eq = tok.indexOf('=');
        if (eq <= 0) return { ok: false, error: `${show(tok)}: expected key=value (only key=value tokens follow the runbook name)` };
        const key = tok.slice(0, eq);
        const value = tok.slice(eq + 1);
        if (!KEY.test(key) || key.length > 64) return { ok: false, error: `${show(key)} is not a valid key (letters and digits, starting with a letter)` };
        if (!value) return { ok: false, error: `${key}: empty value` };
        if (value.length > maxValue) return { ok: false, error: `${key}: value too long (${value.length} characters; at most ${maxValue})` };
        if (!VALUE.test(value)) return { ok: false, error: `${key}: value ${show(value)} has characters that are not allowed (letters, digits and . _ : / @ % + - only)` };
        if (key === 'cluster') {
          if (cluster !== undefined) return { ok: false, error: 'cluster is given twice' };
          cluster = value;
          continue;
        }
        if (Object.hasOwn(params, key)) return { ok: false, error: `${key} is given twice` };
        params[key] = value;
      }
      if (!cluster) return { ok: false, error: `which cluster? add cluster=<name> (${verb} ${runbook} cluster=prod)` };
      return { ok: true, command: { verb, runbook, cluster, params: { ...params } } };
    }
    default:
      return { ok: false, error: `unknown command ${show(verb)}\n${USAGE}` };
  }
}
