/**
 * The management etcd's key layout (all under /runbook/v1/):
 *   index/<id>                      one small key per run (listing runs does not read their journals)
 *   runs/<id>/meta · runs/<id>/runbook · runs/<id>/snapshot · runs/<id>/journal/<seq, 12 digits>
 *   runs/<id>/approvals/<step>      first decision wins (txn: createRevision == 0)
 *   locks/<key>                     holder JSON, one key per lockKeys() of the cluster's identity
 *   audit/<ts>-<random>
 * Run and step ids are checked before they become part of a key.
 */
import crypto from 'node:crypto';
import { UserError } from '../util/errors.ts';
import { checkRunId } from './run-id.ts';

export const PREFIX = '/runbook/v1/';
const STEP_ID = /^[a-z][a-z0-9-]*$/;

export const keys = {
  run: (id: string) => `${PREFIX}runs/${checkRunId(id)}/`,
  meta: (id: string) => `${keys.run(id)}meta`,
  runbook: (id: string) => `${keys.run(id)}runbook`,
  snapshot: (id: string) => `${keys.run(id)}snapshot`,
  journal: (id: string) => `${keys.run(id)}journal/`,
  record: (id: string, seq: number) => `${keys.journal(id)}${String(seq).padStart(12, '0')}`,
  approval: (id: string, step: string) => {
    if (!STEP_ID.test(step)) throw new UserError(`not a step id: ${JSON.stringify(step)}`);
    return `${keys.run(id)}approvals/${step}`;
  },
  lock: (clusterKeyText: string) => `${PREFIX}locks/${clusterKeyText}`,
  index: (id: string) => `${PREFIX}index/${checkRunId(id)}`,
  indexPrefix: `${PREFIX}index/`,
  audit: () => `${PREFIX}audit/${new Date().toISOString()}-${crypto.randomBytes(4).toString('hex')}`,
};
