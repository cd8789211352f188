/**
 * What a member's own etcd log says happened, to assert from the outside what the runner's journal claims. etcd
 * logs JSON (zap) here on 3.4 (--logger=zap) and 3.5: a defragmentation is "starting defragment" …
 * "finished defragment" (v3rpc/maintenance.go, measured on 3.4.23, 3.5.16, 3.5.30).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

function messages(logFile: string): string[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const msg = (JSON.parse(line) as { msg?: unknown }).msg;
      if (typeof msg === 'string') out.push(msg);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/** Defragmentations a member's log shows: started, finished, and whether the last one started has not finished. */
export function defragsInLog(logFile: string): { started: number; finished: number; inProgress: boolean } {
  let started = 0;
  let finished = 0;
  let inProgress = false;
  for (const msg of messages(logFile)) {
    if (msg === 'starting defragment') {
      started++;
      inProgress = true;
    } else if (msg === 'finished defragment') {
      finished++;
      inProgress = false;
    }
  }
  return { started, finished, inProgress };
}

/** Poll a member's log until it shows a defragmentation in progress (started, not finished). */
export async function waitForDefragInProgress(logFile: string, timeoutMs = 30_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; !defragsInLog(logFile).inProgress; await sleep(2)) {
    if (Date.now() > until) throw new Error(`no defragmentation in progress in ${logFile} within ${timeoutMs} ms: ${JSON.stringify(defragsInLog(logFile))}`);
  }
}
