/**
 * The light entry of the public API (src/index.ts exports all of it), which every face loads at start: errors and
 * exit codes, units, the journal's record types and how a terminal shows them. Loads no etcd client, no YAML parser
 * and no schema library: `runbook --version` stays at commander alone.
 */
export { UserError, StepError, ExitCode, formatDiagnostic, messageOf, environmentError, clipMessage, type Diagnostic } from './util/errors.ts';
export { parseBytes, parseDuration, formatBytes, formatDuration } from './util/units.ts';
export { mkdirp } from './util/mkdirp.ts';
export { tlsPairProblem } from './util/tls-pair.ts';
export type { JournalRecord, RunEvent, RunStatus, ErrorInfo } from './events/types.ts';
export { formatRecord, formatReport } from './events/terminal.ts';
export { createProgress } from './events/progress.ts';
export type { Inventory, MemberSpec, DriverSpec, TlsSpec } from './inventory/types.ts';
export { statusLine, stepLines, pendingApproval, finalSummary, plainText, slackBlocks, mattermostPost, ACTION_APPROVE, ACTION_DENY, type RunView } from './events/chat.ts';
