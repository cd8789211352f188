/** Run ids: `<yyyymmdd>-<hhmmss>-<runbook name>-<6 hex>`, sortable by start time, the same in every store. */
import crypto from 'node:crypto';
import { UserError } from '../util/errors.ts';

const RUN_ID = /^[0-9]{8}-[0-9]{6}-[a-z0-9-]{1,40}-[0-9a-f]{6}$/;

export function newRunId(runbookName: string, now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${ts}-${runbookName.slice(0, 40)}-${crypto.randomBytes(3).toString('hex')}`;
}

export function isRunId(text: string): boolean {
  return RUN_ID.test(text);
}

/** The id itself, or a UserError naming what was given (a run id reaches paths and keys: nothing else may). */
export function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new UserError(`not a run id: ${JSON.stringify(id)} (see \`runbook history\`)`);
  return id;
}
