/**
 * Worker thread for the loader fuzz test: loads one runbook per message and answers with what happened and how
 * long it took. It runs in a worker so the test can stop an input that never finishes (terminate) instead of
 * hanging the suite, and still count the hang as a failure.
 */
import { parentPort } from 'node:worker_threads';
import { loadRunbook, loadRunbookText } from '../../src/runbook/load.ts';
import { UserError } from '../../src/util/errors.ts';

export interface LoadRequest {
  id: number;
  /** Text to load (loadRunbookText), diagnostics name `name`. */
  text?: string;
  name: string;
  /** Or a file to load from disk (loadRunbook: bytes, size cap, UTF-8 decoding). */
  file?: string;
}

export type LoadReply =
  | { id: number; ms: number; kind: 'ok'; steps: number }
  | { id: number; ms: number; kind: 'user-error'; message: string; diagnostics: { file: string; line: number; col: number; message: string }[]; exitCode: number }
  | { id: number; ms: number; kind: 'crash'; name: string; message: string; stack: string };

parentPort!.postMessage({ ready: true });

parentPort!.on('message', (req: LoadRequest) => {
  const t0 = performance.now();
  // Stands in for a loader that never returns, so the test can check that the watchdog works.
  if (req.name === '__hang_for_test__') for (;;);
  let reply: LoadReply;
  try {
    const rb = req.file !== undefined ? loadRunbook(req.file) : loadRunbookText(req.text ?? '', req.name);
    reply = { id: req.id, ms: 0, kind: 'ok', steps: rb.steps.length };
  } catch (err) {
    reply =
      err instanceof UserError
        ? { id: req.id, ms: 0, kind: 'user-error', message: err.message, diagnostics: err.diagnostics.map((d) => ({ ...d })), exitCode: err.exitCode }
        : { id: req.id, ms: 0, kind: 'crash', name: (err as Error)?.constructor?.name ?? typeof err, message: String((err as Error)?.message ?? err), stack: String((err as Error)?.stack ?? '') };
  }
  reply.ms = performance.now() - t0;
  parentPort!.postMessage(reply);
});
